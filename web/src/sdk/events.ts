/**
 * The client's events, named after Agora RTM's callbacks (docs/sdk.md,
 * "Callbacks and events"), with the Rust SDK's additions: `HungUp`,
 * the voice handshake's `VoiceReady` / `VoiceUnavailable`.
 */
import type { SdkError } from './errors.js';
import type {
  Call,
  CanceledReason,
  HungUpReason,
  LocalFailureReason,
  LocalInvitation,
  RemoteFailureReason,
  RemoteInvitation,
} from './invitation.js';
import type { MediaInfo, VoiceKeys } from './media.js';

/** Agora's five connection states. */
export type ConnectionState = 'CONNECTING' | 'CONNECTED' | 'RECONNECTING' | 'DISCONNECTED' | 'ABORTED';
/** Why the state changed. */
export type ConnectionReason =
  | 'login'
  | 'login_success'
  | 'interrupted'
  | 'connect_failed'
  | 'login_refused'
  | 'logged_out';

export interface ClientEvents {
  [name: string]: unknown;
  LocalInvitationReceivedByPeer: { invitation: LocalInvitation };
  LocalInvitationAccepted: { invitation: LocalInvitation; response: string };
  LocalInvitationRefused: { invitation: LocalInvitation; response: string };
  LocalInvitationCanceled: { invitation: LocalInvitation };
  LocalInvitationFailure: { invitation: LocalInvitation; reason: LocalFailureReason };
  RemoteInvitationReceived: { invitation: RemoteInvitation };
  RemoteInvitationAccepted: { invitation: RemoteInvitation };
  RemoteInvitationRefused: { invitation: RemoteInvitation };
  RemoteInvitationCanceled: { invitation: RemoteInvitation; reason: CanceledReason };
  RemoteInvitationFailure: { invitation: RemoteInvitation; reason: RemoteFailureReason };
  /** An accepted call ended; `by` names who hung up (us on our own hang-up; empty when unknown). */
  HungUp: { call: Call; reason: HungUpReason; by: string };
  PeersOnlineStatusChanged: { peerId: string; online: boolean };
  ConnectionStateChanged: {
    state: ConnectionState;
    reason: ConnectionReason;
    attempt: number;
    /** Why a login was refused (state ABORTED). */
    error?: SdkError;
    /** RECONNECTING: how long until the next attempt. */
    nextTryInMs?: number;
  };
  /** Voice may start: the agreed keys and our way into the relay (hand them to VoiceCall.start). */
  VoiceReady: { call: Call; keys: VoiceKeys; media: MediaInfo; signalingUrl: string };
  /** This accepted call will have no voice, and why (said plainly). */
  VoiceUnavailable: { call: Call; reason: string };
}
