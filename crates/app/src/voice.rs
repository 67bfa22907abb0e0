//! The built-in voice as a media hook: when a call is accepted it opens
//! the chosen microphone and speaker (a missing one becomes silence and a
//! plain sentence on the call screen, never a failed call) and hands them
//! to a [`VoiceStarter`], the call driver, which carries the audio through
//! the relay and returns a running [`VoiceLine`] at once; its control
//! (mute, volume, levels) appears once the relay answers, so the window
//! never waits for the network.
//!
//! The driver is a trait so the app does not depend on how the audio
//! travels: `voice::call::VoiceCall` implements it in production, tests
//! put a fake one in [`super::Parts`].

use super::audio::AudioDevices;
use crate::audio::device::DeviceChoice;
use crate::media_hook::{CallFacts, MediaError, MediaHook, MediaSession, MediaStatus, VoiceView};
use softphone_core::voice::audio::{AudioSink, AudioSource, Discard, Silence};
use softphone_core::voice::{AudioEnds, Pacing, ProcessingConfig, VoiceControl};
use std::sync::Arc;

/// A call's running voice, as the driver gives it.
pub trait VoiceLine {
    /// Mute, volume, levels and the quality line; `None` while the
    /// driver is still reaching the relay (it starts in the background).
    fn control(&self) -> Option<VoiceControl>;
    /// The six digits both call screens show; empty until the keys are agreed.
    fn safety_code(&self) -> String;
    /// What the screen must say under the code when comparing it does not
    /// protect the call (a v1.1 peer); `None` when it does.
    fn safety_note(&self) -> Option<String> {
        None
    }
    /// How it is doing, for the call screen's status line.
    fn status(&mut self) -> MediaStatus;
    /// Stops the audio; called once, at hang-up.
    fn stop(&mut self);
}

/// Starts the voice of an accepted call with this microphone and speaker.
pub trait VoiceStarter: Send + Sync {
    /// `ends` says, per direction, whether a sound-card device sets the
    /// pace (it blocks in its reads or writes) or a stand-in that returns
    /// at once (silence for a missing microphone, a discard for a missing
    /// speaker) needs the driver's 20 ms clock.
    fn start(&self, call: &CallFacts, ends: AudioEnds) -> Result<Box<dyn VoiceLine>, MediaError>;
}

/// The media hook of `{"kind": "voice"}`.
pub struct VoiceMedia {
    pub devices: Arc<dyn AudioDevices>,
    pub starter: Arc<dyn VoiceStarter>,
    /// The settings' microphone.
    pub input: DeviceChoice,
    /// The settings' speaker.
    pub output: DeviceChoice,
    /// The settings' echo cancellation, noise suppression, gain control.
    pub processing: ProcessingConfig,
}

impl MediaHook for VoiceMedia {
    fn start(&self, call: &CallFacts) -> Result<Box<dyn MediaSession>, MediaError> {
        let (source, no_microphone): (Box<dyn AudioSource>, _) = match self.devices.open_input(&self.input) {
            Ok(source) => (source, None),
            Err(e) => {
                tracing::warn!(call_id = %call.call_id, "no microphone: {e}");
                (Box::new(Silence), Some("No microphone found: the other side cannot hear you".to_owned()))
            }
        };
        let (sink, no_speaker): (Box<dyn AudioSink>, _) = match self.devices.open_output(&self.output) {
            Ok(sink) => (sink, None),
            Err(e) => {
                tracing::warn!(call_id = %call.call_id, "no speaker: {e}");
                (Box::new(Discard), Some("No speaker found: you cannot hear the other side".to_owned()))
            }
        };
        // Each direction apart: a missing speaker must not take the
        // microphone off its own clock.
        let pacing = |present: bool| {
            if self.devices.paces() && present { Pacing::Device } else { Pacing::Clock }
        };
        let ends = AudioEnds {
            source,
            capture: pacing(no_microphone.is_none()),
            sink,
            playback: pacing(no_speaker.is_none()),
            processing: self.processing,
        };
        let line = self.starter.start(call, ends)?;
        let view = VoiceView {
            control: line.control(),
            safety_code: String::new(),
            safety_note: None,
            no_microphone,
            no_speaker,
        };
        let mut session = VoiceSession { line, view, call_id: call.call_id.clone() };
        session.read_code();
        Ok(Box::new(session))
    }
}

/// A running voice call and what its screen reads.
struct VoiceSession {
    line: Box<dyn VoiceLine>,
    view: VoiceView,
    /// For the log line that gives the code.
    call_id: String,
}

impl VoiceSession {
    /// Takes the code once the keys are agreed (a callee learns it only
    /// once the caller's key is revealed).
    fn read_code(&mut self) {
        if !self.view.safety_code.is_empty() {
            return;
        }
        self.view.safety_code = self.line.safety_code();
        self.view.safety_note = self.line.safety_note();
        if !self.view.safety_code.is_empty() {
            // Logged so a script (scripts/two-app-voice-check.sh) can check
            // both ends show the same code without reading the screen.
            let (call_id, code) = (&self.call_id, &self.view.safety_code);
            let protected = self.view.safety_note.is_none();
            tracing::info!(%call_id, safety_code = %code, protected, "voice call started");
        }
    }
}

impl MediaSession for VoiceSession {
    fn poll(&mut self) -> MediaStatus {
        // Controls appear once the relay answers and go when voice ends
        // (a tampered reveal ends voice while the call goes on).
        self.view.control = self.line.control();
        self.read_code();
        self.line.status()
    }

    fn stop(&mut self) {
        self.line.stop();
    }

    fn voice(&self) -> Option<&VoiceView> {
        Some(&self.view)
    }
}
