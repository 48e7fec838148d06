// Units without a gateway: backoff, token timing, the queue, the emitter, and
// the client's own bookkeeping driven by a scripted in-process WebSocket
// (offset de-duplication, recover parameters, unrecovered, resync,
// replay_incomplete).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  Backoff, ClientClosedError, decodeToken, Emitter, PavilionClient, PavilionError, QueueFullError,
  renewalTime,
} from '../dist/index.js';
import { OutboundQueue } from '../dist/queue.js';
import { mint, next, record, sleep, until } from './helpers.mjs';

describe('Backoff', () => {
  test('ceilings double from min to max; full jitter spans [0, ceiling]', () => {
    const top = new Backoff({ minDelayMs: 500, maxDelayMs: 30000, random: () => 0.99999 });
    assert.deepEqual(Array.from({ length: 9 }, () => top.next()),
      [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    const bottom = new Backoff({ random: () => 0 });
    assert.deepEqual(Array.from({ length: 4 }, () => bottom.next()), [0, 0, 0, 0]);
    const b = new Backoff();
    for (let i = 0; i < 200; i++) {
      const ceiling = b.ceiling();
      const d = b.next();
      assert.ok(d >= 0 && d <= ceiling && d <= 30000, `${d} in [0, ${ceiling}]`);
    }
  });

  test('reset starts over', () => {
    const b = new Backoff({ random: () => 0.99999 });
    b.next();
    b.next();
    b.reset();
    assert.equal(b.attempts, 0);
    assert.equal(b.next(), 500);
  });
});

describe('tokens', () => {
  test('decodeToken reads the payload, refuses what is not a JWT', () => {
    const t = mint('k', { sub: 'zoë', zones: ['a'] }, 60);
    const c = decodeToken(t);
    assert.equal(c.sub, 'zoë');
    assert.deepEqual(c.zones, ['a']);
    assert.equal(c.exp - c.iat, 60);
    assert.equal(decodeToken('nope'), null);
    assert.equal(decodeToken('a.b.c'), null);
    assert.equal(decodeToken(`x.${Buffer.from('[1]').toString('base64url')}.y`), null);
  });

  test('renewalTime: the earlier of 80 % and exp − 30 s, never before half the lifetime', () => {
    const at = (iat, exp) => renewalTime({ iat, exp }, 0) / 1000;
    assert.equal(at(0, 3600), 2880); // 80 % comes first
    assert.equal(at(0, 100), 70); // 30 s before exp comes first
    assert.equal(at(0, 10), 5); // short token: half its life
    assert.equal(renewalTime({ exp: 100 }, 60000), 80000); // no iat: its life counts from when it was obtained
    assert.equal(renewalTime({ sub: 'x' }, 0), null);
    assert.equal(renewalTime(null, 0), null);
  });
});

describe('OutboundQueue', () => {
  test('bounded application lane, control lane first, pacing by token bucket', () => {
    let now = 0;
    const q = new OutboundQueue({ maxQueue: 2, messagesPerSecond: 10, burst: 2 }, () => now);
    q.pushApp({ text: 'a1' });
    q.pushApp({ text: 'a2' });
    assert.throws(() => q.pushApp({ text: 'a3' }, { type: 't' }), (e) => e instanceof QueueFullError && e.code === 'queue_full');
    q.pushControl({ text: 'c1' });
    const out = [];
    const wait = q.drain((t) => out.push(t) > 0);
    assert.deepEqual(out, ['c1', 'a1']);
    assert.equal(wait, 100);
    now += 100;
    q.drain((t) => out.push(t) > 0);
    assert.deepEqual(out, ['c1', 'a1', 'a2']);
    assert.equal(q.size, 0);
  });

  test('control only until connected; a refused send keeps the message', () => {
    const q = new OutboundQueue({ messagesPerSecond: Infinity });
    q.pushApp({ text: 'app' });
    q.pushControl({ text: 'ctl' });
    const out = [];
    q.drain((t) => out.push(t) > 0, false);
    assert.deepEqual(out, ['ctl']);
    assert.equal(q.drain(() => false), 0);
    assert.equal(q.size, 1);
    q.pushApp({ text: 'x' });
    q.pushControl({ text: 'y' });
    q.clear();
    assert.equal(q.size, 0);
    const after = [];
    assert.equal(q.drain((t) => after.push(t) > 0), 0);
    assert.deepEqual(after, []);
  });
});

test('Emitter: a throwing listener does not stop the others; its error is rethrown later', () => {
  const e = new Emitter();
  const got = [];
  const later = [];
  const saved = globalThis.queueMicrotask;
  globalThis.queueMicrotask = (fn) => later.push(fn);
  try {
    e.on('x', () => { throw new Error('listener bug'); });
    const off = e.on('x', (v) => got.push(v));
    e.once('x', (v) => got.push(`once ${v}`));
    e.emit('x', 1);
    e.emit('x', 2);
    off();
    e.emit('x', 3);
  } finally {
    globalThis.queueMicrotask = saved;
  }
  assert.deepEqual(got, [1, 'once 1', 2]);
  assert.equal(later.length, 3);
  assert.throws(later[0], /listener bug/);
});

test('Emitter: off() removes a listener added with once()', () => {
  const e = new Emitter();
  const got = [];
  const fn = (v) => got.push(v);
  e.once('x', fn);
  e.off('x', fn);
  assert.equal(e.listenerCount('x'), 0);
  e.emit('x', 1);
  assert.deepEqual(got, []);
});

// ------------------------------------------------------------------ scripted socket
/**
 * An in-process WebSocket: acks the client's requests like the gateway
 * would, with `onRequest` deciding extra ack members; `push` sends a server
 * message; `cut` drops the connection (1006).
 */
class Script {
  constructor() {
    this.sockets = [];
    this.sent = [];
    this.onRequest = () => ({});
    const script = this;
    this.WebSocket = class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.listeners = {};
        script.sockets.push(this);
        setTimeout(() => { this.readyState = 1; this.fire('open', {}); }, 1);
      }
      addEventListener(type, fn) { (this.listeners[type] ??= []).push(fn); }
      fire(type, ev) { for (const fn of this.listeners[type] ?? []) fn(ev); }
      send(text) {
        const m = JSON.parse(text);
        script.sent.push(m);
        if (m.id === undefined) return;
        const extra = script.onRequest(m) ?? {};
        if (extra === 'silent') return;
        const payload = { for: m.type, ...(m.payload?.channel ? { channel: m.payload.channel.replace(/^user$/, 'user:me') } : {}), ...extra };
        setTimeout(() => this.fire('message', { data: JSON.stringify({ type: 'ack', id: m.id, payload, timestamp: new Date().toISOString() }) }), 1);
      }
      close() { this.readyState = 3; setTimeout(() => this.fire('close', { code: 1000, reason: '' }), 1); }
    };
  }

  get socket() {
    return this.sockets[this.sockets.length - 1];
  }

  push(msg) {
    this.socket.fire('message', { data: typeof msg === 'string' ? msg : JSON.stringify({ timestamp: new Date().toISOString(), ...msg }) });
  }

  cut() {
    const s = this.socket;
    s.readyState = 3;
    s.fire('close', { code: 1006, reason: '' });
  }
}

function scripted(extra = {}) {
  const script = new Script();
  const c = new PavilionClient({
    url: 'ws://gateway.invalid/ws?x=1', token: () => mint('k', { sub: 'me' }), WebSocket: script.WebSocket,
    minReconnectDelayMs: 1, maxReconnectDelayMs: 5, ...extra,
  });
  return { script, c };
}

test('a URL the client can never open is refused by the constructor', () => {
  for (const url of ['gateway.example/ws', 'ws://gateway.example/ws#top']) {
    assert.throws(() => new PavilionClient({ url, token: 't' }), TypeError, url);
  }
  new PavilionClient({ url: 'wss://gateway.example/ws?tenant=a', token: 't' });
});

describe('client bookkeeping (scripted socket)', () => {
  test('the token goes in the query, next to what the URL had', async () => {
    const { script, c } = scripted();
    c.connect();
    await c.ready(2000);
    const u = new URL(script.socket.url);
    assert.equal(u.searchParams.get('x'), '1');
    assert.equal(decodeToken(u.searchParams.get('token')).sub, 'me');
    assert.equal(c.userId, 'me');
    c.close();
  });

  test('offsets: duplicates dropped; recover sent on reconnect; recovered false → unrecovered', async () => {
    const { script, c } = scripted();
    let recovered = true;
    script.onRequest = (m) => (m.type === 'subscribe' && m.payload.channel === 'zone:h'
      ? { offset: 10, epoch: 'e1', ...(m.payload.parameters?.recover ? { recovered } : {}) } : {});
    c.connect();
    await c.ready(2000);
    const zone = c.channel('zone:h');
    const pubs = record(zone, ['publication']);
    const lost = record(c, ['unrecovered']);
    await zone.subscribe();
    for (const offset of [11, 12, 12, 11, 13]) script.push({ type: 'note', channel: 'zone:h', offset, payload: { offset } });
    assert.deepEqual(pubs.of('publication').map((p) => p.offset), [11, 12, 13]);
    assert.deepEqual(zone.position, { offset: 13, epoch: 'e1' });
    // reconnect: recover from 13; replayed 14, 15 and a duplicate 13
    let again = next(zone, 'subscribed');
    script.cut();
    await again;
    const sub2 = script.sent.filter((m) => m.type === 'subscribe' && m.payload.channel === 'zone:h')[1];
    assert.deepEqual(sub2.payload.parameters, { recover: { offset: 13, epoch: 'e1' } });
    for (const offset of [13, 14, 15]) script.push({ type: 'note', channel: 'zone:h', offset, payload: {} });
    assert.deepEqual(pubs.of('publication').map((p) => p.offset), [11, 12, 13, 14, 15]);
    assert.deepEqual(lost.events, []);
    // history gone: recovered false → unrecovered, position from the ack
    recovered = false;
    again = next(zone, 'subscribed');
    script.cut();
    await again;
    assert.equal(lost.events.length, 1);
    const info = lost.of('unrecovered')[0];
    assert.deepEqual(info.previous, { offset: 15, epoch: 'e1' });
    assert.deepEqual(info.current, { offset: 10, epoch: 'e1' });
    assert.equal(info.subscription, zone);
    c.close();
  });

  test('a gateway that ignores recover (no "recovered" in the ack) counts as unrecovered', async () => {
    const { script, c } = scripted();
    script.onRequest = (m) => (m.type === 'subscribe' && m.payload.channel === 'zone:o' && !m.payload.parameters
      ? { offset: 1, epoch: 'x' } : {});
    c.connect();
    await c.ready(2000);
    const zone = c.channel('zone:o');
    await zone.subscribe();
    const lost = next(zone, 'unrecovered');
    script.cut();
    const info = await lost;
    assert.deepEqual(info.previous, { offset: 1, epoch: 'x' });
    assert.equal(zone.position, undefined);
    c.close();
  });

  test('resync, notification duplicates, heartbeat answers, malformed messages', async () => {
    const { script, c } = scripted();
    c.connect();
    await c.ready(2000);
    const ev = record(c, ['resync', 'notification', 'error']);
    script.push({ type: 'resync' });
    const n = { id: 'n1', type: 'like', content: 'x', isRead: false, createdAt: '2026-01-01T00:00:00.000Z' };
    script.push({ type: 'notification', channel: 'user:me', payload: n });
    script.push({ type: 'notification', channel: 'user:me', payload: n });
    script.push({ type: 'heartbeat' });
    script.push('not json');
    script.push({ notype: 1 });
    await until(() => script.sent.some((m) => m.type === 'heartbeat_ack' && m.id === undefined), 2000, 'heartbeat_ack');
    assert.equal(ev.of('resync').length, 1);
    assert.equal(ev.of('notification').length, 1);
    assert.deepEqual(ev.of('error').map((e) => e.code), ['invalid_message', 'invalid_message']);
    // since on the next connection: the newest createdAt less the 1 s overlap
    const again = next(c, 'connected');
    script.cut();
    await again;
    const userSub = script.sent.filter((m) => m.type === 'subscribe' && m.payload.channel === 'user').pop();
    assert.equal(userSub.payload.parameters.since, '2025-12-31T23:59:59.000Z');
    c.close();
  });

  test('replay_incomplete on the user channel: one subscribe with its since per message', async () => {
    const { script, c } = scripted();
    c.connect();
    await c.ready(2000);
    const userSubs = () => script.sent.filter((m) => m.type === 'subscribe' && m.payload.channel === 'user');
    const before = userSubs().length;
    const since = '2026-01-01T00:00:00.122Z';
    script.push({ type: 'replay_incomplete', channel: 'user:me', payload: { since } });
    await until(() => userSubs().length === before + 1, 2000, 'the next page asked for');
    assert.deepEqual(userSubs().at(-1).payload, { channel: 'user', parameters: { since } });
    // not without the message's since, nor on another channel; and no second ask unprompted
    script.push({ type: 'replay_incomplete', channel: 'user:me', payload: {} });
    script.push({ type: 'replay_incomplete', channel: 'zone:z', payload: { since } });
    script.push({ type: 'heartbeat' });
    await until(() => script.sent.filter((m) => m.type === 'heartbeat_ack' && m.id === undefined).length, 2000,
      'heartbeat_ack');
    await sleep(50);
    assert.equal(userSubs().length, before + 1);
    c.close();
  });

  test('subscribe() between the socket opening and the first ack goes out on that connection', async () => {
    const { script, c } = scripted();
    let first;
    script.onRequest = (m) => (m.type === 'heartbeat_ack' && !first ? (first = m, 'silent') : {});
    c.connect();
    await until(() => first, 2000, 'the first request');
    assert.equal(c.state, 'connecting');
    const acked = c.channel('zone:early').subscribe(2000);
    script.push({ type: 'ack', id: first.id, payload: { for: 'heartbeat_ack' } });
    await c.ready(2000);
    assert.equal((await acked).channel, 'zone:early');
    assert.equal(c.channel('zone:early').state, 'subscribed');
    c.close();
  });

  test('unsubscribe() between the socket opening and the first ack tells the gateway', async () => {
    const { script, c } = scripted();
    c.connect();
    await c.ready(2000);
    await c.subscribe('zone:late');
    let first;
    script.onRequest = (m) => (m.type === 'heartbeat_ack' && !first ? (first = m, 'silent') : {});
    script.cut();
    await until(() => first, 2000, 'the first request of the next connection');
    const sentBefore = script.sent.length;
    const gone = c.unsubscribe('zone:late');
    script.push({ type: 'ack', id: first.id, payload: { for: 'heartbeat_ack' } });
    await c.ready(2000);
    assert.equal((await gone)?.for, 'unsubscribe');
    assert.deepEqual(script.sent.slice(sentBefore).filter((m) => m.payload?.channel === 'zone:late').map((m) => m.type),
      ['unsubscribe']);
    c.close();
  });

  test('a revoked subscription is unsubscribed, reported once and not asked for again', async () => {
    const { script, c } = scripted();
    c.connect();
    await c.ready(2000);
    const gone = c.channel('zone:b');
    const kept = c.channel('zone:a');
    await gone.subscribe();
    await kept.subscribe();
    const ev = record(c, ['revoked', 'error']);
    const subEv = record(gone, ['error', 'unsubscribed']);
    script.push({ type: 'error', payload: { code: 1004, message: 'subscription revoked', channel: 'zone:b' } });
    assert.equal(gone.state, 'unsubscribed');
    assert.equal(kept.state, 'subscribed');
    assert.deepEqual(subEv.events.map((e) => e[0]), ['error', 'unsubscribed']);
    assert.equal(subEv.of('error')[0].code, 1004);
    assert.equal(subEv.of('unsubscribed').length, 1);
    const [info] = ev.of('revoked');
    assert.equal(info.channel, 'zone:b');
    assert.equal(info.subscription, gone);
    assert.ok(info.error instanceof PavilionError);
    assert.equal(info.error.code, 1004);
    assert.equal(info.error.message, 'subscription revoked');
    assert.equal(ev.of('error').length, 0);
    // a publication of the channel that was already on its way goes to no subscription
    const pubs = record(gone, ['publication']);
    script.push({ type: 'note', channel: 'zone:b', payload: {} });
    assert.equal(pubs.events.length, 0);
    // not wanted any more: the next connection subscribes zone:a only
    const before = script.sent.length;
    const again = next(kept, 'subscribed');
    script.cut();
    await again;
    assert.deepEqual(script.sent.slice(before).filter((m) => m.type === 'subscribe').map((m) => m.payload.channel).sort(),
      ['user', 'zone:a']);
    // a channel the client never subscribed to is reported too, without a subscription
    script.push({ type: 'error', payload: { code: 1004, message: 'subscription revoked', channel: 'zone:x' } });
    assert.equal(ev.of('revoked')[1].subscription, undefined);
    c.close();
  });

  test('renewToken(): a getter that fails rejects with a PavilionError (code token)', async () => {
    let calls = 0;
    const { c } = scripted({
      token: () => {
        if (++calls > 1) throw new Error('logged out');
        return mint('k', { sub: 'me' });
      },
    });
    c.connect();
    await c.ready(2000);
    await assert.rejects(c.renewToken(), (e) => e instanceof PavilionError && e.code === 'token' && /logged out/.test(e.message));
    c.close();
  });

  test('a token living longer than a timer can wait is not renewed at once', async () => {
    let n = 0;
    // 60 days: its renewal time is past the 2^31 − 1 ms a setTimeout can wait
    const { script, c } = scripted({ token: () => mint('k', { sub: 'me', jti: String(++n) }, 60 * 86400) });
    c.connect();
    await c.ready(2000);
    await sleep(300);
    assert.deepEqual(script.sent.filter((m) => m.type === 'auth'), []);
    c.close();
  });

  test('a timeout longer than a timer can wait (Infinity) means none, not an immediate one', async () => {
    const { script, c } = scripted({});
    const never = c.ready(Infinity);
    let settled = false;
    never.then(() => { settled = true; }, () => { settled = true; });
    await sleep(50);
    assert.equal(settled, false, 'ready(Infinity) settled before any connection');
    c.connect();
    await never;
    script.onRequest = (m) => (m.type === 'mark_read' ? 'silent' : {}); // answered below, late
    const held = c.request('mark_read', { notificationId: 'n1' }, { timeoutMs: Infinity });
    const late = c.request('mark_read', { notificationId: 'n2' }, { timeoutMs: 40 * 86400 * 1000 });
    await sleep(50);
    for (const m of script.sent.filter((x) => x.type === 'mark_read')) {
      script.push({ type: 'ack', id: m.id, payload: { for: 'mark_read' } });
    }
    assert.equal((await held).for, 'mark_read');
    assert.equal((await late).for, 'mark_read');
    c.close();
  });

  test('ready() on a closed client rejects at once', async () => {
    const { c } = scripted({});
    c.connect();
    await c.ready(2000);
    c.close();
    const late = c.ready();
    const outcome = await Promise.race([late.then(() => 'resolved', (e) => e), sleep(200).then(() => 'pending')]);
    assert.ok(outcome instanceof ClientClosedError, `ready() after close(): ${outcome}`);
  });

  test('maxQueue 0: nothing is held while disconnected, messages still go out while connected', async () => {
    const { script, c } = scripted({ maxQueue: 0 });
    assert.throws(() => c.send('presence', { status: 'away' }), (e) => e instanceof QueueFullError);
    await assert.rejects(c.request('presence', { status: 'away' }), (e) => e instanceof QueueFullError);
    c.connect();
    await c.ready(2000);
    c.send('presence', { status: 'busy' });
    assert.equal((await c.request('mark_read', { notificationId: 'n1' })).for, 'mark_read');
    assert.deepEqual(script.sent.filter((m) => m.type === 'presence' || m.type === 'mark_read').map((m) => m.type),
      ['presence', 'mark_read']);
    assert.equal(c.queueSize, 0);
    c.close();
  });

  test('a control request still queued when the connection drops settles then, not at its timeout', async () => {
    // three messages at once, then one a second: the unsubscribe waits in the queue
    const { script, c } = scripted({ messagesPerSecond: 1, burst: 3, minReconnectDelayMs: 5000 });
    c.connect();
    await c.ready(2000);
    await c.subscribe('zone:paced');
    const gone = c.unsubscribe('zone:paced');
    const settled = gone.then(() => 'resolved', (e) => e.code);
    script.cut();
    const first = await Promise.race([settled, sleep(1000).then(() => 'pending')]);
    assert.equal(first, 'disconnected');
    assert.equal(script.sent.filter((m) => m.type === 'unsubscribe').length, 0);
    c.close();
  });

  test('a replayed publication\'s old timestamp does not set the clock: no early renewal', async () => {
    let n = 0;
    // no iat: the token's life counts from when the client got it, on the gateway's clock
    const token = () => {
      const t = mint('k', { sub: 'me', jti: String(++n) }, 100);
      const [h, body, sig] = t.split('.');
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
      delete claims.iat;
      return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    };
    const { script, c } = scripted({ token });
    c.connect();
    await c.ready(2000);
    await c.subscribe('zone:old');
    // history replay: a publication an hour old, with its own timestamp
    script.push({ type: 'note', channel: 'zone:old', offset: 1, payload: {}, timestamp: new Date(Date.now() - 3600e3).toISOString() });
    const again = next(c, 'connected');
    script.cut();
    await again;
    await sleep(1500);
    assert.deepEqual(script.sent.filter((m) => m.type === 'auth'), []);
    c.close();
  });

  test('connect timeout: a handshake that never completes is dropped and retried', async () => {
    const script = new Script();
    let n = 0;
    const Stuck = class extends script.WebSocket {
      constructor(url) {
        super(url);
        if (++n === 1) this.fire = () => undefined; // the first socket never opens
      }
    };
    const c = new PavilionClient({ url: 'ws://gateway.invalid/ws', token: 't.e.st', WebSocket: Stuck, connectTimeoutMs: 50, minReconnectDelayMs: 1 });
    const down = next(c, 'disconnected');
    c.connect();
    assert.match((await down).reason, /not connected within 50 ms/);
    await c.ready(2000);
    c.close();
  });

  test('a handshake failure that fires only error (Node\'s built-in WebSocket) ends the attempt at once', async () => {
    // undici 6 (Node 20, 22) fires 'error' and no 'close' when the handshake
    // fails, and stays CONNECTING
    const script = new Script();
    let n = 0;
    const Failing = class extends script.WebSocket {
      constructor(url) {
        super(url);
        if (++n > 1) return;
        const fire = this.fire.bind(this);
        this.fire = () => undefined; // never opens
        setTimeout(() => fire('error', { type: 'error', message: 'Received network error or non-101 status code.' }), 5);
      }
    };
    const c = new PavilionClient({ url: 'ws://gateway.invalid/ws', token: 't.e.st', WebSocket: Failing,
      connectTimeoutMs: 10000, minReconnectDelayMs: 1 });
    const down = next(c, 'disconnected', undefined, 1000);
    const started = Date.now();
    c.connect();
    try {
      const d = await down;
      assert.ok(Date.now() - started < 1000, `reported after ${Date.now() - started} ms`);
      assert.equal(d.code, 1006);
      assert.equal(d.reconnect, true);
      assert.match(d.reason, /non-101/);
      await c.ready(2000);
      assert.equal(n, 2);
    } finally {
      c.close();
    }
  });

  test('maxMessageBytes counts UTF-8 bytes (4 for a character outside the BMP)', async () => {
    const { script, c } = scripted({ maxMessageBytes: 200 });
    c.connect();
    await c.ready(2000);
    const around = JSON.stringify({ type: 'note', payload: { s: '' } }).length;
    const fill = '\u{1F600}'.repeat(40) + 'a'.repeat(200 - around - 160); // 40 × 4 bytes
    c.send('note', { s: fill });
    assert.equal(script.sent.at(-1).payload.s, fill);
    assert.throws(() => c.send('note', { s: `${fill}a` }), (e) => e.code === 'too_large' && e.bytes === 201 && e.limit === 200);
    assert.throws(() => new PavilionClient({ url: 'ws://x.invalid/ws', token: 't', maxMessageBytes: 0 }), TypeError);
    c.close();
  });

  test('a wanted subscription grown over maxMessageBytes fails at the reconnect, the connection stays', async () => {
    const { script, c } = scripted({ maxMessageBytes: 300 });
    c.connect();
    await c.ready(2000);
    const sub = c.channel('zone:a');
    await sub.subscribe();
    c.channel('zone:a', { parameters: { pad: 'x'.repeat(300) } });
    const failed = next(sub, 'error');
    const back = next(c, 'connected');
    const sentBefore = script.sent.length;
    script.cut();
    assert.equal((await failed).code, 'too_large');
    await back;
    assert.equal(sub.state, 'unsubscribed');
    assert.equal(c.state, 'connected');
    assert.deepEqual(script.sent.slice(sentBefore).filter((m) => m.payload?.channel === 'zone:a'), []);
    c.close();
  });

  test('an error after the socket opened waits for its close (which carries the code)', async () => {
    const { script, c } = scripted();
    const downs = record(c, ['disconnected']);
    c.connect();
    await c.ready(2000);
    script.socket.fire('error', { type: 'error', message: 'boom' });
    await sleep(20);
    assert.equal(c.state, 'connected');
    assert.equal(downs.events.length, 0);
    const down = next(c, 'disconnected');
    script.socket.readyState = 3;
    script.socket.fire('close', { code: 4008, reason: 'slow consumer' });
    assert.equal((await down).code, 4008);
    c.close();
  });
});
