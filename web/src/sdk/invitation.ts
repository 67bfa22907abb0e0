/**
 * Agora RTM's LocalInvitation (a call we place) and RemoteInvitation (a call
 * that rings at us), with exactly Agora's states and the Rust SDK's rules
 * (src/sdk/invitation.rs, docs/sdk.md): a call that breaks a state's rules
 * fails locally, at once, with INVALID_ARGUMENT, NOT_STARTED, ALREADY_END,
 * ALREADY_ACCEPT or ALREADY_SENT, and nothing is sent.
 */
import { SdkError } from './errors.js';
import { CHANNEL_MAX, CONTENT_MAX, checkId, checkText } from './limits.js';
import type { MediaInfo, VoiceKeys } from './media.js';

export type LocalInvitationState =
  | 'IDLE'
  | 'SENT_TO_REMOTE'
  | 'RECEIVED_BY_REMOTE'
  | 'ACCEPTED_BY_REMOTE'
  | 'REFUSED_BY_REMOTE'
  | 'CANCELED'
  | 'FAILURE';

export type RemoteInvitationState =
  | 'IDLE'
  | 'INVITATION_RECEIVED'
  | 'ACCEPT_SENT_TO_LOCAL'
  | 'REFUSED'
  | 'ACCEPTED'
  | 'CANCELED'
  | 'FAILURE';

/** Why our invitation failed: the server's reasons, or ours after a reconnect. */
export type LocalFailureReason = 'peer_offline' | 'peer_no_response' | 'expired' | 'ended_while_disconnected';
/** Why an incoming invitation failed. */
export type RemoteFailureReason = 'expired' | 'caller_offline' | 'ended_while_disconnected';
/** Why an incoming invitation was canceled. */
export type CanceledReason = 'caller_canceled' | 'answered_elsewhere' | 'refused_elsewhere';
/** Why an accepted call ended. */
export type HungUpReason = 'hangup' | 'peer_offline' | 'ended_while_disconnected';

/** What an invitation needs of its client: the wire, and the voice handshake. */
export interface Desk {
  readonly peerId: string;
  request(message: { type: string; [k: string]: unknown }): Promise<{ [k: string]: unknown }>;
  /** Fields the invite carries for voice (`media_commit` or `media_key`), made fresh. */
  inviteMedia(inv: LocalInvitation): Record<string, string>;
  /** Fields the accept carries for voice (`media_key`). */
  acceptMedia(inv: RemoteInvitation): Record<string, string>;
  /** Our accept went through: its reply's `media`, if any. */
  acceptedByUs(inv: RemoteInvitation, media: MediaInfo | null): void;
  /** An accepted call ended by our hang-up. */
  hungUpByUs(call: Call): void;
  /** A local state change the client must announce (cancel/accept/refuse went through). */
  announce(name: 'LocalInvitationCanceled' | 'RemoteInvitationAccepted' | 'RemoteInvitationRefused', call: Call): void;
}

/** Either kind, once accepted: a live call until hung up. */
export type Call = LocalInvitation | RemoteInvitation;

/** What both kinds share: the call id, the voice that may come, the hang-up. */
abstract class Invitation {
  /** Set once an accepted call has ended (hang-up, peer lost, ended while away). */
  hungUp = false;
  /** The call's voice keys and relay way in, once the handshake is done. */
  voice: { keys: VoiceKeys; media: MediaInfo } | null = null;
  /** A request in flight whose outcome a reconnect must settle ('invite' | 'accept'). */
  inFlight: 'invite' | 'accept' | 'cancel' | 'refuse' | 'hangup' | null = null;

  protected constructor(
    protected readonly desk: Desk,
    readonly callId: string,
  ) {}

  /** The other party's peer id. */
  abstract get peerId(): string;
  /** Whether the call was accepted (on either side). */
  abstract get isAccepted(): boolean;
  /** Whether the invitation or call has ended. */
  abstract get isEnded(): boolean;

  /** True while the call is ringing or accepted and not hung up. */
  get isCallLive(): boolean {
    return !this.isEnded;
  }

  /** Hangs up an accepted call (beyond Agora). */
  async hangup(): Promise<void> {
    if (!this.isAccepted) {
      if (this.isEnded) throw new SdkError('ALREADY_END', `call ${this.callId} has already ended`);
      throw new SdkError('NOT_STARTED', `call ${this.callId} is not accepted yet: cancel or refuse it`);
    }
    if (this.hungUp || this.inFlight === 'hangup') {
      throw new SdkError('ALREADY_END', `call ${this.callId} has already ended`);
    }
    this.inFlight = 'hangup';
    try {
      await this.desk.request({ type: 'hangup', call_id: this.callId });
      this.inFlight = null;
      if (!this.hungUp) {
        this.hungUp = true;
        this.desk.hungUpByUs(this as unknown as Call);
      }
    } catch (e) {
      if (this.inFlight === 'hangup') this.inFlight = null;
      throw e;
    }
  }
}

/** A call we place (Agora `LocalInvitation`). */
export class LocalInvitation extends Invitation {
  state: LocalInvitationState = 'IDLE';
  /** The callee's response, from `accepted` or `refused`. */
  response = '';
  /** The callee's device label, from `accepted`. */
  device = '';
  /** Why it failed, in state FAILURE. */
  failureReason: LocalFailureReason | null = null;
  private contentValue = '';
  private channelValue = '';

  constructor(
    desk: Desk,
    readonly calleeId: string,
    callId: string = crypto.randomUUID(),
  ) {
    super(desk, callId);
    checkId('callee_id', calleeId);
    checkId('call_id', callId);
    if (calleeId === desk.peerId) throw new SdkError('INVALID_ARGUMENT', 'you cannot call yourself');
  }

  get peerId(): string {
    return this.calleeId;
  }
  get content(): string {
    return this.contentValue;
  }
  get channelId(): string {
    return this.channelValue;
  }
  get isAccepted(): boolean {
    return this.state === 'ACCEPTED_BY_REMOTE';
  }
  get isEnded(): boolean {
    return (
      this.hungUp ||
      this.state === 'REFUSED_BY_REMOTE' ||
      this.state === 'CANCELED' ||
      this.state === 'FAILURE'
    );
  }

  /** Agora `setContent`: at most 8192 bytes, before `send`. */
  setContent(content: string): void {
    this.mustBeUnsent();
    checkText('content', content, CONTENT_MAX);
    this.contentValue = content;
  }

  /** Agora `setChannelId`: at most 64 bytes, before `send`. */
  setChannelId(channelId: string): void {
    this.mustBeUnsent();
    checkText('channel_id', channelId, CHANNEL_MAX);
    this.channelValue = channelId;
  }

  /** Sends the invitation: resolves on the server's `ok` (SENT_TO_REMOTE). A refused send leaves it IDLE. */
  async send(): Promise<void> {
    this.mustBeUnsent();
    this.inFlight = 'invite';
    try {
      await this.desk.request({
        type: 'invite',
        call_id: this.callId,
        callee_id: this.calleeId,
        content: this.contentValue,
        channel_id: this.channelValue,
        ...this.desk.inviteMedia(this),
      });
      if (this.inFlight === 'invite') this.inFlight = null;
      if (this.state === 'IDLE') this.state = 'SENT_TO_REMOTE';
    } catch (e) {
      // Lost in flight: the next login's `calls` list settles it.
      if ((e as SdkError).code !== 'connection_lost' && this.inFlight === 'invite') this.inFlight = null;
      throw e;
    }
  }

  /** Cancels a ringing invitation (CANCELED on the server's `ok`). */
  async cancel(): Promise<void> {
    if (this.state === 'IDLE' && this.inFlight !== 'invite') {
      throw new SdkError('NOT_STARTED', 'the invitation has not been sent');
    }
    if (this.isAccepted) throw new SdkError('ALREADY_ACCEPT', `call ${this.callId} was accepted: hang up instead`);
    if (this.isEnded || this.inFlight === 'cancel') {
      throw new SdkError('ALREADY_END', `call ${this.callId} has already ended`);
    }
    this.inFlight = 'cancel';
    try {
      await this.desk.request({ type: 'cancel', call_id: this.callId });
      this.inFlight = null;
      if (!this.isEnded && !this.isAccepted) {
        this.state = 'CANCELED';
        this.desk.announce('LocalInvitationCanceled', this);
      }
    } catch (e) {
      if (this.inFlight === 'cancel') this.inFlight = null;
      throw e;
    }
  }

  private mustBeUnsent(): void {
    if (this.state !== 'IDLE' || this.inFlight === 'invite') {
      throw new SdkError('ALREADY_SENT', `call ${this.callId} has already been sent`);
    }
  }
}

/** A call that rings at us (Agora `RemoteInvitation`). */
export class RemoteInvitation extends Invitation {
  state: RemoteInvitationState = 'INVITATION_RECEIVED';
  /** Why it failed, in state FAILURE. */
  failureReason: RemoteFailureReason | null = null;
  /** Why it was canceled, in state CANCELED. */
  canceledReason: CanceledReason | null = null;
  private responseValue = '';

  constructor(
    desk: Desk,
    callId: string,
    readonly callerId: string,
    readonly content: string,
    readonly channelId: string,
    /** How long it may still ring, as the invitation said. */
    readonly expiresInMs: number,
  ) {
    super(desk, callId);
  }

  get peerId(): string {
    return this.callerId;
  }
  get response(): string {
    return this.responseValue;
  }
  get isAccepted(): boolean {
    return this.state === 'ACCEPTED';
  }
  get isEnded(): boolean {
    return this.hungUp || this.state === 'REFUSED' || this.state === 'CANCELED' || this.state === 'FAILURE';
  }

  /** Agora `setResponse`: at most 8192 bytes, before answering. */
  setResponse(response: string): void {
    if (this.state !== 'INVITATION_RECEIVED') {
      throw new SdkError('ALREADY_SENT', `call ${this.callId} has already been answered`);
    }
    checkText('response', response, CONTENT_MAX);
    this.responseValue = response;
  }

  /** Accepts: ACCEPT_SENT_TO_LOCAL at once, ACCEPTED on the server's `ok`. */
  async accept(): Promise<void> {
    this.mustBeRinging();
    this.state = 'ACCEPT_SENT_TO_LOCAL';
    this.inFlight = 'accept';
    try {
      const reply = await this.desk.request({
        type: 'accept',
        call_id: this.callId,
        response: this.responseValue,
        ...this.desk.acceptMedia(this),
      });
      this.inFlight = null;
      if (this.state === 'ACCEPT_SENT_TO_LOCAL') {
        this.state = 'ACCEPTED';
        this.desk.announce('RemoteInvitationAccepted', this);
        this.desk.acceptedByUs(this, (reply.media as MediaInfo | undefined) ?? null);
      }
    } catch (e) {
      if ((e as SdkError).code !== 'connection_lost') {
        this.inFlight = null;
        if (this.state === 'ACCEPT_SENT_TO_LOCAL') this.state = 'INVITATION_RECEIVED';
      }
      throw e;
    }
  }

  /** Refuses (`response`, e.g. "busy", goes to the caller): REFUSED on the server's `ok`. */
  async refuse(response?: string): Promise<void> {
    this.mustBeRinging();
    if (response !== undefined) this.setResponse(response);
    this.inFlight = 'refuse';
    try {
      await this.desk.request({ type: 'refuse', call_id: this.callId, response: this.responseValue });
      this.inFlight = null;
      if (this.state === 'INVITATION_RECEIVED') {
        this.state = 'REFUSED';
        this.desk.announce('RemoteInvitationRefused', this);
      }
    } catch (e) {
      if (this.inFlight === 'refuse') this.inFlight = null;
      throw e;
    }
  }

  private mustBeRinging(): void {
    if (this.state === 'ACCEPTED' || this.state === 'ACCEPT_SENT_TO_LOCAL') {
      throw new SdkError('ALREADY_ACCEPT', `call ${this.callId} has already been accepted`);
    }
    if (this.isEnded || this.inFlight === 'refuse') {
      throw new SdkError('ALREADY_END', `call ${this.callId} has already ended`);
    }
  }
}
