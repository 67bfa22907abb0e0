/**
 * The web SDK's client: one peer's session with the signaling server
 * (protocol v1, docs/protocol.md), Agora RTM's call manager in the Rust
 * SDK's shape (docs/sdk.md). It logs in, reconnects with backoff and
 * jitter for ever (like a phone), settles its calls against the login's
 * `calls` list after each reconnect, keeps presence subscriptions, and
 * runs the signaling half of the voice handshake (media.ts).
 */
import { DEFAULT_BACKOFF, backoffDelay, type Backoff } from './backoff.js';
import { Connection, type Message, type WebSocketConstructor } from './connection.js';
import { SdkError } from './errors.js';
import { Emitter } from './emitter.js';
import { LocalInvitation, RemoteInvitation, type Call, type Desk } from './invitation.js';
import { DEVICE_MAX, checkId, checkPeers, checkText } from './limits.js';
import { MediaHandshake, NEVER_REVEALED, REVEAL_TIMEOUT_MS, type MediaInfo, type MediaMode } from './media.js';
import type { ClientEvents, ConnectionReason, ConnectionState } from './events.js';
import { settle, type ListedCall } from './settle.js';
import { encodeKey as encode } from '../voice/handshake.js';

/** What {@link Client.connect} needs. */
export interface ClientConfig {
  /** `ws://HOST:PORT/` or `wss://...`; several nodes of one deployment as a list. */
  url: string | string[];
  peerId: string;
  /** Needed when the server has a secret (`softphone token`). */
  token?: string;
  /** A label for this device, shown to the caller when we answer (at most 64 bytes). */
  device?: string;
  /** How long a request may wait for its reply (default 10 s). */
  requestTimeoutMs?: number;
  backoff?: Backoff;
  /**
   * Which voice handshake to offer when placing calls. Default `auto`: v1.2
   * (commit and reveal) when the server carries it, else v1.1; the client
   * asks the server once per login (a `media_reveal` for no call: v1.2
   * servers answer `not_found`, older ones `unknown_type`).
   */
  media?: MediaMode | 'auto';
  /**
   * How often a logged-in client checks that the server still answers (a
   * cheap presence query), default 15 s: a browser cannot see the server's
   * pings, and a dead network may never close the socket. No reply within
   * the request timeout drops the connection, and the client reconnects.
   */
  heartbeatMs?: number;
  /** A WebSocket constructor where the platform has none (node 20 without the flag). */
  WebSocket?: WebSocketConstructor;
}

/** Login refusals that no retry can mend: the client aborts. */
const FOR_GOOD = new Set(['invalid_token', 'token_expired', 'invalid_argument', 'bad_request']);

/** A peer's session, with reconnect. Make one with {@link Client.connect}. */
export class Client extends Emitter<ClientEvents> {
  readonly peerId: string;
  /** The state of the connection (Agora's five). */
  state: ConnectionState = 'CONNECTING';
  /** The server's session id of the current login. */
  session = '';
  private readonly urls: string[];
  private readonly config: Required<Omit<ClientConfig, 'token' | 'WebSocket' | 'url'>> & { token: string };
  private readonly Socket: WebSocketConstructor;
  private connection: Connection | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly calls = new Map<string, Call>();
  private readonly handshakes = new Map<string, MediaHandshake>();
  private readonly subscribed = new Set<string>();
  private readonly online = new Map<string, boolean>();
  private readonly desk: Desk;
  /** The handshake the server carries, as the last login found (see `media: 'auto'`). */
  serverMedia: MediaMode = 'v1.2';

  /** Connects and logs in; rejects if the first attempt fails (nothing is retried then). */
  static async connect(config: ClientConfig): Promise<Client> {
    const client = new Client(config);
    await client.firstLogin();
    return client;
  }

  private constructor(config: ClientConfig) {
    super();
    checkId('peer_id', config.peerId);
    checkText('device', config.device ?? '', DEVICE_MAX);
    this.peerId = config.peerId;
    this.urls = (Array.isArray(config.url) ? config.url : config.url.split(','))
      .map((u) => u.trim())
      .filter((u) => u !== '');
    if (this.urls.length === 0) throw new SdkError('INVALID_ARGUMENT', 'no server address');
    this.config = {
      peerId: config.peerId,
      token: config.token ?? '',
      device: config.device ?? '',
      requestTimeoutMs: config.requestTimeoutMs ?? 10_000,
      backoff: config.backoff ?? DEFAULT_BACKOFF,
      media: config.media ?? 'auto',
      heartbeatMs: config.heartbeatMs ?? 15_000,
    };
    const Socket = config.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Socket) throw new SdkError('connect_failed', 'this platform has no WebSocket: pass one in the config');
    this.Socket = Socket;
    this.desk = this.makeDesk();
  }

  /** The signaling URL in use (for the voice relay's `/media` path). */
  get url(): string {
    return this.urls[(this.attempt === 0 ? 0 : this.attempt - 1) % this.urls.length];
  }

  /** Agora `createLocalInvitation`: a call to `calleeId`, not sent yet. */
  createLocalInvitation(calleeId: string, callId?: string): LocalInvitation {
    const inv = new LocalInvitation(this.desk, calleeId, callId);
    this.calls.set(inv.callId, inv);
    return inv;
  }

  /** A call the client knows, by id. */
  call(callId: string): Call | undefined {
    return this.calls.get(callId);
  }

  /** Every call still live (ringing or accepted). */
  liveCalls(): Call[] {
    return [...this.calls.values()].filter((c) => c.isCallLive && !(c instanceof LocalInvitation && c.state === 'IDLE' && c.inFlight === null));
  }

  /** Agora `queryPeersOnlineStatus`. */
  async queryPresence(peerIds: string[]): Promise<Map<string, boolean>> {
    checkPeers(peerIds);
    const reply = await this.request({ type: 'query_presence', peer_ids: peerIds });
    return new Map(Object.entries((reply.online as Record<string, boolean>) ?? {}));
  }

  /** Agora `subscribePeersOnlineStatus`: the current status now, `PeersOnlineStatusChanged` on each change. */
  async subscribePresence(peerIds: string[]): Promise<Map<string, boolean>> {
    checkPeers(peerIds);
    const reply = await this.request({ type: 'subscribe_presence', peer_ids: peerIds });
    for (const p of peerIds) this.subscribed.add(p);
    const online = new Map(Object.entries((reply.online as Record<string, boolean>) ?? {}));
    for (const [p, o] of online) this.online.set(p, o);
    return online;
  }

  /** Agora `unsubscribePeersOnlineStatus`. */
  async unsubscribePresence(peerIds: string[]): Promise<void> {
    checkPeers(peerIds);
    await this.request({ type: 'unsubscribe_presence', peer_ids: peerIds });
    for (const p of peerIds) {
      this.subscribed.delete(p);
      this.online.delete(p);
    }
  }

  /** Logs out (in any phase): DISCONNECTED, nothing retried, requests then fail with `stopped`. */
  async logout(): Promise<void> {
    if (this.stopped) return;
    const connection = this.connection;
    this.stop();
    if (connection && this.session !== '') {
      await connection.request({ type: 'logout' }).catch(() => undefined);
    }
    connection?.close(1000, 'logged out');
    this.setState('DISCONNECTED', 'logged_out');
  }

  /** Drops the socket as a network failure would (for tests and the page's "reconnect now"). */
  dropConnection(): void {
    this.connection?.close(4000, 'dropped by the client');
  }

  // ---- the wire -------------------------------------------------------------

  private async request(message: Message): Promise<Message> {
    if (this.stopped) throw new SdkError('stopped', 'the client has stopped');
    if (this.state !== 'CONNECTED' || this.connection === null) {
      throw new SdkError('not_connected', 'not connected to the server');
    }
    return this.connection.request(message);
  }

  private async firstLogin(): Promise<void> {
    try {
      await this.tryOnce();
    } catch (e) {
      this.stop();
      this.setState('ABORTED', 'connect_failed');
      throw e;
    }
  }

  /** One attempt: open, log in, settle. Throws when it fails. */
  private async tryOnce(): Promise<void> {
    const url = this.urls[this.attempt % this.urls.length];
    this.attempt += 1;
    this.setState(this.session === '' ? 'CONNECTING' : 'RECONNECTING', 'login');
    let opened: Connection | null = null;
    const connection = await Connection.open(
      url,
      {
        onEvent: (m) => {
          if (opened !== null && this.connection === opened) this.onEvent(m);
        },
        onClose: () => {
          if (opened !== null) this.onClose(opened);
        },
      },
      this.config.requestTimeoutMs,
      this.Socket,
    );
    if (this.stopped) {
      connection.close(1000, 'stopped');
      throw new SdkError('stopped', 'the client has stopped');
    }
    opened = connection;
    this.connection = connection;
    // Only the calls known before this login are settled by its `calls` list.
    const known = [...this.calls.values()];
    let reply: Message;
    try {
      reply = await connection.request({
        type: 'login',
        peer_id: this.peerId,
        token: this.config.token,
        device: this.config.device,
      });
    } catch (e) {
      const error = e as SdkError;
      connection.close(1000, 'login refused');
      if (FOR_GOOD.has(error.code)) {
        this.stop();
        this.setState('ABORTED', 'login_refused', error);
      }
      throw error;
    }
    this.attempt = 1;
    this.session = String(reply.session ?? '');
    if (this.config.media === 'auto') this.serverMedia = await this.probeMedia(connection);
    this.setState('CONNECTED', 'login_success');
    this.heartbeat(connection);
    const listed = (reply.calls as ListedCall[] | undefined) ?? [];
    // Events the server kept for us follow the reply: let them be applied first.
    setTimeout(() => {
      if (this.connection === connection) this.afterLogin(connection, known, listed);
    }, 0);
  }

  private afterLogin(connection: Connection, known: Call[], listed: ListedCall[]): void {
    settle(this, known, listed);
    if (this.subscribed.size > 0) {
      const peers = [...this.subscribed];
      connection
        .request({ type: 'subscribe_presence', peer_ids: peers })
        .then((reply) => {
          for (const [peer, online] of Object.entries((reply.online as Record<string, boolean>) ?? {})) {
            if (this.online.get(peer) !== online) {
              this.online.set(peer, online);
              this.emit('PeersOnlineStatusChanged', { peerId: peer, online });
            }
          }
        })
        .catch(() => undefined);
    }
  }

  /** Whether the server carries the v1.2 media handshake (`media_reveal`). */
  private async probeMedia(connection: Connection): Promise<MediaMode> {
    try {
      await connection.request({ type: 'media_reveal', call_id: `probe-${crypto.randomUUID()}`, media_key: encode(new Uint8Array(32)) });
      return 'v1.2';
    } catch (e) {
      return (e as SdkError).code === 'unknown_type' ? 'v1.1' : 'v1.2';
    }
  }

  /** Checks every `heartbeatMs` that `connection` still carries replies; drops it when not. */
  private heartbeat(connection: Connection): void {
    const timer = setInterval(() => {
      if (this.connection !== connection) return clearInterval(timer);
      connection.request({ type: 'query_presence', peer_ids: [this.peerId] }).catch((e: SdkError) => {
        if (e.code === 'timeout' && this.connection === connection) connection.close(4000, 'the server stopped answering');
      });
    }, this.config.heartbeatMs);
  }

  private onClose(connection: Connection): void {
    if (this.connection !== connection) return;
    this.connection = null;
    if (this.stopped) return;
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const delay = backoffDelay(this.config.backoff, this.attempt);
    this.setState('RECONNECTING', 'interrupted', undefined, delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.tryOnce().catch(() => {
        if (!this.stopped && this.connection === null) this.scheduleRetry();
      });
    }, delay);
  }

  private stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const h of this.handshakes.values()) h.done();
  }

  private setState(state: ConnectionState, reason: ConnectionReason, error?: SdkError, nextTryInMs?: number): void {
    this.state = state;
    this.emit('ConnectionStateChanged', { state, reason, attempt: this.attempt, error, nextTryInMs });
  }

  // ---- events from the server -------------------------------------------------

  private onEvent(m: Message): void {
    const callId = typeof m.call_id === 'string' ? m.call_id : '';
    const call = this.calls.get(callId);
    switch (m.type) {
      case 'invitation':
        return this.onInvitation(m);
      case 'presence': {
        const peerId = String(m.peer_id);
        const online = m.online === true;
        this.online.set(peerId, online);
        return this.emit('PeersOnlineStatusChanged', { peerId, online });
      }
      case 'media_reveal':
        if (call instanceof RemoteInvitation) this.onReveal(call, String(m.media_key ?? ''));
        return;
    }
    if (call instanceof LocalInvitation) this.onLocalEvent(call, m);
    else if (call instanceof RemoteInvitation) this.onRemoteEvent(call, m);
  }

  private onLocalEvent(inv: LocalInvitation, m: Message): void {
    const ringing = inv.state === 'SENT_TO_REMOTE' || inv.state === 'RECEIVED_BY_REMOTE' || inv.state === 'IDLE';
    switch (m.type) {
      case 'received_by_peer':
        if (inv.state === 'SENT_TO_REMOTE' || inv.state === 'IDLE') {
          inv.state = 'RECEIVED_BY_REMOTE';
          this.emit('LocalInvitationReceivedByPeer', { invitation: inv });
        }
        return;
      case 'accepted':
        if (!ringing) return;
        inv.state = 'ACCEPTED_BY_REMOTE';
        inv.response = String(m.response ?? '');
        inv.device = String(m.device ?? '');
        this.emit('LocalInvitationAccepted', { invitation: inv, response: inv.response });
        this.callerVoice(inv, m);
        return;
      case 'refused':
        if (!ringing) return;
        inv.state = 'REFUSED_BY_REMOTE';
        inv.response = String(m.response ?? '');
        this.emit('LocalInvitationRefused', { invitation: inv, response: inv.response });
        return;
      case 'failure':
        if (!ringing) return;
        this.localFailed(inv, String(m.reason) as LocalInvitation['failureReason'] & string);
        return;
      case 'hung_up':
        this.endedCall(inv, String(m.reason ?? 'hangup'), String(m.by ?? ''));
        return;
    }
  }

  private onRemoteEvent(inv: RemoteInvitation, m: Message): void {
    const ringing = inv.state === 'INVITATION_RECEIVED' || inv.state === 'ACCEPT_SENT_TO_LOCAL';
    switch (m.type) {
      case 'canceled':
        if (!ringing) return;
        this.remoteCanceled(inv, String(m.reason) as NonNullable<RemoteInvitation['canceledReason']>);
        return;
      case 'failure':
        if (!ringing) return;
        this.remoteFailed(inv, String(m.reason) as NonNullable<RemoteInvitation['failureReason']>);
        return;
      case 'hung_up':
        this.endedCall(inv, String(m.reason ?? 'hangup'), String(m.by ?? ''));
        return;
    }
  }

  private onInvitation(m: Message): void {
    const callId = String(m.call_id ?? '');
    const known = this.calls.get(callId);
    this.connection?.notify({ type: 'received', call_id: callId });
    if (known) return;
    const inv = new RemoteInvitation(
      this.desk,
      callId,
      String(m.caller_id ?? ''),
      String(m.content ?? ''),
      String(m.channel_id ?? ''),
      Number(m.expires_in_ms ?? 0),
    );
    this.calls.set(callId, inv);
    const handshake = new MediaHandshake('callee', callId);
    if (handshake.readInvitation(m)) this.handshakes.set(callId, handshake);
    this.emit('RemoteInvitationReceived', { invitation: inv });
  }

  // ---- endings, shared with settle.ts --------------------------------------------

  /** @internal */
  localFailed(inv: LocalInvitation, reason: NonNullable<LocalInvitation['failureReason']>): void {
    inv.state = 'FAILURE';
    inv.failureReason = reason;
    inv.inFlight = null;
    this.forget(inv);
    this.emit('LocalInvitationFailure', { invitation: inv, reason });
  }

  /** @internal */
  remoteFailed(inv: RemoteInvitation, reason: NonNullable<RemoteInvitation['failureReason']>): void {
    inv.state = 'FAILURE';
    inv.failureReason = reason;
    inv.inFlight = null;
    this.forget(inv);
    this.emit('RemoteInvitationFailure', { invitation: inv, reason });
  }

  /** @internal */
  remoteCanceled(inv: RemoteInvitation, reason: NonNullable<RemoteInvitation['canceledReason']>): void {
    inv.state = 'CANCELED';
    inv.canceledReason = reason;
    inv.inFlight = null;
    this.forget(inv);
    this.emit('RemoteInvitationCanceled', { invitation: inv, reason });
  }

  /** @internal An accepted call ended. */
  endedCall(call: Call, reason: string, by: string): void {
    if (!call.isAccepted || call.hungUp) return;
    call.hungUp = true;
    call.inFlight = null;
    this.forget(call);
    this.emit('HungUp', { call, reason: reason as 'hangup', by });
  }

  /** @internal Announces the states reconnect settling reached. */
  announce(name: 'LocalInvitationAccepted' | 'RemoteInvitationAccepted', call: Call): void {
    if (name === 'LocalInvitationAccepted' && call instanceof LocalInvitation) {
      this.emit(name, { invitation: call, response: call.response });
    } else if (call instanceof RemoteInvitation) {
      this.emit('RemoteInvitationAccepted', { invitation: call });
    }
  }

  private forget(call: Call): void {
    this.handshakes.get(call.callId)?.done();
    this.handshakes.delete(call.callId);
  }

  // ---- voice -----------------------------------------------------------------

  private callerVoice(inv: LocalInvitation, m: Message): void {
    const handshake = this.handshakes.get(inv.callId);
    if (!handshake) return;
    if (typeof m.media_key !== 'string') {
      return this.voiceUnavailable(inv, 'the other phone offers no voice (an older or voiceless client)');
    }
    if (typeof m.media !== 'object' || m.media === null) {
      return this.voiceUnavailable(inv, 'the server runs no media relay (--no-media)');
    }
    let keys;
    try {
      keys = handshake.callerAgrees(m.media_key);
    } catch (e) {
      return this.voiceUnavailable(inv, `the other phone's key is unusable: ${(e as Error).message}`);
    }
    if (handshake.commit !== null) {
      this.connection
        ?.request({ type: 'media_reveal', call_id: inv.callId, media_key: encode(handshake.mine.public) })
        .catch(() => undefined);
    }
    this.voiceReady(inv, keys, m.media as MediaInfo);
  }

  private onReveal(inv: RemoteInvitation, key: string): void {
    const handshake = this.handshakes.get(inv.callId);
    if (!handshake || handshake.commit === null) return;
    const hadKeys = handshake.keys !== null;
    const result = handshake.calleeReveal(key);
    handshake.done();
    if (typeof result === 'string') return this.voiceUnavailable(inv, result);
    if (!hadKeys && inv.isAccepted && this.pendingMedia.has(inv.callId)) {
      this.voiceReady(inv, result, this.pendingMedia.get(inv.callId)!);
      this.pendingMedia.delete(inv.callId);
    }
  }

  /** The callee's relay way in, kept from the accept's `ok` until the reveal. */
  private readonly pendingMedia = new Map<string, MediaInfo>();

  private calleeAccepted(inv: RemoteInvitation, media: MediaInfo | null): void {
    const handshake = this.handshakes.get(inv.callId);
    if (!handshake) return this.voiceUnavailable(inv, "the caller's phone offers no voice");
    if (media === null) return this.voiceUnavailable(inv, 'the server runs no media relay (--no-media)');
    if (handshake.commit === null) {
      try {
        const keys = handshake.calleeAgreesV11();
        if (keys) this.voiceReady(inv, keys, media);
      } catch (e) {
        this.voiceUnavailable(inv, `the caller's key is unusable: ${(e as Error).message}`);
      }
      return;
    }
    if (handshake.keys !== null) return this.voiceReady(inv, handshake.keys, media);
    this.pendingMedia.set(inv.callId, media);
    handshake.timer = setTimeout(() => {
      this.pendingMedia.delete(inv.callId);
      this.voiceUnavailable(inv, NEVER_REVEALED);
    }, REVEAL_TIMEOUT_MS);
  }

  private voiceReady(call: Call, keys: NonNullable<Call['voice']>['keys'], media: MediaInfo): void {
    call.voice = { keys, media };
    this.emit('VoiceReady', { call, keys, media, signalingUrl: this.url });
  }

  private voiceUnavailable(call: Call, reason: string): void {
    this.emit('VoiceUnavailable', { call, reason });
  }

  private makeDesk(): Desk {
    return {
      peerId: this.peerId,
      request: (message) => this.request(message as Message),
      inviteMedia: (inv) => {
        const mode = this.config.media === 'auto' ? this.serverMedia : this.config.media;
        if (mode === 'off') return {};
        const handshake = new MediaHandshake('caller', inv.callId);
        this.handshakes.set(inv.callId, handshake);
        return handshake.inviteFields(mode);
      },
      acceptMedia: (inv) => {
        const handshake = this.handshakes.get(inv.callId);
        return handshake ? { media_key: encode(handshake.mine.public) } : ({} as Record<string, string>);
      },
      acceptedByUs: (inv, media) => this.calleeAccepted(inv, media),
      hungUpByUs: (call) => {
        this.forget(call);
        this.emit('HungUp', { call, reason: 'hangup', by: this.peerId });
      },
      announce: (name, call) => {
        if (name === 'LocalInvitationCanceled' && call instanceof LocalInvitation) {
          this.forget(call);
          this.emit(name, { invitation: call });
        } else if (name === 'RemoteInvitationAccepted' && call instanceof RemoteInvitation) {
          this.emit(name, { invitation: call });
        } else if (name === 'RemoteInvitationRefused' && call instanceof RemoteInvitation) {
          this.forget(call);
          this.emit(name, { invitation: call });
        }
      },
    };
  }
}
