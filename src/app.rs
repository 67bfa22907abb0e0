//! The desktop softphone: an Elm-style iced application.
//!
//! State flows one way. Every input is a [`Message`]: a click or key on a
//! screen, an SDK event (`Message::Sdk`), the reply to one of our requests
//! (`Message::Replied`), a clock tick. [`App::update`] changes the state:
//! the current [`Screen`], the incoming-call dialog that may sit over it,
//! the connection. Screens never reach up: their `update` returns an
//! `Event` that the app acts on. After every update the app *reconciles*:
//! it works out which tone its state calls for and which call's media
//! session should run, and tells the [`Ringer`] and [`MediaHook`] only
//! about changes. So every way a ringing invitation can end stops the
//! ringtone, because none of them leaves an invitation ringing.
//!
//! - [`sign_in`], [`dial`], [`outgoing`], [`incoming`], [`in_call`]: the screens.
//! - [`calls`]: what each SDK event and reply does to the screens.
//! - [`phone`]: the seam to the SDK and the iced adapter for its events.
//! - [`session`]: signing in and out, and quitting.
//! - [`connection`]: the connection state and the status bar.
//! - [`embedded`]: the in-process server of the default setup.
//! - [`widget`], [`theme`]: the key-shortcut widget and the look.

pub mod calls;
pub mod connection;
pub mod dial;
pub mod embedded;
pub mod in_call;
pub mod incoming;
pub mod outgoing;
pub mod phone;
pub mod session;
pub mod sign_in;
pub mod theme;
pub mod widget;

use crate::config::{Config, MediaConfig};
use crate::media::{self, MediaHook, MediaSession};
use crate::paths::Paths;
use crate::ringtone::{self, Ringer, Tone};
use crate::sdk;
use connection::Connection;
use dial::Dial;
use embedded::Embedded;
use in_call::InCall;
use incoming::Incoming;
use outgoing::Outgoing;
use phone::Connector;
use session::Session;
use sign_in::{Credentials, SignIn};
use std::time::{Duration, Instant};

use iced::widget::{button, center, column, container, opaque, row, stack, text};
use iced::{Element, Fill, Subscription, Task, window};

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
}

impl Parts {
    /// The real ones: the platform's paths, the sound card, the SDK.
    pub fn real() -> Parts {
        Parts {
            paths: Paths::from_env(),
            ringer: ringtone::open_default(),
            media_hook: None,
            connector: phone::sdk_connector(),
        }
    }
}

/// The screen under the incoming-call dialog.
#[derive(Debug, Clone)]
pub enum Screen {
    SignIn(SignIn),
    Dial(Dial),
    Outgoing(Outgoing),
    InCall(InCall),
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
    InCall(in_call::Message),
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
    config: Config,
    default_listen: String,
    screen: Screen,
    /// The incoming-call dialog, over whatever screen is up.
    incoming: Option<Incoming>,
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
        let (mut config, note) = Config::load(&parts.paths);
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
        let media_hook = parts.media_hook.unwrap_or_else(|| media::hook_for(&config.media));
        let mut app = App {
            paths: parts.paths,
            screen: Screen::SignIn(SignIn::from_config(&config)),
            config,
            default_listen: options.default_listen,
            incoming: None,
            connection: Connection::SignedOut { reason: None },
            session: None,
            sessions_started: 0,
            notice: note,
            now: Instant::now(),
            ringer: parts.ringer,
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
        let task = self.handle(message);
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
                        self.incoming = None;
                        self.request(call_id, Request::Refuse)
                    }
                    None => Task::none(),
                }
            }
            Message::InCall(message) => {
                let Screen::InCall(call) = &mut self.screen else { return Task::none() };
                match call.update(message) {
                    Some(in_call::Event::HangUp { call_id }) => {
                        self.notice = Some(format!("Call with {} ended", call.facts.peer));
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
                self.on_sdk_event(event)
            }
            Message::Replied { call_id, request, result } => self.on_reply(call_id, request, result),
            Message::Tick(_) | Message::Done => Task::none(),
            Message::DismissNotice => {
                self.notice = None;
                Task::none()
            }
            Message::CloseRequested => self.quit(),
        }
    }

    /// Places a call from the dial screen.
    fn call(&mut self, peer: String, channel: String, content: String) -> Task<Message> {
        if self.incoming.is_some() {
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
                });
                Task::perform(reply, move |result| Message::Replied {
                    call_id,
                    request: Request::Invite,
                    result,
                })
            }
            Err(e) => {
                if let Screen::Dial(form) = &mut self.screen {
                    form.error = Some(calls::describe_error(&e));
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

    /// Brings sound and media in line with the state (see the module docs).
    fn reconcile(&mut self) {
        let tone = self.wanted_tone();
        if tone != self.tone {
            self.ringer.set(tone);
            self.tone = tone;
            if let (Some(Tone::Ringtone), Some(dialog)) = (tone, &self.incoming) {
                tracing::info!(
                    target: "softphone::latency",
                    call_id = %dialog.call_id,
                    unix_us = unix_micros(),
                    "incoming call from {} shown, ringtone started",
                    dialog.caller
                );
            }
        }
        self.reconcile_media();
    }

    /// The ringtone while an invitation rings here, the ringback while ours
    /// rings there, else silence.
    fn wanted_tone(&self) -> Option<Tone> {
        if self.quitting {
            return None;
        }
        if self.incoming.as_ref().is_some_and(|d| d.stage == incoming::Stage::Ringing) {
            return Some(Tone::Ringtone);
        }
        match &self.screen {
            Screen::Outgoing(call) if call.stage == outgoing::Stage::Ringing => Some(Tone::Ringback),
            _ => None,
        }
    }

    fn reconcile_media(&mut self) {
        let on_screen = match &mut self.screen {
            Screen::InCall(call) if !self.quitting => Some(call),
            _ => None,
        };
        let wanted = on_screen.as_ref().map(|call| call.facts.call_id.clone());
        if self.media.as_ref().map(|m| &m.call_id) != wanted.as_ref() {
            if let Some(mut old) = self.media.take()
                && let Some(session) = &mut old.session
            {
                session.stop();
            }
            if let Some(call) = on_screen {
                let session = match self.media_hook.start(&call.facts) {
                    Ok(mut session) => {
                        call.media = session.poll();
                        Some(session)
                    }
                    Err(e) => {
                        call.media = media::MediaStatus::Ended(e.0);
                        None
                    }
                };
                self.media = Some(ActiveMedia { call_id: call.facts.call_id.clone(), session });
            }
        } else if let (Some(call), Some(ActiveMedia { session: Some(session), .. })) =
            (on_screen, &mut self.media)
        {
            call.media = session.poll();
        }
    }

    /// The window title: what is happening, then the app's name.
    pub fn title(&self) -> String {
        let what = match (&self.incoming, &self.screen) {
            (Some(dialog), _) => Some(format!("Incoming call from {}", dialog.caller)),
            (None, Screen::InCall(call)) => Some(format!("In call with {}", call.facts.peer)),
            (None, Screen::Outgoing(call)) => Some(format!("Calling {}", call.peer)),
            (None, Screen::Dial(_)) => self.session.as_ref().map(|s| s.credentials.peer_id.clone()),
            (None, Screen::SignIn(_)) => None,
        };
        match what {
            Some(what) => format!("{what} \u{2014} softphone"),
            None => "softphone".to_owned(),
        }
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let closing = window::close_requests().map(|_| Message::CloseRequested);
        let needs_clock = self.incoming.is_some()
            || matches!(self.screen, Screen::Outgoing(_) | Screen::InCall(_))
            || matches!(self.connection, Connection::Reconnecting { .. });
        if needs_clock {
            Subscription::batch([closing, iced::time::every(Duration::from_secs(1)).map(Message::Tick)])
        } else {
            closing
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let screen = match &self.screen {
            Screen::SignIn(form) => form.view().map(Message::SignIn),
            Screen::Dial(form) => {
                let me = self.session.as_ref().map_or("", |s| s.credentials.peer_id.as_str());
                form.view(me, self.suggestions()).map(Message::Dial)
            }
            Screen::Outgoing(call) => call.view(self.now).map(Message::Outgoing),
            Screen::InCall(call) => call.view(self.now).map(Message::InCall),
        };
        let mut page = column![].height(Fill);
        if let Some(notice) = &self.notice {
            page = page.push(
                container(
                    container(
                        row![
                            text(notice.as_str()).width(Fill),
                            button(text("Dismiss").size(theme::SMALL))
                                .style(button::text)
                                .on_press(Message::DismissNotice),
                        ]
                        .align_y(iced::Center),
                    )
                    .padding([6, 12])
                    .style(theme::notice),
                )
                .padding([8, 12]),
            );
        }
        let note = self.embedded.as_ref().map(Embedded::note);
        page = page.push(center(screen).padding(theme::PADDING)).push(self.connection.view(self.now, note));
        let page: Element<'_, Message> = page.into();
        let (layered, on_enter, on_escape) = match &self.incoming {
            Some(dialog) => {
                let dialog = dialog.view(self.now).map(Message::Incoming);
                let layer = opaque(center(dialog).style(theme::backdrop));
                (
                    stack![page, layer].into(),
                    Some(Message::Incoming(incoming::Message::Accept)),
                    Some(Message::Incoming(incoming::Message::Refuse)),
                )
            }
            None => {
                let escape = match &self.screen {
                    Screen::Outgoing(_) => Some(Message::Outgoing(outgoing::Message::Cancel)),
                    _ => None,
                };
                (page, None, escape)
            }
        };
        widget::shortcuts(layered)
            .on_enter(on_enter)
            .on_escape(on_escape)
            .modal(self.incoming.is_some())
            .into()
    }

    /// Peers worth a button on the dial screen: the demo peers, when the
    /// default server (which runs them) is in use.
    fn suggestions(&self) -> &'static [String] {
        static DEMO: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| ["echo", "busy", "noanswer"].map(String::from).to_vec());
        match &self.session {
            Some(session) if session.credentials.server_url.is_empty() => &DEMO,
            _ => &[],
        }
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
}

/// Microseconds since the Unix epoch, for log lines compared across processes.
fn unix_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros())
}

/// Opens the window and runs the app until it is closed.
pub fn run(options: Options) -> iced::Result {
    iced::application(move || App::new(options.clone(), Parts::real()), App::update, App::view)
        .title(App::title)
        .subscription(App::subscription)
        .theme(|_: &App| theme::theme())
        .default_font(iced::Font::with_name("Fira Sans"))
        .window(window::Settings {
            size: iced::Size::new(560.0, 680.0),
            min_size: Some(iced::Size::new(460.0, 560.0)),
            exit_on_close_request: false,
            ..window::Settings::default()
        })
        .run()
}
