/**
 * The browser phone: one client of the web SDK (../sdk), in the desktop
 * app's words. Sign in, dial with ringback, the incoming-call dialog with
 * its ringtone, the call screen with voice (../voice), history, contacts
 * with live presence. The document title always says the state.
 */
import { Client, LocalInvitation, RemoteInvitation, type Call } from '../sdk/index.js';
import { h, replace, clock } from './dom.js';
import { Tones } from './tones.js';
import { Store, type HistoryRecord } from './store.js';
import { signInScreen, phoneScreen, outgoingScreen, callScreen, incomingDialog } from './screens.js';
import { describeError, failureSentence, hungUpSentence, missedSentence, refusedSentence } from './words.js';
import { Voice } from './voice.js';

type Phone = ReturnType<typeof phoneScreen>;

/** The call on screen: ringing out, or accepted. */
interface Active {
  call: Call;
  startedAt: number;
  /** When it was accepted (talk time starts). */
  acceptedAt: number | null;
  view: ReturnType<typeof outgoingScreen> | ReturnType<typeof callScreen>;
}

export class App {
  private client: Client | null = null;
  private store: Store | null = null;
  private phone: Phone | null = null;
  private active: Active | null = null;
  /** Calls ringing at us, oldest first; the dialog shows the first. */
  private ringing: RemoteInvitation[] = [];
  private dialog: { inv: RemoteInvitation; view: ReturnType<typeof incomingDialog> } | null = null;
  private readonly tones = new Tones();
  private readonly voice = new Voice();
  private ticker: ReturnType<typeof setInterval> | null = null;
  private notification: Notification | null = null;
  private presence = new Map<string, boolean>();

  /** Says, above every screen, that the connection is lost and when the next try is. */
  private readonly banner = h('p', { class: 'banner', role: 'status', hidden: true });

  constructor(private readonly root: HTMLElement) {
    document.addEventListener('keydown', (e) => this.onKey(e));
    root.before(this.banner);
  }

  /** Shows the sign-in form. */
  async start(notice = ''): Promise<void> {
    const support = await this.voice.support();
    const note = support.ok ? null : h('p', { class: 'warning', role: 'note' }, `${support.reason} Calls ring and connect, without sound.`);
    const saved = localStorage.getItem('softphone.peer') ?? '';
    const view = signInScreen(
      { peer: saved, device: localStorage.getItem('softphone.device') ?? 'browser', server: defaultServer() },
      note,
    );
    if (notice) view.error.textContent = notice;
    view.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.signIn(view);
    });
    replace(this.root, view.root);
    this.setTitle();
    view.peer.focus();
  }

  private async signIn(view: ReturnType<typeof signInScreen>): Promise<void> {
    this.tones.unlock();
    if ('Notification' in window && Notification.permission === 'default') void Notification.requestPermission();
    view.submit.disabled = true;
    view.submit.textContent = 'Signing in...';
    view.error.textContent = '';
    const peerId = view.peer.value.trim();
    try {
      const client = await Client.connect({
        url: view.server.value.trim(),
        peerId,
        token: view.token.value.trim(),
        device: view.device.value.trim(),
      });
      localStorage.setItem('softphone.peer', peerId);
      localStorage.setItem('softphone.device', view.device.value.trim());
      this.client = client;
      this.store = await Store.open(peerId);
      this.wire(client);
      await this.showPhone();
    } catch (e) {
      view.error.textContent = `Could not sign in: ${describeError(e)}`;
      view.submit.disabled = false;
      view.submit.textContent = 'Sign in';
    }
  }

  private wire(client: Client): void {
    client.on('ConnectionStateChanged', ({ state, nextTryInMs, error }) => {
      if (state === 'ABORTED') return void this.signedOut(`Signed out: ${describeError(error)}`);
      const words = state === 'CONNECTED' ? 'Connected' : state === 'RECONNECTING' ? reconnecting(nextTryInMs) : state.toLowerCase();
      document.body.dataset.connection = state.toLowerCase();
      // Every screen shows a lost connection, the call screen too.
      this.banner.hidden = state === 'CONNECTED';
      this.banner.textContent = state === 'CONNECTED' ? '' : `Connection lost. ${words}`;
      if (this.phone) this.phone.status.textContent = words;
    });
    client.on('LocalInvitationReceivedByPeer', ({ invitation }) => {
      if (this.active?.call !== invitation) return;
      (this.active.view as ReturnType<typeof outgoingScreen>).stage.textContent = `Ringing ${invitation.calleeId}...`;
      this.tones.play('ringback');
      this.setTitle();
    });
    client.on('LocalInvitationAccepted', ({ invitation }) => this.answered(invitation));
    client.on('RemoteInvitationAccepted', ({ invitation }) => this.answered(invitation));
    client.on('LocalInvitationRefused', ({ invitation, response }) => this.outgoingEnded(invitation, refusedSentence(invitation.calleeId, response)));
    client.on('LocalInvitationFailure', ({ invitation, reason }) => this.outgoingEnded(invitation, failureSentence(invitation.calleeId, reason)));
    client.on('LocalInvitationCanceled', ({ invitation }) => this.outgoingEnded(invitation, { outcome: 'canceled', sentence: 'Call canceled' }));
    client.on('RemoteInvitationReceived', ({ invitation }) => this.incoming(invitation));
    client.on('RemoteInvitationCanceled', ({ invitation, reason }) => this.incomingEnded(invitation, missedSentence(invitation.callerId, reason)));
    client.on('RemoteInvitationFailure', ({ invitation, reason }) => this.incomingEnded(invitation, missedSentence(invitation.callerId, reason)));
    client.on('RemoteInvitationRefused', ({ invitation }) => this.incomingEnded(invitation, { outcome: 'declined', sentence: `You declined ${invitation.callerId}'s call` }));
    client.on('HungUp', ({ call, reason, by }) => this.callEnded(call, hungUpSentence(call.peerId, reason, by === client.peerId)));
    client.on('PeersOnlineStatusChanged', ({ peerId, online }) => {
      this.presence.set(peerId, online);
      void this.renderContacts();
    });
    client.on('VoiceReady', (ready) => {
      if (this.active?.call !== ready.call) return;
      void this.voice.start(ready, this.active.view as ReturnType<typeof callScreen>);
    });
    client.on('VoiceUnavailable', ({ call, reason }) => {
      if (this.active?.call === call) this.voice.unavailable(reason, this.active.view as ReturnType<typeof callScreen>);
    });
  }

  private async showPhone(): Promise<void> {
    const client = this.client!;
    const phone = phoneScreen(client.peerId);
    this.phone = phone;
    phone.status.textContent = 'Connected';
    document.body.dataset.connection = 'connected';
    phone.signOut.addEventListener('click', () => void this.signOut());
    phone.dialForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.dial(phone.dialInput.value.trim());
    });
    phone.contactForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.addContact(phone.contactInput.value.trim());
    });
    const support = await this.voice.support();
    if (!support.ok) {
      phone.voiceNote.hidden = false;
      phone.voiceNote.textContent = `${support.reason} Calls ring and connect, without sound.`;
    }
    this.showHome();
    const contacts = await this.store!.contacts();
    if (contacts.length > 0) {
      try {
        for (const [p, o] of await client.subscribePresence(contacts)) this.presence.set(p, o);
      } catch {
        // Shown as unknown; the subscription is retried at the next reconnect.
      }
    }
    await this.renderContacts();
    await this.renderHistory();
  }

  private showHome(notice?: string): void {
    if (!this.phone) return;
    this.stopTicker();
    replace(this.root, this.phone.root);
    if (notice !== undefined) this.phone.notice.textContent = notice;
    this.renderDialog();
    this.setTitle();
    if (!this.dialog) this.phone.dialInput.focus();
  }

  private async dial(peer: string): Promise<void> {
    const client = this.client;
    if (!client || !this.phone) return;
    if (peer === '') return void (this.phone.notice.textContent = 'Type the peer id of the person to call.');
    if (this.active) return void (this.phone.notice.textContent = 'Hang up first.');
    let inv: LocalInvitation;
    try {
      inv = client.createLocalInvitation(peer);
    } catch (e) {
      return void (this.phone.notice.textContent = `Could not call ${peer}: ${describeError(e)}`);
    }
    this.tones.unlock();
    const view = outgoingScreen(peer);
    view.cancel.addEventListener('click', () => void this.cancel(inv));
    this.active = { call: inv, startedAt: Date.now(), acceptedAt: null, view };
    replace(this.root, view.root);
    this.renderDialog();
    this.setTitle();
    view.cancel.focus();
    try {
      await inv.send();
      if (inv.state === 'SENT_TO_REMOTE') view.stage.textContent = `Waiting for ${peer}...`;
    } catch (e) {
      if (inv.isEnded || (e as { code?: string }).code === 'connection_lost') return;
      this.active = null;
      this.showHome(`Could not call ${peer}: ${describeError(e)}`);
    }
  }

  private async cancel(inv: LocalInvitation): Promise<void> {
    const view = this.active?.view as ReturnType<typeof outgoingScreen> | undefined;
    if (view) view.stage.textContent = 'Canceling...';
    try {
      await inv.cancel();
    } catch (e) {
      if (!inv.isEnded && !inv.isAccepted && view) view.stage.textContent = `Could not cancel: ${describeError(e)}`;
    }
  }

  private outgoingEnded(inv: LocalInvitation, end: { outcome: string; sentence: string }): void {
    if (this.active?.call !== inv) return;
    this.tones.stop();
    this.active = null;
    const sentence = end.outcome === 'canceled' ? `Call to ${inv.calleeId} canceled` : end.sentence;
    void this.record({ peer: inv.calleeId, direction: 'outgoing', outcome: end.outcome, sentence, at: Date.now(), seconds: 0 });
    this.showHome(end.sentence);
  }

  private answered(call: Call): void {
    if (call instanceof RemoteInvitation) {
      this.ringing = this.ringing.filter((r) => r !== call);
      this.renderDialog();
    }
    if (this.active && this.active.call !== call) return;
    this.tones.stop();
    const view = callScreen(call.peerId);
    view.hangup.addEventListener('click', () => void this.hangUp(call));
    view.mute.addEventListener('click', () => this.voice.toggleMute(view));
    view.volume.addEventListener('input', () => this.voice.setVolume(Number(view.volume.value)));
    this.active = { call, startedAt: this.active?.startedAt ?? Date.now(), acceptedAt: Date.now(), view };
    replace(this.root, view.root);
    this.renderDialog();
    this.ticker = setInterval(() => this.tick(), 250);
    this.tick();
    view.hangup.focus();
    if (call.voice) void this.voice.start({ call, ...call.voice, signalingUrl: this.client!.url }, view);
  }

  private tick(): void {
    const active = this.active;
    if (!active || active.acceptedAt === null) return;
    const view = active.view as ReturnType<typeof callScreen>;
    view.duration.textContent = clock((Date.now() - active.acceptedAt) / 1000);
    this.voice.refresh(view);
    this.setTitle();
  }

  private async hangUp(call: Call): Promise<void> {
    try {
      await call.hangup();
    } catch (e) {
      // Already ended: the HungUp event (or the repair after a reconnect) closes the screen.
      if (!call.isEnded && this.phone) this.phone.notice.textContent = `Could not hang up: ${describeError(e)}`;
      if (call.isEnded || (e as { code?: string }).code === 'ALREADY_END') this.callEnded(call, `Call with ${call.peerId} ended`);
    }
  }

  private callEnded(call: Call, sentence: string): void {
    if (this.active?.call !== call) return;
    void this.voice.stop();
    const seconds = this.active.acceptedAt === null ? 0 : Math.round((Date.now() - this.active.acceptedAt) / 1000);
    this.active = null;
    void this.record({
      peer: call.peerId,
      direction: call instanceof LocalInvitation ? 'outgoing' : 'incoming',
      outcome: 'answered',
      sentence: `${sentence} (${clock(seconds)})`,
      at: Date.now() - seconds * 1000,
      seconds,
    });
    this.showHome(sentence);
  }

  private incoming(inv: RemoteInvitation): void {
    this.ringing.push(inv);
    this.renderDialog();
    if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
      this.notification = new Notification('Incoming call', { body: `${inv.callerId} is calling`, tag: 'softphone-incoming', requireInteraction: true });
      this.notification.onclick = () => window.focus();
    }
  }

  private incomingEnded(inv: RemoteInvitation, end: { outcome: string; sentence: string }): void {
    const wasRinging = this.ringing.includes(inv);
    this.ringing = this.ringing.filter((r) => r !== inv);
    this.renderDialog();
    if (!wasRinging) return;
    void this.record({ peer: inv.callerId, direction: 'incoming', outcome: end.outcome, sentence: end.sentence, at: Date.now(), seconds: 0, unseen: end.outcome === 'missed' });
    if (this.phone) this.phone.notice.textContent = end.sentence;
    if (end.outcome === 'missed' && document.hidden && 'Notification' in window && Notification.permission === 'granted') {
      new Notification('Missed call', { body: end.sentence, tag: 'softphone-missed' });
    }
  }

  /** Shows the dialog for the first ringing call (or none), with its ringtone. */
  private renderDialog(): void {
    const inv = this.ringing[0] ?? null;
    if (this.dialog && this.dialog.inv === inv) return this.dialogAttach();
    this.dialog?.view.root.remove();
    this.dialog = null;
    if (!inv) {
      this.notification?.close();
      this.notification = null;
      if (this.active?.acceptedAt === null && this.active.call instanceof LocalInvitation && this.active.call.state === 'RECEIVED_BY_REMOTE') this.tones.play('ringback');
      else this.tones.stop();
      this.setTitle();
      return;
    }
    const view = incomingDialog(inv.callerId, inv.channelId);
    view.accept.addEventListener('click', () => void this.accept(inv));
    view.refuse.addEventListener('click', () => void this.refuse(inv));
    this.dialog = { inv, view };
    this.dialogAttach();
    this.tones.play('ringtone');
    this.setTitle();
    view.accept.focus();
  }

  private dialogAttach(): void {
    if (this.dialog && this.dialog.view.root.parentNode !== this.root) this.root.appendChild(this.dialog.view.root);
    if (this.dialog) {
      const ms = this.dialog.inv.expiresInMs;
      this.dialog.view.left.textContent = ms > 0 ? `Rings for up to ${Math.round(ms / 1000)} seconds` : '';
    }
  }

  private async accept(inv: RemoteInvitation): Promise<void> {
    if (this.dialog?.inv !== inv || inv.state !== 'INVITATION_RECEIVED') return;
    this.dialog.view.accept.disabled = true;
    this.dialog.view.accept.textContent = 'Answering...';
    if (this.active && this.active.call !== inv) {
      const previous = this.active.call;
      if (previous.isAccepted) await previous.hangup().catch(() => undefined);
      else if (previous instanceof LocalInvitation) await previous.cancel().catch(() => undefined);
    }
    try {
      await inv.accept();
    } catch (e) {
      if (inv.isEnded) return;
      if (this.dialog?.inv === inv) {
        this.dialog.view.accept.disabled = false;
        this.dialog.view.accept.textContent = 'Accept';
      }
      if (this.phone) this.phone.notice.textContent = `Could not answer ${inv.callerId}'s call: ${describeError(e)}`;
    }
  }

  private async refuse(inv: RemoteInvitation): Promise<void> {
    if (this.dialog?.inv !== inv || inv.state !== 'INVITATION_RECEIVED') return;
    this.dialog.view.refuse.disabled = true;
    try {
      await inv.refuse(this.active ? 'busy' : '');
    } catch {
      // Ended meanwhile: its own event closes the dialog.
    }
  }

  private onKey(e: KeyboardEvent): void {
    if (this.dialog) {
      if (e.key === 'Enter') {
        e.preventDefault();
        void this.accept(this.dialog.inv);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        void this.refuse(this.dialog.inv);
      }
      return;
    }
    const active = this.active;
    if (!active) return;
    if (e.key === 'Escape' && active.acceptedAt === null && active.call instanceof LocalInvitation) {
      e.preventDefault();
      void this.cancel(active.call);
    } else if ((e.key === 'm' || e.key === 'M') && active.acceptedAt !== null && !(e.target instanceof HTMLInputElement)) {
      this.voice.toggleMute(active.view as ReturnType<typeof callScreen>);
    }
  }

  private setTitle(): void {
    let state: string;
    if (this.dialog) state = `Incoming call from ${this.dialog.inv.callerId}`;
    else if (this.active?.acceptedAt != null) state = `In call with ${this.active.call.peerId} (${clock((Date.now() - this.active.acceptedAt) / 1000)})`;
    else if (this.active) state = `Calling ${this.active.call.peerId}`;
    else if (this.client) state = this.client.peerId;
    else state = 'Sign in';
    document.title = `${state} · Softphone`;
  }

  private async record(record: HistoryRecord): Promise<void> {
    await this.store?.addRecord(record).catch(() => undefined);
    await this.renderHistory();
  }

  private async renderHistory(): Promise<void> {
    if (!this.phone || !this.store) return;
    const records = await this.store.history(30);
    const unseen = records.filter((r) => r.unseen).length;
    this.phone.missed.hidden = unseen === 0;
    this.phone.missed.textContent = `${unseen} missed`;
    replace(
      this.phone.history,
      ...(records.length === 0
        ? [h('li', { class: 'muted' }, 'No calls yet.')]
        : records.map((r) =>
            h('li', { class: r.outcome === 'missed' ? 'missed' : '' },
              h('span', { class: 'when' }, new Date(r.at).toLocaleTimeString()),
              h('span', {}, `${r.direction === 'outgoing' ? '↗' : '↙'} ${r.sentence}`),
              h('button', { type: 'button', class: 'quiet', onclick: () => void this.dial(r.peer) }, `Dial ${r.peer}`),
            ),
          )),
    );
    if (unseen > 0 && !document.hidden) setTimeout(() => void this.store?.markSeen(), 5000);
  }

  private async addContact(peer: string): Promise<void> {
    if (!this.client || !this.store || !this.phone || peer === '') return;
    try {
      for (const [p, o] of await this.client.subscribePresence([peer])) this.presence.set(p, o);
    } catch (e) {
      return void (this.phone.notice.textContent = `Could not add ${peer}: ${describeError(e)}`);
    }
    await this.store.addContact(peer);
    this.phone.contactInput.value = '';
    await this.renderContacts();
  }

  private async renderContacts(): Promise<void> {
    if (!this.phone || !this.store) return;
    const contacts = await this.store.contacts();
    replace(
      this.phone.contacts,
      ...(contacts.length === 0
        ? [h('li', { class: 'muted' }, 'No contacts yet: add someone below.')]
        : contacts.map((peer) => {
            const online = this.presence.get(peer);
            const word = online === undefined ? 'unknown' : online ? 'online' : 'offline';
            return h('li', {},
              h('span', { class: `dot ${word}`, 'aria-hidden': 'true' }),
              h('span', { class: 'peer' }, peer),
              h('span', { class: 'muted presence', 'aria-label': `${peer} is ${word}` }, word),
              h('button', { type: 'button', class: 'quiet', onclick: () => void this.dial(peer) }, `Dial ${peer}`),
              h('button', { type: 'button', class: 'quiet', onclick: () => void this.removeContact(peer) }, `Remove ${peer}`),
            );
          })),
    );
  }

  private async removeContact(peer: string): Promise<void> {
    await this.client?.unsubscribePresence([peer]).catch(() => undefined);
    await this.store?.removeContact(peer);
    this.presence.delete(peer);
    await this.renderContacts();
  }

  private async signOut(): Promise<void> {
    await this.client?.logout();
    this.signedOut('Signed out');
  }

  private signedOut(notice: string): void {
    this.banner.hidden = true;
    delete document.body.dataset.connection;
    void this.voice.stop();
    this.tones.stop();
    this.stopTicker();
    this.client = null;
    this.phone = null;
    this.active = null;
    this.ringing = [];
    this.dialog = null;
    void this.start(notice);
  }

  private stopTicker(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }
}

/** The page's own server: the WebSocket on the host it came from. */
function defaultServer(): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/`;
}

function reconnecting(nextTryInMs: number | undefined): string {
  return nextTryInMs === undefined ? 'Reconnecting...' : `Reconnecting: next try in ${(nextTryInMs / 1000).toFixed(1)} s`;
}
