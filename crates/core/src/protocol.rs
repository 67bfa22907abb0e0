//! The wire protocol, version 1: every message a client sends or the server
//! pushes, the limits on identifiers, and the error codes.
//!
//! This module does no I/O (it only says how connections are configured). The server decodes [`Request`]s with
//! [`decode_request`] and encodes [`ServerMessage`]s; the SDK, the headless
//! peer and the load generator do the reverse with the same types, so both
//! sides agree by construction. `docs/protocol.md` is the prose version.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

mod decode;
pub mod relay;
pub use decode::{DecodeError, decode_request};
pub use relay::MediaInfo;

/// Largest message the server accepts, after reassembling fragments.
pub const MAX_MESSAGE_BYTES: usize = 65_536;
/// Longest `peer_id` (and `device`, and `call_id`), in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Longest `content` or `response`, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 8_192;
/// Longest `channel_id`, in bytes of UTF-8.
pub const MAX_CHANNEL_BYTES: usize = 64;
/// Most peers one presence request may name.
pub const MAX_PEERS_PER_REQUEST: usize = 512;
/// Most presence subscriptions one session may hold.
pub const MAX_SUBSCRIPTIONS: usize = 512;
/// Most calls one caller may have ringing at the same callee at once (v1.1).
pub const MAX_RINGING_PER_CALLEE: usize = 3;

/// The tungstenite settings for both ends of a connection. Its defaults
/// (128 KiB read and write buffers, the read buffer zeroed on every read,
/// 64 MiB messages) are sized for bulk throughput; signaling means many
/// mostly idle connections exchanging frames of a few hundred bytes, so the
/// buffers are small and messages are capped at the protocol's 64 KiB
/// (tungstenite then fails the read and the server closes with 1009).
pub fn websocket_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    let mut config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    config.read_buffer_size = 1024;
    config.write_buffer_size = 0;
    config.max_write_buffer_size = 1024 * 1024;
    config.max_message_size = Some(MAX_MESSAGE_BYTES);
    config.max_frame_size = Some(MAX_MESSAGE_BYTES);
    config
}

/// A client's request id: any JSON integer, echoed back verbatim.
pub type Req = serde_json::Number;

/// A frame as a client sends it: the optional `req` beside the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientFrame {
    /// Echoed in the server's direct reply; absent for `received`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req: Option<Req>,
    /// The request itself; its variant gives the frame's `type`.
    #[serde(flatten)]
    pub request: Request,
}

/// Everything a client may send. Optional text fields default to empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Opens the session; must come first on a connection.
    Login {
        peer_id: String,
        #[serde(default)]
        token: String,
        #[serde(default)]
        device: String,
    },
    /// Ends the session: `ok`, then the server closes with 1000.
    Logout,
    /// Places a call (Agora: sendLocalInvitation).
    Invite {
        call_id: String,
        callee_id: String,
        #[serde(default)]
        content: String,
        #[serde(default)]
        channel_id: String,
        /// Additive: the caller's X25519 public key (base64url, 32 bytes),
        /// passed to the callee in `invitation`; the server never uses it.
        /// A v1.1 caller sends it; a v1.2 caller sends `media_commit` instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_key: Option<String>,
        /// v1.2: the caller's commitment to its key (SHA-256, base64url, 32
        /// bytes), passed to the callee in `invitation`; the key itself
        /// follows in `media_reveal` once the callee has chosen its own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_commit: Option<String>,
    },
    /// v1.2: the caller reveals the key it committed to, once it has the
    /// callee's; passed on to the callee's sessions, never checked here.
    MediaReveal { call_id: String, media_key: String },
    /// Withdraws a ringing call (Agora: cancelLocalInvitation).
    Cancel { call_id: String },
    /// The callee's automatic acknowledgement of an `invitation`; no reply.
    Received { call_id: String },
    /// Answers a ringing call (Agora: acceptRemoteInvitation).
    Accept {
        call_id: String,
        #[serde(default)]
        response: String,
        /// Additive: the callee's X25519 public key (base64url, 32 bytes),
        /// passed to the caller in `accepted`; the server never uses it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_key: Option<String>,
    },
    /// Declines a ringing call (Agora: refuseRemoteInvitation).
    Refuse {
        call_id: String,
        #[serde(default)]
        response: String,
    },
    /// Ends an accepted call (beyond Agora).
    Hangup { call_id: String },
    /// Asks who of `peer_ids` is online.
    QueryPresence { peer_ids: Vec<String> },
    /// Asks for `presence` events on every change of these peers.
    SubscribePresence { peer_ids: Vec<String> },
    /// Stops those events.
    UnsubscribePresence { peer_ids: Vec<String> },
    /// Additive (v1.2): a fresh token for the session's own peer, before
    /// the one it logged in with expires (Agora: renewToken).
    RenewToken { token: String },
}

/// Every `type` a client may send, for telling `unknown_type` from `bad_request`.
pub const REQUEST_TYPES: &[&str] = &[
    "login",
    "logout",
    "invite",
    "cancel",
    "received",
    "accept",
    "refuse",
    "hangup",
    "query_presence",
    "subscribe_presence",
    "unsubscribe_presence",
    "renew_token",
    "media_reveal",
];

impl Request {
    /// Checks every field against the limits of the protocol, naming the
    /// first one that breaks them.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            Request::Login { peer_id, device, .. } => {
                check_id("peer_id", peer_id)?;
                check_len("device", device, MAX_ID_BYTES)
            }
            Request::Logout => Ok(()),
            Request::RenewToken { token } => check_len("token", token, MAX_TEXT_BYTES),
            Request::Invite { call_id, callee_id, content, channel_id, media_key, media_commit } => {
                check_id("call_id", call_id)?;
                check_id("callee_id", callee_id)?;
                check_len("content", content, MAX_TEXT_BYTES)?;
                check_len("channel_id", channel_id, MAX_CHANNEL_BYTES)?;
                relay::check_media_key(media_key)?;
                relay::check_media_commit(media_commit, media_key)
            }
            Request::MediaReveal { call_id, media_key } => {
                check_id("call_id", call_id)?;
                relay::check_media_key(&Some(media_key.clone()))
            }
            Request::Cancel { call_id } | Request::Received { call_id } | Request::Hangup { call_id } => {
                check_id("call_id", call_id)
            }
            Request::Accept { call_id, response, media_key } => {
                check_id("call_id", call_id)?;
                check_len("response", response, MAX_TEXT_BYTES)?;
                relay::check_media_key(media_key)
            }
            Request::Refuse { call_id, response } => {
                check_id("call_id", call_id)?;
                check_len("response", response, MAX_TEXT_BYTES)
            }
            Request::QueryPresence { peer_ids }
            | Request::SubscribePresence { peer_ids }
            | Request::UnsubscribePresence { peer_ids } => {
                if peer_ids.len() > MAX_PEERS_PER_REQUEST {
                    return Err(ProtocolError::invalid_argument(format!(
                        "peer_ids names {} peers; at most {MAX_PEERS_PER_REQUEST} per request",
                        peer_ids.len()
                    )));
                }
                peer_ids.iter().try_for_each(|id| check_id("peer_ids", id))
            }
        }
    }
}

/// Whether `id` is a valid `peer_id` or `call_id`: 1 to 64 bytes of printable
/// ASCII (0x21 to 0x7E).
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_BYTES).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn check_id(field: &str, value: &str) -> Result<(), ProtocolError> {
    if is_valid_id(value) {
        Ok(())
    } else {
        Err(ProtocolError::invalid_argument(format!(
            "{field} must be 1 to {MAX_ID_BYTES} bytes of printable ASCII (0x21-0x7E)"
        )))
    }
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() <= max {
        Ok(())
    } else {
        Err(ProtocolError::invalid_argument(format!("{field} is {} bytes; at most {max}", value.len())))
    }
}

/// Everything the server sends: direct replies (`ok`, `error`) and events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Success; the extra fields depend on the request.
    Ok {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<Req>,
        #[serde(flatten)]
        result: OkResult,
    },
    /// Failure of a request, or of a frame that could not be read.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<Req>,
        code: ErrorCode,
        message: String,
    },
    /// To the callee: a call is ringing.
    Invitation {
        call_id: String,
        caller_id: String,
        content: String,
        channel_id: String,
        expires_in_ms: u64,
        /// Additive: the caller's `media_key` from its invite, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_key: Option<String>,
        /// v1.2: the caller's `media_commit` from its invite, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_commit: Option<String>,
    },
    /// v1.2, to the callee's sessions: the caller's key, as its
    /// `media_reveal` sent it (the callee checks it against the commitment).
    MediaReveal { call_id: String, media_key: String },
    /// To the caller: a callee session acknowledged the invitation.
    ReceivedByPeer { call_id: String },
    /// To the caller: the callee accepted, from the device named.
    Accepted {
        call_id: String,
        response: String,
        #[serde(default)]
        device: String,
        /// Additive: the callee's `media_key` from its accept, when it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_key: Option<String>,
        /// Additive: the caller's way into the media relay; absent when the
        /// server runs without one (`--no-media`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media: Option<MediaInfo>,
    },
    /// To the caller: the callee refused.
    Refused { call_id: String, response: String },
    /// To the callee: the call stopped ringing for this device.
    Canceled { call_id: String, reason: CancelReason },
    /// To either side: the invitation failed.
    Failure { call_id: String, reason: FailureReason },
    /// To either side: an accepted call ended.
    HungUp { call_id: String, reason: HangupReason, by: String },
    /// A subscribed peer came online or went offline.
    Presence { peer_id: String, online: bool },
    /// Additive (v1.2): the session's token expires in `expires_in_ms`;
    /// without a `renew_token` by then the session is closed with
    /// [`CLOSE_TOKEN_EXPIRED`] (Agora: onTokenPrivilegeWillExpire).
    TokenExpiring { expires_in_ms: u64 },
}

/// The close code of a session whose token expired unrenewed (v1.2), with
/// the reason `token expired`: in the range RFC 6455 leaves to applications.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;

impl ServerMessage {
    /// The JSON text of this message; the server encodes each event once and
    /// sends the same bytes to every session.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// The result fields of an `ok`, by request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OkResult {
    /// Reply to `login`.
    Login { session: String, calls: Vec<LiveCall> },
    /// Reply to `query_presence` and `subscribe_presence`.
    Presence { online: BTreeMap<String, bool> },
    /// Additive: reply to `accept` when the server runs a media relay: the
    /// answering callee's way into it.
    Media { media: MediaInfo },
    /// Every other reply carries nothing more.
    Empty {},
}

/// One live call in the `calls` list of the login reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCall {
    pub call_id: String,
    pub role: Role,
    pub state: LiveState,
    /// The other party.
    pub peer_id: String,
}

/// Which side of a call a peer is on; in voice it also decides which
/// direction key seals and which opens (`voice::crypto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Caller,
    Callee,
}

/// The state of a live call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    Ringing,
    Accepted,
}

/// Why a callee's invitation was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    CallerCanceled,
    AnsweredElsewhere,
    RefusedElsewhere,
    /// A reason from a newer server; the call has ended all the same.
    #[serde(other)]
    Other,
}

/// Why an invitation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    PeerOffline,
    PeerNoResponse,
    Expired,
    CallerOffline,
    /// A reason from a newer server; the call has ended all the same.
    #[serde(other)]
    Other,
}

/// Why an accepted call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    Hangup,
    PeerOffline,
    /// A reason from a newer server; the call has ended all the same.
    #[serde(other)]
    Other,
}

macro_rules! error_codes {
    ($($variant:ident => $text:literal),* $(,)?) => {
        /// Every error code of the protocol.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $($variant,)*
            /// A code from a newer server.
            #[serde(other)]
            Other,
        }

        impl ErrorCode {
            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Other => "other",
                }
            }
        }
    };
}

error_codes! {
    BadRequest => "bad_request",
    UnknownType => "unknown_type",
    NotLoggedIn => "not_logged_in",
    AlreadyLoggedIn => "already_logged_in",
    InvalidToken => "invalid_token",
    TokenExpired => "token_expired",
    InvalidArgument => "invalid_argument",
    DuplicateCallId => "duplicate_call_id",
    NotFound => "not_found",
    AlreadyAccepted => "already_accepted",
    AlreadyEnded => "already_ended",
    RateLimited => "rate_limited",
    TooManyCalls => "too_many_calls",
    TooManySubscriptions => "too_many_subscriptions",
    Internal => "internal",
    // v1.1: a login beyond the sessions one peer may have at once.
    TooManySessions => "too_many_sessions",
    // v1.1: a clustered node that cannot reach its shared store for the moment: try again.
    Unavailable => "unavailable",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed protocol error: the code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError { code, message: message.into() }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// This error as the reply to request `req`.
    pub fn into_message(self, req: Option<Req>) -> ServerMessage {
        ServerMessage::Error { req, code: self.code, message: self.message }
    }
}

/// Reads the `req` of a JSON value when it is an integer.
pub(crate) fn integer_req(value: &Value) -> Option<Req> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.clone()),
        _ => None,
    }
}
