//! The whole voice path, file to file, in-process: WAV source -> session
//! (Opus, seal) -> a test transport that drops and delays packets with a
//! seeded RNG -> session (open, jitter buffer, Opus) -> recording. Scored
//! with wideband PESQ (ITU-T P.862.2) and cross-correlation for the delay.
//! The figures these print are in docs/media.md; the assertions are
//! quality floors with margin below them.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::audio::resample::resample_i16;
use super::audio::wav::WavSource;
use super::audio::{AudioSink, AudioSource, Recording};
use super::codec::{FRAME_SAMPLES, Frame, SAMPLE_RATE};
use super::crypto::LocalKey;
use super::{VoiceConfig, VoiceSession};
use crate::protocol::Role;

/// Speech made with `espeak-ng -v en-us -s 160` (three Harvard sentences,
/// 22,050 Hz mono); see docs/media.md.
pub(crate) const SPEECH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/speech-harvard-22k.wav");

/// How the test transport treats packets (both directions alike).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Network {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Fixed one-way delay.
    pub base: Duration,
    /// Extra delay, uniform in 0..=jitter.
    pub jitter: Duration,
}

/// What the callee heard of the caller's file.
pub(crate) struct Heard {
    pub sent: Vec<i16>,
    pub heard: Vec<i16>,
    pub caller: VoiceSession,
    pub callee: VoiceSession,
}

pub(crate) fn load(path: &str) -> Vec<i16> {
    WavSource::read_all(Path::new(path)).unwrap()
}

fn sessions(config: VoiceConfig, epoch: Instant) -> (VoiceSession, VoiceSession) {
    let mut rng = StdRng::seed_from_u64(42);
    let (caller, callee) = (LocalKey::from_rng(&mut rng), LocalKey::from_rng(&mut rng));
    let (caller_public, callee_public) = (caller.public(), callee.public());
    let a = caller
        .agree(&callee_public, Role::Caller, "pipeline", crate::voice::safety::Exchange::Uncommitted)
        .unwrap();
    let b = callee
        .agree(&caller_public, Role::Callee, "pipeline", crate::voice::safety::Exchange::Uncommitted)
        .unwrap();
    (VoiceSession::new(a, config, epoch).unwrap(), VoiceSession::new(b, config, epoch).unwrap())
}

/// One packet in flight: when it arrives, towards whom, its bytes.
type InFlight = (Instant, bool, Vec<u8>);

/// Plays `sent` from the caller for its length plus a second, while the
/// callee sends silence back (so reports flow both ways); every 20 ms
/// both capture, the transport delivers what is due, both play.
pub(crate) fn call(sent: Vec<i16>, config: VoiceConfig, path: Network, seed: u64) -> Heard {
    let epoch = Instant::now();
    let (mut caller, mut callee) = sessions(config, epoch);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut heard = Recording::default();
    let frames = sent.len() / FRAME_SAMPLES + 50;
    let silence: Frame = [0; FRAME_SAMPLES];
    for k in 0..frames {
        // Frame k is fully captured at the end of its 20 ms.
        let now = epoch + Duration::from_millis(20 * (k as u64 + 1));
        let frame: Frame = match sent.get(k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES) {
            Some(samples) => samples.try_into().unwrap(),
            None => silence,
        };
        caller.on_captured_frame(&frame, now).unwrap();
        callee.on_captured_frame(&silence, now).unwrap();
        for (session, to_callee) in [(&mut caller, true), (&mut callee, false)] {
            while let Some(packet) = session.poll_transmit() {
                if !rng.random_bool(path.loss) {
                    let extra = rng.random_range(0..=path.jitter.as_micros() as u64);
                    in_flight.push((now + path.base + Duration::from_micros(extra), to_callee, packet));
                }
            }
        }
        in_flight.sort_by_key(|(at, ..)| *at);
        let due = in_flight.iter().take_while(|(at, ..)| *at <= now).count();
        for (at, to_callee, packet) in in_flight.drain(..due) {
            let session = if to_callee { &mut callee } else { &mut caller };
            session.on_packet(&packet, at).unwrap();
        }
        // The speaker starts frame m at m × 20 ms: here, `now`.
        caller.next_playback_frame(now);
        heard.write_frame(&callee.next_playback_frame(now)).unwrap();
    }
    // Output sample i plays at (i + 960) / 48 kHz; input sample i was
    // spoken at i / 48 kHz: shift so both count from the same instant.
    let mut samples = vec![0i16; FRAME_SAMPLES];
    samples.extend_from_slice(&heard.samples);
    Heard { sent, heard: samples, caller, callee }
}

/// The lag (in 48 kHz samples) at which `heard` best matches `sent`,
/// searched up to `max_lag`: coarse at 4 kHz, then exact around it.
pub(crate) fn delay_samples(sent: &[i16], heard: &[i16], max_lag: usize) -> usize {
    let correlate = |a: &[f64], b: &[f64], lags: std::ops::Range<usize>| {
        lags.max_by(|&x, &y| {
            let score = |lag: usize| a.iter().zip(&b[lag.min(b.len())..]).map(|(p, q)| p * q).sum::<f64>();
            score(x).total_cmp(&score(y))
        })
        .unwrap()
    };
    let to_f64 = |s: &[i16]| s.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let (coarse_sent, coarse_heard) =
        (to_f64(&resample_i16(sent, SAMPLE_RATE, 4000)), to_f64(&resample_i16(heard, SAMPLE_RATE, 4000)));
    let coarse = correlate(&coarse_sent, &coarse_heard, 0..max_lag / 12) * 12;
    let (fine_sent, fine_heard) = (to_f64(sent), to_f64(heard));
    correlate(&fine_sent, &fine_heard, coarse.saturating_sub(24)..coarse + 24)
}

/// Wideband PESQ of `heard` against `sent`, both 48 kHz, after removing `delay`.
pub(crate) fn pesq_wb(sent: &[i16], heard: &[i16], delay: usize) -> f32 {
    let aligned = &heard[delay.min(heard.len())..];
    let length = sent.len().min(aligned.len());
    let reference = resample_i16(&sent[..length], SAMPLE_RATE, 16_000);
    let degraded = resample_i16(&aligned[..length], SAMPLE_RATE, 16_000);
    pesq::pesq_wb(&reference, &degraded).unwrap()
}

/// The longest run of silence (ms) in `heard` where `sent` has speech,
/// in 10 ms windows: a window is speech above -40 dBFS RMS and heard as
/// silence below -55 dBFS.
pub(crate) fn longest_gap_ms(sent: &[i16], heard: &[i16], delay: usize) -> usize {
    let window = (SAMPLE_RATE / 100) as usize;
    let rms_db = |w: &[i16]| {
        let mean = w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len().max(1) as f64;
        10.0 * (mean.max(1e-9) / (32768.0f64 * 32768.0)).log10()
    };
    let aligned = &heard[delay.min(heard.len())..];
    let (mut run, mut longest) = (0, 0);
    for (spoken, played) in sent.chunks(window).zip(aligned.chunks(window)) {
        if rms_db(spoken) > -40.0 && rms_db(played) < -55.0 {
            run += 10;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

#[test]
fn speech_without_loss_scores_above_three_and_a_half_with_a_short_delay() {
    let sent = load(SPEECH);
    let clean = Network { loss: 0.0, base: Duration::ZERO, jitter: Duration::ZERO };
    // The default (40 kbit/s throughout, no FEC until loss is measured;
    // issue 20's target is PESQ-WB 3.8), then a protected start, which
    // spends its first second at 48 kbit/s with FEC, then the old default.
    let protected = VoiceConfig { startup_loss_pct: 10.0, ..VoiceConfig::default() };
    let old_default = VoiceConfig { bitrate: 24_000, ..VoiceConfig::default() };
    for (name, config, floor) in [
        ("40 kbit/s", VoiceConfig::default(), 3.8),
        ("protected start", protected, 3.7),
        ("24 kbit/s", old_default, 3.4),
    ] {
        let run = call(sent.clone(), config, clean, 1);
        let delay = delay_samples(&run.sent, &run.heard, SAMPLE_RATE as usize * 3 / 10);
        let delay_ms = delay as f64 / 48.0;
        let score = pesq_wb(&run.sent, &run.heard, delay);
        eprintln!("no loss, {name}: PESQ-WB {score:.3}, mouth-to-ear {delay_ms:.1} ms");
        assert!(score >= floor, "{name}: PESQ-WB {score}");
        assert!(delay_ms <= 80.0, "{delay_ms} ms");
        assert_eq!(run.callee.stats().loss_pct, 0.0);
    }
}

#[test]
fn a_path_off_the_speakers_beat_settles_within_half_a_frame() {
    // Packets 10 ms after the pulls' beat: a 20 ms step alone would leave
    // 30 ms of headroom where 20 is enough (issue 20: mouth-to-ear), and
    // the 10 ms path plus that 30 would be 66.4 ms mouth-to-ear here.
    let sent = load(SPEECH);
    let offbeat = Network { loss: 0.0, base: Duration::from_millis(10), jitter: Duration::ZERO };
    let run = call(sent.clone(), VoiceConfig::default(), offbeat, 1);
    let (_, callee) = run.callee.split();
    let stats = callee.jitter_stats();
    // The clip's second half, after the floor has relaxed in a pause.
    let half = sent.len() / 2;
    let delay = delay_samples(&run.sent[half..], &run.heard[half..], SAMPLE_RATE as usize * 3 / 10);
    let score = pesq_wb(&run.sent[half..], &run.heard[half..], delay);
    let delay_ms = delay as f64 / 48.0;
    eprintln!("10 ms path, second half: PESQ-WB {score:.3}, mouth-to-ear {delay_ms:.1} ms, {stats:?}");
    assert_eq!((stats.shortened_for_delay, stats.dropped_for_delay), (1, 0), "{stats:?}");
    assert!(score >= 3.8, "PESQ-WB {score}");
    // The path's 10 ms plus the 46.4 of a path on the beat.
    assert!(delay_ms <= 57.0, "{delay_ms} ms");
}

/// Seeds of the lossy runs: a 7.6 s clip loses about 40 packets, and
/// which ones matters, so the figure is a mean over several patterns.
const LOSS_SEEDS: [u64; 4] = [2, 3, 4, 5];

#[test]
fn speech_through_ten_percent_loss_and_jitter_stays_intelligible_without_gaps() {
    let sent = load(SPEECH);
    let lossy = Network { loss: 0.10, base: Duration::ZERO, jitter: Duration::from_millis(40) };
    let mut scores = Vec::new();
    for seed in LOSS_SEEDS {
        let run = call(sent.clone(), VoiceConfig::default(), lossy, seed);
        let delay = delay_samples(&run.sent, &run.heard, SAMPLE_RATE as usize * 3 / 10);
        let score = pesq_wb(&run.sent, &run.heard, delay);
        let gap = longest_gap_ms(&run.sent, &run.heard, delay);
        let (caller, _) = run.caller.split();
        let (_, callee) = run.callee.split();
        let quality = callee.control().quality();
        eprintln!(
            "10 % loss, 0-40 ms jitter, seed {seed}: PESQ-WB {score:.3}, delay {:.1} ms, longest gap \
             {gap} ms, loss hint {} %, {} bit/s, loss {:.1} %, jitter {:.1} ms, {:?}",
            delay as f64 / 48.0,
            caller.expected_loss(),
            caller.bitrate(),
            quality.loss_pct,
            quality.jitter_ms,
            callee.jitter_stats()
        );
        assert!(score >= 2.0, "seed {seed}: PESQ-WB {score}");
        assert!(gap <= 60, "seed {seed}: {gap} ms of silence in speech");
        scores.push(score);
    }
    let mean = scores.iter().sum::<f32>() / scores.len() as f32;
    eprintln!("10 % loss, 0-40 ms jitter: mean PESQ-WB {mean:.3} over {} loss patterns", scores.len());
    // Issue 20's target under 10 % loss.
    assert!(mean >= 2.8, "mean PESQ-WB {mean}");
}

/// CPU time this thread has used, from the scheduler (Linux).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

/// Client CPU per call: both sides of a call run every stage a client runs
/// (WAV capture with resampling, level meter, Opus encode, seal, open,
/// jitter buffer, Opus decode, playback into memory) for `VOICE_BENCH_SECONDS`
/// (default 60) of audio; half the CPU time is one client's. Release only:
/// `cargo test --release --lib voice::pipeline_tests::client_cpu_per_call -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run it in release"]
fn client_cpu_per_call() {
    let seconds: u64 = std::env::var("VOICE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let epoch = Instant::now();
    let (mut caller, mut callee) = sessions(VoiceConfig::default(), epoch);
    let mut mouths =
        [WavSource::open(Path::new(SPEECH)).unwrap(), WavSource::open(Path::new(SPEECH)).unwrap()];
    let mut ears = [Recording::default(), Recording::default()];
    let start = thread_cpu();
    let mut frame = [0; FRAME_SAMPLES];
    for k in 0..seconds * 50 {
        let now = epoch + Duration::from_millis(20 * (k + 1));
        for (side, mouth) in mouths.iter_mut().enumerate() {
            if mouth.is_finished() {
                *mouth = WavSource::open(Path::new(SPEECH)).unwrap();
            }
            mouth.read_frame(&mut frame).unwrap();
            let session = if side == 0 { &mut caller } else { &mut callee };
            session.on_captured_frame(&frame, now).unwrap();
        }
        while let Some(packet) = caller.poll_transmit() {
            callee.on_packet(&packet, now).unwrap();
        }
        while let Some(packet) = callee.poll_transmit() {
            caller.on_packet(&packet, now).unwrap();
        }
        ears[0].write_frame(&caller.next_playback_frame(now)).unwrap();
        ears[1].write_frame(&callee.next_playback_frame(now)).unwrap();
        // Bounded memory: the recording is not the point here.
        for ear in &mut ears {
            ear.samples.clear();
        }
    }
    let used = thread_cpu() - start;
    let per_client = used.as_secs_f64() / 2.0 / seconds as f64;
    eprintln!(
        "{seconds} s of audio, both sides: {:.3} s CPU; one client: {:.2} ms CPU per second of audio = {:.2} % of one core",
        used.as_secs_f64(),
        per_client * 1000.0,
        per_client * 100.0
    );
}
