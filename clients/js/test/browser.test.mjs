// The example page in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core; nothing downloads a browser) against a real gateway over
// wss with a self-signed certificate, served by examples/dev-server.mjs.
// Saves a screenshot to test-artifacts/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { PavilionClient } from '../dist/index.js';
import { canConnect, freePort, Gateway, JS_DIR, uid, until } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(JS_DIR, 'test-artifacts');

describe('example page in headless Chromium', { timeout: 180000 }, () => {
  let g;
  let server;
  let serverUrl;
  let context;
  let page;
  let profile;
  const room = uid('room');
  const zone = uid('zone');
  const user = uid('alice');
  const others = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing (apt-get install chromium)`);
    g = await Gateway.create({ tls: true });
    await g.start();
    const port = await freePort();
    server = spawn(process.execPath, [join(JS_DIR, 'examples', 'dev-server.mjs')], {
      env: {
        ...process.env, PORT: String(port), PAVILION_GATEWAY: g.bin, PAVILION_CONFIG: g.confPath,
        PAVILION_WS_URL: g.url, PAVILION_API_URL: `http://127.0.0.1:${g.apiPort}`, PAVILION_API_KEY: g.apiKey,
        EXAMPLE_ROOM: room, EXAMPLE_ZONE: zone,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await until(() => canConnect(port), 10000, 'the dev server');
    serverUrl = `http://127.0.0.1:${port}/`;
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'pavilion-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--ignore-certificate-errors'],
      ignoreHTTPSErrors: true,
      viewport: { width: 1200, height: 800 },
      timeout: 30000,
    });
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => console.error('page error:', e));
  });

  after(async () => {
    for (const c of others) c.close();
    await context?.close();
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    await g?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const state = () => page.locator('#state').getAttribute('data-state');
  const unread = () => page.locator('#unread').getAttribute('data-count');

  test('sign in with a dev token; notifications, mark read, chat, presence; survives a gateway restart', async () => {
    await page.goto(serverUrl);
    await page.fill('#user', user);
    await page.click('#login-button');
    await until(async () => (await state()) === 'connected', 15000, 'the page to connect');

    // notifications from the backend: the unread count follows, marking one read drops it
    const n1 = (await g.api.notify(user, { type: 'mention', content: 'first note' })).id;
    const n2 = (await g.api.notify(user, { type: 'mention', content: 'second note' })).id;
    await page.locator(`#notifications li[data-id="${n2}"]`).waitFor();
    assert.equal(await unread(), '2');
    await page.click(`#notifications li[data-id="${n1}"] button.mark-read`);
    await until(async () => (await unread()) === '1', 5000, 'unread count 1');
    const box = await g.api.call('GET', `/v1/users/${user}/notifications`);
    assert.deepEqual(box.json.notifications.map((n) => [n.id, n.isRead]), [[n1, true], [n2, false]]);

    // a chat message published by the backend, and one sent from the page
    await g.api.publish(`chat:${room}`, 'chat_message', {
      id: 'm1', roomId: room, sender: { id: 'bob', username: 'bob', profilePhoto: '' },
      content: 'hello from the backend', createdAt: new Date().toISOString(), attachments: [],
    });
    await page.locator('#chat-log li', { hasText: 'hello from the backend' }).waitFor();
    await page.fill('#chat-input', 'hello from the page');
    await page.press('#chat-input', 'Enter');
    await page.locator('#chat-log li', { hasText: 'hello from the page' }).waitFor();

    // someone else comes online in the zone
    const bobId = uid('bob');
    const bob = new PavilionClient({ url: g.url, token: () => g.token(bobId, { zones: [zone] }), wsOptions: { rejectUnauthorized: false } });
    others.push(bob);
    bob.connect();
    await bob.subscribe(`zone:${zone}`);
    await page.locator(`#online li[data-user="${bobId}"]`).waitFor();

    // the gateway restarts: the page reconnects by itself and still works
    await g.restart();
    await until(async () => (await state()) === 'connected', 20000, 'the page to reconnect');
    await page.locator('#events li', { hasText: 'reconnected' }).first().waitFor();
    const n3 = (await g.api.notify(user, { type: 'mention', content: 'after the restart' })).id;
    await page.locator(`#notifications li[data-id="${n3}"]`).waitFor();
    assert.equal(await unread(), '2');
    await g.api.publish(`chat:${room}`, 'chat_message', {
      id: 'm2', roomId: room, sender: { id: 'bob', username: 'bob', profilePhoto: '' },
      content: 'still here', createdAt: new Date().toISOString(), attachments: [],
    });
    await page.locator('#chat-log li', { hasText: 'still here' }).waitFor();
    await page.locator(`#online li[data-user="${bobId}"]`).waitFor();

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'example.png'), fullPage: true });
  });
});
