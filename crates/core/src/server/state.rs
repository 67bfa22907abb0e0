//! Everything the hub decides over, behind its one lock: who is connected
//! ([`Peers`]) and which calls exist (a [`CallStore`]), with the steps every
//! decision shares: a session arriving or leaving, a call ending, watchers
//! told about presence. The requests (`requests.rs`) and the deadlines
//! (`expiry.rs`) add their decisions as further methods of [`State`].

use super::ServerConfig;
use super::calls::{Call, Moment, Phase};
use super::metrics::Metrics;
use super::outbound::{Kick, Outbound, SessionId, encode};
use super::peers::{Peer, Peers, TooManySessions};
use super::relay::Relay;
use super::rules::{self, Notice, Outcome};
use super::store::{CallStore, MemoryStore};
use crate::protocol::{OkResult, ProtocolError, Req, ServerMessage};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The hub's state: one value behind one lock. `C` is where calls are kept.
pub(super) struct State<C = MemoryStore> {
    /// The limits and timers the decisions follow.
    pub config: ServerConfig,
    /// Sessions, peers, their kept events and presence subscriptions.
    pub peers: Peers,
    /// Live calls with their deadline index, and recently ended ones.
    pub calls: C,
    /// What the decisions want logged, written out by `Hub::decide` once the
    /// lock is released: a log sink that blocks must never stall a decision.
    pub log: Vec<LogEntry>,
    /// When the timer task will next look (`None`: not until woken), so a
    /// decision wakes it only for a deadline earlier than that, not for
    /// every new call.
    pub timer_wakes_at: Option<Instant>,
    /// The media relay, told when a call is accepted and when it ends.
    pub relay: Option<Arc<Relay>>,
    /// The server's metrics, for decisions counted under the lock.
    pub metrics: Arc<Metrics>,
}

/// A log line decided under the lock and written after it.
pub(super) enum LogEntry {
    /// A session logged in (debug level).
    LoggedIn { peer: Arc<str>, device: Arc<str>, session: SessionId },
    /// A call was accepted, after ringing this long.
    Answered { call_id: Arc<str>, caller: Arc<str>, callee: Arc<str>, ringing_ms: u64 },
    /// A call ended: how, and how long it rang or, once accepted, lasted.
    Ended { call_id: Arc<str>, caller: Arc<str>, callee: Arc<str>, outcome: &'static str, duration_ms: u64 },
}

impl LogEntry {
    /// The line for `call` ending with `outcome` at `now`: how long it rang
    /// or, once accepted, lasted.
    pub fn ended<T: Moment>(call: &Call<T>, outcome: Outcome, now: T) -> LogEntry {
        let since = match call.phase {
            Phase::Accepted { at } => at,
            Phase::Ringing { .. } => call.invited,
        };
        LogEntry::Ended {
            call_id: call.id.clone(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            outcome: outcome.name(&call.phase),
            duration_ms: now.since(since).as_millis() as u64,
        }
    }

    /// The line for `call` accepted at `now`: how long it rang.
    pub fn answered<T: Moment>(call: &Call<T>, now: T) -> LogEntry {
        LogEntry::Answered {
            call_id: call.id.clone(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            ringing_ms: now.since(call.invited).as_millis() as u64,
        }
    }

    /// Writes the line; called with the hub's lock released.
    pub fn write(self) {
        match self {
            LogEntry::LoggedIn { peer, device, session } => {
                tracing::debug!(peer = %peer, device = %device, session, "logged in")
            }
            LogEntry::Answered { call_id, caller, callee, ringing_ms } => tracing::info!(
                call_id = %call_id, caller = %caller, callee = %callee, outcome = "accepted",
                duration_ms = ringing_ms, "call answered"
            ),
            LogEntry::Ended { call_id, caller, callee, outcome, duration_ms } => tracing::info!(
                call_id = %call_id, caller = %caller, callee = %callee, outcome, duration_ms, "call ended"
            ),
        }
    }
}

/// The `ok` reply with no result fields.
pub(super) fn ok(req: Option<Req>) -> ServerMessage {
    ServerMessage::Ok { req, result: OkResult::Empty {} }
}

impl<C: CallStore> State<C> {
    pub fn new(config: ServerConfig, calls: C, relay: Option<Arc<Relay>>, metrics: Arc<Metrics>) -> Self {
        State {
            peers: Peers::new(config.offline_grace, config.max_sessions_per_peer),
            calls,
            log: Vec::new(),
            timer_wakes_at: None,
            config,
            relay,
            metrics,
        }
    }

    /// The ids of every live call `peer` takes part in.
    fn calls_of(&self, peer: &str) -> Vec<Arc<str>> {
        self.peers.get(peer).map(Peer::calls).unwrap_or_default()
    }

    /// Registers a logged-in session, replies to its `login`, then hands it
    /// the events kept for its peer and an `invitation` for each call still
    /// ringing for it. Beyond the peer's sessions, changes nothing.
    pub fn login(
        &mut self,
        peer: &str,
        device: &str,
        req: Option<Req>,
        outbox: mpsc::Sender<Outbound>,
        kick: Kick,
        now: Instant,
    ) -> Result<SessionId, ProtocolError> {
        let (id, came_online) = self
            .peers
            .add_session(peer, device, outbox, kick)
            .map_err(|TooManySessions| rules::too_many_sessions(peer, self.config.max_sessions_per_peer))?;
        self.metrics.session_opened(came_online);
        if came_online {
            self.presence_changed(peer, true);
        }
        let ack_timeout = self.config.ack_timeout;
        let mut calls = Vec::new();
        let mut invitations = Vec::new();
        for call_id in self.calls_of(peer) {
            let arrival =
                self.calls.update(&call_id, |call| rules::arrive(call, peer, came_online, now, ack_timeout));
            let Some(arrival) = arrival else { continue };
            if let Some(waited) = arrival.first_reached {
                self.metrics.invitation_delivered(waited);
            }
            calls.extend(arrival.live);
            invitations.extend(arrival.invitation);
        }
        let session = uuid::Uuid::new_v4().simple().to_string();
        self.peers.send(id, &encode(&ServerMessage::Ok { req, result: OkResult::Login { session, calls } }));
        if came_online {
            for text in self.peers.take_queue(peer, now) {
                self.peers.send(id, &text);
            }
        }
        for text in &invitations {
            self.peers.send(id, text);
        }
        let device = self.peers.session(id).map(|s| s.device.clone()).unwrap_or_default();
        self.log.push(LogEntry::LoggedIn { peer: peer.into(), device, session: id });
        Ok(id)
    }

    /// Forgets a session (logout or closed socket). When it was its peer's
    /// last, the peer goes offline: presence says so at once, and the
    /// offline grace starts for each call the peer has seen.
    pub fn disconnect(&mut self, id: SessionId, now: Instant) {
        let Some((peer, went_offline)) = self.peers.remove_session(id, now) else { return };
        self.metrics.session_closed(went_offline);
        if went_offline {
            self.presence_changed(&peer, false);
            for call_id in self.calls_of(&peer) {
                self.calls.update(&call_id, |call| rules::went_offline(call, &peer, now));
            }
        }
        self.peers.forget_if_idle(&peer, now);
    }

    pub fn online_map(&self, peers: &[String]) -> BTreeMap<String, bool> {
        peers.iter().map(|p| (p.clone(), self.peers.is_online(p))).collect()
    }

    fn presence_changed(&self, peer: &str, online: bool) {
        if self.peers.is_watched(peer) {
            let text = encode(&ServerMessage::Presence { peer_id: peer.to_owned(), online });
            self.peers.send_to_watchers(peer, &text);
        }
    }

    /// Adds a new live call and files it with its participants: against its
    /// caller's cap, and as ringing at its callee (which it does not count
    /// against until accepted).
    pub fn add_call(&mut self, call: Call) {
        for (who, charged) in [(&call.caller, true), (&call.callee, false)] {
            if let Some(p) = self.peers.get_mut(who) {
                let set = if charged { &mut p.charged } else { &mut p.ringing };
                set.insert(call.id.clone());
            }
        }
        self.calls.insert(call);
    }

    /// Queues each of `notices` for its peer's sessions (but session
    /// `asker`'s, where the rule says so).
    pub fn tell(&mut self, asker: Option<SessionId>, notices: impl IntoIterator<Item = Notice>) {
        for Notice { to, text, seen, skip_asker } in notices {
            let except = if skip_asker { asker } else { None };
            self.peers.send_to_peer(&to, &text, except, seen);
        }
    }

    /// Files an accepted call against its callee's cap.
    pub fn charge_callee(&mut self, callee: &str, call_id: &Arc<str>) {
        if let Some(p) = self.peers.get_mut(callee) {
            p.ringing.remove(call_id);
            p.charged.insert(call_id.clone());
        }
    }

    /// Records an ended call (already taken out of the live calls), and
    /// queues its outcome for the log.
    pub fn end(&mut self, call: Call, outcome: Outcome, now: Instant) {
        self.metrics.call_ended(outcome.name(&call.phase));
        self.log.push(LogEntry::ended(&call, outcome, now));
        for who in [&call.caller, &call.callee] {
            if let Some(p) = self.peers.get_mut(who) {
                p.charged.remove(&call.id);
                p.ringing.remove(&call.id);
            }
            self.peers.forget_if_idle(who, now);
        }
        self.calls.remember(&call, now + rules::remembered_for(self.config.invite_ttl));
        if let Some(relay) = &self.relay {
            relay.close(&call.id);
        }
    }
}
