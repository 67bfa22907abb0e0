//! The two invitation objects of Agora's model and their states:
//! [`LocalInvitation`] (the caller's) and [`RemoteInvitation`] (the
//! callee's), plus the entries behind them.
//!
//! A handle is a cheap clone pointing at one entry; the entry is shared
//! with the client's call table, which the worker updates as replies and
//! events arrive, so getters always read the current state. The rules of
//! each state (what may be sent when) live in the call table (`table.rs`).
//!
//! An entry keeps one phase enum per side ([`LocalPhase`], [`RemotePhase`])
//! that carries what that phase needs (the login an invite went out in, a
//! cancel or hang-up in flight); the public Agora states are derived from
//! it, so no flag can disagree with a state.

use super::{Client, Error, Reply};
use crate::protocol::{MAX_CHANNEL_BYTES, MAX_TEXT_BYTES};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The caller's invitation, as Agora's `LocalInvitation.getState()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalInvitationState {
    /// Created, not sent yet (or a send the server refused).
    Idle,
    /// The server has the invitation.
    SentToRemote,
    /// A callee device acknowledged it.
    ReceivedByRemote,
    /// The callee accepted: the call is live until hung up.
    AcceptedByRemote,
    /// The callee refused.
    RefusedByRemote,
    /// We canceled it.
    Canceled,
    /// It failed (offline, no response, expired, or ended while we were disconnected).
    Failure,
}

impl LocalInvitationState {
    /// The Agora name: `SENT_TO_REMOTE`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            LocalInvitationState::Idle => "IDLE",
            LocalInvitationState::SentToRemote => "SENT_TO_REMOTE",
            LocalInvitationState::ReceivedByRemote => "RECEIVED_BY_REMOTE",
            LocalInvitationState::AcceptedByRemote => "ACCEPTED_BY_REMOTE",
            LocalInvitationState::RefusedByRemote => "REFUSED_BY_REMOTE",
            LocalInvitationState::Canceled => "CANCELED",
            LocalInvitationState::Failure => "FAILURE",
        }
    }

    /// Whether the invitation's lifecycle is over (an accepted call may still be live).
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            LocalInvitationState::Idle
                | LocalInvitationState::SentToRemote
                | LocalInvitationState::ReceivedByRemote
        )
    }
}

/// The callee's invitation, as Agora's `RemoteInvitation.getState()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteInvitationState {
    /// Never observed: a remote invitation starts as received.
    Idle,
    /// Ringing here.
    InvitationReceived,
    /// Our accept is on its way to the server.
    AcceptSentToLocal,
    /// Our refuse reached the server.
    Refused,
    /// Our accept reached the server: the call is live until hung up.
    Accepted,
    /// It stopped ringing: the caller canceled, or another device answered.
    Canceled,
    /// It failed (expired, caller offline, or ended while we were disconnected).
    Failure,
}

impl RemoteInvitationState {
    /// The Agora name: `INVITATION_RECEIVED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteInvitationState::Idle => "IDLE",
            RemoteInvitationState::InvitationReceived => "INVITATION_RECEIVED",
            RemoteInvitationState::AcceptSentToLocal => "ACCEPT_SENT_TO_LOCAL",
            RemoteInvitationState::Refused => "REFUSED",
            RemoteInvitationState::Accepted => "ACCEPTED",
            RemoteInvitationState::Canceled => "CANCELED",
            RemoteInvitationState::Failure => "FAILURE",
        }
    }

    /// Whether the invitation's lifecycle is over (an accepted call may still be live).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RemoteInvitationState::Refused
                | RemoteInvitationState::Accepted
                | RemoteInvitationState::Canceled
                | RemoteInvitationState::Failure
        )
    }
}

/// An accepted call (beyond Agora, whose lifecycle stops at accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallPhase {
    /// Accepted and not hung up.
    Live,
    /// Our hangup is in flight; the call is live until its `ok`.
    HangingUp,
    /// Hung up, by either side, or lost.
    Ended,
}

impl CallPhase {
    /// Accepted and not yet ended (a hangup may be in flight).
    pub fn is_live(self) -> bool {
        matches!(self, CallPhase::Live | CallPhase::HangingUp)
    }
}

/// How far a sent invitation got before anyone answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Our invite is on the wire, issued during login number `login` (see
    /// `Table::reconcile_after_login`); Agora still calls this `IDLE`.
    InFlight { login: u64 },
    /// The server has it (`SENT_TO_REMOTE`).
    Sent,
    /// A callee device acknowledged it (`RECEIVED_BY_REMOTE`).
    Received,
}

/// Where the caller's side of a call stands; moved only by the call table.
/// The public [`LocalInvitationState`] is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalPhase {
    /// Created and not sent (or a send the server refused): content and
    /// channel may still change.
    Unsent,
    /// Sent and unanswered; `canceling` while our cancel is in flight.
    Ringing { delivery: Delivery, canceling: bool },
    /// The callee accepted; what became of the call.
    Accepted(CallPhase),
    /// The callee refused.
    Refused,
    /// Our cancel reached the server.
    Canceled,
    /// It failed (offline, no response, expired, or ended while we were disconnected).
    Failed,
}

impl LocalPhase {
    /// The Agora state this phase shows as.
    pub fn state(self) -> LocalInvitationState {
        match self {
            LocalPhase::Unsent | LocalPhase::Ringing { delivery: Delivery::InFlight { .. }, .. } => {
                LocalInvitationState::Idle
            }
            LocalPhase::Ringing { delivery: Delivery::Sent, .. } => LocalInvitationState::SentToRemote,
            LocalPhase::Ringing { delivery: Delivery::Received, .. } => {
                LocalInvitationState::ReceivedByRemote
            }
            LocalPhase::Accepted(_) => LocalInvitationState::AcceptedByRemote,
            LocalPhase::Refused => LocalInvitationState::RefusedByRemote,
            LocalPhase::Canceled => LocalInvitationState::Canceled,
            LocalPhase::Failed => LocalInvitationState::Failure,
        }
    }

    /// The call after accept, if accepted.
    pub fn call(self) -> Option<CallPhase> {
        match self {
            LocalPhase::Accepted(call) => Some(call),
            _ => None,
        }
    }
}

/// Where the callee's side of a call stands; moved only by the call table.
/// The public [`RemoteInvitationState`] is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemotePhase {
    /// Ringing here, unanswered.
    Ringing,
    /// Our accept is on its way (`ACCEPT_SENT_TO_LOCAL`).
    Accepting,
    /// Our refuse is on its way (Agora still shows `INVITATION_RECEIVED`).
    Refusing,
    /// Our accept reached the server; what became of the call.
    Accepted(CallPhase),
    /// Our refuse reached the server.
    Refused,
    /// It stopped ringing: the caller canceled, or another device answered.
    Canceled,
    /// It failed (expired, caller offline, or ended while we were disconnected).
    Failed,
}

impl RemotePhase {
    /// The Agora state this phase shows as.
    pub fn state(self) -> RemoteInvitationState {
        match self {
            RemotePhase::Ringing | RemotePhase::Refusing => RemoteInvitationState::InvitationReceived,
            RemotePhase::Accepting => RemoteInvitationState::AcceptSentToLocal,
            RemotePhase::Accepted(_) => RemoteInvitationState::Accepted,
            RemotePhase::Refused => RemoteInvitationState::Refused,
            RemotePhase::Canceled => RemoteInvitationState::Canceled,
            RemotePhase::Failed => RemoteInvitationState::Failure,
        }
    }

    /// The call after accept, if accepted.
    pub fn call(self) -> Option<CallPhase> {
        match self {
            RemotePhase::Accepted(call) => Some(call),
            _ => None,
        }
    }

    /// Still ringing here, whether or not an answer is in flight.
    pub fn is_ringing(self) -> bool {
        matches!(self, RemotePhase::Ringing | RemotePhase::Accepting | RemotePhase::Refusing)
    }
}

/// The caller's side of one call.
#[derive(Debug)]
pub(crate) struct LocalEntry {
    /// Who we call.
    pub callee_id: String,
    /// Free text sent with the invitation (Agora: setContent).
    pub content: String,
    /// The media channel the call will use (Agora: setChannelId).
    pub channel_id: String,
    /// The callee's response, once accepted or refused.
    pub response: String,
    /// Where it stands.
    pub phase: LocalPhase,
    /// Public keys and relay credential for built-in voice (`manual_voice_keys.rs`, `voice_handshake.rs`).
    pub media: super::voice_handshake::MediaSlots,
}

/// The callee's side of one call.
#[derive(Debug)]
pub(crate) struct RemoteEntry {
    /// Who calls us.
    pub caller_id: String,
    /// The caller's text, as sent.
    pub content: String,
    /// The caller's media channel, as sent.
    pub channel_id: String,
    /// Our response, sent with accept or refuse (Agora: setResponse).
    pub response: String,
    /// Where it stands.
    pub phase: RemotePhase,
    /// Public keys and relay credential for built-in voice (`manual_voice_keys.rs`, `voice_handshake.rs`).
    pub media: super::voice_handshake::MediaSlots,
    /// The login during which the invitation arrived. One that arrived
    /// after a login's reply (in the same read as the reply, say) is newer
    /// than that reply's `calls` list and is not reconciled against it.
    pub arrived_in: u64,
}

/// An entry shared between the call table and the handles that point at it.
pub(crate) type SharedEntry<T> = Arc<Mutex<T>>;

/// Locks an entry. A panic while holding it cannot leave an entry half
/// written in a way worth refusing service for, so poisoning is ignored.
pub(crate) fn lock<T>(entry: &Mutex<T>) -> MutexGuard<'_, T> {
    entry.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks an Agora-style text field against its limit.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.len() > max {
        return Err(Error::InvalidArgument(format!("{field} is {} bytes; at most {max}", value.len())));
    }
    Ok(())
}

/// A call we place (Agora's `LocalInvitation`), made by
/// [`Client::create_local_invitation`].
#[derive(Clone)]
pub struct LocalInvitation {
    /// The call id, a UUID chosen here.
    pub(crate) call_id: Arc<str>,
    /// Shared with the call table, which keeps it current.
    pub(crate) entry: SharedEntry<LocalEntry>,
    /// The client it belongs to, for the convenience methods.
    pub(crate) client: Client,
}

impl LocalInvitation {
    /// The call id, unique server-wide.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// getCalleeId.
    pub fn callee_id(&self) -> String {
        lock(&self.entry).callee_id.clone()
    }

    /// getContent.
    pub fn content(&self) -> String {
        lock(&self.entry).content.clone()
    }

    /// setContent: at most 8192 bytes, before the invitation is sent.
    pub fn set_content(&self, content: impl Into<String>) -> Result<(), Error> {
        let content = content.into();
        check_text("content", &content, MAX_TEXT_BYTES)?;
        let mut entry = lock(&self.entry);
        Self::check_unsent(&entry)?;
        entry.content = content;
        Ok(())
    }

    /// getChannelId.
    pub fn channel_id(&self) -> String {
        lock(&self.entry).channel_id.clone()
    }

    /// setChannelId: at most 64 bytes, before the invitation is sent.
    pub fn set_channel_id(&self, channel_id: impl Into<String>) -> Result<(), Error> {
        let channel_id = channel_id.into();
        check_text("channel_id", &channel_id, MAX_CHANNEL_BYTES)?;
        let mut entry = lock(&self.entry);
        Self::check_unsent(&entry)?;
        entry.channel_id = channel_id;
        Ok(())
    }

    fn check_unsent(entry: &LocalEntry) -> Result<(), Error> {
        if entry.phase != LocalPhase::Unsent {
            return Err(Error::AlreadySent("the invitation has been sent; it can no longer change".into()));
        }
        Ok(())
    }

    /// getResponse: the callee's response, once accepted or refused.
    pub fn response(&self) -> String {
        lock(&self.entry).response.clone()
    }

    /// getState.
    pub fn state(&self) -> LocalInvitationState {
        lock(&self.entry).phase.state()
    }

    /// Whether the call is accepted and not yet hung up.
    pub fn is_call_live(&self) -> bool {
        lock(&self.entry).phase.call().is_some_and(CallPhase::is_live)
    }

    /// [`Client::send_local_invitation`] on this invitation.
    pub fn send(&self) -> Reply<()> {
        self.client.send_local_invitation(self)
    }

    /// [`Client::cancel_local_invitation`] on this invitation.
    pub fn cancel(&self) -> Reply<()> {
        self.client.cancel_local_invitation(self)
    }

    /// [`Client::hang_up`] on this invitation's call.
    pub fn hang_up(&self) -> Reply<()> {
        self.client.hang_up(&self.call_id)
    }
}

impl fmt::Debug for LocalInvitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = lock(&self.entry);
        f.debug_struct("LocalInvitation")
            .field("call_id", &self.call_id)
            .field("callee_id", &entry.callee_id)
            .field("state", &entry.phase.state())
            .finish()
    }
}

/// A call someone places to us (Agora's `RemoteInvitation`), looked up
/// with [`Client::remote_invitation`] after a `RemoteInvitationReceived` event.
#[derive(Clone)]
pub struct RemoteInvitation {
    /// The call id the caller chose.
    pub(crate) call_id: Arc<str>,
    /// Shared with the call table, which keeps it current.
    pub(crate) entry: SharedEntry<RemoteEntry>,
    /// The client it belongs to, for the convenience methods.
    pub(crate) client: Client,
}

impl RemoteInvitation {
    /// The call id the caller chose.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// getCallerId.
    pub fn caller_id(&self) -> String {
        lock(&self.entry).caller_id.clone()
    }

    /// getContent.
    pub fn content(&self) -> String {
        lock(&self.entry).content.clone()
    }

    /// getChannelId.
    pub fn channel_id(&self) -> String {
        lock(&self.entry).channel_id.clone()
    }

    /// getResponse: what accept or refuse will send (or sent).
    pub fn response(&self) -> String {
        lock(&self.entry).response.clone()
    }

    /// setResponse: at most 8192 bytes, before answering.
    pub fn set_response(&self, response: impl Into<String>) -> Result<(), Error> {
        let response = response.into();
        check_text("response", &response, MAX_TEXT_BYTES)?;
        let mut entry = lock(&self.entry);
        match entry.phase {
            RemotePhase::Accepting | RemotePhase::Accepted(_) => {
                Err(Error::AlreadyAccept("the invitation has been accepted".into()))
            }
            RemotePhase::Ringing => {
                entry.response = response;
                Ok(())
            }
            _ => Err(Error::AlreadyEnd("the invitation has ended".into())),
        }
    }

    /// getState.
    pub fn state(&self) -> RemoteInvitationState {
        lock(&self.entry).phase.state()
    }

    /// Whether the call is accepted and not yet hung up.
    pub fn is_call_live(&self) -> bool {
        lock(&self.entry).phase.call().is_some_and(CallPhase::is_live)
    }

    /// [`Client::accept_remote_invitation`] on this invitation.
    pub fn accept(&self) -> Reply<()> {
        self.client.accept_remote_invitation(self)
    }

    /// [`Client::refuse_remote_invitation`] on this invitation.
    pub fn refuse(&self) -> Reply<()> {
        self.client.refuse_remote_invitation(self)
    }

    /// [`Client::hang_up`] on this invitation's call.
    pub fn hang_up(&self) -> Reply<()> {
        self.client.hang_up(&self.call_id)
    }
}

impl fmt::Debug for RemoteInvitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = lock(&self.entry);
        f.debug_struct("RemoteInvitation")
            .field("call_id", &self.call_id)
            .field("caller_id", &entry.caller_id)
            .field("state", &entry.phase.state())
            .finish()
    }
}
