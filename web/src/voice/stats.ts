/**
 * What the receiving side measures for the quality line and the reports:
 * loss over the last second, interarrival jitter (RFC 3550 from the
 * packets' 48 kHz timestamps), and audio levels in dBFS.
 */

/** The floor of a level meter (digital silence). */
export const FLOOR_DBFS = -100;
/** Loss is measured over this window. */
const LOSS_WINDOW_MS = 1_000;

/** RMS level of float PCM (full scale 1.0) in dBFS, at least FLOOR_DBFS. */
export function levelDbfs(pcm: Float32Array): number {
  let sum = 0;
  for (const v of pcm) sum += v * v;
  const rms = Math.sqrt(sum / Math.max(pcm.length, 1));
  return rms > 0 ? Math.max(FLOOR_DBFS, 20 * Math.log10(rms)) : FLOOR_DBFS;
}

export class ReceiveStats {
  /** Authentic packets received. */
  count = 0;
  /** RFC 3550 interarrival jitter, milliseconds. */
  jitterMs = 0;
  private previous: { timestamp: number; arrivalMs: number } | null = null;
  /** The window being counted: when it began, its first and highest sequence number, packets in it. */
  private window: { startMs: number; firstSeq: number; highestSeq: number; packets: number } | null = null;
  private lastLossPct: number | null = null;

  /** Notes an authentic packet that arrived at `arrivalMs`. */
  note(seq: number, timestamp: number, arrivalMs: number): void {
    this.count += 1;
    if (this.previous) {
      const transit = arrivalMs - this.previous.arrivalMs - ((timestamp - this.previous.timestamp) | 0) / 48;
      this.jitterMs += (Math.abs(transit) - this.jitterMs) / 16;
    }
    this.previous = { timestamp, arrivalMs };
    const w = this.window;
    if (!w) {
      this.window = { startMs: arrivalMs, firstSeq: seq, highestSeq: seq, packets: 1 };
      return;
    }
    if (arrivalMs - w.startMs >= LOSS_WINDOW_MS) {
      const expected = w.highestSeq - w.firstSeq + 1;
      this.lastLossPct = expected > 0 ? Math.max(0, (100 * (expected - w.packets)) / expected) : 0;
      this.window = { startMs: arrivalMs, firstSeq: w.highestSeq + 1, highestSeq: Math.max(seq, w.highestSeq + 1), packets: 1 };
      return;
    }
    w.packets += 1;
    w.highestSeq = Math.max(w.highestSeq, seq);
  }

  /** Percent lost in the last full second, null before one was measured. */
  lossPct(): number | null {
    return this.lastLossPct;
  }
}

/** A running mean (for where the time goes: encode, decode, buffered). */
export class Mean {
  private sum = 0;
  private n = 0;

  add(value: number): void {
    this.sum += value;
    this.n += 1;
  }

  get value(): number | null {
    return this.n ? this.sum / this.n : null;
  }
}
