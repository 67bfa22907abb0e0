/**
 * A test-only AudioWorklet that records what reaches it (the call's
 * output node, after the playout worklet and the volume: the real playout
 * path) and posts it in blocks to the test page.
 */
declare function registerProcessor(name: string, processor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

/** Samples posted at once (about 21 ms at 48 kHz). */
const BLOCK = 1024;

class Recorder extends AudioWorkletProcessor {
  private block = new Float32Array(BLOCK);
  private filled = 0;

  process(inputs: Float32Array[][]): boolean {
    // An unconnected input has no channels: that is silence, still recorded.
    const input = inputs[0]?.[0] ?? new Float32Array(128);
    this.block.set(input, this.filled);
    this.filled += input.length;
    if (this.filled === BLOCK) {
      this.port.postMessage(this.block, [this.block.buffer]);
      this.block = new Float32Array(BLOCK);
      this.filled = 0;
    }
    return true;
  }
}

registerProcessor('voice-test-recorder', Recorder);
