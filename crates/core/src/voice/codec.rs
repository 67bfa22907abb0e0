//! Opus for voice: 48 kHz mono, 20 ms frames, VoIP mode, in-band FEC whose
//! strength (and the bit rate and coded band) follows the loss the other
//! side reports.

use thiserror::Error;

/// Samples per second of every frame in the pipeline.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms frame at 48 kHz mono.
pub const FRAME_SAMPLES: usize = 960;
/// One 20 ms frame of 16-bit mono PCM: the unit every part exchanges.
pub type Frame = [i16; FRAME_SAMPLES];
/// The bit rates a session may be configured with (bits per second); the
/// top is also the rate under loss.
pub const BITRATE_RANGE: std::ops::RangeInclusive<i32> = 24_000..=48_000;
/// The default bit rate on a clean path: 40 kbit/s, where the test speech
/// scores PESQ-WB 3.88 end to end (24 kbit/s: 3.50, 32: 3.61, 48: 4.01;
/// docs/media.md, "Bit rate"). About 65 kbit/s on the wire with the
/// packet's headers, far below any broadband path.
pub const DEFAULT_BITRATE: i32 = 40_000;
/// libopus's encoder complexity (0-10; its default is 10). At 8 the
/// pipeline scores the same PESQ-WB to the third decimal, clean (3.875)
/// and at 10 % loss (mean 3.182), and a client in a call with the
/// processing on takes 5.00-5.13 % of a core against 5.90-5.93 % at 10
/// (docs/media.md, "Client CPU with the processing on"); 7 loses 0.17
/// clean and 5 loses 0.40.
const OPUS_COMPLEXITY: i32 = 8;
/// Measured loss (percent) from which the encoder runs at the top of the
/// range: the FEC copy needs bits, or it starves the primary frame (speech
/// with 10 % loss: mean PESQ-WB 2.87 at 40 kbit/s, 3.18 at 48; docs/media.md).
pub const HIGH_BITRATE_LOSS_PCT: f32 = 2.0;
/// The widest band coded on a clean path: super-wideband (speech up to
/// 12 kHz), not fullband. At 24 kbit/s libopus would spend the hybrid
/// mode's high band on 12-20 kHz, where speech carries little, and take
/// those bits from the band that carries it (docs/media.md, "Tuning":
/// clean-path PESQ-WB up on all six speech samples tried).
const CLEAN_BANDWIDTH: opus::Bandwidth = opus::Bandwidth::Superwideband;
/// The widest band coded while the path loses packets: wideband, all
/// SILK. In-band FEC (LBRR) copies only the SILK layer, so in hybrid mode
/// the high band of a lost frame is gone anyway, and the bits it took are
/// taken from the voice and its FEC copy (10 % loss: PESQ-WB up on all
/// twelve sample-and-loss-pattern runs tried).
const LOSSY_BANDWIDTH: opus::Bandwidth = opus::Bandwidth::Wideband;
/// Added to the measured loss for the expected-loss hint: FEC that is a
/// little generous costs a few bits; FEC that is missing costs a word.
const LOSS_HINT_MARGIN: f32 = 2.0;
/// An Opus frame at 48 kbit/s is about 120 bytes; this leaves room for FEC.
const MAX_OPUS_PACKET: usize = 400;

/// libopus refused a setting or a frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("opus: {0}")]
pub struct CodecError(String);

impl From<opus::Error> for CodecError {
    fn from(error: opus::Error) -> Self {
        CodecError(error.to_string())
    }
}

/// The sending side's Opus encoder.
pub struct VoiceEncoder {
    opus: opus::Encoder,
    /// The expected-loss hint last given to libopus, so it is set only on change.
    loss_hint: u8,
    /// The configured bit rate, used while the path loses little.
    base_bitrate: i32,
    /// The bit rate in force.
    bitrate: i32,
}

impl VoiceEncoder {
    /// An encoder at `bitrate` bit/s (clamped to [`BITRATE_RANGE`]), FEC on.
    pub fn new(bitrate: i32) -> Result<VoiceEncoder, CodecError> {
        let mut opus = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)?;
        let bitrate = bitrate.clamp(*BITRATE_RANGE.start(), *BITRATE_RANGE.end());
        opus.set_bitrate(opus::Bitrate::Bits(bitrate))?;
        opus.set_inband_fec(true)?;
        opus.set_signal(opus::Signal::Voice)?;
        opus.set_complexity(OPUS_COMPLEXITY)?;
        opus.set_max_bandwidth(CLEAN_BANDWIDTH)?;
        // FEC only goes into a packet when libopus expects loss; start at a
        // little so the first lost packet can already be recovered.
        let loss_hint = 5;
        opus.set_packet_loss_perc(i32::from(loss_hint))?;
        Ok(VoiceEncoder { opus, loss_hint, base_bitrate: bitrate, bitrate })
    }

    /// Follows the loss measured on the path: the expected-loss hint
    /// (measured plus a margin) and, above [`HIGH_BITRATE_LOSS_PCT`], the
    /// top of the bit-rate range so the FEC has bits to use, and wideband
    /// ([`LOSSY_BANDWIDTH`]) so they go where the FEC protects them.
    pub fn adapt_to_loss(&mut self, loss_pct: f32) -> Result<(), CodecError> {
        let loss_pct = if loss_pct.is_finite() { loss_pct.clamp(0.0, 100.0) } else { 0.0 };
        self.set_expected_loss((loss_pct + LOSS_HINT_MARGIN).round() as u8)?;
        let lossy = loss_pct >= HIGH_BITRATE_LOSS_PCT;
        let bitrate = if lossy { *BITRATE_RANGE.end() } else { self.base_bitrate };
        if bitrate != self.bitrate {
            self.opus.set_bitrate(opus::Bitrate::Bits(bitrate))?;
            self.opus.set_max_bandwidth(if lossy { LOSSY_BANDWIDTH } else { CLEAN_BANDWIDTH })?;
            self.bitrate = bitrate;
        }
        Ok(())
    }

    /// The bit rate in force, bit/s.
    pub fn bitrate(&self) -> i32 {
        self.bitrate
    }

    /// Tells libopus how much loss to expect (percent, 0–100): more loss,
    /// more bits spent on the FEC copy of the previous frame.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), CodecError> {
        // Never 0: FEC needs a hint above zero to be emitted at all.
        let percent = percent.clamp(1, 100);
        if percent != self.loss_hint {
            self.opus.set_packet_loss_perc(i32::from(percent))?;
            self.loss_hint = percent;
        }
        Ok(())
    }

    /// The expected-loss hint in force.
    pub fn expected_loss(&self) -> u8 {
        self.loss_hint
    }

    /// One Opus packet for one frame.
    pub fn encode(&mut self, frame: &Frame) -> Result<Vec<u8>, CodecError> {
        Ok(self.opus.encode_vec(frame, MAX_OPUS_PACKET)?)
    }

    /// Samples of lookahead libopus adds to the mouth-to-ear delay.
    pub fn lookahead(&mut self) -> Result<i32, CodecError> {
        Ok(self.opus.get_lookahead()?)
    }
}

/// The receiving side's Opus decoder.
pub struct VoiceDecoder {
    opus: opus::Decoder,
}

impl VoiceDecoder {
    pub fn new() -> Result<VoiceDecoder, CodecError> {
        Ok(VoiceDecoder { opus: opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)? })
    }

    /// The frame carried by `packet`; concealment if libopus cannot read it.
    pub fn decode(&mut self, packet: &[u8]) -> Frame {
        self.run(packet, false)
    }

    /// The lost frame before `next_packet`, from the FEC copy inside it.
    pub fn decode_fec(&mut self, next_packet: &[u8]) -> Frame {
        self.run(next_packet, true)
    }

    /// A frame of packet-loss concealment: libopus extrapolates the last
    /// frames and fades out over a long gap.
    pub fn conceal(&mut self) -> Frame {
        self.run(&[], false)
    }

    fn run(&mut self, input: &[u8], fec: bool) -> Frame {
        let mut frame = [0i16; FRAME_SAMPLES];
        match self.opus.decode(input, &mut frame, fec) {
            Ok(_) => frame,
            // An authentic but undecodable packet (a peer's bug) must not
            // stop the call: conceal it like a loss.
            Err(_) if !input.is_empty() => self.run(&[], false),
            Err(_) => [0i16; FRAME_SAMPLES],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frame_index: usize) -> Frame {
        std::array::from_fn(|i| {
            let t = (frame_index * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
            (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16
        })
    }

    fn energy(frame: &Frame) -> f64 {
        frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / FRAME_SAMPLES as f64
    }

    #[test]
    fn a_frame_encodes_under_the_bitrate_and_decodes_to_sound() {
        let mut encoder = VoiceEncoder::new(DEFAULT_BITRATE).unwrap();
        let mut decoder = VoiceDecoder::new().unwrap();
        let mut last = [0i16; FRAME_SAMPLES];
        for index in 0..20 {
            let packet = encoder.encode(&tone(index)).unwrap();
            // 24 kbit/s is 60 bytes a frame; VBR allows some above.
            assert!(packet.len() < 150, "{} bytes", packet.len());
            last = decoder.decode(&packet);
        }
        assert!(energy(&last) > 0.5 * energy(&tone(19)));
    }

    #[test]
    fn a_lost_frame_comes_back_from_the_next_packets_fec() {
        let mut encoder = VoiceEncoder::new(DEFAULT_BITRATE).unwrap();
        encoder.set_expected_loss(20).unwrap();
        let packets: Vec<_> = (0..20).map(|i| encoder.encode(&tone(i)).unwrap()).collect();
        let mut decoder = VoiceDecoder::new().unwrap();
        for packet in &packets[..10] {
            decoder.decode(packet);
        }
        let recovered = decoder.decode_fec(&packets[11]);
        assert!(energy(&recovered) > 0.3 * energy(&tone(10)));
    }

    #[test]
    fn the_loss_hint_is_clamped_and_bitrate_out_of_range_is_clamped() {
        let mut encoder = VoiceEncoder::new(1_000_000).unwrap();
        encoder.set_expected_loss(0).unwrap();
        assert_eq!(encoder.expected_loss(), 1);
        encoder.set_expected_loss(250).unwrap();
        assert_eq!(encoder.expected_loss(), 100);
        assert_eq!(encoder.opus.get_bitrate().unwrap(), opus::Bitrate::Bits(48_000));
    }

    #[test]
    fn measured_loss_raises_the_hint_and_the_bitrate() {
        let mut encoder = VoiceEncoder::new(DEFAULT_BITRATE).unwrap();
        assert_eq!(encoder.opus.get_max_bandwidth().unwrap(), opus::Bandwidth::Superwideband);
        encoder.adapt_to_loss(0.0).unwrap();
        assert_eq!((encoder.expected_loss(), encoder.bitrate()), (2, 40_000));
        encoder.adapt_to_loss(10.2).unwrap();
        assert_eq!((encoder.expected_loss(), encoder.bitrate()), (12, 48_000));
        assert_eq!(encoder.opus.get_bitrate().unwrap(), opus::Bitrate::Bits(48_000));
        assert_eq!(
            encoder.opus.get_max_bandwidth().unwrap(),
            opus::Bandwidth::Wideband,
            "all SILK under loss"
        );
        encoder.adapt_to_loss(f32::NAN).unwrap();
        assert_eq!((encoder.expected_loss(), encoder.bitrate()), (2, 40_000));
        assert_eq!(encoder.opus.get_max_bandwidth().unwrap(), opus::Bandwidth::Superwideband);
    }

    #[test]
    fn garbage_is_concealed_not_a_panic() {
        let mut decoder = VoiceDecoder::new().unwrap();
        let frame = decoder.decode(&[0xFF; 3]);
        assert_eq!(frame.len(), FRAME_SAMPLES);
    }
}
