#!/usr/bin/env node
// Development server for the example page. NOT for production: it hands out
// a token for any user name it is given.
//
// It serves the page and the browser bundle, and plays the backend:
//   POST /token        {user}            → {token}   (runs `pavilion-gateway token`)
//   POST /api/notify   {user, content}   → the gateway's internal API: a notification
//   POST /api/chat     {user, content}   → the internal API: a chat_message to the room
//   GET  /api/inbox?user=ID              → the internal API: the user's inbox
//   GET  /config                         → {wsUrl, zone, room}
//
// Defaults fit `bash scripts/dev-run.sh` (run from the repository root):
//   PAVILION_GATEWAY   build/src/pavilion-gateway
//   PAVILION_CONFIG    build/dev/gateway.json
//   PAVILION_WS_URL    wss://127.0.0.1:8443/ws
//   PAVILION_API_URL   http://127.0.0.1:8081
//   PAVILION_API_KEY   (else the first key of PAVILION_API_KEYS_FILE, default build/dev/api.keys)
//   EXAMPLE_ZONE       lobby          EXAMPLE_ROOM   lobby
//   PORT               8090 (127.0.0.1 only)
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
const env = process.env;
const cfg = {
  gateway: env.PAVILION_GATEWAY ?? join(repo, 'build', 'src', 'pavilion-gateway'),
  config: env.PAVILION_CONFIG ?? join(repo, 'build', 'dev', 'gateway.json'),
  wsUrl: env.PAVILION_WS_URL ?? 'wss://127.0.0.1:8443/ws',
  apiUrl: env.PAVILION_API_URL ?? 'http://127.0.0.1:8081',
  zone: env.EXAMPLE_ZONE ?? 'lobby',
  room: env.EXAMPLE_ROOM ?? 'lobby',
  port: Number(env.PORT ?? 8090),
  tokenTtl: Number(env.EXAMPLE_TOKEN_TTL ?? 3600),
};
const apiKey = () => env.PAVILION_API_KEY ?? readFileSync(env.PAVILION_API_KEYS_FILE ?? join(repo, 'build', 'dev', 'api.keys'), 'utf8')
  .split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));

const files = {
  '/': [join(here, 'index.html'), 'text/html; charset=utf-8'],
  '/app.js': [join(here, 'app.js'), 'text/javascript; charset=utf-8'],
  '/style.css': [join(here, 'style.css'), 'text/css; charset=utf-8'],
  '/pavilion.browser.js': [join(here, '..', 'dist', 'pavilion.browser.js'), 'text/javascript; charset=utf-8'],
};

const USER_RE = /^[A-Za-z0-9_-]{1,64}$/;

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

async function readJson(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('body too large');
  }
  return JSON.parse(body || '{}');
}

function mintToken(user) {
  const claims = JSON.stringify({ zones: [cfg.zone], chats: [cfg.room], username: user });
  return new Promise((ok, fail) => execFile(cfg.gateway,
    ['token', '-c', cfg.config, '--sub', user, '--claims', claims, '--ttl', String(cfg.tokenTtl)],
    { timeout: 10000 }, (err, stdout, stderr) => (err ? fail(new Error(stderr || err.message)) : ok(stdout.trim()))));
}

async function api(method, path, body) {
  const r = await fetch(cfg.apiUrl + path, {
    method,
    headers: { Authorization: `Bearer ${apiKey()}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, json: await r.json().catch(() => null) };
}

async function route(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const file = files[url.pathname];
  if (req.method === 'GET' && file) return send(res, 200, readFileSync(file[0]), file[1]);
  if (req.method === 'GET' && url.pathname === '/config') {
    return send(res, 200, { wsUrl: cfg.wsUrl, zone: cfg.zone, room: cfg.room });
  }
  if (req.method === 'GET' && url.pathname === '/api/inbox') {
    const user = url.searchParams.get('user') ?? '';
    if (!USER_RE.test(user)) return send(res, 400, { error: 'bad user' });
    const r = await api('GET', `/v1/users/${user}/notifications`);
    return send(res, r.status, r.json);
  }
  if (req.method !== 'POST') return send(res, 404, { error: 'not found' });
  const body = await readJson(req);
  const user = String(body.user ?? '');
  if (!USER_RE.test(user)) return send(res, 400, { error: 'user must be 1-64 of [A-Za-z0-9_-]' });
  if (url.pathname === '/token') return send(res, 200, { token: await mintToken(user) });
  const content = String(body.content ?? '').slice(0, 2000);
  if (url.pathname === '/api/notify') {
    const r = await api('POST', '/v1/notifications', {
      userId: user, notification: { type: 'message', content, sender: { id: 'dev-server', username: 'dev server', profilePhoto: '' } },
    });
    return send(res, r.status, r.json);
  }
  if (url.pathname === '/api/chat') {
    const r = await api('POST', '/v1/publish', {
      channel: `chat:${cfg.room}`,
      type: 'chat_message',
      payload: {
        id: randomUUID(), roomId: cfg.room, sender: { id: user, username: user, profilePhoto: '' },
        content, createdAt: new Date().toISOString(), attachments: [],
      },
    });
    return send(res, r.status, r.json);
  }
  return send(res, 404, { error: 'not found' });
}

const server = createServer((req, res) => {
  route(req, res).catch((err) => send(res, 500, { error: String(err.message ?? err) }));
});
server.listen(cfg.port, '127.0.0.1', () => {
  console.log(`example: http://127.0.0.1:${server.address().port}/  (gateway ${cfg.wsUrl}, API ${cfg.apiUrl})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
