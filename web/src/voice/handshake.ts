/**
 * The call's key agreement, as the Rust side does it (src/voice/crypto.rs,
 * docs/media.md "Encryption") plus the v1.2 commit-and-reveal handshake
 * (docs/protocol.md, "media_commit" / "media_reveal").
 *
 * Each side makes an ephemeral X25519 key per call. Both derive two
 * direction keys with HKDF-SHA256 (no salt, IKM = the shared secret,
 * info = "softphone voice v1" || caller_public || callee_public || call_id
 * || " caller to callee" / " callee to caller") and a six-digit safety code.
 * v1.2: the caller first sends only a commitment to its key, so a man in
 * the middle must choose his key for the callee before he sees the
 * caller's, and the code (bound to the commitment) then differs on the two
 * screens unless he guessed right (one chance in a million).
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** Bytes of an X25519 key (public or secret) and of a commitment. */
export const KEY_LEN = 32;

const KDF_LABEL = 'softphone voice v1';
const SAFETY_LABEL_V11 = 'softphone safety code v1';
const SAFETY_LABEL_V12 = 'softphone safety code v1.2';
const COMMIT_LABEL = 'softphone commit v1.2';
const CALLER_TO_CALLEE = ' caller to callee';
const CALLEE_TO_CALLER = ' callee to caller';

/** Bad input to the handshake: a malformed key, a weak key, a bad commitment. */
export class HandshakeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandshakeError';
  }
}

/** This side's ephemeral key pair for one call. */
export interface CallKey {
  /** Never leaves this side. */
  readonly secret: Uint8Array;
  /** Goes to the other side (invite reveal or accept). */
  readonly public: Uint8Array;
}

/** The agreed keys of one call, from this side's point of view. */
export interface VoiceKeys {
  role: 'caller' | 'callee';
  /** Seals what this side sends. */
  send: Uint8Array;
  /** Opens what the other side sends. */
  receive: Uint8Array;
  /** Six digits both screens show. */
  safetyCode: string;
  /** False for a v1.1 peer: without a commitment the code does not protect the call. */
  protects: boolean;
}

const utf8 = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function checkKey(bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_LEN) {
    throw new HandshakeError(`${what} is not ${KEY_LEN} bytes`);
  }
}

/** A fresh key from the browser's (or node's) cryptographic random source. */
export function makeCallKey(): CallKey {
  const secret = x25519.utils.randomSecretKey();
  return { secret, public: x25519.getPublicKey(secret) };
}

/** A key from given secret bytes (test vectors). */
export function callKeyFromSecret(secret: Uint8Array): CallKey {
  checkKey(secret, 'secret key');
  return { secret: secret.slice(), public: x25519.getPublicKey(secret) };
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Unpadded base64url, as signaling carries keys. */
export function encodeKey(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The inverse of {@link encodeKey}; a key or commitment must be 32 bytes. */
export function decodeKey(text: string): Uint8Array {
  // 32 bytes are exactly 43 characters; the last one carries 4 bits, so
  // only the canonical encodings are accepted (as Rust's base64 does).
  if (typeof text !== 'string' || text.length !== 43 || !B64URL.test(text)) {
    throw new HandshakeError('key is not 32 bytes of unpadded base64url');
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '=');
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  if (encodeKey(bytes) !== text) {
    throw new HandshakeError('key is not canonical base64url');
  }
  return bytes;
}

/** The v1.2 commitment: SHA-256("softphone commit v1.2" || caller_public || call_id). */
export function commitment(callerPublic: Uint8Array, callId: string): Uint8Array {
  checkKey(callerPublic, "caller's public key");
  return sha256(concat(utf8.encode(COMMIT_LABEL), callerPublic, utf8.encode(callId)));
}

/** Constant-time comparison of two byte strings of the same length. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Whether a revealed caller key matches the commitment the invitation carried. */
export function revealMatches(commit: Uint8Array, callerPublic: Uint8Array, callId: string): boolean {
  if (commit.length !== KEY_LEN || callerPublic.length !== KEY_LEN) return false;
  return sameBytes(commit, commitment(callerPublic, callId));
}

/** v1.1's code: SHA-256(label || min(pk) || max(pk)), first 8 bytes BE mod 10^6. */
export function safetyCodeV11(a: Uint8Array, b: Uint8Array): string {
  const [low, high] = compareBytes(a, b) <= 0 ? [a, b] : [b, a];
  return sixDigits(sha256(concat(utf8.encode(SAFETY_LABEL_V11), low, high)));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

function sixDigits(bytes: Uint8Array): string {
  const number = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, false) % 1_000_000n;
  return number.toString().padStart(6, '0');
}

/**
 * Agrees the call's keys. `commit`: the commitment of a v1.2 call (the
 * caller's own, or the one the invitation carried; the callee must have
 * checked the reveal with {@link revealMatches} first), or null with a
 * v1.1 peer (old safety code, `protects: false`).
 */
export function agree(
  mine: CallKey,
  theirPublic: Uint8Array,
  role: 'caller' | 'callee',
  callId: string,
  commit: Uint8Array | null,
): VoiceKeys {
  checkKey(theirPublic, "the other side's public key");
  checkKey(mine.secret, 'secret key');
  if (role !== 'caller' && role !== 'callee') throw new HandshakeError(`unknown role ${String(role)}`);
  if (commit !== null) checkKey(commit, 'commitment');
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(mine.secret, theirPublic);
  } catch {
    throw new HandshakeError("the other side's public key is a low-order point (no shared secret)");
  }
  if (shared.every((b) => b === 0)) {
    throw new HandshakeError("the other side's public key is a low-order point (no shared secret)");
  }
  const ours = mine.public;
  const [caller, callee] = role === 'caller' ? [ours, theirPublic] : [theirPublic, ours];
  const id = utf8.encode(callId);
  const info = concat(utf8.encode(KDF_LABEL), caller, callee, id);
  const direction = (label: string) => hkdf(sha256, shared, undefined, concat(info, utf8.encode(label)), 32);
  const callerToCallee = direction(CALLER_TO_CALLEE);
  const calleeToCaller = direction(CALLEE_TO_CALLER);
  let safetyCode: string;
  if (commit === null) {
    safetyCode = safetyCodeV11(ours, theirPublic);
  } else {
    const safetyInfo = concat(utf8.encode(SAFETY_LABEL_V12), commit, caller, callee, id);
    safetyCode = sixDigits(hkdf(sha256, shared, undefined, safetyInfo, 8));
  }
  shared.fill(0);
  return {
    role,
    send: role === 'caller' ? callerToCallee : calleeToCaller,
    receive: role === 'caller' ? calleeToCaller : callerToCallee,
    safetyCode,
    protects: commit !== null,
  };
}
