//! What the SDK tells its user: one [`Event`] enum covering Agora's ten
//! call-invitation callbacks, the hang-up of an accepted call, presence and
//! connection-state changes, delivered in order on the [`Events`] stream.
//!
//! Events are plain data (`Clone + Debug + PartialEq`, no handles, no UI
//! types) so an app can carry them in its own messages; look the invitation
//! up by `call_id` on the [`Client`](super::Client) to act on it. `json`
//! gives each one stable name and a JSON form, for the headless peer and
//! the app's QA timeline alike.

use crate::protocol;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

mod json;

/// Everything that happens to a client, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// onLocalInvitationReceivedByPeer: a callee device got our invitation.
    LocalInvitationReceivedByPeer { call_id: String },
    /// onLocalInvitationAccepted: the callee accepted; the call is live.
    LocalInvitationAccepted {
        call_id: String,
        /// The callee's response text.
        response: String,
        /// The label of the callee's device that accepted.
        device: String,
    },
    /// onLocalInvitationRefused: the callee refused.
    LocalInvitationRefused {
        call_id: String,
        /// The callee's response text (e.g. `busy`).
        response: String,
    },
    /// onLocalInvitationCanceled: our cancel reached the server.
    LocalInvitationCanceled { call_id: String },
    /// onLocalInvitationFailure: the invitation failed.
    LocalInvitationFailure { call_id: String, reason: FailureReason },
    /// onRemoteInvitationReceived: someone calls us. The `received`
    /// acknowledgement has already been sent.
    RemoteInvitationReceived {
        call_id: String,
        caller_id: String,
        content: String,
        channel_id: String,
        /// How long it may ring, as the server said when it sent it.
        expires_in: Duration,
    },
    /// onRemoteInvitationAccepted: our accept reached the server; the call is live.
    RemoteInvitationAccepted { call_id: String },
    /// onRemoteInvitationRefused: our refuse reached the server.
    RemoteInvitationRefused { call_id: String },
    /// onRemoteInvitationCanceled: the invitation stopped ringing here.
    RemoteInvitationCanceled { call_id: String, reason: CancelReason },
    /// onRemoteInvitationFailure: the invitation failed.
    RemoteInvitationFailure { call_id: String, reason: FailureReason },
    /// An accepted call ended (beyond Agora), on either side.
    HungUp {
        call_id: String,
        reason: HangupReason,
        /// The peer that hung up (or was lost); ourselves when our own
        /// hang-up was confirmed; empty when the call ended while we were
        /// disconnected.
        by: String,
    },
    /// A subscribed peer came online or went offline.
    Presence { peer_id: String, online: bool },
    /// The connection changed state.
    Connection { state: ConnectionState, reason: ConnectionReason },
    /// Agora onTokenPrivilegeWillExpire (protocol v1.2): the login token
    /// expires in `expires_in`; renew it with
    /// [`Client::renew_token`](super::Client::renew_token), or the server
    /// closes the session then (and logging in again needs a fresh token).
    TokenExpiring { expires_in: Duration },
}

impl Event {
    /// The call this event is about, if any.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            Event::LocalInvitationReceivedByPeer { call_id }
            | Event::LocalInvitationAccepted { call_id, .. }
            | Event::LocalInvitationRefused { call_id, .. }
            | Event::LocalInvitationCanceled { call_id }
            | Event::LocalInvitationFailure { call_id, .. }
            | Event::RemoteInvitationReceived { call_id, .. }
            | Event::RemoteInvitationAccepted { call_id }
            | Event::RemoteInvitationRefused { call_id }
            | Event::RemoteInvitationCanceled { call_id, .. }
            | Event::RemoteInvitationFailure { call_id, .. }
            | Event::HungUp { call_id, .. } => Some(call_id),
            Event::Presence { .. } | Event::Connection { .. } | Event::TokenExpiring { .. } => None,
        }
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening a connection and logging in; `attempt` counts from 1 since
    /// the last time we were connected.
    Connecting { attempt: u32 },
    /// Logged in; requests may be sent.
    Connected {
        /// The server's id for this session.
        session: String,
    },
    /// The connection dropped or an attempt failed; the next attempt,
    /// number `attempt`, starts after `next_try_in`.
    Reconnecting { attempt: u32, next_try_in: Duration },
    /// Stopped for good and cleanly (logout, or the client was dropped).
    Disconnected,
    /// Stopped for good because the server refused us (bad token, bad
    /// address); retrying would not help.
    Aborted,
}

impl ConnectionState {
    /// A snake_case name for the state.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected { .. } => "connected",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Disconnected => "disconnected",
            ConnectionState::Aborted => "aborted",
        }
    }

    /// Whether the client has stopped for good.
    pub fn is_final(&self) -> bool {
        matches!(self, ConnectionState::Disconnected | ConnectionState::Aborted)
    }
}

/// Why the connection changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionReason {
    /// The app started the client.
    Login,
    /// A new attempt after a backoff.
    Retry,
    /// The server accepted the login.
    LoginSuccess,
    /// An established connection dropped (closed, reset, silent too long).
    Interrupted(String),
    /// An attempt failed before login (refused, unreachable, handshake).
    ConnectFailed(String),
    /// The server refused the login: its error.
    LoginRefused(protocol::ProtocolError),
    /// The address cannot work (not `ws://`/`wss://`, or the server answered
    /// the handshake with a 4xx status).
    BadAddress(String),
    /// The app logged out.
    LoggedOut,
    /// Every handle of the client was dropped.
    Stopped,
}

impl std::fmt::Display for ConnectionReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionReason::Login => f.write_str("login"),
            ConnectionReason::Retry => f.write_str("retry"),
            ConnectionReason::LoginSuccess => f.write_str("login_success"),
            ConnectionReason::Interrupted(d) => write!(f, "interrupted: {d}"),
            ConnectionReason::ConnectFailed(d) => write!(f, "connect_failed: {d}"),
            ConnectionReason::LoginRefused(e) => write!(f, "login_refused: {e}"),
            ConnectionReason::BadAddress(d) => write!(f, "bad_address: {d}"),
            ConnectionReason::LoggedOut => f.write_str("logged_out"),
            ConnectionReason::Stopped => f.write_str("stopped"),
        }
    }
}

/// Why an invitation failed: the server's reasons, plus the SDK's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The callee stayed offline past the server's grace.
    PeerOffline,
    /// The callee was online but never acknowledged.
    PeerNoResponse,
    /// Nobody answered within the invite ttl.
    Expired,
    /// The caller went offline and did not come back in time.
    CallerOffline,
    /// The SDK's own: the call was gone from the server's list when we
    /// logged in again after a dropped connection.
    EndedWhileDisconnected,
    /// A reason from a newer server.
    Other,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::PeerOffline => "peer_offline",
            FailureReason::PeerNoResponse => "peer_no_response",
            FailureReason::Expired => "expired",
            FailureReason::CallerOffline => "caller_offline",
            FailureReason::EndedWhileDisconnected => "ended_while_disconnected",
            FailureReason::Other => "other",
        }
    }
}

impl From<protocol::FailureReason> for FailureReason {
    fn from(r: protocol::FailureReason) -> Self {
        match r {
            protocol::FailureReason::PeerOffline => FailureReason::PeerOffline,
            protocol::FailureReason::PeerNoResponse => FailureReason::PeerNoResponse,
            protocol::FailureReason::Expired => FailureReason::Expired,
            protocol::FailureReason::CallerOffline => FailureReason::CallerOffline,
            protocol::FailureReason::Other => FailureReason::Other,
        }
    }
}

/// Why a remote invitation stopped ringing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The caller canceled.
    CallerCanceled,
    /// Another device of ours accepted.
    AnsweredElsewhere,
    /// Another device of ours refused.
    RefusedElsewhere,
    /// A reason from a newer server.
    Other,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::CallerCanceled => "caller_canceled",
            CancelReason::AnsweredElsewhere => "answered_elsewhere",
            CancelReason::RefusedElsewhere => "refused_elsewhere",
            CancelReason::Other => "other",
        }
    }
}

impl From<protocol::CancelReason> for CancelReason {
    fn from(r: protocol::CancelReason) -> Self {
        match r {
            protocol::CancelReason::CallerCanceled => CancelReason::CallerCanceled,
            protocol::CancelReason::AnsweredElsewhere => CancelReason::AnsweredElsewhere,
            protocol::CancelReason::RefusedElsewhere => CancelReason::RefusedElsewhere,
            protocol::CancelReason::Other => CancelReason::Other,
        }
    }
}

/// Why an accepted call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupReason {
    /// A participant hung up.
    Hangup,
    /// A participant stayed offline past the server's grace.
    PeerOffline,
    /// The SDK's own: the call was gone from the server's list when we
    /// logged in again after a dropped connection.
    EndedWhileDisconnected,
    /// A reason from a newer server.
    Other,
}

impl HangupReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupReason::Hangup => "hangup",
            HangupReason::PeerOffline => "peer_offline",
            HangupReason::EndedWhileDisconnected => "ended_while_disconnected",
            HangupReason::Other => "other",
        }
    }
}

impl From<protocol::HangupReason> for HangupReason {
    fn from(r: protocol::HangupReason) -> Self {
        match r {
            protocol::HangupReason::Hangup => HangupReason::Hangup,
            protocol::HangupReason::PeerOffline => HangupReason::PeerOffline,
            protocol::HangupReason::Other => HangupReason::Other,
        }
    }
}

/// The client's events as a plain [`Stream`]. It ends after the final
/// `Disconnected` or `Aborted` connection event.
#[derive(Debug)]
pub struct Events {
    /// Fed by the worker, the only producer, so events stay in order.
    receiver: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    pub(crate) fn new(receiver: mpsc::UnboundedReceiver<Event>) -> Self {
        Events { receiver }
    }

    /// The next event; `None` once the client has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.receiver.recv().await
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.receiver.poll_recv(cx)
    }
}
