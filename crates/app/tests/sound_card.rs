//! The desktop app's sound card (cpal devices) in a real call through a
//! real server's relay, measured on a virtual PulseAudio rig (ignored
//! elsewhere). Its own test binary: it shares the SDK tests' call set-up
//! and scores (crates/core/tests/shared/), which the app's tests do not use.

// The SDK tests use the rest of these helpers.
#[path = "../../core/tests/shared/servers.rs"]
mod servers;
#[allow(dead_code)]
#[path = "../../core/tests/sdk/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "../../core/tests/shared/voice_calls.rs"]
mod voice_calls;

use softphone_app::audio::device::{DeviceChoice, DeviceSink, DeviceSource};
use softphone_core::relay_link::LinkOptions;
use softphone_core::voice::audio::{AudioError, Discard, Silence};
use softphone_core::voice::{AudioEnds, Pacing, VoiceCall, VoiceConfig};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;
use voice_calls::{SPEECH, best_lag, media_call, pesq_wb};

/// Real cpal devices on the virtual PulseAudio rig of ../shared/voice-rig.md,
/// through a real server's relay over UDP, as the app runs them: alice's
/// microphone is `micA` (paced by the device), bob's speaker `spkB` (paced
/// by the device); `paplay` speaks the test sentence into `mouthA` while
/// `parecord` records `room.monitor`, whose left channel is the mouth and
/// right the ear, on one clock, so their cross-correlation is the
/// mouth-to-ear delay through both devices and the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the PulseAudio rig of voice-rig.md"]
async fn mouth_to_ear_through_real_devices() {
    let server = start_server(server_config()).await;
    let call = media_call(&server.url(), LinkOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("room.raw");
    let mut recorder = Command::new("parecord")
        .args(["--device=room.monitor", "--channels=2", "--rate=48000", "--format=s16le", "--raw"])
        .arg(&raw)
        .spawn()
        .unwrap();
    let microphone = DeviceSource::open(&DeviceChoice::SystemDefault).unwrap();
    let speaker = DeviceSink::open(&DeviceChoice::SystemDefault).unwrap();
    let config = VoiceConfig::default();
    let bob_ends = AudioEnds {
        source: Box::new(Silence),
        capture: Pacing::Clock,
        sink: Box::new(speaker),
        playback: Pacing::Device,
        // The devices' path as it measures it, uncleaned.
        processing: softphone_core::voice::ProcessingConfig::OFF,
    };
    let bob = VoiceCall::start(call.bob_keys, &call.bob_link, config, bob_ends).await.unwrap();
    let alice_ends = AudioEnds {
        source: Box::new(microphone),
        capture: Pacing::Device,
        sink: Box::new(Discard),
        playback: Pacing::Clock,
        processing: softphone_core::voice::ProcessingConfig::OFF,
    };
    let alice = VoiceCall::start(call.alice_keys, &call.alice_link, config, alice_ends).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spoken = tokio::task::spawn_blocking(|| {
        Command::new("paplay").args(["--device=mouthA", SPEECH]).stdout(Stdio::null()).status().unwrap()
    });
    assert!(spoken.await.unwrap().success());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (alice, bob) = (alice.stop().await, bob.stop().await);
    recorder.kill().unwrap();
    recorder.wait().unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let (mouth, ear): (Vec<i16>, Vec<i16>) = samples.chunks_exact(2).map(|lr| (lr[0], lr[1])).unzip();
    let (delay, correlation) = best_lag(&mouth, &ear, 48_000 / 2);
    let score = pesq_wb(&mouth, &ear, delay);
    eprintln!(
        "rig: mouth-to-ear {:.1} ms, PESQ-WB {score:.3}, correlation {correlation:.2}, {} s recorded, \
         {:?}, speaker underruns {}, errors {:?} {:?}",
        delay as f64 / 48.0,
        mouth.len() / 48_000,
        alice.transport,
        bob.quality.speaker_underruns,
        alice.audio_errors,
        bob.audio_errors
    );
    let errors = alice.audio_errors.iter().chain(&bob.audio_errors);
    assert!(errors.clone().all(|e| *e == AudioError::Stalled), "{:?}", errors.collect::<Vec<_>>());
    assert!(delay < 48_000 / 2, "the speech came through");
}
