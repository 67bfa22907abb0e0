/**
 * The relay's `/media` WebSocket, the browser's only way into the relay
 * (it has no raw UDP): docs/relay.md "Packets", the Rust client is
 * src/relay_link/websocket.rs. The connection is bound to this side's
 * leg by a probe (0x02 | credential | 8-byte token) that the relay must
 * answer (0x03 | token); then every packet is one binary frame,
 * 0x01 | credential | payload out and 0x01 | payload in.
 */

const KIND_DATA = 0x01;
const KIND_PROBE = 0x02;
const KIND_ANSWER = 0x03;
/** Bytes of a relay credential. */
export const CREDENTIAL_LEN = 16;
const TOKEN_LEN = 8;
/** How long the probe may go unanswered (the Rust client's WS_CONNECT_TIMEOUT). */
export const PROBE_TIMEOUT_MS = 5_000;
/** Bytes queued in the socket beyond which a packet is dropped, not queued (voice is late or useless). */
const MAX_BUFFERED = 64 * 1024;

/** The relay refused or could not be reached. */
export class RelayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelayError';
  }
}

/** Decodes the `media` object's credential: 16 bytes of unpadded base64url. */
export function decodeCredential(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(text)) {
    throw new RelayError('the relay credential is not 16 bytes of base64url');
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==');
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The `/media` URL for a `media.ws` path on the signaling server's scheme, host and port. */
export function mediaUrl(ws: string, signalingUrl: string): string {
  const url = new URL(ws, signalingUrl);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.toString();
}

/** One call leg's `/media` connection, bound and ready for packets. */
export class MediaSocket {
  /** Packets in, as the other participant sent them. */
  onPacket: (payload: Uint8Array) => void = () => {};
  /** The connection closed (call ended, server stopping, network). */
  onClose: (reason: string) => void = () => {};
  /** Packets not sent because the socket's queue was full. */
  dropped = 0;
  private closed = false;

  private constructor(
    private readonly socket: WebSocket,
    private readonly credential: Uint8Array,
  ) {
    socket.onmessage = (event) => {
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      if (bytes.length > 1 && bytes[0] === KIND_DATA) this.onPacket(bytes.subarray(1));
    };
    socket.onclose = (event) => this.finish(event.reason || `the relay connection closed (${event.code})`);
    socket.onerror = () => this.finish('the relay connection failed');
  }

  /** Connects to `url` and binds the connection to `credential`'s leg. */
  static connect(url: string, credential: Uint8Array): Promise<MediaSocket> {
    if (credential.length !== CREDENTIAL_LEN) throw new RelayError('a relay credential is 16 bytes');
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.binaryType = 'arraybuffer';
      const token = crypto.getRandomValues(new Uint8Array(TOKEN_LEN));
      const fail = (why: string) => {
        clearTimeout(timer);
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        socket.close();
        reject(new RelayError(`${url}: ${why}`));
      };
      const timer = setTimeout(
        () => fail(`no probe answer within ${PROBE_TIMEOUT_MS} ms (credential refused?)`),
        PROBE_TIMEOUT_MS,
      );
      socket.onopen = () => socket.send(frame(KIND_PROBE, credential, token));
      socket.onerror = () => fail('cannot connect');
      socket.onclose = () => fail('closed before answering the probe');
      socket.onmessage = (event) => {
        const bytes = new Uint8Array(event.data as ArrayBuffer);
        if (bytes.length === 1 + TOKEN_LEN && bytes[0] === KIND_ANSWER && token.every((b, i) => b === bytes[i + 1])) {
          clearTimeout(timer);
          resolve(new MediaSocket(socket, credential));
        }
      };
    });
  }

  /** Sends one packet; dropped (and counted) when the socket is backed up or closed. */
  send(payload: Uint8Array): void {
    if (this.closed || this.socket.readyState !== WebSocket.OPEN || this.socket.bufferedAmount > MAX_BUFFERED) {
      this.dropped += 1;
      return;
    }
    this.socket.send(frame(KIND_DATA, this.credential, payload));
  }

  /** A probe with no payload: keeps the relay's 30 s idle timeout away while muted. */
  keepalive(): void {
    if (this.closed || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame(KIND_PROBE, this.credential, crypto.getRandomValues(new Uint8Array(TOKEN_LEN))));
  }

  close(): void {
    if (!this.closed) this.socket.close(1000, 'hung up');
    this.finish('closed here');
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(reason);
  }
}

function frame(kind: number, credential: Uint8Array, rest: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(1 + credential.length + rest.length);
  out[0] = kind;
  out.set(credential, 1);
  out.set(rest, 1 + credential.length);
  return out;
}
