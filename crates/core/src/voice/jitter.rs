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
//! of recent offsets (late packets' too) plus a margin, kept between a
//! floor and 120 ms. When the headroom leaves the band around the target,
//! one frame is dropped or one concealed frame inserted: that follows
//! jitter changes and absorbs the drift between the sender's and the
//! receiver's sound-card clocks. Within the band, a frame in a pause is
//! played in half its time ([`Playout::Shortened`]) while the headroom is
//! more than half a frame above where it needs to be: a 20 ms step alone
//! leaves the headroom anywhere in a band 20 ms wide, and where in it a
//! call settled decided whether it met issue 20's 100 ms.
//!
//! The floor. A call starts at 40 ms, while the path's spread is still
//! unknown (fewer than two seconds of packets). Once a full window shows a
//! clean path, the floor relaxes to 25 ms, and the buffer drops and
//! shortens frames in pauses until its headroom is within half a frame of
//! the least a start needs (target - 10 ms).
//! A lost frame (recovered by FEC or concealed while later packets were
//! in) or a late packet puts the floor back at 40 ms for five seconds:
//! in-band FEC recovers a lost frame from the next packet, which arrives
//! a frame (20 ms) later, so recovery needs that much headroom and a
//! little more, and a clean path need not pay for it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// One frame's duration in microseconds.
pub const FRAME_US: i64 = 20_000;
/// The target headroom's floor while the path is unknown (the first two
/// seconds of a stream) or losing frames: the next packet (a frame later)
/// must be in before the pull for its FEC to recover a lost frame.
pub const MIN_TARGET_US: i64 = 40_000;
/// The floor once a full window of packets shows a clean path (issue 20:
/// file-fed mouth-to-ear ≤ 50 ms, which the 40 ms floor kept out of reach;
/// docs/media.md, "Jitter buffer").
pub const CLEAN_MIN_TARGET_US: i64 = 25_000;
/// The target headroom's ceiling.
pub const MAX_TARGET_US: i64 = 120_000;
/// Fixed-point scale and smoothing (1/16 for the newest) of the packets'
/// mean size.
const SIZE_SCALE: u32 = 16;
const SIZE_SMOOTHING: u32 = 16;
/// Pulls (five seconds) the 40 ms floor holds after a frame was lost or a
/// packet came late.
const LOSSY_FLOOR_PULLS: u32 = 250;
/// Added to the offsets' spread: packets may be this much later than any
/// seen in the window and still play.
const MARGIN_US: i64 = 15_000;
/// Headroom below `target - LOW_US` inserts a frame; above
/// `target + HIGH_US` drops one. The band is wider than a frame so one
/// adjustment never triggers the opposite one.
const LOW_US: i64 = 10_000;
const HIGH_US: i64 = 15_000;
/// Half a frame: what a shortened frame takes off the headroom.
pub const HALF_FRAME_US: i64 = FRAME_US / 2;
/// Headroom above `target + PAUSE_HIGH_US` shortens a frame in a pause
/// once the floor has settled: the band for pauses is then 15 ms wide,
/// wider than the 10 ms a shortening moves, so it never triggers an
/// insertion. Speech is only ever dropped above `target + HIGH_US`.
const PAUSE_HIGH_US: i64 = 5_000;
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
    /// Decode this packet (a frame in a pause) and play it in 10 ms
    /// instead of 20: the delay comes down by half a frame. The next
    /// decision is then wanted 10 ms sooner: at `now` plus what is still
    /// to play.
    Shortened { payload: Vec<u8> },
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
    /// Frames in pauses played in half their time to shorten the delay.
    pub shortened_for_delay: u64,
    /// Frames inserted to lengthen the delay.
    pub inserted_for_delay: u64,
    /// The target headroom now, in microseconds.
    pub target_us: i64,
    /// The headroom of the latest decision while playing (0 before): how
    /// long the fastest packet waited, which with the target shows where
    /// in the band the buffer sits, and so its share of the delay.
    pub headroom_us: i64,
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
    /// Pulls left at the 40 ms floor after a loss or a late packet; 0 on a
    /// clean path.
    lossy_pulls: u32,
    /// The packets' mean size in 1/[`SIZE_SCALE`] bytes (an exponential
    /// average), against which a pause's small packets stand out.
    mean_size: u32,
    /// The floor at the last pull, to see it relax.
    floor_us: i64,
    /// Set when the floor relaxes, until the headroom is below target,
    /// within half a frame of the least a start needs (target - 10 ms):
    /// frames in pauses are dropped or shortened meanwhile. (The band's
    /// upper edge, target + 15 ms, would keep up to 40 ms of the 30-50 ms
    /// a 40 ms start gives.)
    settling: bool,
}

impl JitterBuffer {
    pub fn new(epoch: Instant) -> JitterBuffer {
        let stats = JitterStats { target_us: MIN_TARGET_US, ..JitterStats::default() };
        let (packets, offsets) = (BTreeMap::new(), VecDeque::with_capacity(OFFSET_WINDOW));
        JitterBuffer {
            epoch,
            packets,
            offsets,
            state: State::Waiting,
            stats,
            lossy_pulls: 0,
            mean_size: 0,
            floor_us: MIN_TARGET_US,
            settling: false,
        }
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
        let mut late = false;
        if let State::Playing { next_seq, .. } = self.state {
            late = seq < next_seq;
            if !late && seq - next_seq > RESYNC_FRAMES {
                self.packets.clear();
                self.offsets.clear();
                self.state = State::Waiting;
            }
        }
        if self.offsets.len() == OFFSET_WINDOW {
            self.offsets.pop_front();
        }
        // A late packet's offset counts too: it shows the path is slower
        // than the headroom, which only a larger target corrects (left
        // out, a buffer that started shallow could stay shallow).
        self.offsets.push_back(arrival - i64::from(seq) * FRAME_US);
        if late {
            self.stats.late += 1;
            self.lossy_pulls = LOSSY_FLOOR_PULLS;
        }
        self.stats.target_us = self.target();
        if late {
            return;
        }
        let size = payload.len() as u32 * SIZE_SCALE;
        self.mean_size = match self.mean_size {
            0 => size,
            mean => mean - mean / SIZE_SMOOTHING + size / SIZE_SMOOTHING,
        };
        self.packets.insert(seq, (payload, arrival));
        while self.packets.len() > CAPACITY {
            self.packets.pop_first();
        }
    }

    /// The floor now: 40 ms until a full window of packets is known and
    /// for a while after a loss, 25 ms on a clean path.
    fn floor(&self) -> i64 {
        if self.offsets.len() < OFFSET_WINDOW || self.lossy_pulls > 0 {
            MIN_TARGET_US
        } else {
            CLEAN_MIN_TARGET_US
        }
    }

    /// The spread of recent offsets plus the margin, within the bounds.
    fn target(&self) -> i64 {
        let fastest = self.offsets.iter().min().copied().unwrap_or(0);
        let slowest = self.offsets.iter().max().copied().unwrap_or(0);
        (slowest - fastest + MARGIN_US).clamp(self.floor(), MAX_TARGET_US)
    }

    /// Whether frame `seq` is in a pause: its packet is at most half the
    /// recent packets' mean size (Opus spends about 23 bytes on silence
    /// and 80-130 on speech at 40 kbit/s). Dropping it is not heard.
    fn in_pause(&self, seq: u32) -> bool {
        self.packets
            .get(&seq)
            .is_some_and(|(payload, _)| payload.len() as u32 * 2 * SIZE_SCALE <= self.mean_size)
    }

    /// How long the fastest packet of frame `seq` would have waited at `now`.
    fn headroom(&self, seq: u32, now: i64) -> i64 {
        let fastest = self.offsets.iter().min().copied().unwrap_or(0);
        now - i64::from(seq) * FRAME_US - fastest
    }

    /// The decision for the frame the speaker needs at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let now = self.micros(now);
        self.lossy_pulls = self.lossy_pulls.saturating_sub(1);
        let floor = self.floor();
        if floor != self.floor_us {
            self.settling = floor < self.floor_us;
            self.floor_us = floor;
        }
        let target = self.target();
        self.stats.target_us = target;
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
        self.stats.headroom_us = headroom;
        // Settling after the floor relaxed: frames in pauses go, or are
        // shortened, while that leaves the headroom a start needs (the
        // band's lower edge); the upper edge stays where the 40 ms floor
        // had it, so no frame of speech goes for the relaxing.
        let lower = target - LOW_US;
        self.settling &= headroom >= lower + HALF_FRAME_US;
        let upper = if self.settling { target.max(MIN_TARGET_US) } else { target } + HIGH_US;
        // Not while the path loses packets: there the headroom is for FEC
        // and a shortened pause mid-sentence cost more than it won (10 %
        // loss: mean PESQ-WB 3.1 -> 2.4; docs/media.md, "Jitter buffer").
        let above_pause_band = self.lossy_pulls == 0 && headroom > target + PAUSE_HIGH_US;
        let shorten = self.in_pause(next_seq) && (self.settling || above_pause_band);
        let out_of_band = if headroom > upper || shorten {
            out_of_band.max(0) + 1
        } else if headroom < lower {
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
        if out_of_band < OUT_OF_BAND_PULLS as i32 {
            return self.pop_playing(next_seq, starving);
        }
        self.state = State::Playing { next_seq, out_of_band: 0, starving };
        if headroom > upper || (self.settling && headroom >= lower + FRAME_US) {
            self.stats.dropped_for_delay += 1;
            self.state = State::Playing { next_seq: next_seq + 1, out_of_band: 0, starving };
            let skipped = self.packets.remove(&next_seq).map(|(payload, _)| payload);
            return match self.pop_playing(next_seq + 1, starving) {
                Playout::Packet { payload, .. } => Playout::Packet { payload, skipped },
                other => other,
            };
        }
        // A pause, less than a frame above where it needs to be.
        self.stats.shortened_for_delay += 1;
        match self.pop_playing(next_seq, starving) {
            Playout::Packet { payload, .. } => Playout::Shortened { payload },
            other => other,
        }
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
            self.lossy_pulls = LOSSY_FLOOR_PULLS;
            Playout::Fec { next_payload: next.clone() }
        } else {
            self.stats.concealed += 1;
            // A gap before packets that did come is a loss; an empty
            // buffer is as likely a sender gone quiet (or the stream's end).
            if !self.packets.is_empty() {
                self.lossy_pulls = LOSSY_FLOOR_PULLS;
            }
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
