//! The echo, noise and gain rig with no sound card: a far end (speech)
//! played through a synthetic room ([`EchoPath`]) into a microphone that
//! also hears near-end speech and noise, cleaned by a processor, then
//! scored: the echo left over speech (dB against what was played), ERLE
//! once converged, PESQ-WB of the near-end speech, the noise left in its
//! pauses, the added delay, and CPU per 10 ms against Opus encoding the
//! same audio (a ratio, so a loaded machine still gives a figure). The
//! unit tests of the stage ([`super::processing`]) use the same scenes; the
//! figures of docs/media.md ("Echo, noise and gain") come from
//! `cargo test -p softphone-core --lib voice::processing_rig -- --ignored --nocapture`
//! (`VOICE_RIG_EXPERIMENTS=1` adds other settings; with `VOICE_RIG_AEC3=1` too, only AEC3's;
//! with `VOICE_RIG_HPF=1` instead, only the high-pass filter's).

use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::audio::AudioSink;
use super::audio::wav::WavSink;
use super::codec::{DEFAULT_BITRATE, FRAME_SAMPLES, Frame, SAMPLE_RATE, VoiceEncoder};
use super::pipeline_tests::{SPEECH, delay_samples, load, pesq_wb};
use super::processing::echo_path::EchoPath;
use super::processing::{
    AudioProcessor, ProcessingConfig, SUPPRESSOR_MASK_SCALE, echo_canceller3_config_with,
};
use sonora::{Config, EchoCanceller3Config};

mod near_alone;

/// Frames per second.
const FPS: usize = 50;

/// What the microphone hears besides the echo.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scene {
    /// Seconds of audio.
    pub seconds: usize,
    /// Whether the far end talks (its speech is played into the room).
    pub far_talks: bool,
    /// When the near end starts talking (seconds), if it does.
    pub near_from: Option<usize>,
    /// White noise at the microphone (dBFS RMS), if any.
    pub noise_dbfs: Option<f32>,
    /// The room's direct-path delay (ms) and coupling (dB).
    pub delay_ms: f32,
    pub coupling_db: f32,
}

/// Echo only: the far end talks, the near end is silent, a -18 dB room.
pub(crate) const ECHO_ONLY: Scene = Scene {
    seconds: 16,
    far_talks: true,
    near_from: None,
    noise_dbfs: None,
    delay_ms: 50.0,
    coupling_db: -18.0,
};

/// The signals of a run, 48 kHz.
pub(crate) struct Run {
    pub far: Vec<i16>,
    pub near: Vec<i16>,
    pub mic: Vec<i16>,
    pub out: Vec<i16>,
    /// CPU time the processor took.
    pub cpu: Duration,
}

/// Speech, looped to `seconds`, starting `offset` seconds into the clip
/// (so the far and near ends say different sentences at any moment).
pub(crate) fn speech(seconds: usize, offset: f32) -> Vec<i16> {
    let clip = load(SPEECH);
    let start = (offset * SAMPLE_RATE as f32) as usize % clip.len();
    clip.iter().cycle().skip(start).take(seconds * SAMPLE_RATE as usize).copied().collect()
}

/// Something that cleans a microphone frame, told what was played.
pub(crate) trait Cleaner {
    fn played(&mut self, frame: &Frame);
    fn clean(&mut self, frame: &mut Frame);
}

impl Cleaner for AudioProcessor {
    fn played(&mut self, frame: &Frame) {
        self.on_far_end_frame(frame);
    }
    fn clean(&mut self, frame: &mut Frame) {
        self.process_captured_frame(frame);
    }
}

/// No processing: the microphone as captured.
pub(crate) struct Untouched;

impl Cleaner for Untouched {
    fn played(&mut self, _: &Frame) {}
    fn clean(&mut self, _: &mut Frame) {}
}

/// Runs `scene` through `cleaner`.
pub(crate) fn run(scene: Scene, cleaner: &mut dyn Cleaner) -> Run {
    let samples = scene.seconds * SAMPLE_RATE as usize;
    let far = if scene.far_talks { speech(scene.seconds, 0.0) } else { vec![0; samples] };
    let mut near = vec![0i16; samples];
    if let Some(from) = scene.near_from {
        let start = from * SAMPLE_RATE as usize;
        near[start..].copy_from_slice(&speech(scene.seconds, 3.7)[..samples - start]);
    }
    let mut path = EchoPath::new(scene.delay_ms, scene.coupling_db);
    let mut rng = StdRng::seed_from_u64(7);
    let noise_amplitude = scene.noise_dbfs.map_or(0.0, |db| 32768.0 * 10f32.powf(db / 20.0) * 3f32.sqrt());
    let (mut mic, mut out, mut cpu) =
        (Vec::with_capacity(samples), Vec::with_capacity(samples), Duration::ZERO);
    for (played, spoken) in far.chunks_exact(FRAME_SAMPLES).zip(near.chunks_exact(FRAME_SAMPLES)) {
        let played: &Frame = played.try_into().unwrap();
        let echo = path.echo(played);
        let mut frame: Frame = [0; FRAME_SAMPLES];
        for ((m, e), s) in frame.iter_mut().zip(echo).zip(spoken) {
            let noise = noise_amplitude * (rng.random::<f32>() * 2.0 - 1.0);
            *m = (f32::from(e) + f32::from(*s) + noise).clamp(-32768.0, 32767.0) as i16;
        }
        mic.extend_from_slice(&frame);
        let start = thread_cpu();
        cleaner.played(played);
        cleaner.clean(&mut frame);
        cpu += thread_cpu() - start;
        out.extend_from_slice(&frame);
    }
    Run { far, near, mic, out, cpu }
}

/// Energy of a 20 ms frame, dBFS.
fn frame_dbfs(frame: &[i16]) -> f64 {
    let mean = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len().max(1) as f64;
    10.0 * (mean.max(1e-3) / (32768.0f64 * 32768.0)).log10()
}

/// The energy ratio (dB) of `heard` against `reference` over the frames
/// from `from_s` on where `reference` has speech (above -45 dBFS) and
/// `quiet` (the near end) has none.
pub(crate) fn ratio_db(reference: &[i16], heard: &[i16], quiet: &[i16], from_s: usize) -> f64 {
    let (mut r, mut h) = (0.0, 0.0);
    let frames =
        reference.chunks(FRAME_SAMPLES).zip(heard.chunks(FRAME_SAMPLES)).zip(quiet.chunks(FRAME_SAMPLES));
    for ((reference, heard), quiet) in frames.skip(from_s * FPS) {
        if frame_dbfs(reference) > -45.0 && frame_dbfs(quiet) < -60.0 {
            r += reference.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
            h += heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        }
    }
    10.0 * (h.max(1.0) / r.max(1.0)).log10()
}

/// The mean level (dBFS) of `signal` in the frames from `from_s` on where
/// `speech` is silent, and was and will be for 60 ms (the processing
/// delays its output, so a pause's edges carry speech): the noise left in
/// the pauses.
pub(crate) fn pause_dbfs(speech: &[i16], signal: &[i16], from_s: usize) -> f64 {
    let (mut energy, mut n) = (0.0, 0usize);
    let quiet: Vec<bool> = speech.chunks(FRAME_SAMPLES).map(|s| frame_dbfs(s) < -60.0).collect();
    let frames =
        speech.chunks(FRAME_SAMPLES).zip(signal.chunks(FRAME_SAMPLES)).enumerate().skip(from_s * FPS);
    for (i, (_, x)) in frames {
        if quiet[i.saturating_sub(3)..(i + 4).min(quiet.len())].iter().all(|&q| q) {
            energy += x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
            n += x.len();
        }
    }
    10.0 * ((energy / n.max(1) as f64).max(1e-3) / (32768.0f64 * 32768.0)).log10()
}

/// The level (dB) of `heard` against `near` over the frames from `from_s`
/// on where the near end talks (above -45 dBFS): how much of its speech
/// passes, echo and noise included.
pub(crate) fn speech_level_db(near: &[i16], heard: &[i16], from_s: usize) -> f64 {
    let (mut n, mut h) = (0.0, 0.0);
    for (near, heard) in near.chunks(FRAME_SAMPLES).zip(heard.chunks(FRAME_SAMPLES)).skip(from_s * FPS) {
        if frame_dbfs(near) > -45.0 {
            n += near.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
            h += heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        }
    }
    10.0 * (h.max(1.0) / n.max(1.0)).log10()
}

/// PESQ-WB of the near end's speech in `heard`, from `from_s` on, and the
/// lag (samples) the processing added.
pub(crate) fn near_pesq(near: &[i16], heard: &[i16], from_s: usize) -> (f32, usize) {
    let start = from_s * SAMPLE_RATE as usize;
    let (near, heard) = (&near[start..], &heard[start..]);
    let lag = delay_samples(near, heard, SAMPLE_RATE as usize / 20);
    (pesq_wb(&near[..near.len() - lag], heard, lag), lag)
}

/// CPU time this thread has used (Linux scheduler statistics).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// RNNoise (`nnnoiseless`): noise suppression only, 10 ms frames,
/// samples in 16-bit scale as floats.
struct RnNoise {
    state: Box<nnnoiseless::DenoiseState<'static>>,
}

impl Cleaner for RnNoise {
    fn played(&mut self, _: &Frame) {}
    fn clean(&mut self, frame: &mut Frame) {
        let mut input = [0f32; nnnoiseless::DenoiseState::FRAME_SIZE];
        let mut output = [0f32; nnnoiseless::DenoiseState::FRAME_SIZE];
        for chunk in frame.chunks_exact_mut(nnnoiseless::DenoiseState::FRAME_SIZE) {
            for (i, s) in input.iter_mut().zip(chunk.iter()) {
                *i = f32::from(*s);
            }
            self.state.process_frame(&mut output, &input);
            for (s, o) in chunk.iter_mut().zip(output) {
                *s = o.clamp(-32768.0, 32767.0) as i16;
            }
        }
    }
}

/// Opus encoding the same audio: the CPU reference (what every call
/// already spends per frame).
struct OpusReference {
    encoder: VoiceEncoder,
}

impl Cleaner for OpusReference {
    fn played(&mut self, _: &Frame) {}
    fn clean(&mut self, frame: &mut Frame) {
        let _ = self.encoder.encode(frame);
    }
}

/// What another program made of a scene's microphone (see
/// [`echo_noise_and_gain_figures`]): replays it as the cleaned frames.
struct Recorded {
    out: Vec<i16>,
    position: usize,
}

impl Cleaner for Recorded {
    fn played(&mut self, _: &Frame) {}
    fn clean(&mut self, frame: &mut Frame) {
        let end = (self.position + FRAME_SAMPLES).min(self.out.len());
        frame.fill(0);
        frame[..end - self.position].copy_from_slice(&self.out[self.position..end]);
        self.position = end;
    }
}

/// Makes a candidate's cleaner fresh for a run of the named scene.
type Make = Box<dyn Fn(&str) -> Box<dyn Cleaner>>;

/// Builds each candidate fresh for a run; with `VOICE_RIG_DIR`, also the
/// outputs other programs wrote there (`<scene>-out-<name>.wav`).
fn candidates(dir: Option<&Path>) -> Vec<(String, Make)> {
    let sonora =
        |config: ProcessingConfig| -> Make { Box::new(move |_| Box::new(AudioProcessor::new(config))) };
    let off = ProcessingConfig::OFF;
    let mut all: Vec<(String, Make)> = vec![
        ("none".into(), Box::new(|_| Box::new(Untouched))),
        ("sonora AEC3+NS+AGC2".into(), sonora(ProcessingConfig::default())),
        ("sonora AEC3".into(), sonora(ProcessingConfig { echo_cancellation: true, ..off })),
        ("sonora NS".into(), sonora(ProcessingConfig { noise_suppression: true, ..off })),
        ("sonora AGC2".into(), sonora(ProcessingConfig { gain_control: true, ..off })),
        ("nnnoiseless".into(), Box::new(|_| Box::new(RnNoise { state: nnnoiseless::DenoiseState::new() }))),
    ];
    if std::env::var_os("VOICE_RIG_EXPERIMENTS").is_some() {
        all.truncate(2); // none, and the kept default
        all.extend(experiments());
    }
    let Some(dir) = dir else { return all };
    let outputs =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or(Vec::new());
    let mut names: Vec<String> = outputs
        .iter()
        .filter_map(|n| n.to_str()?.strip_prefix("echo-out-")?.strip_suffix(".wav").map(str::to_owned))
        .collect();
    names.sort();
    for name in names {
        let dir = dir.to_path_buf();
        let label = name.clone();
        all.push((
            name,
            Box::new(move |scene| {
                let path = dir.join(format!("{scene}-out-{label}.wav"));
                Box::new(Recorded { out: load(path.to_str().unwrap()), position: 0 })
            }),
        ));
    }
    all
}

/// Other settings of the module than [`ProcessingConfig`]'s, each one
/// change from the kept default (`VOICE_RIG_EXPERIMENTS=1`; docs/media.md,
/// "Tuning the processing").
fn experiments() -> Vec<(String, Make)> {
    use sonora::config::{MaxProcessingRate, NoiseSuppressionLevel, TransparentModeType};
    let on = ProcessingConfig::default();
    let base = AudioProcessor::module_config(on);
    if std::env::var_os("VOICE_RIG_AEC3").is_some() {
        return aec3_experiments(base);
    }
    if std::env::var_os("VOICE_RIG_HPF").is_some() {
        return high_pass_experiments(base);
    }
    let change = |name: &'static str, edit: &dyn Fn(&mut Config)| {
        let mut config = base.clone();
        edit(&mut config);
        (name, config)
    };
    let variants = [
        change("AGC2 starting at +15 dB (WebRTC's default, the one before)", &|c| {
            c.gain_controller2.as_mut().unwrap().adaptive_digital.as_mut().unwrap().initial_gain_db = 15.0
        }),
        change("NS low", &|c| c.noise_suppression.as_mut().unwrap().level = NoiseSuppressionLevel::Low),
        change("NS high", &|c| c.noise_suppression.as_mut().unwrap().level = NoiseSuppressionLevel::High),
        change("no NS", &|c| c.noise_suppression = None),
        change("no AGC2", &|c| c.gain_controller2 = None),
        change("NS on the linear AEC output", &|c| {
            c.noise_suppression.as_mut().unwrap().analyze_linear_aec_output_when_available = true
        }),
        change("AEC3 transparent mode HMM", &|c| {
            c.echo_canceller.as_mut().unwrap().transparent_mode = TransparentModeType::Hmm
        }),
        change("48 kHz internal rate (32 kHz is sonora's default)", &|c| {
            c.pipeline.maximum_internal_processing_rate = MaxProcessingRate::Rate48kHz
        }),
    ];
    let mut all: Vec<(String, Make)> = variants
        .into_iter()
        .map(|(name, module)| -> (String, Make) {
            (name.into(), Box::new(move |_| Box::new(AudioProcessor::with_module_config(on, module.clone()))))
        })
        .collect();
    all.extend(aec3_experiments(base));
    all
}

/// The high-pass filters the rigs compare with the kept one
/// ([`super::processing::HIGH_PASS_CUTOFF_HZ`]): libwebrtc's elliptic
/// (`None`) and Butterworths at these cutoffs (Hz).
pub(super) const HIGH_PASS_CUTOFFS: [Option<u16>; 5] = [None, Some(1), Some(30), Some(60), Some(100)];

/// A high-pass filter: libwebrtc's elliptic (`None`) or a Butterworth.
pub(super) fn high_pass(butterworth_cutoff_hz: Option<u16>) -> Option<sonora::config::HighPassFilter> {
    Some(sonora::config::HighPassFilter { butterworth_cutoff_hz, ..Default::default() })
}

/// What the rigs' lines call the filter of [`high_pass`].
pub(super) fn high_pass_name(butterworth_cutoff_hz: Option<u16>) -> String {
    butterworth_cutoff_hz
        .map_or("libwebrtc's elliptic at 100 Hz".into(), |hz| format!("Butterworth at {hz} Hz"))
}

/// The high-pass filter's response around the kept one; with
/// `VOICE_RIG_HPF` set, only these (docs/media.md, "The near end alone").
fn high_pass_experiments(base: Config) -> Vec<(String, Make)> {
    let on = ProcessingConfig::default();
    HIGH_PASS_CUTOFFS
        .into_iter()
        .map(|cutoff| -> (String, Make) {
            let name = format!("high-pass: {}", high_pass_name(cutoff));
            let module = Config { high_pass_filter: high_pass(cutoff), ..base.clone() };
            (name, Box::new(move |_| Box::new(AudioProcessor::with_module_config(on, module.clone()))))
        })
        .collect()
}

/// AEC3's own settings (`EchoCanceller3Config`) around the kept one
/// ([`echo_canceller3_config`]); with `VOICE_RIG_AEC3` set, only these.
fn aec3_experiments(base: Config) -> Vec<(String, Make)> {
    let on = ProcessingConfig::default();
    let scaled = echo_canceller3_config_with;
    let mut variants = vec![
        ("AEC3's defaults (before)".to_owned(), base.clone(), EchoCanceller3Config::default()),
        (
            "coarse filter output on (AEC3's default)".to_owned(),
            base.clone(),
            scaled(SUPPRESSOR_MASK_SCALE, true),
        ),
        ("suppressor's defaults, coarse output off".to_owned(), base.clone(), scaled(1.0, false)),
    ];
    for scale in [10.0, 1e3, 1e5, 1e6, 1e7] {
        variants.push((format!("suppressor masks x{scale:e}"), base.clone(), scaled(scale, false)));
    }
    // The linear filter alone (suppressor out of reach, no NS, no AGC2),
    // with and without the coarse filter's output.
    let aec_only = Config { noise_suppression: None, gain_controller2: None, ..base };
    for coarse_output in [true, false] {
        let name = format!("AEC3 linear filter alone, coarse output {coarse_output}");
        variants.push((name, aec_only.clone(), scaled(1e12, coarse_output)));
    }
    variants
        .into_iter()
        .map(|(name, module, aec3)| -> (String, Make) {
            (
                name,
                Box::new(move |_| Box::new(AudioProcessor::with_configs(on, module.clone(), aec3.clone()))),
            )
        })
        .collect()
}

/// Writes a scene's far end and microphone for other programs to clean.
fn dump(dir: &Path, scene: &str, run: &Run) {
    for (what, samples) in [("far", &run.far), ("mic", &run.mic)] {
        let mut sink = WavSink::create(&dir.join(format!("{scene}-{what}.wav"))).unwrap();
        for frame in samples.chunks_exact(FRAME_SAMPLES) {
            sink.write_frame(frame.try_into().unwrap()).unwrap();
        }
    }
}

/// The figures of docs/media.md. With `VOICE_RIG_DIR=<dir>` it also writes
/// each scene's far end and microphone there (`<scene>-far.wav`,
/// `<scene>-mic.wav`; scenes `echo`, `talk`, `alone`, `noisy`) and scores
/// what another program made of them (`<scene>-out-<name>.wav`, with its
/// CPU time for the echo scene in `echo-cpu-<name>.txt`, nanoseconds).
#[test]
#[ignore = "a measurement rig: run it in release"]
fn echo_noise_and_gain_figures() {
    let dir = std::env::var_os("VOICE_RIG_DIR").map(std::path::PathBuf::from);
    let double_talk = Scene { near_from: Some(6), ..ECHO_ONLY };
    let near_alone = Scene { far_talks: false, near_from: Some(0), ..ECHO_ONLY };
    let noisy = Scene { far_talks: false, near_from: Some(2), noise_dbfs: Some(-50.0), ..ECHO_ONLY };
    let mut reference = OpusReference { encoder: VoiceEncoder::new(DEFAULT_BITRATE).unwrap() };
    for (name, make) in candidates(dir.as_deref()) {
        let echo = run(ECHO_ONLY, make("echo").as_mut());
        let over_call = ratio_db(&echo.far, &echo.out, &echo.near, 0);
        let converged = ratio_db(&echo.far, &echo.out, &echo.near, 8);
        let erle = -ratio_db(&echo.mic, &echo.out, &echo.near, 8);
        // Opus over the same 16 s, right after: the machine's load alike.
        let opus = run(ECHO_ONLY, &mut reference).cpu;
        let external =
            dir.as_ref().and_then(|d| std::fs::read_to_string(d.join(format!("echo-cpu-{name}.txt"))).ok());
        let cpu = external.and_then(|ns| ns.trim().parse().ok()).map_or(echo.cpu, Duration::from_nanos);
        let cpu_ratio = cpu.as_secs_f64() / opus.as_secs_f64().max(1e-9);
        let talk = run(double_talk, make("talk").as_mut());
        let (talk_pesq, _) = near_pesq(&talk.near, &talk.out, 6);
        let (talk_raw, _) = near_pesq(&talk.near, &talk.mic, 6);
        let talk_level = speech_level_db(&talk.near, &talk.out, 6);
        let alone = run(near_alone, make("alone").as_mut());
        let (alone_pesq, lag) = near_pesq(&alone.near, &alone.out, 0);
        let noise = run(noisy, make("noisy").as_mut());
        let (noisy_pesq, _) = near_pesq(&noise.near, &noise.out, 2);
        let (noisy_raw, _) = near_pesq(&noise.near, &noise.mic, 2);
        let noise_left = pause_dbfs(&noise.near, &noise.out, 4) - pause_dbfs(&noise.near, &noise.mic, 4);
        if let (Some(dir), "none") = (&dir, name.as_str()) {
            for (scene, run) in [("echo", &echo), ("talk", &talk), ("alone", &alone), ("noisy", &noise)] {
                dump(dir, scene, run);
            }
        }
        eprintln!(
            "{name}: echo {over_call:.1} dB over the call, {converged:.1} dB converged (ERLE {erle:.1} dB); \
             double talk PESQ-WB {talk_pesq:.2} (mic {talk_raw:.2}), near end's level {talk_level:+.1} dB; \
             near alone {alone_pesq:.2}, delay {:.2} ms; noise -50 dBFS: PESQ-WB {noisy_pesq:.2} (mic \
             {noisy_raw:.2}), noise in pauses {noise_left:+.1} dB; CPU {cpu_ratio:.2}x Opus encoding",
            lag as f64 / 48.0
        );
    }
}
