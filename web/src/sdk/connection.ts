/**
 * One WebSocket to the server: JSON frames out, request/reply matching by
 * `req` with a deadline per request, events handed to the owner. It knows
 * nothing of calls; the {@link Client} opens a new one for each attempt.
 */
import { SdkError, type ErrorCode } from './errors.js';

/** A JSON object as the protocol sends it. */
export type Message = { type: string; req?: number; [field: string]: unknown };

/** What a Connection tells its owner. */
export interface ConnectionHandlers {
  /** An event (a message without `req`, or an error without one). */
  onEvent(message: Message): void;
  /** The socket closed (after it opened, or failing to open). `code`/`reason` as the browser gives them. */
  onClose(code: number, reason: string): void;
}

/** The WebSocket constructor to use: the browser's, or one handed in (node, tests). */
export type WebSocketConstructor = new (url: string) => WebSocket;

interface Pending {
  resolve(message: Message): void;
  reject(error: SdkError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** One socket and its requests in flight. */
export class Connection {
  private readonly socket: WebSocket;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private closed = false;

  /** Opens `url`; resolves once the socket is open, rejects if it cannot open. */
  static open(
    url: string,
    handlers: ConnectionHandlers,
    requestTimeoutMs: number,
    Socket: WebSocketConstructor,
  ): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let socket: WebSocket;
      try {
        socket = new Socket(url);
      } catch (e) {
        reject(new SdkError('connect_failed', `bad server address ${url}: ${(e as Error).message}`));
        return;
      }
      const connection = new Connection(socket, handlers, requestTimeoutMs);
      let opened = false;
      // A connect that hangs (a dropped network, a half-open server) fails by this deadline.
      const deadline = setTimeout(() => {
        reject(new SdkError('connect_failed', `cannot reach ${url} within ${requestTimeoutMs} ms`));
        connection.close(1000, 'connect timed out');
      }, requestTimeoutMs);
      socket.addEventListener('open', () => {
        clearTimeout(deadline);
        opened = true;
        resolve(connection);
      });
      socket.addEventListener('close', (event) => {
        clearTimeout(deadline);
        if (!opened) reject(new SdkError('connect_failed', `cannot reach ${url} (closed with ${event.code})`));
        connection.closedBy(event.code, event.reason);
      });
    });
  }

  private constructor(
    socket: WebSocket,
    private readonly handlers: ConnectionHandlers,
    private readonly requestTimeoutMs: number,
  ) {
    this.socket = socket;
    socket.addEventListener('message', (event) => this.received(event.data));
  }

  /** Sends a request and resolves with the `ok` reply; an `error` reply rejects with its code. */
  request(message: Message): Promise<Message> {
    if (this.closed || this.socket.readyState !== 1) {
      return Promise.reject(new SdkError('not_connected', 'not connected to the server'));
    }
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new SdkError('timeout', `no reply from the server within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pending.set(req, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ ...message, req }));
    });
  }

  /** Sends a message that gets no reply (`received`). */
  notify(message: Message): void {
    if (!this.closed && this.socket.readyState === 1) this.socket.send(JSON.stringify(message));
  }

  /** Closes the socket; requests in flight fail with `connection_lost`. */
  close(code = 1000, reason = ''): void {
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closing.
    }
    this.closedBy(code, reason);
  }

  private closedBy(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new SdkError('connection_lost', 'the connection was lost while the request was in flight'));
    }
    this.pending.clear();
    this.handlers.onClose(code, reason);
  }

  private received(data: unknown): void {
    if (typeof data !== 'string') return;
    let message: Message;
    try {
      message = JSON.parse(data) as Message;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || typeof message.type !== 'string') return;
    if (typeof message.req === 'number' && this.pending.has(message.req)) {
      const p = this.pending.get(message.req)!;
      this.pending.delete(message.req);
      clearTimeout(p.timer);
      if (message.type === 'error') {
        const code = String(message.code ?? 'internal') as ErrorCode;
        p.reject(new SdkError(code, String(message.message ?? code), true));
      } else {
        p.resolve(message);
      }
      return;
    }
    this.handlers.onEvent(message);
  }
}
