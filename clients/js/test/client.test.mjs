// The client against the real gateway: subscriptions and publications,
// notifications, presence, ack promises and their typed rejections, the
// bounded queue, request timeouts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  ClientClosedError, ErrorCode, PavilionClient, PavilionError, QueueFullError, RequestTimeoutError,
} from '../dist/index.js';
import { ALL, Gateway, next, record, TcpProxy, uid, until } from './helpers.mjs';

describe('client against the gateway', { timeout: 180000 }, () => {
  let g;
  const clients = [];
  before(async () => {
    g = await Gateway.create();
    await g.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    await g.stop();
  });

  function client(sub, claims = ALL, extra = {}) {
    const c = new PavilionClient({ url: g.url, token: () => g.token(sub, claims), ...extra });
    clients.push(c);
    return c;
  }

  test('connects, subscribes, and routes publications to their channel', async () => {
    const c = client(uid('alice'));
    const states = record(c, ['state']);
    c.connect();
    await c.ready(5000);
    const zone = uid('zone');
    const sub = c.channel(`zone:${zone}`);
    const pubs = record(sub, ['publication']);
    const all = record(c, ['publication']);
    const ack = await sub.subscribe();
    assert.equal(ack.for, 'subscribe');
    assert.equal(ack.channel, `zone:${zone}`);
    assert.equal(sub.state, 'subscribed');
    await g.api.publish(`zone:${zone}`, 'announcement', { text: 'one' });
    await g.api.publish(`zone:${zone}`, 'announcement', { text: 'two' });
    await until(() => pubs.events.length === 2, 5000, 'two publications');
    assert.deepEqual(pubs.of('publication').map((p) => [p.channel, p.type, p.payload.text]),
      [[`zone:${zone}`, 'announcement', 'one'], [`zone:${zone}`, 'announcement', 'two']]);
    assert.equal(all.events.length, 2);
    assert.deepEqual(states.of('state'), ['connecting', 'connected']);
  });

  test('a renewal whose token lost a zone revokes that subscription only', async () => {
    const [a, b] = [uid('za'), uid('zb')];
    const user = uid('erin');
    let claims = { zones: [a, b] };
    const c = client(user, claims, { token: () => g.token(user, claims) });
    c.connect();
    await c.ready(5000);
    const kept = c.channel(`zone:${a}`);
    const gone = c.channel(`zone:${b}`);
    await kept.subscribe();
    await gone.subscribe();
    claims = { zones: [a] };
    const revoked = next(c, 'revoked');
    await c.renewToken();
    const info = await revoked;
    assert.equal(info.channel, `zone:${b}`);
    assert.equal(info.subscription, gone);
    assert.equal(info.error.code, ErrorCode.PERMISSION_DENIED);
    assert.equal(gone.state, 'unsubscribed');
    assert.equal(kept.state, 'subscribed');
    const pubs = record(c, ['publication']);
    await g.api.publish(`zone:${b}`, 'announcement', { text: 'not for erin' });
    await g.api.publish(`zone:${a}`, 'announcement', { text: 'for erin' });
    await until(() => pubs.events.length >= 1, 5000, 'the zone:a publication');
    assert.deepEqual(pubs.of('publication').map((p) => p.channel), [`zone:${a}`]);
  });

  test('notifications, mark_read and notification_read across two connections of a user', async () => {
    const user = uid('bob');
    const a = client(user);
    const b = client(user);
    a.connect();
    b.connect();
    await Promise.all([a.ready(5000), b.ready(5000)]);
    const gotA = next(a, 'notification');
    const gotB = next(b, 'notification');
    const { id } = await g.api.notify(user, { type: 'mention', content: 'hi bob' });
    const [na, nb] = await Promise.all([gotA, gotB]);
    assert.equal(na[0].id, id);
    assert.equal(na[0].content, 'hi bob');
    assert.equal(na[0].isRead, false);
    assert.equal(na[1].channel, `user:${user}`);
    assert.equal(nb[0].id, id);
    const read = next(b, 'notification_read');
    const ack = await a.markRead(id);
    assert.equal(ack.for, 'mark_read');
    const [r] = await read;
    assert.deepEqual(r, { notificationId: id });
  });

  test('presence and status_update snapshot through a shared zone', async () => {
    const zone = `zone:${uid('z')}`;
    const carol = client(uid('carol'));
    const dave = client(uid('dave'));
    carol.connect();
    dave.connect();
    await Promise.all([carol.ready(5000), dave.ready(5000)]);
    await carol.subscribe(zone);
    const snapshot = next(dave, 'status_update', (u) => u.userId === carol.userId);
    await dave.subscribe(zone, { presence: true });
    const [first] = await snapshot;
    assert.equal(first.status, 'online');
    const busy = next(dave, 'status_update', (u) => u.userId === carol.userId && u.status === 'busy');
    assert.equal((await carol.presence('busy')).for, 'presence');
    await busy;
  });

  test('requests reject with PavilionError carrying the protocol code', async () => {
    const c = client(uid('erin'), { zones: ['mine'] });
    c.connect();
    await c.ready(5000);
    await assert.rejects(c.subscribe('zone:not-mine'), (e) => {
      assert.ok(e instanceof PavilionError);
      assert.equal(e.code, ErrorCode.PERMISSION_DENIED);
      assert.equal(e.requestType, 'subscribe');
      assert.equal(typeof e.requestId, 'string');
      return true;
    });
    assert.equal(c.channel('zone:not-mine').state, 'unsubscribed');
    await assert.rejects(c.subscribe('nonsense'), (e) => e.code === ErrorCode.INVALID_SUBSCRIPTION);
    await assert.rejects(c.request('no_such_type', {}), (e) => e.code === ErrorCode.INVALID_FORMAT);
    await assert.rejects(c.markRead('no-such-notification'), (e) => e.code === ErrorCode.PERMISSION_DENIED);
    await assert.rejects(c.request('auth', { token: 'not.a.jwt' }), (e) => e.code === ErrorCode.AUTH);
    // the connection survives all of these
    assert.equal(c.state, 'connected');
    assert.equal((await c.subscribe('zone:mine')).channel, 'zone:mine');
    // a subscription refused on the way shows as an 'error' event on it too
    const refused = c.channel('chat:not-mine');
    const err = next(refused, 'error');
    await assert.rejects(refused.subscribe());
    assert.equal((await err).code, ErrorCode.PERMISSION_DENIED);
  });

  test('an unanswered request times out with RequestTimeoutError', async () => {
    const proxy = await TcpProxy.create(g.port);
    try {
      const c = client(uid('frank'), ALL, { url: proxy.url, heartbeatIntervalMs: 60000 });
      c.connect();
      await c.ready(5000);
      proxy.stall();
      await assert.rejects(c.request('heartbeat_ack', undefined, { timeoutMs: 300 }), (e) => {
        assert.ok(e instanceof RequestTimeoutError);
        assert.equal(e.code, 'timeout');
        return true;
      });
      c.close();
    } finally {
      await proxy.close();
    }
  });

  test('the queue holds messages while disconnected, bounded, and sends them in order on connect', async () => {
    const user = uid('gina');
    const c = client(user, ALL, { maxQueue: 3 });
    const zone = `zone:${uid('q')}`;
    // not connected yet: three requests wait, the fourth is refused at once
    const p1 = c.request('presence', { status: 'away' });
    const p2 = c.request('subscribe', { channel: zone });
    const p3 = c.request('heartbeat_ack');
    assert.equal(c.queueSize, 3);
    await assert.rejects(c.request('heartbeat_ack'), (e) => {
      assert.ok(e instanceof QueueFullError);
      assert.equal(e.code, 'queue_full');
      return true;
    });
    assert.throws(() => c.send('heartbeat_ack'), QueueFullError);
    c.connect();
    const acks = await Promise.all([p1, p2, p3]);
    assert.deepEqual(acks.map((a) => a.for), ['presence', 'subscribe', 'heartbeat_ack']);
    assert.equal(c.queueSize, 0);
    assert.equal((await g.api.presence(user)).status, 'away');
    assert.equal(await g.api.subscribers(zone), 1);
  });

  test('close() rejects what waits and stops for good', async () => {
    const c = client(uid('hal'));
    const pending = c.request('heartbeat_ack');
    const sub = c.subscribe(`zone:${uid('x')}`);
    c.close();
    await assert.rejects(pending, ClientClosedError);
    await assert.rejects(sub, ClientClosedError);
    assert.equal(c.state, 'closed');
    await assert.rejects(c.request('heartbeat_ack'), (e) => e.code === 'closed');
    assert.throws(() => c.send('heartbeat_ack'), ClientClosedError);
  });

  test('the pacing keeps a burst of 60 requests under the gateway rate limit', async () => {
    const strict = await Gateway.create({ public: { limits: { messages_per_s: 10, burst: 20, abuse_close_after: 5 } } });
    await strict.start();
    try {
      const c = new PavilionClient({ url: strict.url, token: () => strict.token(uid('ivy'), ALL) });
      const errors = record(c, ['error', 'disconnected']);
      c.connect();
      await c.ready(5000);
      const acks = await Promise.all(Array.from({ length: 30 }, () => c.request('heartbeat_ack', undefined, { timeoutMs: 15000 })));
      assert.equal(acks.length, 30);
      const subs = await Promise.all(Array.from({ length: 30 }, (_, i) => c.subscribe(`zone:p${i}`, {}).catch((e) => e)));
      assert.ok(subs.every((a) => a.for === 'subscribe'), JSON.stringify(subs.filter((a) => !a.for)));
      assert.deepEqual(errors.events, []);
      c.close();
    } finally {
      await strict.stop();
    }
  });

  test('a subscribe refused (1005) or dropped for the rate stays wanted and is asked again', async () => {
    // a gateway stricter than the client's pacing: the subscriptions overrun it; it
    // answers one 1005 a second and drops the other excess messages unanswered
    const strict = await Gateway.create({ public: { limits: { messages_per_s: 2, burst: 4, abuse_close_after: 1000 } } });
    await strict.start();
    try {
      const c = new PavilionClient({ url: strict.url, token: () => strict.token(uid('jay'), ALL), requestTimeoutMs: 2000 });
      const subs = Array.from({ length: 6 }, (_, i) => c.channel(`zone:r${i}`));
      const refused = [];
      for (const sub of subs) {
        sub.subscribe(20000).catch((e) => refused.push(e.code));
      }
      c.connect();
      await c.ready(5000);
      await until(() => subs.every((s) => s.state === 'subscribed'), 15000, 'every channel subscribed');
      assert.ok(refused.every((code) => code === ErrorCode.RATE_LIMITED || code === 'timeout'), String(refused));
      for (const sub of subs) assert.equal(await strict.api.subscribers(sub.channel), 1);
      c.close();
    } finally {
      await strict.stop();
    }
  });

  test('a Subscription outlives unsubscribe(): the same object, with its listeners, when subscribed again', async () => {
    const c = client(uid('max'));
    c.connect();
    await c.ready(5000);
    const name = `zone:${uid('again')}`;
    const room = c.channel(name);
    const pubs = record(room, ['publication']);
    await room.subscribe();
    assert.equal((await room.unsubscribe())?.for, 'unsubscribe');
    assert.equal(await g.api.subscribers(name), 0);
    assert.equal(c.channel(name), room);
    assert.ok(c.subscriptions().includes(room));
    // subscribed again by name: the listener set once still gets the channel
    assert.equal((await c.subscribe(name)).channel, name);
    assert.equal(room.state, 'subscribed');
    await g.api.publish(name, 'announcement', { n: 1 });
    await until(() => pubs.events.length === 1, 5000, 'the publication on the old listener');
  });

  test('a message over the gateway\'s max_message_bytes is refused by the client; the connection stays', async () => {
    const c = client(uid('kim'));
    const downs = record(c, ['disconnected']);
    c.connect();
    await c.ready(5000);
    // {"type":"presence","payload":{"status":"…"}}: 41 bytes around the status
    const frame = (status) => JSON.stringify({ type: 'presence', payload: { status } });
    const around = frame('').length;
    // the gateway's limit (16384 by default) counts UTF-8 bytes: 'é' is two
    const exact = 'é'.repeat(8000) + 'a'.repeat(16384 - around - 16000);
    assert.equal(Buffer.byteLength(frame(exact)), 16384);
    // exactly the limit goes out: the gateway reads it and refuses the status (1002)
    const refused = next(c, 'error', (e) => e.code === ErrorCode.INVALID_FORMAT);
    c.send('presence', { status: exact });
    await refused;
    // one byte more is refused before it goes out, and so is a request
    assert.throws(() => c.send('presence', { status: `${exact}x` }),
      (e) => e instanceof PavilionError && e.name === 'MessageTooLargeError' && e.code === 'too_large' && e.requestType === 'presence');
    await assert.rejects(c.request('presence', { status: 'x'.repeat(20000) }),
      (e) => e instanceof PavilionError && e.name === 'MessageTooLargeError' && e.code === 'too_large' && /16384/.test(e.message));
    // and a subscribe: refused at once, not kept as wanted (it would close every connection)
    const sub = c.channel(`zone:${uid('big')}`, { parameters: { pad: 'x'.repeat(20000) } });
    await assert.rejects(sub.subscribe(), (e) => e.code === 'too_large');
    assert.equal(sub.state, 'unsubscribed');
    assert.equal(c.state, 'connected');
    assert.deepEqual(downs.events, []);
    assert.equal((await c.presence('busy')).for, 'presence');
    // a gateway with a larger limit: the option follows it
    const large = await Gateway.create({ public: { limits: { max_message_bytes: 65536 } } });
    await large.start();
    try {
      const d = new PavilionClient({ url: large.url, token: () => large.token(uid('lee'), ALL), maxMessageBytes: 65536 });
      d.connect();
      await d.ready(5000);
      const bad = next(d, 'error', (e) => e.code === ErrorCode.INVALID_FORMAT);
      d.send('presence', { status: 'x'.repeat(40000) });
      await bad;
      assert.equal(d.state, 'connected');
      d.close();
    } finally {
      await large.stop();
    }
  });
});
