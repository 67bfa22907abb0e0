//! The one error type of the SDK: what a call on the [`Client`](super::Client)
//! or an invitation can fail with.
//!
//! Three families: the Agora-style errors raised locally, at once, when a
//! call breaks an invitation's state rules (no round trip); the server's
//! own refusals (its [`ErrorCode`] and message); and the connection's
//! troubles (not connected, lost while in flight, no reply in time). It is
//! `Clone` because it travels inside messages (futures' results, app
//! messages).

use crate::protocol::{ErrorCode, ProtocolError};
use std::time::Duration;

/// Why a request of the SDK failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Agora INVALID_ARGUMENT: a value outside the protocol's limits (an id
    /// that is not printable ASCII, content over 8192 bytes, ...). Nothing
    /// was changed and nothing was sent.
    #[error("INVALID_ARGUMENT: {0}")]
    InvalidArgument(String),
    /// Agora NOT_STARTED: cancel before send, hang up before accept.
    #[error("NOT_STARTED: {0}")]
    NotStarted(String),
    /// Agora ALREADY_END: the invitation or call has already ended (or is ending).
    #[error("ALREADY_END: {0}")]
    AlreadyEnd(String),
    /// Agora ALREADY_ACCEPT: accept twice, or refuse or cancel after accept.
    #[error("ALREADY_ACCEPT: {0}")]
    AlreadyAccept(String),
    /// Agora ALREADY_SENT: send twice, or change an invitation already sent.
    #[error("ALREADY_SENT: {0}")]
    AlreadySent(String),
    /// The server refused the request: its error code and message.
    #[error("server refused: {0}")]
    Server(ProtocolError),
    /// The client is not logged in right now (connecting or reconnecting);
    /// nothing was sent.
    #[error("not connected to the server")]
    NotConnected,
    /// The connection dropped while the request was in flight: the server
    /// may or may not have applied it. Invitations touched by it are reconciled
    /// after the next login (see the SDK docs on reconnecting).
    #[error("the connection was lost while the request was in flight")]
    ConnectionLost,
    /// No reply within the configured request timeout.
    #[error("no reply from the server within {0:?}")]
    Timeout(Duration),
    /// The client has stopped: logged out, aborted, or every handle dropped.
    #[error("the client has stopped")]
    Stopped,
    /// The first connection attempt of [`Client::connect`](super::Client::connect) failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused the login for good (bad or expired token, ...).
    #[error("login refused: {0}")]
    LoginRefused(ProtocolError),
}

impl Error {
    /// A short, stable name for the error: the Agora name for local state
    /// errors, the protocol code for the server's, a snake_case name for the
    /// rest. Scripts (the headless peer's JSON output) match on it.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::NotStarted(_) => "NOT_STARTED",
            Error::AlreadyEnd(_) => "ALREADY_END",
            Error::AlreadyAccept(_) => "ALREADY_ACCEPT",
            Error::AlreadySent(_) => "ALREADY_SENT",
            Error::Server(e) => e.code.as_str(),
            Error::NotConnected => "not_connected",
            Error::ConnectionLost => "connection_lost",
            Error::Timeout(_) => "timeout",
            Error::Stopped => "stopped",
            Error::Connect(_) => "connect_failed",
            Error::LoginRefused(e) => e.code.as_str(),
        }
    }

    /// The server's error code, when the server refused.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(e) | Error::LoginRefused(e) => Some(e.code),
            _ => None,
        }
    }

    /// Whether the error was raised locally, without a round trip, because
    /// the call broke an invitation's rules or the protocol's limits.
    pub fn is_local_rule(&self) -> bool {
        matches!(
            self,
            Error::InvalidArgument(_)
                | Error::NotStarted(_)
                | Error::AlreadyEnd(_)
                | Error::AlreadyAccept(_)
                | Error::AlreadySent(_)
        )
    }
}

/// The protocol's own limit checks (`Request::validate`), run before a
/// request leaves, become local INVALID_ARGUMENT errors.
pub(crate) fn local_limit(e: ProtocolError) -> Error {
    Error::InvalidArgument(e.message)
}
