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
        let now = self.at(arrival_us);
        self.buffer.push(seq, seq.to_be_bytes().to_vec(), now);
    }
    fn pop(&mut self, now_us: i64) -> Playout {
        let now = self.at(now_us);
        self.buffer.pop(now)
    }
}

/// The sequence number a playout decision is about, if it names one.
fn seq_of(playout: &Playout) -> Option<u32> {
    match playout {
        Playout::Packet { payload, .. } => Some(u32::from_be_bytes(payload[..4].try_into().unwrap())),
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
