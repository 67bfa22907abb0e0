//! The receiving half: packet -> open (drop forged, replayed, stale) ->
//! report and statistics -> jitter buffer; and every 20 ms, the jitter
//! buffer's decision -> Opus (decode, FEC or concealment) -> volume ->
//! level meter -> a frame for the speaker.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Shared, VoiceControl, millis};
use crate::voice::codec::{CodecError, FRAME_SAMPLES, Frame, SAMPLE_RATE, VoiceDecoder};
use crate::voice::crypto::{OpenError, Opener};
use crate::voice::cue::CallWaitingCue;
use crate::voice::jitter::{JitterBuffer, JitterStats, Playout};
use crate::voice::level::LevelMeter;
use crate::voice::packet::FLAG_REPORT;
use crate::voice::report::Report;

/// Packets expected per loss measurement (one second).
const LOSS_INTERVAL: u32 = 50;
/// Weight of the newest interval in the smoothed loss.
const LOSS_SMOOTHING: f32 = 0.5;
/// Samples over which a shortened frame's first half fades into its
/// second (5 ms): a cut without a fade would click.
const SHORTEN_FADE_SAMPLES: usize = 240;

/// Loss over the last intervals and RFC 3550 interarrival jitter.
#[derive(Debug, Default)]
struct ArrivalStats {
    /// The newest sequence number received.
    newest: Option<u32>,
    /// The newest sequence number when this interval began.
    interval_start: u32,
    /// Packets received in this interval.
    received: u32,
    /// Smoothed loss, once a first interval is complete.
    loss_pct: Option<f32>,
    /// The previous packet's transit (arrival minus timestamp), microseconds.
    last_transit_us: Option<i64>,
    jitter_us: f64,
}

impl ArrivalStats {
    fn on_packet(&mut self, seq: u32, timestamp: u32, arrival_us: i64) {
        match self.newest {
            // The first packet starts the first interval.
            None => {
                self.newest = Some(seq);
                self.interval_start = seq;
            }
            Some(newest) => {
                self.newest = Some(newest.max(seq));
                self.received += 1;
            }
        }
        let newest = self.newest.unwrap_or(seq);
        let expected = newest.saturating_sub(self.interval_start);
        if expected >= LOSS_INTERVAL {
            let lost = expected.saturating_sub(self.received) as f32;
            let interval_loss = 100.0 * lost / expected as f32;
            let previous = self.loss_pct.unwrap_or(interval_loss);
            self.loss_pct = Some(previous + LOSS_SMOOTHING * (interval_loss - previous));
            self.interval_start = newest;
            self.received = 0;
        }
        let media_us = i64::from(timestamp) * 1_000_000 / i64::from(SAMPLE_RATE);
        let transit = arrival_us - media_us;
        if let Some(last) = self.last_transit_us.replace(transit) {
            let d = (transit - last).abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
    }
}

/// See the module documentation.
pub struct VoiceReceiver {
    opener: Opener,
    jitter: JitterBuffer,
    decoder: VoiceDecoder,
    shared: Arc<Shared>,
    meter: LevelMeter,
    arrivals: ArrivalStats,
    /// The session's time zero.
    epoch: Instant,
    /// Decoded sound not yet handed to the speaker: none, or half a frame
    /// after a shortened frame. The jitter buffer decides for the moment
    /// the next decoded sound starts playing, `now` plus this.
    pending: Vec<i16>,
    /// The call-waiting beeps' place in their cycle.
    cue: CallWaitingCue,
}

impl VoiceReceiver {
    pub(super) fn new(
        opener: Opener,
        shared: Arc<Shared>,
        epoch: Instant,
    ) -> Result<VoiceReceiver, CodecError> {
        Ok(VoiceReceiver {
            opener,
            jitter: JitterBuffer::new(epoch),
            decoder: VoiceDecoder::new()?,
            shared,
            meter: LevelMeter::default(),
            arrivals: ArrivalStats::default(),
            epoch,
            pending: Vec::with_capacity(2 * FRAME_SAMPLES),
            cue: CallWaitingCue::default(),
        })
    }

    pub fn control(&self) -> VoiceControl {
        VoiceControl { shared: Arc::clone(&self.shared) }
    }

    /// What the jitter buffer has done (played, recovered, concealed...).
    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// Takes in a packet that arrived at `now`. A dropped packet is counted
    /// in the quality line's `rejected` and changes nothing else.
    pub fn on_packet(&mut self, packet: &[u8], now: Instant) -> Result<(), OpenError> {
        let opened = self.opener.open(packet).and_then(|(header, body)| {
            if header.flags & FLAG_REPORT == 0 {
                return Ok((header, None, body));
            }
            let (report, opus) = Report::split(&body)?;
            Ok((header, Some(report), opus.to_vec()))
        });
        let (header, report, opus) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                self.shared.count_reject(&error);
                return Err(error);
            }
        };
        let now_ms = millis(self.epoch, now);
        if let Some(report) = report {
            self.on_report(report, now_ms);
        }
        let arrival_us = now.saturating_duration_since(self.epoch).as_micros() as i64;
        self.arrivals.on_packet(header.seq, header.timestamp, arrival_us);
        self.shared.loss_pct.set(self.arrivals.loss_pct.unwrap_or(f32::NAN));
        self.shared.jitter_ms.set((self.arrivals.jitter_us / 1000.0) as f32);
        self.jitter.push(header.seq, opus, now);
        Ok(())
    }

    fn on_report(&mut self, report: Report, now_ms: u32) {
        self.shared.remote_loss_pct.set(report.loss().unwrap_or(f32::NAN));
        if let Some(rtt) = report.round_trip_ms(now_ms) {
            self.shared.rtt_ms.set(rtt as f32);
        }
        let last = (u64::from(report.send_ms) << 32) | u64::from(now_ms);
        self.shared.last_report.store(last, Ordering::Relaxed);
    }

    /// The speaker's sink says it has run dry `total` times (its
    /// [`AudioSink::underruns`](crate::voice::audio::AudioSink::underruns)),
    /// for the quality line. The count never goes back: a sink replaced
    /// mid-call (a failed device) starts again from zero, the line keeps
    /// the larger figure.
    pub fn note_speaker_underruns(&self, total: u64) {
        self.shared.speaker_underruns.fetch_max(total, Ordering::Relaxed);
    }

    /// The frame the speaker plays next; call it every 20 ms of the
    /// speaker's clock.
    pub fn next_playback_frame(&mut self, now: Instant) -> Frame {
        while self.pending.len() < FRAME_SAMPLES {
            let ahead_us = self.pending.len() as u64 * 1_000_000 / u64::from(SAMPLE_RATE);
            let playout = self.jitter.pop(now + Duration::from_micros(ahead_us));
            self.decode(playout);
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        frame.copy_from_slice(&self.pending[..FRAME_SAMPLES]);
        self.pending.drain(..FRAME_SAMPLES);
        self.cue.mix(&mut frame, self.shared.call_waiting.load(Ordering::Relaxed));
        let volume = self.shared.volume.get();
        if volume != 1.0 {
            for sample in frame.iter_mut() {
                *sample = (f32::from(*sample) * volume).clamp(-32768.0, 32767.0) as i16;
            }
        }
        let level = self.meter.measure(&frame);
        self.shared.speaker_rms.set(level.rms_dbfs);
        self.shared.speaker_peak.set(level.peak_dbfs);
        let stats = self.jitter.stats();
        let shared = &self.shared;
        shared.buffer_ms.set(stats.target_us as f32 / 1000.0);
        shared.headroom_ms.set(stats.headroom_us as f32 / 1000.0);
        shared.dropped_for_delay.store(stats.dropped_for_delay, Ordering::Relaxed);
        shared.shortened_for_delay.store(stats.shortened_for_delay, Ordering::Relaxed);
        shared.inserted_for_delay.store(stats.inserted_for_delay, Ordering::Relaxed);
        frame
    }

    /// Acts on one jitter buffer decision: its sound goes to `pending`.
    fn decode(&mut self, playout: Playout) {
        let frame = match playout {
            Playout::Silence => [0i16; FRAME_SAMPLES],
            Playout::Packet { payload, skipped } => {
                if let Some(skipped) = skipped {
                    self.decoder.decode(&skipped);
                }
                self.decoder.decode(&payload)
            }
            Playout::Shortened { payload } => {
                let frame = self.decoder.decode(&payload);
                self.pending.extend(shortened(&frame));
                return;
            }
            Playout::Fec { next_payload } => self.decoder.decode_fec(&next_payload),
            Playout::Conceal => self.decoder.conceal(),
        };
        self.pending.extend_from_slice(&frame);
    }
}

/// A frame played in half its time (10 ms): its first samples fade into
/// the same stretch of its second half, which then plays on. It starts
/// where the frame starts and ends where it ends, so it joins the frames
/// on both sides without a step.
fn shortened(frame: &Frame) -> impl Iterator<Item = i16> + '_ {
    let (first, second) = frame.split_at(FRAME_SAMPLES / 2);
    let fade = first.iter().zip(second).take(SHORTEN_FADE_SAMPLES).enumerate().map(|(i, (&from, &to))| {
        let weight = (i as f32 + 0.5) / SHORTEN_FADE_SAMPLES as f32;
        (f32::from(from) * (1.0 - weight) + f32::from(to) * weight).round() as i16
    });
    fade.chain(second[SHORTEN_FADE_SAMPLES..].iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_frame_is_half_as_long_and_joins_its_neighbours_without_a_step() {
        // A 125 Hz tone: a frame's halves are a quarter period apart, so a
        // bare cut would jump (from 0 to the peak, at these frames).
        let tone: Vec<i16> = (0..3 * FRAME_SAMPLES)
            .map(|i| (8000.0 * (i as f32 * 125.0 / SAMPLE_RATE as f32 * std::f32::consts::TAU).sin()) as i16)
            .collect();
        let frame: Frame = tone[FRAME_SAMPLES..2 * FRAME_SAMPLES].try_into().unwrap();
        let short: Vec<i16> = shortened(&frame).collect();
        assert_eq!(short.len(), FRAME_SAMPLES / 2);
        // Played between the frames before and after it.
        let joined: Vec<i16> =
            tone[..FRAME_SAMPLES].iter().chain(&short).chain(&tone[2 * FRAME_SAMPLES..]).copied().collect();
        let largest_step = |s: &[i16]| s.windows(2).map(|w| (w[1] - w[0]).abs()).max().unwrap();
        // The tone's own largest step between samples is about 131; the
        // fade adds at most the halves' difference over its length (47).
        assert!(largest_step(&joined) <= largest_step(&tone) + 60, "{}", largest_step(&joined));
        // A cut without the fade would jump by thousands.
        let bare: Vec<i16> =
            tone[..FRAME_SAMPLES].iter().chain(&frame[FRAME_SAMPLES / 2..]).copied().collect();
        assert!(largest_step(&bare) > 2000, "{}", largest_step(&bare));
    }
}
