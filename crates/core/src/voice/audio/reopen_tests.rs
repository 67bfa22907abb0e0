//! A device that fails mid-call, faked: no sound card needed.

use super::*;
use crate::voice::codec::FRAME_SAMPLES;
use std::sync::{Arc, Mutex};

/// Gives `frames` frames of `value`, then fails with `error` for good.
struct Failing {
    value: i16,
    frames: usize,
    error: AudioError,
    written: Arc<Mutex<Vec<i16>>>,
}

impl AudioSource for Failing {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        if self.frames == 0 {
            return Err(self.error.clone());
        }
        self.frames -= 1;
        frame.fill(self.value);
        Ok(())
    }
    fn overruns(&self) -> u64 {
        u64::from(self.value as u16)
    }
}

impl AudioSink for Failing {
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        if self.frames == 0 {
            return Err(self.error.clone());
        }
        self.frames -= 1;
        self.written.lock().unwrap().push(frame[0]);
        Ok(())
    }
    fn underruns(&self) -> u64 {
        u64::from(self.value as u16)
    }
}

fn gone() -> AudioError {
    AudioError::Device("The requested device is no longer available".into())
}

fn failing(value: i16, frames: usize, error: AudioError, written: &Arc<Mutex<Vec<i16>>>) -> Failing {
    Failing { value, frames, error, written: written.clone() }
}

/// Tries at once, and no waiting between frames: the test is not timed.
fn quick(tries: usize) -> ReopenPolicy {
    ReopenPolicy { backoff: vec![Duration::ZERO; tries], frame: Duration::ZERO }
}

/// An opener that fails `failures` times, then opens what `make` makes; counts its calls.
fn opener<T: 'static>(
    failures: usize,
    calls: Arc<Mutex<usize>>,
    make: impl Fn() -> T + Send + 'static,
) -> Opener<T> {
    Box::new(move || {
        let mut n = calls.lock().unwrap();
        *n += 1;
        if *n <= failures {
            Err(AudioError::NoDevice { direction: "input", name: "system default".into() })
        } else {
            Ok(make())
        }
    })
}

fn read(source: &mut dyn AudioSource) -> Result<i16, AudioError> {
    let mut frame = [7; FRAME_SAMPLES];
    source.read_frame(&mut frame)?;
    assert!(frame.iter().all(|&s| s == frame[0]));
    Ok(frame[0])
}

#[test]
fn an_unplugged_microphone_moves_to_the_default_without_an_error() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0));
    let w = written.clone();
    let headset = failing(100, 2, gone(), &written);
    let open_default =
        opener(2, calls.clone(), move || Box::new(failing(200, 1000, gone(), &w)) as Box<dyn AudioSource>);
    let mut source = ReopeningSource::new(Box::new(headset), open_default, quick(4));
    let got: Vec<i16> = (0..7).map(|_| read(&mut source).expect("the call never sees the failure")).collect();
    // Two frames of the headset, silence while the default is tried (it
    // fails twice, then opens), then the default device.
    assert_eq!(got, [100, 100, 0, 0, 0, 200, 200]);
    assert_eq!(*calls.lock().unwrap(), 3);
    // The headset's 100 overruns are kept beside the default's 200.
    assert_eq!(source.overruns(), 300);
}

#[test]
fn when_the_default_never_opens_the_source_gives_up_with_an_error() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0));
    let w = written.clone();
    let open_default = opener(usize::MAX, calls.clone(), move || {
        Box::new(failing(1, 1, gone(), &w)) as Box<dyn AudioSource>
    });
    let mut source =
        ReopeningSource::new(Box::new(failing(100, 1, gone(), &written)), open_default, quick(3));
    assert_eq!(read(&mut source), Ok(100));
    for _ in 0..4 {
        assert_eq!(read(&mut source), Ok(0), "silence while trying");
    }
    match read(&mut source) {
        Err(AudioError::Device(message)) => assert!(message.contains("microphone is gone"), "{message}"),
        other => panic!("expected the give-up error, got {other:?}"),
    }
    assert_eq!(*calls.lock().unwrap(), 3, "as many tries as the policy has");
}

#[test]
fn a_stall_is_passed_on_once_and_a_second_one_moves_to_the_default() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0));
    let w = written.clone();
    let open_default =
        opener(0, calls.clone(), move || Box::new(failing(300, 10, gone(), &w)) as Box<dyn AudioSource>);
    let mut source = ReopeningSource::new(
        Box::new(failing(100, 0, AudioError::Stalled, &written)),
        open_default,
        quick(2),
    );
    assert_eq!(read(&mut source), Err(AudioError::Stalled), "one stall: the call retries the device");
    assert_eq!(read(&mut source), Ok(0), "the second: taken for gone");
    assert_eq!(read(&mut source), Ok(300));
    assert_eq!(*calls.lock().unwrap(), 1);
}

#[test]
fn an_unplugged_speaker_moves_to_the_default_and_keeps_its_underruns() {
    let headset_frames = Arc::new(Mutex::new(Vec::new()));
    let default_frames = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0));
    let d = default_frames.clone();
    let open_default =
        opener(1, calls.clone(), move || Box::new(failing(5, 1000, gone(), &d)) as Box<dyn AudioSink>);
    let mut sink =
        ReopeningSink::new(Box::new(failing(3, 2, gone(), &headset_frames)), open_default, quick(3));
    for value in 1..=6 {
        sink.wait_for_room().expect("the call never sees the failure");
        sink.write_frame(&[value; FRAME_SAMPLES]).expect("the call never sees the failure");
    }
    // Frames 1 and 2 on the headset; 3 lost as it fails; 4 discarded while
    // the default fails to open; from 5 on, the default plays.
    assert_eq!(*headset_frames.lock().unwrap(), [1, 2]);
    assert_eq!(*default_frames.lock().unwrap(), [5, 6]);
    // The headset's 3 underruns are kept beside the default's 5.
    assert_eq!(sink.underruns(), 8);
}
