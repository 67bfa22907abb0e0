/**
 * Opus through WebCodecs, set up like the Rust side (src/voice/codec.rs):
 * 48 kHz mono, 20 ms frames, 40 kbit/s on a clean path, in-band FEC asked
 * for, and 48 kbit/s with a loss hint while the other side reports loss
 * (the FEC copy needs bits, or it starves the primary frame; docs/media.md,
 * "Bit rate").
 */

export const SAMPLE_RATE = 48_000;
/** Samples in one 20 ms frame. */
export const FRAME_SAMPLES = 960;
export const FRAME_MS = 20;
/** The clean path's bit rate (the Rust side's DEFAULT_BITRATE). */
export const BITRATE = 40_000;
/** The bit rate while the path loses packets (the Rust side's top of range). */
export const LOSSY_BITRATE = 48_000;
/** Reported loss (percent) from which the encoder protects itself. */
export const LOSSY_FROM_PCT = 2;
/** Margin added to the reported loss for the encoder's hint (as codec.rs). */
const LOSS_HINT_MARGIN = 2;

/** The encoder settings for a path that loses `lossPct` percent (null: not measured). */
export function encoderConfig(lossPct: number | null, options: { voiceHints: boolean }): AudioEncoderConfig {
  const lossy = lossPct !== null && lossPct >= LOSSY_FROM_PCT;
  const opus: Record<string, unknown> = {
    format: 'opus',
    frameDuration: FRAME_MS * 1000,
    complexity: 9,
    useinbandfec: true,
    usedtx: false,
    packetlossperc: lossy ? Math.min(100, Math.ceil(lossPct + LOSS_HINT_MARGIN)) : 0,
  };
  if (options.voiceHints) {
    opus.signal = 'voice';
    opus.application = 'voip';
  }
  return {
    codec: 'opus',
    sampleRate: SAMPLE_RATE,
    numberOfChannels: 1,
    bitrate: lossy ? LOSSY_BITRATE : BITRATE,
    bitrateMode: 'variable',
    opus,
  } as AudioEncoderConfig;
}

export const DECODER_CONFIG: AudioDecoderConfig = { codec: 'opus', sampleRate: SAMPLE_RATE, numberOfChannels: 1 };

/** Why voice cannot run in this browser, or null when it can. */
export async function opusUnsupportedReason(): Promise<string | null> {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.AudioEncoder !== 'function' || typeof g.AudioDecoder !== 'function') {
    return 'This browser has no WebCodecs audio (AudioEncoder/AudioDecoder), so it cannot carry the call\'s voice; use a recent Chrome, Edge, Firefox or Safari.';
  }
  if (typeof g.AudioWorkletNode !== 'function') {
    return 'This browser has no AudioWorklet, so it cannot play the call\'s voice in time.';
  }
  try {
    const enc = await AudioEncoder.isConfigSupported(encoderConfig(null, { voiceHints: false }));
    const dec = await AudioDecoder.isConfigSupported(DECODER_CONFIG);
    if (!enc.supported || !dec.supported) {
      return 'This browser\'s WebCodecs cannot encode or decode Opus at 48 kHz mono, so it cannot carry the call\'s voice.';
    }
  } catch (e) {
    return `This browser's WebCodecs refused Opus (${String(e)}), so it cannot carry the call's voice.`;
  }
  return null;
}

/** Opus encoder: 20 ms frames of float PCM in, Opus packets out in order. */
export class OpusEncoder {
  private readonly encoder: AudioEncoder;
  /** Samples encoded so far: the next frame's timestamp (48 kHz). */
  private samples = 0;
  private lossy = false;
  private voiceHints = true;
  /** Set while warming up: what comes out then is not part of the call, but kept (to warm a decoder). */
  private warming: Uint8Array[] | null = null;

  constructor(onPacket: (opus: Uint8Array, timestamp: number) => void, onError: (e: Error) => void) {
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        const bytes = new Uint8Array(chunk.byteLength);
        chunk.copyTo(bytes);
        if (this.warming) {
          this.warming.push(bytes);
          return;
        }
        onPacket(bytes, Math.round((chunk.timestamp * SAMPLE_RATE) / 1e6));
      },
      error: (e) => onError(e instanceof Error ? e : new Error(String(e))),
    });
  }

  /** Configures for a clean path; voice/VoIP hints are kept only if this browser takes them. */
  async configure(): Promise<void> {
    const withHints = await AudioEncoder.isConfigSupported(encoderConfig(null, { voiceHints: true })).catch(
      () => ({ supported: false }),
    );
    this.voiceHints = !!withHints.supported;
    this.encoder.configure(encoderConfig(null, { voiceHints: this.voiceHints }));
  }

  /**
   * Encodes a few frames of silence and waits for them, discarding what
   * comes out: a WebCodecs encoder's first frames take tens of
   * milliseconds (it starts its codec on another thread), and packets that
   * leave late at the start of a call and on time after it look to the
   * other side's jitter buffer like a path that got faster: it drops a
   * frame, mid-speech. Returns the packets of silence (to warm a decoder).
   */
  async warmUp(frames = 3): Promise<Uint8Array[]> {
    const packets: Uint8Array[] = [];
    this.warming = packets;
    try {
      for (let i = 0; i < frames; i++) this.encode(new Float32Array(FRAME_SAMPLES));
      await this.encoder.flush();
    } finally {
      this.warming = null;
      this.samples = 0;
    }
    return packets;
  }

  /** Follows the loss the other side reports (reconfigures only when crossing LOSSY_FROM_PCT). */
  followLoss(remoteLossPct: number | null): void {
    const lossy = remoteLossPct !== null && remoteLossPct >= LOSSY_FROM_PCT;
    if (lossy === this.lossy || this.encoder.state !== 'configured') return;
    this.lossy = lossy;
    this.encoder.configure(encoderConfig(remoteLossPct, { voiceHints: this.voiceHints }));
  }

  /** Encodes one 20 ms frame. */
  encode(frame: Float32Array<ArrayBuffer>): void {
    if (this.encoder.state !== 'configured') return;
    const data = new AudioData({
      format: 'f32',
      sampleRate: SAMPLE_RATE,
      numberOfFrames: frame.length,
      numberOfChannels: 1,
      timestamp: Math.round((this.samples * 1e6) / SAMPLE_RATE),
      data: frame,
    });
    this.samples += frame.length;
    this.encoder.encode(data);
    data.close();
  }

  /** Frames waiting in the encoder. */
  get queued(): number {
    return this.encoder.encodeQueueSize;
  }

  close(): void {
    if (this.encoder.state !== 'closed') this.encoder.close();
  }
}

/** Opus decoder: packets in, float PCM out in the same order. */
export class OpusDecoder {
  private readonly decoder: AudioDecoder;
  private timestamp = 0;
  /** Set while warming up: what comes out then is not part of the call. */
  private warming = false;

  constructor(onFrame: (pcm: Float32Array<ArrayBuffer>) => void, onError: (e: Error) => void) {
    this.decoder = new AudioDecoder({
      output: (data) => {
        if (this.warming) {
          data.close();
          return;
        }
        const pcm = new Float32Array(data.numberOfFrames);
        data.copyTo(pcm, { planeIndex: 0, format: 'f32-planar' });
        data.close();
        onFrame(pcm);
      },
      error: (e) => onError(e instanceof Error ? e : new Error(String(e))),
    });
    this.decoder.configure(DECODER_CONFIG);
  }

  /**
   * Decodes `packets` (silence, from the encoder's warm-up) and waits for
   * them, discarding the sound: the first frames of a WebCodecs decoder
   * come tens of milliseconds late, which the jitter buffer would take for
   * the path's speed and then drop frames as it proves faster.
   */
  async warmUp(packets: Uint8Array[]): Promise<void> {
    if (packets.length === 0) return;
    this.warming = true;
    try {
      for (const packet of packets) this.decode(packet);
      await this.decoder.flush();
    } finally {
      this.warming = false;
    }
  }

  /** Decodes one packet; its frame comes out through `onFrame`, in order. */
  decode(opus: Uint8Array): void {
    if (this.decoder.state !== 'configured') return;
    this.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: this.timestamp, data: opus }));
    this.timestamp += FRAME_MS * 1000;
  }

  get ok(): boolean {
    return this.decoder.state === 'configured';
  }

  close(): void {
    if (this.decoder.state !== 'closed') this.decoder.close();
  }
}
