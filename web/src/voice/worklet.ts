/**
 * The two AudioWorklet processors of a call (built on its own into
 * dist/worklet.js, loaded with `audioWorklet.addModule`).
 *
 * - `softphone-capture`: cuts the microphone into 20 ms frames (960
 *   samples at 48 kHz) and posts each to the main thread (transferred).
 * - `softphone-playout`: the jitter buffer itself, on the speaker's clock.
 *   The main thread decodes every packet as it arrives and posts the frame
 *   here with its sequence number; the buffer stamps it with the render
 *   clock when it lands, and decides what to play at the very sample where
 *   the previous frame ends (or, while it waits to start, at every render
 *   quantum). No decision waits for the main thread, so its delays look
 *   like network jitter, which the buffer's headroom absorbs, instead of
 *   running the speaker dry; and no queue of decided frames sits between
 *   the decision and the speaker.
 */
import { JitterBuffer, type JitterStats } from './jitter';

// The AudioWorkletGlobalScope's names (TypeScript's DOM library has none).
declare const sampleRate: number;
declare const currentFrame: number;
declare function registerProcessor(name: string, processor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: { processorOptions?: Record<string, unknown> });
}

/** Samples in one 20 ms frame at 48 kHz. */
const FRAME = 960;
/** A frame under this RMS level is quiet: a pause between words, where a frame can be dropped or inserted unheard. */
const QUIET_DBFS = -40;
/** Render quanta between two reports to the main thread (about 100 ms). */
const REPORT_QUANTA = 37;

/** What the playout worklet tells the main thread, every REPORT_QUANTA quanta and at `stop`. */
export interface PlayoutReport {
  jitter: JitterStats;
  /** Mean ms from a frame's landing here to its first sample played. */
  bufferedMs: number;
  /** RMS dBFS of the last frame played. */
  levelDbfs: number;
}

class Capture extends AudioWorkletProcessor {
  private frame = new Float32Array(FRAME);
  private filled = 0;

  process(inputs: Float32Array[][]): boolean {
    const input = inputs[0]?.[0];
    if (!input) return true;
    let at = 0;
    while (at < input.length) {
      const n = Math.min(FRAME - this.filled, input.length - at);
      this.frame.set(input.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === FRAME) {
        this.port.postMessage({ frame: this.frame }, [this.frame.buffer]);
        this.frame = new Float32Array(FRAME);
        this.filled = 0;
      }
    }
    return true;
  }
}

/** The render clock in microseconds at sample `offset` of the current quantum. */
function nowUs(offset = 0): number {
  return ((currentFrame + offset) / sampleRate) * 1e6;
}

class Playout extends AudioWorkletProcessor {
  /** Drops and insertions wait for a quiet frame: in a pause they are not heard. */
  private readonly jitter = new JitterBuffer<Float32Array>((pcm) => level(pcm) < QUIET_DBFS);
  /** When each buffered frame landed (render clock, µs), by its PCM. */
  private readonly landed = new WeakMap<Float32Array, number>();
  /** The frame playing now, and how much of it has played. */
  private playing: Float32Array | null = null;
  private offset = 0;
  /** The last frame played in full, for concealment; and the gain of the next concealed frame. */
  private last: Float32Array = new Float32Array(FRAME);
  private concealGain = 1;
  private bufferedSum = 0;
  private bufferedCount = 0;
  private levelDbfs = -100;
  private quanta = 0;
  private stopped = false;

  constructor(options?: { processorOptions?: Record<string, unknown> }) {
    super(options);
    this.port.onmessage = (event: MessageEvent) => {
      const message = event.data;
      if (message === 'stop') {
        this.stopped = true;
        this.report();
      } else if (message?.pcm instanceof Float32Array && typeof message.seq === 'number') {
        const at = nowUs();
        this.landed.set(message.pcm, at);
        this.jitter.push(message.seq, message.pcm, at);
      }
    };
  }

  /** The next frame to play, decided at sample `offset` of this quantum; null: nothing yet (silence). */
  private next(offset: number): Float32Array | null {
    const playout = this.jitter.pop(nowUs(offset));
    switch (playout.kind) {
      case 'silence':
        return null;
      case 'packet': {
        const pcm = playout.payload;
        const landed = this.landed.get(pcm);
        if (landed !== undefined) {
          this.bufferedSum += (nowUs(offset) - landed) / 1000;
          this.bufferedCount += 1;
        }
        this.concealGain = 1;
        return pcm;
      }
      // A lost or inserted frame: the last one again, fading (each in a row
      // at half the level of the one before); WebCodecs has no PLC call.
      case 'fec':
      case 'conceal': {
        const from = this.concealGain;
        const to = from / 2;
        this.concealGain = to;
        const pcm = new Float32Array(FRAME);
        for (let i = 0; i < FRAME; i++) pcm[i] = (this.last[i % this.last.length] ?? 0) * (from + ((to - from) * i) / FRAME);
        return pcm;
      }
    }
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0][0];
    let at = 0;
    while (at < out.length && !this.stopped) {
      if (!this.playing) {
        this.playing = this.next(at);
        this.offset = 0;
        // Nothing to start with: silence for the rest of this quantum, and ask again at the next.
        if (!this.playing) break;
      }
      const n = Math.min(out.length - at, this.playing.length - this.offset);
      out.set(this.playing.subarray(this.offset, this.offset + n), at);
      at += n;
      this.offset += n;
      if (this.offset === this.playing.length) {
        this.last = this.playing;
        this.levelDbfs = level(this.playing);
        this.playing = null;
      }
    }
    out.fill(0, at);
    if (++this.quanta >= REPORT_QUANTA) this.report();
    return !this.stopped;
  }

  private report(): void {
    this.quanta = 0;
    const report: PlayoutReport = {
      jitter: this.jitter.stats(),
      bufferedMs: this.bufferedCount ? this.bufferedSum / this.bufferedCount : 0,
      levelDbfs: this.levelDbfs,
    };
    this.port.postMessage({ report });
  }
}

/** RMS level in dBFS (at least -100). */
function level(pcm: Float32Array): number {
  let sum = 0;
  for (const v of pcm) sum += v * v;
  const rms = Math.sqrt(sum / Math.max(pcm.length, 1));
  return rms > 0 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
}

registerProcessor('softphone-capture', Capture);
registerProcessor('softphone-playout', Playout);
