// History and recovery across reconnects, to the contract of history
// channels: a vhost's "history": {"zone": {"size": N, "ttl_s": S}} gives every
// publication on such a channel an offset within an epoch; a subscribe acks
// the newest offset and the epoch; a subscribe with parameters.recover
// {offset, epoch} gets "recovered": true and exactly the publications after
// that offset, in order, before any live one — or "recovered": false and
// nothing replayed.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { PavilionClient } from '../dist/index.js';
import { ALL, Gateway, next, offline, record, spyWebSocket, TcpProxy, uid, until } from './helpers.mjs';

describe('history and recovery', { timeout: 180000 }, () => {
  const cleanup = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  async function setup({ history = { zone: { size: 100, ttl_s: 300 } }, limits } = {}) {
    const g = await Gateway.create({ public: { history, ...(limits ? { limits } : {}) } });
    cleanup.push(() => g.stop());
    await g.start();
    const proxy = await TcpProxy.create(g.port);
    cleanup.push(() => proxy.close());
    const spy = await spyWebSocket();
    const c = new PavilionClient({
      url: proxy.url, token: () => g.token(uid('u'), ALL), WebSocket: spy.WebSocket,
      minReconnectDelayMs: 50, maxReconnectDelayMs: 200,
    });
    cleanup.push(() => c.close());
    c.connect();
    await c.ready(5000);
    return { g, proxy, spy, c };
  }

  test('a history channel acks offset and epoch; publications carry increasing offsets', async () => {
    const { g, c } = await setup();
    const zone = c.channel(`zone:${uid('h')}`);
    const pubs = record(zone, ['publication']);
    const ack = await zone.subscribe();
    assert.equal(typeof ack.offset, 'number', `ack ${JSON.stringify(ack)} has an offset`);
    assert.equal(typeof ack.epoch, 'string', `ack ${JSON.stringify(ack)} has an epoch`);
    const answers = [];
    for (let i = 1; i <= 3; i++) answers.push(await g.api.publish(zone.channel, 'note', { i }));
    await until(() => pubs.events.length === 3, 5000, 'three publications');
    const offsets = pubs.of('publication').map((p) => p.offset);
    assert.deepEqual(offsets, [ack.offset + 1, ack.offset + 2, ack.offset + 3]);
    assert.deepEqual(answers.map((a) => a.offset), offsets, 'the API answers the channel offset');
    assert.ok(answers.every((a) => a.epoch === ack.epoch), 'the API answers the epoch');
    assert.deepEqual(zone.position, { offset: ack.offset + 3, epoch: ack.epoch });
  });

  test('after a cut: recover brings exactly the missed publications, in order, before live ones', async () => {
    const { g, proxy, spy, c } = await setup();
    const zone = c.channel(`zone:${uid('r')}`);
    const pubs = record(zone, ['publication']);
    const lost = record(c, ['unrecovered']);
    const ack = await zone.subscribe();
    for (let i = 1; i <= 2; i++) await g.api.publish(zone.channel, 'note', { i });
    await until(() => pubs.events.length === 2, 5000, 'two live publications');
    const back = await offline(c, proxy);
    for (let i = 3; i <= 7; i++) await g.api.publish(zone.channel, 'note', { i });
    const resubscribed = next(zone, 'subscribed', undefined, 5000);
    back();
    const again = await resubscribed;
    assert.equal(again.recovered, true, `ack ${JSON.stringify(again)}`);
    await g.api.publish(zone.channel, 'note', { i: 8 });
    await until(() => pubs.events.length >= 8, 5000, 'eight publications');
    assert.deepEqual(pubs.of('publication').map((p) => p.payload.i), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(pubs.of('publication').map((p) => p.offset),
      Array.from({ length: 8 }, (_, k) => ack.offset + 1 + k));
    assert.deepEqual(lost.events, []);
    const subs = spy.sent.filter((m) => m.type === 'subscribe' && m.payload.channel === zone.channel);
    assert.equal(subs.length, 2);
    assert.deepEqual(subs[1].payload.parameters.recover, { offset: ack.offset + 2, epoch: ack.epoch });
  });

  test('after a 4008 close: publications the gateway dropped come back through recovery, none twice', async () => {
    const { g, proxy, c } = await setup({
      history: { zone: { size: 5000, ttl_s: 300 } }, limits: { outbound_queue_bytes: 65536 },
    });
    const zone = c.channel(`zone:${uid('s')}`);
    const pubs = record(zone, ['publication']);
    await zone.subscribe();
    const down = next(c, 'disconnected', undefined, 30000);
    proxy.stall({ backpressure: true });
    const body = 'y'.repeat(20000);
    let n = await g.api.publishUntilClose(zone.channel, 4008, (i) => ({ n: i, body }), 3000);
    const resubscribed = next(zone, 'subscribed', undefined, 30000);
    proxy.resume();
    assert.equal((await down).code, 4008);
    assert.equal((await resubscribed).recovered, true);
    await g.api.publish(zone.channel, 'bulk', { n: ++n });
    await until(() => pubs.events.length >= n, 20000, `${n} publications`);
    assert.deepEqual(pubs.of('publication').map((p) => p.payload.n), Array.from({ length: n }, (_, k) => k + 1));
  });

  test('history no longer holds what was missed: recovered false, unrecovered event, live delivery goes on', async () => {
    const { g, proxy, c } = await setup({ history: { zone: { size: 3, ttl_s: 300 } } });
    const zone = c.channel(`zone:${uid('u')}`);
    const pubs = record(zone, ['publication']);
    const subLost = record(zone, ['unrecovered']);
    await zone.subscribe();
    await g.api.publish(zone.channel, 'note', { i: 1 });
    await until(() => pubs.events.length === 1, 5000, 'one publication');
    const seen = zone.position;
    const back = await offline(c, proxy);
    for (let i = 2; i <= 7; i++) await g.api.publish(zone.channel, 'note', { i });
    const unrecovered = next(c, 'unrecovered', undefined, 5000);
    back();
    const info = await unrecovered;
    assert.equal(info.channel, zone.channel);
    assert.equal(info.subscription, zone);
    assert.deepEqual(info.previous, seen);
    assert.equal(subLost.events.length, 1);
    assert.deepEqual(pubs.of('publication').map((p) => p.payload.i), [1], 'nothing replayed');
    await g.api.publish(zone.channel, 'note', { i: 8 });
    await until(() => pubs.events.length === 2, 5000, 'the live publication');
    assert.equal(pubs.of('publication')[1].payload.i, 8);
  });

  test('a restarted gateway (new epoch): recovered false and unrecovered', async () => {
    const { g, c } = await setup();
    // this client goes straight to the gateway, so that the restart closes it
    const direct = new PavilionClient({ url: g.url, token: () => g.token(uid('d'), ALL), minReconnectDelayMs: 50, maxReconnectDelayMs: 200 });
    cleanup.push(() => direct.close());
    c.close();
    direct.connect();
    await direct.ready(5000);
    const zone = direct.channel(`zone:${uid('e')}`);
    const first = await zone.subscribe();
    await g.api.publish(zone.channel, 'note', { i: 1 });
    await until(() => zone.position?.offset === first.offset + 1, 5000, 'one publication');
    const unrecovered = next(direct, 'unrecovered', undefined, 20000);
    await g.restart();
    const info = await unrecovered;
    assert.equal(info.previous.epoch, first.epoch);
    assert.notEqual(info.current?.epoch, first.epoch, 'a new epoch after the restart');
  });
});
