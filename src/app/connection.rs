//! The connection to the signaling server as the user sees it, always on
//! screen: connected, reconnecting (and when the next try is), or signed
//! out with the reason.

use super::theme;
use crate::protocol::ErrorCode;
use crate::sdk::ConnectionReason;
use iced::widget::{column, container, row, text};

use iced::{Element, Fill};
use std::time::Instant;

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Not signed in; `reason` says why when it was not the user's choice.
    SignedOut { reason: Option<String> },
    /// Signing in to `url`.
    Connecting { url: String },
    /// Signed in to `url`.
    Connected { url: String },
    /// The connection dropped; the SDK tries again at `next_try_at`.
    Reconnecting { url: String, attempt: u32, next_try_at: Instant, reason: String },
}

impl Connection {
    pub fn is_connected(&self) -> bool {
        matches!(self, Connection::Connected { .. })
    }

    /// A snake_case name for the state (the QA timeline's).
    pub fn name(&self) -> &'static str {
        match self {
            Connection::SignedOut { .. } => "signed_out",
            Connection::Connecting { .. } => "connecting",
            Connection::Connected { .. } => "connected",
            Connection::Reconnecting { .. } => "reconnecting",
        }
    }

    /// The status bar's sentence.
    pub fn describe(&self, now: Instant) -> String {
        match self {
            Connection::SignedOut { reason: None } => "Signed out".into(),
            Connection::SignedOut { reason: Some(reason) } => format!("Signed out: {reason}"),
            Connection::Connecting { url } => format!("Connecting to {url}..."),
            Connection::Connected { url } => format!("Connected to {url}"),
            Connection::Reconnecting { attempt, next_try_at, reason, .. } => {
                let wait = next_try_at.saturating_duration_since(now).as_millis().div_ceil(1000);
                if wait == 0 {
                    format!("Reconnecting ({reason}), attempt {attempt}...")
                } else {
                    format!("Reconnecting ({reason}): next try in {wait} s")
                }
            }
        }
    }

    /// The status bar: this sentence, and `note` (the embedded server's) on
    /// the right.
    pub fn view<'a, Message: 'a>(&self, now: Instant, note: Option<String>) -> Element<'a, Message> {
        let state = match self {
            Connection::Connected { .. } => theme::Light::Good,
            Connection::SignedOut { .. } => theme::Light::Bad,
            _ => theme::Light::Waiting,
        };
        let line = row![theme::light(state), text(self.describe(now)).size(theme::SMALL).width(Fill)]
            .spacing(8)
            .align_y(iced::Center);
        let mut bar = column![line].spacing(2);
        if let Some(note) = note {
            bar = bar.push(text(note).size(12));
        }
        container(bar).width(Fill).padding([6, 12]).style(theme::status_bar).into()
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
    use crate::protocol::ProtocolError;
    use std::time::Duration;

    #[test]
    fn reconnecting_says_when_the_next_try_is() {
        let now = Instant::now();
        let state = Connection::Reconnecting {
            url: "ws://x/".into(),
            attempt: 2,
            next_try_at: now + Duration::from_millis(2_100),
            reason: "connection lost".into(),
        };
        assert_eq!(state.describe(now), "Reconnecting (connection lost): next try in 3 s");
    }

    #[test]
    fn refused_tokens_read_plainly() {
        let reason = ConnectionReason::LoginRefused(ProtocolError::new(ErrorCode::InvalidToken, "bad mac"));
        assert_eq!(describe_reason(&reason), "the server refused the token");
    }
}
