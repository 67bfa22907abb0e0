//! What the hub hands to the sessions: the id naming a logged-in session,
//! the encoded frames queued for it, and the flag that tells a session its
//! client stopped reading. A leaf module: the hub, the peer registry and
//! the sessions all use it, and it uses none of them, so data flows one way.

use crate::protocol::ServerMessage;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Identifies one logged-in connection.
pub(crate) type SessionId = u64;

/// What a connection's task is asked to write: one encoded message, shared
/// (not copied) between every session it goes to.
pub(crate) type Outbound = Utf8Bytes;

/// Set when a session's outbox overflows: its client is not reading its
/// events, and the session closes the connection the next time it looks.
pub(crate) type Kick = Arc<AtomicBool>;

/// Encodes `message` once, for as many sessions as it goes to.
pub(super) fn encode(message: &ServerMessage) -> Outbound {
    message.to_json().into()
}
