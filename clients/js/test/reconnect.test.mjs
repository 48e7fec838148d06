// Reconnects: after a gateway restart, after the socket is cut, with
// exponential backoff and full jitter; subscriptions, presence and queued
// messages come back; notifications missed meanwhile are replayed with
// `since`, none twice.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { PavilionClient } from '../dist/index.js';
import { ALL, gatewayBehindProxy, next, offline, record, sleep, spyWebSocket, uid, until } from './helpers.mjs';

// The client takes the runtime's WebSocket where there is one (Node 22+, Node 20
// with --experimental-websocket, browsers) and `ws` otherwise; websocket.test.mjs
// runs this file again with the other one. PAVILION_JS_WEBSOCKET names the one
// a run must get (global or ws), so that a flag that did nothing fails.
const runtimeWebSocket = typeof globalThis.WebSocket === 'function';
const wanted = process.env.PAVILION_JS_WEBSOCKET;
if (wanted) assert.equal(runtimeWebSocket ? 'global' : 'ws', wanted, 'the WebSocket this run was started for');

describe(`reconnect (${runtimeWebSocket ? "the runtime's WebSocket" : 'ws'})`, { timeout: 180000 }, () => {
  const { g, proxy, clients } = gatewayBehindProxy();

  function client(sub, extra = {}) {
    const c = new PavilionClient({
      url: proxy.url, token: () => g.token(sub, ALL), minReconnectDelayMs: 100, maxReconnectDelayMs: 1000, ...extra,
    });
    clients.push(c);
    return c;
  }

  test('after the socket is cut: reconnects and re-subscribes every channel', async () => {
    const c = client(uid('alice'));
    c.connect();
    await c.ready(5000);
    const zone = c.channel(`zone:${uid('z')}`);
    const chat = c.channel(`chat:${uid('c')}`);
    await Promise.all([zone.subscribe(), chat.subscribe()]);
    const got = record(zone, ['publication']);
    const chats = record(chat, ['publication']);
    const down = next(c, 'disconnected');
    const resubscribed = Promise.all([next(zone, 'subscribed'), next(chat, 'subscribed')]);
    proxy.cut();
    const info = await down;
    assert.equal(info.code, 1006);
    assert.equal(info.reconnect, true);
    assert.ok(info.delayMs >= 0 && info.delayMs <= 100, `first delay ${info.delayMs} within [0, 100]`);
    await resubscribed;
    assert.equal(c.state, 'connected');
    await g.api.publish(zone.channel, 'announcement', { n: 1 });
    await g.api.publish(chat.channel, 'chat_message', {
      id: 'm1', roomId: chat.channel.slice(5), sender: { id: 'bot', username: 'bot', profilePhoto: '' },
      content: 'hello again', createdAt: new Date().toISOString(), attachments: [],
    });
    await until(() => got.events.length === 1 && chats.events.length === 1, 5000, 'both publications');
    assert.equal(chats.of('publication')[0].payload.content, 'hello again');
  });

  test('after a gateway restart (close 1001): reconnects, re-subscribes, re-sends presence', async () => {
    const user = uid('bob');
    const c = new PavilionClient({ url: g.url, token: () => g.token(user, ALL), minReconnectDelayMs: 100, maxReconnectDelayMs: 500 });
    clients.push(c);
    c.connect();
    await c.ready(5000);
    const zone = c.channel(`zone:${uid('z')}`);
    await zone.subscribe();
    await c.presence('busy');
    const down = next(c, 'disconnected', undefined, 15000);
    const back = next(c, 'connected', (i) => i.reconnected, 20000);
    const resubscribed = next(zone, 'subscribed', undefined, 20000);
    await g.restart();
    assert.equal((await down).code, 1001);
    await back;
    await resubscribed;
    await until(async () => (await g.api.presence(user))?.status === 'busy', 5000, 'presence busy again');
    const pub = next(zone, 'publication');
    await g.api.publish(zone.channel, 'announcement', { after: 'restart' });
    assert.deepEqual((await pub).payload, { after: 'restart' });
  });

  test('backoff: full-jitter ceilings double up to the cap, reset after a stable connection', async () => {
    // random() just below 1 makes every delay its ceiling
    const c = client(uid('carol'), {
      minReconnectDelayMs: 50, maxReconnectDelayMs: 400, stableAfterMs: 300, random: () => 0.9999,
    });
    c.connect();
    await c.ready(5000);
    const downs = record(c, ['disconnected']);
    proxy.block();
    proxy.cut();
    await until(() => downs.events.length >= 6, 10000, 'six failed attempts');
    proxy.unblock();
    await next(c, 'connected', undefined, 5000);
    const delays = downs.of('disconnected').slice(0, 6).map((d) => d.delayMs);
    assert.deepEqual(delays, [50, 100, 200, 400, 400, 400]);
    // stable for stableAfterMs: the next drop starts over at the smallest ceiling
    await sleep(400);
    const again = next(c, 'disconnected');
    proxy.cut();
    assert.equal((await again).delayMs, 50);
    await next(c, 'connected', undefined, 5000);
  });

  test('jitter: delays are spread over [0, ceiling]', async () => {
    const c = client(uid('dan'), { minReconnectDelayMs: 1000, maxReconnectDelayMs: 1000 });
    const seen = [];
    for (let i = 0; i < 8; i++) {
      c.connect();
      await c.ready(5000);
      const down = next(c, 'disconnected');
      proxy.cut();
      const d = await down;
      seen.push(d.delayMs);
      c.close();
    }
    assert.ok(seen.every((d) => d >= 0 && d <= 1000), String(seen));
    assert.ok(new Set(seen).size > 1, `eight random delays should not all be equal: ${seen}`);
  });

  test('notifications created while disconnected are replayed with since, none twice, in order', async () => {
    const user = uid('erin');
    const spy = await spyWebSocket();
    const c = client(user, { WebSocket: spy.WebSocket });
    const notes = record(c, ['notification']);
    c.connect();
    await c.ready(5000);
    const first = next(c, 'notification');
    const n0 = (await g.api.notify(user, { type: 'like', content: 'n0' })).id;
    await first;
    const back = await offline(c, proxy);
    const missed = [];
    for (let i = 1; i <= 3; i++) missed.push((await g.api.notify(user, { type: 'like', content: `n${i}` })).id);
    back();
    await until(() => notes.events.length === 4, 10000, 'the three missed notifications');
    const n4 = (await g.api.notify(user, { type: 'like', content: 'n4' })).id;
    await until(() => notes.events.length === 5, 5000, 'the live one');
    assert.deepEqual(notes.of('notification').map((n) => n.id), [n0, ...missed, n4]);
    // the re-subscription asked for the user channel since the newest seen (less the overlap)
    const userSubs = spy.sent.filter((m) => m.type === 'subscribe' && m.payload.channel === 'user');
    assert.equal(userSubs.length, 2);
    assert.equal(userSubs[0].payload.parameters, undefined);
    assert.match(userSubs[1].payload.parameters.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('with no notification seen yet, since starts at the first connection', async () => {
    const user = uid('fay');
    const c = client(user);
    const notes = record(c, ['notification']);
    const acked = next(c, 'message', (m) => m.type === 'ack' && m.payload?.channel === `user:${user}`);
    c.connect();
    await acked;
    const back = await offline(c, proxy);
    const ids = [];
    for (let i = 0; i < 2; i++) ids.push((await g.api.notify(user, { type: 'like', content: `m${i}` })).id);
    back();
    await until(() => notes.events.length === 2, 10000, 'two replayed notifications');
    assert.deepEqual(notes.of('notification').map((n) => n.id), ids);
  });

  test('messages queued while disconnected go out after the reconnect', async () => {
    const user = uid('gus');
    const c = client(user);
    c.connect();
    await c.ready(5000);
    const back = await offline(c, proxy);
    const zone = `zone:${uid('q')}`;
    const acks = Promise.all([c.request('subscribe', { channel: zone }), c.presence('away')]);
    assert.equal(c.queueSize, 2);
    back();
    const [sub, pres] = await acks;
    assert.equal(sub.for, 'subscribe');
    assert.equal(pres.for, 'presence');
    assert.equal(await g.api.subscribers(zone), 1);
  });
});
