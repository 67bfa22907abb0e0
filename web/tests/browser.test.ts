/**
 * The browser phone in Debian's Chromium (playwright-core, headless, fake
 * microphone) against a real `softphone server` and real headless peers:
 * signing in, placing calls and every ending, being called (refuse with
 * Esc, accept with Enter), two tabs of one peer ringing together, the
 * network dropping mid-call, a server with a secret. Only the automation
 * contract's names are used to find controls (docs/web.md).
 *
 * SCREENSHOTS=DIR saves the screens as PNG files there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Server, Peer } from './support/processes.js';
import { CHROMIUM, TabbedChromium, launchChromium } from './support/chromium.js';

const shots = process.env.SCREENSHOTS;
let browser: Browser;
let server: Server;
const peers: Peer[] = [];
const contexts: BrowserContext[] = [];

before(async () => {
  // Short timers so that "offline" and "no answer" end within seconds.
  server = await Server.start({ args: ['--offline-grace', '1s', '--invite-ttl', '4s'] });
  browser = await launchChromium();
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  for (const p of peers) await p.stop();
  await server?.stop();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  await context.grantPermissions(['microphone', 'notifications']);
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().includes('ERR_CONNECTION_REFUSED')) console.log(`page console error: ${m.text()}`);
  });
  return page;
}

async function peer(id: string, args: string[] = [], on = server): Promise<Peer> {
  const p = await Peer.start(on, id, args);
  peers.push(p);
  return p;
}

async function signIn(page: Page, id: string, on = server, token = ''): Promise<void> {
  await page.goto(on.httpUrl);
  await page.getByRole('textbox', { name: 'Peer id' }).fill(id);
  if (token) await page.getByRole('textbox', { name: /Token/ }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(`Signed in as ${id}`).waitFor();
}

async function shot(page: Page, name: string): Promise<void> {
  if (shots) await page.screenshot({ path: `${shots}/web-${name}.png` });
}

async function dial(page: Page, id: string): Promise<void> {
  await page.getByRole('textbox', { name: 'Peer to call' }).fill(id);
  await page.getByRole('button', { name: 'Call', exact: true }).click();
}

async function notice(page: Page, text: string | RegExp): Promise<void> {
  await page.locator('.notice').filter({ hasText: text }).waitFor();
}

test('sign in: the form is interactive on a cold cache, the page loads under its CSP, without errors', async () => {
  const page = await newPage();
  let transferred = 0;
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
  });
  page.on('requestfinished', async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) transferred += sizes.responseBodySize + sizes.responseHeadersSize;
  });
  const started = Date.now();
  await page.goto(server.httpUrl);
  const peerId = page.getByRole('textbox', { name: 'Peer id' });
  await peerId.waitFor();
  assert.ok(await peerId.isEditable());
  const interactive = Date.now() - started;
  await page.waitForLoadState('networkidle');
  console.log(`FIGURE cold-cache time to an interactive sign-in form: ${interactive} ms`);
  console.log(`FIGURE page transferred (compressed, headers included): ${transferred} bytes`);
  assert.match(await page.title(), /Sign in/);
  await shot(page, 'sign-in');
  await peerId.fill('webuser');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as webuser').waitFor();
  assert.match(await page.title(), /webuser/);
  assert.deepEqual(violations, []);
  await shot(page, 'phone');
});

test('call a headless peer: ringing out with ringback and Cancel, accepted, hung up', async () => {
  const bob = await peer('bob', ['--auto', 'accept', '--after', '1500ms']);
  const page = await newPage();
  await signIn(page, 'alice');
  await dial(page, 'bob');
  await page.getByRole('button', { name: 'Cancel' }).waitFor();
  assert.match(await page.title(), /Calling bob/);
  await page.locator('body[data-tone=ringback]').waitFor();
  await shot(page, 'calling');
  await page.getByRole('button', { name: 'Hang up' }).waitFor();
  assert.equal(await page.locator('body[data-tone]').count(), 0, 'the ringback stops once answered');
  assert.match(await page.title(), /In call with bob/);
  await page.getByRole('button', { name: 'Mute' }).waitFor();
  await bob.event('invitation_accepted');
  // The headless peer runs without voice here: the page says so plainly.
  await page.getByText(/No voice: the other phone offers no voice/).waitFor();
  await page.getByRole('button', { name: 'Hang up' }).click();
  const hungUp = await bob.event('hung_up');
  assert.equal(hungUp.by, 'alice');
  await notice(page, 'Call with bob ended');
  await page.getByRole('list', { name: 'History' }).getByText(/Call with bob ended/).waitFor();
});

test('a call with voice keys: the page shows the same six-digit safety code as the headless peer', async () => {
  const speech = `${process.env.WEB_DIR}/../crates/core/tests/data/speech-harvard-22k.wav`;
  const vera = await peer('vera', ['--auto', 'accept', '--audio-in', speech]);
  const page = await newPage();
  await signIn(page, 'coder');
  await dial(page, 'vera');
  const started = await vera.voice('started');
  const code = page.getByLabel('Safety code');
  await code.filter({ hasText: /^\d{6}$/ }).waitFor();
  assert.equal(await code.textContent(), started.safety_code);
  // With a v1.1 peer (or server) the page says plainly that the code does not protect the call.
  const protects = await page.locator('.in-call').getAttribute('data-protects');
  if (protects === 'false') await page.getByText('The other phone is older: this code does not protect the call.').waitFor();
  else assert.equal(protects, 'true');
  await page.waitForTimeout(1500);
  await shot(page, 'in-call-voice');
  await page.getByRole('button', { name: 'Hang up' }).click();
  await vera.event('hung_up');
});

test('every ending said plainly: busy, declined, no answer, offline, canceled', async () => {
  await peer('busybody', ['--auto', 'refuse', '--response', 'busy']);
  await peer('decliner', ['--auto', 'refuse']);
  await peer('sleepy', ['--auto', 'ignore']);
  const page = await newPage();
  await signIn(page, 'caller');
  const endings: [string, string][] = [
    ['busybody', 'busybody is busy'],
    ['decliner', 'decliner declined'],
    ['sleepy', 'No answer from sleepy'],
    ['nobody-home', 'nobody-home is offline'],
  ];
  for (const [callee, sentence] of endings) {
    await dial(page, callee);
    await notice(page, sentence);
    assert.equal(await page.locator('body[data-tone]').count(), 0);
  }
  await dial(page, 'sleepy');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await notice(page, 'Call canceled');
  await shot(page, 'history');
});

test('be called and refuse with Esc: the dialog rings, then stops', async () => {
  const page = await newPage();
  await signIn(page, 'callee-r');
  const carol = await peer('carol');
  carol.send('call callee-r');
  const dialog = page.getByRole('dialog', { name: 'Incoming call' });
  await dialog.waitFor();
  await dialog.getByText('carol is calling').waitFor();
  await page.locator('body[data-tone=ringtone]').waitFor();
  assert.match(await page.title(), /Incoming call from carol/);
  await dialog.getByRole('button', { name: 'Refuse' }).waitFor();
  await shot(page, 'incoming');
  await page.keyboard.press('Escape');
  await carol.event('refused');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.locator('body[data-tone]').count(), 0);
});

/**
 * Keeps every `Notification` the page makes (title, body, tag) and what the
 * browser did with it (`show`, `close`, `error` events): a subclass of the
 * real constructor, so each notification is the browser's own.
 */
function recordNotifications(): void {
  const Real = window.Notification;
  const made: { title: string; body: string; tag: string; shown: boolean; closed: boolean; failed: boolean }[] = [];
  (window as unknown as { notifications: typeof made }).notifications = made;
  class Recorded extends Real {
    constructor(title: string, options?: NotificationOptions) {
      super(title, options);
      const entry = { title, body: options?.body ?? '', tag: options?.tag ?? '', shown: false, closed: false, failed: false };
      made.push(entry);
      this.addEventListener('show', () => (entry.shown = true));
      this.addEventListener('close', () => (entry.closed = true));
      this.addEventListener('error', () => (entry.failed = true));
    }
  }
  window.Notification = Recorded;
}

test('a call while the tab is hidden shows a desktop notification, closed when the ringing ends', async () => {
  const own = await TabbedChromium.start({ executable: CHROMIUM });
  try {
    await own.context.grantPermissions(['notifications'], { origin: new URL(server.httpUrl).origin });
    await own.context.addInitScript(recordNotifications);
    const page = await own.firstTab();
    page.setDefaultTimeout(15_000);
    await signIn(page, 'hidden-tab');
    const made = () => page.evaluate(() => (window as unknown as { notifications: { title: string; body: string; tag: string; shown: boolean; closed: boolean; failed: boolean }[] }).notifications);
    const heidi = await peer('heidi');

    // In front, a call rings in the page only.
    heidi.send('call hidden-tab');
    const dialog = page.getByRole('dialog', { name: 'Incoming call' });
    await dialog.waitFor();
    heidi.send('cancel');
    await dialog.waitFor({ state: 'detached' });
    assert.deepEqual(await made(), [], 'no notification while the tab is in front');

    // Another tab in front: this one is hidden, as when a person switches tabs.
    const front = await own.openTabInFront();
    // A hidden tab draws no frames: poll on a timer, not on animation frames.
    await page.waitForFunction(() => document.hidden, null, { polling: 100 });
    heidi.send('call hidden-tab');
    await page.waitForFunction(() => (window as unknown as { notifications: { shown: boolean }[] }).notifications.some((n) => n.shown), null, { polling: 100 });
    const ringing = (await made())[0];
    assert.equal(ringing.title, 'Incoming call');
    assert.equal(ringing.body, 'heidi is calling');
    assert.equal(ringing.failed, false);
    assert.equal(ringing.closed, false, 'it stays while the call rings');
    assert.match(await page.title(), /Incoming call from heidi/);

    // The caller gives up: the notification closes, and a missed call is said.
    heidi.send('cancel');
    await page.waitForFunction(() => (window as unknown as { notifications: { title: string; closed: boolean }[] }).notifications.some((n) => n.title === 'Incoming call' && n.closed), null, { polling: 100 });
    await page.waitForFunction(() => (window as unknown as { notifications: { title: string }[] }).notifications.some((n) => n.title === 'Missed call'), null, { polling: 100 });
    const missed = (await made()).find((n) => n.title === 'Missed call')!;
    assert.match(missed.body, /heidi/);
    await front.close();
    await page.waitForFunction(() => !document.hidden);
  } finally {
    await own.close();
  }
});

test('be called and accept with Enter; the caller hangs up', async () => {
  const page = await newPage();
  await signIn(page, 'callee-a');
  const dave = await peer('dave');
  dave.send('call callee-a');
  const dialog = page.getByRole('dialog', { name: 'Incoming call' });
  await dialog.getByRole('button', { name: 'Accept' }).waitFor();
  await page.keyboard.press('Enter');
  await dave.event('accepted');
  await page.getByRole('button', { name: 'Hang up' }).waitFor();
  assert.equal(await page.locator('body[data-tone]').count(), 0);
  assert.match(await page.title(), /In call with dave/);
  await shot(page, 'in-call');
  dave.send('hangup');
  await notice(page, 'dave hung up');
});

test('two tabs of one peer ring together; one answers, the other stops', async () => {
  const one = await newPage();
  const two = await newPage();
  await signIn(one, 'twotabs');
  await signIn(two, 'twotabs');
  const erin = await peer('erin');
  erin.send('call twotabs');
  const first = one.getByRole('dialog', { name: 'Incoming call' });
  const second = two.getByRole('dialog', { name: 'Incoming call' });
  await first.waitFor();
  await second.waitFor();
  await two.locator('body[data-tone=ringtone]').waitFor();
  await first.getByRole('button', { name: 'Accept' }).click();
  await erin.event('accepted');
  await one.getByRole('button', { name: 'Hang up' }).waitFor();
  await second.waitFor({ state: 'detached' });
  assert.equal(await two.locator('body[data-tone]').count(), 0);
  await notice(two, "erin's call was answered on another device");
  await one.getByRole('button', { name: 'Hang up' }).click();
  await erin.event('hung_up');
});

test('the network drops mid-call: the page reconnects and the call ends as the login says', async () => {
  const own = await Server.start();
  try {
    const frank = await peer('frank', ['--auto', 'accept'], own);
    const page = await newPage();
    await signIn(page, 'dropper', own);
    await dial(page, 'frank');
    await page.getByRole('button', { name: 'Hang up' }).waitFor();
    await frank.event('invitation_accepted');
    // The server dies with the call up; a new one (with no calls) takes its port.
    await own.restart();
    await page.getByRole('status').filter({ hasText: 'Connection lost' }).waitFor();
    await shot(page, 'reconnecting');
    await page.locator('body[data-connection=connected]').waitFor({ timeout: 20_000 });
    await notice(page, 'The call with frank ended while you were disconnected');
    await dial(page, 'frank');
    await page.getByRole('button', { name: 'Hang up' }).waitFor({ timeout: 20_000 });
    await page.getByRole('button', { name: 'Hang up' }).click();
    await notice(page, 'Call with frank ended');
  } finally {
    await own.stop();
  }
});

test('contacts show live presence, kept in the browser across a reload', async () => {
  const page = await newPage();
  await signIn(page, 'lister');
  await page.getByRole('textbox', { name: 'New contact' }).fill('zoe');
  await page.getByRole('button', { name: 'Add contact' }).click();
  await page.getByLabel('zoe is offline').waitFor();
  const zoe = await peer('zoe');
  await page.getByLabel('zoe is online').waitFor();
  await zoe.stop();
  await page.getByLabel('zoe is offline').waitFor();
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('list', { name: 'Contacts' }).getByText('zoe', { exact: true }).waitFor();
});

test('a server with a secret: without a token the page says so; with one it signs in', async () => {
  const guarded = await Server.start({ secret: 'a secret of more than sixteen bytes' });
  try {
    const page = await newPage();
    await page.goto(guarded.httpUrl);
    await page.getByRole('textbox', { name: 'Peer id' }).fill('grace');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'needs a valid token' }).waitFor();
    await signIn(page, 'grace', guarded, guarded.token('grace'));
  } finally {
    await guarded.stop();
  }
});
