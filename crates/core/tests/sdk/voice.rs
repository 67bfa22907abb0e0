//! Built-in voice end to end through a real server's relay, file-fed: the
//! SDK's media API (keys in invite and accept, a relay credential for each
//! side), the voice call driver over UDP and over the WebSocket fallback
//! (scored with wideband PESQ and cross-correlation for the delay), the
//! headless peer's `--audio-in`/`--audio-out` (a valid WAV after SIGTERM),
//! and the demo `echo` saying back what it heard a second later.
//!
//! The speech is `crates/core/tests/data/speech-harvard-22k.wav`: three Harvard
//! sentences made with `espeak-ng -v en-us -s 160` (docs/media.md).

use crate::peer::Peer;
use crate::support::*;
use serde_json::json;
use softphone_core::demo;
use softphone_core::relay_link::{LinkOptions, Transport};
use softphone_core::voice::audio::resample::resample_i16;
use softphone_core::voice::audio::wav::WavSource;
use softphone_core::voice::audio::{AudioError, AudioSink, AudioSource, Playback};
use softphone_core::voice::codec::{Frame, SAMPLE_RATE};
use softphone_core::voice::{AudioEnds, VoiceCall, VoiceConfig};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub(crate) use crate::voice_calls::{MediaCall, SPEECH, best_lag, media_call, pesq_wb};

/// The speech file as 48 kHz mono, the way a call sends it.
fn speech() -> Vec<i16> {
    WavSource::read_all(Path::new(SPEECH)).unwrap()
}

/// A source that notes when it gave its first frame.
struct Timed<S> {
    inner: S,
    first: Arc<OnceLock<Instant>>,
}

impl<S: AudioSource> AudioSource for Timed<S> {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        self.first.get_or_init(Instant::now);
        self.inner.read_frame(frame)
    }
}

/// A sink that keeps what it heard and notes when its first frame played.
#[derive(Clone, Default)]
struct Heard {
    samples: Arc<Mutex<Vec<i16>>>,
    first: Arc<OnceLock<Instant>>,
}

impl AudioSink for Heard {
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        self.first.get_or_init(Instant::now);
        self.samples.lock().unwrap().extend_from_slice(frame);
        Ok(())
    }
}

/// How alike `heard` is to `sent` around `lag`, robust to the jitter
/// buffer's adjustments (each shifts the rest by a frame): the median, over
/// the one-second windows of `sent` that hold speech, of the best
/// normalised correlation within 100 ms of `lag`, at 4 kHz.
fn windowed_similarity(sent: &[i16], heard: &[i16], lag: usize) -> f64 {
    let to_f64 = |s: &[i16]| s.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let (a, b) =
        (to_f64(&resample_i16(sent, SAMPLE_RATE, 4000)), to_f64(&resample_i16(heard, SAMPLE_RATE, 4000)));
    let (lag, window, reach) = (lag / 12, 4000, 400);
    let energy = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>();
    let mut scores: Vec<f64> = a
        .chunks_exact(window)
        .enumerate()
        .filter(|(_, w)| energy(w) / window as f64 > 300.0 * 300.0)
        .map(|(k, w)| {
            let centre = k * window + lag;
            (centre.saturating_sub(reach)..centre + reach)
                .filter_map(|start| b.get(start..start + window))
                .map(|h| {
                    w.iter().zip(h).map(|(p, q)| p * q).sum::<f64>() / (energy(w) * energy(h)).sqrt().max(1.0)
                })
                .fold(0.0, f64::max)
        })
        .collect();
    assert!(!scores.is_empty(), "no window of speech to compare");
    scores.sort_by(f64::total_cmp);
    scores[scores.len() / 2]
}

#[tokio::test]
async fn without_keys_a_call_has_no_media_key_on_either_side() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    let invitation = alice.create_local_invitation("bob").unwrap();
    invitation.send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    let ringing = bob.remote_invitation(&call_id).unwrap();
    assert_eq!(ringing.remote_media_key(), None);
    ringing.accept().await.unwrap();
    assert_eq!(ringing.relay(), None, "a plain accept does not ask for the credential");
}

/// What one relayed run of the speech measured.
struct Run {
    pesq: f32,
    mouth_to_ear_ms: f64,
    transport: Transport,
}

/// Alice says the speech file, bob listens, through the server's relay.
async fn relayed_speech(options: LinkOptions) -> Run {
    let _one_at_a_time = ONE_SPEECH_CALL_AT_A_TIME.lock().await;
    let server = start_server(server_config()).await;
    let call = media_call(&server.url(), options).await;
    let sent = speech();
    let spoken = Arc::new(OnceLock::new());
    let source = Timed { inner: Playback::new(sent.clone()), first: spoken.clone() };
    let heard = Heard::default();
    let config = VoiceConfig::default();
    let bob = VoiceCall::start(
        call.bob_keys,
        &call.bob_link,
        config,
        AudioEnds::clocked(Box::new(softphone_core::voice::audio::Silence), Box::new(heard.clone())),
    )
    .await
    .expect("bob's voice");
    let alice = VoiceCall::start(
        call.alice_keys,
        &call.alice_link,
        config,
        AudioEnds::clocked(Box::new(source), Box::new(softphone_core::voice::audio::Discard)),
    )
    .await
    .expect("alice's voice");
    assert_eq!(alice.safety_code, bob.safety_code, "both screens show the same code");
    assert_eq!(alice.transport(), bob.transport());
    let transport = alice.transport();
    // Real time: the pipeline is paced by the clock like a sound card.
    let clip = Duration::from_millis((sent.len() as u64 * 1000) / u64::from(SAMPLE_RATE));
    tokio::time::sleep(clip + Duration::from_secs(1)).await;
    call.alice.0.hang_up(&call.call_id).await.unwrap();
    let (alice_stats, bob_stats) = (alice.stop().await, bob.stop().await);
    assert!(
        alice_stats.packets_sent > 300 && bob_stats.packets_received > 300,
        "{alice_stats:?} {bob_stats:?}"
    );
    assert_eq!(bob_stats.quality.rejected, Default::default(), "no packet rejected on a clean path");
    drop(call.bob);
    let played = *heard.first.get().expect("bob played");
    let spoken = *spoken.get().expect("alice spoke");
    let heard = heard.samples.lock().unwrap().clone();
    let (lag, norm) = best_lag(&sent, &heard, SAMPLE_RATE as usize / 2);
    let similarity = windowed_similarity(&sent, &heard, lag);
    assert!(similarity > 0.7, "what bob heard is what alice said (similarity {similarity:.2})");
    let pesq = pesq_wb(&sent, &heard, lag);
    // Sample i was spoken at `spoken` - 20 ms + i/48k (a frame is read once
    // captured); heard sample j played at `played` + j/48k.
    let offset_ms = if played >= spoken {
        (played - spoken).as_secs_f64() * 1000.0
    } else {
        -(spoken - played).as_secs_f64() * 1000.0
    };
    let mouth_to_ear_ms = offset_ms + 20.0 + lag as f64 / 48.0;
    eprintln!(
        "{transport:?}: PESQ-WB {pesq:.3}, mouth-to-ear {mouth_to_ear_ms:.1} ms, correlation {norm:.3}, similarity {similarity:.3}"
    );
    Run { pesq, mouth_to_ear_ms, transport }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_through_the_relay_over_udp_keeps_its_quality() {
    let run = relayed_speech(LinkOptions::default()).await;
    assert_eq!(run.transport, Transport::Udp);
    assert!(run.pesq >= PESQ_FLOOR, "PESQ-WB {}", run.pesq);
    assert!(run.mouth_to_ear_ms < DELAY_CEILING_MS, "{} ms", run.mouth_to_ear_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_through_the_websocket_fallback_keeps_its_quality() {
    let forced = LinkOptions { force_websocket: true, ..LinkOptions::default() };
    let run = relayed_speech(forced).await;
    assert_eq!(run.transport, Transport::WebSocket);
    assert!(run.pesq >= PESQ_FLOOR, "PESQ-WB {}", run.pesq);
    assert!(run.mouth_to_ear_ms < DELAY_CEILING_MS, "{} ms", run.mouth_to_ear_ms);
}

/// A floor far below what docs/media.md measured ("Through the relay":
/// 3.48-3.50 on a quiet machine), since these calls run in real time: on a
/// loaded 2-core machine the capture and playback threads wake late, the
/// jitter buffer stretches and drops frames, and a run scored 3.12 and once
/// 2.52. The quality figure is a benchmark, not this test's business; this
/// floor (with the similarity check) catches speech that does not arrive
/// intelligibly at all (noise or silence scores about 1).
const PESQ_FLOOR: f32 = 2.0;

/// The real-time speech calls run one at a time, so that they compete for
/// the cores with less than each other.
static ONE_SPEECH_CALL_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// A ceiling far above the measured delay, to catch a broken pipeline
/// (e.g. a jitter buffer that never drains), not to time anything.
const DELAY_CEILING_MS: f64 = 400.0;

/// A WAV file's samples, checking it is 48 kHz mono 16-bit.
fn read_wav(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels, spec.bits_per_sample), (48_000, 1, 16), "{spec:?}");
    reader.samples::<i16>().map(|s| s.unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_writes_what_it_hears_and_sigterm_leaves_a_valid_wav() {
    let server = start_server(server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heard.wav");
    let out_arg = out.to_str().unwrap();
    let mut bob = Peer::spawn(&server.url(), "bob", &["--auto", "accept", "--audio-out", out_arg]);
    bob.expect(json!({"event": "connected"})).await;
    let mut alice = Peer::spawn(&server.url(), "alice", &["--audio-in", SPEECH]);
    alice.expect(json!({"event": "connected"})).await;
    alice.send("call bob").await;
    let said = alice.expect(json!({"voice": "started"})).await;
    let heard = bob.expect(json!({"voice": "started"})).await;
    assert_eq!(said["safety_code"], heard["safety_code"], "{said} {heard}");
    assert_eq!(said["safety_code"].as_str().map(str::len), Some(6), "{said}");
    assert_eq!(heard["transport"], json!("udp"));
    // Real time for about three seconds of speech to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = bob.pid().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    bob.expect(json!({"voice": "stopped"})).await;
    assert_eq!(bob.exit_code().await, 0);
    let heard = read_wav(&out);
    let sent = speech();
    assert!(heard.len() > 2 * SAMPLE_RATE as usize, "{} samples", heard.len());
    let compared = &sent[..heard.len() - SAMPLE_RATE as usize / 2];
    let (lag, norm) = best_lag(compared, &heard, SAMPLE_RATE as usize / 2);
    let similarity = windowed_similarity(compared, &heard, lag);
    eprintln!(
        "peer file: lag {:.1} ms, correlation {norm:.3}, similarity {similarity:.3}",
        lag as f64 / 48.0
    );
    assert!(similarity > 0.7, "bob's file holds alice's speech (similarity {similarity:.2})");
    alice.send("quit").await;
    alice.exit_code().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_says_back_what_it_heard_a_second_later() {
    let server = start_server(server_config()).await;
    let timing = demo::Timing {
        echo_answer_after: Duration::ZERO,
        echo_hang_up_after: Duration::from_secs(60),
        ..demo::Timing::default()
    };
    let demo = demo::spawn(&server.url(), None, timing).unwrap();
    demo.ready().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("echo.wav");
    let mut alice =
        Peer::spawn(&server.url(), "alice", &["--audio-in", SPEECH, "--audio-out", out.to_str().unwrap()]);
    alice.expect(json!({"event": "connected"})).await;
    alice.send("call echo").await;
    alice.expect(json!({"voice": "started"})).await;
    let sent = speech();
    let clip = Duration::from_millis((sent.len() as u64 * 1000) / u64::from(SAMPLE_RATE));
    tokio::time::sleep(clip + Duration::from_secs(2)).await;
    alice.send("hangup").await;
    alice.expect(json!({"voice": "stopped"})).await;
    alice.send("quit").await;
    assert_eq!(alice.exit_code().await, 0);
    let heard = read_wav(&out);
    let (lag, norm) = best_lag(&sent, &heard, SAMPLE_RATE as usize * 3 / 2);
    let lag_ms = lag as f64 / 48.0;
    let similarity = windowed_similarity(&sent, &heard, lag);
    eprintln!("echo: heard back after {lag_ms:.1} ms, correlation {norm:.3}, similarity {similarity:.3}");
    assert!(similarity > 0.6, "the echo is the speech (similarity {similarity:.2})");
    assert!((1000.0..1400.0).contains(&lag_ms), "echoed after {lag_ms} ms, about a second expected");
    demo.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_audio_in_is_refused_before_logging_in() {
    let server = start_server(server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let not_wav = dir.path().join("not.wav");
    std::fs::write(&not_wav, b"not a wav file").unwrap();
    for path in [dir.path().join("missing.wav"), not_wav] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
            .args(["peer", "--server", &server.url(), "--id", "alice", "--audio-in"])
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--audio-in"), "{stderr}");
        assert!(output.stdout.is_empty(), "nothing printed, no login: {output:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_accepting_by_command_hears_the_caller_until_hang_up() {
    let server = start_server(server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("heard.wav");
    let mut bob = Peer::spawn(&server.url(), "bob", &["--audio-out", out.to_str().unwrap()]);
    bob.expect(json!({"event": "connected"})).await;
    let mut alice = Peer::spawn(&server.url(), "alice", &["--audio-in", SPEECH]);
    alice.expect(json!({"event": "connected"})).await;
    alice.send("call bob").await;
    bob.send("wait invitation_received").await;
    bob.expect(json!({"command": "wait", "ok": true})).await;
    bob.send("accept").await;
    let heard = bob.expect(json!({"voice": "started"})).await;
    bob.expect(json!({"command": "accept", "ok": true})).await;
    let said = alice.expect(json!({"voice": "started"})).await;
    assert_eq!(said["safety_code"], heard["safety_code"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    bob.send("hangup").await;
    let stopped = bob.expect(json!({"voice": "stopped"})).await;
    assert!(stopped["packets_received"].as_u64().unwrap() > 100, "{stopped}");
    alice.expect(json!({"voice": "stopped"})).await;
    let heard = read_wav(&out);
    let compared = &speech()[..heard.len().saturating_sub(SAMPLE_RATE as usize / 2)];
    let (lag, _) = best_lag(compared, &heard, SAMPLE_RATE as usize / 2);
    let similarity = windowed_similarity(compared, &heard, lag);
    assert!(similarity > 0.7, "bob's file holds alice's speech (similarity {similarity:.2})");
    for mut peer in [alice, bob] {
        peer.send("quit").await;
        peer.exit_code().await;
    }
}
