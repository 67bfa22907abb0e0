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
use super::store::{CallStore, MemoryStore};
use crate::protocol::{ErrorCode, FailureReason, HangupReason, OkResult, ProtocolError, Req, ServerMessage};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Ended calls are remembered for the invite ttl, but never less than this,
/// so late answers get `already_ended` even with a ttl of milliseconds.
pub(super) const MIN_REMEMBERED: Duration = Duration::from_secs(10);

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

/// How a call ended, for the log.
#[derive(Clone, Copy)]
pub(super) enum Outcome {
    Canceled,
    Refused,
    Failed(FailureReason),
    HungUp(HangupReason),
}

impl Outcome {
    /// The outcome as the log and the metrics name it, for a call in `phase`
    /// (a ringing call hung up, which never happens, is named hung up).
    pub fn name<T>(self, phase: &Phase<T>) -> &'static str {
        match self {
            Outcome::HungUp(_) if matches!(phase, Phase::Ringing { .. }) => "hung_up",
            Outcome::Canceled => "canceled",
            Outcome::Refused => "refused",
            Outcome::Failed(FailureReason::PeerOffline) => "peer_offline",
            Outcome::Failed(FailureReason::CallerOffline) => "caller_offline",
            Outcome::Failed(FailureReason::PeerNoResponse) => "peer_no_response",
            Outcome::Failed(_) => "expired",
            Outcome::HungUp(HangupReason::Hangup) => "hung_up",
            Outcome::HungUp(_) => "lost",
        }
    }
}

/// The `ok` reply with no result fields.
pub(super) fn ok(req: Option<Req>) -> ServerMessage {
    ServerMessage::Ok { req, result: OkResult::Empty {} }
}

pub(super) fn err(code: ErrorCode, message: String) -> ProtocolError {
    ProtocolError::new(code, message)
}

/// Milliseconds in `d`, rounded up: time left that is not zero never reads 0.
fn millis_up(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000) as u64
}

/// The `invitation` event for a ringing call, with the time it has left.
/// Every decision first ends the calls whose deadline has passed, so a call
/// still ringing has time left, and the invitation says at least 1 ms.
pub(super) fn invitation<T: Moment>(call: &Call<T>, now: T) -> Outbound {
    let left = match call.phase {
        Phase::Ringing { expires, .. } => expires.since(now),
        Phase::Accepted { .. } => Duration::ZERO,
    };
    encode(&ServerMessage::Invitation {
        call_id: call.id.to_string(),
        caller_id: call.caller.to_string(),
        content: call.content.clone(),
        channel_id: call.channel_id.clone(),
        expires_in_ms: millis_up(left),
        media_key: call.media_key.clone(),
        media_commit: call.media_commit.clone(),
    })
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
        let (id, came_online) =
            self.peers.add_session(peer, device, outbox, kick).map_err(|TooManySessions| {
                let max = self.config.max_sessions_per_peer;
                err(ErrorCode::TooManySessions, format!("{peer} already has {max} sessions"))
            })?;
        self.metrics.session_opened(came_online);
        let call_ids = self.calls_of(peer);
        if came_online {
            self.presence_changed(peer, true);
            for call_id in &call_ids {
                self.calls.update(call_id, |call| {
                    if *call.caller == *peer {
                        call.caller_lost = None;
                    } else {
                        call.callee_lost = None;
                    }
                });
            }
        }
        let calls = call_ids.iter().filter_map(|c| self.calls.get(c)?.as_live(peer)).collect();
        let session = uuid::Uuid::new_v4().simple().to_string();
        self.peers.send(id, &encode(&ServerMessage::Ok { req, result: OkResult::Login { session, calls } }));
        if came_online {
            for text in self.peers.take_queue(peer, now) {
                self.peers.send(id, &text);
            }
        }
        let ack_timeout = self.config.ack_timeout;
        let metrics = self.metrics.clone();
        for call_id in &call_ids {
            let ringing_here = |call: &mut Call| {
                (call.is_ringing() && *call.callee == *peer).then(|| {
                    if !call.callee_seen {
                        metrics.invitation_delivered(now.saturating_duration_since(call.invited));
                    }
                    call.callee_seen = true;
                    call.run_ack(now, ack_timeout);
                    invitation(call, now)
                })
            };
            if let Some(text) = self.calls.update(call_id, ringing_here).flatten() {
                self.peers.send(id, &text);
            }
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
                self.calls.update(&call_id, |call| {
                    if *call.caller == *peer {
                        call.caller_lost = Some(now);
                    } else if call.callee_seen {
                        call.callee_lost = Some(now);
                        call.pause_ack(now);
                    }
                });
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
        self.calls.remember(&call, now + self.config.invite_ttl.max(MIN_REMEMBERED));
        if let Some(relay) = &self.relay {
            relay.close(&call.id);
        }
    }
}
