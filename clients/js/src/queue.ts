/**
 * The outbound queue: what waits for a connection, and pacing so that the
 * client stays under the gateway's per-connection rate limit (a burst of
 * re-subscriptions after a reconnect must not earn `1005` errors or a 4029
 * close).
 * @module
 */
import { QueueFullError } from './errors.js';

/** A message waiting to be sent. */
export interface QueuedMessage {
  /** The JSON text. */
  text: string;
  /** Called when the message went out. */
  sent?: () => void;
}

/** Options of {@link OutboundQueue}. */
export interface QueueOptions {
  /** Most application messages held (default 100); beyond it {@link QueueFullError}. */
  maxQueue?: number;
  /** Messages per second sent at most (default 9: under the gateway's default 10). */
  messagesPerSecond?: number;
  /** Messages sent at once before pacing starts (default 18: under the gateway's 20). */
  burst?: number;
}

/**
 * Two lanes: `control` (heartbeat answers, token renewal, re-subscriptions:
 * state the client rebuilds on every connection, dropped on disconnect) goes
 * before `app` (what the application sent: bounded, kept across reconnects).
 * A token bucket paces both.
 */
export class OutboundQueue {
  private control: QueuedMessage[] = [];
  private app: QueuedMessage[] = [];
  private tokens: number;
  private refilledAt: number;
  readonly maxQueue: number;
  private readonly rate: number;
  private readonly burst: number;

  constructor(options: QueueOptions = {}, private readonly now: () => number = Date.now) {
    this.maxQueue = Math.max(0, options.maxQueue ?? 100);
    this.rate = options.messagesPerSecond ?? 9;
    this.burst = Math.max(1, options.burst ?? 18);
    this.tokens = this.burst;
    this.refilledAt = this.now();
  }

  /** Application messages waiting. */
  get size(): number {
    return this.app.length;
  }

  /**
   * Queues an application message, or sends it at once through `send` (given
   * when application messages may go now) if nothing waits ahead of it and
   * the pacing allows. Throws {@link QueueFullError} when it would wait
   * behind `maxQueue` others.
   */
  pushApp(msg: QueuedMessage, request?: { type?: string; id?: string },
          send?: (text: string) => boolean): void {
    if (send && this.control.length === 0 && this.app.length === 0) {
      this.refill();
      if (this.tokens >= 1 && send(msg.text)) {
        this.tokens -= 1;
        msg.sent?.();
        return;
      }
    }
    if (this.app.length >= this.maxQueue) throw new QueueFullError(this.maxQueue, request);
    this.app.push(msg);
  }

  /** Queues a control message (ahead of application messages). */
  pushControl(msg: QueuedMessage): void {
    this.control.push(msg);
  }

  /** A new connection: the bucket is full again and old control messages are void. */
  newConnection(): void {
    this.control = [];
    this.tokens = this.burst;
    this.refilledAt = this.now();
  }

  /** Takes an application message out of the queue (a request that timed out unsent). */
  remove(msg: QueuedMessage): boolean {
    const i = this.app.indexOf(msg);
    if (i < 0) return false;
    this.app.splice(i, 1);
    return true;
  }

  /** Empties both lanes (close(): the client fails the requests among them itself). */
  clear(): void {
    this.control = [];
    this.app = [];
  }

  private refill(): void {
    if (!Number.isFinite(this.rate) || this.rate <= 0) {
      this.tokens = Infinity;
      return;
    }
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.refilledAt) * this.rate) / 1000);
    this.refilledAt = t;
  }

  /**
   * Sends what the bucket allows through `send` (which returns false when the
   * socket cannot take it); application messages only when `appToo`. Returns the ms until the next message may go, or 0
   * when nothing is left (or `send` refused).
   */
  drain(send: (text: string) => boolean, appToo = true): number {
    this.refill();
    for (;;) {
      const lane = this.control.length > 0 || !appToo ? this.control : this.app;
      const msg = lane[0];
      if (!msg) return 0;
      if (this.tokens < 1) return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
      if (!send(msg.text)) return 0;
      lane.shift();
      this.tokens -= 1;
      msg.sent?.();
    }
  }
}
