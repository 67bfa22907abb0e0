//! Where voice comes from and goes to, behind two traits, so the pipeline
//! runs the same with a sound card (the desktop app's, over cpal, in
//! `softphone_app::audio::device`), WAV files ([`wav`]), a tone or silence
//! (tests, the headless peer, machines with no sound card).

pub mod reopen;
pub mod resample;
pub mod wav;

use thiserror::Error;

use super::codec::{FRAME_SAMPLES, Frame, SAMPLE_RATE};

/// Why audio could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AudioError {
    /// No such device (or no device at all); the call goes on without it.
    #[error("no {direction} device {name:?}")]
    NoDevice { direction: &'static str, name: String },
    /// The device exists but would not open or stopped working.
    #[error("audio device: {0}")]
    Device(String),
    /// The device stopped delivering or taking frames for a second.
    #[error("audio device stalled")]
    Stalled,
    #[error("WAV file {path}: {message}")]
    Wav { path: String, message: String },
}

/// Frames of 20 ms, 48 kHz mono, in capture order.
pub trait AudioSource: Send {
    /// Fills `frame` with the next 20 ms. A device blocks until they were
    /// captured (it paces the sender); files and generators return at once.
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError>;

    /// Frames the source lost since it opened because nobody read them in
    /// time (a device's overruns: the sender fell behind the sound card).
    /// Files and generators cannot lose any: 0.
    fn overruns(&self) -> u64 {
        0
    }
}

/// Takes frames of 20 ms, 48 kHz mono, in playback order.
pub trait AudioSink: Send {
    /// Blocks until the sink wants its next frame: a device until what it
    /// holds runs low (it paces the receiver), files and memory not at
    /// all. The playback thread waits here *before* it takes the frame
    /// from the jitter buffer, so a played frame is decoded as late as it
    /// can be and never waits in the thread: waiting in `write_frame`
    /// instead held each frame for one more frame's time (20 ms of
    /// mouth-to-ear, docs/media.md "Two apps on the rig").
    fn wait_for_room(&mut self) -> Result<(), AudioError> {
        Ok(())
    }

    /// Plays or stores one frame. After [`AudioSink::wait_for_room`] it
    /// returns at once; without, a device blocks while its queue is full.
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError>;

    /// Times the sink found nothing to play since it opened (a device's
    /// underruns: the receiver fell behind the sound card). Files and
    /// memory cannot run dry: 0.
    fn underruns(&self) -> u64 {
        0
    }
}

/// A source of digital silence (no `--audio-in`, or no microphone).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silence;

impl AudioSource for Silence {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        frame.fill(0);
        Ok(())
    }
}

/// A sink that discards (no speaker).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl AudioSink for Discard {
    fn write_frame(&mut self, _frame: &Frame) -> Result<(), AudioError> {
        Ok(())
    }
}

/// A sine tone, continuous across frames.
#[derive(Debug, Clone)]
pub struct Tone {
    /// Phase advance per sample, radians.
    step: f64,
    phase: f64,
    /// Peak amplitude in sample units.
    amplitude: f64,
}

impl Tone {
    /// A tone of `hz` at `dbfs` peak (0 dBFS is full scale).
    pub fn new(hz: f64, dbfs: f64) -> Tone {
        let step = 2.0 * std::f64::consts::PI * hz / f64::from(SAMPLE_RATE);
        Tone { step, phase: 0.0, amplitude: 32767.0 * 10f64.powf(dbfs.min(0.0) / 20.0) }
    }
}

impl AudioSource for Tone {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        for sample in frame.iter_mut() {
            *sample = (self.amplitude * self.phase.sin()) as i16;
            self.phase = (self.phase + self.step) % (2.0 * std::f64::consts::PI);
        }
        Ok(())
    }
}

/// A sink that keeps everything in memory (tests; the echo peer's delay line).
#[derive(Debug, Default, Clone)]
pub struct Recording {
    pub samples: Vec<i16>,
}

impl AudioSink for Recording {
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        self.samples.extend_from_slice(frame);
        Ok(())
    }
}

/// A source that plays samples from memory, then silence.
#[derive(Debug, Default, Clone)]
pub struct Playback {
    samples: Vec<i16>,
    position: usize,
}

impl Playback {
    pub fn new(samples: Vec<i16>) -> Playback {
        Playback { samples, position: 0 }
    }
    /// Whether all samples have been read.
    pub fn is_finished(&self) -> bool {
        self.position >= self.samples.len()
    }
}

impl AudioSource for Playback {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        let end = (self.position + FRAME_SAMPLES).min(self.samples.len());
        let available = &self.samples[self.position.min(end)..end];
        frame[..available.len()].copy_from_slice(available);
        frame[available.len()..].fill(0);
        self.position = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::level::LevelMeter;

    #[test]
    fn a_tone_has_its_level_and_silence_is_silent() {
        let mut tone = Tone::new(1000.0, -6.0);
        let mut frame = [0; FRAME_SAMPLES];
        tone.read_frame(&mut frame).unwrap();
        let level = LevelMeter::default().measure(&frame);
        assert!((level.peak_dbfs + 6.0).abs() < 0.1, "{level:?}");
        Silence.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 0));
    }

    #[test]
    fn playback_runs_out_into_silence() {
        let mut source = Playback::new(vec![7; FRAME_SAMPLES + 10]);
        let mut frame = [0; FRAME_SAMPLES];
        source.read_frame(&mut frame).unwrap();
        assert!(!source.is_finished());
        source.read_frame(&mut frame).unwrap();
        assert_eq!((frame[9], frame[10]), (7, 0));
        assert!(source.is_finished());
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 0));
    }
}
