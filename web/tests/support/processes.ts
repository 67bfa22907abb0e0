/**
 * Real processes for the web tests: a `softphone server` (the binary in
 * $SOFTPHONE_BIN, as cargo test hands it over) on 127.0.0.1:0, and headless
 * peers (`softphone peer`) driven through their script commands.
 */
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function binary(): string {
  const bin = process.env.SOFTPHONE_BIN;
  if (!bin) throw new Error('SOFTPHONE_BIN must name the softphone binary (cargo test sets it)');
  return bin;
}

/** Lines of a child's standard output, with waiting for one that matches. */
class Lines {
  readonly all: string[] = [];
  private waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  private taken = 0;

  constructor(child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      this.all.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(line)) return true;
        w.resolve(line);
        return false;
      });
    });
  }

  /** The first line (from the start) that passes `test`. */
  find(test: (line: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
    const seen = this.all.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; output so far:\n${this.all.join('\n')}`)), timeoutMs);
      this.waiters.push({ test, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  /** The next line at or after the cursor that passes `test` (each line is taken once). */
  async next(test: (line: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
    for (;;) {
      while (this.taken < this.all.length) {
        const line = this.all[this.taken++];
        if (test(line)) return line;
      }
      await this.find((l) => this.all.indexOf(l) >= this.taken, what, timeoutMs);
    }
  }
}

export interface ServerOptions {
  secret?: string;
  args?: string[];
  port?: number;
}

/** A running `softphone server`. */
export class Server {
  private constructor(
    private child: ChildProcessWithoutNullStreams,
    readonly port: number,
    readonly tls: boolean,
    private readonly options: ServerOptions,
  ) {}

  static async start(options: ServerOptions = {}): Promise<Server> {
    const args = ['server', '--listen', `127.0.0.1:${options.port ?? 0}`, ...(options.args ?? [])];
    if (options.secret !== undefined) {
      const dir = mkdtempSync(join(tmpdir(), 'softphone-web-secret-'));
      writeFileSync(join(dir, 'secret'), options.secret);
      args.push('--secret-file', join(dir, 'secret'));
    }
    const child = spawn(binary(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.resume();
    const lines = new Lines(child);
    const line = await lines.find((l) => l.startsWith('listening on '), '"listening on"');
    const url = new URL(line.slice('listening on '.length));
    return new Server(child, Number(url.port), url.protocol === 'wss:', options);
  }

  get wsUrl(): string {
    return `${this.tls ? 'wss' : 'ws'}://127.0.0.1:${this.port}/`;
  }
  get httpUrl(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}/`;
  }

  /** Kills the server at once (SIGKILL: the network drops for its clients). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }

  /** Starts a fresh server on the same port (its state is gone). */
  async restart(): Promise<void> {
    await this.kill();
    const again = await Server.start({ ...this.options, port: this.port });
    this.child = again.child;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }

  /** A login token for `peer`, minted by `softphone token`. */
  token(peer: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'softphone-web-secret-'));
    writeFileSync(join(dir, 'secret'), this.options.secret ?? '');
    return execFileSync(binary(), ['token', '--secret-file', join(dir, 'secret'), '--peer', peer, '--ttl', '1h'], { encoding: 'utf8' }).trim();
  }
}

/** A headless peer (`softphone peer`) and its JSON events. */
export class Peer {
  private readonly lines: Lines;
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = new Lines(child);
  }

  static async start(server: Server, id: string, args: string[] = []): Promise<Peer> {
    const child = spawn(binary(), ['peer', '--server', server.wsUrl, '--id', id, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.resume();
    const peer = new Peer(child);
    await peer.event('connected');
    return peer;
  }

  /** Sends one script command (`call alice`, `hangup`, ...). */
  send(command: string): void {
    this.child.stdin.write(`${command}\n`);
  }

  /** The next event of that name (each is taken once), parsed. */
  async event(name: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const line = await this.lines.next((l) => l.includes(`"event":"${name}"`), `event ${name}`, timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** The next voice line of that kind (`started`, `failed`, ...), parsed. */
  async voice(kind: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const line = await this.lines.next((l) => l.includes(`"voice":"${kind}"`), `voice ${kind}`, timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** The next reply to a command of that name. */
  async command(name: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const line = await this.lines.next((l) => l.includes(`"command":"${name}"`), `command ${name}`, timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}
