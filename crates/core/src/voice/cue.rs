//! The call-waiting beeps, mixed into what the speaker plays during a
//! call. Played through a stream of their own (the app's ringer) they
//! reached the microphone with no echo canceller reference, so nothing
//! took them out of what the far end hears (-35 to -39 dBFS on the echo
//! rig); mixed into the call's own playback they are in the frames the
//! canceller is given as played, like the far end's voice (on the rig, at
//! the meter's floor but for a first beep; docs/media.md, "The
//! call-waiting beeps").
//! The pattern is the app's `callwaiting.ogg`: 440 Hz at -9.7 dBFS peak,
//! 300 ms on, 200 ms off, 300 ms on, then quiet to 5 s.

use super::codec::{Frame, SAMPLE_RATE};

/// The beeps' pitch (Hz).
const PITCH_HZ: f32 = 440.0;
/// Their peak, as a fraction of full scale (-9.7 dBFS, the asset's).
const PEAK: f32 = 0.326;
/// When each beep starts and ends within the cycle (ms).
const BEEPS_MS: [(u32, u32); 2] = [(0, 300), (500, 800)];
/// The cycle (ms): the beeps, then quiet.
const CYCLE_MS: u32 = 5_000;
/// Each beep fades in and out over this (ms): a tone switched on or off
/// at full level clicks.
const FADE_MS: f32 = 5.0;

/// Where in the beeps' cycle the speaker is, while they play.
#[derive(Debug, Default)]
pub struct CallWaitingCue {
    /// Samples into the cycle while the beeps play.
    position: Option<u32>,
}

impl CallWaitingCue {
    /// Adds the next 20 ms of the beeps to `frame` while `on`; once off,
    /// a beep under way plays to its end (no click), then nothing.
    pub fn mix(&mut self, frame: &mut Frame, on: bool) {
        let mut position = match self.position {
            Some(position) if on || in_beep(position) => position,
            None if on => 0,
            _ => {
                self.position = None;
                return;
            }
        };
        let cycle = CYCLE_MS * SAMPLE_RATE / 1000;
        for sample in frame.iter_mut() {
            let mixed = f32::from(*sample) + level(position) * 32_767.0;
            *sample = mixed.clamp(-32_768.0, 32_767.0) as i16;
            position = (position + 1) % cycle;
        }
        self.position = Some(position);
    }
}

/// Whether sample `position` of the cycle is inside a beep.
fn in_beep(position: u32) -> bool {
    let ms = position * 1000 / SAMPLE_RATE;
    BEEPS_MS.iter().any(|&(start, end)| (start..end).contains(&ms))
}

/// The beeps' signal at sample `position` of the cycle (-1.0..1.0).
fn level(position: u32) -> f32 {
    let ms = position as f32 * 1000.0 / SAMPLE_RATE as f32;
    let Some(&(start, end)) = BEEPS_MS.iter().find(|&&(start, end)| (start as f32..end as f32).contains(&ms))
    else {
        return 0.0;
    };
    let envelope = ((ms - start as f32) / FADE_MS).min((end as f32 - ms) / FADE_MS).min(1.0);
    let phase = position as f32 * PITCH_HZ / SAMPLE_RATE as f32;
    PEAK * envelope * (phase * std::f32::consts::TAU).sin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::codec::FRAME_SAMPLES;
    use crate::voice::level::LevelMeter;

    /// Frames in one cycle of the beeps.
    const CYCLE_FRAMES: usize = (CYCLE_MS * SAMPLE_RATE / 1000) as usize / FRAME_SAMPLES;

    fn peak_dbfs(frame: &Frame) -> f32 {
        LevelMeter::default().measure(frame).peak_dbfs
    }

    #[test]
    fn the_beeps_follow_the_ringers_pattern_and_stop_at_the_end_of_a_beep() {
        let mut cue = CallWaitingCue::default();
        let frames: Vec<Frame> = (0..CYCLE_FRAMES)
            .map(|_| {
                let mut frame = [0; FRAME_SAMPLES];
                cue.mix(&mut frame, true);
                frame
            })
            .collect();
        // 20 ms frames: beeps in frames 0-14 and 25-39, quiet between and after.
        let loud: Vec<usize> = (0..frames.len()).filter(|&k| peak_dbfs(&frames[k]) > -12.0).collect();
        assert_eq!(loud, (0..15).chain(25..40).collect::<Vec<_>>());
        assert!(frames[16..24].iter().chain(&frames[41..]).all(|f| f.iter().all(|&s| s == 0)));
        // No click at a beep's edge: the first samples start near zero.
        assert!(frames[0][..10].iter().all(|&s| s.abs() < 400), "{:?}", &frames[0][..10]);
        // Turned off mid-beep: the beep plays out, then nothing.
        let mut cue = CallWaitingCue::default();
        let mut frame = [0; FRAME_SAMPLES];
        cue.mix(&mut frame, true);
        let after: Vec<f32> = (0..20)
            .map(|_| {
                let mut frame = [0; FRAME_SAMPLES];
                cue.mix(&mut frame, false);
                peak_dbfs(&frame)
            })
            .collect();
        assert!(after[..14].iter().all(|&p| p > -12.0), "{after:?}");
        assert!(after[14..].iter().all(|&p| p < -90.0), "{after:?}");
    }

    /// The beeps' echo at a microphone (a laptop's room: 30 ms, -18 dB)
    /// after the echo canceller, over the second of two cycles, in dB
    /// against the beeps as played: mixed into the call's playback, the
    /// canceller is given them as played; through another stream, it is
    /// given the call's silence.
    fn beeps_left_after_the_canceller(in_the_call: bool) -> f64 {
        const CYCLES: usize = 2;
        use crate::voice::processing::echo_path::EchoPath;
        use crate::voice::processing::{AudioProcessor, ProcessingConfig};
        let (mut cue, mut room) = (CallWaitingCue::default(), EchoPath::new(30.0, -18.0));
        let mut processor = AudioProcessor::new(ProcessingConfig::default());
        let energy = |frame: &Frame| frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
        let (mut played_energy, mut left_energy) = (0.0, 0.0);
        for k in 0..CYCLES * CYCLE_FRAMES {
            let mut played = [0; FRAME_SAMPLES];
            cue.mix(&mut played, true);
            processor.on_far_end_frame(if in_the_call { &played } else { &[0; FRAME_SAMPLES] });
            let mut heard = room.echo(&played);
            processor.process_captured_frame(&mut heard);
            if k >= (CYCLES - 1) * CYCLE_FRAMES {
                (played_energy, left_energy) =
                    (played_energy + energy(&played), left_energy + energy(&heard));
            }
        }
        10.0 * (left_energy.max(1.0) / played_energy).log10()
    }

    #[test]
    fn in_the_calls_playback_the_canceller_takes_the_beeps_out() {
        let (in_the_call, elsewhere) =
            (beeps_left_after_the_canceller(true), beeps_left_after_the_canceller(false));
        eprintln!(
            "the beeps' echo after the canceller: {in_the_call:.1} dB in the call's playback, {elsewhere:.1} dB through another stream"
        );
        // Measured -34.3 against -22.9 dB (the fourth cycle: -30.8 against
        // -17.2): the canceller takes 11-14 dB of a steady tone off, far
        // less than the 40-60 dB it takes off speech, but the far end hears
        // the beeps that much quieter.
        assert!(elsewhere > -30.0, "through another stream the far end hears them: {elsewhere} dB");
        assert!(in_the_call < elsewhere - 8.0, "{in_the_call} dB against {elsewhere} dB");
    }

    #[test]
    fn the_beeps_add_to_the_voice_under_them_and_nothing_plays_until_asked() {
        let (mut over_voice, mut alone) = (CallWaitingCue::default(), CallWaitingCue::default());
        let mut voice = [1000; FRAME_SAMPLES];
        over_voice.mix(&mut voice, false);
        assert!(voice.iter().all(|&s| s == 1000), "no beep before a call waits");
        let mut beep = [0; FRAME_SAMPLES];
        over_voice.mix(&mut voice, true);
        alone.mix(&mut beep, true);
        assert!(beep.iter().any(|&s| s > 9_000));
        // Truncation to i16 may differ by one either side of zero.
        assert!(voice.iter().zip(&beep).all(|(&v, &b)| (i32::from(v) - i32::from(b) - 1000).abs() <= 1));
    }
}
