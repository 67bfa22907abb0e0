//! When a session's token runs out (protocol v1.2, additive): the session
//! is told `token_expiring` [`WARNING`] before its token's expiry (at once
//! when less is left), may send `renew_token` with a fresh token for the
//! same peer, and is closed with [`CLOSE_TOKEN_EXPIRED`] at expiry
//! otherwise. Only a server with a secret arms it: in open mode tokens
//! never expire.

use crate::protocol::{CLOSE_TOKEN_EXPIRED, ErrorCode, ProtocolError, ServerMessage};
use crate::token::{self, TokenError};
use std::pin::Pin;
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How long before its token's expiry a session is told `token_expiring`:
/// time enough for a client to fetch a fresh token and renew.
pub(super) const WARNING: Duration = Duration::from_secs(30);

/// A token checked for `peer_id` now: its expiry in Unix seconds, or the
/// protocol error a login or a renewal gets.
pub(super) fn check(secret: &[u8], peer_id: &str, token: &str) -> Result<u64, ProtocolError> {
    token::expiry_of(secret, peer_id, token, crate::clock::unix_secs()).map_err(|e| match e {
        TokenError::Invalid => ProtocolError::new(ErrorCode::InvalidToken, e.to_string()),
        TokenError::Expired => ProtocolError::new(ErrorCode::TokenExpired, e.to_string()),
    })
}

/// What the clock says when its timer fires.
pub(super) enum Tick {
    /// Tell the session: this message (`token_expiring`).
    Warn(ServerMessage),
    /// The token has expired: close the session with this frame.
    Expired(CloseFrame),
}

/// The token clock of one logged-in session.
pub(super) struct TokenClock {
    /// The peer the session logged in as: a renewal must be a token for it.
    peer_id: Box<str>,
    /// When the current token expires, on the server's monotonic clock.
    expires: Instant,
    /// Whether `token_expiring` was sent for the current token.
    warned: bool,
    /// Fires at the warning, then at the expiry. Boxed: a session with no
    /// clock (open mode) pays only for the `None`.
    timer: Pin<Box<Sleep>>,
}

/// The instant a token valid until `expiry_unix_secs` runs out, measured
/// from the wall clock now (tokens carry wall-clock seconds).
fn deadline_of(expiry_unix_secs: u64) -> Instant {
    let left_ms = expiry_unix_secs.saturating_mul(1000).saturating_sub(crate::clock::unix_millis());
    Instant::now() + Duration::from_millis(left_ms)
}

impl TokenClock {
    /// The clock of a session that logged in as `peer_id` with a token
    /// valid until `expiry_unix_secs`.
    pub(super) fn start(peer_id: &str, expiry_unix_secs: u64) -> TokenClock {
        let expires = deadline_of(expiry_unix_secs);
        let timer = Box::pin(tokio::time::sleep_until(warn_at(expires)));
        TokenClock { peer_id: peer_id.into(), expires, warned: false, timer }
    }

    /// Takes `token` in place of the current one if it is valid for this
    /// session's peer; otherwise the error, and nothing changes.
    pub(super) fn renew(&mut self, secret: &[u8], token: &str) -> Result<(), ProtocolError> {
        let expiry = check(secret, &self.peer_id, token)?;
        let before = self.expires;
        self.expires = deadline_of(expiry);
        // Warned again only for a later expiry: renewing with the same
        // token must not bring a warning back at once, round and round.
        self.warned &= self.expires <= before;
        let next = if self.warned { self.expires } else { warn_at(self.expires) };
        self.timer.as_mut().reset(next);
        Ok(())
    }

    /// Waits for the timer: first the warning, then the expiry.
    pub(super) async fn tick(&mut self) -> Tick {
        self.timer.as_mut().await;
        if self.warned {
            return Tick::Expired(CloseFrame {
                code: CloseCode::from(CLOSE_TOKEN_EXPIRED),
                reason: "token expired".into(),
            });
        }
        self.warned = true;
        self.timer.as_mut().reset(self.expires);
        let left = self.expires.saturating_duration_since(Instant::now());
        Tick::Warn(ServerMessage::TokenExpiring { expires_in_ms: left.as_millis() as u64 })
    }
}

/// When to warn of an expiry at `expires`: [`WARNING`] before it, or now.
fn warn_at(expires: Instant) -> Instant {
    expires.checked_sub(WARNING).map_or_else(Instant::now, |at| at.max(Instant::now()))
}

/// Ticks `clock` when there is one; never completes without one.
pub(super) async fn tick(clock: &mut Option<TokenClock>) -> Tick {
    match clock {
        Some(clock) => clock.tick().await,
        None => std::future::pending().await,
    }
}
