// A `since` replay larger than what a connection may hold of replays not yet
// sent (64 × outbound_queue_bytes: 256 KiB with 4096 here) comes in pages: the
// gateway sends what fits, then replay_incomplete with the `since` of the
// rest, and the client subscribes again with it, page after page, on the same
// connection. Before, the gateway closed such a connection 4008, and the
// client met the same 4008 at every reconnect.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { PavilionClient } from '../dist/index.js';
import { ALL, gatewayBehindProxy, offline, record, spyWebSocket, uid, until } from './helpers.mjs';

describe('inbox replays in pages', { timeout: 180000 }, () => {
  const { g, proxy, clients } = gatewayBehindProxy({ public: { limits: { outbound_queue_bytes: 4096 } } });

  test('notifications missed while away, more than fit at once: every one, once, in order, no close', async () => {
    const user = uid('pages');
    const spy = await spyWebSocket();
    const c = new PavilionClient({
      url: proxy.url, token: () => g.token(user, ALL), WebSocket: spy.WebSocket,
      minReconnectDelayMs: 50, maxReconnectDelayMs: 200,
    });
    clients.push(c);
    const notes = record(c, ['notification']);
    const pages = record(c, ['message']);
    c.connect();
    await c.ready(5000);
    await until(() => spy.sent.some((m) => m.type === 'subscribe' && m.payload.channel === 'user'), 2000, 'user');
    const back = await offline(c, proxy);
    const ids = [];
    const pad = 'x'.repeat(10000); // some 25 of 10 kB fill 256 KiB
    for (let i = 0; i < 60; i++) ids.push((await g.api.notify(user, { type: 'like', content: `${i}:${pad}` })).id);
    const downs = record(c, ['disconnected']);
    back();
    await until(() => notes.events.length === ids.length, 20000, 'all 60 notifications');
    assert.deepEqual(notes.of('notification').map((n) => n.id), ids, 'once each, in createdAt order');
    const cuts = pages.of('message').filter((m) => m.type === 'replay_incomplete');
    assert.ok(cuts.length >= 2, `more than one page: ${cuts.length} replay_incomplete`);
    const asked = spy.sent.filter((m) => m.type === 'subscribe' && m.payload.channel === 'user')
      .map((m) => m.payload.parameters?.since);
    // the first connection, the reconnect, then one per replay_incomplete with its since
    assert.deepEqual(asked.slice(2), cuts.map((m) => m.payload.since));
    assert.equal(downs.events.length, 0, 'no close after the reconnect');
    assert.equal(c.state, 'connected');
  });
});
