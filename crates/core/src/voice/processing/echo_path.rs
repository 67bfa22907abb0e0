//! A synthetic room between a speaker and a microphone, for the echo
//! canceller's tests and rig (no sound card): what the speaker plays
//! reaches the microphone after an acoustic delay, through a few
//! reflections, band-limited like a laptop's small speaker, at a set
//! coupling (the echo's level against what was played).

use std::f32::consts::PI;

use super::super::codec::{Frame, SAMPLE_RATE};

/// Reflections after the direct path: (extra delay in ms, relative gain).
/// A desk and a screen near a laptop, then the room's first walls.
const REFLECTIONS: [(f32, f32); 4] = [(0.0, 1.0), (2.5, -0.5), (6.0, 0.3), (13.0, -0.15)];
/// A small speaker plays little below this (Hz).
const SPEAKER_LOW_HZ: f32 = 200.0;
/// ... and the room and microphone take the top off above this (Hz).
const ROOM_HIGH_HZ: f32 = 5000.0;

/// The echo path: a sparse impulse response, then a band-pass.
#[derive(Debug, Clone)]
pub struct EchoPath {
    /// What was played, newest last, as long as the longest tap.
    history: Vec<f32>,
    /// Where the next played sample goes in `history` (a ring).
    position: usize,
    /// (delay in samples, gain) of each path.
    taps: Vec<(usize, f32)>,
    /// One-pole high-pass state (previous input, previous output) and coefficient.
    high_pass: (f32, f32, f32),
    /// One-pole low-pass state and coefficient.
    low_pass: (f32, f32),
}

impl EchoPath {
    /// A path with the direct sound `delay_ms` after playback, whose taps'
    /// energy adds up to `coupling_db` (before the band-pass, which takes
    /// a little more off speech: measure the echo, do not assume it).
    pub fn new(delay_ms: f32, coupling_db: f32) -> EchoPath {
        let per_ms = SAMPLE_RATE as f32 / 1000.0;
        let energy: f32 = REFLECTIONS.iter().map(|(_, g)| g * g).sum();
        let scale = 10f32.powf(coupling_db / 20.0) / energy.sqrt();
        let taps: Vec<(usize, f32)> = REFLECTIONS
            .iter()
            .map(|&(extra, g)| (((delay_ms + extra) * per_ms) as usize, g * scale))
            .collect();
        let longest = taps.iter().map(|&(d, _)| d).max().unwrap_or(0) + 1;
        let rate = SAMPLE_RATE as f32;
        let high = 1.0 / (1.0 + 2.0 * PI * SPEAKER_LOW_HZ / rate);
        let low = 1.0 - (-2.0 * PI * ROOM_HIGH_HZ / rate).exp();
        EchoPath {
            history: vec![0.0; longest],
            position: 0,
            taps,
            high_pass: (0.0, 0.0, high),
            low_pass: (0.0, low),
        }
    }

    /// Takes a frame the speaker played and returns the echo the
    /// microphone picks up over the same 20 ms.
    pub fn echo(&mut self, played: &Frame) -> Frame {
        let mut echo = [0i16; super::super::codec::FRAME_SAMPLES];
        let len = self.history.len();
        for (out, &sample) in echo.iter_mut().zip(played) {
            self.history[self.position] = f32::from(sample);
            let mut value: f32 = self
                .taps
                .iter()
                .map(|&(delay, gain)| gain * self.history[(self.position + len - delay) % len])
                .sum();
            self.position = (self.position + 1) % len;
            let (previous_in, previous_out, a) = self.high_pass;
            let high = a * (previous_out + value - previous_in);
            self.high_pass = (value, high, a);
            value = high;
            let (state, b) = self.low_pass;
            let low = state + b * (value - state);
            self.low_pass = (low, b);
            *out = low.clamp(-32768.0, 32767.0) as i16;
        }
        echo
    }
}
