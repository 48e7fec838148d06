// The reconnect tests again, in a child process with the other WebSocket:
// Node's built-in one (undici) where the main run uses `ws` (Node 20: with
// --experimental-websocket), `ws` where the built-in one is the default (Node
// 22+: with --no-experimental-websocket). The child's tests are reported here
// one by one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { BUILD, JS_DIR } from './helpers.mjs';

const hasGlobal = typeof globalThis.WebSocket === 'function';
const other = hasGlobal
  ? { flag: '--no-experimental-websocket', name: 'ws' }
  : { flag: '--experimental-websocket', name: 'global' };

function runChild() {
  // without the variable the test runner sets for the files it runs, which
  // would make the child's runner skip its file
  const env = { ...process.env, PAVILION_BUILD: BUILD, PAVILION_JS_WEBSOCKET: other.name };
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [other.flag, '--test', '--test-reporter=tap', join('test', 'reconnect.test.mjs')], {
      cwd: JS_DIR, env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 240000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

/** The child's test results: `ok N - name` / `not ok N - name` one level into the suite, with the YAML block after. */
function results(tap) {
  const lines = tap.split('\n');
  const found = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {4}(not ok|ok) \d+ - (.*)$/.exec(lines[i]);
    if (!m) continue;
    const detail = [];
    for (let j = i + 1; j < lines.length && /^ {6}/.test(lines[j]); j++) detail.push(lines[j].trim());
    found.push({ ok: m[1] === 'ok', name: m[2], detail: detail.join('\n') });
  }
  return found;
}

test(`the reconnect tests with the ${other.name === 'global' ? "runtime's built-in WebSocket" : 'ws package'} (${other.flag})`,
  { timeout: 300000 }, async (t) => {
    const r = await runChild();
    const found = results(r.out);
    assert.ok(found.length >= 7, `the child ran the reconnect tests (exit ${r.code ?? r.signal}):\n${r.out.slice(-3000)}\n${r.err.slice(-2000)}`);
    for (const f of found) {
      await t.test(f.name, () => {
        if (!f.ok) assert.fail(`failed with the ${other.name} WebSocket:\n${f.detail}`);
      });
    }
    assert.equal(r.code, 0, `the child's exit (${r.signal ?? ''}):\n${r.out.slice(-2000)}\n${r.err.slice(-2000)}`);
  });
