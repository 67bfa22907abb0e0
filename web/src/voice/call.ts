/**
 * A call's voice in the browser: microphone -> capture worklet -> Opus
 * (WebCodecs) -> sealed packet -> relay `/media` WebSocket, and back:
 * WebSocket -> open -> Opus -> playout worklet (the jitter buffer, on the
 * speaker's clock) -> volume -> speaker. The same packets, keys and reports as the Rust VoiceSession
 * (src/voice/session.rs), so a tab talks with the desktop app, the
 * headless peer and another tab alike. See README.md beside this file.
 */
import { FRAME_MS, OpusDecoder, OpusEncoder, SAMPLE_RATE, opusUnsupportedReason } from './codec';
import { OpenError, Opener, Sealer } from './crypto';
import type { VoiceKeys } from './handshake';
import type { JitterStats } from './jitter';
import { FLAG_MUTED, FLAG_REPORT, LOSS_UNKNOWN, NO_ECHO, encodeReport, roundTripMs, splitReport } from './packet';
import { MediaSocket, decodeCredential, mediaUrl } from './relay';
import { Mean, ReceiveStats, levelDbfs } from './stats';
import type { PlayoutReport } from './worklet';

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
  /** Frames the playout concealed (lost, late, or inserted to follow the jitter). */
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

export class VoiceCall {
  /** The context the call's audio runs in (tests attach recorders to `outputNode`). */
  readonly context: AudioContext;
  /** The last node before the speaker: the volume. */
  readonly outputNode: GainNode;
  private mutedNow = false;
  private volume = 1;
  private micDbfs = -100;
  private readonly epoch = performance.now();
  private readonly received = new ReceiveStats();
  /** Where the time goes (ms): capture to encoded, decode call to output. */
  private readonly timings = { encode: new Mean(), decode: new Mean() };
  /** The least (send time - frame time) seen, and how much later than that packets left. */
  private sendEarliest = Infinity;
  private readonly sendSpread = new Mean();
  /** When each frame in the encoder was captured, in order. */
  private readonly encoding: number[] = [];
  /** The packets in the decoder, in order: their sequence numbers and when decoding began. */
  private readonly decoding: { seq: number; sinceMs: number }[] = [];
  /** The newest sequence number handed to the decoder (Opus decodes in order: older ones come too late). */
  private decodedUpTo: number | null = null;
  /** Packets that came after a newer one had been decoded. */
  private tooLate = 0;
  /** The playout worklet's newest report (its jitter buffer, its level). */
  private playout: PlayoutReport = {
    jitter: { played: 0, recoveredByFec: 0, concealed: 0, late: 0, droppedForDelay: 0, insertedForDelay: 0, targetUs: 40_000 },
    bufferedMs: 0,
    levelDbfs: -100,
  };
  /**
   * The wall-clock time (ms since the epoch) at which the sender's first
   * frame began, as the fastest packet implies (its path's delay, about a
   * millisecond on loopback, is in it): for measuring delays across processes.
   */
  private senderOriginMs = Infinity;
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
    private readonly playoutNode: AudioWorkletNode,
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
      });
      const gain = context.createGain();
      const encoderRef: { call?: VoiceCall } = {};
      const encoder = new OpusEncoder(
        (opus, timestamp) => encoderRef.call?.sendFrame(opus, timestamp),
        (e) => encoderRef.call?.end(`the Opus encoder failed: ${e.message}`),
      );
      await encoder.configure();
      const silence = await encoder.warmUp();
      const call = new VoiceCall(
        opts, socket, new Sealer(opts.keys.send), new Opener(opts.keys.receive), encoder,
        context, source, capture, playout, gain,
      );
      encoderRef.call = call;
      await call.decoder.warmUp(silence);
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
    this.playoutNode.port.onmessage = (e) => {
      if (e.data.report) this.playout = e.data.report as PlayoutReport;
    };
    this.source.connect(this.capture);
    this.playoutNode.connect(this.outputNode);
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
    // Packet k leaves the sender when its frame is complete, (k + 1) x 20 ms after its clock began.
    const origin = performance.timeOrigin + now - (opened.header.seq + 1) * FRAME_MS;
    this.senderOriginMs = Math.min(this.senderOriginMs, origin);
    this.decode(opened.header.seq, opus);
  }

  /**
   * Decodes a packet as soon as it arrives (WebCodecs decodes on another
   * thread and answers later), in sequence order: Opus carries state from
   * frame to frame, so a packet older than one already decoded is dropped
   * (the worklet conceals its frame, as it does a lost one).
   */
  private decode(seq: number, opus: Uint8Array): void {
    if (this.decodedUpTo !== null && seq <= this.decodedUpTo) {
      this.tooLate += 1;
      return;
    }
    this.decodedUpTo = seq;
    if (!this.decoder.ok || opus.length === 0) return;
    this.decoding.push({ seq, sinceMs: performance.now() });
    this.decoder.decode(opus);
  }

  private makeDecoder(): OpusDecoder {
    return new OpusDecoder(
      (pcm) => {
        const packet = this.decoding.shift();
        if (!packet || this.ended) return;
        this.timings.decode.add(performance.now() - packet.sinceMs);
        this.playoutNode.port.postMessage({ seq: packet.seq, pcm }, [pcm.buffer]);
      },
      () => {
        // An undecodable packet closes a WebCodecs decoder: the frames it
        // held are lost (the worklet conceals them) and a new one starts.
        this.decoding.length = 0;
        if (!this.ended) this.decoder = this.makeDecoder();
      },
    );
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

  /** The level of the last frame played, after the volume. */
  speakerLevelDbfs(): number {
    return this.playout.levelDbfs + 20 * Math.log10(Math.max(this.volume, 1e-5));
  }

  quality(): Quality {
    return {
      lossPct: this.received.lossPct() ?? 0,
      jitterMs: this.received.jitterMs,
      rttMs: this.rttMs,
      bufferMs: this.playout.jitter.targetUs / 1000,
      underruns: this.playout.jitter.concealed,
    };
  }

  /** Counters for tests and logs. */
  stats() {
    return {
      sent: this.sent,
      received: this.received.count,
      droppedOnSend: this.socket.dropped,
      rejected: { ...this.rejected },
      jitter: { ...this.playout.jitter, tooLateToDecode: this.tooLate } as JitterStats & { tooLateToDecode: number },
      remoteLossPct: this.remoteLossPct,
      senderOriginMs: this.senderOriginMs,
      timingsMs: {
        encode: this.timings.encode.value,
        decode: this.timings.decode.value,
        buffered: this.playout.bufferedMs,
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
    this.playoutNode.port.postMessage('stop');
    this.source.disconnect();
    this.socket.onClose = () => {};
    this.socket.close();
    this.encoder.close();
    this.decoder.close();
  }
}
