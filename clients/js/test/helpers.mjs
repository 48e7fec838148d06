// Test helpers: the real gateway binary with a generated configuration, HS256
// tokens, the internal API, a TCP proxy that can cut or stall connections,
// and bounded waits. Loopback only.
//
// PAVILION_BUILD  the gateway's build directory (default <repo>/build): its
//                 src/pavilion-gateway and plugins/*.so are copied to a temp
//                 dir first, so a rebuild running meanwhile cannot break a test.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

export const JS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(JS_DIR, '..', '..');
export const BUILD = resolve(process.env.PAVILION_BUILD || join(REPO, 'build'));

const TMP_ROOT = mkdtempSync(join(tmpdir(), 'pavilion-js-'));
process.on('exit', () => {
  if (!process.env.PAVILION_KEEP_TMP) rmSync(TMP_ROOT, { recursive: true, force: true });
});

let snapshot;
/** A private copy of the gateway binary and its plugins. */
export function gatewayBinary() {
  if (snapshot) return snapshot;
  const bin = join(BUILD, 'src', 'pavilion-gateway');
  if (!existsSync(bin)) throw new Error(`gateway binary not built: ${bin} (set PAVILION_BUILD)`);
  const dir = join(TMP_ROOT, 'bin');
  mkdirSync(join(dir, 'plugins'), { recursive: true });
  copyFileSync(bin, join(dir, 'pavilion-gateway'));
  for (const f of readdirSync(join(BUILD, 'plugins'))) {
    if (f.endsWith('.so')) copyFileSync(join(BUILD, 'plugins', f), join(dir, 'plugins', f));
  }
  snapshot = { bin: join(dir, 'pavilion-gateway'), plugins: join(dir, 'plugins') };
  return snapshot;
}

// ------------------------------------------------------------------ time
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function until(fn, timeoutMs = 5000, what = 'condition', everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The next `event` of `emitter` whose arguments pass `pred`, within `timeoutMs`. */
export function next(emitter, event, pred = () => true, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`));
    }, timeoutMs);
    const off = emitter.on(event, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}

/** Records every event of the listed names: `rec.events` is [[name, ...args]]. */
export function record(emitter, names) {
  const events = [];
  const offs = names.map((n) => emitter.on(n, (...args) => events.push([n, ...args])));
  return { events, of: (n) => events.filter((e) => e[0] === n).map((e) => e[1]), stop: () => offs.forEach((o) => o()) };
}

// ------------------------------------------------------------------ ports, tokens
const portsGiven = new Set();

function boundPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A port free now and not handed out before in this process: the kernel
 * may give the same port to two listen(0) calls in a row, and a gateway
 * then gets one port for its public and its API vhost. */
export async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = await boundPort();
    if (!portsGiven.has(port)) {
      portsGiven.add(port);
      return port;
    }
  }
  throw new Error('no fresh free port in 100 tries');
}

export function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(500, () => done(false));
  });
}

/** Token claims that allow every zone, chat and channel. */
export const ALL = { zones: ['*'], chats: ['*'], channels: ['*'] };

const b64u = (b) => Buffer.from(b).toString('base64url');

/** An HS256 JWT. `claims` gets iat/exp from `ttl` (seconds) unless given. */
export function mint(secret, claims, ttl = 300) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iat: now, exp: now + ttl, ...claims };
  const si = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(body))}`;
  return `${si}.${createHmac('sha256', secret).update(si).digest('base64url')}`;
}

let seq = 0;
const run = randomBytes(3).toString('hex');
/** An id unique in this run (`[A-Za-z0-9_-]`). */
export const uid = (prefix = 'u') => `${prefix}-${run}-${++seq}`;

// ------------------------------------------------------------------ the gateway
/**
 * One gateway process: a public plain-ws vhost with the protocol plugins and
 * an internal API vhost, memory store, on free loopback ports.
 *
 * options: public (merged into the public vhost, one level deep), store, top
 * (merged into the top level), heartbeatS, leewayS, plugins, tls (a self-signed
 * certificate made with openssl: wss), secret and apiKey
 * (to share them between nodes), port and apiPort.
 */
export class Gateway {
  static async create(options = {}) {
    const g = new Gateway();
    await g.configure(options);
    return g;
  }

  async configure(options) {
    const { bin, plugins } = gatewayBinary();
    this.bin = bin;
    this.dir = mkdtempSync(join(TMP_ROOT, 'gw-'));
    this.secret = options.secret ?? randomBytes(24).toString('base64url');
    this.apiKey = options.apiKey ?? `key-${randomBytes(12).toString('hex')}`;
    writeFileSync(join(this.dir, 'jwt.key'), `${this.secret}\n`);
    writeFileSync(join(this.dir, 'api.keys'), `# test\n${this.apiKey}\n`);
    this.port = options.port ?? await freePort();
    this.apiPort = options.apiPort ?? await freePort();
    const pub = {
      name: 'public',
      listen: `127.0.0.1:${this.port}`,
      namespace: 'default',
      websocket: { path: '/ws', heartbeat_interval_s: options.heartbeatS ?? 30, idle_timeout_s: 90 },
      auth: { algorithms: ['HS256'], key_file: join(this.dir, 'jwt.key'), leeway_s: options.leewayS ?? 0 },
      limits: { messages_per_s: 1000, burst: 1000, max_connections_per_ip: 1000, handshakes_per_s_per_ip: 1000 },
      plugins: options.plugins ?? {
        subscription: { policy: 'claims' }, notification: {}, chat: {}, presence: {},
      },
    };
    if (options.tls) {
      const cert = join(this.dir, 'cert.pem');
      const key = join(this.dir, 'key.pem');
      const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8', timeout: 30000 });
      if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);
      pub.tls = { cert, key };
    }
    for (const [k, v] of Object.entries(options.public ?? {})) {
      pub[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof pub[k] === 'object' ? { ...pub[k], ...v } : v;
    }
    this.config = {
      plugin_dirs: [plugins],
      log: { level: 'info', format: 'text' },
      store: options.store ?? { backend: 'memory' },
      vhosts: [pub, { name: 'internal', listen: `127.0.0.1:${this.apiPort}`, namespace: 'default',
        api: { keys_file: join(this.dir, 'api.keys') } }],
      ...(options.top ?? {}),
    };
    this.confPath = join(this.dir, 'gateway.json');
    writeFileSync(this.confPath, JSON.stringify(this.config, null, 2));
    this.url = `${options.tls ? 'wss' : 'ws'}://127.0.0.1:${this.port}/ws`;
    this.api = new Api(`http://127.0.0.1:${this.apiPort}`, this.apiKey);
  }

  /** A token for `sub` signed with this gateway's key (`claims` added, `ttl` in s). */
  token(sub, claims = {}, ttl = 300) {
    return mint(this.secret, { sub, ...claims }, ttl);
  }

  /** Starts the process and waits (≤ 10 s) until both ports accept. */
  async start() {
    const log = join(this.dir, 'stderr.log');
    this.logPath = log;
    this.proc = spawn(this.bin, ['-c', this.confPath], { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir });
    this.exited = new Promise((r) => this.proc.once('exit', (code, sig) => r({ code, sig })));
    let text = '';
    this.proc.stderr.on('data', (d) => {
      text += d;
      writeFileSync(log, text);
    });
    this.logText = () => text;
    const deadline = Date.now() + 10000;
    for (const port of [this.port, this.apiPort]) {
      for (;;) {
        if (this.proc.exitCode !== null) throw new Error(`gateway exited ${this.proc.exitCode}:\n${text}`);
        if (await canConnect(port)) break;
        if (Date.now() > deadline) throw new Error(`gateway did not listen on ${port}:\n${text}`);
        await sleep(30);
      }
    }
    return this;
  }

  /** SIGTERM (every client gets 1001), waits for the exit (≤ 15 s, then SIGKILL). */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(t);
  }

  /** SIGKILL: the sockets die without close frames. */
  async kill() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async restart() {
    await this.stop();
    await this.start();
  }
}

/** The internal HTTP API. */
export class Api {
  constructor(base, key) {
    this.base = base;
    this.key = key;
  }

  async call(method, path, body) {
    const headers = { Authorization: `Bearer ${this.key}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(this.base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(5000),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, json, text };
  }

  async publish(channel, type, payload, expect = 202) {
    const r = await this.call('POST', '/v1/publish', { channel, type, payload });
    if (expect !== null && r.status !== expect) throw new Error(`publish ${channel}: ${r.status} ${r.text}`);
    return r.json;
  }

  async notify(userId, notification, expect = 201) {
    const r = await this.call('POST', '/v1/notifications', { userId, notification });
    if (expect !== null && r.status !== expect) throw new Error(`notify ${userId}: ${r.status} ${r.text}`);
    return r.json;
  }

  async revoke(userId) {
    return (await this.call('DELETE', `/v1/users/${userId}/connections`)).json;
  }

  async subscribers(channel) {
    return (await this.call('GET', `/v1/channels/${channel}`)).json?.subscribers;
  }

  async presence(userId) {
    return (await this.call('GET', `/v1/users/${userId}/presence`)).json;
  }

  async metric(name, label) {
    const r = await fetch(`${this.base}/metrics`, { signal: AbortSignal.timeout(5000) });
    let total = 0;
    for (const line of (await r.text()).split('\n')) {
      if (line.startsWith(name) && (!label || line.includes(label))) total += Number(line.split(' ').pop()) || 0;
    }
    return total;
  }

  /**
   * Publishes `bulk` messages to `channel`, `payload(i)` for i = 1, 2, …, ten
   * at a time, until the gateway counts one more close with `code` (a
   * connection it gave up on); fails after `max` publications. Returns how
   * many it published.
   */
  async publishUntilClose(channel, code, payload, max) {
    const label = `code="${code}"`;
    const before = await this.metric('pavilion_closes_total', label);
    let n = 0;
    while ((await this.metric('pavilion_closes_total', label)) === before) {
      assert.ok(n < max, `no ${code} after ${max} publications`);
      for (let k = 0; k < 10; k++) await this.publish(channel, 'bulk', payload(++n));
    }
    return n;
  }
}

// ------------------------------------------------------------------ TCP proxy
/**
 * A loopback TCP proxy in front of `targetPort` (which may be changed for new
 * connections). `cut()` destroys every connection (the client sees the socket
 * die, no close frame); `block()` refuses new ones; `stall()` stops
 * forwarding in both directions (a dead path: nothing arrives, nothing is
 * refused) and, with `backpressure`, stops reading the gateway's side so that
 * its send queue fills; `resume()` undoes it.
 */
export class TcpProxy {
  static async create(targetPort) {
    const p = new TcpProxy(targetPort);
    await p.listen();
    return p;
  }

  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.stalled = false;
    this.accepted = 0;
  }

  listen() {
    this.server = net.createServer((client) => this.accept(client));
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => {
      this.port = this.server.address().port;
      resolve();
    }));
  }

  accept(client) {
    this.accepted++;
    if (this.blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ port: this.targetPort, host: '127.0.0.1' });
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => { if (!this.stalled) upstream.write(d); });
    upstream.on('data', (d) => { if (!this.stalled) client.write(d); });
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    if (this.backpressure) upstream.pause();
  }

  /** Drops every connection at once. */
  cut() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Refuses new connections (accepts and drops them at once) until `unblock()`. */
  block() {
    this.blocked = true;
  }

  unblock() {
    this.blocked = false;
  }

  /** Stops forwarding (bytes are discarded), or with backpressure stops reading the gateway. */
  stall({ backpressure = false } = {}) {
    if (backpressure) {
      this.backpressure = true;
      for (const { upstream } of this.pairs) upstream.pause();
    } else {
      this.stalled = true;
    }
  }

  resume() {
    this.stalled = false;
    this.backpressure = false;
    for (const { upstream } of this.pairs) upstream.resume();
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  close() {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/**
 * The gateway and proxy of a describe block's tests: a gateway (`options` as
 * for Gateway.create) with a TcpProxy in front, started before the tests and
 * stopped after them, once every client pushed to `clients` is closed. The
 * objects exist at once (configured and started in `before`), so that the
 * block can destructure them.
 */
export function gatewayBehindProxy(options = {}) {
  const g = new Gateway();
  const proxy = new TcpProxy();
  const clients = [];
  before(async () => {
    await g.configure(options);
    await g.start();
    proxy.targetPort = g.port;
    await proxy.listen();
  });
  after(async () => {
    for (const c of clients) c.close();
    await proxy.close();
    await g.stop();
  });
  return { g, proxy, clients };
}

/**
 * Cuts client `c` off through `proxy` and keeps it off (new connections
 * refused) once it reported the disconnect; the returned function lets it back.
 */
export async function offline(c, proxy) {
  proxy.block();
  const down = next(c, 'disconnected');
  proxy.cut();
  await down;
  return () => proxy.unblock();
}

/** A `ws` WebSocket class that records every message the client sends (parsed). */
export async function spyWebSocket() {
  const { WebSocket } = await import('ws');
  const sent = [];
  class Spy extends WebSocket {
    send(data, ...rest) {
      sent.push(JSON.parse(String(data)));
      return super.send(data, ...rest);
    }
  }
  return { WebSocket: Spy, sent };
}

/** A throwaway redis-server on a free loopback port (no persistence). */
export class Redis {
  static async start() {
    const r = new Redis();
    r.port = await freePort();
    r.dir = mkdtempSync(join(TMP_ROOT, 'redis-'));
    r.proc = spawn('redis-server', ['--port', String(r.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--dir', r.dir], { stdio: 'ignore' });
    r.exited = new Promise((res) => r.proc.once('exit', res));
    r.proc.once('error', () => undefined);
    await until(() => canConnect(r.port), 10000, `redis-server on ${r.port}`, 50);
    r.url = `redis://127.0.0.1:${r.port}/0`;
    return r;
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }
}
