//! Signing in and out: the SDK client of a session, the embedded default
//! server it may need, and the orderly goodbye when the window closes.

use super::connection::Connection;
use super::embedded;
use super::phone::{self, Phone};
use super::sign_in::{Credentials, SignIn};
use super::{App, Message, Screen, outgoing};
use crate::config::DEFAULT_SERVER_URL;
use crate::history::Outcome;
use crate::sdk;
use iced::Task;
use std::sync::Arc;
use std::time::Duration;

/// A signed-in (or signing-in) SDK client.
pub(super) struct Session {
    /// Tags this session's events; a new sign-in gets a new number.
    pub(super) number: u64,
    pub(super) phone: Arc<dyn Phone>,
    pub(super) credentials: Credentials,
    /// The URL actually used (the default one filled in).
    pub(super) url: String,
    /// Whether it has been connected once: before that, a failed attempt
    /// means "cannot sign in" rather than "reconnecting".
    pub(super) ever_connected: bool,
    /// Aborts the event task when the session goes.
    _events: Option<iced::task::Handle>,
}

impl App {
    /// Starts an SDK client for `credentials`; the default URL first hosts
    /// a server here when nothing listens on it.
    pub(super) fn sign_in(&mut self, credentials: Credentials) -> Task<Message> {
        self.session = None;
        let url = if credentials.server_url.is_empty() {
            self.host_default_server_if_free();
            self.default_url()
        } else {
            credentials.server_url.clone()
        };
        let mut config = sdk::ClientConfig::new(url.clone(), credentials.peer_id.clone());
        config.token = credentials.token.clone();
        config.device = credentials.device.clone();
        config.ca_file = self.ca_file.clone();
        match (self.connector)(config) {
            Ok((phone, events)) => {
                self.sessions_started += 1;
                let number = self.sessions_started;
                let (task, handle) = match events {
                    Some(events) => {
                        let (task, handle) = phone::events(events, number, Message::Sdk);
                        (task, Some(handle))
                    }
                    None => (Task::none(), None),
                };
                self.session = Some(Session {
                    number,
                    phone,
                    credentials,
                    url: url.clone(),
                    ever_connected: false,
                    _events: handle,
                });
                self.connection = Connection::Connecting { url };
                if let Screen::SignIn(form) = &mut self.screen {
                    form.busy = true;
                    form.error = None;
                }
                task
            }
            Err(e) => {
                if let Screen::SignIn(form) = &mut self.screen {
                    form.error = Some(e.to_string());
                }
                Task::none()
            }
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

    /// Hosts the default server in-process if its address is free.
    pub(super) fn host_default_server_if_free(&mut self) {
        if self.embedded.is_some() {
            return;
        }
        match embedded::host_if_free(&self.default_listen) {
            Ok(hosted) => self.embedded = hosted,
            Err(e) => tracing::warn!("cannot host the default server on {}: {e}", self.default_listen),
        }
    }

    /// Ends the session: logs out in the background, back to sign-in.
    pub(super) fn sign_out(&mut self) -> Task<Message> {
        let Some(session) = self.session.take() else { return Task::none() };
        self.end_session(None);
        let phone = session.phone.clone();
        Task::perform(
            async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), phone.logout()).await;
                drop(phone);
            },
            |()| Message::Done,
        )
    }

    /// Forgets the session and everything that depended on it; calls it
    /// had go into the history.
    pub(super) fn end_session(&mut self, reason: Option<String>) {
        self.record_unfinished("signed out");
        self.session = None;
        self.incoming = None;
        self.waiting = None;
        self.presence.clear();
        let mut form = SignIn::from_config(&self.config);
        form.error = reason.clone();
        self.screen = Screen::SignIn(form);
        self.connection = Connection::SignedOut { reason };
    }

    /// Records the calls the session leaves behind: the call up (answered,
    /// until now), the call being placed (canceled), what rings (missed).
    fn record_unfinished(&mut self, why: &str) {
        match self.screen.clone() {
            Screen::InCall(call) => self.record_call(&call),
            Screen::Outgoing(call) => self.record_outgoing(&call, Outcome::Canceled, why),
            _ => {}
        }
        for dialog in [self.incoming.take(), self.waiting.take()].into_iter().flatten() {
            self.record_incoming(&dialog, Outcome::Missed, why);
        }
    }

    /// Stops sounds and media at once, ends our calls, signs out, exits.
    pub(super) fn quit(&mut self) -> Task<Message> {
        // Quitting first: what is recorded now raises no notification.
        self.quitting = true;
        self.record_unfinished("the app was closed");
        let Some(session) = self.session.take() else { return iced::exit() };
        let ending = match &self.screen {
            Screen::InCall(call) => Some(session.phone.hang_up(&call.facts.call_id)),
            Screen::Outgoing(call) if call.stage != outgoing::Stage::Canceling => {
                Some(session.phone.cancel(&call.call_id))
            }
            _ => None,
        };
        let phone = session.phone.clone();
        Task::perform(
            async move {
                let goodbye = async {
                    if let Some(ending) = ending {
                        let _ = ending.await;
                    }
                    let _ = phone.logout().await;
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
            },
            |()| Message::Done,
        )
        .chain(iced::exit())
    }
}
