//! Cleans the voice processing rig's scenes with WebRTC's 2016 module
//! (AEC2 with the extended filter and delay-agnostic mode, NS, AGC1
//! adaptive digital, high-pass): reads `<scene>-far.wav` and
//! `<scene>-mic.wav` from DIR, writes `<scene>-out-apm03.wav` and, for
//! the echo scene, its CPU time in `echo-cpu-apm03.txt` (nanoseconds).

use std::path::Path;
use std::time::Duration;

use webrtc_audio_processing::{
    Config, EchoCancellation, EchoCancellationSuppressionLevel, GainControl, GainControlMode,
    InitializationConfig, NoiseSuppression, NoiseSuppressionLevel, Processor, NUM_SAMPLES_PER_FRAME,
};

fn read(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader.samples::<i16>().map(|s| f32::from(s.unwrap()) / 32768.0).collect()
}

fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(stat.split_whitespace().next().unwrap().parse().unwrap())
}

fn processor() -> Processor {
    let init = InitializationConfig { num_capture_channels: 1, num_render_channels: 1, ..Default::default() };
    let mut processor = Processor::new(&init).unwrap();
    processor.set_config(Config {
        echo_cancellation: Some(EchoCancellation {
            suppression_level: EchoCancellationSuppressionLevel::Moderate,
            enable_extended_filter: true,
            enable_delay_agnostic: true,
            stream_delay_ms: None,
        }),
        noise_suppression: Some(NoiseSuppression { suppression_level: NoiseSuppressionLevel::Moderate }),
        gain_control: Some(GainControl {
            mode: GainControlMode::AdaptiveDigital,
            target_level_dbfs: 3,
            compression_gain_db: 9,
            enable_limiter: true,
        }),
        enable_high_pass_filter: true,
        ..Config::default()
    });
    processor
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: webrtc-apm-legacy DIR");
    let dir = Path::new(&dir);
    let frame = NUM_SAMPLES_PER_FRAME as usize;
    for scene in ["echo", "talk", "alone", "noisy"] {
        let far = read(&dir.join(format!("{scene}-far.wav")));
        let mic = read(&dir.join(format!("{scene}-mic.wav")));
        let mut processor = processor();
        let mut out = Vec::with_capacity(mic.len());
        let start = thread_cpu();
        for (played, captured) in far.chunks_exact(frame).zip(mic.chunks_exact(frame)) {
            let mut played = played.to_vec();
            processor.process_render_frame(&mut played).unwrap();
            let mut captured = captured.to_vec();
            processor.process_capture_frame(&mut captured).unwrap();
            out.extend_from_slice(&captured);
        }
        let cpu = thread_cpu() - start;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(dir.join(format!("{scene}-out-apm03.wav")), spec).unwrap();
        for s in out {
            writer.write_sample((s * 32768.0).clamp(-32768.0, 32767.0) as i16).unwrap();
        }
        writer.finalize().unwrap();
        if scene == "echo" {
            std::fs::write(dir.join("echo-cpu-apm03.txt"), cpu.as_nanos().to_string()).unwrap();
        }
    }
}
