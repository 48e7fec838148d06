/**
 * The WebSocket for Node: the runtime's global one when it has one (Node 22+),
 * else the `ws` package, imported only when needed. `preferWs` picks `ws` even
 * where a global exists, for its Node-only options (TLS `ca`,
 * `rejectUnauthorized`, headers).
 * @module
 */
import type { WebSocketConstructor } from './transport.js';

/** The global `WebSocket`, or the `ws` package's. */
export async function loadWebSocket(preferWs = false): Promise<WebSocketConstructor> {
  const global = (globalThis as { WebSocket?: unknown }).WebSocket;
  if (!preferWs && typeof global === 'function') return global as WebSocketConstructor;
  const mod = await import('ws');
  return (mod.WebSocket ?? mod.default) as unknown as WebSocketConstructor;
}
