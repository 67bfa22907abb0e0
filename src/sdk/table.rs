//! The client's call table: every invitation it knows, the rules of each
//! state, and what each reply, event and login does to them.
//!
//! Pure bookkeeping, no I/O: the [`Client`](super::Client) calls the
//! `begin_*` methods (which check a state's rules and raise Agora-style
//! errors at once, locally) and the worker feeds replies, server events and
//! the login reply's `calls` list in, collecting the [`Event`]s to emit.
//! One lock guards it, so a request's state change and its place in the
//! send order are decided together.

use super::event::{Event, FailureReason, HangupReason};
use super::invitation::{
    CallPhase, LocalEntry, LocalInvitationState as L, RemoteEntry, RemoteInvitationState as R, Shared,
    check_text, lock,
};
use super::media_slots::MediaSlots;
use super::{Error, error::local_limit};
use crate::protocol::{MAX_CHANNEL_BYTES, MAX_TEXT_BYTES, Request, ServerMessage};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod reconcile;

/// How many ended invitations stay in the table (for lookups by id) before
/// the oldest are forgotten; handles keep their own entry alive regardless.
const KEEP_ENDED: usize = 1024;

/// What a request in flight was for, so its reply can be applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pending {
    Invite(String),
    Cancel(String),
    Accept(String),
    Refuse(String),
    Hangup(String),
    Query,
    Subscribe(Vec<String>),
    Unsubscribe,
    /// The SDK's own subscribe after logging in again.
    Resubscribe,
    Logout,
}

/// Every invitation of one client, and its presence subscriptions.
pub(crate) struct Table {
    /// Our own peer id.
    me: String,
    /// Logged in right now; requests are refused locally otherwise.
    pub connected: bool,
    /// How many logins this client has made: a request issued during the
    /// current one has not reached any server yet when that login's
    /// reconcile runs, so the reconcile must leave it alone.
    logins: u64,
    /// Stopped for good (logged out, aborted, dropped): nothing will be sent again.
    pub stopped: bool,
    local: HashMap<String, Shared<LocalEntry>>,
    remote: HashMap<String, Shared<RemoteEntry>>,
    /// Ended call ids, oldest first, for forgetting them.
    ended: VecDeque<String>,
    /// Subscribed peers and whether they were last known online, so the
    /// subscriptions can be renewed after a reconnect and only real changes
    /// reported.
    subscriptions: BTreeMap<String, Option<bool>>,
}

fn not_started(what: &str) -> Error {
    Error::NotStarted(what.to_owned())
}
fn already_end(call_id: &str, state: &str) -> Error {
    Error::AlreadyEnd(format!("call {call_id} has ended ({state})"))
}
fn already_accept(call_id: &str) -> Error {
    Error::AlreadyAccept(format!("call {call_id} has been accepted"))
}

impl Table {
    pub fn new(me: String) -> Self {
        Table {
            me,
            connected: false,
            logins: 0,
            stopped: false,
            local: HashMap::new(),
            remote: HashMap::new(),
            ended: VecDeque::new(),
            subscriptions: BTreeMap::new(),
        }
    }

    pub fn local(&self, call_id: &str) -> Option<Shared<LocalEntry>> {
        self.local.get(call_id).cloned()
    }

    pub fn remote(&self, call_id: &str) -> Option<Shared<RemoteEntry>> {
        self.remote.get(call_id).cloned()
    }

    fn require_connected(&self) -> Result<(), Error> {
        match (self.connected, self.stopped) {
            (true, _) => Ok(()),
            (false, false) => Err(Error::NotConnected),
            (false, true) => Err(Error::Stopped),
        }
    }

    /// Agora createLocalInvitation: a new `Idle` invitation with a fresh UUID.
    pub fn create_local(&mut self, callee_id: &str) -> Result<(Arc<str>, Shared<LocalEntry>), Error> {
        if !crate::protocol::is_valid_id(callee_id) {
            return Err(Error::InvalidArgument(
                "callee_id must be 1 to 64 bytes of printable ASCII (0x21-0x7E)".into(),
            ));
        }
        if callee_id == self.me {
            return Err(Error::InvalidArgument("callee_id must not be your own peer_id".into()));
        }
        let call_id = uuid::Uuid::new_v4().to_string();
        let entry = Arc::new(Mutex::new(LocalEntry {
            callee_id: callee_id.to_owned(),
            content: String::new(),
            channel_id: String::new(),
            response: String::new(),
            state: L::Idle,
            sending: false,
            sent_in_login: 0,
            canceling: false,
            call: CallPhase::NotLive,
            media: Default::default(),
        }));
        self.local.insert(call_id.clone(), entry.clone());
        Ok((call_id.into(), entry))
    }

    /// A new login succeeded: requests may go out again.
    pub fn logged_in(&mut self) {
        self.connected = true;
        self.logins += 1;
    }

    /// The number of the current (or last) login.
    pub fn login_number(&self) -> u64 {
        self.logins
    }

    /// Agora sendLocalInvitation: only an unsent invitation may be sent.
    pub fn begin_send(
        &mut self,
        call_id: &str,
        entry: &Shared<LocalEntry>,
    ) -> Result<(Request, Pending), Error> {
        let mut e = lock(entry);
        if e.sending || e.state != L::Idle {
            return Err(Error::AlreadySent(format!("call {call_id} was already sent")));
        }
        check_text("content", &e.content, MAX_TEXT_BYTES)?;
        check_text("channel_id", &e.channel_id, MAX_CHANNEL_BYTES)?;
        self.require_connected()?;
        e.sending = true;
        e.sent_in_login = self.logins;
        let request = Request::Invite {
            call_id: call_id.to_owned(),
            callee_id: e.callee_id.clone(),
            content: e.content.clone(),
            channel_id: e.channel_id.clone(),
            media_key: e.media.ours.clone(),
        };
        Ok((request, Pending::Invite(call_id.to_owned())))
    }

    /// Agora cancelLocalInvitation: only a sent, unanswered invitation.
    pub fn begin_cancel(
        &mut self,
        call_id: &str,
        entry: &Shared<LocalEntry>,
    ) -> Result<(Request, Pending), Error> {
        let mut e = lock(entry);
        match e.state {
            L::Idle if !e.sending => return Err(not_started("cancel before send")),
            L::AcceptedByRemote => return Err(already_accept(call_id)),
            L::RefusedByRemote | L::Canceled | L::Failure => {
                return Err(already_end(call_id, e.state.as_str()));
            }
            // An invite still in flight may be canceled: frames go out in order.
            L::Idle | L::SentToRemote | L::ReceivedByRemote => {}
        }
        if e.canceling {
            return Err(Error::AlreadyEnd(format!("call {call_id} is being canceled")));
        }
        self.require_connected()?;
        e.canceling = true;
        Ok((Request::Cancel { call_id: call_id.to_owned() }, Pending::Cancel(call_id.to_owned())))
    }

    /// Agora acceptRemoteInvitation: only a ringing invitation, once.
    pub fn begin_accept(
        &mut self,
        call_id: &str,
        entry: &Shared<RemoteEntry>,
    ) -> Result<(Request, Pending), Error> {
        self.begin_answer(call_id, entry, true)
    }

    /// Agora refuseRemoteInvitation: only a ringing invitation, once.
    pub fn begin_refuse(
        &mut self,
        call_id: &str,
        entry: &Shared<RemoteEntry>,
    ) -> Result<(Request, Pending), Error> {
        self.begin_answer(call_id, entry, false)
    }

    /// Accept or refuse: the same rules, a different request.
    fn begin_answer(
        &mut self,
        call_id: &str,
        entry: &Shared<RemoteEntry>,
        accept: bool,
    ) -> Result<(Request, Pending), Error> {
        let mut e = lock(entry);
        Self::check_answerable(call_id, &e)?;
        check_text("response", &e.response, MAX_TEXT_BYTES)?;
        self.require_connected()?;
        let (call_id, response) = (call_id.to_owned(), e.response.clone());
        Ok(if accept {
            e.state = R::AcceptSentToLocal;
            (
                Request::Accept { call_id: call_id.clone(), response, media_key: e.media.ours.clone() },
                Pending::Accept(call_id),
            )
        } else {
            e.refusing = true;
            (Request::Refuse { call_id: call_id.clone(), response }, Pending::Refuse(call_id))
        })
    }

    fn check_answerable(call_id: &str, e: &RemoteEntry) -> Result<(), Error> {
        match e.state {
            R::AcceptSentToLocal | R::Accepted => Err(already_accept(call_id)),
            R::InvitationReceived if e.refusing => {
                Err(Error::AlreadyEnd(format!("call {call_id} is being refused")))
            }
            R::InvitationReceived => Ok(()),
            R::Idle => Err(not_started("the invitation has not arrived")),
            R::Refused | R::Canceled | R::Failure => Err(already_end(call_id, e.state.as_str())),
        }
    }

    /// Hangs up an accepted call, ours or theirs.
    pub fn begin_hangup(&mut self, call_id: &str) -> Result<(Request, Pending), Error> {
        let (call, final_state, state) = if let Some(entry) = self.local.get(call_id) {
            let e = lock(entry);
            (e.call, e.state.is_final(), e.state.as_str())
        } else if let Some(entry) = self.remote.get(call_id) {
            let e = lock(entry);
            (e.call, e.state.is_final(), e.state.as_str())
        } else {
            return Err(Error::InvalidArgument(format!("no call {call_id} is known to this client")));
        };
        match call {
            CallPhase::NotLive if final_state => return Err(already_end(call_id, state)),
            CallPhase::NotLive => return Err(not_started("hang up before the call was accepted")),
            CallPhase::Ended | CallPhase::Live { hanging_up: true } => {
                return Err(Error::AlreadyEnd(format!("call {call_id} has been hung up")));
            }
            CallPhase::Live { hanging_up: false } => {}
        }
        self.require_connected()?;
        self.set_call(call_id, CallPhase::Live { hanging_up: true });
        Ok((Request::Hangup { call_id: call_id.to_owned() }, Pending::Hangup(call_id.to_owned())))
    }

    fn set_call(&self, call_id: &str, phase: CallPhase) {
        if let Some(entry) = self.local.get(call_id) {
            lock(entry).call = phase;
        } else if let Some(entry) = self.remote.get(call_id) {
            lock(entry).call = phase;
        }
    }

    /// Presence requests: checked against the protocol's limits first.
    pub fn begin_presence(&mut self, request: Request) -> Result<(Request, Pending), Error> {
        request.validate().map_err(local_limit)?;
        self.require_connected()?;
        let pending = match &request {
            Request::QueryPresence { .. } => Pending::Query,
            Request::SubscribePresence { peer_ids } => Pending::Subscribe(peer_ids.clone()),
            Request::UnsubscribePresence { peer_ids } => {
                // Forget them now, so a reconnect meanwhile does not renew them.
                for peer in peer_ids {
                    self.subscriptions.remove(peer);
                }
                Pending::Unsubscribe
            }
            _ => unreachable!("begin_presence takes presence requests only"),
        };
        Ok((request, pending))
    }

    pub fn begin_logout(&mut self) -> Result<(Request, Pending), Error> {
        self.require_connected()?;
        Ok((Request::Logout, Pending::Logout))
    }

    /// The subscribe that renews every subscription after a new login.
    pub fn resubscribe(&self) -> Option<(Request, Pending)> {
        if self.subscriptions.is_empty() {
            return None;
        }
        let peer_ids = self.subscriptions.keys().cloned().collect();
        Some((Request::SubscribePresence { peer_ids }, Pending::Resubscribe))
    }

    /// Moves an ended call to the forgettable end of the table.
    fn retire(&mut self, call_id: &str) {
        self.ended.push_back(call_id.to_owned());
        while self.ended.len() > KEEP_ENDED {
            let old = self.ended.pop_front().expect("non-empty");
            self.local.remove(&old);
            self.remote.remove(&old);
        }
    }

    /// The server said `ok` to `pending`; `online` is its presence map, if any.
    pub fn on_ok(
        &mut self,
        pending: &Pending,
        online: Option<&BTreeMap<String, bool>>,
        out: &mut Vec<Event>,
    ) {
        match pending {
            Pending::Invite(id) => {
                if let Some(entry) = self.local.get(id) {
                    let mut e = lock(entry);
                    e.sending = false;
                    if e.state == L::Idle {
                        e.state = L::SentToRemote;
                    }
                }
            }
            Pending::Cancel(id) => {
                let Some(entry) = self.local.get(id).cloned() else { return };
                let mut e = lock(&entry);
                e.canceling = false;
                if matches!(e.state, L::Idle | L::SentToRemote | L::ReceivedByRemote) {
                    e.state = L::Canceled;
                    drop(e);
                    out.push(Event::LocalInvitationCanceled { call_id: id.clone() });
                    self.retire(id);
                }
            }
            Pending::Accept(id) => {
                let Some(entry) = self.remote.get(id) else { return };
                let mut e = lock(entry);
                if e.state == R::AcceptSentToLocal {
                    e.state = R::Accepted;
                    e.call = CallPhase::Live { hanging_up: false };
                    out.push(Event::RemoteInvitationAccepted { call_id: id.clone() });
                }
            }
            Pending::Refuse(id) => {
                let Some(entry) = self.remote.get(id).cloned() else { return };
                let mut e = lock(&entry);
                e.refusing = false;
                if e.state == R::InvitationReceived {
                    e.state = R::Refused;
                    drop(e);
                    out.push(Event::RemoteInvitationRefused { call_id: id.clone() });
                    self.retire(id);
                }
            }
            Pending::Hangup(id) => self.end_call(id, HangupReason::Hangup, self.me.clone(), out),
            Pending::Subscribe(peers) => {
                for peer in peers {
                    let online = online.and_then(|m| m.get(peer)).copied();
                    self.subscriptions.insert(peer.clone(), online);
                }
            }
            Pending::Resubscribe => {
                for (peer, now) in online.into_iter().flatten() {
                    if let Some(known) = self.subscriptions.get_mut(peer)
                        && *known != Some(*now)
                    {
                        *known = Some(*now);
                        out.push(Event::Presence { peer_id: peer.clone(), online: *now });
                    }
                }
            }
            Pending::Query | Pending::Unsubscribe | Pending::Logout => {}
        }
    }

    /// `pending` was refused by the server, or never went out: undo what
    /// `begin_*` did, so the invitation is as it was before the call.
    pub fn on_failed(&mut self, pending: &Pending) {
        match pending {
            Pending::Invite(id) => {
                if let Some(entry) = self.local.get(id) {
                    lock(entry).sending = false;
                }
            }
            Pending::Cancel(id) => {
                if let Some(entry) = self.local.get(id) {
                    lock(entry).canceling = false;
                }
            }
            Pending::Accept(id) => {
                if let Some(entry) = self.remote.get(id) {
                    let mut e = lock(entry);
                    if e.state == R::AcceptSentToLocal {
                        e.state = R::InvitationReceived;
                    }
                }
            }
            Pending::Refuse(id) => {
                if let Some(entry) = self.remote.get(id) {
                    lock(entry).refusing = false;
                }
            }
            Pending::Hangup(id) => {
                let live = |c: CallPhase| matches!(c, CallPhase::Live { .. });
                let is_live = self.local.get(id).is_some_and(|e| live(lock(e).call))
                    || self.remote.get(id).is_some_and(|e| live(lock(e).call));
                if is_live {
                    self.set_call(id, CallPhase::Live { hanging_up: false });
                }
            }
            Pending::Query
            | Pending::Subscribe(_)
            | Pending::Unsubscribe
            | Pending::Resubscribe
            | Pending::Logout => {}
        }
    }

    /// Ends a live call with a `HungUp` event; anything else is stale.
    fn end_call(&mut self, call_id: &str, reason: HangupReason, by: String, out: &mut Vec<Event>) {
        let entry_call = |phase: &mut CallPhase| {
            if matches!(phase, CallPhase::Live { .. }) {
                *phase = CallPhase::Ended;
                true
            } else {
                false
            }
        };
        let ended = self.local.get(call_id).is_some_and(|e| entry_call(&mut lock(e).call))
            || self.remote.get(call_id).is_some_and(|e| entry_call(&mut lock(e).call));
        if ended {
            out.push(Event::HungUp { call_id: call_id.to_owned(), reason, by });
            self.retire(call_id);
        }
    }

    /// Applies a server event. Returns the `received` acknowledgement to
    /// send for an `invitation`. Events about calls this client does not
    /// know, or that no longer fit their state, are dropped.
    pub fn on_event(&mut self, message: ServerMessage, out: &mut Vec<Event>) -> Option<Request> {
        match message {
            ServerMessage::Invitation {
                call_id,
                caller_id,
                content,
                channel_id,
                expires_in_ms,
                media_key,
            } => {
                // Acknowledge every copy (the server re-sends on each login);
                // announce a call only once.
                let ack = Request::Received { call_id: call_id.clone() };
                if !self.remote.contains_key(&call_id) && !self.local.contains_key(&call_id) {
                    let entry = RemoteEntry {
                        caller_id: caller_id.clone(),
                        content: content.clone(),
                        channel_id: channel_id.clone(),
                        response: String::new(),
                        state: R::InvitationReceived,
                        refusing: false,
                        call: CallPhase::NotLive,
                        media: MediaSlots::offered(media_key),
                    };
                    self.remote.insert(call_id.clone(), Arc::new(Mutex::new(entry)));
                    out.push(Event::RemoteInvitationReceived {
                        call_id,
                        caller_id,
                        content,
                        channel_id,
                        expires_in: Duration::from_millis(expires_in_ms),
                    });
                }
                return Some(ack);
            }
            ServerMessage::ReceivedByPeer { call_id } => {
                let entry = self.local.get(&call_id)?;
                let mut e = lock(entry);
                if e.state == L::SentToRemote {
                    e.state = L::ReceivedByRemote;
                    out.push(Event::LocalInvitationReceivedByPeer { call_id });
                }
            }
            ServerMessage::Accepted { call_id, response, device, media_key, media } => {
                let entry = self.local.get(&call_id)?;
                let mut e = lock(entry);
                if matches!(e.state, L::SentToRemote | L::ReceivedByRemote) {
                    e.state = L::AcceptedByRemote;
                    e.response = response.clone();
                    e.canceling = false;
                    e.call = CallPhase::Live { hanging_up: false };
                    e.media.theirs = media_key;
                    e.media.relay = media;
                    out.push(Event::LocalInvitationAccepted { call_id, response, device });
                }
            }
            ServerMessage::Refused { call_id, response } => {
                let entry = self.local.get(&call_id).cloned()?;
                let mut e = lock(&entry);
                if matches!(e.state, L::SentToRemote | L::ReceivedByRemote) {
                    e.state = L::RefusedByRemote;
                    e.response = response.clone();
                    e.canceling = false;
                    drop(e);
                    self.retire(&call_id);
                    out.push(Event::LocalInvitationRefused { call_id, response });
                }
            }
            ServerMessage::Canceled { call_id, reason } => {
                let entry = self.remote.get(&call_id).cloned()?;
                let mut e = lock(&entry);
                if matches!(e.state, R::InvitationReceived | R::AcceptSentToLocal) {
                    e.state = R::Canceled;
                    e.refusing = false;
                    drop(e);
                    self.retire(&call_id);
                    out.push(Event::RemoteInvitationCanceled { call_id, reason: reason.into() });
                }
            }
            ServerMessage::Failure { call_id, reason } => self.fail(&call_id, reason.into(), out),
            ServerMessage::HungUp { call_id, reason, by } => self.end_call(&call_id, reason.into(), by, out),
            ServerMessage::Presence { peer_id, online } => {
                if let Some(known) = self.subscriptions.get_mut(&peer_id) {
                    *known = Some(online);
                    out.push(Event::Presence { peer_id, online });
                }
            }
            ServerMessage::Ok { .. } | ServerMessage::Error { .. } => {}
        }
        None
    }

    /// Fails a ringing invitation, on whichever side we are.
    fn fail(&mut self, call_id: &str, reason: FailureReason, out: &mut Vec<Event>) {
        if let Some(entry) = self.local.get(call_id).cloned() {
            let mut e = lock(&entry);
            // An invite whose reply is lost with the connection is `Idle` + `sending`.
            if matches!(e.state, L::SentToRemote | L::ReceivedByRemote) || (e.state == L::Idle && e.sending) {
                e.state = L::Failure;
                e.sending = false;
                e.canceling = false;
                drop(e);
                self.retire(call_id);
                out.push(Event::LocalInvitationFailure { call_id: call_id.to_owned(), reason });
            }
        } else if let Some(entry) = self.remote.get(call_id).cloned() {
            let mut e = lock(&entry);
            if matches!(e.state, R::InvitationReceived | R::AcceptSentToLocal) {
                e.state = R::Failure;
                e.refusing = false;
                drop(e);
                self.retire(call_id);
                out.push(Event::RemoteInvitationFailure { call_id: call_id.to_owned(), reason });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol;

    fn table() -> Table {
        let mut t = Table::new("alice".into());
        t.connected = true;
        t
    }

    /// An `invitation` from bob, for the tests of this module and its children.
    pub(super) fn invitation(call_id: &str) -> ServerMessage {
        ServerMessage::Invitation {
            call_id: call_id.into(),
            caller_id: "bob".into(),
            content: String::new(),
            channel_id: String::new(),
            expires_in_ms: 1000,
            media_key: None,
        }
    }

    #[test]
    fn an_invitation_is_acknowledged_every_time_and_announced_once() {
        let mut t = table();
        let mut out = Vec::new();
        assert!(matches!(t.on_event(invitation("c1"), &mut out), Some(Request::Received { .. })));
        assert!(matches!(t.on_event(invitation("c1"), &mut out), Some(Request::Received { .. })));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn stale_events_are_dropped() {
        let mut t = table();
        let mut out = Vec::new();
        t.on_event(ServerMessage::ReceivedByPeer { call_id: "nope".into() }, &mut out);
        t.on_event(
            ServerMessage::Failure { call_id: "nope".into(), reason: protocol::FailureReason::Expired },
            &mut out,
        );
        t.on_event(
            ServerMessage::HungUp {
                call_id: "nope".into(),
                reason: protocol::HangupReason::Hangup,
                by: "bob".into(),
            },
            &mut out,
        );
        assert!(out.is_empty());
    }
}
