/**
 * The signaling half of voice: the v1.2 media handshake (commit in the
 * invite, the callee's key in the accept, the caller's reveal after
 * `accepted`, the callee's check; /work/shared notes and docs/protocol.md)
 * with a fallback to v1.1 peers. The crypto is web/src/voice/handshake.ts;
 * this file only decides when keys may be agreed and says why not.
 */
import {
  agree,
  commitment,
  decodeKey,
  encodeKey,
  makeCallKey,
  revealMatches,
  type CallKey,
  type VoiceKeys,
} from '../voice/handshake.js';

export type { VoiceKeys };

/** The `media` object of `accepted` or of the accept's `ok`: our way into the relay. */
export interface MediaInfo {
  relay?: string;
  ws: string;
  credential: string;
}

/** Which handshake the SDK offers when it places a call. */
export type MediaMode = 'v1.2' | 'v1.1' | 'off';

/** How long the callee waits for the caller's reveal after its accept. */
export const REVEAL_TIMEOUT_MS = 10_000;

export const TAMPERED =
  "the caller's key does not match its commitment: someone may be tampering with this call";
export const NEVER_REVEALED = 'the caller never revealed its key';

/** One call's handshake, from either side. */
export class MediaHandshake {
  /** Our ephemeral key for this call. */
  readonly mine: CallKey = makeCallKey();
  /** v1.2: the commitment (ours as caller, the invitation's as callee). */
  commit: Uint8Array | null = null;
  /** v1.1 callee: the caller's key from the invitation. */
  callerKey: Uint8Array | null = null;
  /** The agreed keys, once agreed. */
  keys: VoiceKeys | null = null;
  /** The key the caller revealed (a second, different reveal is tampering). */
  revealed: Uint8Array | null = null;
  /** The callee's reveal deadline. */
  timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly role: 'caller' | 'callee',
    readonly callId: string,
  ) {}

  /** The caller's invite fields for `mode`. */
  inviteFields(mode: MediaMode): Record<string, string> {
    if (mode === 'off') return {};
    if (mode === 'v1.1') return { media_key: encodeKey(this.mine.public) };
    this.commit = commitment(this.mine.public, this.callId);
    return { media_commit: encodeKey(this.commit) };
  }

  /** The callee reads the invitation's `media_commit` / `media_key`; false when it offers no voice. */
  readInvitation(message: Record<string, unknown>): boolean {
    try {
      if (typeof message.media_commit === 'string') this.commit = decodeKey(message.media_commit);
      else if (typeof message.media_key === 'string') this.callerKey = decodeKey(message.media_key);
    } catch {
      return false;
    }
    return this.commit !== null || this.callerKey !== null;
  }

  /** Caller, on `accepted` with the callee's key: agrees (throws HandshakeError on a bad key). */
  callerAgrees(calleeKey: string): VoiceKeys {
    this.keys = agree(this.mine, decodeKey(calleeKey), 'caller', this.callId, this.commit);
    return this.keys;
  }

  /** Callee, after its accept to a v1.1 caller: agrees at once with the old code. */
  calleeAgreesV11(): VoiceKeys | null {
    if (this.callerKey === null) return null;
    this.keys = agree(this.mine, this.callerKey, 'callee', this.callId, null);
    return this.keys;
  }

  /** Callee, on `media_reveal`: the keys, or the reason voice must not start. */
  calleeReveal(revealedKey: string): VoiceKeys | string {
    let key: Uint8Array;
    try {
      key = decodeKey(revealedKey);
    } catch {
      return TAMPERED;
    }
    if (this.revealed !== null) {
      return sameBytes(this.revealed, key) && this.keys !== null ? this.keys : TAMPERED;
    }
    this.revealed = key;
    if (this.commit === null || !revealMatches(this.commit, key, this.callId)) return TAMPERED;
    try {
      this.keys = agree(this.mine, key, 'callee', this.callId, this.commit);
    } catch (e) {
      return (e as Error).message;
    }
    return this.keys;
  }

  /** Stops the reveal deadline. */
  done(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
