//! The sound card as the app sees it: which devices there are, opening a
//! microphone and a speaker for a call, and the settings screen's
//! microphone test. Behind [`AudioDevices`], so the app runs with real
//! cpal devices ([`CpalDevices`]) and tests with a fake list and levels
//! (no test needs a sound card).

use crate::voice::audio::device::{DeviceChoice, DeviceList};
use crate::voice::audio::{AudioError, AudioSink, AudioSource};
use crate::voice::codec::{FRAME_SAMPLES, Frame};
use crate::voice::level::{Level, LevelMeter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the app gets its microphone and speaker.
pub trait AudioDevices: Send + Sync {
    /// The devices the settings screen offers (besides "System default").
    fn list(&self) -> DeviceList;
    fn open_input(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSource>, AudioError>;
    fn open_output(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSink>, AudioError>;
    /// Whether what it opens blocks until a frame is captured or played
    /// (a sound card does; a fake returns at once).
    fn paces(&self) -> bool;
}

/// The default host's devices through cpal.
#[derive(Debug, Default)]
pub struct CpalDevices;

impl AudioDevices for CpalDevices {
    fn list(&self) -> DeviceList {
        crate::voice::audio::device::list_devices()
    }

    fn open_input(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSource>, AudioError> {
        Ok(Box::new(crate::voice::audio::device::DeviceSource::open(choice)?))
    }

    fn open_output(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSink>, AudioError> {
        Ok(Box::new(crate::voice::audio::device::DeviceSink::open(choice)?))
    }

    fn paces(&self) -> bool {
        true
    }
}

/// The settings screen's microphone test: a thread reads the chosen
/// input and keeps its level; dropping the test stops it.
pub struct MicTest {
    /// The latest reading, for the meter.
    level: Arc<Mutex<Level>>,
    /// Tells the thread to finish.
    stop: Arc<AtomicBool>,
    /// Why the input stopped delivering, once it has.
    failed: Arc<Mutex<Option<String>>>,
}

impl MicTest {
    /// Measures `source` until dropped. A source that returns at once (a
    /// file, a fake) is paced at 20 ms a frame; a device paces itself.
    pub fn start(mut source: Box<dyn AudioSource>) -> MicTest {
        let level = Arc::new(Mutex::new(Level::SILENT));
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(Mutex::new(None));
        let (thread_level, thread_stop, thread_failed) = (level.clone(), stop.clone(), failed.clone());
        let spawned = std::thread::Builder::new().name("mic-test".into()).spawn(move || {
            let mut meter = LevelMeter::default();
            let mut frame: Frame = [0; FRAME_SAMPLES];
            let start = Instant::now();
            let mut frames = 0u32;
            while !thread_stop.load(Ordering::Relaxed) {
                if let Err(e) = source.read_frame(&mut frame) {
                    *thread_failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                    break;
                }
                *thread_level.lock().unwrap_or_else(|p| p.into_inner()) = meter.measure(&frame);
                frames += 1;
                let due = start + Duration::from_millis(20) * frames;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        });
        if let Err(e) = spawned {
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
        MicTest { level, stop, failed }
    }

    pub fn level(&self) -> Level {
        *self.level.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the microphone stopped, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for MicTest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A level as a meter's fill, 0.0 to 1.0: -60 dBFS and below is empty.
pub fn meter_fill(level: Level) -> f32 {
    ((level.rms_dbfs + 60.0) / 60.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::audio::Tone;

    /// A source that fails at once, as an unplugged microphone.
    struct Unplugged;
    impl AudioSource for Unplugged {
        fn read_frame(&mut self, _: &mut Frame) -> Result<(), AudioError> {
            Err(AudioError::Device("unplugged".into()))
        }
    }

    /// Moved from the `voice::driver` mic test when that duplicate went.
    #[test]
    fn the_mic_test_meters_the_source_and_reports_a_failure() {
        let test = MicTest::start(Box::new(Tone::new(1000.0, -6.0)));
        let deadline = Instant::now() + Duration::from_secs(5);
        while test.level().peak_dbfs < -7.0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!((test.level().peak_dbfs + 6.0).abs() < 0.2, "{:?}", test.level());
        assert_eq!(test.failure(), None);
        let failed = MicTest::start(Box::new(Unplugged));
        let deadline = Instant::now() + Duration::from_secs(5);
        while failed.failure().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(failed.failure(), Some(AudioError::Device("unplugged".into()).to_string()));
    }
}
