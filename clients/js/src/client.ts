/**
 * The client: one logical connection to the gateway that survives
 * reconnects, renews its token, keeps its subscriptions and loses nothing the
 * gateway's history holds.
 * @module
 */
import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import {
  ClientClosedError, CloseCode, ConnectionLostError, ErrorCode, MessageTooLargeError, PavilionError,
  RequestTimeoutError,
} from './errors.js';
import { OutboundQueue, type QueueOptions, type QueuedMessage } from './queue.js';
import {
  Subscription, toPublication, type StreamPosition, type SubscriptionOptions,
  type UnrecoveredInfo,
} from './subscription.js';
import { MAX_TIMER_MS, timeoutAfter } from './timeout.js';
import { decodeToken, renewalTime, type RenewalPolicy, type TokenClaims } from './token.js';
import { Transport, type WebSocketConstructor } from './transport.js';
import type {
  Ack, Notification, NotificationRead, PresenceStatus, Publication, ServerMessage, StatusUpdate,
  SubscribeAck,
} from './types.js';

/** Connection states. `closed` only after {@link PavilionClient.close}. */
export type ConnectionState = 'disconnected' | 'connecting' | 'connected' | 'closed';

/**
 * Returns the JWT for the next connection or renewal: a fresh one each time
 * it can. Called before every connection attempt, at renewal time, and after
 * a close with 4001 (then a token equal to the rejected one means "give up").
 */
export type TokenGetter = () => string | Promise<string>;

/** Options of {@link PavilionClient}. */
export interface ClientOptions extends QueueOptions, RenewalPolicy {
  /** The gateway's WebSocket URL, e.g. `wss://api.example/ws`. The token is added as `?token=`. */
  url: string;
  /** The JWT, or a function returning it (sync or async). Only a function allows renewal. */
  token: string | TokenGetter;
  /** A WebSocket constructor to use instead of the runtime's (or the `ws` package in Node). */
  WebSocket?: WebSocketConstructor;
  /** Node only: options for the `ws` package (e.g. `{ ca }` for a private CA). */
  wsOptions?: Record<string, unknown>;
  /** The gateway's `heartbeat_interval_s` in ms (default 30000). */
  heartbeatIntervalMs?: number;
  /** No message at all for heartbeatIntervalMs + this (default 10000) → dead connection. */
  heartbeatGraceMs?: number;
  /** Give up an opening handshake after this long (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Default timeout of requests (default 10000 ms). */
  requestTimeoutMs?: number;
  /**
   * The gateway's `max_message_bytes` (default 16384, the gateway's default):
   * a larger message is refused with {@link MessageTooLargeError} instead of
   * being sent (the gateway would close the connection with 1009). The
   * gateway does not tell its limit: set this when it is configured
   * otherwise; `Infinity` turns the check off.
   */
  maxMessageBytes?: number;
  /** Ceiling of the first reconnect delay (default 500 ms). */
  minReconnectDelayMs?: number;
  /** Largest reconnect delay (default 30000 ms). */
  maxReconnectDelayMs?: number;
  /** A connection open this long resets the backoff (default 10000 ms). */
  stableAfterMs?: number;
  /** Least delay before reconnecting after a close with 4029 (default 30000 ms). */
  rateLimitedDelayMs?: number;
  /**
   * After a reconnect, ask the `user` channel for the notifications created
   * since the newest one seen (`parameters.since`, default true).
   */
  replayNotifications?: boolean;
  /** `since` is moved back by this much (default 1000 ms); the overlap is dropped by id. */
  sinceOverlapMs?: number;
  /** Notification ids remembered for dropping duplicates (default 1000). */
  seenNotifications?: number;
  /** Randomness for the backoff's jitter (default `Math.random`). */
  random?: () => number;
}

/** What {@link ClientEvents.disconnected} reports. */
export interface DisconnectInfo {
  /** The close code (1006 when the socket was cut, the handshake failed or the connection was dead). */
  code: number;
  reason: string;
  /** Whether a reconnect is scheduled. */
  reconnect: boolean;
  /** In how many ms, when it is. */
  delayMs?: number;
}

/** What {@link ClientEvents.authFailed} reports. */
export interface AuthFailedInfo {
  code: number;
  reason: string;
  /** What the token getter threw, if it threw. */
  error?: unknown;
}

/** What {@link ClientEvents.revoked} reports. */
export interface RevokedInfo {
  /** The channel the gateway dropped (canonical name). */
  channel: string;
  /** This client's subscription of it, now `unsubscribed`; none when the client had none. */
  subscription?: Subscription;
  /** The gateway's error (1004 `subscription revoked`). */
  error: PavilionError;
}

/** Events of a {@link PavilionClient}. */
export interface ClientEvents {
  /** Every state change. */
  state: (state: ConnectionState, previous: ConnectionState) => void;
  /** A connection attempt starts. */
  connecting: (info: { attempt: number }) => void;
  /** Connected and served (the gateway answered a first request); `reconnected` after the first time. */
  connected: (info: { reconnected: boolean }) => void;
  /** The connection is gone. */
  disconnected: (info: DisconnectInfo) => void;
  /** {@link PavilionClient.close} was called. */
  closed: () => void;
  /**
   * Closed with 4001 and the token getter gave the same token again (or
   * threw): the client stays disconnected until {@link PavilionClient.connect}.
   */
  authFailed: (info: AuthFailedInfo) => void;
  /** The token was renewed on the open connection (`auth` acked). */
  tokenRenewed: (info: { exp?: number }) => void;
  /** Every message from the gateway, as received (before duplicates are dropped). */
  message: (message: ServerMessage) => void;
  /** A message through any channel but `notification` and `notification_read` (after duplicates are dropped). */
  publication: (publication: Publication) => void;
  /** A new notification (duplicates by id dropped). */
  notification: (notification: Notification, message: ServerMessage) => void;
  /** Another connection of the user marked a notification read. */
  notification_read: (read: NotificationRead, message: ServerMessage) => void;
  /** A user's presence changed (or a snapshot after `presence: true`). */
  status_update: (update: StatusUpdate, message: ServerMessage) => void;
  /** The gateway may have dropped publications for this connection: refetch state. */
  resync: (message: ServerMessage) => void;
  /**
   * The gateway dropped a subscription itself: a token renewal whose claims no
   * longer grant the channel (error 1004 `subscription revoked` with `channel`).
   * The subscription is `unsubscribed` (its `error` and `unsubscribed` events
   * fired first) and is not asked for again on the next connection.
   */
  revoked: (info: RevokedInfo) => void;
  /** A subscription could not be recovered after a reconnect (see {@link SubscriptionEvents.unrecovered}). */
  unrecovered: (info: UnrecoveredInfo & { subscription: Subscription }) => void;
  /**
   * An `error` from the gateway that answers no request of this client, a
   * failed token renewal, or a message that is not valid JSON (a revoked
   * subscription comes as `revoked` instead).
   */
  error: (error: PavilionError) => void;
}

/** Options of a single request. */
export interface RequestOptions {
  /** Overrides `requestTimeoutMs`. */
  timeoutMs?: number;
}

interface Pending {
  type: string;
  sent: boolean;
  /** A control request: void with its connection, sent or not (the control lane is dropped). */
  control?: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** Settles an `ack` (with the whole message). */
  ack(payload: Ack, msg: ServerMessage): void;
  /** Settles an `error`, a timeout, or a close of the client. */
  fail(err: PavilionError): void;
  /** The connection went away after sending; undefined → fail with ConnectionLostError. */
  lost?(): void;
}

type TimerName = 'reconnect' | 'connect' | 'dead' | 'stable' | 'renew' | 'drain';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A message to the gateway: `{type, id, payload}`; JSON leaves out an `id` or `payload` that is undefined. */
function envelope(type: string, id: string | undefined, payload: Record<string, unknown> | undefined): string {
  return JSON.stringify({ type, id, payload });
}

/** Throws a TypeError for a URL no WebSocket opens (not absolute, or with a fragment). */
function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`options.url is not an absolute URL: ${url}`);
  }
  if (u.hash !== '') throw new TypeError(`options.url has a fragment: ${url}`);
}

/** The size of `text` in UTF-8, as the gateway counts a message. */
function utf8Length(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 4 bytes for 2 code units
      i++;
    } else {
      n += 2; // 3 bytes (a lone surrogate is sent as U+FFFD)
    }
  }
  return n;
}

/** A message id no longer than any the client makes (for sizing a message before it has one). */
const LONGEST_ID = String(Number.MAX_SAFE_INTEGER);

function withToken(url: string, token: string): string {
  const u = new URL(url);
  u.searchParams.set('token', token);
  return u.toString();
}

/**
 * The pavilion-gateway client.
 *
 * ```ts
 * const client = new PavilionClient({ url: 'wss://gw.example/ws', token: () => auth.token() });
 * client.on('notification', (n) => inbox.add(n));
 * const room = client.channel('chat:lobby');
 * room.on('publication', (p) => show(p.payload));
 * client.connect();
 * await room.subscribe();
 * ```
 */
export class PavilionClient extends Emitter<ClientEvents> {
  private _state: ConnectionState = 'disconnected';
  private readonly opts: ClientOptions;
  private readonly backoff: Backoff;
  private readonly queue: OutboundQueue;
  private readonly pending = new Map<string, Pending>();
  private readonly subs = new Map<string, Subscription>();
  private readonly byCanonical = new Map<string, Subscription>();
  private readonly timers = new Map<TimerName, ReturnType<typeof setTimeout>>();
  private readonly seen = new Set<string>();
  /** Subscribes answered 1005 or 2000 on this connection, by how many times. */
  private readonly subscribeRetries = new Map<Subscription, number>();
  private readonly retryTimers = new Set<ReturnType<typeof setTimeout>>();
  private transport: Transport | undefined;
  private generation = 0;
  private seq = 0;
  private token: string | undefined;
  /** `token` decoded once, by setToken() (null: not a JWT the client can read). */
  private claims: TokenClaims | null = null;
  private tokenObtainedMs = 0;
  private nextToken: string | undefined;
  private everConnected = false;
  private lastMessageMs = 0;
  private clockOffsetMs = 0;
  private userSinceMs: number | undefined;
  private presenceStatus: string | undefined;

  constructor(options: ClientOptions) {
    super();
    if (!options || typeof options.url !== 'string') throw new TypeError('options.url is required');
    checkUrl(options.url);
    if (typeof options.token !== 'string' && typeof options.token !== 'function') {
      throw new TypeError('options.token must be a string or a function');
    }
    if (options.maxMessageBytes !== undefined && !(options.maxMessageBytes > 0)) {
      throw new TypeError('options.maxMessageBytes must be a positive number (Infinity: no check)');
    }
    this.opts = { ...options };
    const backoffOptions: ConstructorParameters<typeof Backoff>[0] = {
      minDelayMs: options.minReconnectDelayMs ?? 500,
      maxDelayMs: options.maxReconnectDelayMs ?? 30000,
    };
    if (options.random) backoffOptions.random = options.random;
    this.backoff = new Backoff(backoffOptions);
    this.queue = new OutboundQueue(options);
  }

  // ------------------------------------------------------------------ public API

  /** The connection state. */
  get state(): ConnectionState {
    return this._state;
  }

  /** The user id (`sub`) of the current token, once there is one. */
  get userId(): string | undefined {
    const sub = this.claims?.sub;
    return typeof sub === 'string' ? sub : undefined;
  }

  /** Application messages waiting for a connection. */
  get queueSize(): number {
    return this.queue.size;
  }

  /** Starts connecting (no-op while connecting or connected); also ends a pending reconnect wait. */
  connect(): void {
    if (this._state === 'connecting' || this._state === 'connected') return;
    this.attempt();
  }

  /**
   * Resolves once connected (at once if connected). Rejects on `timeoutMs`,
   * {@link PavilionClient.close} (at once when closed already: only
   * {@link PavilionClient.connect} would start over), or {@link ClientEvents.authFailed}.
   */
  ready(timeoutMs?: number): Promise<void> {
    if (this._state === 'connected') return Promise.resolve();
    if (this._state === 'closed') return Promise.reject(new ClientClosedError());
    return new Promise((resolve, reject) => {
      const offs: Array<() => void> = [];
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (err?: Error) => {
        offs.forEach((off) => off());
        if (timer) clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      offs.push(this.on('connected', () => done()));
      offs.push(this.on('closed', () => done(new ClientClosedError())));
      offs.push(this.on('authFailed', (i) => done(new PavilionError(i.code, `authentication failed: ${i.reason}`))));
      if (timeoutMs !== undefined) {
        timer = timeoutAfter(timeoutMs, () => done(new RequestTimeoutError(timeoutMs, { type: 'connect' })));
      }
    });
  }

  /**
   * Closes the connection for good: no reconnect, queued messages and
   * pending requests are rejected with {@link ClientClosedError}. The
   * subscriptions are kept: {@link PavilionClient.connect} starts over with them.
   */
  close(): void {
    if (this._state === 'closed') return;
    this.generation++;
    const t = this.transport;
    this.transport = undefined;
    t?.abandon(1000, 'client closed');
    for (const name of [...this.timers.keys()]) this.clearTimer(name);
    this.stopSubscribeRetries();
    this.setState('closed');
    for (const id of [...this.pending.keys()]) {
      const p = this.take(id);
      if (p) p.fail(new ClientClosedError({ type: p.type }));
    }
    this.queue.clear();
    for (const sub of this.subs.values()) {
      sub._rejectWaiters(new ClientClosedError({ type: 'subscribe' }));
      if (sub.state === 'subscribed') sub._setState('subscribing');
    }
    this.emit('closed');
  }

  /**
   * The subscription object of `channel` (made on first use; `options` given
   * later replace the earlier ones). It does nothing until `subscribe()`.
   */
  channel(channel: string, options?: SubscriptionOptions): Subscription {
    let sub = this.subs.get(channel);
    if (!sub) {
      sub = new Subscription(this, channel, options ?? {});
      this.subs.set(channel, sub);
    } else if (options) {
      sub.options = options;
    }
    return sub;
  }

  /** `channel(name, options).subscribe()`. */
  subscribe(channel: string, options?: SubscriptionOptions): Promise<SubscribeAck> {
    return this.channel(channel, options).subscribe();
  }

  /** Unsubscribes `channel`; resolves with the ack, or `null` when not subscribed or no connection is open. */
  unsubscribe(channel: string): Promise<Ack | null> {
    const sub = this.subs.get(channel);
    return sub ? sub.unsubscribe() : Promise.resolve(null);
  }

  /** Every subscription object made with {@link PavilionClient.channel}. */
  subscriptions(): Subscription[] {
    return [...this.subs.values()];
  }

  /**
   * Sends a request with an `id` and resolves with the gateway's `ack`
   * payload; rejects with a {@link PavilionError} (the protocol code, or
   * `'queue_full'`, `'too_large'`, `'timeout'`, `'disconnected'`, `'closed'`). While
   * disconnected the request waits in the bounded queue.
   */
  request(type: string, payload?: Record<string, unknown>, options: RequestOptions = {}): Promise<Ack> {
    if (this._state === 'closed') return Promise.reject(new ClientClosedError({ type }));
    const id = this.nextId();
    const ms = options.timeoutMs ?? this.opts.requestTimeoutMs ?? 10000;
    return new Promise<Ack>((resolve, reject) => {
      const msg: QueuedMessage = { text: envelope(type, id, payload) };
      const tooLarge = this.sizeError(msg.text, { type, id });
      if (tooLarge) {
        reject(tooLarge);
        return;
      }
      // tracked first: pushApp() may send it at once
      this.track(id, type, msg, ms, { ack: (a) => resolve(a), fail: (e) => reject(e) });
      try {
        this.queue.pushApp(msg, { type, id }, this.appSender());
      } catch (e) {
        this.take(id);
        reject(e);
        return;
      }
      this.flush();
    });
  }

  /**
   * Sends a message without an `id` (no answer unless it fails; failures come
   * as `error` events). Queued while disconnected; throws
   * {@link QueueFullError} when the queue is full, {@link MessageTooLargeError}
   * over `maxMessageBytes`, {@link ClientClosedError} after close().
   */
  send(type: string, payload?: Record<string, unknown>): void {
    if (this._state === 'closed') throw new ClientClosedError({ type });
    const text = envelope(type, undefined, payload);
    const tooLarge = this.sizeError(text, { type });
    if (tooLarge) throw tooLarge;
    this.queue.pushApp({ text }, { type }, this.appSender());
    this.flush();
  }

  /** Sets the user's presence (`online`, `offline`, `busy`, `away`); re-sent after a reconnect. */
  presence(status: PresenceStatus, options?: RequestOptions): Promise<Ack> {
    this.presenceStatus = status;
    return this.request('presence', { status }, options);
  }

  /** Marks a notification read (the user's other connections get `notification_read`). */
  markRead(notificationId: string, options?: RequestOptions): Promise<Ack> {
    return this.request('mark_read', { notificationId }, options);
  }

  /**
   * Renews the token now: asks the getter for one and sends `auth`. Resolves
   * when the gateway acked it (at once when not connected: the next
   * connection uses a fresh token anyway).
   */
  async renewToken(): Promise<void> {
    if (this._state !== 'connected') return;
    const gen = this.generation;
    let token: string;
    try {
      token = await this.getToken();
    } catch (err) {
      throw this.tokenError(err);
    }
    if (gen !== this.generation) return;
    await this.sendAuth(token);
  }

  // ------------------------------------------------------------------ subscriptions (host side)

  /** @internal */
  subscribeChannel(sub: Subscription, timeoutMs?: number): Promise<SubscribeAck> {
    if (this._state === 'closed') return Promise.reject(new ClientClosedError({ type: 'subscribe' }));
    if (sub.state === 'unsubscribed') {
      // one the gateway would refuse by closing: not made wanted (every connection would end so)
      const tooLarge = this.sizeError(envelope('subscribe', LONGEST_ID, this.subscribePayload(sub).payload),
        { type: 'subscribe' });
      if (tooLarge) return Promise.reject(tooLarge);
    }
    const wait = sub._wait(timeoutMs ?? this.opts.requestTimeoutMs ?? 10000);
    if (sub.state === 'unsubscribed') {
      sub._setState('subscribing');
      // once the socket is open, resubscribe() has run for this connection
      if (this.isOpen) {
        this.sendSubscribe(sub);
        this.flush();
      }
    }
    return wait;
  }

  /** @internal */
  unsubscribeChannel(sub: Subscription): Promise<Ack | null> {
    if (sub.state === 'unsubscribed') return Promise.resolve(null);
    sub._forget();
    sub._rejectWaiters(new PavilionError('unsubscribed', `${sub.channel}: unsubscribed`, { type: 'subscribe' }));
    if (sub.canonical !== undefined) this.byCanonical.delete(sub.canonical);
    sub._setState('unsubscribed');
    // the socket is open: resubscribe() may have sent this channel's subscribe already
    if (!this.isOpen) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.controlRequest('unsubscribe', { channel: sub.channel }, {
        ack: (a) => resolve(a),
        fail: (e) => reject(e),
      });
      this.flush();
    });
  }

  /** Whether the socket is open: control requests go out now (before connected too). */
  private get isOpen(): boolean {
    return this.transport !== undefined && this.transport.isOpen;
  }

  /** The payload of `sub`'s next subscribe, and the position it asks to recover from. */
  private subscribePayload(sub: Subscription): { payload: Record<string, unknown>; asked?: StreamPosition } {
    const req = sub._request();
    const payload: Record<string, unknown> = { channel: sub.channel };
    if (req.parameters) payload.parameters = req.parameters;
    return req.recover ? { payload, asked: req.recover } : { payload };
  }

  private sendSubscribe(sub: Subscription): void {
    const { payload, asked } = this.subscribePayload(sub);
    this.controlRequest('subscribe', payload, {
      ack: (a) => {
        this.subscribeRetries.delete(sub);
        if (sub.state !== 'unsubscribed' && typeof a.channel === 'string') this.byCanonical.set(a.channel, sub);
        const lost = sub._acked(a as SubscribeAck, asked);
        if (lost) this.emit('unrecovered', { ...lost, subscription: sub });
      },
      fail: (e) => {
        // close(): still wanted, sent again on the next connection
        if (e.code === 'closed') sub._rejectWaiters(e);
        else if (e.code === 'timeout' || e.code === ErrorCode.RATE_LIMITED || e.code === ErrorCode.INTERNAL) {
          // not a refusal: not done now (a rate-limited gateway drops all but one
          // message a second unanswered); still wanted, asked again on this connection
          sub._rejectWaiters(e);
          this.retrySubscribe(sub);
        } else if (sub.state !== 'unsubscribed') {
          if (sub.canonical !== undefined) this.byCanonical.delete(sub.canonical);
          sub._failed(e);
        }
      },
      lost: () => undefined, // re-sent by resubscribe() on the next connection
    });
  }

  /**
   * Sends `sub`'s subscribe again on this connection after 1 s, 2 s, 4 s, …
   * (at most maxReconnectDelayMs): the gateway answered 1005 or 2000, or not at all.
   */
  private retrySubscribe(sub: Subscription): void {
    if (sub.state !== 'subscribing') return;
    const n = this.subscribeRetries.get(sub) ?? 0;
    this.subscribeRetries.set(sub, n + 1);
    const delay = Math.min(1000 * 2 ** Math.min(n, 5), this.opts.maxReconnectDelayMs ?? 30000);
    const gen = this.generation;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      if (gen !== this.generation || sub.state !== 'subscribing' || !this.isOpen) return;
      this.sendSubscribe(sub);
      this.flush();
    }, delay);
    this.retryTimers.add(timer);
  }

  /** No more retries on this connection: the next one re-subscribes everything anyway. */
  private stopSubscribeRetries(): void {
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
    this.subscribeRetries.clear();
  }

  // ------------------------------------------------------------------ connection life

  private attempt(): void {
    this.clearTimer('reconnect');
    const gen = ++this.generation;
    this.setState('connecting');
    this.emit('connecting', { attempt: this.backoff.attempts });
    const given = this.nextToken;
    this.nextToken = undefined;
    const tokenP = given !== undefined ? Promise.resolve(given) : this.getToken();
    tokenP.then((token) => {
      if (gen !== this.generation) return;
      this.setToken(token);
      this.open(gen, token);
    }, (err: unknown) => {
      if (gen !== this.generation) return;
      this.emit('error', this.tokenError(err));
      this.lost(gen, CloseCode.ABNORMAL, 'token getter failed');
    });
  }

  private open(gen: number, token: string): void {
    let url: string;
    try {
      url = withToken(this.opts.url, token);
    } catch (err) {
      this.emit('error', new PavilionError('invalid_message', `bad url: ${String(err)}`));
      this.lost(gen, CloseCode.ABNORMAL, 'bad url');
      return;
    }
    const transportOptions: Parameters<typeof Transport.open>[1] = {};
    if (this.opts.WebSocket) transportOptions.WebSocket = this.opts.WebSocket;
    if (this.opts.wsOptions) transportOptions.wsOptions = this.opts.wsOptions;
    this.transport = Transport.open(url, transportOptions, {
      open: () => this.onOpen(gen),
      message: (text) => this.onMessage(gen, text),
      close: (code, reason) => this.lost(gen, code, reason),
    });
    const ms = this.opts.connectTimeoutMs ?? 10000;
    this.setTimer('connect', ms, () => this.drop(gen, CloseCode.ABNORMAL, `not connected within ${ms} ms`));
  }

  /**
   * The socket is open, but the gateway completes the upgrade even for a bad
   * token (then sends 1001 and closes with 4001). So the connection counts as
   * connected only once a first request is answered: a `heartbeat_ack` with
   * an id, sent ahead of the re-subscriptions. Application messages wait
   * until then, so that none is lost to a connection that is being refused.
   */
  private onOpen(gen: number): void {
    if (gen !== this.generation) return;
    this.queue.newConnection();
    this.lastMessageMs = Date.now();
    this.armDeadTimer(gen);
    this.controlRequest('heartbeat_ack', undefined, {
      ack: () => this.onReady(gen),
      // an error with our id still means an authenticated, served connection
      fail: (e) => { if (typeof e.code === 'number') this.onReady(gen); },
      lost: () => undefined,
    });
    this.resubscribe();
    this.flush();
  }

  private onReady(gen: number): void {
    if (gen !== this.generation || this._state !== 'connecting') return;
    this.clearTimer('connect');
    const reconnected = this.everConnected;
    this.everConnected = true;
    this.setState('connected');
    this.setTimer('stable', this.opts.stableAfterMs ?? 10000, () => this.backoff.reset());
    this.scheduleRenewal(gen);
    this.emit('connected', { reconnected });
    this.flush();
  }

  /** The connection is gone (closed by the peer, cut, or dropped by us). */
  private lost(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    this.transport = undefined;
    for (const name of ['connect', 'dead', 'stable', 'renew', 'drain'] as const) this.clearTimer(name);
    this.stopSubscribeRetries();
    this.failInFlight();
    for (const sub of this.subs.values()) if (sub.state === 'subscribed') sub._setState('subscribing');
    if (this._state === 'closed') return;
    this.setState('disconnected');
    if (code === CloseCode.AUTH) {
      this.checkAuth(gen, code, reason);
      return;
    }
    let delay = this.backoff.next();
    if (code === CloseCode.RATE_LIMITED) delay = Math.max(delay, this.opts.rateLimitedDelayMs ?? 30000);
    this.scheduleReconnect(code, reason, delay);
  }

  /** Drops a connection we consider dead or stuck, then handles it like a close. */
  private drop(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    this.transport?.abandon(4000, 'connection dead');
    this.lost(gen, code, reason);
  }

  private scheduleReconnect(code: number, reason: string, delay: number): void {
    this.emit('disconnected', { code, reason, reconnect: true, delayMs: delay });
    this.setTimer('reconnect', delay, () => this.attempt());
  }

  /**
   * Closed with 4001: reconnect only with a token other than the rejected one.
   */
  private checkAuth(gen: number, code: number, reason: string): void {
    const rejected = this.token;
    const giveUp = (error?: unknown) => {
      this.emit('disconnected', { code, reason, reconnect: false });
      const info: AuthFailedInfo = { code, reason };
      if (error !== undefined) info.error = error;
      this.emit('authFailed', info);
    };
    this.getToken().then((token) => {
      if (gen !== this.generation || this._state !== 'disconnected') return;
      if (token === rejected) {
        giveUp();
        return;
      }
      this.nextToken = token;
      this.scheduleReconnect(code, reason, this.backoff.next());
    }, (err: unknown) => {
      if (gen !== this.generation || this._state !== 'disconnected') return;
      giveUp(err);
    });
  }

  private failInFlight(): void {
    for (const [id, p] of [...this.pending]) {
      if (!p.sent && !p.control) continue;
      this.take(id);
      if (p.lost) p.lost();
      else p.fail(new ConnectionLostError({ type: p.type, id }));
    }
  }

  /** Dead-connection check: no message at all for heartbeat interval + grace. */
  private armDeadTimer(gen: number): void {
    const limit = (this.opts.heartbeatIntervalMs ?? 30000) + (this.opts.heartbeatGraceMs ?? 10000);
    const wait = Math.max(1, this.lastMessageMs + limit - Date.now());
    this.setTimer('dead', wait, () => {
      if (gen !== this.generation) return;
      if (Date.now() - this.lastMessageMs >= limit) {
        this.drop(gen, CloseCode.ABNORMAL, `no message from the gateway within ${limit} ms`);
      } else {
        this.armDeadTimer(gen);
      }
    });
  }

  // ------------------------------------------------------------------ what arrives

  private onMessage(gen: number, text: string): void {
    if (gen !== this.generation) return;
    this.lastMessageMs = Date.now();
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      this.emit('error', new PavilionError('invalid_message', 'a message from the gateway is not JSON'));
      return;
    }
    if (!isObject(msg) || typeof msg.type !== 'string') {
      this.emit('error', new PavilionError('invalid_message', 'a message from the gateway has no type'));
      return;
    }
    const m = msg as unknown as ServerMessage;
    // a history publication keeps the time it was published (a replay can be hours old)
    if (typeof m.timestamp === 'string' && m.offset === undefined) {
      const t = Date.parse(m.timestamp);
      if (!Number.isNaN(t)) this.clockOffsetMs = t - Date.now();
    }
    this.emit('message', m);
    this.route(m);
  }

  private route(m: ServerMessage): void {
    switch (m.type) {
      case 'heartbeat':
        this.queue.pushControl({ text: '{"type":"heartbeat_ack"}' });
        this.flush();
        return;
      case 'ack':
        this.onAck(m);
        return;
      case 'error':
        this.onError(m);
        return;
      case 'notification':
        this.onNotification(m);
        return;
      case 'notification_read':
        if (isObject(m.payload)) this.emit('notification_read', m.payload as unknown as NotificationRead, m);
        return;
      case 'replay_incomplete':
        this.onReplayIncomplete(m);
        return;
      case 'resync':
        this.emit('resync', m);
        return;
      case 'status_update':
        if (isObject(m.payload)) this.emit('status_update', m.payload as unknown as StatusUpdate, m);
        break;
    }
    if (typeof m.channel === 'string') this.onPublication(m);
  }

  private onAck(m: ServerMessage): void {
    const p = typeof m.id === 'string' ? this.take(m.id) : undefined;
    if (!p) return;
    p.ack((isObject(m.payload) ? m.payload : { for: p.type }) as Ack, m);
  }

  private onError(m: ServerMessage): void {
    const payload = isObject(m.payload) ? m.payload : {};
    const code = typeof payload.code === 'number' ? payload.code : 2000;
    const text = typeof payload.message === 'string' ? payload.message : 'error';
    const p = typeof m.id === 'string' ? this.take(m.id) : undefined;
    if (p) {
      p.fail(new PavilionError(code, text, { type: p.type, id: m.id }));
      return;
    }
    const err = new PavilionError(code, text, typeof m.id === 'string' ? { id: m.id } : undefined);
    // only the error of a revoked subscription names a channel
    if (m.id === undefined && typeof payload.channel === 'string') {
      this.onRevoked(payload.channel, err);
      return;
    }
    this.emit('error', err);
  }

  /** The gateway dropped `channel`: the subscription is no longer wanted, as after a refused subscribe. */
  private onRevoked(channel: string, err: PavilionError): void {
    const sub = this.byCanonical.get(channel) ?? this.subs.get(channel);
    const info: RevokedInfo = { channel, error: err };
    if (sub) {
      info.subscription = sub;
      this.byCanonical.delete(channel);
      this.subscribeRetries.delete(sub);
      if (sub.state !== 'unsubscribed') sub._failed(err);
    }
    this.emit('revoked', info);
  }

  private settleFailure(id: string, err: PavilionError): void {
    this.take(id)?.fail(err);
  }

  /** Takes a request out of the pending ones and stops its timeout: it is being settled. */
  private take(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    return p;
  }

  private onNotification(m: ServerMessage): void {
    if (!isObject(m.payload)) return;
    const n = m.payload as unknown as Notification;
    if (typeof n.id === 'string') {
      if (this.seen.has(n.id)) return;
      this.seen.add(n.id);
      const max = this.opts.seenNotifications ?? 1000;
      for (const old of this.seen) {
        if (this.seen.size <= max) break;
        this.seen.delete(old);
      }
    }
    if (typeof n.createdAt === 'string') {
      const t = Date.parse(n.createdAt);
      if (!Number.isNaN(t) && (this.userSinceMs === undefined || t > this.userSinceMs)) this.userSinceMs = t;
    }
    this.emit('notification', n, m);
  }

  /**
   * The gateway sent what fitted of a `since` replay: ask for the rest from
   * where it says, once per such message. What comes again (one of that very
   * millisecond) is dropped by id.
   */
  private onReplayIncomplete(m: ServerMessage): void {
    const since = isObject(m.payload) ? m.payload.since : undefined;
    if (typeof since !== 'string' || typeof m.channel !== 'string' || !m.channel.startsWith('user:')) return;
    this.controlRequest('subscribe', { channel: 'user', parameters: { since } }, {
      ack: () => undefined,
      fail: (e) => {
        if (e.code !== 'closed') this.emit('error', e);
      },
      lost: () => undefined, // the next connection asks with since again
    });
    this.flush();
  }

  private onPublication(m: ServerMessage): void {
    const channel = m.channel as string;
    const sub = this.byCanonical.get(channel) ?? this.subs.get(channel);
    let pub: Publication | null;
    if (sub) {
      pub = sub._accept(m);
      if (!pub) return; // a duplicate
      sub.emit('publication', pub);
    } else {
      pub = toPublication(m, channel);
    }
    this.emit('publication', pub);
  }

  // ------------------------------------------------------------------ what goes out

  /**
   * A fresh connection: `user` with `since` (the notifications missed), every
   * wanted channel (with `recover` where its history position is known), the
   * presence the user set.
   */
  private resubscribe(): void {
    if (this.opts.replayNotifications !== false) {
      const payload: Record<string, unknown> = { channel: 'user' };
      if (this.userSinceMs !== undefined) {
        const since = new Date(this.userSinceMs - (this.opts.sinceOverlapMs ?? 1000)).toISOString();
        payload.parameters = { since };
      }
      this.controlRequest('subscribe', payload, {
        ack: (_a, msg) => {
          // nothing seen yet: what is created from now on is what a later reconnect must ask for
          if (this.userSinceMs === undefined && typeof msg.timestamp === 'string') {
            const t = Date.parse(msg.timestamp);
            if (!Number.isNaN(t)) this.userSinceMs = t;
          }
        },
        fail: () => undefined, // a gateway without the subscription plugin: nothing to replay
        lost: () => undefined,
      });
    }
    for (const sub of this.subs.values()) if (sub.state !== 'unsubscribed') this.sendSubscribe(sub);
    if (this.presenceStatus !== undefined && this.presenceStatus !== 'online') {
      this.controlRequest('presence', { status: this.presenceStatus }, {
        ack: () => undefined,
        fail: (e) => {
          if (e.code !== 'closed') this.emit('error', e);
        },
        lost: () => undefined,
      });
    }
  }

  /** A request of the client's own: ahead of application messages, not bounded, void on disconnect. */
  private controlRequest(type: string, payload: Record<string, unknown> | undefined,
                         handlers: Omit<Pending, 'type' | 'sent' | 'timer' | 'control'>): void {
    const id = this.nextId();
    const msg: QueuedMessage = { text: envelope(type, id, payload) };
    const tooLarge = this.sizeError(msg.text, { type, id });
    if (tooLarge) {
      // never sent (the gateway would close the connection); failed as a refusal, not re-entrantly
      queueMicrotask(() => handlers.fail(tooLarge));
      return;
    }
    this.track(id, type, msg, this.opts.requestTimeoutMs ?? 10000, { ...handlers, control: true });
    this.queue.pushControl(msg);
  }

  /** A {@link MessageTooLargeError} when `text` is over `maxMessageBytes`, else undefined. */
  private sizeError(text: string, request: { type: string; id?: string }): MessageTooLargeError | undefined {
    const max = this.opts.maxMessageBytes ?? 16384;
    if (text.length * 3 <= max) return undefined; // no UTF-16 code unit takes more than 3 bytes
    const bytes = utf8Length(text);
    return bytes > max ? new MessageTooLargeError(bytes, max, request) : undefined;
  }

  /**
   * Request `id` (queued as `msg`) waits for its answer: it counts as sent
   * once `msg` goes out; after `ms` it leaves the application lane if it is
   * still there and fails with a timeout.
   */
  private track(id: string, type: string, msg: QueuedMessage, ms: number,
                handlers: Omit<Pending, 'type' | 'sent' | 'timer'>): void {
    const p: Pending = { type, sent: false, ...handlers };
    msg.sent = () => { p.sent = true; };
    p.timer = timeoutAfter(ms, () => {
      this.queue.remove(msg);
      this.settleFailure(id, new RequestTimeoutError(ms, { type, id }));
    });
    this.pending.set(id, p);
  }

  /** Sends an application message now: connected, socket open (else undefined: it waits in the queue). */
  private appSender(): ((text: string) => boolean) | undefined {
    const t = this.transport;
    if (this._state !== 'connected' || !t || !t.isOpen) return undefined;
    return (text) => t.send(text);
  }

  /** Sends what the queue lets go: control messages once the socket is open, application ones once connected. */
  private flush(): void {
    const t = this.transport;
    if (!t || !t.isOpen) return;
    this.clearTimer('drain');
    const wait = this.queue.drain((text) => t.send(text), this._state === 'connected');
    if (wait > 0) this.setTimer('drain', wait, () => this.flush());
  }

  // ------------------------------------------------------------------ tokens

  private getToken(): Promise<string> {
    const source = this.opts.token;
    return Promise.resolve()
      .then(() => (typeof source === 'function' ? source() : source))
      .then((token) => {
        if (typeof token !== 'string' || token === '') throw new TypeError('the token getter gave no token');
        return token;
      });
  }

  private tokenError(err: unknown): PavilionError {
    return err instanceof PavilionError ? err : new PavilionError('token', `token getter failed: ${String(err)}`);
  }

  private setToken(token: string): void {
    this.token = token;
    this.claims = decodeToken(token);
    this.tokenObtainedMs = this.serverNow();
  }

  private serverNow(): number {
    return Date.now() + this.clockOffsetMs;
  }

  private scheduleRenewal(gen: number): void {
    this.clearTimer('renew');
    if (typeof this.opts.token !== 'function' || this.token === undefined) return;
    const when = renewalTime(this.claims, this.tokenObtainedMs, this.opts);
    if (when === null) return;
    const wait = Math.max(1000, when - this.serverNow());
    // a longer timer fires at once: wait as long as one can, then look again
    if (wait > MAX_TIMER_MS) this.setTimer('renew', MAX_TIMER_MS, () => this.scheduleRenewal(gen));
    else this.setTimer('renew', wait, () => this.renew(gen));
  }

  private renew(gen: number): void {
    if (gen !== this.generation || this._state !== 'connected') return;
    this.getToken().then((token) => {
      if (gen !== this.generation || this._state !== 'connected') return;
      if (token === this.token) {
        this.retryRenewal(gen); // the getter has nothing newer yet
        return;
      }
      this.sendAuth(token).catch((err: PavilionError) => {
        if (gen !== this.generation) return;
        this.emit('error', err);
        this.retryRenewal(gen);
      });
    }, (err: unknown) => {
      if (gen !== this.generation) return;
      this.emit('error', this.tokenError(err));
      this.retryRenewal(gen);
    });
  }

  private retryRenewal(gen: number): void {
    const exp = this.claims?.exp;
    if (typeof exp !== 'number') return;
    const left = exp * 1000 - this.serverNow();
    const delay = left > 0 ? Math.min(Math.max(left / 2, 1000), 30000) : 5000;
    this.setTimer('renew', delay, () => this.renew(gen));
  }

  private sendAuth(token: string): Promise<void> {
    const gen = this.generation;
    return new Promise((resolve, reject) => {
      this.controlRequest('auth', { token }, {
        ack: () => {
          if (gen === this.generation) {
            this.setToken(token);
            const exp = this.claims?.exp;
            this.emit('tokenRenewed', typeof exp === 'number' ? { exp } : {});
            this.scheduleRenewal(gen);
          }
          resolve();
        },
        fail: (e) => reject(e),
        lost: () => resolve(), // the next connection starts with a fresh token anyway
      });
      this.flush();
    });
  }

  // ------------------------------------------------------------------ helpers

  private nextId(): string {
    this.seq = (this.seq + 1) % Number.MAX_SAFE_INTEGER;
    return String(this.seq);
  }

  private setState(state: ConnectionState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit('state', state, previous);
  }

  private setTimer(name: TimerName, ms: number, fn: () => void): void {
    this.clearTimer(name);
    this.timers.set(name, setTimeout(() => {
      this.timers.delete(name);
      fn();
    }, ms));
  }

  private clearTimer(name: TimerName): void {
    const t = this.timers.get(name);
    if (t !== undefined) {
      clearTimeout(t);
      this.timers.delete(name);
    }
  }
}
