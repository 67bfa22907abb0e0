//! Sound levels in dBFS for the microphone meter and the speaker meter.

use super::codec::Frame;

/// The level reported for digital silence (and the meter's floor).
pub const FLOOR_DBFS: f32 = -96.0;
/// How fast the peak indicator falls: 1.2 dB a 20 ms frame (60 dB/s), as
/// a level meter's needle does.
const PEAK_FALL_DB: f32 = 1.2;

/// One reading: RMS and peak in dB relative to full scale (0 dBFS is the
/// loudest a 16-bit sample can be; a normal voice sits near -20 dBFS RMS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub rms_dbfs: f32,
    pub peak_dbfs: f32,
}

impl Level {
    pub const SILENT: Level = Level { rms_dbfs: FLOOR_DBFS, peak_dbfs: FLOOR_DBFS };
}

/// RMS of the latest frame, and a peak that holds and falls slowly.
#[derive(Debug, Clone, Copy)]
pub struct LevelMeter {
    level: Level,
}

impl Default for LevelMeter {
    fn default() -> Self {
        LevelMeter { level: Level::SILENT }
    }
}

fn dbfs(amplitude: f64) -> f32 {
    if amplitude <= 0.0 {
        return FLOOR_DBFS;
    }
    ((20.0 * (amplitude / 32768.0).log10()) as f32).max(FLOOR_DBFS)
}

impl LevelMeter {
    /// Takes in one frame and returns the reading after it.
    pub fn measure(&mut self, frame: &Frame) -> Level {
        let square_sum: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
        let rms = dbfs((square_sum / frame.len() as f64).sqrt());
        let peak = dbfs(frame.iter().map(|&s| f64::from(s).abs()).fold(0.0, f64::max));
        let falling = (self.level.peak_dbfs - PEAK_FALL_DB).max(FLOOR_DBFS);
        self.level = Level { rms_dbfs: rms, peak_dbfs: peak.max(falling) };
        self.level
    }

    pub fn level(&self) -> Level {
        self.level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::codec::FRAME_SAMPLES;

    #[test]
    fn full_scale_square_is_zero_dbfs_and_silence_the_floor() {
        let mut meter = LevelMeter::default();
        let square: Frame = std::array::from_fn(|i| if i % 2 == 0 { 32767 } else { -32768 });
        let level = meter.measure(&square);
        assert!(level.rms_dbfs > -0.01 && level.peak_dbfs > -0.01, "{level:?}");
        let level = meter.measure(&[0; FRAME_SAMPLES]);
        assert_eq!(level.rms_dbfs, FLOOR_DBFS);
        // The peak falls slowly rather than dropping to the floor.
        assert!((level.peak_dbfs + PEAK_FALL_DB).abs() < 0.01, "{level:?}");
    }

    #[test]
    fn a_half_scale_sine_is_about_minus_nine_dbfs_rms() {
        let sine: Frame = std::array::from_fn(|i| {
            (16384.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin()) as i16
        });
        let level = LevelMeter::default().measure(&sine);
        assert!((level.rms_dbfs + 9.03).abs() < 0.1, "{level:?}");
        assert!((level.peak_dbfs + 6.02).abs() < 0.1, "{level:?}");
    }
}
