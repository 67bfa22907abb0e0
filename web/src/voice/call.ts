/**
 * A call's voice in the browser: microphone -> capture worklet -> Opus
 * (WebCodecs) -> sealed packet -> relay `/media` WebSocket, and back:
 * WebSocket -> open -> jitter buffer -> Opus -> playout worklet -> volume
 * -> speaker. The same packets, keys and reports as the Rust VoiceSession
 * (src/voice/session.rs), so a tab talks with the desktop app, the
 * headless peer and another tab alike. See README.md beside this file.
 */
import { FRAME_MS, FRAME_SAMPLES, OpusDecoder, OpusEncoder, SAMPLE_RATE, opusUnsupportedReason } from './codec';
import { OpenError, Opener, Sealer } from './crypto';
import type { VoiceKeys } from './handshake';
import { JitterBuffer, type Playout } from './jitter';
import { FLAG_MUTED, FLAG_REPORT, LOSS_UNKNOWN, NO_ECHO, encodeReport, roundTripMs, splitReport } from './packet';
import { MediaSocket, decodeCredential, mediaUrl } from './relay';
import { Mean, ReceiveStats, levelDbfs } from './stats';

/** The playout queue's low-water mark in samples (10 ms): the main thread's time to answer a request. */
export const PLAYOUT_LOW_WATER = 480;

/** The `media` object of `accepted` (caller) or of the accept's `ok` (callee). */
export interface MediaInfo {
  relay?: string;
  ws: string;
  credential: string;
}

/** The call screen's quality line. */
export interface Quality {
  lossPct: number;
  jitterMs: number;
  rttMs: number | null;
  bufferMs: number;
  underruns: number;
}

/** Every REPORT_EVERY-th packet carries a report (5 a second), as the Rust sender. */
const REPORT_EVERY = 10;

/** Whether this browser can carry a call's voice, and if not, a sentence saying why. */
export async function voiceSupport(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const reason = await opusUnsupportedReason();
  return reason === null ? { ok: true } : { ok: false, reason };
}

export interface VoiceCallOptions {
  keys: VoiceKeys;
  media: MediaInfo;
  /** The signaling URL: `/media` is on its scheme, host and port. */
  signalingUrl: string;
  microphone: MediaStream;
  onEnded?: (reason: string) => void;
  /** The built worklet module (dist/worklet.js); default `worklet.js` beside the page. */
  workletUrl?: string;
  /** Test hook: every captured 20 ms frame (before mute) and the wall-clock ms of its end. */
  onCapturedFrame?: (pcm: Float32Array, wallMs: number) => void;
}

/** One pending playout frame, in order: decoded (waiting for the decoder), concealed or ready. */
interface Slot {
  pcm: Float32Array<ArrayBuffer> | null;
  /** Decode for the decoder's state only; play nothing (a frame dropped to shorten the delay). */
  discard: boolean;
  conceal: boolean;
  /** When its packet arrived and when it went to the decoder (performance.now ms), for `timings`. */
  arrivedMs?: number;
  decodingSinceMs?: number;
}

export class VoiceCall {
  /** The context the call's audio runs in (tests attach recorders to `outputNode`). */
  readonly context: AudioContext;
  /** The last node before the speaker: the volume. */
  readonly outputNode: GainNode;
  private mutedNow = false;
  private volume = 1;
  private micDbfs = -100;
  private speakerDbfs = -100;
  private readonly epoch = performance.now();
  private readonly received = new ReceiveStats();
  private readonly jitter = new JitterBuffer();
  /** Frames for the playout worklet, in playout order. */
  private readonly slots: Slot[] = [];
  /** Slots waiting for the decoder's output, in decode order. */
  private readonly decoding: Slot[] = [];
  /** Payloads decoded ahead of their playout, and their slots. */
  private readonly ahead = new WeakMap<Uint8Array, Slot>();
  /** Where the time goes (ms): capture to encoded, decode call to output, arrival to the worklet. */
  private readonly timings = { encode: new Mean(), decode: new Mean(), buffered: new Mean() };
  /** The least (send time - frame time) seen, and how much later than that packets left. */
  private sendEarliest = Infinity;
  private readonly sendSpread = new Mean();
  /** When each frame in the encoder was captured, in order. */
  private readonly encoding: number[] = [];
  /** When each buffered payload arrived. */
  private readonly arrivals = new WeakMap<Uint8Array, number>();
  /** The newest sequence number handed to the decoder. */
  private decodedUpTo: number | null = null;
  private lastFrame: Float32Array<ArrayBuffer> = new Float32Array(FRAME_SAMPLES);
  private concealGain = 1;
  private underruns = 0;
  /**
   * The wall-clock time (ms since the epoch) at which the sender's first
   * frame began, as the fastest packet implies (its path's delay, about a
   * millisecond on loopback, is in it): for measuring delays across processes.
   */
  private senderOriginMs = Infinity;
  /** The playout worklet's low-water mark now (samples): grows on a loaded machine. */
  private lowWater = PLAYOUT_LOW_WATER;
  private sent = 0;
  private rttMs: number | null = null;
  private remoteLossPct: number | null = null;
  /** The newest report from the other side: its send time and our arrival time (ms). */
  private lastReport: { sendMs: number; arrivedMs: number } | null = null;
  private decoder: OpusDecoder;
  private ended = false;
  /** Packets dropped on arrival, by kind. */
  readonly rejected = { malformed: 0, forged: 0, replayed: 0, stale: 0 };

  private constructor(
    private readonly opts: VoiceCallOptions,
    private readonly socket: MediaSocket,
    private readonly sealer: Sealer,
    private readonly opener: Opener,
    private readonly encoder: OpusEncoder,
    context: AudioContext,
    private readonly source: MediaStreamAudioSourceNode,
    private readonly capture: AudioWorkletNode,
    private readonly playout: AudioWorkletNode,
    gain: GainNode,
  ) {
    this.context = context;
    this.outputNode = gain;
    this.decoder = this.makeDecoder();
  }

  /** Starts the call's voice: connects to the relay, opens the audio graph. */
  static async start(opts: VoiceCallOptions): Promise<VoiceCall> {
    const support = await voiceSupport();
    if (!support.ok) throw new Error(support.reason);
    const socket = await MediaSocket.connect(
      mediaUrl(opts.media.ws, opts.signalingUrl),
      decodeCredential(opts.media.credential),
    );
    const context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
    try {
      await context.audioWorklet.addModule(opts.workletUrl ?? new URL('worklet.js', document.baseURI).href);
      const source = context.createMediaStreamSource(opts.microphone);
      const capture = new AudioWorkletNode(context, 'softphone-capture', {
        numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit',
      });
      const playout = new AudioWorkletNode(context, 'softphone-playout', {
        numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
        processorOptions: { lowWater: PLAYOUT_LOW_WATER },
      });
      const gain = context.createGain();
      const encoderRef: { call?: VoiceCall } = {};
      const encoder = new OpusEncoder(
        (opus, timestamp) => encoderRef.call?.sendFrame(opus, timestamp),
        (e) => encoderRef.call?.end(`the Opus encoder failed: ${e.message}`),
      );
      await encoder.configure();
      const call = new VoiceCall(
        opts, socket, new Sealer(opts.keys.send), new Opener(opts.keys.receive), encoder,
        context, source, capture, playout, gain,
      );
      encoderRef.call = call;
      call.wire();
      await context.resume();
      return call;
    } catch (e) {
      socket.close();
      await context.close().catch(() => {});
      throw e;
    }
  }

  private wire(): void {
    this.socket.onPacket = (packet) => this.onPacket(packet);
    this.socket.onClose = (reason) => this.end(`the relay connection closed: ${reason}`);
    this.capture.port.onmessage = (e) => this.onCaptured(e.data.frame as Float32Array<ArrayBuffer>);
    this.playout.port.onmessage = (e) => {
      if (e.data.need) this.onNeed();
      if (typeof e.data.underruns === 'number') this.underruns = e.data.underruns;
      if (typeof e.data.lowWater === 'number') this.lowWater = e.data.lowWater;
    };
    this.source.connect(this.capture);
    this.playout.connect(this.outputNode);
    this.outputNode.connect(this.context.destination);
  }

  private nowMs(): number {
    return Math.floor(performance.now() - this.epoch) >>> 0;
  }

  // ---- sending --------------------------------------------------------

  private onCaptured(frame: Float32Array<ArrayBuffer>): void {
    if (this.ended) return;
    this.opts.onCapturedFrame?.(frame.slice(), performance.timeOrigin + performance.now());
    this.micDbfs = levelDbfs(frame);
    this.encoding.push(performance.now());
    this.encoder.encode(this.mutedNow ? new Float32Array(frame.length) : frame);
  }

  /** Seals an encoded frame (with a report every tenth) and sends it. */
  private sendFrame(opus: Uint8Array, timestamp: number): void {
    if (this.ended) return;
    const captured = this.encoding.shift();
    if (captured !== undefined) this.timings.encode.add(performance.now() - captured);
    let flags = this.mutedNow ? FLAG_MUTED : 0;
    let body = opus;
    if (this.sent % REPORT_EVERY === 0) {
      const now = this.nowMs();
      const last = this.lastReport;
      const loss = this.received.lossPct();
      const report = encodeReport({
        sendMs: now,
        echoMs: last ? last.sendMs : NO_ECHO,
        holdMs: last ? Math.max(0, now - last.arrivedMs) : 0,
        lossPct: loss === null ? LOSS_UNKNOWN : Math.round(loss),
      });
      body = new Uint8Array(report.length + opus.length);
      body.set(report);
      body.set(opus, report.length);
      flags |= FLAG_REPORT;
    }
    // How far behind its frame's time each packet leaves (main-thread and encoder delays).
    const lateness = performance.now() - (this.sent + 1) * FRAME_MS;
    this.sendEarliest = Math.min(this.sendEarliest, lateness);
    this.sendSpread.add(lateness - this.sendEarliest);
    this.sent += 1;
    this.socket.send(this.sealer.seal(flags, timestamp >>> 0, body));
  }

  // ---- receiving ------------------------------------------------------

  private onPacket(packet: Uint8Array): void {
    if (this.ended) return;
    let opened;
    try {
      opened = this.opener.open(packet);
    } catch (e) {
      if (e instanceof OpenError) this.rejected[e.kind] += 1;
      return;
    }
    const now = performance.now();
    let opus = opened.body;
    if (opened.header.flags & FLAG_REPORT) {
      try {
        const { report, rest } = splitReport(opened.body);
        opus = rest;
        this.lastReport = { sendMs: report.sendMs, arrivedMs: this.nowMs() };
        const rtt = roundTripMs(report, this.nowMs());
        if (rtt !== null) this.rttMs = rtt;
        this.remoteLossPct = report.lossPct === LOSS_UNKNOWN ? null : report.lossPct;
        this.encoder.followLoss(this.remoteLossPct);
      } catch {
        this.rejected.malformed += 1;
        return;
      }
    }
    this.received.note(opened.header.seq, opened.header.timestamp, now);
    this.arrivals.set(opus, now);
    // Packet k leaves the sender when its frame is complete, (k + 1) x 20 ms after its clock began.
    const origin = performance.timeOrigin + now - (opened.header.seq + 1) * FRAME_MS;
    this.senderOriginMs = Math.min(this.senderOriginMs, origin);
    this.jitter.push(opened.header.seq, opus, now * 1000);
    this.decodeAhead();
  }

  /**
   * Decodes the buffered packets that follow the last one decoded, as they
   * arrive: WebCodecs decodes on another thread and answers later, so a
   * frame decoded only when the speaker asks would come late. Opus needs
   * its packets in order, so this stops at a gap (the pull fills it).
   */
  private decodeAhead(): void {
    if (this.decodedUpTo === null) {
      const first = this.jitter.firstSeq();
      if (first === undefined) return;
      this.decodedUpTo = first - 1;
    }
    for (let payload = this.jitter.peek(this.decodedUpTo + 1); payload; payload = this.jitter.peek(this.decodedUpTo + 1)) {
      this.decodedUpTo += 1;
      this.ahead.set(payload, this.decode(payload));
    }
  }

  /** The playout worklet needs its next frame: the jitter buffer decides what it is. */
  private onNeed(): void {
    const playout: Playout = this.ended ? { kind: 'silence' } : this.jitter.pop(performance.now() * 1000);
    switch (playout.kind) {
      case 'silence':
        this.slots.push({ pcm: new Float32Array(FRAME_SAMPLES), discard: false, conceal: false });
        break;
      case 'packet':
        if (playout.skipped) {
          const skipped = this.decoded(playout.skipped);
          skipped.discard = true;
          this.slots.push(skipped);
        }
        this.slots.push(this.decoded(playout.payload));
        if (this.decodedUpTo === null || playout.seq > this.decodedUpTo) this.decodedUpTo = playout.seq;
        break;
      // WebCodecs has no FEC decode nor PLC call: a lost frame is concealed by a fade of the last one.
      case 'fec':
      case 'conceal':
        this.slots.push({ pcm: null, discard: false, conceal: true });
        break;
    }
    this.flush();
    this.decodeAhead();
  }

  /** The slot of a payload decoded ahead, or of one decoded now. */
  private decoded(payload: Uint8Array): Slot {
    const slot = this.ahead.get(payload) ?? this.decode(payload);
    this.ahead.delete(payload);
    return slot;
  }

  private decode(opus: Uint8Array): Slot {
    const slot: Slot = { pcm: null, discard: false, conceal: false, arrivedMs: this.arrivals.get(opus) };
    if (this.decoder.ok && opus.length > 0) {
      slot.decodingSinceMs = performance.now();
      this.decoding.push(slot);
      this.decoder.decode(opus);
    } else {
      slot.conceal = true;
    }
    return slot;
  }

  private makeDecoder(): OpusDecoder {
    return new OpusDecoder(
      (pcm) => {
        const slot = this.decoding.shift();
        if (slot) slot.pcm = pcm;
        if (slot?.decodingSinceMs !== undefined) this.timings.decode.add(performance.now() - slot.decodingSinceMs);
        this.flush();
      },
      () => {
        // An undecodable packet closes a WebCodecs decoder: conceal what it
        // held and start a fresh one (as the Rust side conceals such a frame).
        for (const slot of this.decoding.splice(0)) slot.conceal = true;
        if (!this.ended) this.decoder = this.makeDecoder();
        this.flush();
      },
    );
  }

  /** Posts the ready frames at the head of the queue, in order, to the playout worklet. */
  private flush(): void {
    while (this.slots.length && (this.slots[0].pcm !== null || this.slots[0].conceal)) {
      const slot = this.slots.shift()!;
      if (slot.discard) {
        if (slot.pcm) this.lastFrame = slot.pcm.slice();
        continue;
      }
      let pcm: Float32Array<ArrayBuffer>;
      if (slot.pcm) {
        pcm = slot.pcm;
        if (slot.arrivedMs !== undefined) this.timings.buffered.add(performance.now() - slot.arrivedMs);
        this.concealGain = 1;
      } else {
        pcm = this.concealed();
      }
      // A copy: the frame's buffer is transferred to the worklet below.
      this.lastFrame = pcm.slice();
      this.speakerDbfs = levelDbfs(pcm) + 20 * Math.log10(Math.max(this.volume, 1e-5));
      this.playout.port.postMessage({ frame: pcm }, [pcm.buffer]);
    }
  }

  /** The last frame again, fading: each concealed frame in a row at half the level of the one before. */
  private concealed(): Float32Array<ArrayBuffer> {
    const from = this.concealGain;
    const to = from / 2;
    this.concealGain = to;
    const last = this.lastFrame;
    const pcm = new Float32Array(FRAME_SAMPLES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      pcm[i] = (last[i % last.length] ?? 0) * (from + ((to - from) * i) / FRAME_SAMPLES);
    }
    return pcm;
  }

  // ---- the call screen's controls ------------------------------------

  get muted(): boolean {
    return this.mutedNow;
  }

  setMuted(muted: boolean): void {
    this.mutedNow = muted;
  }

  /** Speaker volume, 0 (silent) to 2 (+6 dB). */
  setVolume(volume: number): void {
    this.volume = Number.isFinite(volume) ? Math.min(Math.max(volume, 0), 2) : 1;
    this.outputNode.gain.setTargetAtTime(this.volume, this.context.currentTime, 0.01);
  }

  /** The microphone's RMS level of the last 20 ms (before mute: the meter shows you talking). */
  micLevelDbfs(): number {
    return this.micDbfs;
  }

  speakerLevelDbfs(): number {
    return this.speakerDbfs;
  }

  quality(): Quality {
    return {
      lossPct: this.received.lossPct() ?? 0,
      jitterMs: this.received.jitterMs,
      rttMs: this.rttMs,
      bufferMs: this.jitter.stats().targetUs / 1000,
      underruns: this.underruns,
    };
  }

  /** Counters for tests and logs. */
  stats() {
    return {
      sent: this.sent,
      received: this.received.count,
      droppedOnSend: this.socket.dropped,
      rejected: { ...this.rejected },
      jitter: this.jitter.stats(),
      underruns: this.underruns,
      remoteLossPct: this.remoteLossPct,
      lowWater: this.lowWater,
      senderOriginMs: this.senderOriginMs,
      timingsMs: {
        encode: this.timings.encode.value,
        decode: this.timings.decode.value,
        arrivalToWorklet: this.timings.buffered.value,
        sendLateness: this.sendSpread.value,
      },
    };
  }

  /** Ends the voice (the call's hang-up is the signaling's business). */
  async stop(): Promise<void> {
    this.shutDown();
    await this.context.close().catch(() => {});
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.shutDown();
    void this.context.close().catch(() => {});
    this.opts.onEnded?.(reason);
  }

  private shutDown(): void {
    if (this.ended) return;
    this.ended = true;
    this.playout.port.postMessage('stop');
    this.source.disconnect();
    this.socket.onClose = () => {};
    this.socket.close();
    this.encoder.close();
    this.decoder.close();
  }
}
