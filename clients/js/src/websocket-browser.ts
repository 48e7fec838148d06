/**
 * The WebSocket of a browser (or of any runtime with a global one). Bundlers
 * pick this module instead of `websocket-node` (package.json `imports` and
 * `browser` fields), so a browser bundle never contains the `ws` package.
 * @module
 */
import type { WebSocketConstructor } from './transport.js';

/** The global `WebSocket`. */
export async function loadWebSocket(_preferWs = false): Promise<WebSocketConstructor> {
  const ctor = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (typeof ctor !== 'function') {
    throw new Error('this runtime has no WebSocket: pass one as the `WebSocket` option');
  }
  return ctor as WebSocketConstructor;
}
