//! What the app derives from its state after every update: the tone to
//! play and the sound settings to play it with, and the media session of
//! the call that is up. The ringer and the media hook are told only about
//! changes.
//!
//! Deriving instead of switching things on and off at each event is what
//! makes "the ringtone plays while, and only while, an invitation rings"
//! hold whatever ended the invitation.

use super::audio::{AudioDevices, MicTest};
use super::voice::{VoiceMedia, VoiceStarter};
use super::{App, Page};
use crate::audio::device::DeviceChoice;
use crate::config::{AppConfig, MediaConfig};
use crate::media_hook::{self, MediaHook, MediaSession, MediaStatus, VoiceView};
use crate::ringtone::{Ringer, Sound, Tone};
use softphone_core::clock::unix_micros;
use std::sync::Arc;

/// The media session of the call that is up.
struct ActiveMedia {
    call_id: String,
    /// `None` when it failed to start (the call screen says why); kept so
    /// that it is not started again on every update.
    session: Option<Box<dyn MediaSession>>,
}

/// The sound card and the media hook, and what they were last told.
pub struct Outputs {
    ringer: Box<dyn Ringer>,
    /// The sound the ringer was last configured with.
    sound: Sound,
    /// The tone the ringer was last told to play.
    tone: Option<Tone>,
    media_hook: Box<dyn MediaHook>,
    /// Whether the media hook came from the config (and follows it) or was
    /// given (tests).
    media_hook_from_config: bool,
    media: Option<ActiveMedia>,
    /// The sound card (or the tests' fake one): for voice and the mic test.
    devices: Arc<dyn AudioDevices>,
    /// The call driver that carries built-in voice.
    voice: Arc<dyn VoiceStarter>,
    /// The settings screen's microphone test, while it runs.
    mic_test: Option<MicTest>,
}

/// Who the outputs talk to.
pub struct Devices {
    pub ringer: Box<dyn Ringer>,
    /// `None`: the hook the config names.
    pub media_hook: Option<Box<dyn MediaHook>>,
    pub audio: Arc<dyn AudioDevices>,
    pub voice: Arc<dyn VoiceStarter>,
}

impl Outputs {
    /// The ringer configured with the config's sound, silent; no media running.
    pub fn new(devices: Devices, config: &AppConfig) -> Outputs {
        let Devices { mut ringer, media_hook, audio, voice } = devices;
        let sound = Sound::from_config(config);
        ringer.configure(&sound);
        let media_hook_from_config = media_hook.is_none();
        let media_hook = media_hook.unwrap_or_else(|| hook_for(config, &audio, &voice));
        Outputs {
            ringer,
            sound,
            tone: None,
            media_hook,
            media_hook_from_config,
            media: None,
            devices: audio,
            voice,
            mic_test: None,
        }
    }

    /// The tone the ringer is playing.
    pub fn tone(&self) -> Option<Tone> {
        self.tone
    }

    /// The config's media or device settings changed: a hook from the config follows.
    pub fn media_config_changed(&mut self, config: &AppConfig) {
        if self.media_hook_from_config {
            self.media_hook = hook_for(config, &self.devices, &self.voice);
        }
    }

    /// What the call screen shows of the voice of the call up, if it is voice.
    pub fn voice(&self) -> Option<&VoiceView> {
        self.media.as_ref()?.session.as_ref()?.voice()
    }

    /// The sound card's devices.
    pub fn devices(&self) -> &Arc<dyn AudioDevices> {
        &self.devices
    }

    /// The microphone test, while it runs.
    pub fn mic_test(&self) -> Option<&MicTest> {
        self.mic_test.as_ref()
    }

    /// Starts the microphone test on `input`, or says why it cannot.
    pub fn start_mic_test(&mut self, input: &DeviceChoice) -> Result<(), String> {
        self.mic_test = None;
        let source =
            self.devices.open_input(input).map_err(|e| format!("Cannot open the microphone: {e}"))?;
        self.mic_test = Some(MicTest::start(source));
        Ok(())
    }

    pub fn stop_mic_test(&mut self) {
        self.mic_test = None;
    }
}

/// The media hook `config` names; built-in voice with its devices.
fn hook_for(
    config: &AppConfig,
    devices: &Arc<dyn AudioDevices>,
    voice: &Arc<dyn VoiceStarter>,
) -> Box<dyn MediaHook> {
    match &config.media {
        MediaConfig::Voice => Box::new(VoiceMedia {
            devices: devices.clone(),
            starter: voice.clone(),
            input: DeviceChoice::from_setting(&config.audio_input),
            output: DeviceChoice::from_setting(&config.audio_output),
            processing: config.processing(),
        }),
        other => media_hook::hook_for(other),
    }
}

impl App {
    /// Brings sound, media and the timeline in line with the state.
    pub(super) fn drive_outputs(&mut self) {
        if let Page::Settings(form) = &mut self.page {
            form.previewing = self.preview.is_some();
        }
        // The microphone test runs only on the settings screen, and never
        // beside a call (which owns the microphone).
        let testing_allowed =
            matches!(self.screen(), super::Screen::Settings(_)) && self.calls.ringing().is_none();
        if !testing_allowed || self.quitting {
            self.outputs.mic_test = None;
        }
        if let Page::Settings(form) = &mut self.page {
            form.mic_testing = self.outputs.mic_test.is_some();
        }
        let sound = self.wanted_sound();
        if sound != self.outputs.sound {
            self.outputs.ringer.configure(&sound);
            self.outputs.sound = sound;
        }
        let tone = self.ringer_tone();
        if tone != self.outputs.tone {
            self.outputs.ringer.set(tone);
            self.outputs.tone = tone;
            if let (Some(Tone::Ringtone), Some(dialog)) = (tone, self.calls.ringing()) {
                tracing::info!(
                    target: "softphone::latency",
                    call_id = %dialog.call.call_id(),
                    unix_us = unix_micros(),
                    "incoming call from {} shown, ringtone started",
                    dialog.call.peer()
                );
            }
        }
        // Tone first, then media: the ringer lets go of the sound card
        // before call audio opens it.
        self.drive_media();
        self.log_ui();
    }

    /// The settings' sound, or the form's while it is being previewed.
    fn wanted_sound(&self) -> Sound {
        match (&self.preview, self.previewing()) {
            (Some((_, sound)), true) => sound.clone(),
            _ => Sound::from_config(&self.config),
        }
    }

    /// Whether the settings screen's preview plays: only there, and only
    /// while nothing rings.
    fn previewing(&self) -> bool {
        self.preview.is_some()
            && self.calls.ringing().is_none()
            && matches!(self.screen(), super::Screen::Settings(_))
    }

    /// The tone the calls ask for, else the settings' preview; nothing
    /// once closing.
    fn wanted_tone(&self) -> Option<Tone> {
        if self.quitting {
            return None;
        }
        self.calls.tone(&self.policy()).or(self.previewing().then_some(Tone::Ringtone))
    }

    /// The tone for the ringer, telling the call's voice whether to beep:
    /// the call-waiting beeps go into the playback of a built-in voice call
    /// instead (its `VoiceControl`), where the echo canceller has them as
    /// played; through the ringer's own stream they reached the microphone
    /// with no reference.
    fn ringer_tone(&self) -> Option<Tone> {
        let tone = self.wanted_tone();
        let voice = self.outputs.voice().and_then(|voice| voice.control.as_ref());
        let Some(control) = voice else { return tone };
        control.set_call_waiting(tone == Some(Tone::CallWaiting));
        tone.filter(|&tone| tone != Tone::CallWaiting)
    }

    /// Runs the media session of the call that is up (none while closing),
    /// and passes its status to the call screen.
    fn drive_media(&mut self) {
        let wanted = if self.quitting { None } else { self.calls.media().cloned() };
        let media = &mut self.outputs.media;
        if media.as_ref().map(|m| &m.call_id) != wanted.as_ref().map(|facts| &facts.call_id) {
            if let Some(mut old) = media.take()
                && let Some(session) = &mut old.session
            {
                session.stop();
            }
            if let Some(facts) = wanted {
                let (session, status) = match self.outputs.media_hook.start(&facts) {
                    Ok(mut session) => {
                        let status = session.poll();
                        (Some(session), status)
                    }
                    Err(e) => (None, MediaStatus::Ended(e.0)),
                };
                self.calls.set_media_status(status);
                self.outputs.media = Some(ActiveMedia { call_id: facts.call_id, session });
            }
        } else if wanted.is_some()
            && let Some(ActiveMedia { session: Some(session), .. }) = media
        {
            self.calls.set_media_status(session.poll());
        }
    }
}
