/**
 * The browser voice test's page: a v1.1 call (media_key in the invite, as
 * today's Rust peer speaks it) from this tab to a headless peer over raw
 * signaling, then only VoiceCall. It keeps what the microphone gave the
 * encoder and what the playout path played (a recorder on the call's
 * output node), each with the wall-clock time of its first sample, for
 * browser-call.mjs to score.
 */
import { VoiceCall } from '../../../src/voice/call';
import { agree, decodeKey, encodeKey, makeCallKey } from '../../../src/voice/handshake';

/** What one side of the recordings holds. */
interface Take {
  chunks: Float32Array[];
  samples: number;
  /** min over chunks of (arrival wall ms - its first sample's offset): the first sample's time. */
  startMs: number;
  /** The wall-clock ms of the newest chunk's end, to check the audio clock kept real time. */
  endMs: number;
}

const take = (): Take => ({ chunks: [], samples: 0, startMs: Infinity, endMs: 0 });

/** Adds a chunk that ended (or was handed over) at `wallMs`. */
function keep(t: Take, pcm: Float32Array, wallMs: number): void {
  t.chunks.push(pcm);
  t.samples += pcm.length;
  t.startMs = Math.min(t.startMs, wallMs - (t.samples / 48_000) * 1000);
  t.endMs = wallMs;
}

function int16Base64(t: Take): string {
  const out = new Int16Array(t.samples);
  let at = 0;
  for (const c of t.chunks) for (const v of c) out[at++] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
  const bytes = new Uint8Array(out.buffer);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function signaling(url: string) {
  const ws = new WebSocket(url);
  let req = 0;
  const waiting = new Map<number, (m: any) => void>();
  const events: any[] = [];
  const eventWaiters: Array<{ type: string; resolve: (m: any) => void }> = [];
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'ok' || m.type === 'error') {
      waiting.get(m.req)?.(m);
      return;
    }
    const i = eventWaiters.findIndex((w) => w.type === m.type);
    if (i >= 0) eventWaiters.splice(i, 1)[0].resolve(m);
    else events.push(m);
  };
  const open = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
  return {
    open,
    async request(body: Record<string, unknown>): Promise<any> {
      const n = ++req;
      const answer = new Promise((resolve) => waiting.set(n, resolve));
      ws.send(JSON.stringify({ ...body, req: n }));
      const m: any = await answer;
      if (m.type === 'error') throw new Error(`${body.type}: ${m.code} ${m.message}`);
      return m;
    },
    event(type: string): Promise<any> {
      const i = events.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(events.splice(i, 1)[0]);
      return new Promise((resolve) => eventWaiters.push({ type, resolve }));
    },
    close: () => ws.close(),
  };
}

let state: {
  call: VoiceCall;
  sig: ReturnType<typeof signaling>;
  callId: string;
  sent: Take;
  heard: Take;
  safetyCode: string;
  ended: string | null;
} | null = null;

/** Chromium's capture statistics of the microphone track (MediaStreamTrack.stats, Chromium 125+), in ms. */
function trackLatency(track: MediaStreamTrack | undefined) {
  const stats = (track as unknown as { stats?: Record<string, number> } | undefined)?.stats;
  if (!stats) return null;
  // Already in milliseconds (DOMHighResTimeStamp).
  const ms = (s: number | undefined) => (typeof s === "number" ? s : null);
  return { latencyMs: ms(stats.latency), averageMs: ms(stats.averageLatency), minimumMs: ms(stats.minimumLatency), maximumMs: ms(stats.maximumLatency) };
}

/** getUserMedia's echo cancellation, noise suppression and gain control: each on or off. */
interface Processing {
  echoCancellation: boolean;
  noiseSuppression: boolean;
  autoGainControl: boolean;
}

/** `processing`: the page's own choice is all three on; the test turns some off to measure their share. */
async function start(opts: { server: string; me: string; callee: string; processing: Processing }) {
  const sig = signaling(opts.server);
  await sig.open;
  await sig.request({ type: 'login', peer_id: opts.me, token: '', device: 'voice test tab' });
  const key = makeCallKey();
  const callId = `voice-test-${Date.now()}`;
  await sig.request({ type: 'invite', call_id: callId, callee_id: opts.callee, content: '', media_key: encodeKey(key.public) });
  const accepted = await sig.event('accepted');
  if (!accepted.media_key || !accepted.media) throw new Error(`accepted without voice: ${JSON.stringify(accepted)}`);
  const keys = agree(key, decodeKey(accepted.media_key), 'caller', callId, null);
  const microphone = await navigator.mediaDevices.getUserMedia({
    audio: { ...opts.processing, channelCount: 1 },
  });
  const track = microphone.getAudioTracks()[0];
  const sent = take();
  const heard = take();
  const s = { sig, callId, sent, heard, track, safetyCode: keys.safetyCode, ended: null as string | null } as any;
  const call = await VoiceCall.start({
    keys,
    media: accepted.media,
    signalingUrl: opts.server,
    microphone,
    workletUrl: new URL('worklet.js', location.href).href,
    onEnded: (reason) => (s.ended = reason),
    onCapturedFrame: (pcm, wallMs) => keep(sent, pcm, wallMs),
  });
  await call.context.audioWorklet.addModule(new URL('recorder.js', location.href).href);
  const recorder = new AudioWorkletNode(call.context, 'voice-test-recorder', { numberOfOutputs: 0, channelCount: 1 });
  recorder.port.onmessage = (e) => keep(heard, e.data as Float32Array, performance.timeOrigin + performance.now());
  call.outputNode.connect(recorder);
  s.call = call;
  state = s;
  return { safetyCode: keys.safetyCode, microphone: track?.getSettings(), baseLatencyMs: call.context.baseLatency * 1000, outputLatencyMs: (call.context.outputLatency || 0) * 1000 };
}

async function finish() {
  if (!state) throw new Error('no call');
  const { call, sig, callId, sent, heard } = state;
  const quality = call.quality();
  const stats = call.stats();
  const levels = { micDbfs: call.micLevelDbfs(), speakerDbfs: call.speakerLevelDbfs() };
  const capture = trackLatency((state as any).track);
  await call.stop();
  await sig.request({ type: 'hangup', call_id: callId }).catch(() => {});
  sig.close();
  return {
    safetyCode: state.safetyCode,
    ended: state.ended,
    quality,
    stats,
    levels,
    capture,
    sent: { pcm: int16Base64(sent), startMs: sent.startMs, endMs: sent.endMs, ms: (sent.samples / 48_000) * 1000 },
    heard: { pcm: int16Base64(heard), startMs: heard.startMs, endMs: heard.endMs, ms: (heard.samples / 48_000) * 1000 },
  };
}

(window as any).voiceTest = { start, finish, quality: () => state?.call.quality() };
