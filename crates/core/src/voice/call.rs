//! The voice of one accepted call, driven for real: a [`RelayLink`] to the
//! server's relay, the [`VoiceSession`] split in two, and four workers:
//!
//! - capture (a thread): source -> Opus, seal -> bounded queue;
//! - send (a tokio task): queue -> link, every write under a deadline;
//! - receive (a tokio task): link -> bounded inbox, stamped on arrival;
//! - playback (a thread): inbox -> open, jitter buffer, Opus -> sink.
//!
//! The audio sides are threads because a real device blocks in
//! `read_frame`/`wait_for_room` and paces them ([`Pacing::Device`]); files,
//! tones and silence return at once and are paced by a 20 ms clock
//! ([`Pacing::Clock`]), each direction by its own ([`AudioEnds`]: a device
//! microphone with no speaker, say). A device that stalls (a second
//! without a frame, as when a sound server starts slowly) is retried; one
//! that fails is replaced by silence or a discard, and the call goes on
//! (the app's devices first move to the system default device when they
//! end: `audio::reopen`, so a silence here means no device would open);
//! [`VoiceCall::stop`] returns what they met. The queues are bounded and never waited on from
//! the audio side (a full queue drops the packet, as the network would),
//! and nothing on the audio path takes a lock. With
//! [`AudioEnds::processing`] on, the capture thread cleans each frame
//! before Opus ([`CaptureProcessing`]), with the frames the playback
//! thread played as the echo canceller's reference (a bounded channel of
//! frames, [`FarEndTap`]). The app, the headless peer
//! and the demo `echo` all start calls here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::audio::{AudioError, AudioSink, AudioSource, Discard, Silence};
use super::codec::{FRAME_SAMPLES, Frame};
use super::crypto::CallKeys;
use super::processing::{CaptureProcessing, FarEndTap, ProcessingConfig};
use super::session::{Quality, VoiceConfig, VoiceControl, VoiceReceiver, VoiceSender, VoiceSession};
use crate::protocol::MediaInfo;
use crate::relay_link::{LinkOptions, RelayLink, RelayLinkError, RelayReceiver, RelaySender, Transport};

/// One frame of audio.
const FRAME: Duration = Duration::from_millis(20);
/// Packets waiting to be sent or played: 25 are half a second, far more
/// than a healthy path holds; beyond that the newest are dropped.
const QUEUE_PACKETS: usize = 25;
/// Deadline of each send on the link.
const SEND_DEADLINE: Duration = Duration::from_secs(2);

/// What paces the audio threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// A 20 ms clock: for sources and sinks that return at once (files, tones, silence).
    Clock,
    /// The devices themselves: `read_frame` and `wait_for_room` block.
    Device,
}

/// A call's microphone and speaker, each with what paces its thread.
pub struct AudioEnds {
    /// What the other side hears.
    pub source: Box<dyn AudioSource>,
    /// Who keeps time for the capture thread.
    pub capture: Pacing,
    /// Where the other side's voice is played.
    pub sink: Box<dyn AudioSink>,
    /// Who keeps time for the playback thread.
    pub playback: Pacing,
    /// How the microphone is cleaned before Opus: echo cancellation (the
    /// frames played into `sink` are its reference), noise suppression,
    /// gain control. A property of the ends: a speaker and a microphone in
    /// one room need it; files, tones and silence do not.
    pub processing: ProcessingConfig,
}

impl AudioEnds {
    /// Both ends paced by the 20 ms clock: files, tones, silence; no
    /// processing (set [`AudioEnds::processing`] to clean a file as a microphone).
    pub fn clocked(source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) -> AudioEnds {
        AudioEnds {
            source,
            capture: Pacing::Clock,
            sink,
            playback: Pacing::Clock,
            processing: ProcessingConfig::OFF,
        }
    }
}

/// Everything a call needs besides its audio.
#[derive(Debug, Clone)]
pub struct CallLink {
    /// Our way into the relay (`accepted`, or the accept's `ok`).
    pub media: MediaInfo,
    /// The signaling server's URL (the WebSocket fallback's host).
    pub server_url: String,
    /// How to reach the relay; `Default` for real clients.
    pub options: LinkOptions,
}

/// Why a call's voice could not start.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Link(#[from] RelayLinkError),
    #[error("voice codec: {0}")]
    Codec(String),
}

/// What a call's voice did, returned by [`VoiceCall::stop`].
#[derive(Debug, Clone, PartialEq)]
pub struct CallStats {
    /// How the relay was reached.
    pub transport: Transport,
    /// Packets handed to the link.
    pub packets_sent: u64,
    /// Packets that came from the link (valid or not).
    pub packets_received: u64,
    /// Packets dropped because a queue was full.
    pub packets_dropped: u64,
    /// The quality line at the end (loss, jitter, rejected packets).
    pub quality: Quality,
    /// What the microphone and the speaker met (a stall, a failure), once
    /// per kind in a row; the call went on regardless.
    pub audio_errors: Vec<AudioError>,
}

/// Counters the workers share (atomics only).
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
}

/// A call's running voice. Dropping it stops the workers too (without
/// waiting for them); [`VoiceCall::stop`] also waits, so the sink is
/// flushed (a WAV file complete) when it returns.
pub struct VoiceCall {
    /// Mute, volume, levels and the quality line, for the call screen.
    pub control: VoiceControl,
    /// The six digits both call screens show.
    pub safety_code: String,
    transport: Transport,
    /// Tells the audio threads to finish.
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    /// The capture and playback threads; each returns its audio errors.
    threads: Vec<JoinHandle<Vec<AudioError>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl VoiceCall {
    /// Connects to the relay and starts the voice both ways. Must be called
    /// within a tokio runtime. Fails if the relay cannot be reached.
    pub async fn start(
        keys: CallKeys,
        link: &CallLink,
        config: VoiceConfig,
        ends: AudioEnds,
    ) -> Result<VoiceCall, CallError> {
        let relay = RelayLink::connect_with(&link.media, &link.server_url, &link.options).await?;
        let transport = relay.transport();
        let session =
            VoiceSession::new(keys, config, Instant::now()).map_err(|e| CallError::Codec(e.to_string()))?;
        let (control, safety_code) = (session.control(), session.safety_code().to_owned());
        let (sender, receiver) = session.split();
        let (link_tx, link_rx) = relay.split();
        let (outbox, outbox_rx) = mpsc::channel(QUEUE_PACKETS);
        let (inbox_tx, inbox) = mpsc::channel(QUEUE_PACKETS);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let tasks = vec![
            tokio::spawn(send_task(link_tx, outbox_rx, counters.clone())),
            tokio::spawn(receive_task(link_rx, inbox_tx, counters.clone())),
        ];
        let AudioEnds { source, capture, sink, playback, processing } = ends;
        let (processing, far_end) = if processing.any() {
            let (processing, tap) = CaptureProcessing::new(processing);
            (Some(processing), tap)
        } else {
            (None, None)
        };
        let capture = Capture {
            source,
            processing,
            sender,
            outbox,
            pacing: capture,
            stop: stop.clone(),
            counters: counters.clone(),
        };
        let playback = Playback { sink, far_end, receiver, inbox, pacing: playback, stop: stop.clone() };
        let threads = vec![
            std::thread::Builder::new()
                .name("voice-capture".into())
                .spawn(move || capture.run())
                .expect("spawn the capture thread"),
            std::thread::Builder::new()
                .name("voice-playback".into())
                .spawn(move || playback.run())
                .expect("spawn the playback thread"),
        ];
        Ok(VoiceCall { control, safety_code, transport, stop, counters, threads, tasks })
    }

    /// How the relay is reached.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Stops the voice and waits for the workers (the sink is dropped, so
    /// a file sink is complete); returns what it did.
    pub async fn stop(mut self) -> CallStats {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
        let threads = std::mem::take(&mut self.threads);
        let audio_errors = tokio::task::spawn_blocking(move || {
            threads.into_iter().flat_map(|t| t.join().unwrap_or_default()).collect()
        })
        .await
        .unwrap_or_default();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CallStats {
            transport: self.transport,
            packets_sent: load(&self.counters.sent),
            packets_received: load(&self.counters.received),
            packets_dropped: load(&self.counters.dropped),
            quality: self.control.quality(),
            audio_errors,
        }
    }
}

impl Drop for VoiceCall {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A 20 ms clock for [`Pacing::Clock`]; ticks at `start + k × 20 ms`, so
/// it does not drift, and skips ticks it slept through.
struct Ticker {
    next: Instant,
}

impl Ticker {
    fn new() -> Ticker {
        Ticker { next: Instant::now() + FRAME }
    }
    fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next += FRAME;
        if self.next + FRAME * 5 < Instant::now() {
            self.next = Instant::now() + FRAME;
        }
    }
}

/// Stalls in a row after which a device is given up: a sound server
/// starting slowly stalls once; a device that stalls for seconds on end is
/// gone, and retrying it would send one frame a second.
const STALLS_BEFORE_GIVING_UP: u32 = 3;

/// What the audio threads met, and whether to go on with the device.
#[derive(Debug, Default)]
struct AudioTrouble {
    /// For [`CallStats::audio_errors`], once per kind in a row.
    errors: Vec<AudioError>,
    /// Stalls since the device last worked.
    stalls_in_a_row: u32,
}

impl AudioTrouble {
    /// The device worked.
    fn ok(&mut self) {
        self.stalls_in_a_row = 0;
    }

    /// Notes `error`; true if the device should be given up (it failed,
    /// or stalled [`STALLS_BEFORE_GIVING_UP`] times in a row), false to
    /// retry it (a stall).
    fn give_up(&mut self, error: AudioError) -> bool {
        let stalled = error == AudioError::Stalled;
        if self.errors.last() != Some(&error) {
            self.errors.push(error);
        }
        self.stalls_in_a_row = if stalled { self.stalls_in_a_row + 1 } else { 0 };
        !stalled || self.stalls_in_a_row >= STALLS_BEFORE_GIVING_UP
    }
}

/// The capture thread's state.
struct Capture {
    source: Box<dyn AudioSource>,
    /// Echo cancellation, noise suppression, gain control; `None` when all are off.
    processing: Option<CaptureProcessing>,
    sender: VoiceSender,
    outbox: mpsc::Sender<Vec<u8>>,
    pacing: Pacing,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Capture {
    fn run(mut self) -> Vec<AudioError> {
        let mut trouble = AudioTrouble::default();
        let mut frame: Frame = [0; FRAME_SAMPLES];
        let mut ticker = Ticker::new();
        while !self.stop.load(Ordering::Relaxed) {
            if self.pacing == Pacing::Clock {
                ticker.wait();
            }
            match self.source.read_frame(&mut frame) {
                Ok(()) => trouble.ok(),
                Err(e) => {
                    frame.fill(0);
                    // A stall (a sound server starting slowly) gets a
                    // frame of silence and the device again; a failure or
                    // a device that keeps stalling, silence from now on:
                    // the call goes on without a microphone.
                    if trouble.give_up(e.clone()) {
                        tracing::warn!("voice: audio input failed ({e}); sending silence");
                        (self.source, self.pacing) = (Box::new(Silence), Pacing::Clock);
                    } else {
                        tracing::warn!("voice: audio input stalled; retrying");
                    }
                }
            }
            self.sender.note_microphone_overruns(self.source.overruns());
            if let Some(processing) = &mut self.processing {
                processing.process(&mut frame);
            }
            if let Err(e) = self.sender.on_captured_frame(&frame, Instant::now()) {
                tracing::warn!("voice: encoding failed: {e}");
            }
            while let Some(packet) = self.sender.poll_transmit() {
                if self.outbox.try_send(packet).is_err() {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        trouble.errors
    }
}

/// The playback thread's state.
struct Playback {
    sink: Box<dyn AudioSink>,
    /// Where each played frame goes for the echo canceller, when it runs.
    far_end: Option<FarEndTap>,
    receiver: VoiceReceiver,
    /// Packets with the instant they arrived.
    inbox: mpsc::Receiver<(Instant, Vec<u8>)>,
    pacing: Pacing,
    stop: Arc<AtomicBool>,
}

impl Playback {
    fn run(mut self) -> Vec<AudioError> {
        let mut trouble = AudioTrouble::default();
        let mut ticker = Ticker::new();
        while !self.stop.load(Ordering::Relaxed) {
            if self.pacing == Pacing::Clock {
                ticker.wait();
            }
            // The sink says when it wants a frame, and only then is one
            // taken: what the jitter buffer decides is played next.
            let room = self.sink.wait_for_room();
            while let Ok((arrived, packet)) = self.inbox.try_recv() {
                // Rejected packets are counted in the quality line.
                let _ = self.receiver.on_packet(&packet, arrived);
            }
            let frame = self.receiver.next_playback_frame(Instant::now());
            if let Some(far_end) = &self.far_end {
                far_end.played(&frame);
            }
            match room.and_then(|()| self.sink.write_frame(&frame)) {
                Ok(()) => trouble.ok(),
                // A stall (no room for a second) loses the frame and
                // tries the device with the next; a failure, or a device
                // that keeps stalling, is replaced by a discard.
                Err(e) => {
                    if trouble.give_up(e.clone()) {
                        tracing::warn!("voice: audio output failed ({e}); discarding");
                        (self.sink, self.pacing) = (Box::new(Discard), Pacing::Clock);
                    } else {
                        tracing::warn!("voice: audio output stalled; retrying");
                    }
                }
            }
            self.receiver.note_speaker_underruns(self.sink.underruns());
        }
        trouble.errors
    }
}

async fn send_task(mut link: RelaySender, mut outbox: mpsc::Receiver<Vec<u8>>, counters: Arc<Counters>) {
    while let Some(packet) = outbox.recv().await {
        match tokio::time::timeout(SEND_DEADLINE, link.send(&packet)).await {
            Ok(Ok(())) => {
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(RelayLinkError::Closed)) => return,
            // A lost datagram or a slow write: the next packet tries again.
            Ok(Err(_)) | Err(_) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn receive_task(
    mut link: RelayReceiver,
    inbox: mpsc::Sender<(Instant, Vec<u8>)>,
    counters: Arc<Counters>,
) {
    while let Ok(packet) = link.recv().await {
        counters.received.fetch_add(1, Ordering::Relaxed);
        if inbox.try_send((Instant::now(), packet)).is_err() {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
