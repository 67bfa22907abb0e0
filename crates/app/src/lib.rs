//! The desktop softphone: an Elm-style iced application.
//!
//! State flows one way. Every input is a [`Message`]: a click or key on a
//! screen, an SDK event (`Message::Sdk`), the reply to one of our requests
//! (`Message::Replied`), a clock tick. [`App::update`] routes it: what
//! happens to a call goes to the call model ([`model::Calls`], no UI in
//! it), which changes the calls and returns effects that the app carries
//! out ([`effects`]); screens never reach up, their `update` returns an
//! `Event` that the app acts on. After every update the app brings its
//! outputs in line with the state ([`outputs`]): the tone the model asks
//! for, the media session of the call that is up, the QA timeline. So
//! every way a ringing invitation can end stops the ringtone, because none
//! of them leaves an invitation ringing.
//!
//! An incoming call, from the socket to the ringtone: the SDK's event
//! stream ([`phone::events`]) becomes `Message::Sdk`; [`App::update`]
//! hands it to [`model::Calls::on_event`], where it rings; then
//! `App::drive_outputs` ([`outputs`]) asks [`model::Calls::tone`] and tells
//! the [`Ringer`].
//!
//! - [`model`]: the calls and what every event does to them.
//! - [`effects`]: what the app does for the model: requests, history, notices.
//! - [`screen`]: the screens, each reading its part of the state.
//! - [`pages`]: moving between the idle screens and what their events do.
//! - [`link`]: signed out, or a session and its connection; [`session`]:
//!   signing in and out, connection events, and quitting.
//! - [`outputs`]: sounds and media derived from the state; [`timeline`]: the QA timeline.
//! - [`voice`]: built-in voice as a media hook, and the call-driver seam
//!   ([`voice::VoiceStarter`]); [`audio`]: the sound card's devices and the mic test.
//! - [`layout`]: the window: title, tabs, banners, dialog layer, keys.
//! - [`phone`]: the seam to the SDK and the iced adapter for its events.
//! - [`signals`]: SIGTERM and SIGINT quit the app.
//! - [`tray`]: the tray icon, and what closing the window does (hide behind
//!   the icon when a tray host shows it, else quit); [`autostart`]: starting at login;
//!   `daemon`: running the app, which outlives its window.
//! - [`embedded`]: the in-process server of the default setup, its secret
//!   and the tokens minted from it; [`tokens`]: renewing a session's token.
//! - [`widget`], [`theme`]: the key-shortcut widget and the look.
//! - [`launch`]: the app's flags on the `softphone` command line and its
//!   start (the subcommands are `softphone_core::cli`'s); [`audio::device`]:
//!   the sound card over cpal (the only crate here that links it).
//! - What only the desktop uses: [`config`] and [`paths`] (the settings and
//!   where the app's files live), [`call_history`] (the call history and
//!   its unseen missed calls), [`ringtone`], [`notify`] (desktop
//!   notifications), [`media_hook`] (what an accepted call starts) and
//!   [`event_log`] (the QA timeline's file).

pub mod audio;
pub mod autostart;
pub mod call_history;
pub mod config;
mod daemon;
pub mod effects;
pub mod embedded;
pub mod event_log;
pub mod launch;
pub mod layout;
pub mod link;
pub mod media_hook;
pub mod model;
pub mod notify;
pub mod outputs;
pub mod pages;
pub mod paths;
pub mod phone;
pub mod relay_voice;
pub mod ringtone;
pub mod screen;
pub mod session;
pub mod signals;
pub mod theme;
pub mod timeline;
mod tokens;
pub mod tray;
pub mod voice;
pub mod widget;

pub(crate) use daemon::open_window;
pub use daemon::run;
pub use model::CallRequest;
pub use screen::{Page, Screen, contacts, dial, history, in_call, incoming, outgoing, settings, sign_in};

use call_history::History;
use config::{AppConfig, MediaConfig};
use embedded::Embedded;
use link::Link;
use media_hook::{MediaHook, VoiceView};
use model::{Active, Calls, Incoming, Policy};
use notify::Notifier;
use outputs::Outputs;
use paths::Paths;
use phone::Connector;
use ringtone::{Ringer, Sound, Tone};
use sign_in::SignIn;
use softphone_core::sdk;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use timeline::Timeline;

use iced::{Task, window};

/// What the command line asks of the app.
#[derive(Debug, Clone)]
pub struct Options {
    /// Overrides the remembered server (`--server`).
    pub server_url: Option<String>,
    /// Signs in at start as this peer (`--peer-id`).
    pub peer_id: Option<String>,
    /// The token (read from `--token-file`).
    pub token: Option<String>,
    /// Overrides the remembered device label.
    pub device: Option<String>,
    /// Overrides the configured media session (`--media-command`, `--media-url`).
    pub media: Option<MediaConfig>,
    /// Where the default server listens; tests move it off 7878.
    pub default_listen: String,
    /// Writes the QA timeline here (`--log-events`).
    pub log_events: Option<PathBuf>,
    /// Certificate authorities trusted for `wss://` besides the public roots (`--ca-file`).
    pub ca_file: Option<PathBuf>,
    /// Where a fresh token comes from when the server says ours is expiring
    /// (`--token-file` read again, `--token-command`); the app's own server
    /// needs none (the app mints its tokens).
    pub token_source: Option<softphone_core::token::source::TokenSource>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server_url: None,
            peer_id: None,
            token: None,
            device: None,
            media: None,
            default_listen: embedded::DEFAULT_LISTEN.to_owned(),
            log_events: None,
            ca_file: None,
            token_source: None,
        }
    }
}

/// The app's collaborators, replaceable in tests.
pub struct Parts {
    pub paths: Paths,
    pub ringer: Box<dyn Ringer>,
    /// `None`: the hook the config names.
    pub media_hook: Option<Box<dyn MediaHook>>,
    pub connector: Connector,
    /// Shows desktop notifications.
    pub notifier: Box<dyn Notifier>,
    /// The microphones and speakers: cpal's, or a fake list in tests.
    pub audio: Arc<dyn audio::AudioDevices>,
    /// The call driver that carries built-in voice.
    pub voice: Arc<dyn voice::VoiceStarter>,
    /// The tray icon: over D-Bus, or none (closing the window quits).
    pub tray: Box<dyn tray::TrayIcon>,
}

impl Parts {
    /// The real ones: the platform's paths, the sound card, the SDK.
    pub fn real() -> Parts {
        let voice = Arc::new(relay_voice::RelayVoice::default());
        Parts {
            paths: Paths::from_env(),
            ringer: ringtone::open_default(),
            media_hook: None,
            connector: phone::sdk_connector(voice.clone()),
            notifier: Box::new(notify::DesktopNotifier::default()),
            audio: Arc::new(audio::FallbackDevices {
                inner: Arc::new(audio::CpalDevices),
                policy: softphone_core::voice::audio::reopen::ReopenPolicy::default(),
            }),
            voice,
            tray: Box::new(tray::KsniTray::default()),
        }
    }
}

/// The idle screens the tabs (and Ctrl+1..4) switch between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Dial,
    Contacts,
    History,
    Settings,
}

#[derive(Debug, Clone)]
pub enum Message {
    SignIn(sign_in::Message),
    Dial(dial::Message),
    Outgoing(outgoing::Message),
    Incoming(incoming::Message),
    /// The call-waiting prompt (same buttons as the incoming dialog).
    Waiting(incoming::Message),
    InCall(in_call::Message),
    Contacts(contacts::Message),
    History(history::Message),
    Settings(settings::Message),
    /// A tab, or Esc back to the home screen.
    Go(Tab),
    /// Calls `peer` back (the missed-calls panel of the home screen).
    CallBack(String),
    /// The reply to a presence subscription of the session with this number.
    PresenceReplied(u64, Result<sdk::Presence, sdk::Error>),
    /// The window gained (`true`) or lost the keyboard focus.
    Focused(bool),
    /// An SDK event of the session with this number.
    Sdk(u64, sdk::Event),
    /// The SDK's reply to one of our requests about a call.
    Replied {
        call_id: String,
        request: CallRequest,
        result: Result<(), sdk::Error>,
    },
    Tick(Instant),
    DismissNotice,
    /// Quit: stop sounds and calls, then exit (SIGTERM, SIGINT, the tray's Quit).
    CloseRequested,
    /// The close button of this window: hide it behind the tray icon, or
    /// quit when no tray host shows one.
    WindowCloseRequested(window::Id),
    /// Open or Quit in the tray icon's menu.
    Tray(tray::TrayAction),
    /// List the sound card's devices again (every few seconds while the
    /// settings screen is open: a headset plugged in shows up).
    RefreshDevices,
    /// The sound card's devices, listed afresh for the settings screen.
    DevicesListed(crate::audio::device::DeviceList),
    /// Nothing to do (a finished fire-and-forget task).
    Done,
    /// How renewing the token of the session with this number went.
    TokenRenewed(u64, Result<String, String>),
}

/// The whole state of the app.
pub struct App {
    paths: Paths,
    /// The settings in force (saved ones, then the command line's).
    config: AppConfig,
    /// Where the default server listens (tests move it off 7878).
    default_listen: String,
    /// Handed to every SDK client (`--ca-file`), for a private deployment's `wss://`.
    ca_file: Option<PathBuf>,
    /// Where sessions on a configured server renew their token from.
    token_source: Option<softphone_core::token::source::TokenSource>,
    /// The screen under the calls: sign-in or one of the tabs.
    page: Page,
    /// Every call: what rings, what waits, what is placed or up.
    calls: Calls,
    /// Every call that ended, and which missed ones are unseen.
    history: History,
    /// Who of our contacts is online, as far as we have heard.
    presence: BTreeMap<String, bool>,
    /// Whether the window has the keyboard focus: notifications are for
    /// when it does not.
    focused: bool,
    notifier: Box<dyn Notifier>,
    /// The ringtone preview of the settings screen: until when, and the
    /// sound as the (unsaved) form has it.
    preview: Option<(Instant, Sound)>,
    /// The ringer and the media hook, and what they were last told.
    outputs: Outputs,
    /// The QA timeline, with `--log-events`.
    timeline: Option<Timeline>,
    /// Signed out, or the session and its connection.
    link: Link,
    /// How many sessions were started: numbers the next one.
    sessions_started: u64,
    /// How the last call ended, or a setting that was reset.
    notice: Option<String>,
    /// The time views are drawn at: set at every update.
    now: Instant,
    /// The server this process hosts, in the default setup.
    embedded: Option<Embedded>,
    /// Makes the SDK client of a sign-in (tests put a recording one here).
    connector: Connector,
    /// Closing: no more sounds, media or notifications.
    quitting: bool,
    /// The tray icon, told what to show after every update.
    tray: Box<dyn tray::TrayIcon>,
    /// What the tray icon was last told to show.
    tray_view: Option<tray::TrayView>,
    /// The window is hidden behind the tray icon (closed with a tray host).
    window_hidden: bool,
}

impl App {
    /// The app as `options` and the config at `parts.paths` ask for; signs
    /// in at once when `--server`, `--peer-id` or `--token-file` was given
    /// and a peer id is known.
    pub fn new(options: Options, parts: Parts) -> (App, Task<Message>) {
        let sign_in_flags =
            options.peer_id.is_some() || options.server_url.is_some() || options.token.is_some();
        let (config, config_note) = load_config(&parts.paths, &options);
        let (history, history_note) = History::load(&parts.paths.history_file());
        let note = match (config_note, history_note) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (a, b) => a.or(b),
        };
        let devices = outputs::Devices {
            ringer: parts.ringer,
            media_hook: parts.media_hook,
            audio: parts.audio,
            voice: parts.voice,
        };
        let outputs = Outputs::new(devices, &config);
        let mut tray = parts.tray;
        let tray_actions = tray::start(tray.as_mut());
        let mut app = App {
            paths: parts.paths,
            page: Page::SignIn(SignIn::from_config(&config)),
            config,
            default_listen: options.default_listen,
            ca_file: options.ca_file,
            token_source: options.token_source,
            calls: Calls::default(),
            history,
            presence: BTreeMap::new(),
            focused: true,
            notifier: parts.notifier,
            preview: None,
            outputs,
            timeline: options.log_events.as_deref().and_then(Timeline::open),
            link: Link::SignedOut { reason: None },
            sessions_started: 0,
            notice: note,
            now: Instant::now(),
            embedded: None,
            connector: parts.connector,
            quitting: false,
            tray,
            tray_view: None,
            window_hidden: false,
        };
        // Any sign-in flag signs in at start, when a peer id is known.
        let task = if sign_in_flags && !app.config.peer_id.is_empty() {
            app.update(Message::SignIn(sign_in::Message::Submit))
        } else {
            app.drive_window().unwrap_or_else(Task::none)
        };
        (app, Task::batch([task, tray_actions]))
    }

    pub fn update(&mut self, message: Message) -> Task<Message> {
        self.now = match message {
            Message::Tick(now) => now,
            _ => Instant::now(),
        };
        self.log_message(&message);
        let task = self.handle(message);
        self.drive_outputs();
        match self.drive_window() {
            Some(window) => Task::batch([task, window]),
            None => task,
        }
    }

    /// Routes a message: calls to the model, the rest to whom it concerns.
    fn handle(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::SignIn(message) => self.on_sign_in(message),
            Message::Dial(message) => self.on_dial(message),
            Message::Contacts(message) => self.on_contacts(message),
            Message::History(message) => self.on_history(message),
            Message::Settings(message) => self.on_settings(message),
            Message::Go(tab) => self.go(tab),
            Message::CallBack(peer) => self.call_back(peer),
            Message::Outgoing(message) => self.on_call_screen(CallScreen::Outgoing(message)),
            Message::Incoming(message) => self.on_call_screen(CallScreen::Incoming(message)),
            Message::Waiting(message) => self.on_call_screen(CallScreen::Waiting(message)),
            Message::InCall(message) => self.on_call_screen(CallScreen::InCall(message)),
            Message::PresenceReplied(session, result) => {
                self.on_presence_reply(session, result);
                Task::none()
            }
            Message::Focused(focused) => {
                self.focused = focused;
                Task::none()
            }
            Message::Sdk(session, event) => self.on_sdk_event(session, event),
            Message::Replied { call_id, request, result } => {
                self.drive(model::Event::Replied { call_id, request, result })
            }
            Message::Tick(now) => {
                if self.preview.as_ref().is_some_and(|(until, _)| now >= *until) {
                    self.preview = None;
                }
                Task::none()
            }
            Message::Done => Task::none(),
            Message::TokenRenewed(session, result) => self.on_token_renewed(session, result),
            Message::DismissNotice => {
                self.notice = None;
                Task::none()
            }
            Message::CloseRequested => self.quit(),
            Message::WindowCloseRequested(window) => self.on_window_close(window),
            Message::Tray(action) => self.on_tray(action),
            Message::RefreshDevices => self.refresh_devices(),
            Message::DevicesListed(devices) => {
                if let Page::Settings(form) = &mut self.page {
                    form.devices = devices;
                }
                Task::none()
            }
        }
    }

    /// An SDK event: the connection and presence are the app's, the rest
    /// goes to the call model. Events of an ended session are dropped.
    fn on_sdk_event(&mut self, session: u64, event: sdk::Event) -> Task<Message> {
        if self.session_number() != Some(session) {
            tracing::debug!(session, ?event, "dropped an event of an ended session");
            return Task::none();
        }
        if let Some(timeline) = &mut self.timeline {
            timeline.sdk(session, &event);
        }
        match event {
            sdk::Event::Connection { state, reason } => self.on_connection(state, reason),
            sdk::Event::Presence { peer_id, online } => {
                self.presence.insert(peer_id, online);
                Task::none()
            }
            sdk::Event::TokenExpiring { expires_in } => self.on_token_expiring(expires_in),
            event => self.drive(model::Event::Sdk(event)),
        }
    }

    /// A press on the dialog, the call-waiting prompt or a call's screen:
    /// the screen says what it means, the model does it.
    fn on_call_screen(&mut self, message: CallScreen) -> Task<Message> {
        let calls = &self.calls;
        let event = match message {
            CallScreen::Incoming(m) => {
                calls.ringing().and_then(|d| incoming::update(d, m)).map(|e| match e {
                    incoming::Event::Accept { call_id } => model::Event::Accept { call_id },
                    incoming::Event::Refuse { call_id } => model::Event::Refuse { call_id },
                })
            }
            CallScreen::Waiting(m) => calls.waiting().and_then(|w| incoming::update(w, m)).map(|e| match e {
                incoming::Event::Accept { call_id } => model::Event::AcceptWaiting { call_id },
                incoming::Event::Refuse { call_id } => model::Event::RefuseWaiting { call_id },
            }),
            CallScreen::Outgoing(m) => match calls.active() {
                Some(Active::Outgoing(call)) => outgoing::update(call, m)
                    .map(|outgoing::Event::Cancel { call_id }| model::Event::Cancel { call_id }),
                _ => None,
            },
            CallScreen::InCall(m) => {
                let Some(Active::InCall(call)) = calls.active() else { return Task::none() };
                let voice = self.outputs.voice();
                match (in_call::update(call, voice, m), voice) {
                    (Some(in_call::Event::HangUp { call_id }), _) => Some(model::Event::HangUp { call_id }),
                    // Mute and volume are the voice pipeline's state, set on its control.
                    (Some(in_call::Event::SetMuted(muted)), Some(VoiceView { control: Some(c), .. })) => {
                        c.set_muted(muted);
                        None
                    }
                    (Some(in_call::Event::SetVolume(volume)), Some(VoiceView { control: Some(c), .. })) => {
                        c.set_volume(volume);
                        None
                    }
                    _ => None,
                }
            }
        };
        match event {
            Some(event) => self.drive(event),
            None => Task::none(),
        }
    }

    fn on_presence_reply(&mut self, session: u64, result: Result<sdk::Presence, sdk::Error>) {
        if self.session_number() == Some(session) {
            match result {
                Ok(presence) => self.presence.extend(presence),
                Err(e) => tracing::info!("presence subscription failed: {e}"),
            }
        }
    }

    /// The settings the call model decides by.
    fn policy(&self) -> Policy {
        Policy {
            do_not_disturb: self.config.do_not_disturb,
            call_waiting: self.config.call_waiting,
            ringback: self.config.ringback,
            me: self.link.session().map(|s| s.credentials.peer_id.clone()).unwrap_or_default(),
        }
    }

    /// What is on show under the incoming-call dialog.
    pub fn screen(&self) -> Screen<'_> {
        Screen::of(&self.page, self.calls.active())
    }

    /// The calls: what rings, what waits, what is placed or up.
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    /// The incoming-call dialog, if one shows.
    pub fn incoming(&self) -> Option<&Incoming> {
        self.calls.ringing()
    }

    /// The call-waiting prompt, if a second call rings during a call.
    pub fn waiting(&self) -> Option<&Incoming> {
        self.calls.waiting()
    }

    /// Signed out, or the session and its connection.
    pub fn link(&self) -> &Link {
        &self.link
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The number tagging the current session's events (tests feed events
    /// by hand with it).
    pub fn session_number(&self) -> Option<u64> {
        self.link.session().map(|s| s.number)
    }

    /// The URL of the embedded server, when this app hosts one.
    pub fn embedded_url(&self) -> Option<String> {
        self.embedded.as_ref().map(Embedded::url)
    }

    /// The tone the ringer is playing.
    pub fn tone(&self) -> Option<Tone> {
        self.outputs.tone()
    }

    /// The built-in voice of the call that is up, if it runs.
    pub fn voice(&self) -> Option<&media_hook::VoiceView> {
        self.outputs.voice()
    }

    /// The level of the settings' microphone test, while it runs.
    pub fn mic_test_level(&self) -> Option<softphone_core::voice::level::Level> {
        self.outputs.mic_test().map(audio::MicTest::level)
    }

    /// The call history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The settings in force.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Who of the contacts is online, as far as the app has heard.
    pub fn presence(&self) -> &BTreeMap<String, bool> {
        &self.presence
    }
}

/// A press on one of the screens that show a call.
enum CallScreen {
    Incoming(incoming::Message),
    Waiting(incoming::Message),
    Outgoing(outgoing::Message),
    InCall(in_call::Message),
}

/// The saved settings with the command line's overrides, and a sentence
/// when the file had to be set aside.
fn load_config(paths: &Paths, options: &Options) -> (AppConfig, Option<String>) {
    let (mut config, note) = AppConfig::load(paths);
    if let Some(url) = &options.server_url {
        config.servers = crate::config::ServerList::from_text(url);
    }
    if let Some(peer) = &options.peer_id {
        config.peer_id = peer.clone();
    }
    if let Some(token) = &options.token {
        config.token = token.clone();
    }
    if let Some(device) = &options.device {
        config.device = device.clone();
    }
    if let Some(media) = &options.media {
        config.media = media.clone();
    }
    (config, note)
}
