// Runs the web tests: bundles each tests/*.test.ts with esbuild into
// .test-build/, then node's own test runner over them (node 20 needs
// --experimental-websocket for a global WebSocket). A test that hangs fails
// after two minutes with its name, instead of stalling cargo test; the
// runner exits once every test has ended, even if a child or socket a test
// left behind would keep node alive (seen once under load: all 14 passed,
// then the file timed out).
//   npm test                 every test file
//   npm test -- sdk browser  only the files whose names contain a word
//   TEST_NAME=REGEX npm test -- browser   only the tests whose names match
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// One folder per run: cargo test runs the SDK and browser suites at once.
const out = join(here, '..', '.test-build', String(process.pid));
const words = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => words.length === 0 || words.some((w) => f.includes(w)));
if (files.length === 0) {
  console.error(`no test file matches ${words.join(' ')}`);
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
await esbuild.build({
  entryPoints: files.map((f) => join(here, f)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});
const built = files.map((f) => join(out, f.replace(/\.ts$/, '.mjs')));
const result = spawnSync(
  process.execPath,
  ['--experimental-websocket', '--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=120000', '--test-force-exit',
    ...(process.env.TEST_NAME ? [`--test-name-pattern=${process.env.TEST_NAME}`] : []), ...built],
  { stdio: 'inherit', env: { ...process.env, WEB_DIR: join(here, '..') } },
);
rmSync(out, { recursive: true, force: true });
process.exit(result.status ?? 1);
