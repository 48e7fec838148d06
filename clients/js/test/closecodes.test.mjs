// Close codes and connection health: 4029 (longer back-off), 4008 (normal
// reconnect), heartbeats answered, a dead connection detected.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';

import { PavilionClient } from '../dist/index.js';
import { ALL, Gateway, next, record, sleep, spyWebSocket, TcpProxy, uid, until } from './helpers.mjs';

describe('close codes and heartbeats', { timeout: 180000 }, () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  async function gateway(options) {
    const g = await Gateway.create(options);
    await g.start();
    cleanup.push(() => g.stop());
    return g;
  }

  function client(options) {
    const c = new PavilionClient({ minReconnectDelayMs: 50, maxReconnectDelayMs: 200, ...options });
    cleanup.push(() => c.close());
    return c;
  }

  test('4029: the reconnect waits at least rateLimitedDelayMs, then succeeds', async () => {
    const g = await gateway({ public: { limits: { max_connections_per_user: 1 } } });
    const user = uid('alice');
    const first = client({ url: g.url, token: () => g.token(user) });
    first.connect();
    await first.ready(5000);
    const second = client({ url: g.url, token: () => g.token(user), rateLimitedDelayMs: 1500 });
    const ev = record(second, ['connecting', 'connected', 'disconnected']);
    second.connect();
    const down = await next(second, 'disconnected');
    assert.equal(down.code, 4029);
    assert.equal(down.reconnect, true);
    assert.ok(down.delayMs >= 1500, `delay ${down.delayMs} ≥ 1500`);
    first.close();
    await next(second, 'connected', undefined, 5000);
    assert.deepEqual(ev.events.map((e) => e[0]), ['connecting', 'disconnected', 'connecting', 'connected']);
  });

  test('4029: the default least delay is 30 s', async () => {
    const g = await gateway({ public: { limits: { max_connections_per_user: 1 } } });
    const user = uid('bob');
    const first = client({ url: g.url, token: () => g.token(user) });
    first.connect();
    await first.ready(5000);
    const second = client({ url: g.url, token: () => g.token(user) });
    second.connect();
    const down = await next(second, 'disconnected');
    assert.equal(down.code, 4029);
    assert.ok(down.delayMs >= 30000, `delay ${down.delayMs} ≥ 30000`);
    second.close();
  });

  test('4008 (slow consumer): reconnects normally and re-subscribes', async () => {
    const g = await gateway({ public: { limits: { outbound_queue_bytes: 65536 } } });
    const proxy = await TcpProxy.create(g.port);
    cleanup.push(() => proxy.close());
    const c = client({ url: proxy.url, token: () => g.token(uid('carol'), ALL) });
    c.connect();
    await c.ready(5000);
    const zone = c.channel(`zone:${uid('z')}`);
    await zone.subscribe();
    const down = next(c, 'disconnected', undefined, 30000);
    const resubscribed = next(zone, 'subscribed', undefined, 30000);
    // stop reading the gateway's side: its socket buffers fill, then its queue
    proxy.stall({ backpressure: true });
    const big = 'x'.repeat(60000);
    await g.api.publishUntilClose(zone.channel, 4008, () => ({ big }), 10000);
    proxy.resume();
    const d = await down;
    assert.equal(d.code, 4008);
    assert.equal(d.reconnect, true);
    assert.ok(d.delayMs <= 50);
    await resubscribed;
    const live = next(zone, 'publication', (p) => p.type === 'after');
    await g.api.publish(zone.channel, 'after', { ok: true });
    await live;
  });

  test('heartbeats are answered: the connection outlives the idle timeout', async () => {
    const g = await gateway({ heartbeatS: 1, public: { websocket: { idle_timeout_s: 3 } } });
    const spy = await spyWebSocket();
    const c = client({ url: g.url, token: () => g.token(uid('dave')), heartbeatIntervalMs: 1000, WebSocket: spy.WebSocket });
    const downs = record(c, ['disconnected']);
    c.connect();
    await c.ready(5000);
    const acks = () => spy.sent.filter((m) => m.type === 'heartbeat_ack' && m.id === undefined).length;
    // heartbeats come every 1–2 s (the gateway's timers have one-second steps)
    await until(() => acks() >= 5, 15000, 'five heartbeat answers');
    // five heartbeats later (≥ 5 s) with a 3 s idle timeout: without answers it would have closed 4000
    assert.deepEqual(downs.events, []);
    assert.equal(c.state, 'connected');
    assert.ok(await g.api.metric('pavilion_messages_in_total', 'type="heartbeat_ack"') >= 5);
  });

  test('no message for heartbeat interval + grace: dead connection dropped, reconnected', async () => {
    const g = await gateway({ heartbeatS: 1 });
    const proxy = await TcpProxy.create(g.port);
    cleanup.push(() => proxy.close());
    const c = client({
      url: proxy.url, token: () => g.token(uid('erin'), { jti: randomBytes(4).toString('hex') }),
      heartbeatIntervalMs: 1000, heartbeatGraceMs: 2000, connectTimeoutMs: 1000,
    });
    c.connect();
    await c.ready(5000);
    // healthy for twice the limit (3 s): heartbeats keep it alive
    await sleep(6000);
    assert.equal(c.state, 'connected');
    const down = next(c, 'disconnected', undefined, 5000);
    proxy.stall();
    const d = await down;
    assert.equal(d.code, 1006);
    assert.match(d.reason, /no message from the gateway within 3000 ms/);
    proxy.resume();
    await next(c, 'connected', undefined, 10000);
  });
});
