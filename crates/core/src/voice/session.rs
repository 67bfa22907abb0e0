//! The voice session of one call, sans-IO: fed captured frames, received
//! packets and the time; yields packets to send and frames to play. It
//! owns no socket, no device and no clock, so the relay transport, the app
//! and the headless peer drive it alike, and tests drive it with explicit
//! times.
//!
//! It splits into a [`VoiceSender`] (capture task: Opus, seal) and a
//! [`VoiceReceiver`] (playback task: open, jitter buffer, Opus), one task
//! each way; what they share (mute, volume, levels, loss and round-trip
//! feedback) is a few atomics in [`VoiceControl`], so the audio path takes
//! no lock. The UI keeps a [`VoiceControl`] clone to mute, set the volume
//! and read the quality line and the levels.

mod receive;
mod send;

pub use receive::VoiceReceiver;
pub use send::VoiceSender;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use super::codec::{CodecError, DEFAULT_BITRATE, Frame};
use super::crypto::{CallKeys, OpenError};
use super::level::Level;

/// Settings of a voice session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoiceConfig {
    /// Opus bit rate in bit/s on a clean path, clamped to 24–48 kbit/s;
    /// the encoder goes to the top of the range while the path loses packets.
    pub bitrate: i32,
    /// The loss (percent) assumed until a first second has been measured.
    /// 0 (the default): a call starts at the configured bit rate without
    /// FEC and protects itself once loss is measured (within about a
    /// second); on a clean path, the usual one, FEC would only take bits
    /// from the voice. Above 0 a call starts protected (FEC, and from 2 %
    /// the top bit rate) and relaxes once the path proves clean.
    pub startup_loss_pct: f32,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig { bitrate: DEFAULT_BITRATE, startup_loss_pct: 0.0 }
    }
}

/// The quality line of the call screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Percent of the other side's packets that did not arrive (last
    /// seconds); 0 until a first second is measured.
    pub loss_pct: f32,
    /// Interarrival jitter (RFC 3550), milliseconds.
    pub jitter_ms: f32,
    /// Round trip through the relay, once a report has come back.
    pub rtt_ms: Option<f32>,
    /// The loss the other side reports for our packets (sizes our FEC).
    pub remote_loss_pct: Option<f32>,
    /// The jitter buffer's target delay, milliseconds.
    pub buffer_ms: f32,
    /// How long the fastest packet waits in the jitter buffer now (its
    /// headroom), milliseconds: the buffer's share of the delay.
    pub headroom_ms: f32,
    /// What the jitter buffer did to the delay so far.
    pub playout: PlayoutCounts,
    /// Packets dropped: malformed, forged, replayed or stale.
    pub rejected: RejectCounts,
    /// Times the speaker found nothing to play (the playback ran dry: a
    /// late thread, a loaded machine), as its sink counts them; 0 for sinks
    /// that cannot run dry (files).
    pub speaker_underruns: u64,
    /// Microphone frames lost because the capture side fell behind (a
    /// late thread, a loaded machine), as its source counts them; 0 for
    /// sources that cannot (files, tones).
    pub microphone_overruns: u64,
}

/// Frames the jitter buffer dropped, shortened (played in half their
/// time) or inserted to move the delay towards its target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayoutCounts {
    pub dropped: u64,
    pub shortened: u64,
    pub inserted: u64,
}

/// Why received packets were dropped, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectCounts {
    pub malformed: u64,
    pub forged: u64,
    pub replayed: u64,
    pub stale: u64,
}

/// `f32` values kept as their bits in an atomic.
#[derive(Debug)]
struct AtomicF32(AtomicU32);

impl AtomicF32 {
    fn new(value: f32) -> Self {
        AtomicF32(AtomicU32::new(value.to_bits()))
    }
    fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn set(&self, value: f32) {
        self.0.store(value.to_bits(), Ordering::Relaxed)
    }
}

/// What the two halves and the UI share; every field is one atomic, so
/// a reader sees each value whole and nobody waits.
#[derive(Debug)]
struct Shared {
    /// Set by the UI; the sender then sends silence flagged as muted.
    muted: AtomicBool,
    /// Set by the UI while a second call waits; the receiver then mixes
    /// the call-waiting beeps into what the speaker plays.
    call_waiting: AtomicBool,
    /// Speaker gain, 0.0–2.0, applied by the receiver.
    volume: AtomicF32,
    mic_rms: AtomicF32,
    mic_peak: AtomicF32,
    speaker_rms: AtomicF32,
    speaker_peak: AtomicF32,
    /// Loss measured by the receiver (NaN until measured); the sender reports it.
    loss_pct: AtomicF32,
    jitter_ms: AtomicF32,
    /// NaN until known.
    rtt_ms: AtomicF32,
    /// NaN until the other side reports; the sender's FEC hint.
    remote_loss_pct: AtomicF32,
    buffer_ms: AtomicF32,
    headroom_ms: AtomicF32,
    dropped_for_delay: AtomicU64,
    shortened_for_delay: AtomicU64,
    inserted_for_delay: AtomicU64,
    /// The newest report from the other side: its `send_ms` (high half)
    /// and our arrival time in ms (low half), for the sender's echo.
    last_report: AtomicU64,
    malformed: AtomicU64,
    forged: AtomicU64,
    replayed: AtomicU64,
    stale: AtomicU64,
    /// The speaker's underruns, as the playback thread last read them from its sink.
    speaker_underruns: AtomicU64,
    /// The microphone's overruns, as the capture thread last read them from its source.
    microphone_overruns: AtomicU64,
}

/// `last_report` before any report arrived.
const NO_REPORT: u64 = u64::MAX;

impl Shared {
    fn new() -> Shared {
        let silent = super::level::FLOOR_DBFS;
        Shared {
            muted: AtomicBool::new(false),
            call_waiting: AtomicBool::new(false),
            volume: AtomicF32::new(1.0),
            mic_rms: AtomicF32::new(silent),
            mic_peak: AtomicF32::new(silent),
            speaker_rms: AtomicF32::new(silent),
            speaker_peak: AtomicF32::new(silent),
            loss_pct: AtomicF32::new(f32::NAN),
            jitter_ms: AtomicF32::new(0.0),
            rtt_ms: AtomicF32::new(f32::NAN),
            remote_loss_pct: AtomicF32::new(f32::NAN),
            buffer_ms: AtomicF32::new(0.0),
            headroom_ms: AtomicF32::new(0.0),
            dropped_for_delay: AtomicU64::new(0),
            shortened_for_delay: AtomicU64::new(0),
            inserted_for_delay: AtomicU64::new(0),
            last_report: AtomicU64::new(NO_REPORT),
            malformed: AtomicU64::new(0),
            forged: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            speaker_underruns: AtomicU64::new(0),
            microphone_overruns: AtomicU64::new(0),
        }
    }

    fn count_reject(&self, error: &OpenError) {
        let counter = match error {
            OpenError::Malformed(_) => &self.malformed,
            OpenError::Forged => &self.forged,
            OpenError::Replayed(_) => &self.replayed,
            OpenError::Stale(_) => &self.stale,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Milliseconds since `epoch`, wrapping like the report's fields.
fn millis(epoch: Instant, now: Instant) -> u32 {
    now.saturating_duration_since(epoch).as_millis() as u32
}

fn known(value: f32) -> Option<f32> {
    (!value.is_nan()).then_some(value)
}

/// The UI's handle on a running session: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct VoiceControl {
    shared: Arc<Shared>,
}

impl VoiceControl {
    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed)
    }
    /// Plays the call-waiting beeps in the call while `waiting` (a second
    /// call rings): in the speaker's own frames, so the echo canceller has
    /// them as played, like the far end's voice.
    pub fn set_call_waiting(&self, waiting: bool) {
        self.shared.call_waiting.store(waiting, Ordering::Relaxed);
    }
    pub fn is_call_waiting(&self) -> bool {
        self.shared.call_waiting.load(Ordering::Relaxed)
    }
    pub fn is_muted(&self) -> bool {
        self.shared.muted.load(Ordering::Relaxed)
    }
    /// Speaker volume, 0.0 (silent) to 2.0 (+6 dB); 1.0 leaves it as sent.
    pub fn set_volume(&self, volume: f32) {
        let volume = if volume.is_finite() { volume.clamp(0.0, 2.0) } else { 1.0 };
        self.shared.volume.set(volume)
    }
    pub fn volume(&self) -> f32 {
        self.shared.volume.get()
    }
    /// The microphone's level (before mute: the meter shows you talking).
    pub fn mic_level(&self) -> Level {
        Level { rms_dbfs: self.shared.mic_rms.get(), peak_dbfs: self.shared.mic_peak.get() }
    }
    /// The level of what the speaker plays.
    pub fn speaker_level(&self) -> Level {
        Level { rms_dbfs: self.shared.speaker_rms.get(), peak_dbfs: self.shared.speaker_peak.get() }
    }
    pub fn quality(&self) -> Quality {
        let s = &self.shared;
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Quality {
            loss_pct: known(s.loss_pct.get()).unwrap_or(0.0),
            jitter_ms: s.jitter_ms.get(),
            rtt_ms: known(s.rtt_ms.get()),
            remote_loss_pct: known(s.remote_loss_pct.get()),
            buffer_ms: s.buffer_ms.get(),
            headroom_ms: s.headroom_ms.get(),
            playout: PlayoutCounts {
                dropped: count(&s.dropped_for_delay),
                shortened: count(&s.shortened_for_delay),
                inserted: count(&s.inserted_for_delay),
            },
            rejected: RejectCounts {
                malformed: count(&s.malformed),
                forged: count(&s.forged),
                replayed: count(&s.replayed),
                stale: count(&s.stale),
            },
            speaker_underruns: count(&s.speaker_underruns),
            microphone_overruns: count(&s.microphone_overruns),
        }
    }
}

/// Both halves of a call's voice, for a driver that runs them on one task
/// (tests, the headless peer); [`VoiceSession::split`] gives them to two.
pub struct VoiceSession {
    sender: VoiceSender,
    receiver: VoiceReceiver,
    /// The code both call screens show.
    safety_code: String,
}

impl VoiceSession {
    /// A session with the agreed call keys; `now` starts its clock.
    pub fn new(keys: CallKeys, config: VoiceConfig, now: Instant) -> Result<VoiceSession, CodecError> {
        let safety_code = keys.safety_code.clone();
        let (sealer, opener) = keys.split();
        let shared = Arc::new(Shared::new());
        let sender = VoiceSender::new(sealer, config, Arc::clone(&shared), now)?;
        let receiver = VoiceReceiver::new(opener, shared, now)?;
        Ok(VoiceSession { sender, receiver, safety_code })
    }

    pub fn safety_code(&self) -> &str {
        &self.safety_code
    }

    pub fn control(&self) -> VoiceControl {
        self.sender.control()
    }

    /// The halves for a capture task and a playback task.
    pub fn split(self) -> (VoiceSender, VoiceReceiver) {
        (self.sender, self.receiver)
    }

    /// See [`VoiceSender::on_captured_frame`].
    pub fn on_captured_frame(&mut self, frame: &Frame, now: Instant) -> Result<(), CodecError> {
        self.sender.on_captured_frame(frame, now)
    }

    /// See [`VoiceSender::poll_transmit`].
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.sender.poll_transmit()
    }

    /// See [`VoiceReceiver::on_packet`].
    pub fn on_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), OpenError> {
        self.receiver.on_packet(packet, now)
    }

    /// See [`VoiceReceiver::note_speaker_underruns`].
    pub fn note_speaker_underruns(&self, total: u64) {
        self.receiver.note_speaker_underruns(total)
    }

    /// See [`VoiceReceiver::next_playback_frame`].
    pub fn next_playback_frame(&mut self, now: Instant) -> Frame {
        self.receiver.next_playback_frame(now)
    }

    pub fn stats(&self) -> Quality {
        self.control().quality()
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
