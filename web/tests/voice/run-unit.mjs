// Runs the voice unit tests (web/tests/voice/*.test.ts) with node's test
// runner: esbuild bundles each file for node first (node 20 runs no
// TypeScript), so the tests import the very sources the page bundles.
//   node tests/voice/run-unit.mjs
import * as esbuild from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'softphone-voice-tests-'));
const tests = readdirSync(here).filter((name) => name.endsWith('.test.ts'));
await esbuild.build({
  entryPoints: tests.map((name) => join(here, name)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // The vectors are read next to the sources, not next to the bundle.
  define: { 'import.meta.url': JSON.stringify(new URL('./x', `file://${here}/`).href) },
});
const files = readdirSync(out).filter((name) => name.endsWith('.mjs')).map((name) => join(out, name));
const result = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
process.exit(result.status ?? 1);
