/**
 * The adaptive jitter buffer, a port of src/voice/jitter.rs (same delay
 * model and constants): frames in by sequence number whenever they come,
 * one playout decision out whenever the speaker needs its next frame (the
 * tab runs it in the playout worklet, on the render clock).
 *
 * Each packet's offset is its arrival time minus seq x 20 ms; the smallest
 * offset of the last two seconds is the fastest path. A pull's headroom
 * is how long the fastest packet of its frame would have waited. The
 * target headroom is the spread of recent offsets plus a margin, between
 * 40 and 120 ms; three pulls in a row out of the band around it drop one
 * frame or insert one concealed frame (following jitter changes and the
 * drift between the two sound cards' clocks).
 */

/** One frame in microseconds. */
export const FRAME_US = 20_000;
export const MIN_TARGET_US = 40_000;
export const MAX_TARGET_US = 120_000;
const MARGIN_US = 15_000;
const LOW_US = 10_000;
/**
 * Headroom beyond the band's low edge at which playout starts. The Rust
 * playback thread pulls every 20 ms, so it starts anywhere from the low
 * edge to 20 ms past it (30 to 50 ms at the minimum target); the tab pulls
 * every render quantum (2.7 ms) while it waits (its playout worklet), so it starts
 * within a quantum of this point. The margin keeps the start clear of the
 * low edge, which the quantum-by-quantum variation of the later pulls would
 * otherwise cross (three pulls under it insert a frame).
 */
export const START_MARGIN_US = 5_000;
const HIGH_US = 15_000;
const OUT_OF_BAND_PULLS = 3;
/** Pulls out of the band (one second) after which an adjustment no longer waits for a quiet frame. */
export const QUIET_WAIT_PULLS = 50;
/** Offsets remembered (two seconds of packets). */
const OFFSET_WINDOW = 100;
/** Packets held at most; a flood cannot grow the buffer. */
const CAPACITY = 128;
/** A packet this many frames ahead of playout means the stream restarted. */
const RESYNC_FRAMES = 100;
/** Concealed frames in a row with nothing buffered before playout waits again. */
const GIVE_UP_FRAMES = 25;

/**
 * What to play for one 20 ms frame. `P` is what the buffer holds: Opus
 * payloads (as in the Rust buffer) or, in the tab's playout worklet,
 * frames already decoded.
 */
export type Playout<P = Uint8Array> =
  | { kind: 'silence' }
  /** Play `payload`; `skipped` was dropped to shorten the delay (a decoder decodes it first, discarding its sound). */
  | { kind: 'packet'; seq: number; payload: P; skipped: P | null }
  /** This frame was lost but the next one is here. */
  | { kind: 'fec'; nextPayload: P }
  /** Lost (or inserted): conceal it. */
  | { kind: 'conceal' };

export interface JitterStats {
  played: number;
  recoveredByFec: number;
  concealed: number;
  /** Packets that came after their frame had played. */
  late: number;
  droppedForDelay: number;
  insertedForDelay: number;
  /** The target headroom now, microseconds. */
  targetUs: number;
}

interface Playing {
  nextSeq: number;
  /** Consecutive pulls above (positive) or below (negative) the band. */
  outOfBand: number;
  /** Concealed frames in a row with an empty buffer. */
  starving: number;
}

export class JitterBuffer<P = Uint8Array> {
  /**
   * `isQuiet`, when given, says whether a held frame is quiet: a drop or an
   * insertion then waits for one (the tab's worklet holds decoded frames
   * and can tell; the Rust buffer, holding Opus payloads, adjusts at once).
   */
  constructor(private readonly isQuiet?: (payload: P) => boolean) {}

  /** Received, not yet played: payload by sequence number. */
  private packets = new Map<number, P>();
  /** Offsets (arrival minus frame time) of the latest packets, microseconds. */
  private offsets: number[] = [];
  /** null while waiting for the first frame (or after the stream stopped). */
  private playing: Playing | null = null;
  private readonly statsNow: JitterStats = {
    played: 0, recoveredByFec: 0, concealed: 0, late: 0, droppedForDelay: 0, insertedForDelay: 0,
    targetUs: MIN_TARGET_US,
  };

  stats(): JitterStats {
    return { ...this.statsNow };
  }

  /** Stores a packet that arrived at `nowUs` (microseconds on any steady clock). */
  push(seq: number, payload: P, nowUs: number): void {
    if (this.playing) {
      if (seq < this.playing.nextSeq) {
        this.statsNow.late += 1;
        return;
      }
      if (seq - this.playing.nextSeq > RESYNC_FRAMES) {
        this.packets.clear();
        this.offsets = [];
        this.playing = null;
      }
    }
    if (this.offsets.length === OFFSET_WINDOW) this.offsets.shift();
    this.offsets.push(nowUs - seq * FRAME_US);
    this.statsNow.targetUs = this.target();
    this.packets.set(seq, payload);
    while (this.packets.size > CAPACITY) this.packets.delete(this.firstSeq()!);
  }

  /** The payload of a buffered packet (the receiver decodes ahead of playout). */
  peek(seq: number): P | undefined {
    return this.packets.get(seq);
  }

  /** The lowest buffered sequence number. */
  firstSeq(): number | undefined {
    let first: number | undefined;
    for (const seq of this.packets.keys()) if (first === undefined || seq < first) first = seq;
    return first;
  }

  private fastest(): number {
    return this.offsets.length ? Math.min(...this.offsets) : 0;
  }

  private target(): number {
    const slowest = this.offsets.length ? Math.max(...this.offsets) : 0;
    return Math.min(Math.max(slowest - this.fastest() + MARGIN_US, MIN_TARGET_US), MAX_TARGET_US);
  }

  private headroom(seq: number, nowUs: number): number {
    return nowUs - seq * FRAME_US - this.fastest();
  }

  /** The decision for the frame the speaker needs at `nowUs`. */
  pop(nowUs: number): Playout<P> {
    const target = this.target();
    if (!this.playing) {
      const first = this.firstSeq();
      if (first === undefined || this.headroom(first, nowUs) < target - LOW_US + START_MARGIN_US) return { kind: 'silence' };
      this.playing = { nextSeq: first, outOfBand: 0, starving: 0 };
      return this.popPlaying(first, 0);
    }
    const { nextSeq, starving } = this.playing;
    const headroom = this.headroom(nextSeq, nowUs);
    let outOfBand = 0;
    if (headroom > target + HIGH_US) outOfBand = Math.max(this.playing.outOfBand, 0) + 1;
    else if (headroom < target - LOW_US) outOfBand = Math.min(this.playing.outOfBand, 0) - 1;
    this.playing = { nextSeq, outOfBand, starving };
    // An adjustment waits for a quiet frame (when the buffer was told how
    // to hear one), at most QUIET_WAIT_PULLS pulls: a frame dropped or
    // inserted in a pause is not heard.
    const upcoming = this.packets.get(nextSeq);
    const adjustNow = !this.isQuiet || upcoming === undefined || this.isQuiet(upcoming) || Math.abs(outOfBand) >= QUIET_WAIT_PULLS;
    if (outOfBand <= -OUT_OF_BAND_PULLS && adjustNow) {
      // Too little headroom: play a concealed frame and keep this one.
      this.statsNow.insertedForDelay += 1;
      this.playing = { nextSeq, outOfBand: 0, starving };
      return { kind: 'conceal' };
    }
    if (outOfBand >= OUT_OF_BAND_PULLS && adjustNow) {
      this.statsNow.droppedForDelay += 1;
      this.playing = { nextSeq: nextSeq + 1, outOfBand: 0, starving };
      const skipped = this.packets.get(nextSeq) ?? null;
      this.packets.delete(nextSeq);
      const next = this.popPlaying(nextSeq + 1, starving);
      return next.kind === 'packet' ? { ...next, skipped } : next;
    }
    return this.popPlaying(nextSeq, starving);
  }

  /** Plays frame `seq` (or recovers or conceals it) and moves on. */
  private popPlaying(seq: number, starving: number): Playout<P> {
    const outOfBand = this.playing?.outOfBand ?? 0;
    let playout: Playout<P>;
    const payload = this.packets.get(seq);
    const next = this.packets.get(seq + 1);
    if (payload) {
      this.packets.delete(seq);
      this.statsNow.played += 1;
      playout = { kind: 'packet', seq, payload, skipped: null };
    } else if (next) {
      this.statsNow.recoveredByFec += 1;
      playout = { kind: 'fec', nextPayload: next };
    } else {
      this.statsNow.concealed += 1;
      playout = { kind: 'conceal' };
    }
    const starved = playout.kind === 'conceal' && this.packets.size === 0 ? starving + 1 : 0;
    if (starved >= GIVE_UP_FRAMES) {
      // When the stream comes back its timing starts afresh.
      this.offsets = [];
      this.playing = null;
    } else {
      this.playing = { nextSeq: seq + 1, outOfBand, starving: starved };
    }
    return playout;
  }
}
