//! Two sessions of one call talking in-process, with explicit times.

use super::*;
use crate::protocol::Role;
use crate::voice::codec::{FRAME_SAMPLES, SAMPLE_RATE};
use crate::voice::crypto::LocalKey;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Duration;

/// Caller and callee sessions sharing one epoch.
fn pair(seed: u64) -> (VoiceSession, VoiceSession, Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (caller, callee) = (LocalKey::from_rng(&mut rng), LocalKey::from_rng(&mut rng));
    let (caller_public, callee_public) = (caller.public(), callee.public());
    let epoch = Instant::now();
    let config = VoiceConfig::default();
    let a = caller
        .agree(&callee_public, Role::Caller, "call", crate::voice::safety::Exchange::Uncommitted)
        .unwrap();
    let b = callee
        .agree(&caller_public, Role::Callee, "call", crate::voice::safety::Exchange::Uncommitted)
        .unwrap();
    (VoiceSession::new(a, config, epoch).unwrap(), VoiceSession::new(b, config, epoch).unwrap(), epoch)
}

fn tone(index: u64) -> Frame {
    std::array::from_fn(|i| {
        let t = (index as usize * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
        (6000.0 * (2.0 * std::f32::consts::PI * 300.0 * t).sin()) as i16
    })
}

fn rms(frame: &Frame) -> f64 {
    (frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / FRAME_SAMPLES as f64).sqrt()
}

/// Runs `frames` ticks of 20 ms: both sides capture a tone, every packet
/// crosses after `one_way` unless `drop(seq-ish counter)` says so, and
/// both sides play. Returns what the callee played.
fn talk(
    a: &mut VoiceSession,
    b: &mut VoiceSession,
    epoch: Instant,
    frames: u64,
    one_way: Duration,
    mut lose: impl FnMut() -> bool,
) -> Vec<Frame> {
    let mut in_flight: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
    let mut heard = Vec::new();
    for k in 0..frames {
        let now = epoch + Duration::from_millis(20 * (k + 1));
        a.on_captured_frame(&tone(k), now).unwrap();
        b.on_captured_frame(&tone(k), now).unwrap();
        while let Some(p) = a.poll_transmit() {
            if !lose() {
                in_flight.push((now + one_way, true, p));
            }
        }
        while let Some(p) = b.poll_transmit() {
            if !lose() {
                in_flight.push((now + one_way, false, p));
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = in_flight.drain(..).partition(|(at, ..)| *at <= now);
        in_flight = later;
        for (at, to_b, packet) in due {
            let target = if to_b { &mut *b } else { &mut *a };
            target.on_packet(&packet, at).unwrap();
        }
        a.next_playback_frame(now);
        heard.push(b.next_playback_frame(now));
    }
    heard
}

#[test]
fn the_callee_hears_the_caller_and_the_quality_line_is_clean() {
    let (mut a, mut b, epoch) = pair(1);
    assert_eq!(a.safety_code(), b.safety_code());
    let heard = talk(&mut a, &mut b, epoch, 150, Duration::ZERO, || false);
    assert!(heard[..2].iter().all(|f| rms(f) == 0.0), "silence before the buffer fills");
    assert!(heard[100..].iter().all(|f| rms(f) > 1000.0));
    let quality = b.stats();
    assert_eq!((quality.loss_pct, quality.rejected), (0.0, RejectCounts::default()));
    // Each packet waits two frames (the 40 ms start; a steady tone has no
    // pause in which the buffer could relax), and nothing was corrected.
    assert_eq!((quality.headroom_ms, quality.playout), (40.0, PlayoutCounts::default()));
    assert!(b.control().speaker_level().rms_dbfs > -20.0);
    assert!(a.control().mic_level().rms_dbfs > -20.0);
}

#[test]
fn loss_and_round_trip_are_measured_and_reported_back_to_size_fec() {
    let (mut a, mut b, epoch) = pair(2);
    let mut rng = StdRng::seed_from_u64(3);
    let lose = move || rand::RngExt::random_bool(&mut rng, 0.10);
    talk(&mut a, &mut b, epoch, 1000, Duration::from_millis(40), lose);
    let (qa, qb) = (a.stats(), b.stats());
    for quality in [qa, qb] {
        assert!((4.0..=18.0).contains(&quality.loss_pct), "{quality:?}");
        let remote = quality.remote_loss_pct.unwrap();
        assert!((4.0..=18.0).contains(&remote), "{quality:?}");
        // 40 ms each way, plus up to one 20 ms tick of holding on each side.
        let rtt = quality.rtt_ms.unwrap();
        assert!((80.0..=120.0).contains(&rtt), "{quality:?}");
    }
    let (sender, _) = a.split();
    assert!((6..=20).contains(&sender.expected_loss()), "{}", sender.expected_loss());
}

#[test]
fn forged_and_replayed_packets_are_counted_and_do_not_play() {
    let (mut a, mut b, epoch) = pair(4);
    a.on_captured_frame(&tone(0), epoch).unwrap();
    let packet = a.poll_transmit().unwrap();
    let mut forged = packet.clone();
    forged[12] ^= 0x40;
    assert_eq!(b.on_packet(&forged, epoch), Err(OpenError::Forged));
    b.on_packet(&packet, epoch).unwrap();
    assert_eq!(b.on_packet(&packet, epoch), Err(OpenError::Replayed(0)));
    assert!(b.on_packet(b"short", epoch).is_err());
    let rejected = b.stats().rejected;
    assert_eq!(rejected, RejectCounts { malformed: 1, forged: 1, replayed: 1, stale: 0 });
}

#[test]
fn mute_sends_silence_while_the_meter_still_shows_the_voice() {
    let (mut a, mut b, epoch) = pair(5);
    a.control().set_muted(true);
    let heard = talk(&mut a, &mut b, epoch, 60, Duration::ZERO, || false);
    assert!(heard.iter().all(|f| rms(f) < 50.0));
    assert!(a.control().mic_level().rms_dbfs > -20.0);
    assert!(a.control().is_muted());
}

#[test]
fn volume_scales_what_the_speaker_plays() {
    let (mut a, mut b, epoch) = pair(6);
    b.control().set_volume(0.0);
    let heard = talk(&mut a, &mut b, epoch, 60, Duration::ZERO, || false);
    assert!(heard.iter().all(|f| rms(f) == 0.0));
    b.control().set_volume(f32::NAN);
    assert_eq!(b.control().volume(), 1.0);
}

#[test]
fn a_stalled_transport_keeps_only_the_newest_packets() {
    let (mut a, _, epoch) = pair(7);
    for k in 0..20 {
        a.on_captured_frame(&tone(k), epoch).unwrap();
    }
    let (mut sender, _) = a.split();
    assert_eq!(sender.overflowed(), 15);
    let mut kept = 0;
    while sender.poll_transmit().is_some() {
        kept += 1;
    }
    assert_eq!(kept, 5);
}

#[test]
fn the_speakers_underruns_are_kept_even_when_the_sink_is_replaced() {
    let (_, callee, _) = pair(7);
    assert_eq!(callee.stats().speaker_underruns, 0);
    callee.note_speaker_underruns(4);
    assert_eq!(callee.stats().speaker_underruns, 4);
    // A failed device replaced by a discard counts from zero again.
    callee.note_speaker_underruns(0);
    assert_eq!(callee.stats().speaker_underruns, 4, "the line does not go back");
}

#[test]
fn the_microphones_overruns_are_kept_even_when_the_source_is_replaced() {
    let (caller, _, _) = pair(7);
    let (sender, _) = caller.split();
    let control = sender.control();
    assert_eq!(control.quality().microphone_overruns, 0);
    sender.note_microphone_overruns(7);
    assert_eq!(control.quality().microphone_overruns, 7);
    // A failed microphone replaced by silence counts from zero again.
    sender.note_microphone_overruns(0);
    assert_eq!(control.quality().microphone_overruns, 7, "the line does not go back");
}

#[test]
fn the_call_waiting_beeps_play_in_the_speakers_frames_while_set() {
    let (_a, mut b, epoch) = pair(9);
    let control = b.control();
    let peak = |frame: &Frame| frame.iter().map(|&s| i32::from(s).abs()).max().unwrap();
    let mut at = 0;
    let mut play = |b: &mut VoiceSession| {
        at += 20;
        b.next_playback_frame(epoch + Duration::from_millis(at))
    };
    // Nothing received: silence, until a second call waits.
    assert_eq!(peak(&play(&mut b)), 0);
    control.set_call_waiting(true);
    assert!(control.is_call_waiting());
    // The beep (-9.7 dBFS peak) is in the frame the speaker, and so the
    // echo canceller's reference, gets.
    assert!(peak(&play(&mut b)) > 8_000);
    control.set_call_waiting(false);
    // The beep under way plays out (300 ms), then silence.
    let rest: Vec<i32> = (0..20).map(|_| peak(&play(&mut b))).collect();
    assert!(rest[..13].iter().all(|&p| p > 8_000), "{rest:?}");
    assert!(rest[14..].iter().all(|&p| p == 0), "{rest:?}");
}
