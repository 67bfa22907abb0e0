// The browser's key agreement against fixed vectors computed independently
// (make-vectors.py, Python `cryptography`) from the Rust side's algorithm.
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  HandshakeError, agree, callKeyFromSecret, commitment, decodeKey, encodeKey, makeCallKey, revealMatches,
} from '../../src/voice/handshake';

const V = JSON.parse(readFileSync(new URL('./handshake-vectors.json', import.meta.url), 'utf8'));
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

const caller = callKeyFromSecret(hex(V.caller_secret));
const callee = callKeyFromSecret(hex(V.callee_secret));

describe('handshake', () => {
  test('public keys match the vectors', () => {
    expect(toHex(caller.public)).toBe(V.caller_public);
    expect(toHex(callee.public)).toBe(V.callee_public);
  });

  test('v1.1: direction keys and the old safety code match, protects is false', () => {
    const a = agree(caller, callee.public, 'caller', V.call_id, null);
    const b = agree(callee, caller.public, 'callee', V.call_id, null);
    expect(toHex(a.send)).toBe(V.caller_to_callee);
    expect(toHex(a.receive)).toBe(V.callee_to_caller);
    expect(toHex(b.send)).toBe(V.callee_to_caller);
    expect(toHex(b.receive)).toBe(V.caller_to_callee);
    expect([a.safetyCode, b.safetyCode]).toEqual([V.safety_code_v1_1, V.safety_code_v1_1]);
    expect([a.protects, b.protects, a.role, b.role]).toEqual([false, false, 'caller', 'callee']);
  });

  test('v1.2: commitment, unchanged direction keys, the new safety code', () => {
    const commit = commitment(caller.public, V.call_id);
    expect(toHex(commit)).toBe(V.media_commit);
    expect(revealMatches(commit, caller.public, V.call_id)).toBe(true);
    const a = agree(caller, callee.public, 'caller', V.call_id, commit);
    const b = agree(callee, caller.public, 'callee', V.call_id, commit);
    expect(toHex(a.send)).toBe(V.caller_to_callee);
    expect(toHex(b.send)).toBe(V.callee_to_caller);
    expect([a.safetyCode, b.safetyCode]).toEqual([V.safety_code_v1_2, V.safety_code_v1_2]);
    expect(a.protects && b.protects).toBe(true);
  });

  test('a reveal of another key or for another call does not match', () => {
    const commit = commitment(caller.public, V.call_id);
    const other = makeCallKey();
    expect(revealMatches(commit, other.public, V.call_id)).toBe(false);
    expect(revealMatches(commit, caller.public, V.call_id + 'x')).toBe(false);
    expect(revealMatches(commit.slice(1), caller.public, V.call_id)).toBe(false);
  });

  test('a man in the middle gives the two screens different codes', () => {
    const mitm = makeCallKey();
    const commit = commitment(caller.public, V.call_id);
    const callerSide = agree(caller, mitm.public, 'caller', V.call_id, commit);
    const calleeSide = agree(callee, mitm.public, 'callee', V.call_id, commitment(mitm.public, V.call_id));
    expect(callerSide.safetyCode).not.toBe(calleeSide.safetyCode);
  });

  test('keys round-trip through unpadded base64url and bad text is a HandshakeError', () => {
    const text = encodeKey(caller.public);
    expect(text).toHaveLength(43);
    expect(text).not.toMatch(/[=+/]/);
    expect(toHex(decodeKey(text))).toBe(V.caller_public);
    for (const bad of ['', 'abc', text + 'A', text.slice(0, 42) + '=', text.slice(0, 42) + '*', text.slice(0, 42) + 'B'.repeat(0)]) {
      expect(() => decodeKey(bad)).toThrow(HandshakeError);
    }
    // The last character carries 4 bits: a non-canonical spelling is refused.
    const last = text[42];
    const sibling = last === 'A' ? 'B' : String.fromCharCode(last.charCodeAt(0) ^ 1);
    if (sibling !== last) expect(() => decodeKey(text.slice(0, 42) + sibling)).toThrow(HandshakeError);
  });

  test('a low-order or wrong-length public key is refused', () => {
    const lowOrder = new Uint8Array(32); // u = 0
    expect(() => agree(caller, lowOrder, 'caller', V.call_id, null)).toThrow(HandshakeError);
    const one = new Uint8Array(32);
    one[0] = 1;
    expect(() => agree(caller, one, 'caller', V.call_id, null)).toThrow(HandshakeError);
    expect(() => agree(caller, new Uint8Array(31), 'caller', V.call_id, null)).toThrow(HandshakeError);
    expect(() => agree(caller, callee.public, 'caller', V.call_id, new Uint8Array(5))).toThrow(HandshakeError);
  });

  test('fresh keys agree with each other', () => {
    const [x, y] = [makeCallKey(), makeCallKey()];
    const a = agree(x, y.public, 'caller', 'call', commitment(x.public, 'call'));
    const b = agree(y, x.public, 'callee', 'call', commitment(x.public, 'call'));
    expect(toHex(a.send)).toBe(toHex(b.receive));
    expect(a.safetyCode).toMatch(/^\d{6}$/);
    expect(a.safetyCode).toBe(b.safetyCode);
  });
});
