//! Our link to the signaling server: signed out (and why), or a session
//! that is connecting, connected or reconnecting. One enum, so that "a
//! session" and "its connection state" cannot disagree.

use super::phone::Phone;
use super::screen::sign_in::Credentials;
use softphone_core::protocol::ErrorCode;
use softphone_core::sdk::ConnectionReason;
use std::sync::Arc;
use std::time::Instant;

/// Where we stand with the server.
pub enum Link {
    /// Not signed in; `reason` says why when it was not the user's choice.
    SignedOut { reason: Option<String> },
    /// Signed in, or signing in.
    Up { session: Session, status: Status },
}

/// The connection of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Signing in.
    Connecting,
    Connected,
    /// The connection dropped; the SDK tries again at `next_try_at`.
    Reconnecting {
        attempt: u32,
        next_try_at: Instant,
        reason: String,
    },
}

/// A session's login token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    /// The token the session logged in with or last renewed to.
    pub current: String,
    /// Where a fresh token comes from when the server says ours is
    /// expiring; `None`: the session ends at expiry, saying why.
    pub source: Option<softphone_core::token::source::TokenSource>,
}

/// A signed-in (or signing-in) SDK client.
pub struct Session {
    /// Tags this session's events; a new sign-in gets a new number.
    pub number: u64,
    pub phone: Arc<dyn Phone>,
    pub credentials: Credentials,
    /// The URL actually used (the default one filled in); for several
    /// nodes, their comma list, since the SDK does not say which one of
    /// them it is connected to.
    pub url: String,
    /// Whether it has been connected once: before that, a failed attempt
    /// means "cannot sign in" rather than "reconnecting".
    pub ever_connected: bool,
    /// The session's token and where a fresh one comes from (boxed: a
    /// session is the large variant of [`Link`]).
    pub tokens: Box<SessionToken>,
    /// Ends the event task when the session goes (an iced task handle
    /// that aborts on drop).
    pub(super) _events: Option<iced::task::Handle>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("number", &self.number)
            .field("peer_id", &self.credentials.peer_id)
            .field("url", &self.url)
            .field("ever_connected", &self.ever_connected)
            .finish()
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::SignedOut { reason } => f.debug_struct("SignedOut").field("reason", reason).finish(),
            Link::Up { session, status } => {
                f.debug_struct("Up").field("session", session).field("status", status).finish()
            }
        }
    }
}

impl Link {
    /// The session, when signed in.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Link::Up { session, .. } => Some(session),
            Link::SignedOut { .. } => None,
        }
    }

    pub fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Link::Up { session, .. } => Some(session),
            Link::SignedOut { .. } => None,
        }
    }

    pub fn is_connected(&self) -> bool {
        matches!(self, Link::Up { status: Status::Connected, .. })
    }

    /// A snake_case name for the state (the QA timeline's).
    pub fn name(&self) -> &'static str {
        match self {
            Link::SignedOut { .. } => "signed_out",
            Link::Up { status: Status::Connecting, .. } => "connecting",
            Link::Up { status: Status::Connected, .. } => "connected",
            Link::Up { status: Status::Reconnecting { .. }, .. } => "reconnecting",
        }
    }

    /// The status bar's sentence.
    pub fn describe(&self, now: Instant) -> String {
        match self {
            Link::SignedOut { reason: None } => "Signed out".into(),
            Link::SignedOut { reason: Some(reason) } => format!("Signed out: {reason}"),
            Link::Up { session, status } => status.describe(&session.url, now),
        }
    }
}

impl Status {
    /// The status bar's sentence for a session with the server at `url`.
    pub fn describe(&self, url: &str, now: Instant) -> String {
        match self {
            Status::Connecting => format!("Connecting to {url}..."),
            Status::Connected => format!("Connected to {url}"),
            Status::Reconnecting { attempt, next_try_at, reason } => {
                let wait = next_try_at.saturating_duration_since(now).as_millis().div_ceil(1000);
                if wait == 0 {
                    format!("Reconnecting ({reason}), attempt {attempt}...")
                } else {
                    format!("Reconnecting ({reason}): next try in {wait} s")
                }
            }
        }
    }
}

/// A sentence for why the connection changed, for people.
pub fn describe_reason(reason: &ConnectionReason) -> String {
    match reason {
        ConnectionReason::LoginRefused(e) => match e.code {
            ErrorCode::InvalidToken => "the server refused the token".into(),
            ErrorCode::TokenExpired => "the token has expired".into(),
            _ => format!("the server refused the sign-in ({})", e.message),
        },
        ConnectionReason::ConnectFailed(why) => format!("server unreachable ({why})"),
        ConnectionReason::BadAddress(why) => format!("bad server address ({why})"),
        ConnectionReason::Interrupted(why) => format!("connection lost ({why})"),
        ConnectionReason::LoggedOut => "you signed out".into(),
        ConnectionReason::Stopped => "the connection was closed".into(),
        ConnectionReason::Login | ConnectionReason::Retry | ConnectionReason::LoginSuccess => {
            "connecting".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softphone_core::protocol::ProtocolError;
    use std::time::Duration;

    #[test]
    fn reconnecting_says_when_the_next_try_is() {
        let now = Instant::now();
        let status = Status::Reconnecting {
            attempt: 2,
            next_try_at: now + Duration::from_millis(2_100),
            reason: "connection lost".into(),
        };
        assert_eq!(status.describe("ws://x/", now), "Reconnecting (connection lost): next try in 3 s");
    }

    #[test]
    fn refused_tokens_read_plainly() {
        let reason = ConnectionReason::LoginRefused(ProtocolError::new(ErrorCode::InvalidToken, "bad mac"));
        assert_eq!(describe_reason(&reason), "the server refused the token");
    }
}
