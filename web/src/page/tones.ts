/**
 * The ringback tone (the other phone is ringing) and the ringtone (ours is),
 * made with WebAudio oscillators: no sound file to fetch. The body's
 * `data-tone` says which one plays, so tests can see it stop.
 */
export type Tone = 'ringback' | 'ringtone';

/** Bursts of a tone: frequencies, on and off times in seconds. */
const SHAPES: Record<Tone, { freqs: number[]; on: number; off: number; bursts: number }> = {
  // North American ringback: 440 + 480 Hz, 2 s on, 4 s off.
  ringback: { freqs: [440, 480], on: 2, off: 4, bursts: 1 },
  // A two-beat electronic ring: two 0.4 s bursts of 800 + 1000 Hz, then 2 s quiet.
  ringtone: { freqs: [800, 1000], on: 0.4, off: 2, bursts: 2 },
};

export class Tones {
  private context: AudioContext | null = null;
  private playing: { tone: Tone; stop: () => void } | null = null;

  /** Creates the audio context inside a user gesture (browsers keep it muted otherwise). */
  unlock(): void {
    try {
      this.context ??= new AudioContext();
      void this.context.resume();
    } catch {
      this.context = null;
    }
  }

  /** Plays `tone` in a loop until {@link stop} (or another tone). */
  play(tone: Tone): void {
    if (this.playing?.tone === tone) return;
    this.stop();
    document.body.dataset.tone = tone;
    const context = this.context;
    if (!context) {
      this.playing = { tone, stop: () => undefined };
      return;
    }
    const shape = SHAPES[tone];
    const gain = context.createGain();
    gain.gain.value = 0;
    gain.connect(context.destination);
    const oscillators = shape.freqs.map((f) => {
      const o = context.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start();
      return o;
    });
    const cycle = shape.bursts * shape.on * 1.5 + shape.off;
    const schedule = () => {
      const t = context.currentTime + 0.05;
      for (let b = 0; b < shape.bursts; b++) {
        const start = t + b * shape.on * 1.5;
        gain.gain.setValueAtTime(0.12, start);
        gain.gain.setValueAtTime(0, start + shape.on);
      }
    };
    schedule();
    const timer = setInterval(schedule, cycle * 1000);
    this.playing = {
      tone,
      stop: () => {
        clearInterval(timer);
        gain.gain.cancelScheduledValues(0);
        gain.gain.value = 0;
        for (const o of oscillators) o.stop();
        gain.disconnect();
      },
    };
  }

  /** Stops whatever plays. */
  stop(): void {
    this.playing?.stop();
    this.playing = null;
    delete document.body.dataset.tone;
  }
}
