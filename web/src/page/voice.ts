/**
 * The call screen's voice: opens the microphone (echo cancellation, noise
 * suppression, gain control on) and starts the voice helper's VoiceCall
 * (../voice/call.ts) with the keys and relay way in the SDK handed over;
 * shows the safety code, mute, volume, microphone level and quality line.
 */
import { VoiceCall, voiceSupport } from '../voice/call.js';
import type { Call, MediaInfo, VoiceKeys } from '../sdk/index.js';
import type { callScreen } from './screens.js';

type View = ReturnType<typeof callScreen>;

/** What the call screen shows about a v1.1 peer's code. */
export const DOES_NOT_PROTECT = 'The other phone is older: this code does not protect the call.';

export class Voice {
  private call: VoiceCall | null = null;
  private microphone: MediaStream | null = null;
  private supported: Promise<{ ok: true } | { ok: false; reason: string }> | null = null;
  private muted = false;
  private volume = 1;
  /** The call whose voice runs (a late start for an ended call is stopped at once). */
  private owner: Call | null = null;

  /** Whether this browser has WebCodecs Opus (asked once). */
  support(): Promise<{ ok: true } | { ok: false; reason: string }> {
    this.supported ??= voiceSupport().catch((e) => ({ ok: false as const, reason: String((e as Error).message ?? e) }));
    return this.supported;
  }

  /** Starts voice for `ready.call` on `view`. */
  async start(ready: { call: Call; keys: VoiceKeys; media: MediaInfo; signalingUrl: string }, view: View): Promise<void> {
    if (this.owner === ready.call) return;
    await this.stop();
    this.owner = ready.call;
    view.code.textContent = ready.keys.safetyCode;
    view.safety.hidden = false;
    view.root.dataset.protects = String(ready.keys.protects);
    view.codeNote.textContent = ready.keys.protects ? 'Compare this code with the other person' : DOES_NOT_PROTECT;
    const support = await this.support();
    if (!support.ok) return this.unavailable(support.reason, view);
    view.voiceLine.textContent = 'Connecting voice...';
    try {
      this.microphone = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
    } catch (e) {
      return this.unavailable(`Cannot open the microphone: ${(e as Error).message}`, view);
    }
    try {
      const call = await VoiceCall.start({
        keys: ready.keys,
        media: ready.media,
        signalingUrl: ready.signalingUrl,
        microphone: this.microphone,
        workletUrl: '/worklet.js',
        onEnded: (reason) => {
          if (this.call === call) view.voiceLine.textContent = `Voice ended: ${reason}`;
        },
      });
      if (this.owner !== ready.call || ready.call.isEnded) return void call.stop();
      this.call = call;
      call.setMuted(this.muted);
      call.setVolume(this.volume);
      view.voiceLine.textContent = ready.keys.protects ? 'Voice: end-to-end encrypted' : 'Voice: encrypted (older peer)';
    } catch (e) {
      this.unavailable(`Voice could not start: ${(e as Error).message}`, view);
    }
  }

  /** Says plainly why this call has no voice. */
  unavailable(reason: string, view: View): void {
    view.voiceLine.textContent = `No voice: ${reason}`;
    view.root.dataset.voice = 'none';
  }

  toggleMute(view: View): void {
    this.muted = !this.muted;
    this.call?.setMuted(this.muted);
    view.mute.setAttribute('aria-pressed', String(this.muted));
    view.mute.classList.toggle('on', this.muted);
  }

  setVolume(volume: number): void {
    this.volume = volume;
    this.call?.setVolume(volume);
  }

  /** Updates the level meter and quality line (4 times a second). */
  refresh(view: View): void {
    const call = this.call;
    if (!call) return;
    view.mic.value = Math.max(-60, call.micLevelDbfs());
    const q = call.quality();
    const rtt = q.rttMs === null ? 'rtt -' : `rtt ${Math.round(q.rttMs)} ms`;
    view.quality.textContent = `Loss ${q.lossPct.toFixed(1)}% · jitter ${Math.round(q.jitterMs)} ms · ${rtt} · buffer ${Math.round(q.bufferMs)} ms · concealed ${q.underruns}`;
  }

  async stop(): Promise<void> {
    const call = this.call;
    this.call = null;
    this.owner = null;
    this.microphone?.getTracks().forEach((t) => t.stop());
    this.microphone = null;
    await call?.stop().catch(() => undefined);
  }
}
