/**
 * The desktop app calls a browser tab: a real `softphone server`, the real
 * desktop app (the `softphone` binary with no subcommand, built with its
 * default `desktop` feature) on an Xvfb display of its own, driven by
 * xdotool key presses as a person types, and a tab of Debian's Chromium
 * (playwright-core, headless, fake microphone). The app dials the tab's
 * peer, the tab accepts, both show the same safety code (the tab's
 * "Safety code" element; the app's log line "voice call started ...
 * safety_code=..."), and the tab hangs up, which the app's QA timeline
 * (`--log-events`) shows. The test machine has no sound card: the app's
 * voice runs without a device (silence out, nothing played) and says so.
 *
 * Needs /usr/bin/Xvfb and /usr/bin/xdotool (`.ci/setup` installs them).
 * `cargo test --test app web_tab` runs it (tests/app/web_tab.rs).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Browser } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { Server, binary } from './support/processes.js';

/** Every wait here gives up after this long: a stuck part fails the test, it does not hang it. */
const DEADLINE_MS = 30_000;
const run = promisify(execFile);
const children: ChildProcess[] = [];
let browser: Browser | undefined;
let server: Server | undefined;

after(async () => {
  await browser?.close().catch(() => undefined);
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await server?.stop();
});

/** Waits until `check` gives a value (polled every 100 ms), or fails saying `what`. */
async function until<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`no ${what} within ${DEADLINE_MS} ms\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts Xvfb on a display nobody uses (it picks one itself: `-displayfd`); resolves to `:N`. */
async function startXvfb(): Promise<string> {
  const xvfb = spawn('/usr/bin/Xvfb', ['-displayfd', '3', '-screen', '0', '1280x900x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  children.push(xvfb);
  xvfb.stderr!.resume();
  const fd3 = xvfb.stdio[3] as NodeJS.ReadableStream;
  const number = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('Xvfb named no display')), DEADLINE_MS);
    fd3.on('data', (chunk) => {
      text += String(chunk);
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(text.trim());
      }
    });
    xvfb.once('exit', (code) => reject(new Error(`Xvfb exited (${code}); is it installed? (.ci/setup)`)));
  });
  return `:${number}`;
}

/** The desktop app as a child: its log (stdout and stderr) and its QA timeline's lines. */
function startApp(display: string, serverUrl: string, peerId: string) {
  const home = mkdtempSync(join(tmpdir(), 'softphone-app-'));
  const timeline = join(home, 'events.jsonl');
  const app = spawn(binary(), ['--server', serverUrl, '--peer-id', peerId, '--device', 'desktop', '--log-events', timeline], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DISPLAY: display,
      WAYLAND_DISPLAY: '',
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_DATA_HOME: join(home, 'data'),
      SOFTPHONE_HOME: join(home, 'softphone'),
      // No sound server nor card: the app's voice must do without one.
      PULSE_SERVER: join(home, 'no-pulse'),
      RUST_LOG: 'softphone=info,warn',
      NO_COLOR: '1',
    },
  });
  children.push(app);
  let log = '';
  app.stdout.on('data', (chunk) => (log += String(chunk)));
  app.stderr.on('data', (chunk) => (log += String(chunk)));
  return {
    /** The log so far, without terminal colours. */
    log: () => log.replace(/\x1b\[[0-9;]*m/g, ''),
    /** The timeline's lines so far, parsed. */
    events: (): Record<string, any>[] =>
      existsSync(timeline) ? readFileSync(timeline, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [],
    exited: () => app.exitCode !== null || app.signalCode !== null,
  };
}

async function xdotool(display: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/xdotool', args, { env: { ...process.env, DISPLAY: display }, timeout: DEADLINE_MS });
  return stdout.trim();
}

test('the desktop app calls a tab under Xvfb: the tab accepts, both show the same safety code, the tab hangs up', async () => {
  server = await Server.start();
  const display = await startXvfb();
  const app = startApp(display, server.wsUrl, 'deskapp');
  const appDetail = () => `app log:\n${app.log()}\ntimeline:\n${app.events().map((e) => JSON.stringify(e)).join('\n')}`;

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  await context.grantPermissions(['microphone']);
  const page = await context.newPage();
  page.setDefaultTimeout(DEADLINE_MS);
  await page.goto(server.httpUrl);
  await page.getByRole('textbox', { name: 'Peer id' }).fill('webtab');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as webtab').waitFor();

  // The app is signed in and shows its dial screen.
  await until('signed-in app on its dial screen', () => !app.exited() && app.events().some((e) => e.kind === 'ui' && e.screen === 'dial' && e.connection === 'connected'), appDetail);
  const windows = await until('app window', () => xdotool(display, 'search', '--name', 'softphone').catch(() => ''), appDetail);
  const id = windows.split('\n')[0];
  // Typed as a person would: Tab to the first field (the peer to call), the id, Enter.
  await xdotool(display, 'windowfocus', '--sync', id);
  await xdotool(display, 'key', '--window', id, 'Tab');
  await xdotool(display, 'type', '--window', id, '--delay', '30', 'webtab');
  await xdotool(display, 'key', '--window', id, 'Return');

  const dialog = page.getByRole('dialog', { name: 'Incoming call' });
  await dialog.getByText('deskapp is calling').waitFor();
  await dialog.getByRole('button', { name: 'Accept' }).click();
  await page.getByRole('button', { name: 'Hang up' }).waitFor();

  const tabCode = page.getByLabel('Safety code');
  await tabCode.filter({ hasText: /^\d{6}$/ }).waitFor();
  const shownInTab = (await tabCode.textContent())!.trim();
  const started = await until('"voice call started" in the app log', () => /voice call started.*/.exec(app.log())?.[0], appDetail);
  const shownInApp = /safety_code=(\d{6})/.exec(started)?.[1];
  assert.equal(shownInApp, shownInTab, `the same safety code on both screens (app: ${started})`);
  assert.match(started, /protected=true/, 'a v1.2 code, which protects the call');
  assert.ok(app.events().some((e) => e.kind === 'ui' && e.screen === 'in_call' && e.call?.peer === 'webtab'), 'the app shows the call');

  // What the app said of its sound (no card here): printed, for the record.
  for (const line of app.log().split('\n').filter((l) => /audio|device|sound|voice/i.test(l))) console.log(`app: ${line.trim()}`);
  console.log(`safety code: the tab ${shownInTab}, the app ${shownInApp}`);

  await page.getByRole('button', { name: 'Hang up' }).click();
  await page.locator('.notice').filter({ hasText: 'Call with deskapp ended' }).waitFor();
  await until('the hang-up in the app', () => app.events().some((e) => e.kind === 'sdk' && e.event === 'hung_up' && e.by === 'webtab'), appDetail);
  await until('the app back on its dial screen', () => {
    const ui = app.events().filter((e) => e.kind === 'ui');
    return ui.length > 0 && ui[ui.length - 1].screen === 'dial' && ui[ui.length - 1].call === null;
  }, appDetail);
});
