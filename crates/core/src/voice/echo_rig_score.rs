//! Scores what `scripts/echo-rig.sh` recorded: the real app A with its
//! speaker leaking into its microphone, and the file-fed peer B. From
//! `$ECHO_RIG_DIR` it reads `b-in.wav` (what B said), `a-mouth.wav` (what
//! was spoken into A's microphone) and, for each mode in `$ECHO_RIG_MODES`
//! (`off on` by default), `<mode>/b-out.wav` (what B heard). The scene: B
//! talks from 0 to 32 s, A from 16 to 48 s, on B's clock.
//!
//! Figures: the echo B hears of itself (energy over B's speech frames while
//! A is silent, against what B said; over the call and from 8 s on), and
//! PESQ-WB of A's speech at B while both talk and while A talks alone:
//! the median of 3.5 s windows, each aligned by cross-correlation (the
//! device path and the jitter buffer may move playout by a frame).

use std::path::Path;

use super::pipeline_tests::{delay_samples, load, pesq_wb};
use super::processing_rig::ratio_db;

/// Samples per second.
const RATE: usize = 48_000;
/// Where the double talk's scored part starts and ends (A's mouth), clear
/// of the scene's edges.
const DOUBLE_TALK: (f32, f32) = (16.5, 31.5);
/// The same for A alone: B's echo of its last words has died by 33 s.
const NEAR_ALONE: (f32, f32) = (33.0, 47.5);
/// The snippet cross-correlated to find a lag.
const SNIPPET: usize = 4 * RATE;

fn at(seconds: f32) -> usize {
    (seconds * RATE as f32) as usize
}

/// The lag (samples) at which `sent[from..from + SNIPPET]` shows in
/// `heard`, searched from `min` to `max`, and the normalised correlation
/// there (how alike: near 0, not found).
fn lag_of(sent: &[i16], heard: &[i16], from: usize, min: usize, max: usize) -> (usize, f64) {
    let snippet = &sent[from..(from + SNIPPET).min(sent.len())];
    let end = (from + max + SNIPPET).min(heard.len());
    let window = &heard[(from + min).min(end)..end];
    let lag =
        min + delay_samples(snippet, window, (max - min).min(window.len().saturating_sub(snippet.len())));
    let heard = &heard[(from + lag).min(heard.len())..];
    let (mut dot, mut a, mut b) = (0.0, 0.0, 0.0);
    for (&x, &y) in snippet.iter().zip(heard) {
        let (x, y) = (f64::from(x), f64::from(y));
        (dot, a, b) = (dot + x * y, a + x * x, b + y * y);
    }
    (lag, dot / (a * b).sqrt().max(1.0))
}

/// Seconds of each scored window: the device path slips by a frame now
/// and then on a loaded machine (an underrun, the jitter buffer's
/// correction), and a slip in a long segment drags its whole PESQ down.
const WINDOW_S: f32 = 3.5;

/// PESQ-WB of `mouth` between `seconds` as heard in `out` about `lag`
/// later: the median over windows of [`WINDOW_S`], each aligned on its own,
/// and the level (dB) it was heard at.
fn segment(mouth: &[i16], out: &[i16], seconds: (f32, f32), lag: usize) -> (f32, f64) {
    let (mut scores, mut heard_energy, mut said_energy) = (Vec::new(), 1.0, 1.0);
    let mut from = seconds.0;
    while from + WINDOW_S <= seconds.1 {
        let (start, end) = (at(from), at(from + WINDOW_S));
        let (fine, _) = lag_of(mouth, out, start, lag.saturating_sub(RATE / 20), lag + RATE / 20);
        let heard = &out[(start + fine).min(out.len())..];
        let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        heard_energy += energy(&heard[..(end - start).min(heard.len())]);
        said_energy += energy(&mouth[start..end]);
        scores.push(pesq_wb(&mouth[start..end], heard, 0));
        from += WINDOW_S;
    }
    scores.sort_by(f32::total_cmp);
    (scores[scores.len() / 2], 10.0 * (heard_energy / said_energy).log10())
}

/// The figures of one call (one mode).
struct Scores {
    /// A's speech at B: lag after A's mouth, and how alike.
    a_lag: (usize, f64),
    /// B's echo at B: lag after B's input, and how alike.
    echo_lag: (usize, f64),
    echo_over_call: f64,
    echo_converged: f64,
    double_talk: (f32, f64),
    near_alone: (f32, f64),
}

fn score(b_in: &[i16], mouth: &[i16], out: &[i16], echo_lag_fallback: Option<usize>) -> Scores {
    let a_lag = lag_of(mouth, out, at(36.0), 0, 3 * RATE);
    let found = lag_of(b_in, out, at(4.0), RATE / 50, 3 * RATE / 2);
    // A cancelled echo may be too faint to find: then take the lag of a
    // call where it was found (the same path, within a frame or two).
    let echo_lag = match echo_lag_fallback {
        Some(lag) if found.1 < 0.2 => (lag, found.1),
        _ => found,
    };
    // B's frames scored for echo: while A has not started at B.
    let end = (at(16.0) + a_lag.0).saturating_sub(echo_lag.0 + RATE / 10);
    let reference = &b_in[..end];
    let heard = &out[echo_lag.0..echo_lag.0 + end];
    let quiet = vec![0i16; end];
    Scores {
        a_lag,
        echo_lag,
        echo_over_call: ratio_db(reference, heard, &quiet, 0),
        echo_converged: ratio_db(reference, heard, &quiet, 8),
        double_talk: segment(mouth, out, DOUBLE_TALK, a_lag.0),
        near_alone: segment(mouth, out, NEAR_ALONE, a_lag.0),
    }
}

#[test]
#[ignore = "scores a recording of scripts/echo-rig.sh"]
fn echo_rig_score() {
    let dir = std::env::var("ECHO_RIG_DIR").unwrap_or_else(|_| "/tmp/echo-rig".into());
    let dir = Path::new(&dir);
    let modes = std::env::var("ECHO_RIG_MODES").unwrap_or_else(|_| "off on".into());
    let wav = |name: &str| load(dir.join(name).to_str().unwrap());
    let (b_in, mouth) = (wav("b-in.wav"), wav("a-mouth.wav"));
    let mut echo_lag = None;
    for mode in modes.split_whitespace() {
        let out = wav(&format!("{mode}/b-out.wav"));
        let s = score(&b_in, &mouth, &out, echo_lag);
        if s.echo_lag.1 >= 0.2 {
            echo_lag = Some(s.echo_lag.0);
        }
        let ms = |lag: usize| lag as f64 / 48.0;
        // A's speech unlike what was said: the device path garbled it
        // (a flood of ALSA stream errors); its figures mean nothing.
        let garbled = if s.a_lag.1 < 0.3 { " GARBLED: not a measurement" } else { "" };
        eprintln!(
            "{mode}: echo at B {:.1} dB over the call, {:.1} dB from 8 s (lag {:.1} ms, corr {:.2}); \
             A at B (lag {:.1} ms, corr {:.2}): double talk PESQ-WB {:.2} (level {:+.1} dB), alone {:.2} \
             (level {:+.1} dB){garbled}",
            s.echo_over_call,
            s.echo_converged,
            ms(s.echo_lag.0),
            s.echo_lag.1,
            ms(s.a_lag.0),
            s.a_lag.1,
            s.double_talk.0,
            s.double_talk.1,
            s.near_alone.0,
            s.near_alone.1,
        );
    }
}
