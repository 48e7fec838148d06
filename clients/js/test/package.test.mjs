// The package as a user gets it: `npm pack` makes a tarball that installs
// into an empty project, imports in Node (ESM), type-checks from TypeScript,
// and ships a browser bundle without the `ws` package.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { JS_DIR } from './helpers.mjs';

const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', timeout: 180000, stdio: ['ignore', 'pipe', 'pipe'] });

describe('npm package', { timeout: 180000 }, () => {
  let dir;
  let installed;
  let packed;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pavilion-pack-'));
    // dist/ is built already; scripts off so that packing does not rebuild it under other tests
    const out = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], JS_DIR);
    [packed] = JSON.parse(out);
    const app = join(dir, 'app');
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed.filename)], app);
    installed = join(app, 'node_modules', 'pavilion-gateway-client');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the tarball holds dist (JS, declarations, browser bundle) and no sources or tests', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/client.d.ts', 'dist/pavilion.browser.js']) {
      assert.ok(files.includes(f), `${f} in the tarball`);
    }
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('node_modules/')), files.join(' '));
  });

  test('installs with ws as its only dependency and imports in Node', () => {
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    assert.deepEqual(Object.keys(pkg.dependencies), ['ws']);
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import * as m from 'pavilion-gateway-client';
      const c = new m.PavilionClient({ url: 'ws://127.0.0.1:9/ws', token: 'x' });
      console.log(JSON.stringify({ keys: Object.keys(m).sort(), state: c.state, code: m.ErrorCode.PERMISSION_DENIED }));
    `], { cwd: join(installed, '..', '..'), encoding: 'utf8', timeout: 30000 });
    const r = JSON.parse(out);
    assert.equal(r.state, 'disconnected');
    assert.equal(r.code, 1004);
    for (const k of ['PavilionClient', 'Subscription', 'PavilionError', 'QueueFullError', 'ErrorCode', 'CloseCode']) {
      assert.ok(r.keys.includes(k), `${k} exported`);
    }
  });

  test('type-checks from a strict TypeScript consumer', () => {
    const app = join(installed, '..', '..');
    writeFileSync(join(app, 'use.ts'), `
      import { PavilionClient, PavilionError, ErrorCode, type Notification, type Publication } from 'pavilion-gateway-client';
      const client = new PavilionClient({ url: 'wss://gw.example/ws', token: async () => 'jwt', maxQueue: 10 });
      client.on('notification', (n: Notification) => console.log(n.id, n.content));
      client.on('disconnected', (i) => console.log(i.code, i.reconnect, i.delayMs));
      const room = client.channel('chat:lobby');
      room.on('publication', (p: Publication) => console.log(p.type, p.offset));
      room.subscribe().catch((e: unknown) => {
        if (e instanceof PavilionError && e.code === ErrorCode.PERMISSION_DENIED) console.log('denied');
      });
      // @ts-expect-error: not an event of the client
      client.on('no-such-event', () => undefined);
      client.connect();
    `);
    const tsc = join(JS_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        noEmit: true, strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2020',
        lib: ['es2020', 'dom'], types: [],
      },
      files: ['use.ts'],
    }));
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8', timeout: 120000 });
  });

  test('the browser bundle type-checks from a strict TypeScript consumer', () => {
    const app = join(installed, '..', '..');
    writeFileSync(join(app, 'page.ts'), `
      import { PavilionClient, type Publication } from 'pavilion-gateway-client/browser';
      const client = new PavilionClient({ url: 'wss://gw.example/ws', token: 'jwt' });
      client.channel('chat:lobby').on('publication', (p: Publication) => console.log(p.type));
      // @ts-expect-error: not an option of the client
      new PavilionClient({ url: 'wss://gw.example/ws', token: 'jwt', nope: 1 });
    `);
    const tsc = join(JS_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const resolution of ['nodenext', 'bundler']) {
      writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          noEmit: true, strict: true, module: resolution === 'bundler' ? 'esnext' : 'nodenext',
          moduleResolution: resolution, target: 'es2020', lib: ['es2020', 'dom'], types: [],
        },
        files: ['page.ts'],
      }));
      execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8', timeout: 120000 });
    }
  });

  test('both entry points type-check with moduleResolution node10 (no exports map)', () => {
    // node10 ignores `exports`: the main entry comes from `types`, /browser from `typesVersions`
    const app = join(installed, '..', '..');
    writeFileSync(join(app, 'legacy.ts'), `
      import { PavilionClient, type Publication } from 'pavilion-gateway-client/browser';
      import { PavilionClient as NodeClient, ErrorCode } from 'pavilion-gateway-client';
      const client = new PavilionClient({ url: 'wss://gw.example/ws', token: 'jwt' });
      client.channel('chat:lobby').on('publication', (p: Publication) => console.log(p.type));
      const other: NodeClient = client;
      console.log(other.state, ErrorCode.AUTH);
      // @ts-expect-error: not an option of the client
      new PavilionClient({ url: 'wss://gw.example/ws', token: 'jwt', nope: 1 });
    `);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        noEmit: true, strict: true, module: 'es2020', moduleResolution: 'node10', target: 'es2020',
        lib: ['es2020', 'dom'], types: [],
      },
      files: ['legacy.ts'],
    }));
    const tsc = join(JS_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8', timeout: 120000 });
  });

  test('the browser bundle is self-contained ESM without ws', () => {
    const bundle = readFileSync(join(installed, 'dist', 'pavilion.browser.js'), 'utf8');
    assert.match(bundle, /export \{/);
    assert.doesNotMatch(bundle, /from ["']ws["']|import\(["']ws["']\)|require\(["']ws["']\)/);
    assert.doesNotMatch(bundle, /#websocket/);
    assert.ok(existsSync(join(installed, 'dist', 'websocket-node.js')));
  });
});
