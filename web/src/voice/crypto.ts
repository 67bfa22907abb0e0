/**
 * Sealing and opening voice packets as src/voice/crypto.rs does:
 * ChaCha20-Poly1305 with the direction key, the 96-bit nonce is eight zero
 * bytes then the sequence number (u32 big-endian), the associated data is
 * the 10-byte clear header. The opener keeps a 128-packet replay window
 * that moves only for authentic packets.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { HEADER_LEN, type Header, PacketError, encodeHeader, parseHeader } from './packet';

/** Packets behind the newest that may still arrive; older ones are stale. */
export const REPLAY_WINDOW = 128;

/** Why a received packet was dropped (nothing changed). */
export class OpenError extends Error {
  constructor(
    readonly kind: 'malformed' | 'forged' | 'replayed' | 'stale',
    message: string,
  ) {
    super(message);
    this.name = 'OpenError';
  }
}

function nonce(seq: number): Uint8Array {
  const bytes = new Uint8Array(12);
  new DataView(bytes.buffer).setUint32(8, seq >>> 0, false);
  return bytes;
}

/** Seals outgoing packets; owns the sequence counter so a nonce never repeats. */
export class Sealer {
  /** The next packet's sequence number; null once all 2^32 are used. */
  private nextSeq: number | null = 0;
  private readonly key: Uint8Array;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('a direction key is 32 bytes');
    this.key = key.slice();
  }

  /** A whole packet: header with the next sequence number, then the sealed body. */
  seal(flags: number, timestamp: number, body: Uint8Array): Uint8Array {
    const seq = this.nextSeq;
    if (seq === null) throw new Error('sequence numbers exhausted; the call must be re-keyed');
    this.nextSeq = seq === 0xffffffff ? null : seq + 1;
    const header = encodeHeader({ flags, seq, timestamp });
    const sealed = chacha20poly1305(this.key, nonce(seq), header).encrypt(body);
    const packet = new Uint8Array(HEADER_LEN + sealed.length);
    packet.set(header);
    packet.set(sealed, HEADER_LEN);
    return packet;
  }
}

/** Opens incoming packets and keeps the replay window. */
export class Opener {
  private readonly key: Uint8Array;
  /** The newest sequence number opened, if any. */
  private newest: number | null = null;
  /** Bit i set: newest - i was seen (128 bits). */
  private seen = 0n;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new RangeError('a direction key is 32 bytes');
    this.key = key.slice();
  }

  /** The header and plaintext body of an authentic new packet; throws OpenError otherwise. */
  open(packet: Uint8Array): { header: Header; body: Uint8Array } {
    let parsed;
    try {
      parsed = parseHeader(packet);
    } catch (e) {
      throw new OpenError('malformed', e instanceof PacketError ? e.message : String(e));
    }
    const { header, sealed } = parsed;
    this.check(header.seq);
    let body: Uint8Array;
    try {
      body = chacha20poly1305(this.key, nonce(header.seq), packet.subarray(0, HEADER_LEN)).decrypt(sealed);
    } catch {
      throw new OpenError('forged', 'packet failed authentication (forged, corrupted or another call\'s)');
    }
    this.mark(header.seq);
    return { header, body };
  }

  private check(seq: number): void {
    if (this.newest === null || seq > this.newest) return;
    const behind = this.newest - seq;
    if (behind >= REPLAY_WINDOW) throw new OpenError('stale', `packet ${seq} is older than the replay window`);
    if ((this.seen >> BigInt(behind)) & 1n) throw new OpenError('replayed', `packet ${seq} was already received`);
  }

  private mark(seq: number): void {
    const mask = (1n << BigInt(REPLAY_WINDOW)) - 1n;
    if (this.newest === null) {
      this.seen = 1n;
      this.newest = seq;
    } else if (seq <= this.newest) {
      this.seen |= 1n << BigInt(this.newest - seq);
    } else {
      const ahead = seq - this.newest;
      this.seen = ahead >= REPLAY_WINDOW ? 0n : (this.seen << BigInt(ahead)) & mask;
      this.seen |= 1n;
      this.newest = seq;
    }
  }
}
