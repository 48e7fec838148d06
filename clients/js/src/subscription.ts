/**
 * One channel subscription: its state, its position in the channel's history
 * (for recovery after a reconnect), and its events.
 * @module
 */
import { Emitter } from './emitter.js';
import { PavilionError } from './errors.js';
import { timeoutAfter } from './timeout.js';
import type { Ack, Publication, ServerMessage, SubscribeAck } from './types.js';

/** `unsubscribed` → `subscribing` → `subscribed`; back to `subscribing` while reconnecting. */
export type SubscriptionState = 'unsubscribed' | 'subscribing' | 'subscribed';

/** Options of a subscription, sent as `payload.parameters`. */
export interface SubscriptionOptions {
  /** Extra parameters, passed through (the client adds `recover`; `since` is for `user`). */
  parameters?: Record<string, unknown>;
  /** Ask for a `status_update` of every user in the channel after subscribing (`parameters.presence`). */
  presence?: boolean;
  /** A subscription token for a channel the connection's JWT does not grant (`parameters.token`). */
  token?: string;
}

/** A position in a channel's history. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** What {@link SubscriptionEvents.unrecovered} reports. */
export interface UnrecoveredInfo {
  /** The channel (canonical name). */
  channel: string;
  /** Where the client asked to resume. */
  previous: StreamPosition;
  /** The channel's position now (history channels), from which delivery continues. */
  current?: Partial<StreamPosition>;
}

/** Events of a {@link Subscription}. */
export interface SubscriptionEvents {
  /** A message delivered through the channel (duplicates by offset dropped); notifications come as the client's own events. */
  publication: (publication: Publication) => void;
  /** The gateway acked the subscription (also after every reconnect). */
  subscribed: (ack: SubscribeAck) => void;
  /** {@link Subscription.unsubscribe} was called, or the gateway refused or revoked the subscription. */
  unsubscribed: () => void;
  /**
   * After a reconnect, the gateway could not replay what was missed (history
   * expired, epoch changed, or the channel keeps no history): refetch the
   * channel's state from your backend.
   */
  unrecovered: (info: UnrecoveredInfo) => void;
  /**
   * The gateway refused the subscription (1003, 1004, …), or revoked it at a
   * token renewal (1004 `subscription revoked`); it is now `unsubscribed`.
   */
  error: (error: PavilionError) => void;
  /** Every state change. */
  state: (state: SubscriptionState, previous: SubscriptionState) => void;
}

/** @internal What a subscription needs from its client. */
export interface SubscriptionHost {
  subscribeChannel(sub: Subscription, timeoutMs?: number): Promise<SubscribeAck>;
  unsubscribeChannel(sub: Subscription): Promise<Ack | null>;
}

/** @internal A message that came through `channel`, as a {@link Publication}. */
export function toPublication(msg: ServerMessage, channel: string): Publication {
  const pub: Publication = { channel, type: msg.type, payload: msg.payload };
  if (typeof msg.offset === 'number') pub.offset = msg.offset;
  if (typeof msg.timestamp === 'string') pub.timestamp = msg.timestamp;
  return pub;
}

interface Waiter {
  resolve: (ack: SubscribeAck) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A channel of the client. Make one with `client.channel(name)`, listen to it,
 * then `subscribe()`. The client re-subscribes it after every reconnect until
 * `unsubscribe()`.
 */
export class Subscription extends Emitter<SubscriptionEvents> {
  /** The channel name as given (`user`, `zone:lobby`, `chat:42`, …). */
  readonly channel: string;
  private _state: SubscriptionState = 'unsubscribed';
  private _canonical: string | undefined;
  private _offset: number | undefined;
  private _epoch: string | undefined;
  private _lastAck: SubscribeAck | undefined;
  private waiters: Waiter[] = [];

  /** @internal */
  constructor(private readonly host: SubscriptionHost, channel: string,
              public options: SubscriptionOptions = {}) {
    super();
    this.channel = channel;
  }

  /** The current state. */
  get state(): SubscriptionState {
    return this._state;
  }

  /** The canonical channel name from the gateway's ack (`user` → `user:<id>`), once acked. */
  get canonical(): string | undefined {
    return this._canonical;
  }

  /** The newest position seen in the channel's history (history channels only). */
  get position(): StreamPosition | undefined {
    return this._offset !== undefined && this._epoch !== undefined
      ? { offset: this._offset, epoch: this._epoch } : undefined;
  }

  /**
   * Subscribes (now, or as soon as the client is connected). Resolves with
   * the gateway's ack; rejects with a {@link PavilionError} carrying the
   * protocol code (1003, 1004, …) or `'timeout'`. After a timeout, 1005 or
   * 2000 the subscription stays wanted: it is asked again on this connection
   * after a growing delay, and on every next one.
   */
  subscribe(timeoutMs?: number): Promise<SubscribeAck> {
    return this.host.subscribeChannel(this, timeoutMs);
  }

  /**
   * Unsubscribes. Resolves with the gateway's ack, or `null` when there was
   * no connection to tell.
   */
  unsubscribe(): Promise<Ack | null> {
    return this.host.unsubscribeChannel(this);
  }

  /** @internal */
  _setState(state: SubscriptionState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit('state', state, previous);
    if (state === 'unsubscribed') this.emit('unsubscribed');
  }

  /** @internal A promise settled by the next ack (or failure) of this subscription. */
  _wait(timeoutMs: number): Promise<SubscribeAck> {
    if (this._state === 'subscribed' && this._lastAck) return Promise.resolve(this._lastAck);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: timeoutAfter(timeoutMs, () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new PavilionError('timeout', `subscribe ${this.channel}: no ack within ${timeoutMs} ms`,
            { type: 'subscribe' }));
        }),
      };
      this.waiters.push(waiter);
    });
  }

  /** @internal Rejects every pending `subscribe()`. */
  _rejectWaiters(err: Error): void {
    for (const w of this.takeWaiters()) w.reject(err);
  }

  private resolveWaiters(ack: SubscribeAck): void {
    for (const w of this.takeWaiters()) w.resolve(ack);
  }

  /** Every pending `subscribe()`, with its timeout stopped: they are being settled. */
  private takeWaiters(): Waiter[] {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) clearTimeout(w.timer);
    return ws;
  }

  /**
   * @internal The parameters of the next `subscribe`, with `recover` when the
   * channel's history position is known.
   */
  _request(): { parameters?: Record<string, unknown>; recover?: StreamPosition } {
    const p: Record<string, unknown> = { ...(this.options.parameters ?? {}) };
    if (this.options.presence !== undefined) p.presence = this.options.presence;
    if (this.options.token !== undefined) p.token = this.options.token;
    const recover = this.position;
    if (recover) p.recover = { offset: recover.offset, epoch: recover.epoch };
    const out: { parameters?: Record<string, unknown>; recover?: StreamPosition } = {};
    if (Object.keys(p).length > 0) out.parameters = p;
    if (recover) out.recover = recover;
    return out;
  }

  /**
   * @internal The gateway acked a `subscribe`. `asked` is the position sent
   * as `recover`. Returns what to report as unrecovered, if anything.
   */
  _acked(ack: SubscribeAck, asked: StreamPosition | undefined): UnrecoveredInfo | undefined {
    if (this._state === 'unsubscribed') {
      this.resolveWaiters(ack);
      return undefined;
    }
    if (typeof ack.channel === 'string') this._canonical = ack.channel;
    const offset = typeof ack.offset === 'number' ? ack.offset : undefined;
    const epoch = typeof ack.epoch === 'string' ? ack.epoch : undefined;
    let lost: UnrecoveredInfo | undefined;
    if (asked && ack.recovered === true) {
      // the missed publications follow and move the offset on; keep ours
      this._epoch = epoch ?? asked.epoch;
    } else {
      if (asked) {
        lost = { channel: this._canonical ?? this.channel, previous: asked };
        if (offset !== undefined || epoch !== undefined) {
          lost.current = {};
          if (offset !== undefined) lost.current.offset = offset;
          if (epoch !== undefined) lost.current.epoch = epoch;
        }
      }
      // same epoch: never move back (a publication may have come before the ack)
      const sameEpoch = epoch !== undefined && epoch === this._epoch;
      this._offset = sameEpoch && this._offset !== undefined && offset !== undefined
        ? Math.max(this._offset, offset) : offset;
      this._epoch = epoch;
    }
    this._lastAck = ack;
    this._setState('subscribed');
    this.resolveWaiters(ack);
    this.emit('subscribed', ack);
    if (lost) this.emit('unrecovered', lost);
    return lost;
  }

  /** @internal The gateway refused the subscription. */
  _failed(err: PavilionError): void {
    this._forget();
    this._rejectWaiters(err);
    this.emit('error', err);
    this._setState('unsubscribed');
  }

  /** @internal Unsubscribed on purpose: history position and ack are void. */
  _forget(): void {
    this._offset = undefined;
    this._epoch = undefined;
    this._lastAck = undefined;
  }

  /**
   * @internal A message that came through this channel. Returns it as a
   * {@link Publication}, or `null` for a duplicate (an offset not after the
   * newest one seen in this epoch).
   */
  _accept(msg: ServerMessage): Publication | null {
    if (this._state === 'unsubscribed') return null;
    if (typeof msg.offset === 'number') {
      if (this._epoch !== undefined && this._offset !== undefined && msg.offset <= this._offset) return null;
      this._offset = msg.offset;
    }
    return toPublication(msg, msg.channel ?? this.channel);
  }
}
