/**
 * A Chromium whose tabs can really go to the background. Playwright's own
 * launch emulates focus on every page it drives, which keeps each page
 * `visible` whatever happens to its window; so this starts Debian's
 * Chromium itself with a DevTools port and attaches with `noDefaults`,
 * under which Playwright leaves the pages of the browser's own context
 * alone. A tab opened in front of another then hides it for real
 * (`document.hidden`, `visibilitychange`), as a person switching tabs does.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's Chromium, or the one `CHROMIUM` names; never a download. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * A headless Chromium as every page test runs it: no background traffic,
 * the fake microphone granted without asking, sound without a gesture.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** How long Chromium has to print its DevTools address. */
const START_DEADLINE_MS = 30_000;

export class TabbedChromium {
  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
    readonly browser: Browser,
    /** The browser's own context: its tabs share one window. */
    readonly context: BrowserContext,
  ) {}

  /** Starts Chromium (headless unless `headful`, with the given extra switches) and attaches. */
  static async start(options: { executable: string; args?: string[]; headful?: boolean; env?: NodeJS.ProcessEnv }): Promise<TabbedChromium> {
    const profile = mkdtempSync(join(tmpdir(), 'softphone-chromium-'));
    const args = [
      ...(options.headful ? [] : ['--headless=new']),
      '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--remote-debugging-port=0', `--user-data-dir=${profile}`,
      ...(options.args ?? []),
      'about:blank',
    ];
    // A process group of its own: closing ends Chromium's helper processes too, before its profile is removed.
    const child = spawn(options.executable, args, { stdio: ['ignore', 'ignore', 'pipe'], env: options.env ?? process.env, detached: true });
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let seen = '';
        const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools address within ${START_DEADLINE_MS} ms:\n${seen}`)), START_DEADLINE_MS);
        child.stderr!.on('data', (chunk) => {
          seen += String(chunk);
          const found = /DevTools listening on (ws:\S+)/.exec(seen);
          if (found) {
            clearTimeout(timer);
            resolve(found[1]);
          }
        });
        child.once('exit', (code) => reject(new Error(`Chromium exited (${code}) before it listened:\n${seen}`)));
      });
      child.stderr!.resume();
      // `noDefaults` is Playwright's own switch for a browser it did not
      // launch: no focus emulation on the default context's pages.
      const browser = await chromium.connectOverCDP(endpoint, { noDefaults: true } as Parameters<typeof chromium.connectOverCDP>[1]);
      return new TabbedChromium(child, profile, browser, browser.contexts()[0]);
    } catch (e) {
      killGroup(child, 'SIGKILL');
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      throw e;
    }
  }

  /** The first tab (Chromium opens one). */
  async firstTab(): Promise<Page> {
    return this.context.pages()[0] ?? (await this.context.newPage());
  }

  /** Opens a tab in front of the others in the same window: the one behind becomes hidden. */
  async openTabInFront(url = 'about:blank'): Promise<Page> {
    const session = await this.browser.newBrowserCDPSession();
    const opened = this.context.waitForEvent('page');
    await session.send('Target.createTarget', { url, newWindow: false, background: false });
    await session.detach();
    return opened;
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      killGroup(this.child, 'SIGTERM');
      await exited;
    }
    // Its helpers (same group) that outlived it.
    killGroup(this.child, 'SIGKILL');
    // A helper may still be writing its last files: retry, and never fail a test on it.
    try {
      rmSync(this.profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      console.log(`could not remove the Chromium profile ${this.profile}: ${e}`);
    }
  }
}

/** Sends `signal` to the process group `child` leads (it was spawned detached); gone already is fine. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // No such group any more.
  }
}
