//! Signing in and out: the SDK client of a session, what its connection
//! events do, the embedded default server it may need, and the orderly
//! goodbye when the window closes.

use super::effects::send;
use super::link::{Link, Session, SessionToken, Status, describe_reason};
use super::model::{self, Effect};
use super::phone;
use super::sign_in::{Credentials, SignIn};
use super::{App, Message, Page, embedded};
use crate::config::DEFAULT_SERVER_URL;
use iced::Task;
use softphone_core::sdk::{self, ConnectionState};
use softphone_core::token::source::TokenSource;
use std::time::Duration;

impl App {
    /// Starts an SDK client for `credentials`; the default URL first hosts
    /// a server here when nothing listens on it.
    pub(super) fn sign_in(&mut self, credentials: Credentials) -> Task<Message> {
        if matches!(self.link, Link::Up { .. }) {
            self.link = Link::SignedOut { reason: None };
        }
        let mut token = credentials.token.clone();
        let mut tokens = self.token_source.clone();
        let (url, other_urls) = match credentials.servers.urls() {
            [] => {
                let secret = match embedded::local_secret(&self.paths) {
                    Ok(secret) => secret,
                    Err(e) => {
                        return self
                            .refuse_sign_in(format!("Cannot read or make the local server's secret: {e}"));
                    }
                };
                self.host_default_server_if_free(&secret);
                // The default server is this user's: a token minted from its
                // secret, renewed the same way (unless one was typed in).
                if token.is_empty() {
                    token = embedded::mint(&secret, &credentials.peer_id);
                    tokens = Some(TokenSource::Mint { secret, ttl: embedded::MINTED_TOKEN_TTL });
                }
                (self.default_url(), Vec::new())
            }
            [first, others @ ..] => (first.clone(), others.to_vec()),
        };
        let shown = if other_urls.is_empty() { url.clone() } else { credentials.servers.to_text() };
        let mut config = sdk::ClientConfig::new(url, credentials.peer_id.clone());
        // The SDK moves on to the next of these when its server goes away.
        config.other_urls = other_urls;
        config.token = token.clone();
        config.device = credentials.device.clone();
        config.ca_file = self.ca_file.clone();
        let (phone, events) = match (self.connector)(config) {
            Ok(started) => started,
            Err(e) => return self.refuse_sign_in(e.to_string()),
        };
        self.sessions_started += 1;
        let number = self.sessions_started;
        let (task, events) = match events {
            Some(events) => {
                let (task, handle) = phone::events(events, number, Message::Sdk);
                (task, Some(handle))
            }
            None => (Task::none(), None),
        };
        let session = Session {
            number,
            phone,
            credentials,
            url: shown,
            ever_connected: false,
            tokens: Box::new(SessionToken { current: token, source: tokens }),
            _events: events,
        };
        self.link = Link::Up { session, status: Status::Connecting };
        if let Page::SignIn(form) = &mut self.page {
            form.busy = true;
            form.error = None;
        }
        task
    }

    /// What the SDK says about the connection of the session.
    pub(super) fn on_connection(
        &mut self,
        state: ConnectionState,
        reason: sdk::ConnectionReason,
    ) -> Task<Message> {
        let Link::Up { session, status } = &mut self.link else { return Task::none() };
        match state {
            ConnectionState::Connecting { .. } => {
                if !session.ever_connected {
                    *status = Status::Connecting;
                }
            }
            ConnectionState::Connected { .. } => {
                *status = Status::Connected;
                let first = !std::mem::replace(&mut session.ever_connected, true);
                let credentials = session.credentials.clone();
                // Presence as it is now; the SDK renews the subscription
                // itself, but what changed while we were away is only in
                // this reply.
                let task =
                    self.watch_presence(self.config.contacts.iter().map(|c| c.peer_id.clone()).collect());
                if first {
                    self.remember(credentials);
                    if matches!(self.page, Page::SignIn(_)) {
                        self.page = Page::Dial(super::dial::Dial::default());
                    }
                }
                return task;
            }
            ConnectionState::Reconnecting { attempt, next_try_in } => {
                // Each server tried once and none let us in: say so instead
                // of retrying forever (one server: its first attempt failed).
                let servers = session.credentials.servers.urls().len().max(1);
                if !session.ever_connected && attempt as usize >= servers {
                    return self.end_session(Some(describe_reason(&reason)));
                }
                if !session.ever_connected {
                    return Task::none();
                }
                let uses_default = session.credentials.servers.is_default();
                *status = Status::Reconnecting {
                    attempt,
                    next_try_at: self.now + next_try_in,
                    reason: describe_reason(&reason),
                };
                // The instance that hosted the default server has gone:
                // take over, so the next try finds a server here.
                if uses_default {
                    match embedded::local_secret(&self.paths) {
                        Ok(secret) => self.host_default_server_if_free(&secret),
                        Err(e) => tracing::warn!("cannot host the default server: its secret: {e}"),
                    }
                }
            }
            ConnectionState::Disconnected | ConnectionState::Aborted => {
                let reason = match reason {
                    sdk::ConnectionReason::LoggedOut => None,
                    other => Some(describe_reason(&other)),
                };
                return self.end_session(reason);
            }
        }
        Task::none()
    }

    /// Saves the credentials that worked, for the next start.
    fn remember(&mut self, credentials: Credentials) {
        self.config.servers = credentials.servers;
        self.config.peer_id = credentials.peer_id;
        self.config.token = credentials.token;
        self.config.device = credentials.device;
        if let Err(e) = self.config.save(&self.paths) {
            tracing::warn!("cannot save the settings to {}: {e}", self.paths.config_file().display());
        }
    }

    /// The URL of the default server: the one hosted here, else the
    /// address any instance would host it on.
    fn default_url(&self) -> String {
        match &self.embedded {
            Some(embedded) => embedded.url(),
            None if self.default_listen == embedded::DEFAULT_LISTEN => DEFAULT_SERVER_URL.to_owned(),
            None => format!("ws://{}/", self.default_listen),
        }
    }

    /// The sign-in form shows `error`; nothing starts.
    fn refuse_sign_in(&mut self, error: String) -> Task<Message> {
        if let Page::SignIn(form) = &mut self.page {
            form.error = Some(error);
        }
        Task::none()
    }

    /// Hosts the default server in-process, with `secret`, if its address is free.
    fn host_default_server_if_free(&mut self, secret: &[u8]) {
        if self.embedded.is_some() {
            return;
        }
        match embedded::host_if_free(&self.default_listen, secret.to_vec()) {
            Ok(hosted) => self.embedded = hosted,
            Err(e) => tracing::warn!("cannot host the default server on {}: {e}", self.default_listen),
        }
    }

    /// Takes the session out of the link, leaving it signed out.
    fn take_session(&mut self) -> Option<Session> {
        match std::mem::replace(&mut self.link, Link::SignedOut { reason: None }) {
            Link::Up { session, .. } => Some(session),
            Link::SignedOut { .. } => None,
        }
    }

    /// Ends the session: logs out in the background, back to sign-in.
    pub(super) fn sign_out(&mut self) -> Task<Message> {
        let Some(session) = self.take_session() else { return Task::none() };
        let ended = self.end_session(None);
        let phone = session.phone.clone();
        let logout = Task::perform(
            async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), phone.logout()).await;
                drop(phone);
            },
            |()| Message::Done,
        );
        Task::batch([ended, logout])
    }

    /// Forgets the session and everything that depended on it; the calls
    /// it had go into the history.
    fn end_session(&mut self, reason: Option<String>) -> Task<Message> {
        let task = self.drive(model::Event::SessionEnded);
        self.link = Link::SignedOut { reason: reason.clone() };
        self.presence.clear();
        let mut form = SignIn::from_config(&self.config);
        form.error = reason;
        self.page = Page::SignIn(form);
        task
    }

    /// Stops sounds and media at once, ends our calls (telling the other
    /// side), signs out, exits.
    pub(super) fn quit(&mut self) -> Task<Message> {
        // Quitting first: what is recorded now raises no notification.
        self.quitting = true;
        let history_open = matches!(self.screen(), super::Screen::History(_));
        let effects = self.calls.on_event(model::Event::Closing, &self.policy(), self.now);
        let (asks, rest): (Vec<_>, Vec<_>) = effects.into_iter().partition(|e| matches!(e, Effect::Ask(_)));
        for effect in rest {
            let _ = self.apply(effect, history_open);
        }
        let Some(session) = self.take_session() else { return iced::exit() };
        let phone = session.phone.clone();
        let endings: Vec<_> = asks
            .iter()
            .filter_map(|e| match e {
                Effect::Ask(ask) => Some(send(phone.as_ref(), ask)),
                _ => None,
            })
            .collect();
        Task::perform(
            async move {
                let goodbye = async {
                    futures_util::future::join_all(endings).await;
                    let _ = phone.logout().await;
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
            },
            |()| Message::Done,
        )
        .chain(iced::exit())
    }
}
