//! The headless peer's `--audio-processing` through a real server's relay:
//! a peer that cleans its file input sends less of its noise, and a bad
//! setting is refused before logging in. The stage's own figures (echo,
//! double talk, delay) are unit tests: crates/core/src/voice/processing_tests.rs.

use crate::peer::Peer;
use crate::support::*;
use crate::voice::SPEECH;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use softphone_core::voice::audio::wav::WavSource;
use softphone_core::voice::codec::{FRAME_SAMPLES, SAMPLE_RATE};
use std::path::Path;
use std::time::Duration;

/// Seconds of the speech clip alice sends.
const SECONDS: usize = 4;

/// The level (dBFS) below which a fifth of `samples`' 20 ms frames lie,
/// among frames above -75 dBFS (not the digital silence before the voice
/// arrives and after it ends): the noise floor in the speech's pauses.
fn noise_floor_dbfs(samples: &[i16]) -> f64 {
    let mut levels: Vec<f64> = samples
        .chunks_exact(FRAME_SAMPLES)
        .map(|f| {
            let mean = f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64;
            10.0 * (mean.max(1e-3) / (32768.0f64 * 32768.0)).log10()
        })
        .filter(|&db| db > -75.0)
        .collect();
    assert!(levels.len() > 50, "{} frames with sound", levels.len());
    levels.sort_by(f64::total_cmp);
    levels[levels.len() / 5]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_noise_suppression_sends_less_of_its_noise() {
    let server = start_server(server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    // Speech over white noise at -40 dBFS, 48 kHz mono.
    let mut rng = StdRng::seed_from_u64(3);
    let amplitude = 32768.0 * 10f64.powf(-40.0 / 20.0) * 3f64.sqrt();
    let speech = WavSource::read_all(Path::new(SPEECH)).unwrap();
    let noisy: Vec<i16> = speech[..SECONDS * SAMPLE_RATE as usize]
        .iter()
        .map(|&s| {
            (f64::from(s) + amplitude * (rng.random::<f64>() * 2.0 - 1.0)).clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    let input = dir.path().join("noisy.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&input, spec).unwrap();
    noisy.iter().for_each(|&s| writer.write_sample(s).unwrap());
    writer.finalize().unwrap();

    let out = dir.path().join("heard.wav");
    let mut bob =
        Peer::spawn(&server.url(), "bob", &["--auto", "accept", "--audio-out", out.to_str().unwrap()]);
    bob.expect(json!({"event": "connected"})).await;
    let input_arg = input.to_str().unwrap();
    let mut alice =
        Peer::spawn(&server.url(), "alice", &["--audio-in", input_arg, "--audio-processing", "ns"]);
    alice.expect(json!({"event": "connected"})).await;
    alice.send("call bob").await;
    alice.expect(json!({"voice": "started"})).await;
    bob.expect(json!({"voice": "started"})).await;
    // Real time for the clip to arrive.
    tokio::time::sleep(Duration::from_secs(SECONDS as u64 + 1)).await;
    alice.send("hangup").await;
    bob.expect(json!({"voice": "stopped"})).await;
    alice.send("quit").await;
    bob.send("quit").await;
    assert_eq!(alice.exit_code().await, 0);
    assert_eq!(bob.exit_code().await, 0);

    let heard = WavSource::read_all(&out).unwrap();
    // The suppressor learns the noise in its first half second.
    let (sent_floor, heard_floor) =
        (noise_floor_dbfs(&noisy), noise_floor_dbfs(&heard[SAMPLE_RATE as usize..]));
    eprintln!("noise floor: {sent_floor:.1} dBFS in the file, {heard_floor:.1} dBFS heard");
    // Measured: 16 dB below with the suppressor, 6 dB below without (Opus
    // codes up to 12 kHz and the white noise reaches 24 kHz).
    assert!(heard_floor <= sent_floor - 11.0, "sent {sent_floor} dBFS, heard {heard_floor} dBFS");
}

#[tokio::test]
async fn a_bad_audio_processing_setting_is_refused_before_logging_in() {
    let server = start_server(server_config()).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["peer", "--server", &server.url(), "--id", "alice", "--audio-processing", "aec,loud"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--audio-processing") && stderr.contains("aec, ns, agc"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing printed, no login: {output:?}");
}
