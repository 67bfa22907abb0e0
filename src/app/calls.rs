//! What each SDK event and each reply to our requests does to the screens.
//!
//! Every event about a call is checked against the call on screen (or in
//! the dialog) by call id: an event about any other call is stale (the
//! user already moved on) and is dropped. Each ending gets a plain sentence
//! in the notice bar.

use super::connection::{Connection, describe_reason};
use super::dial::Dial;
use super::in_call::InCall;
use super::incoming::{self, Incoming};
use super::outgoing::{self, Outgoing};
use super::{App, Message, Request, Screen};
use crate::media::{CallFacts, MediaStatus};
use crate::protocol::{ErrorCode, Role};
use crate::sdk::{self, CancelReason, ConnectionState, Event, FailureReason, HangupReason};
use iced::{Task, window};

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
                self.take_incoming(&call_id);
                Task::none()
            }
            Event::RemoteInvitationCanceled { call_id, reason } => {
                if let Some(dialog) = self.take_incoming(&call_id) {
                    let caller = &dialog.caller;
                    self.notice = Some(match reason {
                        CancelReason::AnsweredElsewhere => {
                            format!("{caller}'s call was answered on another device")
                        }
                        CancelReason::RefusedElsewhere => {
                            format!("{caller}'s call was declined on another device")
                        }
                        CancelReason::CallerCanceled | CancelReason::Other => {
                            format!("Missed call from {caller}")
                        }
                    });
                }
                Task::none()
            }
            Event::RemoteInvitationFailure { call_id, reason } => {
                if let Some(dialog) = self.take_incoming(&call_id) {
                    let caller = &dialog.caller;
                    self.notice = Some(match reason {
                        FailureReason::CallerOffline => {
                            format!("Missed call from {caller} ({caller} went offline)")
                        }
                        FailureReason::EndedWhileDisconnected => {
                            format!("Missed call from {caller} (it ended while you were disconnected)")
                        }
                        _ => format!("Missed call from {caller}"),
                    });
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
                    let sentence = if response.trim().eq_ignore_ascii_case(BUSY) {
                        format!("{peer} is busy")
                    } else if response.trim().is_empty() {
                        format!("{peer} declined")
                    } else {
                        format!("{peer} declined: {}", response.trim())
                    };
                    self.end_outgoing(sentence);
                }
                Task::none()
            }
            Event::LocalInvitationCanceled { call_id } => {
                if self.outgoing_mut(&call_id).is_some() {
                    self.end_outgoing("Call canceled".into());
                }
                Task::none()
            }
            Event::LocalInvitationFailure { call_id, reason } => {
                if let Some(call) = self.outgoing_mut(&call_id) {
                    let peer = call.peer.clone();
                    self.end_outgoing(match reason {
                        FailureReason::PeerOffline => format!("{peer} is offline"),
                        FailureReason::PeerNoResponse | FailureReason::Expired => {
                            format!("No answer from {peer}")
                        }
                        FailureReason::EndedWhileDisconnected => {
                            format!("The call to {peer} ended while you were disconnected")
                        }
                        FailureReason::CallerOffline | FailureReason::Other => {
                            format!("The call to {peer} failed")
                        }
                    });
                }
                Task::none()
            }
            Event::HungUp { call_id, reason, by } => {
                if let Screen::InCall(call) = &self.screen
                    && call.facts.call_id == call_id
                {
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
            Event::Presence { .. } => Task::none(),
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
                if !session.ever_connected {
                    session.ever_connected = true;
                    let credentials = session.credentials.clone();
                    self.remember(credentials);
                    if matches!(self.screen, Screen::SignIn(_)) {
                        self.screen = Screen::Dial(Dial::default());
                    }
                }
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

    fn on_invitation(
        &mut self,
        call_id: String,
        caller: String,
        content: String,
        channel: String,
        expires_in: std::time::Duration,
    ) -> Task<Message> {
        let expires_at = self.now + expires_in;
        if let Some(dialog) = &mut self.incoming
            && dialog.call_id == call_id
        {
            // The same invitation again (sent anew after a reconnect).
            dialog.expires_at = expires_at;
            return Task::none();
        }
        let busy = self.incoming.is_some() || matches!(self.screen, Screen::Outgoing(_) | Screen::InCall(_));
        if busy {
            if matches!(&self.screen, Screen::InCall(call) if call.facts.call_id == call_id) {
                return Task::none();
            }
            tracing::info!(%call_id, %caller, "refused a call while busy");
            let Some(session) = &self.session else { return Task::none() };
            let reply = session.phone.refuse(&call_id, BUSY);
            return Task::perform(reply, move |result| Message::Replied {
                call_id,
                request: Request::Refuse,
                result,
            });
        }
        self.incoming =
            Some(Incoming { call_id, caller, channel, content, expires_at, stage: incoming::Stage::Ringing });
        window::latest()
            .and_then(|id| window::request_user_attention(id, Some(window::UserAttention::Critical)))
    }

    /// Our accept went through: the dialog becomes the call screen.
    fn answered(&mut self, call_id: &str) {
        if let Some(dialog) = self.take_incoming(call_id) {
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
                media: MediaStatus::Running("Starting...".into()),
            });
        }
    }

    fn on_accepted(&mut self, call_id: String, response: String) -> Task<Message> {
        let Some(call) = self.outgoing_mut(&call_id) else { return Task::none() };
        let call = call.clone();
        if call.stage == outgoing::Stage::Canceling {
            // Accepted just as we canceled: the user wanted it over.
            self.end_outgoing(format!("{} answered as you canceled; the call was hung up", call.peer));
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
                    self.end_outgoing(format!("Could not call {peer}: {}", describe_error(&error)));
                }
            }
            Request::Cancel => {
                let accepted = matches!(error, sdk::Error::AlreadyAccept(_))
                    || error.server_code() == Some(ErrorCode::AlreadyAccepted);
                let ended = matches!(error, sdk::Error::AlreadyEnd(_))
                    || error.server_code() == Some(ErrorCode::AlreadyEnded);
                // Accepted or ended: the event that says how is on its way.
                if !accepted && !ended && self.outgoing_mut(&call_id).is_some() {
                    self.end_outgoing("Call canceled".into());
                }
            }
            Request::Accept => {
                if let Some(dialog) = self.take_incoming(&call_id) {
                    self.notice = Some(format!(
                        "Could not answer {}'s call: {}",
                        dialog.caller,
                        describe_error(&error)
                    ));
                }
            }
            Request::Refuse | Request::HangUp => {}
        }
        Task::none()
    }

    /// Removes the dialog if it shows `call_id`.
    fn take_incoming(&mut self, call_id: &str) -> Option<Incoming> {
        if self.incoming.as_ref().is_some_and(|d| d.call_id == call_id) { self.incoming.take() } else { None }
    }

    /// The outgoing call on screen, if it is `call_id`.
    fn outgoing_mut(&mut self, call_id: &str) -> Option<&mut Outgoing> {
        match &mut self.screen {
            Screen::Outgoing(call) if call.call_id == call_id => Some(call),
            _ => None,
        }
    }

    /// Back to the dial screen, ready to call the same peer again.
    fn end_outgoing(&mut self, sentence: String) {
        if let Screen::Outgoing(call) = &self.screen {
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
