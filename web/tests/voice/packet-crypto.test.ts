// Packets and their sealing against the vectors (make-vectors.py, an
// independent implementation of src/voice/crypto.rs and packet.rs).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OpenError, Opener, Sealer } from '../../src/voice/crypto.ts';
import {
  FLAG_REPORT, LOSS_UNKNOWN, MAX_PACKET_LEN, NO_ECHO, PacketError, encodeHeader, encodeReport, parseHeader,
  roundTripMs, splitReport,
} from '../../src/voice/packet.ts';

const V = JSON.parse(readFileSync(new URL('./handshake-vectors.json', import.meta.url), 'utf8'));
const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const keyOf = (direction: string) => hex(direction === 'caller to callee' ? V.caller_to_callee : V.callee_to_caller);

/** A sealer whose next sequence number is `seq`. */
function sealerAt(key: Uint8Array, seq: number): Sealer {
  const sealer = new Sealer(key);
  (sealer as unknown as { nextSeq: number }).nextSeq = seq;
  return sealer;
}

describe('packet', () => {
  test('the header is big-endian and round-trips', () => {
    const bytes = encodeHeader({ flags: FLAG_REPORT, seq: 0x01020304, timestamp: 0xa0b0c0d0 });
    assert.deepEqual(Array.from(bytes), [1, 1, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
    const packet = new Uint8Array(bytes.length + 19);
    packet.set(bytes);
    const { header, sealed } = parseHeader(packet);
    assert.deepEqual(header, { flags: 1, seq: 0x01020304, timestamp: 0xa0b0c0d0 });
    assert.equal(sealed.length, 19);
  });

  test('malformed packets are typed errors', () => {
    const good = new Uint8Array(26);
    good.set(encodeHeader({ flags: 0, seq: 1, timestamp: 2 }));
    assert.throws(() => parseHeader(new Uint8Array(3)), PacketError);
    assert.throws(() => parseHeader(new Uint8Array(MAX_PACKET_LEN + 1).fill(1)), /over the 1200-byte/);
    assert.throws(() => parseHeader(Uint8Array.from(good, (b, i) => (i === 0 ? 2 : b))), /version 2/);
    assert.throws(() => parseHeader(Uint8Array.from(good, (b, i) => (i === 1 ? 0x80 : b))), /flags 0x80/);
  });

  test('a report round-trips and gives the round trip', () => {
    const report = { sendMs: 7, echoMs: 1000, holdMs: 30, lossPct: 12 };
    const body = new Uint8Array([...encodeReport(report), ...new TextEncoder().encode('opus')]);
    const { report: parsed, rest } = splitReport(body);
    assert.deepEqual(parsed, report);
    assert.equal(new TextDecoder().decode(rest), 'opus');
    assert.equal(roundTripMs(parsed, 1100), 70);
    assert.equal(roundTripMs(parsed, 1010), null);
    assert.equal(roundTripMs({ ...report, echoMs: NO_ECHO }, 5000), null);
    assert.equal(splitReport(encodeReport({ ...report, lossPct: LOSS_UNKNOWN })).report.lossPct, LOSS_UNKNOWN);
    assert.throws(() => splitReport(body.subarray(0, 5)), /too short for its report/);
  });
});

describe('crypto', () => {
  test('sealing gives the vectors byte for byte and opening gives the body back', () => {
    for (const p of V.packets) {
      const packet = sealerAt(keyOf(p.direction), p.seq).seal(p.flags, p.timestamp, hex(p.body));
      assert.equal(toHex(packet), p.packet);
      const { header, body } = new Opener(keyOf(p.direction)).open(hex(p.packet));
      assert.deepEqual(header, { flags: p.flags, seq: p.seq, timestamp: p.timestamp });
      assert.equal(toHex(body), p.body);
    }
  });

  test('a reflected packet (the other direction key) is forged', () => {
    const p = V.packets[0];
    const other = p.direction === 'caller to callee' ? 'callee to caller' : 'caller to callee';
    assert.throws(() => new Opener(keyOf(other)).open(hex(p.packet)), OpenError);
  });

  test('a flipped bit anywhere is forged and changes nothing', () => {
    const key = keyOf('caller to callee');
    const sealer = new Sealer(key);
    const packets = [0, 1, 2].map((i) => sealer.seal(0, i * 960, new Uint8Array([i, 2, 3])));
    const opener = new Opener(key);
    for (const at of [2, 9, 12, packets[0].length - 1]) {
      const bad = packets[0].slice();
      bad[at] ^= 1;
      try {
        opener.open(bad);
        assert.fail('a forged packet opened');
      } catch (e) {
        assert.equal((e as OpenError).kind, at < 2 ? 'malformed' : 'forged');
      }
    }
    assert.equal(opener.open(packets[0]).header.seq, 0);
  });

  test('replays are dropped even out of order; old packets are stale', () => {
    const key = keyOf('callee to caller');
    const sealer = new Sealer(key);
    const packets = Array.from({ length: 200 }, (_, i) => sealer.seal(0, i * 960, new Uint8Array([i & 255])));
    const opener = new Opener(key);
    opener.open(packets[5]);
    opener.open(packets[3]);
    const kind = (p: Uint8Array) => {
      try {
        opener.open(p);
        return 'opened';
      } catch (e) {
        return (e as OpenError).kind;
      }
    };
    assert.equal(kind(packets[5]), 'replayed');
    assert.equal(kind(packets[3]), 'replayed');
    assert.equal(kind(packets[4]), 'opened');
    assert.equal(kind(packets[150]), 'opened');
    assert.equal(kind(packets[22]), 'stale'); // 128 behind 150
    assert.equal(kind(packets[23]), 'opened');
    assert.equal(kind(packets[23]), 'replayed');
  });

  test('sequence numbers never wrap', () => {
    const sealer = sealerAt(keyOf('caller to callee'), 0xffffffff);
    sealer.seal(0, 0, new Uint8Array(1));
    assert.throws(() => sealer.seal(0, 0, new Uint8Array(1)), /exhausted/);
  });
});
