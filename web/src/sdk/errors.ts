/**
 * The SDK's one error type, as the Rust SDK's `sdk::Error` (src/sdk/error.rs):
 * the Agora-style errors raised locally without a round trip when a call
 * breaks an invitation's rules, the server's own refusals (its protocol
 * code), and the connection's troubles.
 */

/** Every `SdkError.code`: Agora's local rule errors, the protocol's codes, the connection's. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_STARTED'
  | 'ALREADY_END'
  | 'ALREADY_ACCEPT'
  | 'ALREADY_SENT'
  | 'not_connected'
  | 'connection_lost'
  | 'timeout'
  | 'stopped'
  | 'connect_failed'
  | ServerCode;

/** The protocol's error codes (docs/protocol.md, "Error codes"). */
export type ServerCode =
  | 'bad_request'
  | 'unknown_type'
  | 'not_logged_in'
  | 'already_logged_in'
  | 'invalid_token'
  | 'token_expired'
  | 'invalid_argument'
  | 'duplicate_call_id'
  | 'not_found'
  | 'already_accepted'
  | 'already_ended'
  | 'rate_limited'
  | 'too_many_calls'
  | 'too_many_subscriptions'
  | 'too_many_sessions'
  | 'unavailable'
  | 'internal';

const LOCAL_RULES: ReadonlySet<string> = new Set([
  'INVALID_ARGUMENT',
  'NOT_STARTED',
  'ALREADY_END',
  'ALREADY_ACCEPT',
  'ALREADY_SENT',
]);

/** Why a request of the SDK failed; `code` is stable, `message` is for people. */
export class SdkError extends Error {
  /** The stable name scripts and pages match on. */
  readonly code: ErrorCode;
  /** Set when the server refused: the refusal came back from the server (vs. raised here). */
  readonly fromServer: boolean;

  constructor(code: ErrorCode, message: string, fromServer = false) {
    super(message);
    this.name = 'SdkError';
    this.code = code;
    this.fromServer = fromServer;
  }

  /** Raised locally, at once, because the call broke an invitation's rules or a limit. */
  get isLocalRule(): boolean {
    return LOCAL_RULES.has(this.code);
  }
}
