//! What each SDK event and each reply to our requests does to the screens.
//!
//! Every event about a call is checked against the call on screen (or in
//! the dialog) by call id: an event about any other call is stale (the
//! user already moved on) and is dropped. Each ending gets a plain sentence
//! in the notice bar.

use super::connection::{Connection, describe_reason};
use super::dial::Dial;
use super::in_call::InCall;
use super::outgoing::{self, Outgoing};
use super::{App, Message, Request, Screen};
use crate::history::Outcome;
use crate::media::{CallFacts, MediaStatus};
use crate::protocol::{ErrorCode, Role};
use crate::sdk::{self, CancelReason, ConnectionState, Event, FailureReason, HangupReason};
use iced::Task;

/// The response that tells a caller we are on another call.
pub const BUSY: &str = "busy";

impl App {
    pub(super) fn on_sdk_event(&mut self, event: Event) -> Task<Message> {
        match event {
            Event::Connection { state, reason } => self.on_connection(state, reason),
            Event::RemoteInvitationReceived { call_id, caller_id, content, channel_id, expires_in } => {
                self.on_invitation(call_id, caller_id, content, channel_id, expires_in)
            }
            Event::RemoteInvitationAccepted { call_id } => {
                self.answered(&call_id);
                Task::none()
            }
            Event::RemoteInvitationRefused { call_id } => {
                self.take_ringing(&call_id);
                Task::none()
            }
            Event::RemoteInvitationCanceled { call_id, reason } => {
                if let Some(dialog) = self.take_ringing(&call_id) {
                    let caller = &dialog.caller;
                    let (sentence, outcome, detail) = match reason {
                        CancelReason::AnsweredElsewhere => (
                            format!("{caller}'s call was answered on another device"),
                            Outcome::AnsweredElsewhere,
                            "",
                        ),
                        CancelReason::RefusedElsewhere => (
                            format!("{caller}'s call was declined on another device"),
                            Outcome::Declined,
                            "on another device",
                        ),
                        CancelReason::CallerCanceled | CancelReason::Other => {
                            (format!("Missed call from {caller}"), Outcome::Missed, "")
                        }
                    };
                    self.notice = Some(sentence);
                    self.record_incoming(&dialog, outcome, detail);
                }
                Task::none()
            }
            Event::RemoteInvitationFailure { call_id, reason } => {
                if let Some(dialog) = self.take_ringing(&call_id) {
                    let caller = &dialog.caller;
                    let (sentence, detail) = match reason {
                        FailureReason::CallerOffline => (
                            format!("Missed call from {caller} ({caller} went offline)"),
                            "caller went offline",
                        ),
                        FailureReason::EndedWhileDisconnected => (
                            format!("Missed call from {caller} (it ended while you were disconnected)"),
                            "ended while you were disconnected",
                        ),
                        _ => (format!("Missed call from {caller}"), ""),
                    };
                    self.notice = Some(sentence);
                    self.record_incoming(&dialog, Outcome::Missed, detail);
                }
                Task::none()
            }
            Event::LocalInvitationReceivedByPeer { call_id } => {
                if let Some(call) = self.outgoing_mut(&call_id)
                    && call.stage == outgoing::Stage::Calling
                {
                    call.stage = outgoing::Stage::Ringing;
                }
                Task::none()
            }
            Event::LocalInvitationAccepted { call_id, response, .. } => self.on_accepted(call_id, response),
            Event::LocalInvitationRefused { call_id, response } => {
                if let Some(call) = self.outgoing_mut(&call_id) {
                    let peer = call.peer.clone();
                    let response = response.trim();
                    let ending = if response.eq_ignore_ascii_case(BUSY) {
                        (Outcome::Busy, "", format!("{peer} is busy"))
                    } else if response.eq_ignore_ascii_case(super::invitations::DND) {
                        (
                            Outcome::Declined,
                            "do not disturb",
                            format!("{peer} is not taking calls (do not disturb)"),
                        )
                    } else if response.is_empty() {
                        (Outcome::Declined, "", format!("{peer} declined"))
                    } else {
                        (Outcome::Declined, response, format!("{peer} declined: {response}"))
                    };
                    self.end_outgoing(ending.0, ending.1, ending.2);
                }
                Task::none()
            }
            Event::LocalInvitationCanceled { call_id } => {
                if self.outgoing_mut(&call_id).is_some() {
                    self.end_outgoing(Outcome::Canceled, "", "Call canceled".into());
                }
                Task::none()
            }
            Event::LocalInvitationFailure { call_id, reason } => {
                if let Some(call) = self.outgoing_mut(&call_id) {
                    let peer = call.peer.clone();
                    let (detail, sentence) = match reason {
                        FailureReason::PeerOffline => ("peer offline", format!("{peer} is offline")),
                        FailureReason::PeerNoResponse | FailureReason::Expired => {
                            ("no answer", format!("No answer from {peer}"))
                        }
                        FailureReason::EndedWhileDisconnected => (
                            "ended while you were disconnected",
                            format!("The call to {peer} ended while you were disconnected"),
                        ),
                        FailureReason::CallerOffline | FailureReason::Other => {
                            (reason.as_str(), format!("The call to {peer} failed"))
                        }
                    };
                    self.end_outgoing(Outcome::Failed, detail, sentence);
                }
                Task::none()
            }
            Event::HungUp { call_id, reason, by } => {
                if let Screen::InCall(call) = &self.screen
                    && call.facts.call_id == call_id
                {
                    let call = call.clone();
                    self.record_call(&call);
                    let peer = call.facts.peer.clone();
                    let me = self.session.as_ref().map(|s| s.credentials.peer_id.as_str());
                    let sentence = match reason {
                        HangupReason::Hangup if Some(by.as_str()) == me => format!("Call with {peer} ended"),
                        HangupReason::Hangup => format!("{peer} hung up"),
                        HangupReason::PeerOffline => format!("Lost the connection to {peer}; the call ended"),
                        HangupReason::EndedWhileDisconnected => {
                            format!("The call with {peer} ended while you were disconnected")
                        }
                        HangupReason::Other => format!("Call with {peer} ended"),
                    };
                    self.notice = Some(sentence);
                    self.screen = Screen::Dial(Dial::redial(&peer));
                }
                Task::none()
            }
            Event::Presence { peer_id, online } => {
                self.presence.insert(peer_id, online);
                Task::none()
            }
        }
    }

    fn on_connection(&mut self, state: ConnectionState, reason: sdk::ConnectionReason) -> Task<Message> {
        let Some(session) = &mut self.session else { return Task::none() };
        let url = session.url.clone();
        match state {
            ConnectionState::Connecting { .. } => {
                if !session.ever_connected {
                    self.connection = Connection::Connecting { url };
                }
            }
            ConnectionState::Connected { .. } => {
                self.connection = Connection::Connected { url };
                // Presence as it is now; the SDK renews the subscription
                // itself, but what changed while we were away is only in
                // this reply.
                let task =
                    self.watch_presence(self.config.contacts.iter().map(|c| c.peer_id.clone()).collect());
                let Some(session) = &mut self.session else { return task };
                if !session.ever_connected {
                    session.ever_connected = true;
                    let credentials = session.credentials.clone();
                    self.remember(credentials);
                    if matches!(self.screen, Screen::SignIn(_)) {
                        self.screen = Screen::Dial(Dial::default());
                    }
                }
                return task;
            }
            ConnectionState::Reconnecting { attempt, next_try_in } => {
                if !session.ever_connected {
                    // The first attempt failed: say so instead of retrying forever.
                    self.end_session(Some(describe_reason(&reason)));
                    return Task::none();
                }
                let uses_default = session.credentials.server_url.is_empty();
                self.connection = Connection::Reconnecting {
                    url,
                    attempt,
                    next_try_at: self.now + next_try_in,
                    reason: describe_reason(&reason),
                };
                // The instance that hosted the default server has gone:
                // take over, so the next try finds a server here.
                if uses_default {
                    self.host_default_server_if_free();
                }
            }
            ConnectionState::Disconnected | ConnectionState::Aborted => {
                let reason = match reason {
                    sdk::ConnectionReason::LoggedOut => None,
                    other => Some(describe_reason(&other)),
                };
                self.end_session(reason);
            }
        }
        Task::none()
    }

    /// Saves the credentials that worked, for the next start.
    fn remember(&mut self, credentials: super::Credentials) {
        self.config.server_url = credentials.server_url;
        self.config.peer_id = credentials.peer_id;
        self.config.token = credentials.token;
        self.config.device = credentials.device;
        if let Err(e) = self.config.save(&self.paths) {
            tracing::warn!("cannot save the settings to {}: {e}", self.paths.config_file().display());
        }
    }

    /// Our accept went through: the dialog becomes the call screen.
    fn answered(&mut self, call_id: &str) {
        if let Some(dialog) = self.take_ringing(call_id) {
            self.notice = None;
            self.screen = Screen::InCall(InCall {
                facts: CallFacts {
                    call_id: dialog.call_id,
                    channel: dialog.channel,
                    peer: dialog.caller,
                    role: Role::Callee,
                    content: dialog.content,
                    response: String::new(),
                },
                since: self.now,
                started_at_ms: dialog.started_at_ms,
                media: MediaStatus::Running("Starting...".into()),
            });
        }
    }

    fn on_accepted(&mut self, call_id: String, response: String) -> Task<Message> {
        let Some(call) = self.outgoing_mut(&call_id) else { return Task::none() };
        let call = call.clone();
        if call.stage == outgoing::Stage::Canceling {
            // Accepted just as we canceled: the user wanted it over.
            self.end_outgoing(
                Outcome::Canceled,
                "answered as you canceled",
                format!("{} answered as you canceled; the call was hung up", call.peer),
            );
            return self.request(call_id, Request::HangUp);
        }
        self.notice = None;
        self.screen = Screen::InCall(InCall {
            facts: CallFacts {
                call_id: call.call_id,
                channel: call.channel,
                peer: call.peer,
                role: Role::Caller,
                content: call.content,
                response,
            },
            since: self.now,
            started_at_ms: call.started_at_ms,
            media: MediaStatus::Running("Starting...".into()),
        });
        Task::none()
    }

    pub(super) fn on_reply(
        &mut self,
        call_id: String,
        request: Request,
        result: Result<(), sdk::Error>,
    ) -> Task<Message> {
        let Err(error) = result else {
            if request == Request::Accept {
                self.answered(&call_id);
            }
            return Task::none();
        };
        tracing::info!(%call_id, ?request, "request failed: {error}");
        match request {
            Request::Invite => {
                if let Some(call) = self.outgoing_mut(&call_id) {
                    let peer = call.peer.clone();
                    let why = describe_error(&error);
                    self.end_outgoing(Outcome::Failed, &why, format!("Could not call {peer}: {why}"));
                }
            }
            Request::Cancel => {
                let accepted = matches!(error, sdk::Error::AlreadyAccept(_))
                    || error.server_code() == Some(ErrorCode::AlreadyAccepted);
                let ended = matches!(error, sdk::Error::AlreadyEnd(_))
                    || error.server_code() == Some(ErrorCode::AlreadyEnded);
                // Accepted or ended: the event that says how is on its way.
                if !accepted && !ended && self.outgoing_mut(&call_id).is_some() {
                    self.end_outgoing(Outcome::Canceled, "", "Call canceled".into());
                }
            }
            Request::Accept => {
                if let Some(dialog) = self.take_ringing(&call_id) {
                    let why = describe_error(&error);
                    self.notice = Some(format!("Could not answer {}'s call: {why}", dialog.caller));
                    self.record_incoming(&dialog, Outcome::Failed, &format!("could not answer: {why}"));
                }
            }
            Request::Refuse | Request::HangUp => {}
        }
        Task::none()
    }

    /// The outgoing call on screen, if it is `call_id`.
    fn outgoing_mut(&mut self, call_id: &str) -> Option<&mut Outgoing> {
        match &mut self.screen {
            Screen::Outgoing(call) if call.call_id == call_id => Some(call),
            _ => None,
        }
    }

    /// Back to the dial screen, ready to call the same peer again; the
    /// call goes into the history with `outcome`.
    fn end_outgoing(&mut self, outcome: Outcome, detail: &str, sentence: String) {
        if let Screen::Outgoing(call) = &self.screen {
            let call = call.clone();
            self.record_outgoing(&call, outcome, detail);
            self.screen = Screen::Dial(Dial::redial(&call.peer));
        }
        self.notice = Some(sentence);
    }
}

/// A sentence for a failed request.
pub fn describe_error(error: &sdk::Error) -> String {
    match error {
        sdk::Error::NotConnected => "not connected to the server right now".into(),
        sdk::Error::ConnectionLost => "the connection dropped".into(),
        sdk::Error::Timeout(_) => "the server did not answer in time".into(),
        sdk::Error::InvalidArgument(m) if m.contains("own peer_id") => "you cannot call yourself".into(),
        sdk::Error::Server(e) => match e.code {
            ErrorCode::TooManyCalls => "too many calls at once".into(),
            ErrorCode::RateLimited => "too many requests; try again in a moment".into(),
            ErrorCode::AlreadyEnded => "the call had already ended".into(),
            _ => e.message.clone(),
        },
        sdk::Error::AlreadyEnd(_) => "the call had already ended".into(),
        other => other.to_string(),
    }
}
