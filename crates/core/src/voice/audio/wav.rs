//! WAV files as a microphone and a speaker: [`WavSource`] reads any
//! sample rate, mono or stereo (mixed down, resampled to 48 kHz) and gives
//! silence once the file runs out; [`WavSink`] writes 48 kHz mono 16-bit
//! PCM and keeps the file valid while it grows, so a process stopped at
//! any moment leaves a playable file.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::resample::Resampler;
use super::{AudioError, AudioSink, AudioSource};
use crate::voice::codec::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

/// Input frames read from the file at a time.
const READ_CHUNK: usize = 4096;
/// The sink makes the header match the data and syncs the file this
/// often (one second of audio): a stop loses at most that much.
const SYNC_EVERY_FRAMES: u64 = 50;
const HEADER_LEN: u64 = 44;

fn wav_error(path: &Path, error: impl std::fmt::Display) -> AudioError {
    AudioError::Wav { path: path.display().to_string(), message: error.to_string() }
}

/// See the module documentation.
pub struct WavSource {
    path: PathBuf,
    reader: hound::WavReader<BufReader<File>>,
    channels: usize,
    /// Converts one integer or float sample to -1.0..1.0.
    scale: f32,
    float: bool,
    resampler: Resampler,
    /// Resampled samples (in sample units) not yet handed out.
    ready: VecDeque<f32>,
    /// The file is exhausted and the resampler flushed.
    finished: bool,
}

impl WavSource {
    pub fn open(path: &Path) -> Result<WavSource, AudioError> {
        let reader = hound::WavReader::open(path).map_err(|e| wav_error(path, e))?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(wav_error(path, "no channels or no sample rate"));
        }
        let float = spec.sample_format == hound::SampleFormat::Float;
        if float && spec.bits_per_sample != 32 {
            return Err(wav_error(path, "only 32-bit float samples are supported"));
        }
        let scale = if float { 32768.0 } else { 32768.0 / (1u64 << (spec.bits_per_sample - 1)) as f32 };
        Ok(WavSource {
            path: path.to_path_buf(),
            reader,
            channels: usize::from(spec.channels),
            scale,
            float,
            resampler: Resampler::new(spec.sample_rate, SAMPLE_RATE),
            ready: VecDeque::new(),
            finished: false,
        })
    }

    /// Whether every sample of the file has been read out.
    pub fn is_finished(&self) -> bool {
        self.finished && self.ready.is_empty()
    }

    /// The whole file as 48 kHz mono, in whole frames (the last one padded
    /// with silence): what a call reading it would send.
    pub fn read_all(path: &Path) -> Result<Vec<i16>, AudioError> {
        let mut source = WavSource::open(path)?;
        let mut samples = Vec::new();
        let mut frame = [0; FRAME_SAMPLES];
        while !source.is_finished() {
            source.read_frame(&mut frame)?;
            samples.extend_from_slice(&frame);
        }
        Ok(samples)
    }

    /// Reads and converts the next chunk of the file.
    fn refill(&mut self) -> Result<(), AudioError> {
        let wanted = READ_CHUNK * self.channels;
        let raw: Vec<f32> = if self.float {
            self.reader.samples::<f32>().take(wanted).collect::<Result<_, _>>()
        } else {
            self.reader.samples::<i32>().take(wanted).map(|s| s.map(|s| s as f32)).collect::<Result<_, _>>()
        }
        .map_err(|e| wav_error(&self.path, e))?;
        // Mono: the mean of the channels, in 16-bit sample units.
        let mono: Vec<f32> = raw
            .chunks(self.channels)
            .map(|frame| frame.iter().sum::<f32>() * self.scale / self.channels as f32)
            .collect();
        let mut out = Vec::with_capacity(mono.len() * 2 + 64);
        if raw.len() < wanted {
            self.resampler.process(&mono, &mut out);
            self.resampler.finish(&mut out);
            self.finished = true;
        } else {
            self.resampler.process(&mono, &mut out);
        }
        self.ready.extend(out);
        Ok(())
    }
}

impl AudioSource for WavSource {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        while self.ready.len() < FRAME_SAMPLES && !self.finished {
            self.refill()?;
        }
        for sample in frame.iter_mut() {
            let value = self.ready.pop_front().unwrap_or(0.0);
            *sample = value.round().clamp(-32768.0, 32767.0) as i16;
        }
        Ok(())
    }
}

/// See the module documentation.
pub struct WavSink {
    path: PathBuf,
    file: BufWriter<File>,
    /// Samples written so far.
    samples: u64,
}

/// The 44-byte header of a PCM WAV holding `samples` 48 kHz mono 16-bit samples.
fn header(samples: u64) -> [u8; HEADER_LEN as usize] {
    let data_len = (samples * 2).min(u64::from(u32::MAX) - 36) as u32;
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

impl WavSink {
    /// Creates (or truncates) `path` as an empty, valid WAV file.
    pub fn create(path: &Path) -> Result<WavSink, AudioError> {
        let file = File::create(path).map_err(|e| wav_error(path, e))?;
        let mut sink = WavSink { path: path.to_path_buf(), file: BufWriter::new(file), samples: 0 };
        sink.file.write_all(&header(0)).map_err(|e| wav_error(path, e))?;
        sink.sync()?;
        Ok(sink)
    }

    /// Writes the buffered samples, makes the header's sizes match them
    /// and syncs the file to disk.
    pub fn sync(&mut self) -> Result<(), AudioError> {
        let samples = self.samples;
        let result = (|| {
            self.file.flush()?;
            let file = self.file.get_mut();
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header(samples))?;
            file.seek(SeekFrom::Start(HEADER_LEN + samples * 2))?;
            file.sync_data()
        })();
        result.map_err(|e| wav_error(&self.path, e))
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

impl AudioSink for WavSink {
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        let mut bytes = [0u8; FRAME_SAMPLES * 2];
        for (chunk, sample) in bytes.chunks_exact_mut(2).zip(frame) {
            chunk.copy_from_slice(&sample.to_le_bytes());
        }
        self.file.write_all(&bytes).map_err(|e| wav_error(&self.path, e))?;
        self.samples += FRAME_SAMPLES as u64;
        if (self.samples / FRAME_SAMPLES as u64).is_multiple_of(SYNC_EVERY_FRAMES) {
            self.sync()?;
        }
        Ok(())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        // Best effort: an error here has nowhere to go, and the last
        // periodic sync already left a valid file.
        let _ = self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            writer.write_sample(s).unwrap();
        }
        writer.finalize().unwrap();
    }

    #[test]
    fn a_stereo_44k_file_becomes_48k_mono_then_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        // One second of a constant stereo pair: left 1000, right 3000.
        let samples: Vec<i16> = (0..44_100).flat_map(|_| [1000, 3000]).collect();
        write_wav(&path, 44_100, 2, &samples);
        let mut source = WavSource::open(&path).unwrap();
        let mut frame = [0; FRAME_SAMPLES];
        let mut frames = Vec::new();
        while !source.is_finished() {
            source.read_frame(&mut frame).unwrap();
            frames.push(frame);
        }
        // 48,000 samples are 50 frames (the last one partly filled).
        assert!((50..=51).contains(&frames.len()), "{}", frames.len());
        assert!(frames[25].iter().all(|&s| (s - 2000).abs() <= 2), "mean of the channels");
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 0));
    }

    #[test]
    fn a_missing_or_bad_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = WavSource::open(&dir.path().join("nope.wav"));
        assert!(matches!(missing, Err(AudioError::Wav { .. })));
        let path = dir.path().join("text.wav");
        std::fs::write(&path, "not a wav").unwrap();
        assert!(matches!(WavSource::open(&path), Err(AudioError::Wav { .. })));
    }

    #[test]
    fn the_sink_file_is_valid_while_it_grows_and_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut sink = WavSink::create(&path).unwrap();
        assert_eq!(hound::WavReader::open(&path).unwrap().len(), 0);
        let frame: Frame = std::array::from_fn(|i| i as i16);
        for _ in 0..SYNC_EVERY_FRAMES + 3 {
            sink.write_frame(&frame).unwrap();
        }
        // Read while the sink is still open (as after a kill): the header
        // covers the synced second.
        let reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!((spec.sample_rate, spec.channels, spec.bits_per_sample), (48_000, 1, 16));
        assert_eq!(reader.len() as u64, SYNC_EVERY_FRAMES * FRAME_SAMPLES as u64);
        drop(sink);
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len() as u64, (SYNC_EVERY_FRAMES + 3) * FRAME_SAMPLES as u64);
        let samples: Vec<i16> = reader.into_samples().map(Result::unwrap).collect();
        assert_eq!(&samples[..FRAME_SAMPLES], &frame[..]);
    }
}
