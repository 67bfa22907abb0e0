//! The client's call table: every invitation it knows, the rules of each
//! phase, and the client's own lifecycle as those rules see it.
//!
//! Pure bookkeeping, no I/O: the [`Client`](super::Client) calls the
//! `begin_*` methods (which check a phase's rules and raise Agora-style
//! errors at once, locally) and the worker feeds replies (`replies`), server
//! events (`server_events`) and the login reply's `calls` list
//! (`after_login`) in, collecting the [`Event`]s to emit. One lock guards
//! it, so a request's phase change and its place in the send order are
//! decided together.

use super::event::Event;
use super::invitation::{
    CallPhase, Delivery, LocalEntry, LocalPhase, RemoteEntry, RemotePhase, SharedEntry, check_text, lock,
};
use super::{Error, error::local_limit};
use crate::protocol::{MAX_CHANNEL_BYTES, MAX_TEXT_BYTES, Request};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

mod after_login;
mod replies;
mod server_events;
mod voice;

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
    /// `renew_token` with this token: on `ok`, the token of the next logins.
    RenewToken(String),
    /// The caller's key reveal (v1.2), sent by the SDK itself.
    Reveal(String),
}

/// Where the client itself stands, as the rules of a request see it. The
/// worker moves it; the public [`ConnectionState`](super::ConnectionState)
/// is what the worker announces of the same moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Not logged in right now (connecting, or waiting to retry), after
    /// `logins` successful logins.
    Offline { logins: u64 },
    /// Logged in; this is login number `login` (from 1).
    Online { login: u64 },
    /// The app asked to log out: nothing but the logout goes out, and the
    /// worker stops whatever phase it was in.
    LoggingOut,
    /// Stopped for good (logged out, aborted, dropped).
    Stopped,
}

/// Every invitation of one client, its presence subscriptions, and where
/// the client stands.
pub(crate) struct Table {
    /// Our own peer id.
    me: String,
    /// Whether requests may go out now.
    lifecycle: Lifecycle,
    /// The calls we place, by call id.
    local: HashMap<String, SharedEntry<LocalEntry>>,
    /// The calls placed to us, by call id.
    remote: HashMap<String, SharedEntry<RemoteEntry>>,
    /// Ended call ids, oldest first, for forgetting them.
    ended: VecDeque<String>,
    /// Subscribed peers and whether they were last known online, so the
    /// subscriptions can be renewed after a reconnect and only real changes
    /// reported.
    subscriptions: BTreeMap<String, Option<bool>>,
    /// A token the server took in a `renew_token`, not yet handed to the
    /// worker for its next login (the one it started with has expired).
    renewed_token: Option<String>,
    /// When each callee waiting for its caller's key reveal stops waiting
    /// (protocol v1.2), soonest first; the worker wakes for the first.
    reveals_due: BTreeSet<(tokio::time::Instant, String)>,
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
            lifecycle: Lifecycle::Offline { logins: 0 },
            local: HashMap::new(),
            remote: HashMap::new(),
            ended: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            renewed_token: None,
            reveals_due: BTreeSet::new(),
        }
    }

    /// `renew_token` (v1.2): online only; the token goes as it is.
    pub fn begin_renew_token(&mut self, token: String) -> Result<(Request, Pending), Error> {
        let request = Request::RenewToken { token: token.clone() };
        request.validate().map_err(local_limit)?;
        self.require_online()?;
        Ok((request, Pending::RenewToken(token)))
    }

    /// The token a renewal made current since the last call, for the next login.
    pub fn take_renewed_token(&mut self) -> Option<String> {
        self.renewed_token.take()
    }

    pub fn local(&self, call_id: &str) -> Option<SharedEntry<LocalEntry>> {
        self.local.get(call_id).cloned()
    }

    pub fn remote(&self, call_id: &str) -> Option<SharedEntry<RemoteEntry>> {
        self.remote.get(call_id).cloned()
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// A new login succeeded: requests may go out again (unless a logout
    /// is already on its way, which then goes out on this connection).
    pub fn logged_in(&mut self) {
        if let Lifecycle::Offline { logins } = self.lifecycle {
            self.lifecycle = Lifecycle::Online { login: logins + 1 };
        }
    }

    /// The logged-in connection ended: requests are refused until the next login.
    pub fn connection_lost(&mut self) {
        if let Lifecycle::Online { login } = self.lifecycle {
            self.lifecycle = Lifecycle::Offline { logins: login };
        }
    }

    /// Stopped for good: nothing will be sent again.
    pub fn stop(&mut self) {
        self.lifecycle = Lifecycle::Stopped;
    }

    /// The current login's number, when logged in.
    fn require_online(&self) -> Result<u64, Error> {
        match self.lifecycle {
            Lifecycle::Online { login } => Ok(login),
            Lifecycle::Offline { .. } => Err(Error::NotConnected),
            Lifecycle::LoggingOut | Lifecycle::Stopped => Err(Error::Stopped),
        }
    }

    /// Agora createLocalInvitation: a new `Idle` invitation with a fresh UUID.
    pub fn create_local(&mut self, callee_id: &str) -> Result<(Arc<str>, SharedEntry<LocalEntry>), Error> {
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
            phase: LocalPhase::Unsent,
            media: Default::default(),
        }));
        self.local.insert(call_id.clone(), entry.clone());
        Ok((call_id.into(), entry))
    }

    /// Agora sendLocalInvitation: only an unsent invitation may be sent.
    pub fn begin_send(
        &mut self,
        call_id: &str,
        entry: &SharedEntry<LocalEntry>,
    ) -> Result<(Request, Pending), Error> {
        let mut e = lock(entry);
        if e.phase != LocalPhase::Unsent {
            return Err(Error::AlreadySent(format!("call {call_id} was already sent")));
        }
        check_text("content", &e.content, MAX_TEXT_BYTES)?;
        check_text("channel_id", &e.channel_id, MAX_CHANNEL_BYTES)?;
        let login = self.require_online()?;
        e.phase = LocalPhase::Ringing { delivery: Delivery::InFlight { login }, canceling: false };
        let request = Request::Invite {
            call_id: call_id.to_owned(),
            callee_id: e.callee_id.clone(),
            content: e.content.clone(),
            channel_id: e.channel_id.clone(),
            media_key: e.media.ours.clone(),
            media_commit: e.media.commit.clone(),
        };
        Ok((request, Pending::Invite(call_id.to_owned())))
    }

    /// Agora cancelLocalInvitation: only a sent, unanswered invitation. An
    /// invite still in flight may be canceled: frames go out in order.
    pub fn begin_cancel(
        &mut self,
        call_id: &str,
        entry: &SharedEntry<LocalEntry>,
    ) -> Result<(Request, Pending), Error> {
        let mut e = lock(entry);
        let delivery = match e.phase {
            LocalPhase::Unsent => return Err(not_started("cancel before send")),
            LocalPhase::Accepted(_) => return Err(already_accept(call_id)),
            LocalPhase::Refused | LocalPhase::Canceled | LocalPhase::Failed => {
                return Err(already_end(call_id, e.phase.state().as_str()));
            }
            LocalPhase::Ringing { canceling: true, .. } => {
                return Err(Error::AlreadyEnd(format!("call {call_id} is being canceled")));
            }
            LocalPhase::Ringing { delivery, canceling: false } => delivery,
        };
        self.require_online()?;
        e.phase = LocalPhase::Ringing { delivery, canceling: true };
        Ok((Request::Cancel { call_id: call_id.to_owned() }, Pending::Cancel(call_id.to_owned())))
    }

    /// Agora acceptRemoteInvitation: only a ringing invitation, once.
    pub fn begin_accept(
        &mut self,
        call_id: &str,
        entry: &SharedEntry<RemoteEntry>,
    ) -> Result<(Request, Pending), Error> {
        self.begin_answer(call_id, entry, true)
    }

    /// Agora refuseRemoteInvitation: only a ringing invitation, once.
    pub fn begin_refuse(
        &mut self,
        call_id: &str,
        entry: &SharedEntry<RemoteEntry>,
    ) -> Result<(Request, Pending), Error> {
        self.begin_answer(call_id, entry, false)
    }

    /// Accept or refuse: the same rules, a different request.
    fn begin_answer(
        &mut self,
        call_id: &str,
        entry: &SharedEntry<RemoteEntry>,
        accept: bool,
    ) -> Result<(Request, Pending), Error> {
        let mut e = lock(entry);
        match e.phase {
            RemotePhase::Accepting | RemotePhase::Accepted(_) => return Err(already_accept(call_id)),
            RemotePhase::Refusing => {
                return Err(Error::AlreadyEnd(format!("call {call_id} is being refused")));
            }
            RemotePhase::Refused | RemotePhase::Canceled | RemotePhase::Failed => {
                return Err(already_end(call_id, e.phase.state().as_str()));
            }
            RemotePhase::Ringing => {}
        }
        check_text("response", &e.response, MAX_TEXT_BYTES)?;
        self.require_online()?;
        let (call_id, response) = (call_id.to_owned(), e.response.clone());
        Ok(if accept {
            e.phase = RemotePhase::Accepting;
            (
                Request::Accept { call_id: call_id.clone(), response, media_key: e.media.ours.clone() },
                Pending::Accept(call_id),
            )
        } else {
            e.phase = RemotePhase::Refusing;
            (Request::Refuse { call_id: call_id.clone(), response }, Pending::Refuse(call_id))
        })
    }

    /// Hangs up an accepted call, ours or theirs.
    pub fn begin_hangup(&mut self, call_id: &str) -> Result<(Request, Pending), Error> {
        let (call, state, is_final) = if let Some(entry) = self.local.get(call_id) {
            let phase = lock(entry).phase;
            (phase.call(), phase.state().as_str(), phase.state().is_final())
        } else if let Some(entry) = self.remote.get(call_id) {
            let phase = lock(entry).phase;
            (phase.call(), phase.state().as_str(), phase.state().is_final())
        } else {
            return Err(Error::InvalidArgument(format!("no call {call_id} is known to this client")));
        };
        match call {
            None if is_final => return Err(already_end(call_id, state)),
            None => return Err(not_started("hang up before the call was accepted")),
            Some(CallPhase::Ended | CallPhase::HangingUp) => {
                return Err(Error::AlreadyEnd(format!("call {call_id} has been hung up")));
            }
            Some(CallPhase::Live) => {}
        }
        self.require_online()?;
        self.step_call(call_id, |call| (call == CallPhase::Live).then_some(CallPhase::HangingUp));
        Ok((Request::Hangup { call_id: call_id.to_owned() }, Pending::Hangup(call_id.to_owned())))
    }

    /// Moves the accepted call `call_id`, on whichever side holds it, to
    /// what `step` says (`None`: the step does not apply); whether it moved.
    fn step_call(&self, call_id: &str, step: impl Fn(CallPhase) -> Option<CallPhase>) -> bool {
        if let Some(entry) = self.local.get(call_id) {
            let mut e = lock(entry);
            let next = e.phase.call().and_then(step);
            next.map(|call| e.phase = LocalPhase::Accepted(call)).is_some()
        } else if let Some(entry) = self.remote.get(call_id) {
            let mut e = lock(entry);
            let next = e.phase.call().and_then(step);
            next.map(|call| e.phase = RemotePhase::Accepted(call)).is_some()
        } else {
            false
        }
    }

    /// Presence requests: checked against the protocol's limits first.
    pub fn begin_presence(&mut self, request: Request) -> Result<(Request, Pending), Error> {
        request.validate().map_err(local_limit)?;
        self.require_online()?;
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

    /// Agora logout, in any phase: logged in, the server is told; connecting
    /// or waiting to retry, the worker just stops. Either way the stream
    /// ends with `Disconnected` (`LoggedOut`).
    pub fn begin_logout(&mut self) -> Result<(Request, Pending), Error> {
        match self.lifecycle {
            Lifecycle::Online { .. } | Lifecycle::Offline { .. } => {
                self.lifecycle = Lifecycle::LoggingOut;
                Ok((Request::Logout, Pending::Logout))
            }
            Lifecycle::LoggingOut | Lifecycle::Stopped => Err(Error::Stopped),
        }
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
        self.voice_over(call_id);
        self.ended.push_back(call_id.to_owned());
        while self.ended.len() > KEEP_ENDED {
            let old = self.ended.pop_front().expect("non-empty");
            self.local.remove(&old);
            self.remote.remove(&old);
        }
    }

    /// Ends a live call with a `HungUp` event; anything else is stale.
    fn end_call(&mut self, call_id: &str, reason: super::HangupReason, by: String, out: &mut Vec<Event>) {
        if self.step_call(call_id, |call| call.is_live().then_some(CallPhase::Ended)) {
            out.push(Event::HungUp { call_id: call_id.to_owned(), reason, by });
            self.retire(call_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{self, ServerMessage};
    use crate::sdk::invitation::{LocalInvitationState as L, RemoteInvitationState as R};

    fn table() -> Table {
        let mut t = Table::new("alice".into());
        t.logged_in();
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
            media_commit: None,
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

    #[test]
    fn each_side_moves_through_its_phases_and_shows_the_agora_state() {
        let mut t = table();
        let mut out = Vec::new();
        let (id, e) = t.create_local("bob").unwrap();
        assert_eq!(lock(&e).phase.state(), L::Idle);
        let (_, invite) = t.begin_send(&id, &e).unwrap();
        // A cancel may follow an invite still in flight; a second one may not.
        let (_, cancel) = t.begin_cancel(&id, &e).unwrap();
        assert!(matches!(t.begin_cancel(&id, &e), Err(Error::AlreadyEnd(_))));
        assert_eq!(lock(&e).phase.state(), L::Idle);
        t.on_ok(&invite, None, &mut out);
        assert_eq!(lock(&e).phase, LocalPhase::Ringing { delivery: Delivery::Sent, canceling: true });
        // The server refused the cancel: it may be tried again.
        t.on_failed(&cancel);
        assert_eq!(lock(&e).phase, LocalPhase::Ringing { delivery: Delivery::Sent, canceling: false });
        t.on_event(ServerMessage::ReceivedByPeer { call_id: id.to_string() }, &mut out);
        t.on_event(
            ServerMessage::Accepted {
                call_id: id.to_string(),
                response: "hi".into(),
                device: "d".into(),
                media_key: None,
                media: None,
            },
            &mut out,
        );
        {
            let accepted = lock(&e);
            assert_eq!((accepted.phase.state(), accepted.response.as_str()), (L::AcceptedByRemote, "hi"));
        }
        // A hang-up the server refuses leaves the call live and hangable.
        let (_, hangup) = t.begin_hangup(&id).unwrap();
        assert!(matches!(t.begin_hangup(&id), Err(Error::AlreadyEnd(_))));
        t.on_failed(&hangup);
        assert_eq!(lock(&e).phase, LocalPhase::Accepted(CallPhase::Live));
        let (_, hangup) = t.begin_hangup(&id).unwrap();
        t.on_ok(&hangup, None, &mut out);
        assert_eq!(lock(&e).phase, LocalPhase::Accepted(CallPhase::Ended));
        assert_eq!(out.len(), 3, "received, accepted, hung up: {out:?}");

        t.on_event(invitation("r1"), &mut out);
        let r = t.remote("r1").unwrap();
        let (_, refuse) = t.begin_refuse("r1", &r).unwrap();
        assert_eq!(lock(&r).phase.state(), R::InvitationReceived);
        assert!(matches!(t.begin_accept("r1", &r), Err(Error::AlreadyEnd(_))));
        t.on_failed(&refuse);
        let (_, accept) = t.begin_accept("r1", &r).unwrap();
        assert_eq!(lock(&r).phase.state(), R::AcceptSentToLocal);
        t.on_ok(&accept, None, &mut out);
        assert_eq!(lock(&r).phase, RemotePhase::Accepted(CallPhase::Live));
    }

    #[test]
    fn logout_goes_out_in_any_phase_and_only_once() {
        for online in [false, true] {
            let mut t = Table::new("alice".into());
            if online {
                t.logged_in();
            }
            assert_eq!(t.begin_logout().unwrap().1, Pending::Logout);
            assert_eq!(t.lifecycle(), Lifecycle::LoggingOut);
            assert_eq!(t.begin_logout().unwrap_err(), Error::Stopped);
            // Nothing else goes out once a logout is on its way, even on a new login.
            t.logged_in();
            let (id, e) = t.create_local("bob").unwrap();
            assert_eq!(t.begin_send(&id, &e).unwrap_err(), Error::Stopped);
        }
        let mut t = Table::new("alice".into());
        t.logged_in();
        t.connection_lost();
        assert_eq!(
            t.begin_presence(Request::QueryPresence { peer_ids: vec!["bob".into()] }).unwrap_err(),
            Error::NotConnected
        );
        t.logged_in();
        assert_eq!(t.lifecycle(), Lifecycle::Online { login: 2 });
    }
}
