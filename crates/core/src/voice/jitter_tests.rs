//! The jitter buffer driven with explicit times: no clock, no sleeping.

use super::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

/// A buffer and the instant its times count from.
struct Sim {
    epoch: Instant,
    buffer: JitterBuffer,
}

impl Sim {
    fn new() -> Sim {
        let epoch = Instant::now();
        Sim { epoch, buffer: JitterBuffer::new(epoch) }
    }
    fn at(&self, micros: i64) -> Instant {
        self.epoch + Duration::from_micros(micros as u64)
    }
    fn push(&mut self, seq: u32, arrival_us: i64) {
        self.push_sized(seq, arrival_us, 4);
    }
    /// Pushes a packet of `size` bytes (at least 4): the sequence number, then zeros.
    fn push_sized(&mut self, seq: u32, arrival_us: i64, size: usize) {
        let now = self.at(arrival_us);
        let mut payload = seq.to_be_bytes().to_vec();
        payload.resize(size.max(4), 0);
        self.buffer.push(seq, payload, now);
    }
    fn pop(&mut self, now_us: i64) -> Playout {
        let now = self.at(now_us);
        self.buffer.pop(now)
    }
}

/// The sequence number a playout decision is about, if it names one.
fn seq_of(playout: &Playout) -> Option<u32> {
    match playout {
        Playout::Packet { payload, .. } | Playout::Shortened { payload } => {
            Some(u32::from_be_bytes(payload[..4].try_into().unwrap()))
        }
        Playout::Fec { next_payload } => Some(u32::from_be_bytes(next_payload[..4].try_into().unwrap()) - 1),
        _ => None,
    }
}

/// Sends `frames` packets, the k-th sent at `(k+1) * period_us` and
/// delayed by `delay(k)`, and pulls every `pull_us` at `phase_us`;
/// returns what each pull played.
fn run(
    sim: &mut Sim,
    frames: u32,
    period_us: i64,
    pull_us: i64,
    mut delay: impl FnMut(u32) -> Option<i64>,
) -> Vec<Playout> {
    let mut arrivals: Vec<(i64, u32)> =
        (0..frames).filter_map(|k| delay(k).map(|d| ((i64::from(k) + 1) * period_us + d, k))).collect();
    arrivals.sort();
    let end = i64::from(frames) * period_us + 200_000;
    let mut out = Vec::new();
    let mut next = arrivals.into_iter().peekable();
    let mut pull = pull_us;
    while pull < end {
        while let Some(&(at, seq)) = next.peek() {
            if at > pull {
                break;
            }
            sim.push(seq, at);
            next.next();
        }
        out.push(sim.pop(pull));
        pull += pull_us;
    }
    out
}

#[test]
fn silence_until_the_first_packet_has_its_headroom_then_frames_in_order() {
    let mut sim = Sim::new();
    let out = run(&mut sim, 50, FRAME_US, FRAME_US, |_| Some(0));
    let first = out.iter().position(|p| *p != Playout::Silence).unwrap();
    // Packet 0 arrives at 20 ms; playout starts once it has waited 30 ms
    // (target 40 ms minus the band's lower edge) on the 20 ms pull grid.
    assert_eq!(first, 2, "{out:?}");
    let seqs: Vec<_> = out.iter().filter_map(seq_of).collect();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    let stats = sim.buffer.stats();
    assert_eq!((stats.played, stats.recovered_by_fec, stats.late), (50, 0, 0), "{stats:?}");
    // Concealment only after the last packet: the stream ended.
    assert!(out[first..first + 50].iter().all(|p| matches!(p, Playout::Packet { .. })));
    assert_eq!(stats.target_us, MIN_TARGET_US);
}

#[test]
fn reordered_packets_play_in_sequence_order() {
    let mut sim = Sim::new();
    // Odd packets overtake even ones by 15 ms.
    let out = run(&mut sim, 40, FRAME_US, FRAME_US, |k| Some(if k % 2 == 0 { 25_000 } else { 10_000 }));
    let seqs: Vec<_> = out.iter().filter_map(seq_of).collect();
    assert_eq!(seqs, (0..40).collect::<Vec<_>>());
    assert_eq!(sim.buffer.stats().late, 0);
}

#[test]
fn a_lost_frame_is_recovered_from_the_next_packet_else_concealed() {
    let mut sim = Sim::new();
    let lost = [10, 20, 21];
    let out = run(&mut sim, 40, FRAME_US, FRAME_US, |k| (!lost.contains(&k)).then_some(0));
    // One pull plays one frame (no drop or insert here), so frame `seq`
    // is decided `seq - 9` pulls after the one that played packet 9.
    let ninth = out.iter().position(|p| seq_of(p) == Some(9)).unwrap();
    let decision = |seq: u32| out[ninth + (seq - 9) as usize].clone();
    assert!(matches!(decision(10), Playout::Fec { .. }));
    assert_eq!(decision(20), Playout::Conceal);
    assert!(matches!(decision(21), Playout::Fec { .. }));
    let stats = sim.buffer.stats();
    assert_eq!((stats.recovered_by_fec, stats.played), (2, 37));
}

#[test]
fn a_packet_after_its_frame_played_is_late_and_dropped() {
    let mut sim = Sim::new();
    let out = run(&mut sim, 30, FRAME_US, FRAME_US, |k| Some(if k == 15 { 200_000 } else { 0 }));
    assert_eq!(sim.buffer.stats().late, 1);
    assert_eq!(out.iter().filter(|p| seq_of(p) == Some(15)).count(), 1, "recovered by FEC once");
}

#[test]
fn the_target_follows_jitter_within_its_bounds_and_little_is_late() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut sim = Sim::new();
    run(&mut sim, 1500, FRAME_US, FRAME_US, |_| Some(rng.random_range(0..=40_000)));
    let stats = sim.buffer.stats();
    assert!((50_000..=MAX_TARGET_US).contains(&stats.target_us), "{stats:?}");
    assert!(stats.late <= 15, "{stats:?}");

    let mut sim = Sim::new();
    run(&mut sim, 500, FRAME_US, FRAME_US, |_| Some(rng.random_range(0..=300_000)));
    assert_eq!(sim.buffer.stats().target_us, MAX_TARGET_US);
}

#[test]
fn a_faster_sender_clock_is_absorbed_by_dropping_frames() {
    let mut sim = Sim::new();
    // The sender's sound card runs 0.5 % fast: a frame every 19.9 ms.
    let out = run(&mut sim, 3000, 19_900, FRAME_US, |_| Some(0));
    let stats = sim.buffer.stats();
    // 3000 frames gain 300 ms: about 15 frames must go.
    assert!((13..=17).contains(&stats.dropped_for_delay), "{stats:?}");
    assert_eq!(stats.inserted_for_delay, 0);
    let playing: Vec<_> = out.iter().skip_while(|p| **p == Playout::Silence).take(2900).collect();
    assert!(playing.iter().all(|p| matches!(p, Playout::Packet { .. })));
}

#[test]
fn a_slower_sender_clock_is_absorbed_by_inserting_frames() {
    let mut sim = Sim::new();
    let out = run(&mut sim, 3000, 20_100, FRAME_US, |_| Some(0));
    let stats = sim.buffer.stats();
    assert!((13..=17).contains(&stats.inserted_for_delay), "{stats:?}");
    assert_eq!(stats.dropped_for_delay, 0);
    // Every frame still plays (none is recovered or lost).
    assert_eq!(out.iter().filter_map(seq_of).count(), 3000);
    assert_eq!(stats.recovered_by_fec, 0);
}

#[test]
fn a_flood_cannot_grow_the_buffer_past_its_capacity() {
    let mut sim = Sim::new();
    for seq in 0..1000 {
        sim.push(seq, 0);
    }
    assert_eq!(sim.buffer.packets.len(), CAPACITY);
}

#[test]
fn when_the_stream_stops_playout_goes_quiet_and_restarts_with_it() {
    let mut sim = Sim::new();
    run(&mut sim, 20, FRAME_US, FRAME_US, |_| Some(0));
    let tail: Vec<_> = (0..GIVE_UP_FRAMES).map(|k| sim.pop(1_000_000 + i64::from(k) * FRAME_US)).collect();
    assert_eq!(tail.last(), Some(&Playout::Silence), "{tail:?}");
    // The sender comes back much later (a stream restart far ahead).
    let mut played = Vec::new();
    for k in 0..20 {
        let at = 20_000_000 + k * FRAME_US;
        if k < 10 {
            sim.push(500 + k as u32, at);
        }
        played.push(sim.pop(at + 10_000));
    }
    assert!(played.iter().filter_map(seq_of).eq(500..510));
}

/// Opus's packet sizes at 40 kbit/s: speech, and the silence of a pause.
const SPEECH_BYTES: usize = 100;
const PAUSE_BYTES: usize = 23;

/// One packet every 20 ms, the k-th sent at `(k+1) * 20 ms`, delayed by
/// `delay(k)` and `size(k)` bytes long; a pull every 20 ms, just after the
/// packets due. Returns each pull's decision and the target after it.
fn talk(
    sim: &mut Sim,
    frames: u32,
    mut delay: impl FnMut(u32) -> Option<i64>,
    size: impl Fn(u32) -> usize,
) -> Vec<(Playout, i64)> {
    let mut arrivals: Vec<(i64, u32)> =
        (0..frames).filter_map(|k| delay(k).map(|d| ((i64::from(k) + 1) * FRAME_US + d, k))).collect();
    arrivals.sort();
    let mut next = arrivals.into_iter().peekable();
    (1..=i64::from(frames) + 10)
        .map(|pull| {
            let at = pull * FRAME_US;
            while let Some((arrival, seq)) = next.next_if(|&(arrival, _)| arrival <= at) {
                sim.push_sized(seq, arrival, size(seq));
            }
            (sim.pop(at), sim.buffer.stats().target_us)
        })
        .collect()
}

/// The frames a drop skipped: (pull, skipped sequence number).
fn skipped(out: &[(Playout, i64)]) -> Vec<(usize, u32)> {
    let seq = |payload: &[u8]| u32::from_be_bytes(payload[..4].try_into().unwrap());
    out.iter()
        .enumerate()
        .filter_map(|(pull, (p, _))| match p {
            Playout::Packet { skipped: Some(skipped), .. } => Some((pull, seq(skipped))),
            _ => None,
        })
        .collect()
}

#[test]
fn on_a_clean_path_the_floor_relaxes_after_two_seconds_by_dropping_a_frame_in_a_pause() {
    let mut sim = Sim::new();
    // Speech with a pause (frames 150-164, as between two sentences).
    let pause = 150..165;
    let size = |k: u32| if pause.contains(&k) { PAUSE_BYTES } else { SPEECH_BYTES };
    let out = talk(&mut sim, 400, |_| Some(0), size);
    let targets: Vec<i64> = out.iter().map(|(_, target)| *target).collect();
    // 40 ms until the window holds two seconds of packets, then 25.
    assert!(targets[..95].iter().all(|&t| t == MIN_TARGET_US), "{:?}", &targets[..95]);
    assert!(targets[105..].iter().all(|&t| t == CLEAN_MIN_TARGET_US), "{:?}", &targets[105..]);
    // One frame goes, in the pause, three pulls into it: not before
    // (speech), and one is enough (the headroom is where a start at 25 ms
    // would have put it).
    let drops = skipped(&out);
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert!(pause.contains(&drops[0].1), "{drops:?}");
    let stats = sim.buffer.stats();
    assert_eq!((stats.dropped_for_delay, stats.inserted_for_delay, stats.late), (1, 0, 0), "{stats:?}");
    // Every other frame plays, in order.
    let played: Vec<u32> = out.iter().filter_map(|(p, _)| seq_of(p)).collect();
    assert_eq!(played, (0..400).filter(|&k| k != drops[0].1).collect::<Vec<_>>());
    // Packet k arrives at (k+1) × 20 ms, when pull k is made: it plays two
    // pulls later (40 ms of headroom) before the drop, one (20 ms) after.
    let pull_of = |seq: u32| out.iter().position(|(p, _)| seq_of(p) == Some(seq)).unwrap();
    assert_eq!((pull_of(100), pull_of(300)), (102, 301));
}

#[test]
fn without_a_pause_the_relaxed_floor_drops_nothing() {
    let mut sim = Sim::new();
    // A steady tone: every packet the same size, no pause to drop a frame in.
    let out = talk(&mut sim, 600, |_| Some(0), |_| SPEECH_BYTES);
    assert_eq!(out.last().unwrap().1, CLEAN_MIN_TARGET_US);
    let stats = sim.buffer.stats();
    assert_eq!((stats.played, stats.dropped_for_delay, stats.inserted_for_delay), (600, 0, 0), "{stats:?}");
}

#[test]
fn a_loss_puts_the_floor_back_at_forty_ms_for_five_seconds() {
    let mut sim = Sim::new();
    let out = talk(&mut sim, 700, |k| (k != 200).then_some(0), |_| SPEECH_BYTES);
    let targets: Vec<i64> = out.iter().map(|(_, target)| *target).collect();
    // Frame 200 is decided at pull 202 (two frames of headroom, no pause
    // to drop one in): recovered from packet 201's FEC.
    assert!(matches!(out[202].0, Playout::Fec { .. }), "{:?}", out[202]);
    assert!(targets[110..=202].iter().all(|&t| t == CLEAN_MIN_TARGET_US), "{:?}", &targets[110..=202]);
    let raised = targets[203..].iter().take_while(|&&t| t == MIN_TARGET_US).count();
    // The pull that found the loss and the ones after it: five seconds.
    assert_eq!(raised + 1, LOSSY_FLOOR_PULLS as usize, "held for five seconds, then back");
    assert!(targets[203 + raised..].iter().all(|&t| t == CLEAN_MIN_TARGET_US));
    // No pause to drop a frame in when it relaxed again: all but frame 200 played.
    assert_eq!(sim.buffer.stats().played, 699);
}

#[test]
fn late_packets_raise_the_target_so_a_slower_path_is_followed_without_a_restart() {
    let mut sim = Sim::new();
    // From frame 300 on, every packet takes 60 ms longer (a route change):
    // more than the headroom, so at first each comes after its frame played.
    let step = 300;
    let out = talk(&mut sim, 700, |k| Some(if k < step { 0 } else { 60_000 }), |_| SPEECH_BYTES);
    let started = out.iter().position(|(p, _)| *p != Playout::Silence).unwrap();
    let silent = out[started..690].iter().filter(|(p, _)| *p == Playout::Silence).count();
    assert_eq!(silent, 0, "playout never stopped to start again");
    let stats = sim.buffer.stats();
    // The late packets' offsets raised the target: the headroom grew by
    // inserted frames until packets came in time again.
    assert!(stats.late >= 1 && stats.late <= 3, "{stats:?}");
    assert!(stats.inserted_for_delay >= 3, "{stats:?}");
    assert!(stats.concealed <= 10, "{stats:?}");
    let last: Vec<u32> = out[600..690].iter().filter_map(|(p, _)| seq_of(p)).collect();
    assert_eq!(last.len(), 90, "every frame plays again: {last:?}");
}

/// Like `talk` on a clean path, with pull `p` made at `pull_at(p)` and
/// the receiver's half frames: a shortened frame plays in 10 ms, so until
/// the next one the receiver asks for the sound that starts 10 ms after
/// the pull (`VoiceReceiver::next_playback_frame`). Returns each decision
/// with the headroom it was made at.
fn talk_shortening(
    sim: &mut Sim,
    frames: u32,
    pull_at: impl Fn(i64) -> i64,
    size: impl Fn(u32) -> usize,
) -> Vec<(Playout, i64)> {
    let mut next = (0..frames).map(|k| ((i64::from(k) + 1) * FRAME_US, k)).peekable();
    let (mut out, mut pending_us) = (Vec::new(), 0);
    for pull in 1..=i64::from(frames) {
        let at = pull_at(pull);
        while let Some((arrival, seq)) = next.next_if(|&(arrival, _)| arrival <= at) {
            sim.push_sized(seq, arrival, size(seq));
        }
        while pending_us < FRAME_US {
            let playout = sim.pop(at + pending_us);
            // Packet k arrives at (k + 1) × 20 ms: the fastest offset is 20 ms.
            let headroom =
                seq_of(&playout).map_or(0, |seq| at + pending_us - i64::from(seq) * FRAME_US - FRAME_US);
            pending_us += if matches!(playout, Playout::Shortened { .. }) { HALF_FRAME_US } else { FRAME_US };
            out.push((playout, headroom));
        }
        pending_us -= FRAME_US;
    }
    out
}

#[test]
fn a_pause_brings_the_headroom_within_half_a_frame_of_the_least_it_needs() {
    let mut sim = Sim::new();
    // Pulls 10 ms after the packets due, as a speaker's clock may be: the
    // buffer starts at 30 ms of headroom, and dropping a whole frame when
    // the floor relaxes to 25 would leave 10, under the 15 a start needs.
    // Later (pull 250) the speaker runs dry for 15 ms: its pulls come that
    // much later, and the headroom is 15 ms more than it was.
    let pull_at = |pull: i64| pull * FRAME_US + 10_000 + if pull >= 250 { 15_000 } else { 0 };
    let pauses = [150..165, 300..315];
    let size = |k: u32| if pauses.iter().any(|p| p.contains(&k)) { PAUSE_BYTES } else { SPEECH_BYTES };
    let out = talk_shortening(&mut sim, 400, pull_at, size);
    let headroom_of = |seq: u32| out.iter().find(|(p, _)| seq_of(p) == Some(seq)).unwrap().1;
    let shortened: Vec<u32> = out
        .iter()
        .filter(|(p, _)| matches!(p, Playout::Shortened { .. }))
        .filter_map(|(p, _)| seq_of(p))
        .collect();
    // One frame of each pause plays in 10 ms, three pulls into it.
    assert_eq!(shortened, [152, 302]);
    // After the first, 20 ms of headroom, not 30: within half a frame
    // of the 15 a start needs. After the slip (35 ms), 25: the band's
    // upper edge for pauses is the target (25 ms) + 5 ms.
    assert_eq!(
        (headroom_of(100), headroom_of(200), headroom_of(280), headroom_of(390)),
        (30_000, 20_000, 35_000, 25_000)
    );
    let stats = sim.buffer.stats();
    assert_eq!(
        (stats.shortened_for_delay, stats.dropped_for_delay, stats.inserted_for_delay),
        (2, 0, 0),
        "{stats:?}"
    );
    // Every frame plays, in order.
    let played: Vec<u32> = out.iter().filter_map(|(p, _)| seq_of(p)).collect();
    assert_eq!(played, (0..played.len() as u32).collect::<Vec<_>>());
    assert!(played.len() >= 390, "{}", played.len());
}
