//! The jitter buffer: packets in by sequence number whenever the network
//! delivers them, one playout decision out every 20 ms when the speaker
//! asks. It decides only; the Opus decoder acts on its [`Playout`].
//!
//! Delay model. Each packet's *offset* is its arrival time minus its
//! sequence number times 20 ms; the smallest offset of the last two
//! seconds is the fastest path. The *headroom* of a pull is how long the
//! fastest packet of its frame would have waited: pull time minus frame
//! time minus the fastest offset. A packet is on time when its offset is
//! within the headroom of the smallest. The target headroom is the spread
//! of recent offsets plus a margin, kept between 40 and 120 ms. When the
//! headroom leaves the band around the target, one frame is dropped or
//! one concealed frame inserted: that follows jitter changes and absorbs
//! the drift between the sender's and the receiver's sound-card clocks.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// One frame's duration in microseconds.
pub const FRAME_US: i64 = 20_000;
/// The target headroom's floor and ceiling.
pub const MIN_TARGET_US: i64 = 40_000;
pub const MAX_TARGET_US: i64 = 120_000;
/// Added to the offsets' spread: packets may be this much later than any
/// seen in the window and still play.
const MARGIN_US: i64 = 15_000;
/// Headroom below `target - LOW_US` inserts a frame; above
/// `target + HIGH_US` drops one. The band is wider than a frame so one
/// adjustment never triggers the opposite one.
const LOW_US: i64 = 10_000;
const HIGH_US: i64 = 15_000;
/// Pulls in a row out of the band before acting: a single odd pull is noise.
const OUT_OF_BAND_PULLS: u32 = 3;
/// Offsets remembered (two seconds of packets).
const OFFSET_WINDOW: usize = 100;
/// Packets held at most (over two seconds); a flood cannot grow the buffer.
const CAPACITY: usize = 128;
/// A packet this many frames ahead of playout means the stream restarted
/// (or the receiver stalled): start again from it.
const RESYNC_FRAMES: u32 = 100;
/// Concealed frames in a row with nothing buffered before playout stops
/// and waits again (half a second: the sender has gone quiet).
const GIVE_UP_FRAMES: u32 = 25;

/// What to play for one 20 ms frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Nothing received yet (or the stream stopped): play silence.
    Silence,
    /// Decode this packet. `skipped` is a packet dropped to shorten the
    /// delay: decode it first and discard its sound, to keep the decoder's
    /// state continuous.
    Packet { payload: Vec<u8>, skipped: Option<Vec<u8>> },
    /// This frame was lost: recover it from the FEC in the next packet.
    Fec { next_payload: Vec<u8> },
    /// This frame was lost (or one is inserted): conceal it.
    Conceal,
}

/// What the buffer has done so far, for the quality line and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub played: u64,
    pub recovered_by_fec: u64,
    pub concealed: u64,
    /// Packets that came after their frame had played.
    pub late: u64,
    /// Frames dropped to shorten the delay.
    pub dropped_for_delay: u64,
    /// Frames inserted to lengthen the delay.
    pub inserted_for_delay: u64,
    /// The target headroom now, in microseconds.
    pub target_us: i64,
}

/// Whether playout has begun.
#[derive(Debug, Clone, Copy)]
enum State {
    /// No frame played yet (or the stream stopped): waiting until the
    /// first buffered packet has its target headroom.
    Waiting,
    Playing {
        /// The sequence number of the next frame to play.
        next_seq: u32,
        /// Consecutive pulls above (positive) or below (negative) the band.
        out_of_band: i32,
        /// Concealed frames in a row with an empty buffer.
        starving: u32,
    },
}

/// See the module documentation.
pub struct JitterBuffer {
    /// Times are microseconds since this instant.
    epoch: Instant,
    /// Received packets not yet played: payload and arrival time.
    packets: BTreeMap<u32, (Vec<u8>, i64)>,
    /// Offsets (arrival minus frame time) of the latest packets.
    offsets: VecDeque<i64>,
    state: State,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(epoch: Instant) -> JitterBuffer {
        let stats = JitterStats { target_us: MIN_TARGET_US, ..JitterStats::default() };
        let (packets, offsets) = (BTreeMap::new(), VecDeque::with_capacity(OFFSET_WINDOW));
        JitterBuffer { epoch, packets, offsets, state: State::Waiting, stats }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn micros(&self, now: Instant) -> i64 {
        now.saturating_duration_since(self.epoch).as_micros() as i64
    }

    /// Stores a packet that arrived at `now`.
    pub fn push(&mut self, seq: u32, payload: Vec<u8>, now: Instant) {
        let arrival = self.micros(now);
        if let State::Playing { next_seq, .. } = self.state {
            if seq < next_seq {
                self.stats.late += 1;
                return;
            }
            if seq - next_seq > RESYNC_FRAMES {
                self.packets.clear();
                self.offsets.clear();
                self.state = State::Waiting;
            }
        }
        if self.offsets.len() == OFFSET_WINDOW {
            self.offsets.pop_front();
        }
        self.offsets.push_back(arrival - i64::from(seq) * FRAME_US);
        self.stats.target_us = self.target();
        self.packets.insert(seq, (payload, arrival));
        while self.packets.len() > CAPACITY {
            self.packets.pop_first();
        }
    }

    /// The spread of recent offsets plus the margin, within the bounds.
    fn target(&self) -> i64 {
        let fastest = self.offsets.iter().min().copied().unwrap_or(0);
        let slowest = self.offsets.iter().max().copied().unwrap_or(0);
        (slowest - fastest + MARGIN_US).clamp(MIN_TARGET_US, MAX_TARGET_US)
    }

    /// How long the fastest packet of frame `seq` would have waited at `now`.
    fn headroom(&self, seq: u32, now: i64) -> i64 {
        let fastest = self.offsets.iter().min().copied().unwrap_or(0);
        now - i64::from(seq) * FRAME_US - fastest
    }

    /// The decision for the frame the speaker needs at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let now = self.micros(now);
        let target = self.target();
        let State::Playing { next_seq, out_of_band, starving } = self.state else {
            let Some((&first, _)) = self.packets.first_key_value() else {
                return Playout::Silence;
            };
            if self.headroom(first, now) < target - LOW_US {
                return Playout::Silence;
            }
            self.state = State::Playing { next_seq: first, out_of_band: 0, starving: 0 };
            return self.pop_playing(first, 0);
        };
        let headroom = self.headroom(next_seq, now);
        let out_of_band = if headroom > target + HIGH_US {
            out_of_band.max(0) + 1
        } else if headroom < target - LOW_US {
            out_of_band.min(0) - 1
        } else {
            0
        };
        self.state = State::Playing { next_seq, out_of_band, starving };
        if out_of_band <= -(OUT_OF_BAND_PULLS as i32) {
            // Too little headroom: play a concealed frame and keep this one.
            self.stats.inserted_for_delay += 1;
            self.state = State::Playing { next_seq, out_of_band: 0, starving };
            return Playout::Conceal;
        }
        if out_of_band >= OUT_OF_BAND_PULLS as i32 {
            self.stats.dropped_for_delay += 1;
            self.state = State::Playing { next_seq: next_seq + 1, out_of_band: 0, starving };
            let skipped = self.packets.remove(&next_seq).map(|(payload, _)| payload);
            return match self.pop_playing(next_seq + 1, starving) {
                Playout::Packet { payload, .. } => Playout::Packet { payload, skipped },
                other => other,
            };
        }
        self.pop_playing(next_seq, starving)
    }

    /// Plays frame `seq` (or recovers or conceals it) and moves on.
    fn pop_playing(&mut self, seq: u32, starving: u32) -> Playout {
        let out_of_band = match self.state {
            State::Playing { out_of_band, .. } => out_of_band,
            State::Waiting => 0,
        };
        let playout = if let Some((payload, _)) = self.packets.remove(&seq) {
            self.stats.played += 1;
            Playout::Packet { payload, skipped: None }
        } else if let Some((next, _)) = self.packets.get(&(seq + 1)) {
            self.stats.recovered_by_fec += 1;
            Playout::Fec { next_payload: next.clone() }
        } else {
            self.stats.concealed += 1;
            Playout::Conceal
        };
        let starving = match (&playout, self.packets.is_empty()) {
            (Playout::Conceal, true) => starving + 1,
            _ => 0,
        };
        self.state = if starving >= GIVE_UP_FRAMES {
            // When the stream comes back its timing starts afresh.
            self.offsets.clear();
            State::Waiting
        } else {
            State::Playing { next_seq: seq + 1, out_of_band, starving }
        };
        playout
    }
}

#[cfg(test)]
#[path = "jitter_tests.rs"]
mod tests;
