// Two gateway nodes on one Redis (store backend "redis"): one gateway to the
// client. Runs only with PAVILION_JS_REDIS=1 (it needs the redis backend and
// redis-server); skipped otherwise.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { PavilionClient } from '../dist/index.js';
import { ALL, Gateway, next, record, Redis, TcpProxy, uid, until } from './helpers.mjs';

const enabled = process.env.PAVILION_JS_REDIS === '1';

describe('two nodes on one Redis', { timeout: 180000, skip: !enabled && 'set PAVILION_JS_REDIS=1 to run (redis backend)' }, () => {
  let redis;
  let a;
  let b;
  let proxy;
  const clients = [];

  before(async () => {
    redis = await Redis.start();
    const shared = {
      secret: randomBytes(24).toString('base64url'),
      apiKey: `key-${randomBytes(12).toString('hex')}`,
      store: { backend: 'redis', url: redis.url },
      public: { history: { zone: { size: 100, ttl_s: 300 } } },
    };
    a = await Gateway.create(shared);
    b = await Gateway.create(shared);
    await a.start();
    await b.start();
    proxy = await TcpProxy.create(a.port);
  });

  after(async () => {
    for (const c of clients) c.close();
    await proxy?.close();
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  function client(sub, url) {
    const c = new PavilionClient({ url, token: () => a.token(sub, ALL), minReconnectDelayMs: 50, maxReconnectDelayMs: 300 });
    clients.push(c);
    return c;
  }

  test('publications and notifications through one node reach clients on the other', async () => {
    const user = uid('alice');
    const c = client(user, a.url);
    c.connect();
    await c.ready(5000);
    const zone = c.channel(`zone:${uid('z')}`);
    await zone.subscribe();
    const pub = next(zone, 'publication');
    await b.api.publish(zone.channel, 'note', { via: 'b' });
    assert.deepEqual((await pub).payload, { via: 'b' });
    const note = next(c, 'notification');
    const { id } = await b.api.notify(user, { type: 'like', content: 'from b' });
    assert.equal((await note)[0].id, id);
  });

  test('presence across nodes: a client on B sees a user of A', async () => {
    const zone = `zone:${uid('p')}`;
    const onA = client(uid('bob'), a.url);
    const onB = client(uid('carol'), b.url);
    onA.connect();
    onB.connect();
    await Promise.all([onA.ready(5000), onB.ready(5000)]);
    await onA.subscribe(zone);
    const seen = next(onB, 'status_update', (u) => u.userId === onA.userId);
    await onB.subscribe(zone, { presence: true });
    assert.equal((await seen)[0].status, 'online');
  });

  test('node A dies: the client moves to B and recovers what was published meanwhile', async () => {
    const user = uid('dave');
    const c = client(user, proxy.url);
    c.connect();
    await c.ready(5000);
    const zone = c.channel(`zone:${uid('f')}`);
    const pubs = record(zone, ['publication']);
    const notes = record(c, ['notification']);
    await zone.subscribe();
    await b.api.publish(zone.channel, 'note', { i: 1 });
    const n1 = (await b.api.notify(user, { type: 'like', content: 'n1' })).id;
    await until(() => pubs.events.length === 1 && notes.events.length === 1, 5000, 'first publication and notification');
    proxy.block();
    const down = next(c, 'disconnected', undefined, 10000);
    await a.kill();
    await down;
    for (let i = 2; i <= 4; i++) await b.api.publish(zone.channel, 'note', { i });
    const n2 = (await b.api.notify(user, { type: 'like', content: 'n2' })).id;
    proxy.targetPort = b.port;
    const resubscribed = next(zone, 'subscribed', undefined, 10000);
    proxy.unblock();
    assert.equal((await resubscribed).recovered, true);
    await until(() => pubs.events.length === 4 && notes.events.length === 2, 10000, 'the missed ones');
    assert.deepEqual(pubs.of('publication').map((p) => p.payload.i), [1, 2, 3, 4]);
    assert.deepEqual(notes.of('notification').map((n) => n.id), [n1, n2]);
  });
});
