//! The sending half: captured frame -> level meter -> (mute) -> Opus ->
//! seal -> a bounded queue of packets for the transport.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{NO_REPORT, Shared, VoiceConfig, VoiceControl, millis};
use crate::voice::codec::{CodecError, FRAME_SAMPLES, Frame, VoiceEncoder};
use crate::voice::crypto::Sealer;
use crate::voice::level::LevelMeter;
use crate::voice::packet::{FLAG_MUTED, FLAG_REPORT};
use crate::voice::report::{LOSS_UNKNOWN, NO_ECHO, Report};

/// Packets waiting for the transport at most (100 ms of audio): when the
/// transport stalls, old audio is worth less than new, so the oldest goes.
const OUTBOX_CAPACITY: usize = 5;
/// Every this many packets carries a report (5 a second).
const REPORT_EVERY: u64 = 10;

/// See the module documentation.
pub struct VoiceSender {
    encoder: VoiceEncoder,
    sealer: Sealer,
    shared: Arc<Shared>,
    meter: LevelMeter,
    /// Sealed packets for the transport, oldest first.
    outbox: VecDeque<Vec<u8>>,
    /// Frames captured so far: the next packet's timestamp is this × 960.
    frames: u64,
    /// Packets dropped because the transport did not take them in time.
    overflowed: u64,
    /// The session's time zero, for report times.
    epoch: Instant,
    /// Set once sealing stopped (sequence numbers exhausted).
    exhausted: bool,
    /// The loss assumed before any is measured (see [`VoiceConfig`]).
    startup_loss_pct: f32,
}

impl VoiceSender {
    pub(super) fn new(
        sealer: Sealer,
        config: VoiceConfig,
        shared: Arc<Shared>,
        epoch: Instant,
    ) -> Result<VoiceSender, CodecError> {
        Ok(VoiceSender {
            encoder: VoiceEncoder::new(config.bitrate)?,
            sealer,
            shared,
            meter: LevelMeter::default(),
            outbox: VecDeque::with_capacity(OUTBOX_CAPACITY),
            frames: 0,
            overflowed: 0,
            epoch,
            exhausted: false,
            startup_loss_pct: config.startup_loss_pct,
        })
    }

    pub fn control(&self) -> VoiceControl {
        VoiceControl { shared: Arc::clone(&self.shared) }
    }

    /// The microphone's source says it lost `total` frames (its
    /// [`AudioSource::overruns`](crate::voice::audio::AudioSource::overruns)),
    /// for the quality line; the count never goes back, as the speaker's.
    pub fn note_microphone_overruns(&self, total: u64) {
        self.shared.microphone_overruns.fetch_max(total, Ordering::Relaxed);
    }

    /// Packets dropped because the transport fell behind.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// The encoder's current expected-loss hint, percent.
    pub fn expected_loss(&self) -> u8 {
        self.encoder.expected_loss()
    }

    /// Encodes and seals one 20 ms frame the microphone captured by `now`.
    pub fn on_captured_frame(&mut self, frame: &Frame, now: Instant) -> Result<(), CodecError> {
        let level = self.meter.measure(frame);
        self.shared.mic_rms.set(level.rms_dbfs);
        self.shared.mic_peak.set(level.peak_dbfs);
        let muted = self.shared.muted.load(Ordering::Relaxed);
        let silence = [0i16; FRAME_SAMPLES];
        self.update_loss_hint()?;
        let opus = self.encoder.encode(if muted { &silence } else { frame })?;
        let mut flags = if muted { FLAG_MUTED } else { 0 };
        let mut body = Vec::with_capacity(opus.len() + crate::voice::report::REPORT_LEN);
        if self.frames.is_multiple_of(REPORT_EVERY) {
            flags |= FLAG_REPORT;
            body.extend_from_slice(&self.report(now).encode());
        }
        body.extend_from_slice(&opus);
        let timestamp = (self.frames * FRAME_SAMPLES as u64) as u32;
        self.frames += 1;
        if self.exhausted {
            return Ok(());
        }
        let Ok(packet) = self.sealer.seal(flags, timestamp, &body) else {
            self.exhausted = true;
            return Ok(());
        };
        if self.outbox.len() == OUTBOX_CAPACITY {
            self.outbox.pop_front();
            self.overflowed += 1;
        }
        self.outbox.push_back(packet);
        Ok(())
    }

    /// The next packet for the transport, oldest first.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The encoder's current bit rate, bit/s.
    pub fn bitrate(&self) -> i32 {
        self.encoder.bitrate()
    }

    /// FEC (and bit rate) sized for the loss the other side reports, or
    /// (before its first measurement) the loss we see coming the other
    /// way, or before either, the configured startup loss.
    fn update_loss_hint(&mut self) -> Result<(), CodecError> {
        let remote = self.shared.remote_loss_pct.get();
        let local = self.shared.loss_pct.get();
        let loss = [remote, local].into_iter().find(|v| !v.is_nan()).unwrap_or(self.startup_loss_pct);
        self.encoder.adapt_to_loss(loss)
    }

    fn report(&self, now: Instant) -> Report {
        let now_ms = millis(self.epoch, now);
        let last = self.shared.last_report.load(Ordering::Relaxed);
        let (echo_ms, hold_ms) = if last == NO_REPORT {
            (NO_ECHO, 0)
        } else {
            let (their_send, our_arrival) = ((last >> 32) as u32, last as u32);
            (their_send, now_ms.wrapping_sub(our_arrival).min(u32::from(u16::MAX)) as u16)
        };
        let local = self.shared.loss_pct.get();
        let loss_pct = if local.is_nan() { LOSS_UNKNOWN } else { local.round().clamp(0.0, 100.0) as u8 };
        Report { send_ms: now_ms, echo_ms, hold_ms, loss_pct }
    }
}
