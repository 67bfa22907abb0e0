/**
 * The softphone web SDK: protocol v1 in TypeScript, Agora RTM's call
 * invitations as the Rust SDK has them. See docs/web.md, "The SDK".
 */
export { Client, type ClientConfig } from './client.js';
export { SdkError, type ErrorCode, type ServerCode } from './errors.js';
export { DEFAULT_BACKOFF, backoffDelay, type Backoff } from './backoff.js';
export {
  LocalInvitation,
  RemoteInvitation,
  type Call,
  type LocalInvitationState,
  type RemoteInvitationState,
  type LocalFailureReason,
  type RemoteFailureReason,
  type CanceledReason,
  type HungUpReason,
} from './invitation.js';
export type { ClientEvents, ConnectionState, ConnectionReason } from './events.js';
export type { MediaInfo, MediaMode, VoiceKeys } from './media.js';
