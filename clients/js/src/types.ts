/**
 * Shapes of the protocol's messages, as the gateway sends them.
 * @module
 */

/** Any message from the gateway. */
export interface ServerMessage {
  type: string;
  /** RFC 3339 UTC with milliseconds. */
  timestamp?: string;
  payload?: unknown;
  /** The request id this message answers (`ack` and `error`). */
  id?: string;
  /** The channel the message came through (extension). */
  channel?: string;
  /** The message's position in the channel's history (history channels only). */
  offset?: number;
}

/** `notification` payload (the spec's shape; extra members pass through). */
export interface Notification {
  id: string;
  type: string;
  content: string;
  isRead: boolean;
  createdAt: string;
  sender?: { id: string; username?: string; profilePhoto?: string };
  reference?: { type: string; id: string };
  [key: string]: unknown;
}

/** `notification_read` payload: another connection of the user marked it read. */
export interface NotificationRead {
  notificationId: string;
}

/** Presence states. */
export type PresenceStatus = 'online' | 'offline' | 'busy' | 'away';

/** `status_update` payload. */
export interface StatusUpdate {
  userId: string;
  status: PresenceStatus | string;
  lastActive: string;
}

/** `chat_message` payload. */
export interface ChatMessage {
  id: string;
  roomId: string;
  sender: { id: string; username?: string; profilePhoto?: string };
  content: string;
  createdAt: string;
  attachments?: unknown[];
  [key: string]: unknown;
}

/** The payload of an `ack`: `for` is the request's type; other members depend on it. */
export interface Ack {
  for: string;
  [key: string]: unknown;
}

/** The ack of `subscribe`. */
export interface SubscribeAck extends Ack {
  /** The canonical channel name (`user` → `user:<id>`). */
  channel: string;
  /** History channels: the newest offset. */
  offset?: number;
  /** History channels: the history's epoch. */
  epoch?: string;
  /** When the subscribe asked to recover: whether every missed publication follows. */
  recovered?: boolean;
}

/** A message delivered through a channel. */
export interface Publication<P = unknown> {
  /** Canonical channel name, e.g. `chat:lobby`. */
  channel: string;
  /** The message type, e.g. `chat_message`. */
  type: string;
  payload: P;
  /** Position in the channel's history (history channels only). */
  offset?: number;
  timestamp?: string;
}
