//! The microphone's cleaning before Opus: echo cancellation, noise
//! suppression and gain control, sans-IO like the rest of `voice`.
//!
//! The stage is WebRTC's audio processing module (AEC3, NS, AGC2 with its
//! limiter, and the high-pass filter AEC3 wants) in the pure-Rust port
//! `sonora`; docs/media.md ("Echo, noise and gain") has the figures that
//! chose it over the alternatives. The canceller's reference is the far
//! end as played: the playback side hands each frame it wrote to the
//! speaker to a [`FarEndTap`], a bounded lock-free channel, and the capture
//! side drains it into the processor before it cleans each microphone
//! frame ([`CaptureProcessing`]). Nobody waits: a full channel drops the
//! frame (the capture side stalled for half a second), an empty one means
//! nothing new was played. AEC3 finds the delay between the two itself
//! (device buffers, the acoustic path, the threads' jitter).

pub mod echo_path;

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression, NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, EchoCanceller3Config, StreamConfig};

use super::codec::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

/// The module's unit: 10 ms at 48 kHz; a 20 ms frame is two of them.
const CHUNK_SAMPLES: usize = FRAME_SAMPLES / 2;
/// Played frames waiting for the capture side: 25 are half a second.
const FAR_END_FRAMES: usize = 25;
/// The noise suppressor's strength.
/// Moderate (WebRTC's default): Low keeps 0.16 more PESQ-WB of clean
/// speech (the near end alone 4.55 against 4.39) but takes only 8.6 dB off
/// steady noise against 14.2 (docs/media.md, "The near end alone").
pub(crate) const NOISE_SUPPRESSION_LEVEL: NoiseSuppressionLevel = NoiseSuppressionLevel::Moderate;
/// The gain controller's gain before it has heard any speech (dB).
pub(crate) const AGC_INITIAL_GAIN_DB: f32 = 0.0;
/// The high-pass filter's cutoff (Hz): a second-order Butterworth, which
/// takes DC and rumble and leaves the voice (wideband speech starts at
/// 50 Hz), instead of libwebrtc's sixth-order elliptic at 100 Hz, whose
/// steep edge and 12 ms of group delay around 80-100 Hz cost the near end
/// alone 0.85 PESQ-WB (docs/media.md, "The near end alone";
/// `vendor/sonora/SOFTPHONE-PATCH.md`).
pub(crate) const HIGH_PASS_CUTOFF_HZ: u16 = 40;

/// How far AEC3's suppressor stands back: its masking thresholds (the
/// echo-to-near-end ratios at which it starts and fully suppresses a band)
/// times this. AEC3's defaults take the near end's voice while both people
/// talk (PESQ-WB 1.3-1.7 in double talk on the rigs, the same as
/// libwebrtc's C++ AEC3 on the same signals); at 10^4 the linear filter
/// does most of the cancelling and the suppressor only acts where the echo
/// is some 35 dB above the near end. On the echo rig (the real app, real
/// devices): double talk 3.58-3.64, echo -38.0 to -56.1 dB over a call and
/// -68.2 to -73.9 dB once converged. Higher factors trade echo for double
/// talk (10^6: -34 dB over a call, over the issue's -35); docs/media.md,
/// "Tuning the processing", has each factor from 10 to 10^7.
pub(crate) const SUPPRESSOR_MASK_SCALE: f32 = 1e4;

/// AEC3's configuration: its default with the suppressor standing back
/// ([`SUPPRESSOR_MASK_SCALE`]) and the linear filter's output always from
/// the refined filter. AEC3 switches to its fast-adapting coarse filter
/// when that one's error is smaller; while both people talk the coarse
/// filter adapts to the near end's voice too, and its output took the
/// near end with it (the linear filter alone: double talk 1.86 with the
/// switch, 3.20 without, the echo converged the same within 0.3 dB).
pub(crate) fn echo_canceller3_config() -> EchoCanceller3Config {
    echo_canceller3_config_with(SUPPRESSOR_MASK_SCALE, false)
}

/// AEC3's default with its suppressor's masking thresholds times
/// `mask_scale` and the coarse filter's output allowed or not (the kept
/// configuration, and the rig's experiments around it).
pub(crate) fn echo_canceller3_config_with(mask_scale: f32, coarse_output: bool) -> EchoCanceller3Config {
    let mut config = EchoCanceller3Config::default();
    config.filter.enable_coarse_filter_output_usage = coarse_output;
    let suppressor = &mut config.suppressor;
    for tuning in [&mut suppressor.normal_tuning, &mut suppressor.nearend_tuning] {
        for mask in [&mut tuning.mask_lf, &mut tuning.mask_hf] {
            mask.enr_transparent *= mask_scale;
            mask.enr_suppress *= mask_scale;
        }
    }
    config
}

/// Which stages clean the microphone ([`super::AudioEnds::processing`]).
/// The default has all three on (a laptop's speaker leaks into its
/// microphone); each can be turned off (a headset needs no echo
/// canceller, a studio microphone no gain control).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingConfig {
    /// Removes the far end's voice that the speaker plays into the microphone.
    pub echo_cancellation: bool,
    /// Removes steady background noise (fans, hum, street).
    pub noise_suppression: bool,
    /// Brings the voice to a steady level, and limits peaks.
    pub gain_control: bool,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        ProcessingConfig { echo_cancellation: true, noise_suppression: true, gain_control: true }
    }
}

impl ProcessingConfig {
    /// No processing: the microphone goes to Opus as captured.
    pub const OFF: ProcessingConfig =
        ProcessingConfig { echo_cancellation: false, noise_suppression: false, gain_control: false };

    /// Whether any stage is on.
    pub fn any(&self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }

    /// The module's configuration for these stages.
    fn module_config(&self) -> Config {
        Config {
            // AEC3 runs the filter anyway (`enforce_high_pass_filtering`);
            // without it, the other stages still lose rumble and DC.
            high_pass_filter: self.any().then(|| HighPassFilter {
                butterworth_cutoff_hz: Some(HIGH_PASS_CUTOFF_HZ),
                ..Default::default()
            }),
            echo_canceller: self.echo_cancellation.then(EchoCanceller::default),
            noise_suppression: self
                .noise_suppression
                .then(|| NoiseSuppression { level: NOISE_SUPPRESSION_LEVEL, ..Default::default() }),
            gain_controller2: self.gain_control.then(|| GainController2 {
                // Starting at WebRTC's +15 dB raises the echo the canceller
                // has not yet learnt (-49 dB over a call, -64 dB from 0 dB);
                // a quiet microphone is still raised, at 6 dB a second.
                adaptive_digital: Some(AdaptiveDigital {
                    initial_gain_db: AGC_INITIAL_GAIN_DB,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Config::default()
        }
    }
}

/// A processing setting that is not `on`, `off` or a list of stages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audio processing {0:?}: expected on, off, or stages from aec, ns, agc joined by commas")]
pub struct ProcessingParseError(String);

impl std::str::FromStr for ProcessingConfig {
    type Err = ProcessingParseError;

    /// `on` (all three), `off`, or the stages to run, e.g. `aec,ns`.
    fn from_str(text: &str) -> Result<ProcessingConfig, ProcessingParseError> {
        match text.trim() {
            "on" => return Ok(ProcessingConfig::default()),
            "off" => return Ok(ProcessingConfig::OFF),
            _ => {}
        }
        let mut config = ProcessingConfig::OFF;
        for stage in text.split(',').map(str::trim) {
            match stage {
                "aec" => config.echo_cancellation = true,
                "ns" => config.noise_suppression = true,
                "agc" => config.gain_control = true,
                _ => return Err(ProcessingParseError(text.to_owned())),
            }
        }
        Ok(config)
    }
}

/// The processing module, fed the far end as played and the microphone,
/// 20 ms frames of 48 kHz mono.
pub struct AudioProcessor {
    module: AudioProcessing,
    config: ProcessingConfig,
}

impl AudioProcessor {
    pub fn new(config: ProcessingConfig) -> AudioProcessor {
        AudioProcessor::with_configs(config, config.module_config(), echo_canceller3_config())
    }

    /// A processor with the module and its echo canceller configured as
    /// given (the rig's experiments with other settings than the kept ones).
    pub(crate) fn with_configs(
        config: ProcessingConfig,
        module: Config,
        aec3: EchoCanceller3Config,
    ) -> AudioProcessor {
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let module = AudioProcessing::builder()
            .config(module)
            .echo_canceller3_config(aec3)
            .capture_config(stream)
            .render_config(stream)
            .build();
        AudioProcessor { module, config }
    }

    /// A processor with the module configured as given and the kept echo
    /// canceller (the rig's experiments with the module's settings).
    #[cfg(test)]
    pub(crate) fn with_module_config(config: ProcessingConfig, module: Config) -> AudioProcessor {
        AudioProcessor::with_configs(config, module, echo_canceller3_config())
    }

    /// The module's configuration for `config` (the rig starts from it).
    #[cfg(test)]
    pub(crate) fn module_config(config: ProcessingConfig) -> Config {
        config.module_config()
    }

    /// The stages this processor runs.
    pub fn config(&self) -> ProcessingConfig {
        self.config
    }

    /// Notes a frame the speaker played: the echo canceller's reference.
    pub fn on_far_end_frame(&mut self, frame: &Frame) {
        let mut unused = [0i16; CHUNK_SAMPLES];
        for chunk in frame.chunks_exact(CHUNK_SAMPLES) {
            // Fails only for formats other than the one it was built with.
            let _ = self.module.process_render_i16(chunk, &mut unused);
        }
    }

    /// Cleans a microphone frame in place.
    pub fn process_captured_frame(&mut self, frame: &mut Frame) {
        let mut cleaned = [0i16; CHUNK_SAMPLES];
        for chunk in frame.chunks_exact_mut(CHUNK_SAMPLES) {
            if self.module.process_capture_i16(chunk, &mut cleaned).is_ok() {
                chunk.copy_from_slice(&cleaned);
            }
        }
    }
}

/// The playback side's end of the far-end channel.
#[derive(Debug, Clone)]
pub struct FarEndTap {
    frames: SyncSender<Frame>,
}

impl FarEndTap {
    /// Hands a frame just written to the speaker to the capture side; never
    /// waits (a full channel drops it, a finished call ignores it).
    pub fn played(&self, frame: &Frame) {
        match self.frames.try_send(*frame) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The capture side's stage: the processor and the far end's frames.
pub struct CaptureProcessing {
    processor: AudioProcessor,
    far_end: Option<Receiver<Frame>>,
}

impl CaptureProcessing {
    /// The stage, and the tap the playback side feeds when echo
    /// cancellation is on (without it the far end is not needed).
    pub fn new(config: ProcessingConfig) -> (CaptureProcessing, Option<FarEndTap>) {
        let processor = AudioProcessor::new(config);
        if !config.echo_cancellation {
            return (CaptureProcessing { processor, far_end: None }, None);
        }
        let (frames, far_end) = sync_channel(FAR_END_FRAMES);
        (CaptureProcessing { processor, far_end: Some(far_end) }, Some(FarEndTap { frames }))
    }

    /// Takes what was played since the last frame, then cleans `frame`.
    pub fn process(&mut self, frame: &mut Frame) {
        if let Some(far_end) = &self.far_end {
            while let Ok(played) = far_end.try_recv() {
                self.processor.on_far_end_frame(&played);
            }
        }
        self.processor.process_captured_frame(frame);
    }
}

#[cfg(test)]
#[path = "processing_tests.rs"]
mod tests;
