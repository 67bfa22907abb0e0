//! The call driver's own rules, through a real server's relay with files
//! and generators for audio: a microphone that fails goes on as silence
//! and its error comes back from `stop`, one that stalls is retried (not
//! given up) while one that keeps stalling is given up, the speaker's
//! underruns and the microphone's overruns reach the quality line, and a frame is taken from the jitter
//! buffer only once the speaker wants it. Then the
//! driver with real cpal devices on the PulseAudio rig (ignored: it needs
//! the rig of ../shared/voice-rig.md):
//!
//!     PULSE_SOURCE=micA PULSE_SINK=spkB cargo test --test sdk \
//!       voice_driver::mouth_to_ear_through_real_devices -- --ignored --nocapture

use crate::support::*;
use crate::voice::{MediaCall, media_call};
use softphone_core::relay_link::LinkOptions;
use softphone_core::voice::audio::wav::WavSink;
use softphone_core::voice::audio::{AudioError, AudioSink, AudioSource, Discard, Silence, Tone};
use softphone_core::voice::codec::{FRAME_SAMPLES, Frame};
use softphone_core::voice::level::LevelMeter;
use softphone_core::voice::{AudioEnds, CallStats, VoiceCall, VoiceConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A source that fails at once, as an unplugged microphone.
struct Unplugged;

impl AudioSource for Unplugged {
    fn read_frame(&mut self, _: &mut Frame) -> Result<(), AudioError> {
        Err(AudioError::Device("unplugged".into()))
    }
}

/// A microphone that stalls (a second without a frame, as a sound server
/// starting slowly) a few times, then delivers a tone.
struct SlowToStart {
    stalls: u32,
    tone: Tone,
}

impl AudioSource for SlowToStart {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        if self.stalls > 0 {
            self.stalls -= 1;
            return Err(AudioError::Stalled);
        }
        self.tone.read_frame(frame)
    }
}

/// A speaker that plays into a WAV file and says it ran dry once every
/// ten frames, as a sound card would when the playback thread wakes late.
struct RunsDry {
    wav: WavSink,
    /// Frames written so far (shared: the test reads it after the call).
    written: Arc<AtomicU64>,
}

impl AudioSink for RunsDry {
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        self.written.fetch_add(1, Ordering::Relaxed);
        self.wav.write_frame(frame)
    }

    fn underruns(&self) -> u64 {
        self.written.load(Ordering::Relaxed) / 10
    }
}

/// A microphone that says it lost a frame once every ten reads, as a sound
/// card would when the capture thread wakes late.
struct LosesFrames {
    tone: Tone,
    /// Frames read so far (shared: the test reads it after the call).
    read: Arc<AtomicU64>,
}

impl AudioSource for LosesFrames {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        self.read.fetch_add(1, Ordering::Relaxed);
        self.tone.read_frame(frame)
    }

    fn overruns(&self) -> u64 {
        self.read.load(Ordering::Relaxed) / 10
    }
}

/// Runs an accepted call for a second with these ends (alice's, bob's),
/// both clock-paced, and returns what each side's driver reported.
async fn call_for_a_second(
    alice: (Box<dyn AudioSource>, Box<dyn AudioSink>),
    bob: (Box<dyn AudioSource>, Box<dyn AudioSink>),
) -> (CallStats, CallStats) {
    let server = start_server(server_config()).await;
    let MediaCall { alice_keys, bob_keys, alice_link, bob_link, alice: _a, bob: _b, .. } =
        media_call(&server.url(), LinkOptions::default()).await;
    let config = VoiceConfig::default();
    let bob = VoiceCall::start(bob_keys, &bob_link, config, AudioEnds::clocked(bob.0, bob.1)).await.unwrap();
    let alice = VoiceCall::start(alice_keys, &alice_link, config, AudioEnds::clocked(alice.0, alice.1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bob = bob.stop().await;
    (alice.stop().await, bob)
}

/// The WAV file's last frame's RMS level, dBFS, and how many frames it holds.
fn last_frame_level(path: &std::path::Path) -> (f32, usize) {
    let samples: Vec<i16> =
        hound::WavReader::open(path).unwrap().into_samples().map(Result::unwrap).collect();
    assert!(samples.len() >= FRAME_SAMPLES, "{} samples", samples.len());
    let last: &Frame = samples[samples.len() - FRAME_SAMPLES..].try_into().unwrap();
    (LevelMeter::default().measure(last).rms_dbfs, samples.len() / FRAME_SAMPLES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_microphone_goes_on_as_silence_and_its_error_comes_back_from_stop() {
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let (alice, bob) = call_for_a_second(
        (Box::new(Tone::new(440.0, -12.0)), Box::new(Discard)),
        (Box::new(Unplugged), Box::new(WavSink::create(&heard).unwrap())),
    )
    .await;
    assert_eq!(bob.audio_errors, vec![AudioError::Device("unplugged".into())]);
    assert_eq!(alice.audio_errors, vec![]);
    assert!(alice.packets_received > 10, "bob went on sending (silence): {alice:?}");
    let (level, frames) = last_frame_level(&heard);
    assert!(frames >= 10, "{frames} frames");
    assert!(level > -25.0, "the tone came through to bob's file: {level} dBFS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_microphone_is_retried_not_replaced_by_silence() {
    let dir = tempfile::tempdir().unwrap();
    let heard = dir.path().join("heard.wav");
    let slow = SlowToStart { stalls: 2, tone: Tone::new(440.0, -12.0) };
    let (alice, _bob) = call_for_a_second(
        (Box::new(slow), Box::new(Discard)),
        (Box::new(Silence), Box::new(WavSink::create(&heard).unwrap())),
    )
    .await;
    assert_eq!(alice.audio_errors, vec![AudioError::Stalled], "noted once, not given up");
    let (level, _) = last_frame_level(&heard);
    assert!(level > -25.0, "the microphone's tone came through after its stalls: {level} dBFS");
}

/// A microphone that is gone without saying so: it only ever stalls.
struct AlwaysStalls {
    /// Reads so far (shared: the test reads it after the call).
    reads: Arc<AtomicU64>,
}

impl AudioSource for AlwaysStalls {
    fn read_frame(&mut self, _: &mut Frame) -> Result<(), AudioError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Err(AudioError::Stalled)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_keeps_stalling_is_given_up_after_three_stalls() {
    let reads = Arc::new(AtomicU64::new(0));
    let (alice, bob) = call_for_a_second(
        (Box::new(AlwaysStalls { reads: reads.clone() }), Box::new(Discard)),
        (Box::new(Silence), Box::new(Discard)),
    )
    .await;
    assert_eq!(reads.load(Ordering::Relaxed), 3, "retried twice, then replaced by silence");
    assert_eq!(alice.audio_errors, vec![AudioError::Stalled]);
    assert!(bob.packets_received > 20, "alice went on sending (silence) at 50 a second: {bob:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_speakers_underruns_reach_the_quality_line() {
    let dir = tempfile::tempdir().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let speaker =
        RunsDry { wav: WavSink::create(&dir.path().join("heard.wav")).unwrap(), written: written.clone() };
    let (alice, bob) = call_for_a_second(
        (Box::new(Tone::new(440.0, -12.0)), Box::new(Discard)),
        (Box::new(Silence), Box::new(speaker)),
    )
    .await;
    let frames = written.load(Ordering::Relaxed);
    assert!(frames >= 20, "{frames} frames played");
    assert_eq!(bob.quality.speaker_underruns, frames / 10, "the sink's count, as of its last frame");
    assert_eq!(alice.quality.speaker_underruns, 0, "a discard never runs dry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microphones_overruns_reach_the_quality_line() {
    let read = Arc::new(AtomicU64::new(0));
    let microphone = LosesFrames { tone: Tone::new(440.0, -12.0), read: read.clone() };
    let (alice, bob) =
        call_for_a_second((Box::new(microphone), Box::new(Discard)), (Box::new(Silence), Box::new(Discard)))
            .await;
    let frames = read.load(Ordering::Relaxed);
    assert!(frames >= 20, "{frames} frames captured");
    assert_eq!(alice.quality.microphone_overruns, frames / 10, "the source's count, as of its last frame");
    assert_eq!(bob.quality.microphone_overruns, 0, "silence never loses a frame");
}

/// A speaker that is slow to want its first frame: its first wait ends
/// only once the test says so, as a device whose stream starts late; it
/// keeps each written frame's level.
struct LateToStart {
    /// The test's word that the first wait may end.
    start: Receiver<()>,
    started: bool,
    /// RMS dBFS of each frame written (shared: the test reads it after the call).
    levels: Arc<Mutex<Vec<f32>>>,
}

impl AudioSink for LateToStart {
    fn wait_for_room(&mut self) -> Result<(), AudioError> {
        if !self.started {
            self.started = true;
            let _ = self.start.recv_timeout(Duration::from_secs(10));
        }
        Ok(())
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        self.levels.lock().unwrap().push(LevelMeter::default().measure(frame).rms_dbfs);
        Ok(())
    }
}

/// The playback thread waits for the speaker before it takes a frame from
/// the jitter buffer, so the frame played is the one decided at that
/// moment: had it taken the frame first (as it once did), the frame would
/// have been decided before the wait, with nothing received yet, and
/// played as silence after it (on a device, each frame waited a frame's
/// time decoded: 20 ms of mouth-to-ear).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_is_taken_from_the_jitter_buffer_only_once_the_speaker_wants_it() {
    let server = start_server(server_config()).await;
    let MediaCall { alice_keys, bob_keys, alice_link, bob_link, alice: _a, bob: _b, .. } =
        media_call(&server.url(), LinkOptions::default()).await;
    let (start, start_rx) = channel();
    let levels = Arc::new(Mutex::new(Vec::new()));
    let speaker = LateToStart { start: start_rx, started: false, levels: levels.clone() };
    let config = VoiceConfig::default();
    let bob = AudioEnds::clocked(Box::new(Silence), Box::new(speaker));
    let bob = VoiceCall::start(bob_keys, &bob_link, config, bob).await.unwrap();
    let alice = AudioEnds::clocked(Box::new(Tone::new(440.0, -12.0)), Box::new(Discard));
    let alice = VoiceCall::start(alice_keys, &alice_link, config, alice).await.unwrap();
    // Half a second of alice's tone reaches bob while his speaker is not
    // yet asking for anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    start.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (bob, _alice) = (bob.stop().await, alice.stop().await);
    assert!(bob.packets_received > 20, "{bob:?}");
    let levels = levels.lock().unwrap();
    assert!(levels.len() >= 5, "{levels:?}");
    assert!(
        levels[0] > -25.0,
        "the first frame played carries the tone received during the wait: {levels:?}"
    );
}
