/**
 * pavilion-gateway-client: the JavaScript/TypeScript client of the
 * pavilion-gateway WebSocket protocol, for browsers and Node.
 *
 * ```ts
 * import { PavilionClient } from 'pavilion-gateway-client';
 * const client = new PavilionClient({ url: 'wss://gw.example/ws', token: getToken });
 * client.on('notification', (n) => console.log(n.content));
 * client.connect();
 * ```
 * @module
 */
export { PavilionClient } from './client.js';
export type {
  AuthFailedInfo, ClientEvents, ClientOptions, ConnectionState, DisconnectInfo, RequestOptions,
  RevokedInfo, TokenGetter,
} from './client.js';
export { Subscription } from './subscription.js';
export type {
  StreamPosition, SubscriptionEvents, SubscriptionOptions, SubscriptionState, UnrecoveredInfo,
} from './subscription.js';
export {
  ClientClosedError, CloseCode, ConnectionLostError, ErrorCode, MessageTooLargeError, PavilionError,
  QueueFullError, RequestTimeoutError,
} from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { Backoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { decodeToken, renewalTime } from './token.js';
export type { RenewalPolicy, TokenClaims } from './token.js';
export type { QueueOptions } from './queue.js';
export type { WebSocketConstructor, WebSocketLike } from './transport.js';
export { Emitter } from './emitter.js';
export type { EventMap } from './emitter.js';
export type {
  Ack, ChatMessage, Notification, NotificationRead, PresenceStatus, Publication, ServerMessage,
  StatusUpdate, SubscribeAck,
} from './types.js';
