//! The devices' share of a call's delay, as the sound server reports it
//! through cpal's callback timestamps: how long a captured sample waited
//! before the microphone's callback saw it, how long a written sample
//! waits in the sound server before it plays, and what the app's own
//! speaker queue holds on top. The callbacks record into atomics (no lock
//! on the real-time path); the stream logs a summary when it closes, so
//! a call's log says where its mouth-to-ear went (docs/media.md, "Where
//! the delay goes").

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Running figures of one delay, in microseconds: count, sum, least,
/// most, and the latest, updated from a real-time callback.
#[derive(Debug)]
pub(super) struct DelayMeter {
    count: AtomicU64,
    sum_us: AtomicU64,
    least_us: AtomicU64,
    most_us: AtomicU64,
    latest_us: AtomicU64,
}

impl Default for DelayMeter {
    fn default() -> DelayMeter {
        DelayMeter {
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            least_us: AtomicU64::new(u64::MAX),
            most_us: AtomicU64::new(0),
            latest_us: AtomicU64::new(0),
        }
    }
}

/// What a [`DelayMeter`] saw, in milliseconds (one decimal is plenty).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct DelaySummary {
    pub mean_ms: f64,
    pub least_ms: f64,
    pub most_ms: f64,
    pub latest_ms: f64,
}

impl DelayMeter {
    /// Records one reading (lock-free: the callbacks call it).
    pub(super) fn record(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.least_us.fetch_min(us, Ordering::Relaxed);
        self.most_us.fetch_max(us, Ordering::Relaxed);
        self.latest_us.store(us, Ordering::Relaxed);
    }

    /// Records `samples` of audio at `rate` as a delay.
    pub(super) fn record_samples(&self, samples: usize, rate: u32) {
        self.record(Duration::from_micros(samples as u64 * 1_000_000 / u64::from(rate.max(1))));
    }

    /// The figures so far; `None` before the first reading (a host that
    /// gives no timestamps, or a stream that never ran).
    pub(super) fn summary(&self) -> Option<DelaySummary> {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return None;
        }
        let ms = |us: u64| (us as f64 / 100.0).round() / 10.0;
        Some(DelaySummary {
            mean_ms: ms(self.sum_us.load(Ordering::Relaxed) / count),
            least_ms: ms(self.least_us.load(Ordering::Relaxed)),
            most_ms: ms(self.most_us.load(Ordering::Relaxed)),
            latest_ms: ms(self.latest_us.load(Ordering::Relaxed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_gives_mean_least_most_and_latest_in_milliseconds() {
        let meter = DelayMeter::default();
        assert_eq!(meter.summary(), None, "nothing recorded yet");
        for ms in [12, 30, 15] {
            meter.record(Duration::from_millis(ms));
        }
        meter.record_samples(480, 48_000);
        let summary = meter.summary().unwrap();
        assert_eq!(summary, DelaySummary { mean_ms: 16.8, least_ms: 10.0, most_ms: 30.0, latest_ms: 10.0 });
    }
}
