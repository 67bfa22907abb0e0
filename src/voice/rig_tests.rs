//! Real cpal devices on the virtual PulseAudio rig of
//! ../shared/voice-rig.md (ignored: it needs that rig). The caller's
//! microphone is `micA`, the callee's speaker `spkB`; `paplay` speaks the
//! test sentence into `mouthA` while `parecord` records `room.monitor`,
//! whose left channel is the mouth and right the ear, on one clock, so
//! their cross-correlation is the mouth-to-ear delay through both devices.
//!
//!     PULSE_SOURCE=micA PULSE_SINK=spkB cargo test --lib \
//!       voice::rig_tests -- --ignored --nocapture

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::audio::device::{DeviceChoice, DeviceSink, DeviceSource};
use super::audio::{Discard, Silence};
use super::crypto::{LocalKey, Role};
use super::driver::{Pacing, VoiceCall};
use super::pipeline_tests::{SPEECH, delay_samples, pesq_wb};
use super::{VoiceConfig, VoiceSession};

#[test]
#[ignore = "needs the PulseAudio rig of voice-rig.md"]
fn mouth_to_ear_through_real_devices() {
    let (caller_key, callee_key) = (LocalKey::generate(), LocalKey::generate());
    let (caller_public, callee_public) = (caller_key.public(), callee_key.public());
    let now = Instant::now();
    let caller = caller_key.agree(&callee_public, Role::Caller, "rig").unwrap();
    let callee = callee_key.agree(&caller_public, Role::Callee, "rig").unwrap();
    let caller = VoiceSession::new(caller, VoiceConfig::default(), now).unwrap();
    let callee = VoiceSession::new(callee, VoiceConfig::default(), now).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("room.raw");
    let mut recorder = Command::new("parecord")
        .args(["--device=room.monitor", "--channels=2", "--rate=48000", "--format=s16le", "--raw"])
        .arg(&raw)
        .spawn()
        .unwrap();
    let microphone = DeviceSource::open(&DeviceChoice::SystemDefault).unwrap();
    let speaker = DeviceSink::open(&DeviceChoice::SystemDefault).unwrap();
    let callee_call = VoiceCall::start(
        callee,
        (Box::new(Silence), Pacing::Clock),
        (Box::new(speaker), Pacing::Device),
        |_| {},
    );
    let inbox = callee_call.inbox();
    let caller_call = VoiceCall::start(
        caller,
        (Box::new(microphone), Pacing::Device),
        (Box::new(Discard), Pacing::Clock),
        move |packet| {
            inbox.deliver(packet);
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let status =
        Command::new("paplay").args(["--device=mouthA", SPEECH]).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_secs(1));
    let quality = callee_call.control().quality();
    let errors = [caller_call.stop(), callee_call.stop()];
    recorder.kill().unwrap();
    recorder.wait().unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let (mouth, ear): (Vec<i16>, Vec<i16>) = samples.chunks_exact(2).map(|lr| (lr[0], lr[1])).unzip();
    let delay = delay_samples(&mouth, &ear, 48_000 / 2);
    let score = pesq_wb(&mouth, &ear, delay);
    eprintln!(
        "rig: mouth-to-ear {:.1} ms, PESQ-WB {score:.3}, {} s recorded, {quality:?}, errors {errors:?}",
        delay as f64 / 48.0,
        mouth.len() / 48_000
    );
    assert!(errors.iter().flatten().all(|e| *e == super::audio::AudioError::Stalled), "{errors:?}");
    assert!(delay < 48_000 / 2, "the speech came through");
}
