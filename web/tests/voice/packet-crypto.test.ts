// Packets and their sealing against the vectors (make-vectors.py, an
// independent implementation of src/voice/crypto.rs and packet.rs).
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { OpenError, Opener, Sealer } from '../../src/voice/crypto';
import {
  FLAG_REPORT, LOSS_UNKNOWN, MAX_PACKET_LEN, NO_ECHO, PacketError, encodeHeader, encodeReport, parseHeader,
  roundTripMs, splitReport,
} from '../../src/voice/packet';

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
    expect(Array.from(bytes)).toEqual([1, 1, 1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
    const packet = new Uint8Array(bytes.length + 19);
    packet.set(bytes);
    const { header, sealed } = parseHeader(packet);
    expect(header).toEqual({ flags: 1, seq: 0x01020304, timestamp: 0xa0b0c0d0 });
    expect(sealed.length).toBe(19);
  });

  test('malformed packets are typed errors', () => {
    const good = new Uint8Array(26);
    good.set(encodeHeader({ flags: 0, seq: 1, timestamp: 2 }));
    expect(() => parseHeader(new Uint8Array(3))).toThrow(PacketError);
    expect(() => parseHeader(new Uint8Array(MAX_PACKET_LEN + 1).fill(1))).toThrow(/over the 1200-byte/);
    expect(() => parseHeader(Uint8Array.from(good, (b, i) => (i === 0 ? 2 : b)))).toThrow(/version 2/);
    expect(() => parseHeader(Uint8Array.from(good, (b, i) => (i === 1 ? 0x80 : b)))).toThrow(/flags 0x80/);
  });

  test('a report round-trips and gives the round trip', () => {
    const report = { sendMs: 7, echoMs: 1000, holdMs: 30, lossPct: 12 };
    const body = new Uint8Array([...encodeReport(report), ...new TextEncoder().encode('opus')]);
    const { report: parsed, rest } = splitReport(body);
    expect(parsed).toEqual(report);
    expect(new TextDecoder().decode(rest)).toBe('opus');
    expect(roundTripMs(parsed, 1100)).toBe(70);
    expect(roundTripMs(parsed, 1010)).toBeNull();
    expect(roundTripMs({ ...report, echoMs: NO_ECHO }, 5000)).toBeNull();
    expect(splitReport(encodeReport({ ...report, lossPct: LOSS_UNKNOWN })).report.lossPct).toBe(LOSS_UNKNOWN);
    expect(() => splitReport(body.subarray(0, 5))).toThrow(/too short for its report/);
  });
});

describe('crypto', () => {
  test('sealing gives the vectors byte for byte and opening gives the body back', () => {
    for (const p of V.packets) {
      const packet = sealerAt(keyOf(p.direction), p.seq).seal(p.flags, p.timestamp, hex(p.body));
      expect(toHex(packet)).toBe(p.packet);
      const { header, body } = new Opener(keyOf(p.direction)).open(hex(p.packet));
      expect(header).toEqual({ flags: p.flags, seq: p.seq, timestamp: p.timestamp });
      expect(toHex(body)).toBe(p.body);
    }
  });

  test('a reflected packet (the other direction key) is forged', () => {
    const p = V.packets[0];
    const other = p.direction === 'caller to callee' ? 'callee to caller' : 'caller to callee';
    expect(() => new Opener(keyOf(other)).open(hex(p.packet))).toThrow(OpenError);
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
        expect.unreachable('a forged packet opened');
      } catch (e) {
        expect((e as OpenError).kind).toBe(at < 2 ? 'malformed' : 'forged');
      }
    }
    expect(opener.open(packets[0]).header.seq).toBe(0);
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
    expect(kind(packets[5])).toBe('replayed');
    expect(kind(packets[3])).toBe('replayed');
    expect(kind(packets[4])).toBe('opened');
    expect(kind(packets[150])).toBe('opened');
    expect(kind(packets[22])).toBe('stale'); // 128 behind 150
    expect(kind(packets[23])).toBe('opened');
    expect(kind(packets[23])).toBe('replayed');
  });

  test('sequence numbers never wrap', () => {
    const sealer = sealerAt(keyOf('caller to callee'), 0xffffffff);
    sealer.seal(0, 0, new Uint8Array(1));
    expect(() => sealer.seal(0, 0, new Uint8Array(1))).toThrow(/exhausted/);
  });
});
