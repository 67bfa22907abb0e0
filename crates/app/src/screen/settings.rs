//! The settings screen: server and identity, the ringtone file and volume
//! (with a preview), ringback, do-not-disturb, call waiting, the media
//! session an accepted call starts, starting at login, and for built-in voice the microphone
//! and speaker (with a microphone test and its level meter). Nothing changes until Save (or Enter),
//! which checks every field first; Cancel (or Esc) leaves everything as it
//! was. Saving is the parent's job, asked for with [`Event::Save`].

use crate::audio::device::{DeviceChoice, DeviceList};
use crate::audio::meter_fill;
use crate::config::{AppConfig, DEFAULT_SERVER_URL, MediaConfig, ServerList};
use crate::ringtone::{self, Sound};
use crate::theme;
use iced::widget::{
    button, column, container, pick_list, progress_bar, row, scrollable, slider, text, text_input, toggler,
};
use iced::{Element, Fill};
use softphone_core::protocol::{MAX_ID_BYTES, is_valid_id};
use softphone_core::voice::level::Level;
use std::path::PathBuf;

/// Which kind of media session, as the pick list offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Voice,
    None,
    Command,
    Url,
}

impl MediaKind {
    pub const ALL: [MediaKind; 4] = [MediaKind::Voice, MediaKind::None, MediaKind::Command, MediaKind::Url];
}

/// A microphone or speaker as the pick lists offer it: a device name, or
/// the empty name for the system's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOption(pub String);

impl std::fmt::Display for DeviceOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "System default" } else { &self.0 })
    }
}

/// "System default", then `names`.
fn device_options(names: &[String]) -> Vec<DeviceOption> {
    std::iter::once(DeviceOption(String::new())).chain(names.iter().cloned().map(DeviceOption)).collect()
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaKind::Voice => "Built-in voice (encrypted)",
            MediaKind::None => "None: show the channel",
            MediaKind::Command => "Run a command",
            MediaKind::Url => "Open a URL",
        })
    }
}

/// The form, filled from the config when the screen opens.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server_url: String,
    pub peer_id: String,
    pub token: String,
    pub device: String,
    /// A path; empty is the built-in ringtone.
    pub ringtone: String,
    /// Percent.
    pub volume: u8,
    pub ringback: bool,
    pub do_not_disturb: bool,
    pub call_waiting: bool,
    pub media_kind: MediaKind,
    /// The command line (for a command) or URL template (for a URL).
    pub media_template: String,
    /// What is wrong with a field, after Save or Preview.
    pub error: Option<String>,
    /// Whether the preview plays (the app says so; the button reads Stop).
    pub previewing: bool,
    /// The microphone: a device name, empty for the system default.
    pub audio_input: String,
    /// The speaker: a device name, empty for the system default.
    pub audio_output: String,
    /// Echo cancellation, noise suppression, gain control of the microphone.
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub gain_control: bool,
    /// Start the phone at login.
    pub start_at_login: bool,
    /// What the sound card has, listed when the screen opened and every
    /// few seconds while it is open.
    pub devices: DeviceList,
    /// Whether the microphone test runs (the app says so; the button reads Stop).
    pub mic_testing: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    ServerUrl(String),
    PeerId(String),
    Token(String),
    Device(String),
    Ringtone(String),
    /// Back to the built-in ringtone.
    DefaultRingtone,
    Volume(u8),
    /// Plays (or stops) the ringtone as the form has it.
    Preview,
    Ringback(bool),
    DoNotDisturb(bool),
    CallWaiting(bool),
    MediaKind(MediaKind),
    MediaTemplate(String),
    AudioInput(DeviceOption),
    AudioOutput(DeviceOption),
    EchoCancellation(bool),
    NoiseSuppression(bool),
    GainControl(bool),
    StartAtLogin(bool),
    /// Starts (or stops) the microphone test on the chosen input.
    MicTest,
    Save,
    Cancel,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The checked settings (contacts untouched).
    Save(Box<AppConfig>),
    Cancel,
    /// Plays this sound as a preview.
    Preview(Sound),
    StopPreview,
    /// Opens this microphone and shows its level.
    MicTest(DeviceChoice),
    StopMicTest,
}

impl Settings {
    pub fn from_config(config: &AppConfig) -> Settings {
        let media_kind = match config.media {
            MediaConfig::Voice => MediaKind::Voice,
            MediaConfig::None => MediaKind::None,
            MediaConfig::Command { .. } => MediaKind::Command,
            MediaConfig::Url { .. } => MediaKind::Url,
        };
        Settings {
            server_url: config.servers.to_text(),
            peer_id: config.peer_id.clone(),
            token: config.token.clone(),
            device: config.device.clone(),
            ringtone: config.ringtone.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            volume: config.volume.min(100),
            ringback: config.ringback,
            do_not_disturb: config.do_not_disturb,
            call_waiting: config.call_waiting,
            media_kind,
            media_template: config.media.template(),
            error: None,
            previewing: false,
            audio_input: config.audio_input.clone(),
            audio_output: config.audio_output.clone(),
            echo_cancellation: config.echo_cancellation,
            noise_suppression: config.noise_suppression,
            gain_control: config.gain_control,
            start_at_login: config.start_at_login,
            devices: DeviceList::default(),
            mic_testing: false,
        }
    }

    /// The form offering `devices` as the microphones and speakers.
    pub fn with_devices(mut self, devices: DeviceList) -> Settings {
        self.devices = devices;
        self
    }

    /// `config` is the config now in force; Save builds on it.
    pub fn update(&mut self, message: Message, config: &AppConfig) -> Option<Event> {
        match message {
            Message::ServerUrl(v) => self.server_url = v,
            Message::PeerId(v) => self.peer_id = v,
            Message::Token(v) => self.token = v,
            Message::Device(v) => self.device = v,
            Message::Ringtone(v) => self.ringtone = v,
            Message::DefaultRingtone => self.ringtone.clear(),
            Message::Volume(v) => self.volume = v.min(100),
            Message::Ringback(v) => self.ringback = v,
            Message::DoNotDisturb(v) => self.do_not_disturb = v,
            Message::CallWaiting(v) => self.call_waiting = v,
            Message::MediaKind(kind) => self.media_kind = kind,
            Message::MediaTemplate(v) => self.media_template = v,
            Message::AudioInput(DeviceOption(name)) => {
                self.audio_input = name;
                if self.mic_testing {
                    // The test follows the choice.
                    return Some(Event::MicTest(DeviceChoice::from_setting(&self.audio_input)));
                }
            }
            Message::AudioOutput(DeviceOption(name)) => self.audio_output = name,
            Message::EchoCancellation(on) => self.echo_cancellation = on,
            Message::NoiseSuppression(on) => self.noise_suppression = on,
            Message::GainControl(on) => self.gain_control = on,
            Message::StartAtLogin(on) => self.start_at_login = on,
            Message::MicTest if self.mic_testing => return Some(Event::StopMicTest),
            Message::MicTest => return Some(Event::MicTest(DeviceChoice::from_setting(&self.audio_input))),
            Message::Cancel => return Some(Event::Cancel),
            Message::Preview if self.previewing => return Some(Event::StopPreview),
            Message::Preview => {
                return match self.sound() {
                    Ok(sound) => {
                        self.error = None;
                        Some(Event::Preview(sound))
                    }
                    Err(e) => {
                        self.error = Some(e);
                        None
                    }
                };
            }
            Message::Save => match self.check(config) {
                Ok(config) => {
                    self.error = None;
                    return Some(Event::Save(Box::new(config)));
                }
                Err(e) => self.error = Some(e),
            },
        }
        None
    }

    /// The ringtone and volume as the form has them, the file checked.
    fn sound(&self) -> Result<Sound, String> {
        let ringtone = self.ringtone_path();
        if let Some(path) = &ringtone {
            ringtone::load_ringtone(path).map_err(|e| e.to_string())?;
        }
        Ok(Sound { ringtone, volume: f32::from(self.volume) / 100.0 })
    }

    fn ringtone_path(&self) -> Option<PathBuf> {
        let path = self.ringtone.trim();
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// `config` with the form's values, or a sentence saying what to fix.
    fn check(&self, config: &AppConfig) -> Result<AppConfig, String> {
        let peer_id = self.peer_id.trim();
        if !peer_id.is_empty() && !is_valid_id(peer_id) {
            return Err("Your peer id must be 1 to 64 letters, digits or symbols, without spaces.".into());
        }
        let servers = ServerList::from_text(&self.server_url);
        servers.check()?;
        if self.device.trim().len() > MAX_ID_BYTES {
            return Err(format!("The device label is at most {MAX_ID_BYTES} bytes."));
        }
        let sound = self.sound()?;
        let template = self.media_template.trim();
        let media = match self.media_kind {
            MediaKind::Voice => MediaConfig::Voice,
            MediaKind::None => MediaConfig::None,
            MediaKind::Command => MediaConfig::from_command_line(template)
                .ok_or("Type the command to run for each call, e.g. ffplay rtp://{channel}.")?,
            MediaKind::Url if template.contains("://") => MediaConfig::Url { template: template.to_owned() },
            MediaKind::Url => {
                return Err("Type the URL to open, e.g. https://meet.example.org/{channel}.".into());
            }
        };
        Ok(AppConfig {
            servers,
            peer_id: peer_id.to_owned(),
            token: self.token.trim().to_owned(),
            device: self.device.trim().to_owned(),
            ringtone: sound.ringtone,
            volume: self.volume,
            ringback: self.ringback,
            do_not_disturb: self.do_not_disturb,
            call_waiting: self.call_waiting,
            contacts: config.contacts.clone(),
            media,
            audio_input: self.audio_input.clone(),
            audio_output: self.audio_output.clone(),
            echo_cancellation: self.echo_cancellation,
            noise_suppression: self.noise_suppression,
            gain_control: self.gain_control,
            start_at_login: self.start_at_login,
        })
    }

    /// `mic_level`: the microphone test's reading, while it runs.
    pub fn view(&self, mic_level: Option<Level>) -> Element<'_, Message> {
        let mut body = column![
            text("Settings").size(theme::HEADLINE),
            self.identity_section(),
            self.sound_section(),
            self.calls_section(),
            self.voice_section(mic_level),
        ]
        .spacing(16);
        if let Some(error) = &self.error {
            body = body.push(text(error.as_str()).style(text::danger));
        }
        let buttons = row![
            button(text("Cancel")).style(button::secondary).padding([8, 20]).on_press(Message::Cancel),
            button(text("Save")).style(button::primary).padding([8, 20]).on_press(Message::Save),
            text("Enter saves, Esc cancels").size(12),
        ]
        .spacing(12)
        .align_y(iced::Center);
        let form = container(scrollable(container(body).padding([0, 14]))).height(Fill);
        container(column![form, buttons].spacing(theme::SPACING))
            .width(theme::CARD_WIDTH + 40.0)
            .padding(theme::PADDING)
            .style(theme::card)
            .into()
    }

    /// The server, peer id, device and token.
    fn identity_section(&self) -> Element<'_, Message> {
        let server_hint = format!("{DEFAULT_SERVER_URL} (default)");
        column![
            text("Server and identity").size(theme::HEADLINE - 8.0),
            row![
                field("Peer id", text_input("alice", &self.peer_id).on_input(Message::PeerId)),
                field("Device label", text_input("laptop", &self.device).on_input(Message::Device)),
            ]
            .spacing(8),
            field("Server", text_input(&server_hint, &self.server_url).on_input(Message::ServerUrl)),
            field(
                "Token (optional)",
                text_input("none needed on an open server", &self.token)
                    .secure(true)
                    .on_input(Message::Token)
            ),
        ]
        .spacing(8)
        .into()
    }

    /// The ringtone, its preview and volume, and the ringback.
    fn sound_section(&self) -> Element<'_, Message> {
        let preview = if self.previewing { "Stop" } else { "Preview" };
        column![
            text("Sound").size(theme::HEADLINE - 8.0),
            label("Ringtone file (Ogg, WAV, FLAC or MP3; empty: the built-in one)"),
            row![
                text_input("built-in ringtone", &self.ringtone)
                    .on_input(Message::Ringtone)
                    .on_submit(Message::Save)
                    .padding(6),
                button(text("Built-in").size(theme::SMALL))
                    .style(button::secondary)
                    .on_press(Message::DefaultRingtone),
                button(text(preview).size(theme::SMALL)).style(button::secondary).on_press(Message::Preview),
            ]
            .spacing(8)
            .align_y(iced::Center),
            row![
                label("Volume"),
                slider(0..=100u8, self.volume, Message::Volume).width(Fill),
                text(format!("{}%", self.volume)).size(theme::SMALL).width(40),
            ]
            .spacing(8)
            .align_y(iced::Center),
            toggler(self.ringback)
                .label("Ringback tone while the other phone rings")
                .on_toggle(Message::Ringback),
        ]
        .spacing(8)
        .into()
    }

    /// Do-not-disturb, call waiting and the media session.
    fn calls_section(&self) -> Element<'_, Message> {
        let mut calls = column![
            text("Calls").size(theme::HEADLINE - 8.0),
            toggler(self.do_not_disturb)
                .label("Do not disturb: refuse calls without ringing")
                .on_toggle(Message::DoNotDisturb),
            toggler(self.call_waiting)
                .label("Call waiting: a call during a call may be answered")
                .on_toggle(Message::CallWaiting),
            toggler(self.start_at_login)
                .label("Start at login: rings with the window closed (behind the tray icon)")
                .on_toggle(Message::StartAtLogin),
            label("Media session of an accepted call"),
            pick_list(MediaKind::ALL, Some(self.media_kind), Message::MediaKind),
        ]
        .spacing(8);
        if matches!(self.media_kind, MediaKind::Command | MediaKind::Url) {
            let hint = match self.media_kind {
                MediaKind::Command => "ffplay rtp://{channel}",
                _ => "https://meet.example.org/{channel}",
            };
            calls = calls.push(
                text_input(hint, &self.media_template)
                    .on_input(Message::MediaTemplate)
                    .on_submit(Message::Save)
                    .padding(6),
            );
            calls = calls.push(text("{channel}, {peer}, {role} and {call_id} are replaced.").size(12));
        }
        calls.into()
    }
}

impl Settings {
    /// The microphone and speaker of built-in voice, and the microphone test.
    fn voice_section(&self, mic_level: Option<Level>) -> Element<'_, Message> {
        let input = DeviceOption(self.audio_input.clone());
        let output = DeviceOption(self.audio_output.clone());
        let test = if self.mic_testing { "Stop" } else { "Test microphone" };
        let fill = mic_level.map_or(0.0, meter_fill);
        let mut section = column![
            text("Voice").size(theme::HEADLINE - 8.0),
            label("Microphone"),
            pick_list(device_options(&self.devices.inputs), Some(input), Message::AudioInput).width(Fill),
            label("Speaker"),
            pick_list(device_options(&self.devices.outputs), Some(output), Message::AudioOutput).width(Fill),
            row![
                button(text(test).size(theme::SMALL)).style(button::secondary).on_press(Message::MicTest),
                progress_bar(0.0..=1.0, fill).girth(10),
            ]
            .spacing(8)
            .align_y(iced::Center),
            toggler(self.echo_cancellation)
                .label("Echo cancellation: the other side does not hear itself")
                .on_toggle(Message::EchoCancellation),
            toggler(self.noise_suppression).label("Noise suppression").on_toggle(Message::NoiseSuppression),
            toggler(self.gain_control).label("Automatic microphone level").on_toggle(Message::GainControl),
        ]
        .spacing(8);
        if self.devices.inputs.is_empty() {
            section = section.push(text("No microphone found on this computer.").size(12));
        }
        section.into()
    }
}

/// A field's small label.
fn label(name: &'static str) -> iced::widget::Text<'static> {
    text(name).size(theme::SMALL)
}

/// A labelled text field; Enter in it saves.
fn field<'a>(
    name: &'static str,
    input: text_input::TextInput<'a, Message>,
) -> iced::widget::Column<'a, Message> {
    column![label(name), input.on_submit(Message::Save).padding(6)].spacing(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_checks_fields_and_keeps_contacts() {
        let mut config = AppConfig::default();
        config.contacts.push(crate::config::Contact { peer_id: "bob".into(), name: String::new() });
        let mut form = Settings::from_config(&config);
        form.update(Message::ServerUrl("http://x".into()), &config);
        assert_eq!(form.update(Message::Save, &config), None);
        assert!(form.error.is_some());
        form.update(Message::ServerUrl("ws://x:1/".into()), &config);
        form.update(Message::DoNotDisturb(true), &config);
        form.update(Message::MediaKind(MediaKind::Url), &config);
        assert_eq!(form.update(Message::Save, &config), None, "a URL template is needed");
        form.update(Message::MediaTemplate("https://m/{channel}".into()), &config);
        let Some(Event::Save(saved)) = form.update(Message::Save, &config) else {
            panic!("{:?}", form.error)
        };
        assert!(saved.do_not_disturb);
        assert_eq!(saved.servers.urls(), ["ws://x:1/"]);
        assert_eq!(saved.contacts, config.contacts);
        assert_eq!(saved.media, MediaConfig::Url { template: "https://m/{channel}".into() });
    }

    #[test]
    fn a_ringtone_that_does_not_decode_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ring.wav");
        std::fs::write(&bad, b"RIFF nonsense").unwrap();
        let config = AppConfig::default();
        let mut form = Settings::from_config(&config);
        form.update(Message::Ringtone(bad.display().to_string()), &config);
        assert_eq!(form.update(Message::Preview, &config), None);
        assert_eq!(form.update(Message::Save, &config), None);
        assert!(form.error.as_deref().unwrap().contains("not a sound file"), "{:?}", form.error);
    }
}
