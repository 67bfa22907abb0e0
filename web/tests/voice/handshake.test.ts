// The browser's key agreement against fixed vectors computed independently
// (make-vectors.py, Python `cryptography`) from the Rust side's algorithm.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  HandshakeError, agree, callKeyFromSecret, commitment, decodeKey, encodeKey, makeCallKey, revealMatches,
} from '../../src/voice/handshake.ts';

const V = JSON.parse(readFileSync(new URL('./handshake-vectors.json', import.meta.url), 'utf8'));
const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((h) => parseInt(h, 16)));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

const caller = callKeyFromSecret(hex(V.caller_secret));
const callee = callKeyFromSecret(hex(V.callee_secret));

describe('handshake', () => {
  test('public keys match the vectors', () => {
    assert.equal(toHex(caller.public), V.caller_public);
    assert.equal(toHex(callee.public), V.callee_public);
  });

  test('v1.1: direction keys and the old safety code match, protects is false', () => {
    const a = agree(caller, callee.public, 'caller', V.call_id, null);
    const b = agree(callee, caller.public, 'callee', V.call_id, null);
    assert.equal(toHex(a.send), V.caller_to_callee);
    assert.equal(toHex(a.receive), V.callee_to_caller);
    assert.equal(toHex(b.send), V.callee_to_caller);
    assert.equal(toHex(b.receive), V.caller_to_callee);
    assert.deepEqual([a.safetyCode, b.safetyCode], [V.safety_code_v1_1, V.safety_code_v1_1]);
    assert.deepEqual([a.protects, b.protects, a.role, b.role], [false, false, 'caller', 'callee']);
  });

  test('v1.2: commitment, unchanged direction keys, the new safety code', () => {
    const commit = commitment(caller.public, V.call_id);
    assert.equal(toHex(commit), V.media_commit);
    assert.equal(revealMatches(commit, caller.public, V.call_id), true);
    const a = agree(caller, callee.public, 'caller', V.call_id, commit);
    const b = agree(callee, caller.public, 'callee', V.call_id, commit);
    assert.equal(toHex(a.send), V.caller_to_callee);
    assert.equal(toHex(b.send), V.callee_to_caller);
    assert.deepEqual([a.safetyCode, b.safetyCode], [V.safety_code_v1_2, V.safety_code_v1_2]);
    assert.equal(a.protects && b.protects, true);
  });

  test('a reveal of another key or for another call does not match', () => {
    const commit = commitment(caller.public, V.call_id);
    const other = makeCallKey();
    assert.equal(revealMatches(commit, other.public, V.call_id), false);
    assert.equal(revealMatches(commit, caller.public, V.call_id + 'x'), false);
    assert.equal(revealMatches(commit.slice(1), caller.public, V.call_id), false);
  });

  test('a man in the middle gives the two screens different codes', () => {
    const mitm = makeCallKey();
    const commit = commitment(caller.public, V.call_id);
    const callerSide = agree(caller, mitm.public, 'caller', V.call_id, commit);
    const calleeSide = agree(callee, mitm.public, 'callee', V.call_id, commitment(mitm.public, V.call_id));
    assert.notEqual(callerSide.safetyCode, calleeSide.safetyCode);
  });

  test('keys round-trip through unpadded base64url and bad text is a HandshakeError', () => {
    const text = encodeKey(caller.public);
    assert.equal((text).length, 43);
    assert.doesNotMatch(text, /[=+/]/);
    assert.equal(toHex(decodeKey(text)), V.caller_public);
    for (const bad of ['', 'abc', text + 'A', text.slice(0, 42) + '=', text.slice(0, 42) + '*', text.slice(0, 42) + 'B'.repeat(0)]) {
      assert.throws(() => decodeKey(bad), HandshakeError);
    }
    // The last character carries 4 bits: a non-canonical spelling is refused.
    const last = text[42];
    const sibling = last === 'A' ? 'B' : String.fromCharCode(last.charCodeAt(0) ^ 1);
    if (sibling !== last) assert.throws(() => decodeKey(text.slice(0, 42) + sibling), HandshakeError);
  });

  test('a low-order or wrong-length public key is refused', () => {
    const lowOrder = new Uint8Array(32); // u = 0
    assert.throws(() => agree(caller, lowOrder, 'caller', V.call_id, null), HandshakeError);
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.throws(() => agree(caller, one, 'caller', V.call_id, null), HandshakeError);
    assert.throws(() => agree(caller, new Uint8Array(31), 'caller', V.call_id, null), HandshakeError);
    assert.throws(() => agree(caller, callee.public, 'caller', V.call_id, new Uint8Array(5)), HandshakeError);
  });

  test('fresh keys agree with each other', () => {
    const [x, y] = [makeCallKey(), makeCallKey()];
    const a = agree(x, y.public, 'caller', 'call', commitment(x.public, 'call'));
    const b = agree(y, x.public, 'callee', 'call', commitment(x.public, 'call'));
    assert.equal(toHex(a.send), toHex(b.receive));
    assert.match(a.safetyCode, /^\d{6}$/);
    assert.equal(a.safetyCode, b.safetyCode);
  });
});
