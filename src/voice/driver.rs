//! Runs a voice session on two threads, one each way, with real audio
//! ends: the capture thread reads the source, seals and hands packets to
//! the transport's `transmit`; the playback thread takes packets the
//! transport delivered to the [`PacketInbox`], feeds the jitter buffer and
//! writes the sink. The transport stays outside (the relay's UDP or
//! WebSocket task calls `transmit`'s other end and [`PacketInbox::deliver`]).
//!
//! A device paces itself (its source blocks until a frame is captured, its
//! sink while its queue is full); files and generators are paced by a
//! 20 ms clock ([`Pacing::Clock`]). A failing device does not end the call:
//! the thread goes on with silence on the clock and reports the error; a
//! stalled one (a second without a frame) is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::audio::{AudioError, AudioSink, AudioSource};
use super::codec::FRAME_SAMPLES;
use super::session::{VoiceControl, VoiceReceiver, VoiceSender, VoiceSession};

/// One frame's duration.
const FRAME: Duration = Duration::from_millis(20);
/// Packets waiting for the playback thread at most (half a second).
const INBOX_CAPACITY: usize = 25;

/// Who keeps time for a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// The source and sink block on a sound card's clock.
    Device,
    /// A 20 ms clock (WAV files, tone, silence).
    Clock,
}

/// Where the transport puts received packets; cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct PacketInbox {
    packets: SyncSender<(Vec<u8>, Instant)>,
}

impl PacketInbox {
    /// Hands over a packet that arrived now; drops it if the playback
    /// thread is half a second behind (or gone). Returns whether it was kept.
    pub fn deliver(&self, packet: Vec<u8>) -> bool {
        match self.packets.try_send((packet, Instant::now())) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A running call's voice. Dropping it stops both threads.
pub struct VoiceCall {
    control: VoiceControl,
    inbox: PacketInbox,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<AudioError>>>,
}

/// Sleeps until the next tick of a 20 ms clock that started at `start`.
fn wait_tick(next: &mut Instant) {
    *next += FRAME;
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else if now - *next > 5 * FRAME {
        // Far behind (a stalled machine): do not race to catch up.
        *next = now;
    }
}

/// Keeps an error for `stop`, once per kind in a row.
fn note(errors: &mut Vec<AudioError>, error: AudioError) {
    if errors.last() != Some(&error) {
        errors.push(error);
    }
}

fn capture_loop(
    mut sender: VoiceSender,
    mut source: Box<dyn AudioSource>,
    pacing: Pacing,
    mut transmit: Box<dyn FnMut(Vec<u8>) + Send>,
    stop: Arc<AtomicBool>,
) -> Vec<AudioError> {
    let mut errors = Vec::new();
    let mut failed = false;
    let mut next = Instant::now();
    let mut frame = [0i16; FRAME_SAMPLES];
    while !stop.load(Ordering::Relaxed) {
        if !failed && let Err(error) = source.read_frame(&mut frame) {
            // A stall (a second without a frame) may pass, as when a
            // sound server starts slowly: note it and keep reading.
            failed = error != AudioError::Stalled;
            frame.fill(0);
            note(&mut errors, error);
        }
        if failed || pacing == Pacing::Clock {
            if failed {
                frame.fill(0);
            }
            wait_tick(&mut next);
        }
        if sender.on_captured_frame(&frame, Instant::now()).is_err() {
            break;
        }
        while let Some(packet) = sender.poll_transmit() {
            transmit(packet);
        }
    }
    errors
}

fn playback_loop(
    mut receiver: VoiceReceiver,
    mut sink: Box<dyn AudioSink>,
    pacing: Pacing,
    inbox: Receiver<(Vec<u8>, Instant)>,
    stop: Arc<AtomicBool>,
) -> Vec<AudioError> {
    let mut errors = Vec::new();
    let mut failed = false;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if failed || pacing == Pacing::Clock {
            wait_tick(&mut next);
        }
        while let Ok((packet, arrived)) = inbox.try_recv() {
            // Rejections are counted in the quality line.
            let _ = receiver.on_packet(&packet, arrived);
        }
        let frame = receiver.next_playback_frame(Instant::now());
        if !failed && let Err(error) = sink.write_frame(&frame) {
            failed = error != AudioError::Stalled;
            note(&mut errors, error);
        }
    }
    errors
}

impl VoiceCall {
    /// Starts both threads, each direction with its own pacing (a device
    /// microphone with a file recording, say). `transmit` gets every
    /// sealed packet, in order.
    pub fn start(
        session: VoiceSession,
        (source, capture_pacing): (Box<dyn AudioSource>, Pacing),
        (sink, playback_pacing): (Box<dyn AudioSink>, Pacing),
        transmit: impl FnMut(Vec<u8>) + Send + 'static,
    ) -> VoiceCall {
        let control = session.control();
        let (sender, receiver) = session.split();
        let (packets, inbox) = sync_channel(INBOX_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let (stop_capture, stop_playback) = (Arc::clone(&stop), Arc::clone(&stop));
        let transmit: Box<dyn FnMut(Vec<u8>) + Send> = Box::new(transmit);
        let capture = std::thread::Builder::new()
            .name("voice-capture".into())
            .spawn(move || capture_loop(sender, source, capture_pacing, transmit, stop_capture))
            .expect("spawning a thread");
        let playback = std::thread::Builder::new()
            .name("voice-playback".into())
            .spawn(move || playback_loop(receiver, sink, playback_pacing, inbox, stop_playback))
            .expect("spawning a thread");
        VoiceCall { control, inbox: PacketInbox { packets }, stop, threads: vec![capture, playback] }
    }

    pub fn control(&self) -> VoiceControl {
        self.control.clone()
    }

    pub fn inbox(&self) -> PacketInbox {
        self.inbox.clone()
    }

    /// Stops both threads (within a frame, or a second for a stalled
    /// device) and returns the audio errors they met.
    pub fn stop(mut self) -> Vec<AudioError> {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> Vec<AudioError> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.drain(..).flat_map(|thread| thread.join().unwrap_or_default()).collect()
    }
}

impl Drop for VoiceCall {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::VoiceConfig;
    use crate::voice::audio::Tone;
    use crate::voice::audio::wav::WavSink;
    use crate::voice::crypto::{LocalKey, Role};

    /// A source that fails at once, as an unplugged microphone.
    struct Unplugged;
    impl AudioSource for Unplugged {
        fn read_frame(&mut self, _: &mut crate::voice::codec::Frame) -> Result<(), AudioError> {
            Err(AudioError::Device("unplugged".into()))
        }
    }

    #[test]
    fn two_calls_on_threads_talk_through_inboxes_into_a_wav_file() {
        let (caller_key, callee_key) = (LocalKey::generate(), LocalKey::generate());
        let (caller_public, callee_public) = (caller_key.public(), callee_key.public());
        let now = Instant::now();
        let caller = caller_key.agree(&callee_public, Role::Caller, "t").unwrap();
        let callee = callee_key.agree(&caller_public, Role::Callee, "t").unwrap();
        let caller = VoiceSession::new(caller, VoiceConfig::default(), now).unwrap();
        let callee = VoiceSession::new(callee, VoiceConfig::default(), now).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let heard_path = dir.path().join("heard.wav");
        let sink = Box::new(WavSink::create(&heard_path).unwrap());
        // The callee's inbox must exist before the caller transmits into it.
        let (to_callee_tx, to_callee_rx) = std::sync::mpsc::channel::<PacketInbox>();
        let caller_call = VoiceCall::start(
            caller,
            (Box::new(Tone::new(440.0, -12.0)), Pacing::Clock),
            (Box::new(crate::voice::audio::Discard), Pacing::Clock),
            {
                let mut inbox: Option<PacketInbox> = None;
                move |packet| {
                    let inbox = inbox.get_or_insert_with(|| to_callee_rx.recv().unwrap());
                    inbox.deliver(packet);
                }
            },
        );
        let callee_call =
            VoiceCall::start(callee, (Box::new(Unplugged), Pacing::Clock), (sink, Pacing::Clock), |_| {});
        to_callee_tx.send(callee_call.inbox()).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        let callee_errors = callee_call.stop();
        assert_eq!(caller_call.stop(), vec![]);
        assert_eq!(callee_errors, vec![AudioError::Device("unplugged".into())]);
        let samples: Vec<i16> =
            hound::WavReader::open(&heard_path).unwrap().into_samples().map(Result::unwrap).collect();
        assert!(samples.len() >= 10 * FRAME_SAMPLES, "{} samples", samples.len());
        let last: &[i16; FRAME_SAMPLES] = samples[samples.len() - FRAME_SAMPLES..].try_into().unwrap();
        assert!(
            crate::voice::level::LevelMeter::default().measure(last).rms_dbfs > -25.0,
            "the tone came through"
        );
    }
}
