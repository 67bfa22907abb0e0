// Builds the browser phone into dist/ (committed; the server embeds it with
// include_bytes!, see src/server/web.rs): the page's bundle, its stylesheet,
// its HTML, the voice playout worklet, and gzip copies of the text files.
//
//   node build.mjs           build into dist/
//   node build.mjs --check   build into a temporary folder and fail if dist/
//                            differs (tests/server/web.rs runs this, so the
//                            committed dist/ never goes stale)
import * as esbuild from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes('--check');
const dist = join(here, 'dist');
const out = check ? mkdtempSync(join(tmpdir(), 'softphone-web-')) : dist;
mkdirSync(out, { recursive: true });

// Chromium/Edge 94 and Firefox 130 are the oldest with WebCodecs Opus (docs/web.md).
const target = ['chrome94', 'firefox130', 'safari17'];
const common = { bundle: true, minify: true, target, legalComments: 'none', logLevel: 'warning', write: false };

async function bundle(entry, options = {}) {
  const result = await esbuild.build({ ...common, entryPoints: [join(here, entry)], ...options });
  return result.outputFiles[0].contents;
}

const files = {};
files['app.js'] = await bundle('src/page/main.ts', { format: 'iife' });
files['app.css'] = await bundle('src/page/app.css', { loader: { '.css': 'css' } });
// The voice's capture and playout worklets (web/src/voice/worklet.ts), a
// module of their own: AudioWorklet.addModule loads them from 'self'.
files['worklet.js'] = await bundle('src/voice/worklet.ts', { format: 'esm' });
const html = readFileSync(join(here, 'src/page/index.html'), 'utf8');
files['index.html'] = new TextEncoder().encode(html.replace(/\n\s*/g, '\n'));
files['icon.svg'] = readFileSync(join(here, 'src/page/icon.svg'));
for (const name of ['index.html', 'app.js', 'app.css']) {
  files[`${name}.gz`] = gzipSync(files[name], { level: 9 });
}

for (const [name, bytes] of Object.entries(files)) writeFileSync(join(out, name), bytes);

if (check) {
  const stale = [];
  const names = new Set([...Object.keys(files), ...(existsSync(dist) ? readdirSync(dist) : [])]);
  for (const name of names) {
    const built = files[name];
    const path = join(dist, name);
    const committed = existsSync(path) ? readFileSync(path) : null;
    if (!built || !committed || Buffer.compare(Buffer.from(built), committed) !== 0) stale.push(name);
  }
  rmSync(out, { recursive: true, force: true });
  if (stale.length > 0) {
    console.error(`web/dist is stale (${stale.join(', ')}): run \`npm run build\` in web/ and commit dist/`);
    process.exit(1);
  }
  console.log('web/dist is what the sources build');
} else {
  const sizes = Object.entries(files).map(([n, b]) => `${n} ${b.length}`).join(', ');
  console.log(`built ${dist}: ${sizes}`);
}
