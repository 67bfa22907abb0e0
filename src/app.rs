//! The desktop softphone: an Elm-style iced application.
//!
//! State flows one way. Every input is a [`Message`]: a click or key on a
//! screen, an SDK event (`Message::Sdk`), the reply to one of our requests
//! (`Message::Replied`), a clock tick. [`App::update`] changes the state:
//! the current [`Screen`], the incoming-call dialog that may sit over it,
//! the call-waiting prompt, the connection. Screens never reach up: their
//! `update` returns an `Event` that the app acts on. After every update the
//! app *reconciles*: it works out which tone (and which sound settings) its
//! state calls for and which call's media session should run, and tells
//! the [`Ringer`] and [`MediaHook`] only about changes. So every way a
//! ringing invitation can end stops the ringtone, because none of them
//! leaves an invitation ringing.
//!
//! - [`sign_in`], [`dial`] (the home screen), [`contacts`], [`history`],
//!   [`settings`], [`outgoing`], [`incoming`], [`in_call`]: the screens.
//! - [`calls`]: what each SDK event and reply does to the screens;
//!   [`invitations`]: who may ring (do-not-disturb, busy, call waiting).
//! - [`record`]: the call history and notifications as calls end.
//! - [`pages`]: moving between the idle screens and what their events do.
//! - [`reconcile`]: sounds, media and the QA timeline derived from the state.
//! - [`layout`]: the window: title, tabs, banners, dialog layer, keys.
//! - [`phone`]: the seam to the SDK and the iced adapter for its events.
//! - [`session`]: signing in and out, and quitting.
//! - [`connection`]: the connection state and the status bar.
//! - [`embedded`]: the in-process server of the default setup.
//! - [`widget`], [`theme`]: the key-shortcut widget and the look.

pub mod calls;
pub mod connection;
pub mod contacts;
pub mod dial;
pub mod embedded;
pub mod history;
pub mod in_call;
pub mod incoming;
pub mod invitations;
pub mod layout;
pub mod outgoing;
pub mod pages;
pub mod phone;
pub mod reconcile;
pub mod record;
pub mod session;
pub mod settings;
pub mod sign_in;
pub mod theme;
pub mod widget;

use crate::config::{AppConfig, MediaConfig};
use crate::event_log::EventLog;
use crate::history::History;
use crate::media::{self, MediaHook, MediaSession};
use crate::notify::{self, Notifier};
use crate::paths::Paths;
use crate::ringtone::{self, Ringer, Sound, Tone};
use crate::sdk;
use connection::Connection;
use contacts::Contacts;
use dial::Dial;
use embedded::Embedded;
use history::HistoryScreen;
use in_call::InCall;
use incoming::Incoming;
use outgoing::Outgoing;
use phone::Connector;
use session::Session;
use settings::Settings;
use sign_in::{Credentials, SignIn};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

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
}

impl Parts {
    /// The real ones: the platform's paths, the sound card, the SDK.
    pub fn real() -> Parts {
        Parts {
            paths: Paths::from_env(),
            ringer: ringtone::open_default(),
            media_hook: None,
            connector: phone::sdk_connector(),
            notifier: Box::new(notify::DesktopNotifier::default()),
        }
    }
}

/// The screen under the incoming-call dialog.
#[derive(Debug, Clone)]
pub enum Screen {
    SignIn(SignIn),
    /// The home screen: the dial form, and the missed calls not seen yet.
    Dial(Dial),
    Contacts(Contacts),
    History(HistoryScreen),
    Settings(Settings),
    Outgoing(Outgoing),
    InCall(InCall),
}

impl Screen {
    /// Its name in the QA timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::SignIn(_) => "sign_in",
            Screen::Dial(_) => "dial",
            Screen::Contacts(_) => "contacts",
            Screen::History(_) => "history",
            Screen::Settings(_) => "settings",
            Screen::Outgoing(_) => "outgoing",
            Screen::InCall(_) => "in_call",
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

/// Which of our requests a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Invite,
    Cancel,
    Accept,
    Refuse,
    HangUp,
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
        request: Request,
        result: Result<(), sdk::Error>,
    },
    Tick(Instant),
    DismissNotice,
    /// The window's close button: stop sounds and calls, then exit.
    CloseRequested,
    /// Nothing to do (a finished fire-and-forget task).
    Done,
}

/// The media session of the call on screen.
struct ActiveMedia {
    call_id: String,
    /// `None` when it failed to start (the call screen says why); kept so
    /// that it is not started again on every update.
    session: Option<Box<dyn MediaSession>>,
}

/// The whole state of the app.
pub struct App {
    paths: Paths,
    config: AppConfig,
    default_listen: String,
    /// Handed to every SDK client (`--ca-file`), for a private deployment's `wss://`.
    ca_file: Option<PathBuf>,
    screen: Screen,
    /// The incoming-call dialog, over whatever screen is up.
    incoming: Option<Incoming>,
    /// A second call ringing during a call (call waiting): a prompt beside
    /// the call, not over it.
    waiting: Option<Incoming>,
    /// Every call, and which missed ones are unseen.
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
    /// The sound the ringer was last configured with.
    sound: Sound,
    /// Whether the media hook came from the config (and follows it) or was
    /// given (tests).
    media_hook_from_config: bool,
    /// The QA timeline, with `--log-events`.
    event_log: Option<EventLog>,
    /// The UI state last written to the timeline.
    logged_ui: Option<serde_json::Value>,
    connection: Connection,
    session: Option<Session>,
    sessions_started: u64,
    /// How the last call ended, or a setting that was reset.
    notice: Option<String>,
    /// The time views are drawn at: set at every update.
    now: Instant,
    ringer: Box<dyn Ringer>,
    /// The tone the ringer was last told to play.
    tone: Option<Tone>,
    media_hook: Box<dyn MediaHook>,
    media: Option<ActiveMedia>,
    /// The server this process hosts, in the default setup.
    embedded: Option<Embedded>,
    connector: Connector,
    /// Closing: no more sounds or media.
    quitting: bool,
}

impl App {
    /// The app as `options` and the config at `parts.paths` ask for; signs
    /// in at once when `--server`, `--peer-id` or `--token-file` was given
    /// and a peer id is known.
    pub fn new(options: Options, parts: Parts) -> (App, Task<Message>) {
        let sign_in_flags =
            options.peer_id.is_some() || options.server_url.is_some() || options.token.is_some();
        let (mut config, config_note) = AppConfig::load(&parts.paths);
        let (history, history_note) = History::load(&parts.paths.history_file());
        let note = match (config_note, history_note) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (a, b) => a.or(b),
        };
        if let Some(url) = options.server_url {
            config.server_url = url;
        }
        if let Some(peer) = &options.peer_id {
            config.peer_id = peer.clone();
        }
        if let Some(token) = options.token {
            config.token = token;
        }
        if let Some(device) = options.device {
            config.device = device;
        }
        if let Some(media) = options.media {
            config.media = media;
        }
        let media_hook_from_config = parts.media_hook.is_none();
        let media_hook = parts.media_hook.unwrap_or_else(|| media::hook_for(&config.media));
        let mut ringer = parts.ringer;
        let sound = Sound::from_config(&config);
        ringer.configure(&sound);
        let event_log = options.log_events.as_deref().and_then(|path| match EventLog::open(path) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!("cannot open the event log {}: {e}", path.display());
                None
            }
        });
        let mut app = App {
            paths: parts.paths,
            screen: Screen::SignIn(SignIn::from_config(&config)),
            config,
            default_listen: options.default_listen,
            ca_file: options.ca_file,
            incoming: None,
            waiting: None,
            history,
            presence: BTreeMap::new(),
            focused: true,
            notifier: parts.notifier,
            preview: None,
            sound,
            media_hook_from_config,
            event_log,
            logged_ui: None,
            connection: Connection::SignedOut { reason: None },
            session: None,
            sessions_started: 0,
            notice: note,
            now: Instant::now(),
            ringer,
            tone: None,
            media_hook,
            media: None,
            embedded: None,
            connector: parts.connector,
            quitting: false,
        };
        // Any sign-in flag signs in at start, when a peer id is known.
        let task = if sign_in_flags && !app.config.peer_id.is_empty() {
            app.update(Message::SignIn(sign_in::Message::Submit))
        } else {
            Task::none()
        };
        (app, task)
    }

    pub fn update(&mut self, message: Message) -> Task<Message> {
        self.now = match message {
            Message::Tick(now) => now,
            _ => Instant::now(),
        };
        let was_ringing = self.incoming.is_some();
        self.log_message(&message);
        let task = self.handle(message);
        let task = Task::batch([task, self.promote_waiting()]);
        self.reconcile();
        if was_ringing && self.incoming.is_none() {
            // The window manager may keep the urgency hint until told otherwise.
            let calm = window::latest().and_then(|id| window::request_user_attention(id, None));
            return Task::batch([task, calm]);
        }
        task
    }

    fn handle(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::SignIn(message) => {
                let Screen::SignIn(form) = &mut self.screen else { return Task::none() };
                match form.update(message) {
                    Some(sign_in::Event::SignIn(credentials)) => self.sign_in(credentials),
                    Some(sign_in::Event::OpenSettings) => self.go(Tab::Settings),
                    None => Task::none(),
                }
            }
            Message::Dial(message) => {
                let Screen::Dial(form) = &mut self.screen else { return Task::none() };
                match form.update(message) {
                    Some(dial::Event::Call { peer, channel, content }) => self.call(peer, channel, content),
                    Some(dial::Event::SignOut) => self.sign_out(),
                    None => Task::none(),
                }
            }
            Message::Contacts(message) => self.on_contacts(message),
            Message::History(message) => self.on_history(message),
            Message::Settings(message) => self.on_settings(message),
            Message::Go(tab) => self.go(tab),
            Message::CallBack(peer) => self.call_back(peer),
            Message::Waiting(message) => self.on_waiting(message),
            Message::PresenceReplied(session, result) => {
                if self.session.as_ref().map(|s| s.number) == Some(session) {
                    match result {
                        Ok(presence) => self.presence.extend(presence),
                        Err(e) => tracing::info!("presence subscription failed: {e}"),
                    }
                }
                Task::none()
            }
            Message::Focused(focused) => {
                self.focused = focused;
                Task::none()
            }
            Message::Outgoing(message) => {
                let Screen::Outgoing(call) = &mut self.screen else { return Task::none() };
                match call.update(message) {
                    Some(outgoing::Event::Cancel { call_id }) => self.request(call_id, Request::Cancel),
                    None => Task::none(),
                }
            }
            Message::Incoming(message) => {
                let Some(dialog) = &mut self.incoming else { return Task::none() };
                match dialog.update(message) {
                    Some(incoming::Event::Accept { call_id }) => self.request(call_id, Request::Accept),
                    Some(incoming::Event::Refuse { call_id }) => {
                        if let Some(dialog) = self.incoming.take() {
                            self.record_incoming(&dialog, crate::history::Outcome::Declined, "");
                        }
                        self.request(call_id, Request::Refuse)
                    }
                    None => Task::none(),
                }
            }
            Message::InCall(message) => {
                let Screen::InCall(call) = &mut self.screen else { return Task::none() };
                match call.update(message) {
                    Some(in_call::Event::HangUp { call_id }) => {
                        let call = call.clone();
                        self.notice = Some(format!("Call with {} ended", call.facts.peer));
                        self.record_call(&call);
                        self.screen = Screen::Dial(Dial::redial(&call.facts.peer));
                        self.request(call_id, Request::HangUp)
                    }
                    None => Task::none(),
                }
            }
            Message::Sdk(session, event) => {
                if self.session.as_ref().map(|s| s.number) != Some(session) {
                    tracing::debug!(session, ?event, "dropped an event of an ended session");
                    return Task::none();
                }
                if let Some(log) = &mut self.event_log {
                    log.sdk(session, &event);
                }
                self.on_sdk_event(event)
            }
            Message::Replied { call_id, request, result } => self.on_reply(call_id, request, result),
            Message::Tick(now) => {
                if self.preview.as_ref().is_some_and(|(until, _)| now >= *until) {
                    self.preview = None;
                }
                Task::none()
            }
            Message::Done => Task::none(),
            Message::DismissNotice => {
                self.notice = None;
                Task::none()
            }
            Message::CloseRequested => self.quit(),
        }
    }

    /// Places a call (from the dial screen, a contact or a history row).
    fn call(&mut self, peer: String, channel: String, content: String) -> Task<Message> {
        if self.incoming.is_some() || matches!(self.screen, Screen::Outgoing(_) | Screen::InCall(_)) {
            return Task::none();
        }
        let Some(session) = &self.session else { return Task::none() };
        match session.phone.invite(&peer, &channel, &content) {
            Ok((call_id, reply)) => {
                self.notice = None;
                self.screen = Screen::Outgoing(Outgoing {
                    call_id: call_id.clone(),
                    peer,
                    channel,
                    content,
                    stage: outgoing::Stage::Calling,
                    started: self.now,
                    started_at_ms: crate::clock::unix_millis(),
                });
                Task::perform(reply, move |result| Message::Replied {
                    call_id,
                    request: Request::Invite,
                    result,
                })
            }
            Err(e) => {
                match &mut self.screen {
                    Screen::Dial(form) => form.error = Some(calls::describe_error(&e)),
                    _ => self.notice = Some(format!("Could not call {peer}: {}", calls::describe_error(&e))),
                }
                Task::none()
            }
        }
    }

    /// Sends a request about `call_id`; its reply comes back as `Replied`.
    fn request(&self, call_id: String, request: Request) -> Task<Message> {
        let Some(session) = &self.session else { return Task::none() };
        let reply = match request {
            Request::Cancel => session.phone.cancel(&call_id),
            Request::Accept => session.phone.accept(&call_id),
            Request::Refuse => session.phone.refuse(&call_id, ""),
            Request::HangUp => session.phone.hang_up(&call_id),
            Request::Invite => return Task::none(),
        };
        Task::perform(reply, move |result| Message::Replied { call_id, request, result })
    }

    /// The screen under the dialog.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The incoming-call dialog, if one shows.
    pub fn incoming(&self) -> Option<&Incoming> {
        self.incoming.as_ref()
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_deref()
    }

    /// The number tagging the current session's events (tests feed events
    /// by hand with it).
    pub fn session_number(&self) -> Option<u64> {
        self.session.as_ref().map(|s| s.number)
    }

    /// The URL of the embedded server, when this app hosts one.
    pub fn embedded_url(&self) -> Option<String> {
        self.embedded.as_ref().map(Embedded::url)
    }

    /// The tone the ringer is playing.
    pub fn tone(&self) -> Option<Tone> {
        self.tone
    }

    /// The call-waiting prompt, if a second call rings during a call.
    pub fn waiting(&self) -> Option<&Incoming> {
        self.waiting.as_ref()
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

/// Opens the window and runs the app until it is closed.
pub fn run(options: Options) -> iced::Result {
    iced::application(move || App::new(options.clone(), Parts::real()), App::update, App::view)
        .title(App::title)
        .subscription(App::subscription)
        .theme(|_: &App| theme::theme())
        .default_font(iced::Font::with_name("Fira Sans"))
        .window(window::Settings {
            size: iced::Size::new(layout::WINDOW.0, layout::WINDOW.1),
            min_size: Some(iced::Size::new(480.0, 600.0)),
            exit_on_close_request: false,
            icon: theme::window_icon(),
            platform_specific: window::settings::PlatformSpecific {
                application_id: "softphone".into(),
                ..Default::default()
            },
            ..window::Settings::default()
        })
        .run()
}
