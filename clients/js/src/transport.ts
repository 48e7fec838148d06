/**
 * One WebSocket connection, reduced to what the client needs: open, text
 * messages in, text out, one close notification. Works over the browser's
 * WebSocket and the `ws` package alike.
 * @module
 */
import { loadWebSocket } from '#websocket';

/** The part of the WebSocket API the client uses (browser and `ws` alike). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** `ws` only: drop the socket at once, without a closing handshake. */
  terminate?(): void;
}

/** A WebSocket constructor: the browser's, `ws`'s, or one of your own. */
export type WebSocketConstructor =
  new (url: string, protocols?: string | string[], options?: unknown) => WebSocketLike;

/** What a {@link Transport} reports. Each is called on the event loop, never re-entrantly. */
export interface TransportHandlers {
  open(): void;
  message(text: string): void;
  /** Called once, unless the transport was {@link Transport.abandon abandoned}. */
  close(code: number, reason: string): void;
}

/** How to make the socket. */
export interface TransportOptions {
  /** A WebSocket constructor to use instead of the runtime's. */
  WebSocket?: WebSocketConstructor;
  /** Node (`ws`) only: options for `ws`'s constructor, e.g. `{ ca }` or `{ rejectUnauthorized: false }`. */
  wsOptions?: Record<string, unknown>;
}

const OPEN = 1;

/** One WebSocket connection. */
export class Transport {
  private socket: WebSocketLike | undefined;
  private finished = false;

  private constructor(private readonly handlers: TransportHandlers) {}

  /**
   * Starts connecting to `url`. Failures (including a constructor that throws)
   * come back as `handlers.close(1006, why)`.
   */
  static open(url: string, options: TransportOptions, handlers: TransportHandlers): Transport {
    const t = new Transport(handlers);
    t.start(url, options).catch((err: unknown) => t.finish(1006, String((err as Error)?.message ?? err)));
    return t;
  }

  private async start(url: string, options: TransportOptions): Promise<void> {
    const Ctor = options.WebSocket ?? (await loadWebSocket(options.wsOptions !== undefined));
    if (this.finished) return;
    const socket = options.wsOptions !== undefined
      ? new Ctor(url, undefined, options.wsOptions) : new Ctor(url);
    this.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      if (!this.finished) this.handlers.open();
    });
    socket.addEventListener('message', (ev: { data: unknown }) => {
      if (!this.finished && typeof ev.data === 'string') this.handlers.message(ev.data);
    });
    socket.addEventListener('close', (ev: { code?: number; reason?: string }) => {
      this.finish(ev.code ?? 1006, ev.reason ?? '');
    });
    // An 'error' before 'open' means the opening handshake failed: browsers and
    // `ws` follow it with 'close', but Node's built-in WebSocket (undici 6, Node
    // 20 and 22) fires only the 'error' and stays CONNECTING, so the attempt
    // ends here. After 'open', 'close' follows and carries the code. Listening
    // also keeps `ws` from throwing.
    socket.addEventListener('error', (ev: { message?: unknown }) => {
      if (opened) return;
      const why = typeof ev?.message === 'string' && ev.message !== '' ? ev.message : 'handshake failed';
      this.finish(1006, why);
    });
  }

  private finish(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.handlers.close(code, reason);
  }

  /** Whether the socket is open (messages can be sent). */
  get isOpen(): boolean {
    return !this.finished && this.socket?.readyState === OPEN;
  }

  /** Sends one text message; false when the socket is not open. */
  send(text: string): boolean {
    if (!this.isOpen || !this.socket) return false;
    try {
      this.socket.send(text);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Drops the connection without waiting for the peer (a dead peer never
   * answers a close frame): `ws` terminates the socket, a browser starts the
   * closing handshake in the background. No handler is called afterwards.
   */
  abandon(code = 1000, reason = ''): void {
    this.finished = true;
    const s = this.socket;
    if (!s) return;
    try {
      if (typeof s.terminate === 'function' && code !== 1000) s.terminate();
      else s.close(code, reason);
    } catch {
      /* already closed */
    }
  }
}
