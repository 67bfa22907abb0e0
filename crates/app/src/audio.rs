//! The sound card as the app sees it: which devices there are, opening a
//! microphone and a speaker for a call, and the settings screen's
//! microphone test. Behind [`AudioDevices`], so the app runs with real
//! cpal devices ([`CpalDevices`], inside [`FallbackDevices`]: a device
//! that ends mid-call moves to the default one) and tests with a fake
//! list and levels (no test needs a sound card). The devices themselves,
//! over cpal: [`device`].

pub mod device;

use crate::audio::device::{DeviceChoice, DeviceList};
use softphone_core::voice::audio::reopen::{ReopenPolicy, ReopeningSink, ReopeningSource};
use softphone_core::voice::audio::{AudioError, AudioSink, AudioSource};
use softphone_core::voice::codec::{FRAME_SAMPLES, Frame};
use softphone_core::voice::level::{Level, LevelMeter};
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
        crate::audio::device::list_devices()
    }

    fn open_input(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSource>, AudioError> {
        Ok(Box::new(crate::audio::device::DeviceSource::open(choice)?))
    }

    fn open_output(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSink>, AudioError> {
        Ok(Box::new(crate::audio::device::DeviceSink::open(choice)?))
    }

    fn paces(&self) -> bool {
        true
    }
}

/// Devices that move to the system default when they end mid-call (a
/// headset unplugged): what `inner` opens, wrapped in
/// [`ReopeningSource`]/[`ReopeningSink`] with `inner`'s default device as
/// the replacement.
pub struct FallbackDevices<D> {
    pub inner: Arc<D>,
    /// How often, and how soon, the default device is tried.
    pub policy: ReopenPolicy,
}

impl<D: AudioDevices + 'static> AudioDevices for FallbackDevices<D> {
    fn list(&self) -> DeviceList {
        self.inner.list()
    }

    fn open_input(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSource>, AudioError> {
        let source = self.inner.open_input(choice)?;
        let inner = self.inner.clone();
        let open_default = Box::new(move || inner.open_input(&DeviceChoice::SystemDefault));
        Ok(Box::new(ReopeningSource::new(source, open_default, self.policy.clone())))
    }

    fn open_output(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSink>, AudioError> {
        let sink = self.inner.open_output(choice)?;
        let inner = self.inner.clone();
        let open_default = Box::new(move || inner.open_output(&DeviceChoice::SystemDefault));
        Ok(Box::new(ReopeningSink::new(sink, open_default, self.policy.clone())))
    }

    fn paces(&self) -> bool {
        self.inner.paces()
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
    use softphone_core::voice::audio::Tone;

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

    /// A sound card whose USB headset is unplugged: it opens, then fails;
    /// the default device works. Counts the default's openings.
    struct HeadsetGone(std::sync::atomic::AtomicUsize);
    impl AudioDevices for HeadsetGone {
        fn list(&self) -> DeviceList {
            DeviceList { inputs: vec!["USB headset".into()], outputs: vec!["USB headset".into()] }
        }
        fn open_input(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSource>, AudioError> {
            match choice {
                DeviceChoice::Named(_) => Ok(Box::new(Unplugged)),
                DeviceChoice::SystemDefault => {
                    self.0.fetch_add(1, Ordering::Relaxed);
                    Ok(Box::new(Tone::new(1000.0, -6.0)))
                }
            }
        }
        fn open_output(&self, choice: &DeviceChoice) -> Result<Box<dyn AudioSink>, AudioError> {
            match choice {
                DeviceChoice::Named(_) => Err(AudioError::Device("unplugged".into())),
                DeviceChoice::SystemDefault => {
                    self.0.fetch_add(1, Ordering::Relaxed);
                    Ok(Box::new(softphone_core::voice::audio::Discard))
                }
            }
        }
        fn paces(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_device_that_ends_moves_to_the_default_one() {
        let card = Arc::new(HeadsetGone(Default::default()));
        let policy = ReopenPolicy { backoff: vec![Duration::ZERO; 3], frame: Duration::ZERO };
        let devices = FallbackDevices { inner: card.clone(), policy };
        assert_eq!(devices.list(), card.list());
        assert!(devices.paces());
        let mut source = devices.open_input(&DeviceChoice::Named("USB headset".into())).unwrap();
        let mut frame = [0; FRAME_SAMPLES];
        source.read_frame(&mut frame).expect("the headset's end is not the call's");
        assert!(frame.iter().all(|&s| s == 0), "silence as it goes");
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().any(|&s| s != 0), "the default microphone's sound");
        assert_eq!(card.0.load(Ordering::Relaxed), 1);
        // A device that does not open at all is the caller's to handle, as before.
        assert!(devices.open_output(&DeviceChoice::Named("USB headset".into())).is_err());
    }
}
