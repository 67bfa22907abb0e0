//! Devices that come and go: a microphone or speaker that ends mid-call
//! (a headset unplugged: the stream reports the device gone, or stops
//! delivering) is replaced by the system's default device, and the call
//! goes on. [`ReopeningSource`] and [`ReopeningSink`] wrap the device a
//! call opened with a way to open the default one; when the device fails
//! (or stalls [`STALLS_BEFORE_REOPENING`] times in a row) they try the
//! default after each wait of [`ReopenPolicy::backoff`], playing silence
//! (or discarding) at the device's pace meanwhile, and give up with an
//! error when every try failed: the call then carries on with silence, as
//! it did before (see `voice::call`).
//!
//! No cpal here: the opener is a closure, so tests drive this with a fake
//! device that fails and need no sound card.

use std::time::{Duration, Instant};

use super::{AudioError, AudioSink, AudioSource};
use crate::voice::codec::Frame;

/// Stalls in a row after which the device is taken for gone: one less
/// than the call gives a device before it gives up on it, so the default
/// device is tried first.
pub const STALLS_BEFORE_REOPENING: u32 = 2;

/// How a failed device is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReopenPolicy {
    /// The wait before each try to open the default device: as many tries
    /// as entries. A sound server needs a moment to settle after an unplug.
    pub backoff: Vec<Duration>,
    /// How long a frame of silence takes while there is no device: the
    /// pace the device kept.
    pub frame: Duration,
}

impl Default for ReopenPolicy {
    fn default() -> Self {
        ReopenPolicy {
            backoff: [0, 250, 500, 1000, 2000].into_iter().map(Duration::from_millis).collect(),
            frame: Duration::from_millis(20),
        }
    }
}

/// Opens the replacement device.
pub type Opener<T> = Box<dyn FnMut() -> Result<T, AudioError> + Send>;

/// The device in use, or the tries to replace it.
struct Reopener<T> {
    /// `None` while replacing a failed device.
    current: Option<T>,
    open: Opener<T>,
    policy: ReopenPolicy,
    /// "microphone" or "speaker", for the log.
    what: &'static str,
    stalls_in_a_row: u32,
    /// Tries made since the device failed.
    tries: usize,
    /// When the next try is due.
    next_try: Instant,
    /// Why the last try failed.
    last_error: Option<AudioError>,
}

/// What to do with this frame.
enum Step<'a, T> {
    /// Use the device.
    Device(&'a mut T),
    /// No device yet: silence (or discard) at the device's pace.
    Wait,
}

impl<T> Reopener<T> {
    fn new(current: T, open: Opener<T>, policy: ReopenPolicy, what: &'static str) -> Reopener<T> {
        let now = Instant::now();
        Reopener {
            current: Some(current),
            open,
            policy,
            what,
            stalls_in_a_row: 0,
            tries: 0,
            next_try: now,
            last_error: None,
        }
    }

    /// The device to use now, after a try to open the default when one is due;
    /// an error once every try failed.
    fn step(&mut self) -> Result<Step<'_, T>, AudioError> {
        if self.current.is_none() {
            if self.tries >= self.policy.backoff.len() {
                let last = self.last_error.as_ref().map_or_else(String::new, |e| format!(": {e}"));
                return Err(AudioError::Device(format!(
                    "the {} is gone and the default would not open{last}",
                    self.what
                )));
            }
            if Instant::now() < self.next_try {
                return Ok(Step::Wait);
            }
            self.tries += 1;
            match (self.open)() {
                Ok(device) => {
                    tracing::info!("voice: the {} moved to the system default device", self.what);
                    self.current = Some(device);
                    self.stalls_in_a_row = 0;
                }
                Err(e) => {
                    tracing::info!(
                        "voice: the default {} did not open ({e}); try {} of {}",
                        self.what,
                        self.tries,
                        self.policy.backoff.len()
                    );
                    self.last_error = Some(e);
                    self.schedule_try();
                    return Ok(Step::Wait);
                }
            }
        }
        Ok(self.current.as_mut().map_or(Step::Wait, Step::Device))
    }

    fn schedule_try(&mut self) {
        let wait = self.policy.backoff.get(self.tries).copied().unwrap_or_default();
        self.next_try = Instant::now() + wait;
    }

    /// What the device returned: a failure (or stalls in a row) drops it
    /// and starts the tries; a stall short of that goes to the caller.
    fn outcome(&mut self, result: Result<(), AudioError>) -> Result<(), AudioError> {
        match result {
            Ok(()) => {
                self.stalls_in_a_row = 0;
                Ok(())
            }
            Err(AudioError::Stalled) if self.stalls_in_a_row + 1 < STALLS_BEFORE_REOPENING => {
                self.stalls_in_a_row += 1;
                Err(AudioError::Stalled)
            }
            Err(e) => {
                tracing::warn!("voice: the {} failed ({e}); moving to the system default device", self.what);
                self.current = None;
                self.tries = 0;
                self.last_error = Some(e);
                self.schedule_try();
                Ok(())
            }
        }
    }

    /// A frame's time without a device.
    fn wait_a_frame(&self) {
        if !self.policy.frame.is_zero() {
            std::thread::sleep(self.policy.frame);
        }
    }
}

/// A microphone that moves to the default device when it ends. See the
/// module documentation.
pub struct ReopeningSource {
    reopener: Reopener<Box<dyn AudioSource>>,
    /// Overruns of the devices already replaced, so the count never goes back.
    overruns_before: u64,
}

impl ReopeningSource {
    /// `source`, replaced by what `open_default` opens when it fails.
    pub fn new(
        source: Box<dyn AudioSource>,
        open_default: Opener<Box<dyn AudioSource>>,
        policy: ReopenPolicy,
    ) -> Self {
        ReopeningSource {
            reopener: Reopener::new(source, open_default, policy, "microphone"),
            overruns_before: 0,
        }
    }
}

impl AudioSource for ReopeningSource {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        let (result, overruns) = match self.reopener.step()? {
            Step::Device(source) => (source.read_frame(frame), source.overruns()),
            Step::Wait => {
                self.reopener.wait_a_frame();
                frame.fill(0);
                return Ok(());
            }
        };
        if result.is_err() {
            frame.fill(0);
        }
        let result = self.reopener.outcome(result);
        if self.reopener.current.is_none() {
            self.overruns_before += overruns;
        }
        result
    }

    fn overruns(&self) -> u64 {
        self.overruns_before + self.reopener.current.as_ref().map_or(0, |source| source.overruns())
    }
}

/// A speaker that moves to the default device when it ends. See the
/// module documentation.
pub struct ReopeningSink {
    reopener: Reopener<Box<dyn AudioSink>>,
    /// Underruns of the devices already replaced, so the count never goes back.
    underruns_before: u64,
}

impl ReopeningSink {
    /// `sink`, replaced by what `open_default` opens when it fails.
    pub fn new(
        sink: Box<dyn AudioSink>,
        open_default: Opener<Box<dyn AudioSink>>,
        policy: ReopenPolicy,
    ) -> Self {
        ReopeningSink { reopener: Reopener::new(sink, open_default, policy, "speaker"), underruns_before: 0 }
    }

    /// Passes what the device in use returned through the reopener: a
    /// failure drops the device (its underruns kept) and starts the tries.
    fn outcome(&mut self, result: Result<(), AudioError>, underruns: u64) -> Result<(), AudioError> {
        let result = self.reopener.outcome(result);
        if self.reopener.current.is_none() {
            self.underruns_before += underruns;
        }
        result
    }
}

impl AudioSink for ReopeningSink {
    /// The device's wait, after a try to open the default when one is
    /// due; with no device, a frame's time (the pace the device kept).
    /// The tries are made here only, once a frame: the playback thread
    /// waits before each frame it writes.
    fn wait_for_room(&mut self) -> Result<(), AudioError> {
        let (result, underruns) = match self.reopener.step()? {
            Step::Device(sink) => (sink.wait_for_room(), sink.underruns()),
            Step::Wait => {
                self.reopener.wait_a_frame();
                return Ok(());
            }
        };
        self.outcome(result, underruns)
    }

    /// Plays on the device in use; with none (replacing a failed one) the
    /// frame is discarded.
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        let Some(sink) = self.reopener.current.as_mut() else {
            return Ok(());
        };
        let (result, underruns) = (sink.write_frame(frame), sink.underruns());
        self.outcome(result, underruns)
    }

    fn underruns(&self) -> u64 {
        self.underruns_before + self.reopener.current.as_ref().map_or(0, |sink| sink.underruns())
    }
}

#[cfg(test)]
#[path = "reopen_tests.rs"]
mod tests;
