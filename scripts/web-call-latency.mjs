// Click on "Call" in one tab -> the "Incoming call" dialog on screen in
// another, over N calls (default 50) on loopback: p50, p99 and max.
// Both tabs run in one headless Chromium against a real `softphone server`;
// each side stamps its own event on the shared wall clock
// (performance.timeOrigin + performance.now()): the caller a capture-phase
// click listener on the Call button, the callee the first animation frame
// after the dialog enters the DOM. The callee refuses (Esc) between calls.
//
//   cargo build --release --no-default-features
//   node scripts/web-call-latency.mjs [--calls 50] [--bin target/release/softphone]
//
// Needs web/node_modules (`bash .ci/setup`) and /usr/bin/chromium.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { chromium } = createRequire(join(root, 'web', 'package.json'))('playwright-core');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const calls = Number(arg('--calls', '50'));
const bin = arg('--bin', process.env.SOFTPHONE_BIN ?? join(root, 'target', 'release', 'softphone'));

const server = spawn(bin, ['server', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
const url = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).on('line', (line) => {
    if (line.startsWith('listening on ')) resolve(line.slice('listening on '.length).replace(/^ws/, 'http'));
  });
  server.once('exit', () => reject(new Error('the server exited')));
});
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
});
try {
  const tab = async (peer) => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    await page.getByRole('textbox', { name: 'Peer id' }).fill(peer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(`Signed in as ${peer}`).waitFor();
    return page;
  };
  const caller = await tab('latency-caller');
  const callee = await tab('latency-callee');
  await caller.evaluate(() => {
    window.clicks = [];
    document.addEventListener('click', (e) => {
      if (e.target instanceof Element && e.target.closest('button')?.textContent === 'Call') window.clicks.push(performance.timeOrigin + performance.now());
    }, true);
  });
  await callee.evaluate(() => {
    window.shown = [];
    let open = false;
    new MutationObserver(() => {
      const now = document.querySelector('[role=dialog]') !== null;
      if (now && !open) requestAnimationFrame(() => window.shown.push(performance.timeOrigin + performance.now()));
      open = now;
    }).observe(document.body, { childList: true, subtree: true });
  });
  for (let i = 0; i < calls; i++) {
    await caller.getByRole('textbox', { name: 'Peer to call' }).fill('latency-callee');
    await caller.getByRole('button', { name: 'Call', exact: true }).click();
    await callee.getByRole('dialog', { name: 'Incoming call' }).waitFor();
    await callee.keyboard.press('Escape');
    await caller.locator('.notice').filter({ hasText: 'latency-callee declined' }).waitFor();
    await caller.evaluate(() => (document.querySelector('.notice').textContent = ''));
  }
  const clicks = await caller.evaluate(() => window.clicks);
  const shown = await callee.evaluate(() => window.shown);
  const ms = clicks.map((c, i) => shown[i] - c).sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.ceil(q * ms.length) - 1)];
  console.log(`click "Call" -> "Incoming call" dialog on screen, ${ms.length} calls: p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${ms[ms.length - 1].toFixed(1)} ms`);
} finally {
  await browser.close();
  server.kill('SIGTERM');
}
