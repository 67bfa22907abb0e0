//! The speaker's queue between the playback thread and cpal's real-time
//! callback: a frame is handed over only when the device is about to run
//! low, so the queue holds as little as the device allows (every
//! millisecond queued is a millisecond of mouth-to-ear).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use cpal::{FromSample, Sample};

use softphone_core::voice::audio::AudioError;

use super::STALL;
use super::latency::DelayMeter;

/// Played audio the app holds for the speaker beyond the device's next
/// request while the audio threads run at normal priority: a frame is
/// handed over only when less than a callback's request plus this margin
/// is queued, so the playback thread has the margin plus one callback
/// period to hand the next frame over before the speaker runs dry. At
/// real-time priority it answers within a callback period, so the queue
/// does without the margin: 10 ms less mouth-to-ear on the rig (median
/// 84.6 against 95.7 ms), and under two busy loops 7 underruns in 3
/// calls against 5; at normal priority under the same load 7 against 3,
/// so the margin stays there (docs/media.md, "The speaker's margin").
/// The one-frame channel this replaced held 20–40 ms (docs/media.md,
/// "Two apps on the rig").
const PLAYBACK_MARGIN_MS: u32 = 5;
/// Chunks the channel to the callback can hold; never reached, since the
/// writer waits for the queued audio to run low first.
const PLAYBACK_CHUNKS: usize = 4;

/// How far ahead of the speaker the app is, in device samples per channel.
#[derive(Debug, Default)]
pub(super) struct PlayLead {
    /// Handed to the callback and not played yet.
    queued: AtomicUsize,
    /// The callbacks' recent largest request: the most the next one may
    /// take. It decays by 1/16 per callback, so the larger first requests
    /// of a stream filling its buffer are forgotten in a few hundred ms.
    request: AtomicUsize,
}

/// The playback thread's end of the queue: it hands a chunk over only when
/// the device is about to run low ([`PLAYBACK_MARGIN_MS`]).
pub(super) struct PlayQueue {
    /// Device-rate mono chunks for the callback.
    chunks: SyncSender<Vec<f32>>,
    /// A signal from each callback that it took audio, so the writer wakes
    /// when the queue has run low instead of polling.
    consumed: Receiver<()>,
    /// What is queued and what the device asks for, shared with the callback.
    lead: Arc<PlayLead>,
    /// [`PLAYBACK_MARGIN_MS`] in device samples.
    margin: usize,
    /// Whether the playback thread runs at real-time priority (and needs
    /// no margin): [`super::realtime::granted`], a stand-in in tests.
    realtime: fn() -> bool,
}

/// The callback's end: plays queued chunks on every channel, silence when
/// there is none.
pub(super) struct Play {
    channels: usize,
    chunks: Receiver<Vec<f32>>,
    consumed: SyncSender<()>,
    lead: Arc<PlayLead>,
    current: Vec<f32>,
    position: usize,
    pub(super) underruns: Arc<AtomicU64>,
    /// The device's rate, to turn what is queued into time.
    rate: u32,
    /// How long a written sample waits in the sound server before it plays.
    pub(super) server_delay: Arc<DelayMeter>,
    /// What the app's queue held at each callback: the app's own share.
    pub(super) queue_delay: Arc<DelayMeter>,
}

impl PlayQueue {
    /// Both ends of a queue to a device of `channels` channels at `rate`.
    pub(super) fn new(channels: usize, rate: u32) -> (PlayQueue, Play) {
        let (chunk_tx, chunks) = sync_channel(PLAYBACK_CHUNKS);
        let (consumed_tx, consumed) = sync_channel(1);
        let lead = Arc::new(PlayLead::default());
        let margin = (rate * PLAYBACK_MARGIN_MS / 1000) as usize;
        let play = Play {
            channels: channels.max(1),
            chunks,
            consumed: consumed_tx,
            lead: Arc::clone(&lead),
            current: Vec::new(),
            position: 0,
            underruns: Arc::default(),
            rate,
            server_delay: Arc::default(),
            queue_delay: Arc::default(),
        };
        (PlayQueue { chunks: chunk_tx, consumed, lead, margin, realtime: super::realtime::granted }, play)
    }

    /// Whether the next callback could run short unless a chunk is handed
    /// over now.
    fn wants_more(&self) -> bool {
        let lead = &self.lead;
        let margin = if (self.realtime)() { 0 } else { self.margin };
        // An empty queue always wants a frame: before the first callback
        // no request is known.
        let queued = lead.queued.load(Ordering::Acquire);
        queued == 0 || queued < lead.request.load(Ordering::Relaxed) + margin
    }

    /// Waits (at most [`STALL`]) until the device runs low: the wait
    /// paces the playback thread by the device's clock.
    pub(super) fn wait_until_low(&self) -> Result<(), AudioError> {
        let deadline = Instant::now() + STALL;
        while !self.wants_more() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumed.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => return Err(AudioError::Stalled),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(AudioError::Device("playback stopped".into()));
                }
            }
        }
        Ok(())
    }

    /// Queues `chunk` once the device runs low (at once after
    /// [`PlayQueue::wait_until_low`]).
    pub(super) fn hand_over(&self, chunk: Vec<f32>) -> Result<(), AudioError> {
        self.wait_until_low()?;
        // Counted before the callback can see it, so its count never
        // goes below zero.
        let samples = chunk.len();
        self.lead.queued.fetch_add(samples, Ordering::AcqRel);
        let sent = self.chunks.try_send(chunk);
        if sent.is_err() {
            self.lead.queued.fetch_sub(samples, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(AudioError::Device("playback stopped".into())),
            // Only if the callback stopped taking chunks while reporting
            // that it did: a device in trouble.
            Err(TrySendError::Full(_)) => Err(AudioError::Stalled),
        }
    }
}

impl Play {
    /// Plays what is queued into `out`, which the sound server plays
    /// `server_delay` from now.
    pub(super) fn fill<T: Sample + FromSample<f32>>(&mut self, out: &mut [T], server_delay: Duration) {
        super::realtime::promote_current_thread();
        self.server_delay.record(server_delay);
        self.queue_delay.record_samples(self.lead.queued.load(Ordering::Relaxed), self.rate);
        let (mut starved, mut played) = (false, 0);
        for frame in out.chunks_mut(self.channels) {
            if self.position >= self.current.len() {
                match self.chunks.try_recv() {
                    Ok(chunk) => (self.current, self.position) = (chunk, 0),
                    Err(_) => {
                        starved = true;
                        frame.fill(T::EQUILIBRIUM);
                        continue;
                    }
                }
            }
            let value = T::from_sample(self.current[self.position] / 32768.0);
            self.position += 1;
            played += 1;
            frame.fill(value);
        }
        let request = out.len() / self.channels;
        let recent = self.lead.request.load(Ordering::Relaxed);
        self.lead.request.store(request.max(recent - recent / 16), Ordering::Relaxed);
        self.lead.queued.fetch_sub(played, Ordering::AcqRel);
        let _ = self.consumed.try_send(());
        if starved {
            self.underruns.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softphone_core::voice::codec::FRAME_SAMPLES;

    /// Plays callbacks of the given requests on a mono device at 48 kHz,
    /// the playback thread handing 20 ms chunks over whenever the queue
    /// lets it (at once: the thread is never late here). Returns what was
    /// queued at each callback's start, and the underruns.
    fn simulate(requests: impl IntoIterator<Item = usize>, realtime: bool) -> (Vec<usize>, u64) {
        let (mut queue, mut play) = PlayQueue::new(1, 48_000);
        queue.realtime = if realtime { || true } else { || false };
        let (mut queued, mut out) = (Vec::new(), Vec::new());
        for request in requests {
            while queue.wants_more() {
                queue.hand_over(vec![1000.0; FRAME_SAMPLES]).unwrap();
            }
            queued.push(queue.lead.queued.load(Ordering::Relaxed));
            out.resize(request, 0i16);
            play.fill(&mut out, Duration::ZERO);
        }
        (queued, play.underruns.load(Ordering::Relaxed))
    }

    /// A request (480) plus the margin (240) less one sample, plus a frame:
    /// the most a callback can find queued (under 35 ms; the one-frame
    /// channel this replaced held up to 40 ms).
    const MOST_QUEUED: usize = 480 + 240 - 1 + FRAME_SAMPLES;

    #[test]
    fn the_speaker_queue_holds_one_request_and_the_margin_not_a_frame_more() {
        // 10 ms callbacks, a playback thread at normal priority: the queue
        // refills only when less than a request plus the 5 ms margin is left.
        let (queued, underruns) = simulate(std::iter::repeat_n(480, 200), false);
        assert_eq!(underruns, 0);
        let most = queued.iter().skip(1).max().copied().unwrap();
        assert!(most <= MOST_QUEUED, "{most} samples queued");
        // And never less than the next callback takes.
        assert!(queued.iter().skip(1).all(|&q| q >= 480), "{queued:?}");
    }

    #[test]
    fn a_large_first_request_is_forgotten_and_the_queue_shrinks_again() {
        // A stream filling the sound server's buffer asks for 40 ms at first.
        let requests = std::iter::repeat_n(1920, 3).chain(std::iter::repeat_n(480, 100));
        let (queued, underruns) = simulate(requests, false);
        // The first callback, before any request is known, finds one frame.
        assert_eq!(underruns, 1);
        assert!(queued[3] > MOST_QUEUED, "the large requests raised the queue: {queued:?}");
        let most_late = queued[40..].iter().max().copied().unwrap();
        assert!(most_late <= MOST_QUEUED, "{most_late} samples queued once the requests are small");
    }

    #[test]
    fn at_real_time_priority_the_queue_holds_a_request_and_no_margin() {
        let (queued, underruns) = simulate(std::iter::repeat_n(480, 200), true);
        assert_eq!(underruns, 0);
        let most = queued.iter().skip(1).max().copied().unwrap();
        assert!(most < 480 + FRAME_SAMPLES, "{most} samples queued");
        assert!(queued.iter().skip(1).all(|&q| q >= 480), "never less than the next request: {queued:?}");
        // 10 ms less on average than with the margin (20 and 10 ms
        // against 30 and 20 at the callbacks' starts).
        let (with_margin, _) = simulate(std::iter::repeat_n(480, 200), false);
        let mean = |q: &[usize]| q[1..].iter().sum::<usize>() as f64 / (q.len() - 1) as f64;
        assert!(
            mean(&with_margin) - mean(&queued) >= 470.0,
            "{} against {}",
            mean(&queued),
            mean(&with_margin)
        );
    }
}
