// The browser voice test: a tab (Debian's Chromium through playwright-core,
// headless, the microphone fed from a speech WAV) calls a headless Rust
// peer (`softphone peer --auto accept --audio-in --audio-out`) over a real
// `softphone server`, voice flows both ways for the length of the speech,
// and the recordings come out as WAV files with their wall-clock starts:
//
//   OUT/browser-sent.wav   what the tab's microphone gave the encoder
//   OUT/browser-heard.wav  what the tab played (recorded on the call's output node)
//   OUT/peer-heard.wav     the peer's --audio-out
//   OUT/result.json        start times (ms since the epoch), quality, stats
//
// Scored by tests/sdk/web_voice.rs (PESQ-WB, cross-correlation delay).
//   node tests/voice/browser-call.mjs --softphone PATH/softphone --speech tests/data/speech-harvard-22k.wav --out DIR [--processing off]
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    softphone: { type: 'string' },
    speech: { type: 'string' },
    out: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    // Speech length plus this much more before hanging up.
    tail: { type: 'string', default: '1500' },
    // getUserMedia's echo cancellation, noise suppression and gain control:
    // `on` (all three, the page's choice), `off`, or a comma list of those on
    // (echoCancellation,noiseSuppression,autoGainControl).
    processing: { type: 'string', default: 'on' },
  },
});
for (const name of ['softphone', 'speech', 'out']) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const out = resolve(args.out);
const PROCESSING = ['echoCancellation', 'noiseSuppression', 'autoGainControl'];
const processingOn = args.processing === 'on' ? PROCESSING : args.processing === 'off' ? [] : args.processing.split(',');
for (const name of processingOn) if (!PROCESSING.includes(name)) throw new Error(`--processing: unknown ${name}`);
const processing = Object.fromEntries(PROCESSING.map((name) => [name, processingOn.includes(name)]));
mkdirSync(out, { recursive: true });
/** Every wait of this test gives up after this long (a stuck part fails the test, it does not hang it). */
const DEADLINE_MS = 30_000;

const children = [];
function launch(name, argv) {
  const child = spawn(args.softphone, argv, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  children.push(child);
  const lines = [];
  const waiters = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const at = Date.now();
    for (const w of waiters.splice(0)) if (!w(line, at)) waiters.push(w);
    lines.push([line, at]);
  });
  child.on('exit', (code, signal) => lines.push([`${name} exited ${code ?? signal}`, Date.now()]));
  /** The first line (past or future) that `match` accepts, and when it was read. */
  const line = (match, what) =>
    new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no ${what} within ${DEADLINE_MS} ms; lines: ${lines.map((l) => l[0]).join(' | ')}`)), DEADLINE_MS);
      const check = (text, at) => {
        if (!match(text)) return false;
        clearTimeout(timer);
        resolveLine({ text, at });
        return true;
      };
      for (const [text, at] of lines) if (check(text, at)) return;
      waiters.push(check);
    });
  const exited = new Promise((r) => child.on('exit', r));
  return { child, line, exited };
}

async function bundlePage() {
  const build = (entry, format) =>
    esbuild.build({ entryPoints: [entry], bundle: true, format, write: false, target: 'chrome110', logLevel: 'warning' })
      .then((r) => r.outputFiles[0].contents);
  return {
    '/': [readFileSync(join(here, 'page/index.html')), 'text/html'],
    '/page.js': [await build(join(here, 'page/page.ts'), 'iife'), 'text/javascript'],
    '/worklet.js': [await build(join(here, '../../src/voice/worklet.ts'), 'esm'), 'text/javascript'],
    '/recorder.js': [await build(join(here, 'page/recorder.ts'), 'esm'), 'text/javascript'],
  };
}

function serve(files) {
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file) return res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
    res.writeHead(200, { 'content-type': file[1] }).end(file[0]);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

function wav(pcm, path) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(48_000, 24);
  header.writeUInt32LE(96_000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(pcm.length, 40);
  writeFileSync(path, Buffer.concat([header, pcm]));
}

function speechSeconds(path) {
  const bytes = readFileSync(path);
  const rate = bytes.readUInt32LE(24);
  const blockAlign = bytes.readUInt16LE(32);
  const data = bytes.indexOf('data');
  return bytes.readUInt32LE(data + 4) / blockAlign / rate;
}

let browser;
let http;
try {
  // The test page comes from a server of its own, so the signaling server
  // must let that origin in (it refuses pages of other origins with 403).
  http = await serve(await bundlePage());
  const page_url = `http://127.0.0.1:${http.address().port}/`;
  const origin = page_url.slice(0, -1);
  const server = launch('server', ['server', '--listen', '127.0.0.1:0', '--allow-origin', origin]);
  const listening = await server.line((l) => l.startsWith('listening on '), 'listening line');
  const url = listening.text.slice('listening on '.length).trim();
  const peer = launch('peer', [
    'peer', '--server', url, '--id', 'bob', '--auto', 'accept',
    '--audio-in', resolve(args.speech), '--audio-out', join(out, 'peer-heard.wav'),
  ]);
  await peer.line((l) => l.includes('"connected"'), 'connected line');
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
      '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${resolve(args.speech)}`,
    ],
  });
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(page_url);
  const started = await page.evaluate((opts) => window.voiceTest.start(opts), { server: url, me: 'alice', callee: 'bob', processing });
  const peerStarted = await peer.line((l) => l.includes('"voice":"started"'), 'voice started line');
  const peerLine = JSON.parse(peerStarted.text);
  const hold = speechSeconds(args.speech) * 1000 + Number(args.tail);
  await new Promise((r) => setTimeout(r, hold));
  const result = await page.evaluate(() => window.voiceTest.finish());
  await browser.close();
  browser = null;
  peer.child.kill('SIGTERM');
  await Promise.race([peer.exited, new Promise((r) => setTimeout(r, DEADLINE_MS))]);
  const peerStopped = await peer.line((l) => l.includes('"voice":"stopped"'), 'voice stopped line').catch((e) => ({ text: JSON.stringify({ error: e.message }) }));
  server.child.kill('SIGTERM');
  await Promise.race([server.exited, new Promise((r) => setTimeout(r, DEADLINE_MS))]);
  wav(Buffer.from(result.sent.pcm, 'base64'), join(out, 'browser-sent.wav'));
  wav(Buffer.from(result.heard.pcm, 'base64'), join(out, 'browser-heard.wav'));
  const summary = {
    safety_code: { browser: result.safetyCode, peer: peerLine.safety_code },
    peer_transport: peerLine.transport,
    peer_stopped: JSON.parse(peerStopped.text),
    peer_started_ms: peerStarted.at,
    // When the peer said its voice stopped: with its start, the wall time its --audio-out covered.
    peer_stopped_ms: peerStopped.at ?? null,
    sent_start_ms: result.sent.startMs,
    heard_start_ms: result.heard.startMs,
    // Recorded length against the wall clock's: equal when the audio clocks kept real time.
    clocks: {
      sent: { recorded_ms: result.sent.ms, wall_ms: result.sent.endMs - result.sent.startMs },
      heard: { recorded_ms: result.heard.ms, wall_ms: result.heard.endMs - result.heard.startMs },
    },
    processing,
    latency: started,
    capture: result.capture,
    ended_early: result.ended,
    quality: result.quality,
    stats: result.stats,
    levels: result.levels,
  };
  writeFileSync(join(out, 'result.json'), JSON.stringify(summary, null, 2));
  console.log(JSON.stringify(summary));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (http) http.close();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
