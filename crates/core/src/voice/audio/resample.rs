//! Sample-rate conversion by windowed-sinc interpolation, streaming: a WAV
//! file or a sound card at any rate in, 48 kHz out (and 48 kHz down to
//! 16 kHz for wideband PESQ in the tests).

use std::collections::VecDeque;
use std::f64::consts::PI;

/// Zero crossings of the sinc kernel on each side: 16 keep the passband
/// flat to about 0.9 of the lower Nyquist frequency with a Blackman window.
const HALF_TAPS: f64 = 16.0;
/// Kernel table entries per input sample: linear interpolation between
/// them is far below 16-bit resolution, and no trigonometry runs per sample.
const TABLE_STEPS: usize = 256;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// The kernel's cutoff relative to the input's Nyquist frequency (below
    /// 1 when the output rate is lower, so nothing aliases).
    cutoff: f64,
    /// Input samples on each side of a point that contribute to it.
    reach: usize,
    /// Input samples not yet behind the kernel; `input[0]` is sample `base`.
    input: VecDeque<f32>,
    base: i64,
    /// The input position of the next output sample.
    position: f64,
    /// Same rates: samples pass through untouched.
    identity: bool,
    /// The kernel at distances 0, 1/TABLE_STEPS, ... up to `reach`.
    table: Vec<f64>,
}

impl Resampler {
    pub fn new(from_hz: u32, to_hz: u32) -> Resampler {
        let step = f64::from(from_hz) / f64::from(to_hz);
        let cutoff = (1.0 / step).min(1.0);
        let reach = (HALF_TAPS / cutoff).ceil() as usize;
        // Zeros before the first sample, so the first outputs have a past.
        let input = std::iter::repeat_n(0.0, reach).collect();
        let mut resampler = Resampler {
            step,
            cutoff,
            reach,
            input,
            base: -(reach as i64),
            position: 0.0,
            identity: from_hz == to_hz,
            table: Vec::new(),
        };
        let entries = reach * TABLE_STEPS + 2;
        resampler.table = (0..entries).map(|i| resampler.kernel(i as f64 / TABLE_STEPS as f64)).collect();
        resampler
    }

    /// The kernel at distance `x` (input samples), from the table.
    fn tabled(&self, x: f64) -> f64 {
        let scaled = x.abs() * TABLE_STEPS as f64;
        let index = scaled as usize;
        if index + 1 >= self.table.len() {
            return 0.0;
        }
        let fraction = scaled - index as f64;
        self.table[index] + fraction * (self.table[index + 1] - self.table[index])
    }

    /// Converts the next input samples, appending what is ready to `out`.
    pub fn process(&mut self, samples: &[f32], out: &mut Vec<f32>) {
        if self.identity {
            out.extend_from_slice(samples);
            return;
        }
        self.input.extend(samples);
        self.drain(out);
    }

    /// Ends the stream: the outputs that were waiting for later input.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        if self.identity {
            return;
        }
        let end = self.base + self.input.len() as i64;
        self.input.extend(std::iter::repeat_n(0.0, self.reach + 1));
        while self.position < end as f64 {
            out.push(self.point(self.position));
            self.position += self.step;
        }
    }

    fn drain(&mut self, out: &mut Vec<f32>) {
        let end = self.base + self.input.len() as i64;
        while (self.position.floor() as i64) + (self.reach as i64) < end {
            out.push(self.point(self.position));
            self.position += self.step;
        }
        let keep_from = self.position.floor() as i64 - self.reach as i64;
        while self.base < keep_from {
            self.input.pop_front();
            self.base += 1;
        }
    }

    /// The band-limited signal at input position `at`.
    fn point(&self, at: f64) -> f32 {
        let centre = at.floor() as i64;
        let reach = self.reach as i64;
        let mut sum = 0.0;
        for index in (centre - reach + 1)..=(centre + reach) {
            let offset = index - self.base;
            if offset < 0 || offset as usize >= self.input.len() {
                continue;
            }
            let x = at - index as f64;
            sum += f64::from(self.input[offset as usize]) * self.tabled(x);
        }
        sum as f32
    }

    fn kernel(&self, x: f64) -> f64 {
        let scaled = x * self.cutoff;
        let sinc = if scaled.abs() < 1e-9 { 1.0 } else { (PI * scaled).sin() / (PI * scaled) };
        let span = self.reach as f64;
        let w = (x + span) / (2.0 * span);
        if !(0.0..=1.0).contains(&w) {
            return 0.0;
        }
        let blackman = 0.42 - 0.5 * (2.0 * PI * w).cos() + 0.08 * (4.0 * PI * w).cos();
        self.cutoff * sinc * blackman
    }
}

/// Converts a whole buffer of 16-bit samples.
pub fn resample_i16(samples: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    let mut resampler = Resampler::new(from_hz, to_hz);
    let input: Vec<f32> = samples.iter().map(|&s| f32::from(s)).collect();
    let mut out = Vec::with_capacity(samples.len() * to_hz as usize / from_hz as usize + 1);
    resampler.process(&input, &mut out);
    resampler.finish(&mut out);
    out.into_iter().map(|s| s.round().clamp(-32768.0, 32767.0) as i16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: u32, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n).map(|i| (10000.0 * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as i16).collect()
    }

    /// The strongest correlation with a sine of `hz` (amplitude estimate).
    fn amplitude_at(samples: &[i16], hz: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in samples.iter().enumerate() {
            let phase = 2.0 * PI * hz * i as f64 / f64::from(rate);
            re += f64::from(s) * phase.cos();
            im += f64::from(s) * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / samples.len() as f64
    }

    #[test]
    fn upsampling_keeps_length_and_tone() {
        let input = sine(440.0, 22_050, 1.0);
        let out = resample_i16(&input, 22_050, 48_000);
        assert!((out.len() as i64 - 48_000).abs() <= 2, "{}", out.len());
        let amplitude = amplitude_at(&out[1000..47_000], 440.0, 48_000);
        assert!((amplitude - 10000.0).abs() < 100.0, "{amplitude}");
    }

    #[test]
    fn downsampling_removes_what_would_alias() {
        // 10 kHz cannot exist at 16 kHz; it must not fold down to 6 kHz.
        let out = resample_i16(&sine(10_000.0, 48_000, 0.5), 48_000, 16_000);
        assert!(amplitude_at(&out, 6_000.0, 16_000) < 100.0);
        let kept = resample_i16(&sine(1_000.0, 48_000, 0.5), 48_000, 16_000);
        assert!((amplitude_at(&kept[200..7800], 1_000.0, 16_000) - 10000.0).abs() < 100.0);
    }

    #[test]
    fn streaming_in_chunks_equals_one_pass() {
        let input: Vec<f32> = sine(300.0, 44_100, 0.2).iter().map(|&s| f32::from(s)).collect();
        let mut whole = Vec::new();
        let mut one = Resampler::new(44_100, 48_000);
        one.process(&input, &mut whole);
        one.finish(&mut whole);
        let mut chunked = Vec::new();
        let mut two = Resampler::new(44_100, 48_000);
        for chunk in input.chunks(333) {
            two.process(chunk, &mut chunked);
        }
        two.finish(&mut chunked);
        assert_eq!(whole, chunked);
    }
}
