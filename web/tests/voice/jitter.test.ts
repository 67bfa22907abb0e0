// The jitter buffer driven with explicit times (microseconds): no clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_US, JitterBuffer, MAX_TARGET_US, MIN_TARGET_US, QUIET_WAIT_PULLS, type Playout } from '../../src/voice/jitter.ts';

const payload = (seq: number) => Uint8Array.of(seq >> 8, seq & 255);
const seqOf = (p: Playout) =>
  p.kind === 'packet' ? (p.payload[0] << 8) | p.payload[1] : p.kind === 'fec' ? ((p.nextPayload[0] << 8) | p.nextPayload[1]) - 1 : null;

/** Sends `frames` packets (k-th at (k+1) x 20 ms plus delay(k), or lost) and pulls every 20 ms. */
function run(buffer: JitterBuffer, frames: number, delay: (k: number) => number | null): Playout[] {
  const arrivals = Array.from({ length: frames }, (_, k) => [k, delay(k)] as const)
    .filter(([, d]) => d !== null)
    .map(([k, d]) => [(k + 1) * FRAME_US + (d as number), k] as const)
    .sort((a, b) => a[0] - b[0]);
  const out: Playout[] = [];
  let i = 0;
  for (let pull = FRAME_US + 5_000; pull < frames * FRAME_US + 300_000; pull += FRAME_US) {
    while (i < arrivals.length && arrivals[i][0] <= pull) buffer.push(arrivals[i][1], payload(arrivals[i][1]), arrivals[i++][0]);
    out.push(buffer.pop(pull));
  }
  return out;
}

describe('jitter buffer', () => {
  test('a steady stream plays every frame once, in order, after about the minimum target', () => {
    const buffer = new JitterBuffer();
    const out = run(buffer, 200, () => 1_000);
    const played = out.map(seqOf).filter((s) => s !== null);
    assert.deepEqual(played, Array.from({ length: 200 }, (_, k) => k));
    const leading = out.findIndex((p) => p.kind !== 'silence');
    assert.ok((leading * FRAME_US) >= (MIN_TARGET_US - 20_000));
    assert.ok((leading * FRAME_US) <= (MIN_TARGET_US + 20_000));
    const lastPlayed = out.map((p) => p.kind).lastIndexOf('packet');
    assert.equal(out.slice(leading, lastPlayed).every((p) => p.kind === 'packet'), true);
    const s = buffer.stats();
    assert.deepEqual({ played: s.played, late: s.late, droppedForDelay: s.droppedForDelay, insertedForDelay: s.insertedForDelay }, { played: 200, late: 0, droppedForDelay: 0, insertedForDelay: 0 });
  });

  test('a lost packet is recovered from the next one, two lost in a row are concealed', () => {
    const buffer = new JitterBuffer();
    const out = run(buffer, 100, (k) => (k === 40 || k === 60 || k === 61 ? null : 1_000));
    const fec = out.filter((p) => p.kind === 'fec').map(seqOf);
    assert.ok((fec).includes(40));
    assert.ok((fec).includes(61));
    assert.ok((buffer.stats().concealed) >= (1));
  });

  test('jitter raises the target (bounded) and late packets are counted, not played', () => {
    const buffer = new JitterBuffer();
    run(buffer, 150, (k) => ((k * 7919) % 5) * 15_000);
    const { targetUs } = buffer.stats();
    assert.ok((targetUs) > (MIN_TARGET_US));
    assert.ok((targetUs) <= (MAX_TARGET_US));
    const late = new JitterBuffer();
    run(late, 100, (k) => (k === 50 ? 400_000 : 1_000));
    assert.equal(late.stats().late, 1);
  });

  test('a delay that grows for good is absorbed by inserted frames, one that shrinks by dropped ones', () => {
    const growing = new JitterBuffer();
    run(growing, 300, (k) => Math.min(k, 60) * 1_000);
    assert.ok((growing.stats().insertedForDelay) > (0));
    const shrinking = new JitterBuffer();
    // Drift: the receiver's clock runs 2 % slow, so packets pile up.
    run(shrinking, 400, (k) => -k * 400);
    assert.ok((shrinking.stats().droppedForDelay) > (0));
  });

  test('told how to hear a quiet frame, the buffer drops or inserts only in one (or after a second)', () => {
    // Frames 0-89 are speech, 90-109 a pause, then speech; the delay shrinks by 40 ms at frame 60.
    const quiet = (p: Uint8Array) => { const seq = (p[0] << 8) | p[1]; return seq >= 90 && seq < 110; };
    const shrinking = (k: number) => (k < 60 ? 45_000 : 5_000);
    const waits = new JitterBuffer(quiet);
    const out = run(waits, 300, shrinking);
    const played = out.map(seqOf).filter((s) => s !== null) as number[];
    const gaps = played.flatMap((s, i) => (i > 0 && s !== played[i - 1] + 1 ? [played[i - 1] + 1] : []));
    assert.ok(waits.stats().droppedForDelay > 0, 'the delay came down');
    // (Later, as the slow packets leave the window, the target comes down too: another drop, forced, follows.)
    assert.ok(gaps.length > 0 && gaps[0] >= 90 && gaps[0] < 110, `the first drop waited for the pause: ${gaps}`);
    // Without a pause in reach, the adjustment comes anyway, one second late at most.
    const never = new JitterBuffer(() => false);
    const neverOut = run(never, 300, shrinking).map(seqOf).filter((s) => s !== null) as number[];
    const firstGap = neverOut.findIndex((s, i) => i > 0 && s !== neverOut[i - 1] + 1);
    assert.ok(never.stats().droppedForDelay > 0 && firstGap > 0 && neverOut[firstGap] <= 60 + QUIET_WAIT_PULLS + 10, `dropped at ${neverOut[firstGap]}`);
    // And without the hook, at once (as the Rust buffer).
    const atOnce = new JitterBuffer();
    const atOnceOut = run(atOnce, 300, shrinking).map(seqOf).filter((s) => s !== null) as number[];
    const firstAtOnce = atOnceOut.findIndex((s, i) => i > 0 && s !== atOnceOut[i - 1] + 1);
    assert.ok(firstAtOnce > 0 && atOnceOut[firstAtOnce] < 75, `dropped at ${atOnceOut[firstAtOnce]}`);
  });

  test('a stream that restarts far ahead starts afresh', () => {
    const buffer = new JitterBuffer();
    for (let k = 0; k < 10; k++) buffer.push(k, payload(k), k * FRAME_US);
    assert.equal(seqOf(buffer.pop(100_000)), 0);
    buffer.push(5000, payload(5000), 120_000);
    assert.equal(seqOf(buffer.pop(200_000)), 5000);
    assert.equal(seqOf(buffer.pop(220_000)), null);
  });
});
