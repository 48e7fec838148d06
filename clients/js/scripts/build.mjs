// Builds the package: tsc (ESM + .d.ts into dist/), then one esbuild bundle for
// <script type="module"> (dist/pavilion.browser.js) that must not contain `ws`.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')],
  { stdio: 'inherit' });

await esbuild.build({
  entryPoints: [join(dist, 'index.js')],
  outfile: join(dist, 'pavilion.browser.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'warning',
});

const bundle = readFileSync(join(dist, 'pavilion.browser.js'), 'utf8');
if (/from ['"]ws['"]|import\(['"]ws['"]\)/.test(bundle)) {
  console.error('build: the browser bundle refers to the ws package');
  process.exit(1);
}
console.log(`build: dist/ (tsc) and dist/pavilion.browser.js (${bundle.length} bytes)`);
