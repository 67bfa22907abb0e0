//! The two invitation objects of Agora's model and their states:
//! [`LocalInvitation`] (the caller's) and [`RemoteInvitation`] (the
//! callee's), plus the entries behind them.
//!
//! A handle is a cheap clone pointing at one entry; the entry is shared
//! with the client's call table, which the worker updates as replies and
//! events arrive, so getters always read the current state. The rules of
//! each state (what may be sent when) live in the call table (`table.rs`).

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

/// What follows an accept (beyond Agora, whose lifecycle stops there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CallPhase {
    /// Not accepted (yet, or ever).
    #[default]
    NotLive,
    /// Accepted and not hung up; `hanging_up` while our hangup is in flight.
    Live { hanging_up: bool },
    /// Hung up, by either side, or lost.
    Ended,
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
    /// Where it stands; moved only by the table.
    pub state: LocalInvitationState,
    /// Our invite is in flight (the state stays `Idle` until its `ok`).
    pub sending: bool,
    /// The login during which the invite was issued (see `Table::logged_in`).
    pub sent_in_login: u64,
    /// Our cancel is in flight.
    pub canceling: bool,
    /// The call after accept.
    pub call: CallPhase,
    /// Public keys and relay credential for built-in voice (`media.rs`).
    pub media: super::media_slots::MediaSlots,
}

/// The callee's side of one call.
#[derive(Debug)]
pub(crate) struct RemoteEntry {
    /// Who calls us.
    pub caller_id: String,
    /// The caller's text and media channel, as sent.
    pub content: String,
    pub channel_id: String,
    /// Our response, sent with accept or refuse (Agora: setResponse).
    pub response: String,
    /// Where it stands; moved only by the table.
    pub state: RemoteInvitationState,
    /// Our refuse is in flight (an accept in flight is `AcceptSentToLocal`).
    pub refusing: bool,
    /// The call after accept.
    pub call: CallPhase,
    /// Public keys and relay credential for built-in voice (`media.rs`).
    pub media: super::media_slots::MediaSlots,
}

/// An entry shared between the call table and the handles that point at it.
pub(crate) type Shared<T> = Arc<Mutex<T>>;

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
    pub(crate) entry: Shared<LocalEntry>,
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
        if entry.sending || entry.state != LocalInvitationState::Idle {
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
        lock(&self.entry).state
    }

    /// Whether the call is accepted and not yet hung up.
    pub fn is_call_live(&self) -> bool {
        matches!(lock(&self.entry).call, CallPhase::Live { .. })
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
            .field("state", &entry.state)
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
    pub(crate) entry: Shared<RemoteEntry>,
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
        match entry.state {
            RemoteInvitationState::AcceptSentToLocal | RemoteInvitationState::Accepted => {
                Err(Error::AlreadyAccept("the invitation has been accepted".into()))
            }
            RemoteInvitationState::InvitationReceived if !entry.refusing => {
                entry.response = response;
                Ok(())
            }
            _ => Err(Error::AlreadyEnd("the invitation has ended".into())),
        }
    }

    /// getState.
    pub fn state(&self) -> RemoteInvitationState {
        lock(&self.entry).state
    }

    /// Whether the call is accepted and not yet hung up.
    pub fn is_call_live(&self) -> bool {
        matches!(lock(&self.entry).call, CallPhase::Live { .. })
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
            .field("state", &entry.state)
            .finish()
    }
}
