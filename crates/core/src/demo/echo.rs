//! The demo peer `echo`'s voice: it accepts with voice of its own (the
//! shared [`CallVoice`], handshake included), so it is a participant of the
//! end-to-end encrypted call like any other (it decrypts what it hears and
//! encrypts what it says), and says back
//! what it heard [`ECHO_DELAY`] later, so a caller can test their
//! microphone and the whole path.

use super::AcceptWith;
use crate::relay_link::LinkOptions;
use crate::sdk::call_voice::{CallVoice, RelayAt, Stage};
use crate::voice::audio::{AudioError, AudioSink, AudioSource};
use crate::voice::codec::{FRAME_SAMPLES, Frame};
use crate::voice::{AudioEnds, VoiceConfig};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// How much later `echo` says what it heard: long enough to hear oneself
/// apart from one's own voice, short enough to wait for.
pub const ECHO_DELAY: Duration = Duration::from_secs(1);

/// The playback end of the delay line: what the echo hears goes in here.
pub struct DelaySink {
    frames: SyncSender<Frame>,
}

/// The capture end of the delay line: silence until a delay's worth was
/// heard, then what was heard, frame for frame (silence if it runs dry).
/// Counting what is queued, not the frames given, keeps the delay whole
/// when the two threads' ticks wobble against each other.
pub struct DelaySource {
    frames: Receiver<Frame>,
    /// What was heard and not yet said.
    queued: VecDeque<Frame>,
    /// Frames to hold before saying anything.
    lead_in: usize,
    /// Whether the lead-in is over.
    started: bool,
}

/// A delay line of `delay` between a sink and a source paced alike.
pub fn delay_line(delay: Duration) -> (DelaySink, DelaySource) {
    let lead_in = (delay.as_millis() / 20) as usize;
    // Room for the delay twice over; beyond that frames are dropped.
    let (tx, rx) = sync_channel(2 * lead_in + 10);
    (DelaySink { frames: tx }, DelaySource { frames: rx, queued: VecDeque::new(), lead_in, started: false })
}

impl AudioSink for DelaySink {
    fn write_frame(&mut self, frame: &Frame) -> Result<(), AudioError> {
        match self.frames.try_send(*frame) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Ok(()),
        }
    }
}

impl AudioSource for DelaySource {
    fn read_frame(&mut self, frame: &mut Frame) -> Result<(), AudioError> {
        self.queued.extend(self.frames.try_iter());
        self.started |= self.queued.len() >= self.lead_in;
        let next = if self.started { self.queued.pop_front() } else { None };
        *frame = next.unwrap_or([0; FRAME_SAMPLES]);
        Ok(())
    }
}

/// `echo`'s accept: with voice, then the voice of the call until it ends.
/// A caller that offered no voice (or a server without a relay) gets a
/// plain accepted call with nothing to hear.
pub fn accept_with(server_url: String) -> AcceptWith {
    AcceptWith(Arc::new(move |invitation| {
        let server_url = server_url.clone();
        Box::pin(async move {
            invitation.accept_with_voice().await?;
            let Some(voice) = invitation.voice() else { return Ok(()) };
            let (sink, source) = delay_line(ECHO_DELAY);
            let relay = RelayAt { server_url, options: LinkOptions::default() };
            let ends = AudioEnds::clocked(Box::new(source), Box::new(sink));
            let mut call = CallVoice::start(voice, relay, VoiceConfig::default(), ends);
            let call_id = invitation.call_id().to_owned();
            tokio::spawn(async move {
                if let Stage::Over { why, .. } = call.started().await {
                    tracing::info!(call_id, "echo: no voice: {why}");
                }
                call.run_to_end().await;
            });
            Ok(())
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_line_gives_silence_for_the_delay_then_what_it_took() {
        let (mut sink, mut source) = delay_line(Duration::from_millis(40));
        let mut frame = [0; FRAME_SAMPLES];
        sink.write_frame(&[7; FRAME_SAMPLES]).unwrap();
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 0), "one frame heard, two to hold");
        sink.write_frame(&[8; FRAME_SAMPLES]).unwrap();
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 7));
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 8));
        source.read_frame(&mut frame).unwrap();
        assert!(frame.iter().all(|&s| s == 0), "nothing heard: silence");
    }
}
