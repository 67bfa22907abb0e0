//! The near end alone, part by part: which part of the processing costs
//! clean speech its PESQ-WB when nobody else talks (issue 20 asks for
//! 0.1 at most). Each part runs on the rig's near-end-alone scene with
//! the far end silent (silence played, as in a call) and with nothing
//! played at all, at the module's 32 kHz internal rate and at 48 kHz; the
//! scorer itself is checked first on delayed copies of the clean speech.
//! docs/media.md ("The near end alone") has the figures, from
//! `cargo test -p softphone-core --lib voice::processing_rig::near_alone -- --ignored --nocapture`.

use sonora::Config;
use sonora::config::{EchoCanceller, MaxProcessingRate, NoiseSuppression, NoiseSuppressionLevel};

use super::super::codec::{FRAME_SAMPLES, Frame};
use super::super::processing::{
    AudioProcessor, HIGH_PASS_CUTOFF_HZ, NOISE_SUPPRESSION_LEVEL, ProcessingConfig,
};
use super::{
    Cleaner, ECHO_ONLY, HIGH_PASS_CUTOFFS, Scene, high_pass, high_pass_name, near_pesq, run, speech_level_db,
};

/// The near end talks from the start, the far end never does.
const NEAR_ALONE: Scene = Scene { far_talks: false, near_from: Some(0), ..ECHO_ONLY };

/// The clean speech, delayed by a whole number of samples: what a
/// transparent path does, so the scorer must give it the untouched score.
struct Delayed {
    samples: usize,
    history: Vec<i16>,
}

impl Cleaner for Delayed {
    fn played(&mut self, _: &Frame) {}
    fn clean(&mut self, frame: &mut Frame) {
        self.history.extend_from_slice(frame);
        let start = self.history.len() - FRAME_SAMPLES;
        for (i, sample) in frame.iter_mut().enumerate() {
            *sample = (start + i).checked_sub(self.samples).map_or(0, |j| self.history[j]);
        }
    }
}

/// A processor that is never told what was played (no far end at all).
struct NothingPlayed(AudioProcessor);

impl Cleaner for NothingPlayed {
    fn played(&mut self, _: &Frame) {}
    fn clean(&mut self, frame: &mut Frame) {
        self.0.process_captured_frame(frame);
    }
}

/// Each part on its own, then the kept processing with other filters.
fn parts() -> Vec<(String, Config)> {
    let off = Config::default();
    let filter = high_pass(Some(HIGH_PASS_CUTOFF_HZ));
    let kept = AudioProcessor::module_config(ProcessingConfig::default());
    let gain =
        AudioProcessor::module_config(ProcessingConfig { gain_control: true, ..ProcessingConfig::OFF });
    let alone = [
        // A 1 Hz filter only takes DC: what is left is the resampling to
        // the internal rate, the band split and the merge.
        (
            "structure (resampling, band split; filter at 1 Hz)",
            Config { high_pass_filter: high_pass(Some(1)), ..off.clone() },
        ),
        (
            "high-pass: libwebrtc's elliptic at 100 Hz",
            Config { high_pass_filter: high_pass(None), ..off.clone() },
        ),
        ("high-pass: the kept Butterworth", Config { high_pass_filter: filter.clone(), ..off.clone() }),
        (
            "AEC3 (and the kept high-pass)",
            Config {
                echo_canceller: Some(EchoCanceller::default()),
                high_pass_filter: filter.clone(),
                ..off.clone()
            },
        ),
        (
            "NS (and the kept high-pass)",
            Config {
                noise_suppression: Some(NoiseSuppression {
                    level: NOISE_SUPPRESSION_LEVEL,
                    ..Default::default()
                }),
                high_pass_filter: filter,
                ..off.clone()
            },
        ),
        ("AGC2 (no high-pass, no band split)", Config { high_pass_filter: None, ..gain }),
        ("kept: AEC3 + NS + AGC2", kept.clone()),
    ];
    let mut all: Vec<(String, Config)> = Vec::new();
    for (name, config) in alone {
        let mut at_48 = config.clone();
        at_48.pipeline.maximum_internal_processing_rate = MaxProcessingRate::Rate48kHz;
        all.push((format!("{name}, 32 kHz"), config));
        all.push((format!("{name}, 48 kHz"), at_48));
    }
    for (name, level) in [("NS low", Some(NoiseSuppressionLevel::Low)), ("no NS", None)] {
        let noise_suppression = level.map(|level| NoiseSuppression { level, ..Default::default() });
        all.push((format!("kept, {name}"), Config { noise_suppression, ..kept.clone() }));
    }
    for cutoff in HIGH_PASS_CUTOFFS {
        all.push((
            format!("kept, high-pass: {}", high_pass_name(cutoff)),
            Config { high_pass_filter: high_pass(cutoff), ..kept.clone() },
        ));
    }
    all
}

#[test]
#[ignore = "a measurement rig: run it in release"]
fn near_end_alone_part_by_part() {
    for samples in [0, 1, 7, 441] {
        let delayed = run(NEAR_ALONE, &mut Delayed { samples, history: Vec::new() });
        let (score, lag) = near_pesq(&delayed.near, &delayed.out, 0);
        eprintln!("the clean speech delayed by {samples} samples: PESQ-WB {score:.3} (lag found {lag})");
    }
    for (name, config) in parts() {
        let make = || AudioProcessor::with_module_config(ProcessingConfig::default(), config.clone());
        let silent = run(NEAR_ALONE, &mut make());
        let (silent_score, lag) = near_pesq(&silent.near, &silent.out, 0);
        let level = speech_level_db(&silent.near, &silent.out, 0);
        let nothing = run(NEAR_ALONE, &mut NothingPlayed(make()));
        let (nothing_score, _) = near_pesq(&nothing.near, &nothing.out, 0);
        eprintln!(
            "{name}: far end silent {silent_score:.3}, nothing played {nothing_score:.3}; delay {:.2} ms, \
             level {level:+.2} dB",
            lag as f64 / 48.0
        );
    }
}
