/**
 * The two AudioWorklet processors of a call (built on its own into
 * dist/worklet.js, loaded with `audioWorklet.addModule`).
 *
 * - `softphone-capture`: cuts the microphone into 20 ms frames (960
 *   samples at 48 kHz) and posts each to the main thread (transferred).
 * - `softphone-playout`: plays the frames the main thread posts, from a
 *   small queue; it asks for the next frame whenever the queue plus the
 *   frames already asked for fall under a low-water mark, so the speaker's
 *   clock paces the jitter buffer's pulls. An empty queue while playing is
 *   an underrun: it plays silence there and reports the count.
 */

// The AudioWorkletGlobalScope's names (TypeScript's DOM library has none).
declare const sampleRate: number;
declare function registerProcessor(name: string, processor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: { processorOptions?: Record<string, unknown> });
}

/** Samples in one 20 ms frame at 48 kHz. */
const FRAME = 960;
/** Frames asked for at most before one arrives. */
const MAX_ASKED = 3;
/** The low-water mark's growth at each underrun, and its ceiling (60 ms). */
const LOW_WATER_STEP = 256;
const LOW_WATER_MAX = 2880;
/** Quanta (128 samples) without an underrun before the mark comes down a step (about 2 s). */
const CALM_QUANTA = 750;

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

class Playout extends AudioWorkletProcessor {
  /** The configured low-water mark: the least time the main thread is given to answer. */
  private readonly minLowWater: number;
  /**
   * Samples under which the next frame is asked for. It grows at each
   * underrun (the main thread answered late: a loaded machine) and comes
   * back down while calm: the latency follows what the machine can do.
   */
  private lowWater: number;
  /** Quanta since the last underrun. */
  private calm = 0;
  /** The previous quantum ran dry: one underrun counted per gap, not per quantum. */
  private dry = false;
  private readonly frames: Float32Array[] = [];
  /** Samples of frames[0] already played. */
  private offset = 0;
  private queued = 0;
  private asked = 0;
  /** A first frame has come: from now on a short queue is an underrun. */
  private playing = false;
  private underruns = 0;
  private stopped = false;

  constructor(options?: { processorOptions?: Record<string, unknown> }) {
    super(options);
    const lowWater = Number(options?.processorOptions?.lowWater);
    this.minLowWater = lowWater > 0 ? lowWater : FRAME / 2;
    this.lowWater = this.minLowWater;
    this.port.onmessage = (event: MessageEvent) => {
      const message = event.data;
      if (message === 'stop') {
        this.stopped = true;
      } else if (message?.frame instanceof Float32Array) {
        this.asked = Math.max(0, this.asked - 1);
        this.frames.push(message.frame);
        this.queued += message.frame.length;
        this.playing = true;
      }
    };
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0][0];
    let at = 0;
    while (at < out.length && this.frames.length > 0) {
      const frame = this.frames[0];
      const n = Math.min(out.length - at, frame.length - this.offset);
      out.set(frame.subarray(this.offset, this.offset + n), at);
      at += n;
      this.offset += n;
      this.queued -= n;
      if (this.offset === frame.length) {
        this.frames.shift();
        this.offset = 0;
      }
    }
    if (at < out.length) {
      // Ran dry: fade out what was played in this quantum's last samples, then silence.
      const fade = Math.min(at, 32);
      for (let i = 0; i < fade; i++) out[at - fade + i] *= 1 - (i + 1) / fade;
      out.fill(0, at);
      if (this.playing && !this.dry) {
        this.underruns += 1;
        this.lowWater = Math.min(LOW_WATER_MAX, this.lowWater + LOW_WATER_STEP);
        this.port.postMessage({ underruns: this.underruns, lowWater: this.lowWater });
      }
      this.dry = this.playing;
      this.calm = 0;
    } else {
      this.dry = false;
      if (++this.calm >= CALM_QUANTA && this.lowWater > this.minLowWater) {
        this.lowWater = Math.max(this.minLowWater, this.lowWater - LOW_WATER_STEP / 4);
        this.calm = 0;
      }
    }
    while (!this.stopped && this.queued + this.asked * FRAME < this.lowWater && this.asked < MAX_ASKED) {
      this.asked += 1;
      this.port.postMessage({ need: true, sampleRate });
    }
    return !this.stopped;
  }
}

registerProcessor('softphone-capture', Capture);
registerProcessor('softphone-playout', Playout);
