// Tokens: renewal with `auth` before `exp`, and what a close with 4001 does
// (reconnect only with a new token from the getter).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { ErrorCode, PavilionClient, PavilionError } from '../dist/index.js';
import { gatewayBehindProxy, mint, next, record, sleep, spyWebSocket, uid, until } from './helpers.mjs';

describe('tokens', { timeout: 180000 }, () => {
  const { g, proxy, clients } = gatewayBehindProxy({ leewayS: 0 });

  function client(token, extra = {}) {
    const c = new PavilionClient({ url: proxy.url, token, minReconnectDelayMs: 50, maxReconnectDelayMs: 200, ...extra });
    clients.push(c);
    return c;
  }

  test('short-lived tokens are renewed with auth before exp; the connection outlives them', async () => {
    const user = uid('alice');
    const spy = await spyWebSocket();
    // 3 s tokens, each one new (jti): renewal at half their life (they are under 2 × 30 s)
    const c = client(() => g.token(user, { jti: randomBytes(6).toString('hex') }, 3), { WebSocket: spy.WebSocket });
    const ev = record(c, ['tokenRenewed', 'disconnected', 'error']);
    c.connect();
    await c.ready(5000);
    await until(() => ev.of('tokenRenewed').length >= 3, 15000, 'three renewals');
    // more than one lifetime has passed: without renewal the gateway would have closed it
    assert.deepEqual(ev.of('disconnected'), []);
    assert.deepEqual(ev.of('error'), []);
    assert.equal(c.state, 'connected');
    assert.equal((await c.request('heartbeat_ack')).for, 'heartbeat_ack');
    const auths = spy.sent.filter((m) => m.type === 'auth');
    assert.ok(auths.length >= 3);
    assert.ok(auths.every((m) => typeof m.payload.token === 'string' && typeof m.id === 'string'));
    const exps = ev.of('tokenRenewed').map((i) => i.exp);
    assert.ok(exps.every((e, i) => i === 0 || e > exps[i - 1]), `exp grows: ${exps}`);
  });

  test('a token that cannot be renewed expires: close 4001, same token again → stay disconnected', async () => {
    const token = g.token(uid('bob'), {}, 2);
    const c = client(() => token);
    const ev = record(c, ['disconnected', 'authFailed', 'error']);
    c.connect();
    await c.ready(5000);
    const failed = await next(c, 'authFailed', undefined, 10000);
    assert.equal(failed.code, 4001);
    assert.equal(c.state, 'disconnected');
    assert.ok(ev.of('error').some((e) => e.code === ErrorCode.AUTH), 'error 1001 token expired reported');
    assert.deepEqual(ev.of('disconnected').map((d) => [d.code, d.reconnect]), [[4001, false]]);
    const accepted = proxy.accepted;
    await sleep(800); // eight times the largest reconnect delay
    assert.equal(proxy.accepted, accepted, 'no reconnect attempt');
  });

  test('revoked (4001) and the getter yields a new token: reconnects', async () => {
    const user = uid('carol');
    const c = client(() => g.token(user, { jti: randomBytes(6).toString('hex') }));
    c.connect();
    await c.ready(5000);
    const err = next(c, 'error');
    const back = next(c, 'connected', (i) => i.reconnected, 5000);
    const down = next(c, 'disconnected');
    assert.equal((await g.api.revoke(user)).closed, 1);
    assert.equal((await err).code, ErrorCode.AUTH);
    const d = await down;
    assert.equal(d.code, 4001);
    assert.equal(d.reconnect, true);
    await back;
  });

  test('revoked (4001) and the getter yields the same token: authFailed, no reconnect until connect()', async () => {
    const user = uid('dave');
    const token = g.token(user);
    const c = client(() => token);
    c.connect();
    await c.ready(5000);
    const failed = next(c, 'authFailed');
    await g.api.revoke(user);
    assert.equal((await failed).code, 4001);
    const accepted = proxy.accepted;
    await sleep(800);
    assert.equal(proxy.accepted, accepted, 'no reconnect attempt');
    assert.equal(c.state, 'disconnected');
    c.connect(); // the application decides to try again
    await c.ready(5000);
  });

  test('revoked (4001) and the getter throws: authFailed carries the error', async () => {
    const user = uid('erin');
    let calls = 0;
    const c = client(() => {
      if (++calls > 1) throw new Error('logged out');
      return g.token(user);
    });
    c.connect();
    await c.ready(5000);
    const failed = next(c, 'authFailed');
    await g.api.revoke(user);
    const info = await failed;
    assert.equal(info.code, 4001);
    assert.equal(info.error.message, 'logged out');
    assert.equal(c.state, 'disconnected');
  });

  test('a bad token at connect: error 1001, authFailed, ready() rejects', async () => {
    const bad = mint('not-the-secret', { sub: uid('fay') });
    const c = client(() => bad);
    const err = next(c, 'error');
    const ready = c.ready(5000);
    c.connect();
    const e = await err;
    assert.ok(e instanceof PavilionError);
    assert.equal(e.code, ErrorCode.AUTH);
    await assert.rejects(ready, (x) => x.code === 4001);
  });

  test('a renewal the gateway refuses is reported; the connection stays', async () => {
    const user = uid('gus');
    let calls = 0;
    // first token: 3 s; renewals: a token of another user (refused with 1001)
    const c = client(() => (++calls === 1 ? g.token(user, {}, 3) : g.token(uid('mallory'))));
    c.connect();
    await c.ready(5000);
    const e = await next(c, 'error', undefined, 5000);
    assert.equal(e.code, ErrorCode.AUTH);
    assert.equal(e.requestType, 'auth');
    assert.equal(c.state, 'connected');
  });
});
