/**
 * Errors and codes of the protocol, and the client's own errors.
 *
 * Every error this package hands out (a rejected request, an `error` event) is a
 * {@link PavilionError}. Its `code` is the gateway's numeric code (see
 * {@link ErrorCode}) when the gateway said no, or a string code when the client
 * itself gave up (see {@link ClientErrorCode}).
 * @module
 */

/** Error codes the gateway sends in `error` messages. */
export const ErrorCode = {
  /** Missing, invalid, expired or revoked token (the gateway then closes with 4001). */
  AUTH: 1001,
  /** The message is not a valid protocol message. The connection stays open. */
  INVALID_FORMAT: 1002,
  /** Invalid channel name, or too many subscriptions. */
  INVALID_SUBSCRIPTION: 1003,
  /** Not allowed (channel access control, `mark_read` of an unknown id). */
  PERMISSION_DENIED: 1004,
  /** Too many messages; the message was dropped. */
  RATE_LIMITED: 1005,
  /** Internal server error. */
  INTERNAL: 2000,
} as const;

/** WebSocket close codes the gateway uses. */
export const CloseCode = {
  NORMAL: 1000,
  /** The gateway is shutting down. */
  GOING_AWAY: 1001,
  /** The socket went away without a close frame (network cut, dead connection). */
  ABNORMAL: 1006,
  INVALID_UTF8: 1007,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL: 1011,
  /** No client message for the gateway's idle timeout. */
  IDLE: 4000,
  /** Authentication failed, token expired, or connections revoked. */
  AUTH: 4001,
  /** Slow consumer: the gateway's outbound queue for this connection overflowed. */
  SLOW_CONSUMER: 4008,
  /** Rate-limit abuse, or too many connections for this user. */
  RATE_LIMITED: 4029,
} as const;

/** Codes of errors the client raises itself (the gateway's are numbers). */
export type ClientErrorCode =
  | 'queue_full'
  | 'too_large'
  | 'timeout'
  | 'disconnected'
  | 'closed'
  | 'unsubscribed'
  | 'invalid_message'
  | 'token';

/**
 * An error of the gateway (numeric `code`) or of the client (string `code`).
 *
 * ```ts
 * try { await client.subscribe('zone:x'); }
 * catch (e) { if (e instanceof PavilionError && e.code === ErrorCode.PERMISSION_DENIED) … }
 * ```
 */
export class PavilionError extends Error {
  /** The protocol error code (1001…2000) or a {@link ClientErrorCode}. */
  readonly code: number | ClientErrorCode;
  /** The `type` of the request this error answers, when there is one. */
  readonly requestType?: string;
  /** The `id` of the request this error answers, when there is one. */
  readonly requestId?: string;

  constructor(code: number | ClientErrorCode, message: string,
              request?: { type?: string; id?: string }) {
    super(message);
    this.name = 'PavilionError';
    this.code = code;
    if (request?.type !== undefined) this.requestType = request.type;
    if (request?.id !== undefined) this.requestId = request.id;
  }
}

/** The queue of messages waiting for a connection is full (`code` `'queue_full'`). */
export class QueueFullError extends PavilionError {
  constructor(limit: number, request?: { type?: string; id?: string }) {
    super('queue_full', `outbound queue is full (${limit} messages)`, request);
    this.name = 'QueueFullError';
  }
}

/**
 * The message is larger than the gateway takes (`maxMessageBytes`, the
 * gateway's `max_message_bytes`): it was not sent, since the gateway would
 * close the connection with 1009 (`code` `'too_large'`).
 */
export class MessageTooLargeError extends PavilionError {
  /** The message's size in bytes (UTF-8). */
  readonly bytes: number;
  /** The limit it is over. */
  readonly limit: number;

  constructor(bytes: number, limit: number, request?: { type?: string; id?: string }) {
    super('too_large', `message of ${bytes} bytes is over the gateway's max_message_bytes (${limit})`, request);
    this.name = 'MessageTooLargeError';
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** No answer within the request's timeout (`code` `'timeout'`). */
export class RequestTimeoutError extends PavilionError {
  constructor(ms: number, request?: { type?: string; id?: string }) {
    super('timeout', `no answer within ${ms} ms`, request);
    this.name = 'RequestTimeoutError';
  }
}

/**
 * The connection was lost after the request was sent and before it was
 * answered; whether the gateway acted on it is unknown (`code` `'disconnected'`).
 */
export class ConnectionLostError extends PavilionError {
  constructor(request?: { type?: string; id?: string }) {
    super('disconnected', 'connection lost before the answer', request);
    this.name = 'ConnectionLostError';
  }
}

/** The client was closed with {@link PavilionClient.close} (`code` `'closed'`). */
export class ClientClosedError extends PavilionError {
  constructor(request?: { type?: string; id?: string }) {
    super('closed', 'client closed', request);
    this.name = 'ClientClosedError';
  }
}
