//! The one place where calls are decided. Every request that touches a
//! call, every timer and every session that comes or goes takes the hub's
//! lock, so the first of accept, refuse, cancel and expiry to reach a call
//! wins and every later one sees the outcome. Events are encoded once and
//! queued to the sessions' outboxes under the same lock, so each session
//! sees them in the order they were decided.

use super::ServerConfig;
use super::calls::{Ack, Call, Calls, Phase};
use super::metrics::Metrics;
use super::peers::Peers;
use crate::protocol::{
    CancelReason, ErrorCode, FailureReason, HangupReason, MAX_SUBSCRIPTIONS, OkResult, ProtocolError, Req,
    Request, Role, ServerMessage,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Ended calls are remembered for the invite ttl, but never less than this,
/// so late answers get `already_ended` even with a ttl of milliseconds.
const MIN_REMEMBERED: Duration = Duration::from_secs(10);

/// Identifies one logged-in connection.
pub(crate) type SessionId = u64;

/// What a connection's task is asked to write: one encoded message, shared
/// (not copied) between every session it goes to.
pub(crate) type Outbound = Utf8Bytes;

/// Set when a session's outbox overflows: its client is not reading its
/// events, and the session closes the connection the next time it looks.
pub(crate) type Kick = Arc<std::sync::atomic::AtomicBool>;

/// Shared by every session and timer of one server.
pub(crate) struct Hub {
    pub(super) config: ServerConfig,
    /// What the server counts; also in [`State`], for hooks under the lock.
    pub(super) metrics: Arc<Metrics>,
    state: Mutex<State>,
}

/// Everything behind the lock.
pub(super) struct State {
    pub(super) peers: Peers,
    pub(super) calls: Calls,
    /// The hub's metrics, for decisions recorded under the lock.
    pub(super) metrics: Arc<Metrics>,
}

pub(super) fn encode(message: &ServerMessage) -> Utf8Bytes {
    message.to_json().into()
}

fn ok(req: Option<Req>) -> ServerMessage {
    ServerMessage::Ok { req, result: OkResult::Empty {} }
}

fn err(code: ErrorCode, message: String) -> ProtocolError {
    ProtocolError::new(code, message)
}

/// How an ended call is named in the log.
#[derive(Clone, Copy)]
pub(super) enum Outcome {
    Canceled,
    Refused,
    Failed(FailureReason),
    HungUp(HangupReason),
}

impl Hub {
    pub fn new(config: ServerConfig) -> Arc<Hub> {
        let grace = config.offline_grace;
        let metrics = Arc::new(Metrics::new());
        Arc::new(Hub {
            config,
            metrics: metrics.clone(),
            state: Mutex::new(State { peers: Peers::new(grace), calls: Calls::default(), metrics }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves no half-made decision worth refusing service for.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets ended calls and lapsed peers, every so often, forever.
    pub async fn sweep_forever(hub: Arc<Hub>) {
        let period = hub
            .config
            .invite_ttl
            .min(hub.config.offline_grace)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let mut state = hub.lock();
            hub.metrics.hub_answered();
            state.calls.sweep(now);
            state.peers.sweep(now);
        }
    }

    /// Registers a logged-in session, replies to its `login`, then hands it
    /// the events kept for its peer and an `invitation` for each call still
    /// ringing for it.
    pub fn login(
        &self,
        peer: &str,
        device: &str,
        req: Option<Req>,
        outbox: mpsc::Sender<Outbound>,
        kick: Kick,
    ) -> SessionId {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let (id, came_online) = state.peers.add_session(peer, device, outbox, kick);
        self.metrics.session_opened(came_online);
        let call_ids: Vec<Arc<str>> =
            state.peers.get(peer).map(|p| p.calls.iter().cloned().collect()).unwrap_or_default();
        if came_online {
            state.presence_changed(peer, true);
            for call_id in &call_ids {
                if let Some(call) = state.calls.live.get_mut(call_id) {
                    if *call.caller == *peer {
                        call.caller_lost = None;
                    } else {
                        call.callee_lost = None;
                    }
                    call.wake.notify_one();
                }
            }
        }
        let calls = call_ids.iter().filter_map(|c| state.calls.live.get(c)?.as_live(peer)).collect();
        let session = uuid::Uuid::new_v4().simple().to_string();
        state.peers.send(id, &encode(&ServerMessage::Ok { req, result: OkResult::Login { session, calls } }));
        if came_online {
            for text in state.peers.take_queue(peer, now) {
                state.peers.send(id, &text);
            }
        }
        for call_id in &call_ids {
            if let Some(call) = state.calls.live.get_mut(call_id)
                && call.is_ringing()
                && *call.callee == *peer
            {
                let text = invitation(call, now);
                state.peers.send(id, &text);
                if !call.callee_seen {
                    self.metrics.invitation_delivered(now.saturating_duration_since(call.invited));
                }
                call.callee_seen = true;
                call.run_ack(now, self.config.ack_timeout);
                call.wake.notify_one();
            }
        }
        tracing::debug!(peer, device, session = id, "logged in");
        id
    }

    /// Forgets a session (logout or closed socket). When it was its peer's
    /// last, the peer goes offline: presence says so at once, and the
    /// offline grace starts for each call the peer has seen.
    pub fn disconnect(&self, id: SessionId) {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some((peer, went_offline)) = state.peers.remove_session(id, now) else { return };
        self.metrics.session_closed(went_offline);
        if went_offline {
            state.presence_changed(&peer, false);
            let call_ids: Vec<Arc<str>> =
                state.peers.get(&peer).map(|p| p.calls.iter().cloned().collect()).unwrap_or_default();
            for call_id in call_ids {
                if let Some(call) = state.calls.live.get_mut(&call_id) {
                    if *call.caller == *peer {
                        call.caller_lost = Some(now);
                    } else if call.callee_seen {
                        call.callee_lost = Some(now);
                        call.pause_ack(now);
                    }
                    call.wake.notify_one();
                }
            }
        }
        state.peers.forget_if_idle(&peer, now);
    }

    /// Applies a request from a logged-in session and queues its reply.
    pub fn handle(self: &Arc<Self>, id: SessionId, req: Option<Req>, request: Request) {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(session) = state.peers.session(id) else { return };
        let peer = session.peer.clone();
        let result = match request {
            Request::Invite { call_id, callee_id, content, channel_id } => {
                self.invite(state, id, &peer, &req, call_id, callee_id, content, channel_id, now)
            }
            Request::Cancel { call_id } => state.cancel(id, &peer, &req, &call_id, now, &self.config),
            Request::Received { call_id } => {
                state.received(&peer, &call_id);
                return;
            }
            Request::Accept { call_id, response } => state.accept(id, &peer, &req, &call_id, &response, now),
            Request::Refuse { call_id, response } => {
                state.refuse(id, &peer, &req, &call_id, &response, now, &self.config)
            }
            Request::Hangup { call_id } => state.hangup(id, &peer, &req, &call_id, now, &self.config),
            Request::QueryPresence { peer_ids } => {
                let online = state.online_map(&peer_ids);
                state
                    .peers
                    .send(id, &encode(&ServerMessage::Ok { req, result: OkResult::Presence { online } }));
                return;
            }
            Request::SubscribePresence { peer_ids } => {
                if state.peers.subscribe(id, &peer_ids, MAX_SUBSCRIPTIONS) {
                    let online = state.online_map(&peer_ids);
                    state
                        .peers
                        .send(id, &encode(&ServerMessage::Ok { req, result: OkResult::Presence { online } }));
                    return;
                }
                Err(err(
                    ErrorCode::TooManySubscriptions,
                    format!("a session may watch at most {MAX_SUBSCRIPTIONS} peers"),
                ))
            }
            Request::UnsubscribePresence { peer_ids } => {
                state.peers.unsubscribe(id, &peer_ids);
                // The protocol answers it with `ok` like every other request.
                state.peers.send(id, &encode(&ok(req.clone())));
                Ok(())
            }
            Request::Login { .. } | Request::Logout => unreachable!("handled by the session"),
        };
        match result {
            Ok(()) => {}
            Err(e) => state.peers.send(id, &encode(&e.into_message(req))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn invite(
        self: &Arc<Self>,
        state: &mut State,
        id: SessionId,
        caller: &Arc<str>,
        req: &Option<Req>,
        call_id: String,
        callee: String,
        content: String,
        channel_id: String,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if *callee == **caller {
            return Err(ProtocolError::invalid_argument("callee_id must not be your own peer_id"));
        }
        if state.calls.exists(&call_id) {
            return Err(err(ErrorCode::DuplicateCallId, format!("call id {call_id} is already in use")));
        }
        let max = self.config.max_calls_per_peer;
        for who in [&**caller, callee.as_str()] {
            if state.peers.call_count(who) >= max {
                return Err(err(
                    ErrorCode::TooManyCalls,
                    format!("{who} already takes part in {max} live calls"),
                ));
            }
        }
        let callee = state.peers.intern(&callee);
        let call_id: Arc<str> = call_id.into();
        let online = state.peers.is_online(&callee);
        let mut call = Call {
            id: call_id.clone(),
            caller: caller.clone(),
            callee: callee.clone(),
            content,
            channel_id,
            invited: now,
            phase: Phase::Ringing {
                expires: now + self.config.invite_ttl,
                received: false,
                ack: Ack::NotStarted,
            },
            callee_seen: online,
            caller_lost: None,
            callee_lost: if online { None } else { Some(now) },
            wake: Arc::new(Notify::new()),
        };
        state.peers.send(id, &encode(&ok(req.clone())));
        if online {
            call.run_ack(now, self.config.ack_timeout);
            state.peers.send_to_peer(&callee, &invitation(&call, now), None, true);
            self.metrics.invitation_delivered(call.invited.elapsed());
        }
        for who in [caller, &callee] {
            if let Some(p) = state.peers.get_mut(who) {
                p.calls.insert(call_id.clone());
            }
        }
        let wake = call.wake.clone();
        state.calls.live.insert(call_id.clone(), call);
        self.metrics.call_placed();
        tokio::spawn(super::expiry::watch_call(self.clone(), call_id, wake));
        Ok(())
    }
}

/// The `invitation` event for a ringing call, with the time it has left.
fn invitation(call: &Call, now: Instant) -> Utf8Bytes {
    let expires = match call.phase {
        Phase::Ringing { expires, .. } => expires,
        Phase::Accepted { .. } => now,
    };
    encode(&ServerMessage::Invitation {
        call_id: call.id.to_string(),
        caller_id: call.caller.to_string(),
        content: call.content.clone(),
        channel_id: call.channel_id.clone(),
        expires_in_ms: expires.saturating_duration_since(now).as_millis() as u64,
    })
}

impl State {
    fn online_map(&self, peers: &[String]) -> BTreeMap<String, bool> {
        peers.iter().map(|p| (p.clone(), self.peers.is_online(p))).collect()
    }

    fn presence_changed(&self, peer: &str, online: bool) {
        if self.peers.is_watched(peer) {
            let text = encode(&ServerMessage::Presence { peer_id: peer.to_owned(), online });
            self.peers.send_to_watchers(peer, &text);
        }
    }

    /// Records an ended call, logs its outcome and stops its timer task.
    pub(super) fn end(&mut self, call: Call, outcome: Outcome, now: Instant, config: &ServerConfig) {
        let (name, since) = match (outcome, &call.phase) {
            (Outcome::Canceled, _) => ("canceled", call.invited),
            (Outcome::Refused, _) => ("refused", call.invited),
            (Outcome::Failed(FailureReason::PeerOffline), _) => ("peer_offline", call.invited),
            (Outcome::Failed(FailureReason::CallerOffline), _) => ("caller_offline", call.invited),
            (Outcome::Failed(FailureReason::PeerNoResponse), _) => ("peer_no_response", call.invited),
            (Outcome::Failed(_), _) => ("expired", call.invited),
            (Outcome::HungUp(HangupReason::Hangup), Phase::Accepted { at }) => ("hung_up", *at),
            (Outcome::HungUp(_), Phase::Accepted { at }) => ("lost", *at),
            (Outcome::HungUp(_), Phase::Ringing { .. }) => ("hung_up", call.invited),
        };
        tracing::info!(
            call_id = %call.id, caller = %call.caller, callee = %call.callee, outcome = name,
            duration_ms = now.saturating_duration_since(since).as_millis() as u64,
            "call ended"
        );
        self.metrics.call_ended(name);
        for who in [&call.caller, &call.callee] {
            if let Some(p) = self.peers.get_mut(who) {
                p.calls.remove(&call.id);
            }
            self.peers.forget_if_idle(who, now);
        }
        self.calls.remember(&call, now + config.invite_ttl.max(MIN_REMEMBERED));
        call.wake.notify_one();
    }

    fn cancel(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ProtocolError> {
        match self.calls.live.get(call_id) {
            Some(call) if *call.caller == *peer => {
                if !call.is_ringing() {
                    return Err(err(ErrorCode::AlreadyAccepted, format!("call {call_id} was accepted")));
                }
            }
            _ => return Err(self.ended_error(call_id, peer, Role::Caller)),
        }
        let call = self.calls.live.remove(call_id).expect("checked above");
        self.peers.send(id, &encode(&ok(req.clone())));
        let text = encode(&ServerMessage::Canceled {
            call_id: call_id.to_owned(),
            reason: CancelReason::CallerCanceled,
        });
        self.peers.send_to_peer(&call.callee, &text, None, call.callee_seen);
        self.end(call, Outcome::Canceled, now, config);
        Ok(())
    }

    fn received(&mut self, peer: &str, call_id: &str) {
        let Some(call) = self.calls.live.get_mut(call_id) else { return };
        if *call.callee != *peer {
            return;
        }
        if let Phase::Ringing { received, ack, .. } = &mut call.phase
            && !*received
        {
            *received = true;
            // No wake-up: the timer task finds the ack deadline gone when it fires.
            *ack = Ack::Done;
            let text = encode(&ServerMessage::ReceivedByPeer { call_id: call_id.to_owned() });
            let caller = call.caller.clone();
            self.peers.send_to_peer(&caller, &text, None, true);
        }
    }

    /// Checks that `peer` may answer `call_id` as its callee.
    fn check_answerable(&self, peer: &str, call_id: &str) -> Result<(), ProtocolError> {
        match self.calls.live.get(call_id) {
            Some(call) if *call.callee == *peer => {
                if call.is_ringing() {
                    Ok(())
                } else {
                    Err(err(ErrorCode::AlreadyEnded, format!("call {call_id} was already answered")))
                }
            }
            _ => Err(self.ended_error(call_id, peer, Role::Callee)),
        }
    }

    fn accept(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        response: &str,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        self.check_answerable(peer, call_id)?;
        let device = self.peers.session(id).map(|s| s.device.to_string()).unwrap_or_default();
        let call = self.calls.live.get_mut(call_id).expect("checked above");
        // No wake-up: deadlines only went away; the timer task sees that when it fires.
        call.phase = Phase::Accepted { at: now };
        self.metrics.call_accepted();
        tracing::info!(call_id, caller = %call.caller, callee = %call.callee, outcome = "accepted",
            duration_ms = now.saturating_duration_since(call.invited).as_millis() as u64, "call answered");
        let (caller, callee) = (call.caller.clone(), call.callee.clone());
        self.peers.send(id, &encode(&ok(req.clone())));
        let accepted =
            ServerMessage::Accepted { call_id: call_id.to_owned(), response: response.to_owned(), device };
        self.peers.send_to_peer(&caller, &encode(&accepted), None, true);
        let elsewhere =
            ServerMessage::Canceled { call_id: call_id.to_owned(), reason: CancelReason::AnsweredElsewhere };
        self.peers.send_to_peer(&callee, &encode(&elsewhere), Some(id), true);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        response: &str,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ProtocolError> {
        self.check_answerable(peer, call_id)?;
        let call = self.calls.live.remove(call_id).expect("checked above");
        self.peers.send(id, &encode(&ok(req.clone())));
        let refused = ServerMessage::Refused { call_id: call_id.to_owned(), response: response.to_owned() };
        self.peers.send_to_peer(&call.caller, &encode(&refused), None, true);
        let elsewhere =
            ServerMessage::Canceled { call_id: call_id.to_owned(), reason: CancelReason::RefusedElsewhere };
        self.peers.send_to_peer(&call.callee, &encode(&elsewhere), Some(id), true);
        self.end(call, Outcome::Refused, now, config);
        Ok(())
    }

    fn hangup(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        now: Instant,
        config: &ServerConfig,
    ) -> Result<(), ProtocolError> {
        let not_found = || err(ErrorCode::NotFound, format!("no accepted call {call_id} of yours"));
        match self.calls.live.get(call_id) {
            Some(call) if call.role_of(peer).is_some() => {
                if call.is_ringing() {
                    return Err(not_found());
                }
            }
            Some(_) => return Err(not_found()),
            None => {
                return Err(match self.calls.ended.get(call_id) {
                    Some(e) if e.accepted && (*e.caller == *peer || *e.callee == *peer) => {
                        err(ErrorCode::AlreadyEnded, format!("call {call_id} was already hung up"))
                    }
                    _ => not_found(),
                });
            }
        }
        let call = self.calls.live.remove(call_id).expect("checked above");
        self.peers.send(id, &encode(&ok(req.clone())));
        let text = encode(&ServerMessage::HungUp {
            call_id: call_id.to_owned(),
            reason: HangupReason::Hangup,
            by: peer.to_owned(),
        });
        self.peers.send_to_peer(&call.caller, &text, Some(id), true);
        self.peers.send_to_peer(&call.callee, &text, Some(id), true);
        self.end(call, Outcome::HungUp(HangupReason::Hangup), now, config);
        Ok(())
    }

    /// The error for an action on a call that is not live for `peer` in `role`.
    fn ended_error(&self, call_id: &str, peer: &str, role: Role) -> ProtocolError {
        let mine = |e: &super::calls::Ended| match role {
            Role::Caller => *e.caller == *peer,
            Role::Callee => *e.callee == *peer,
        };
        match self.calls.ended.get(call_id) {
            Some(e) if mine(e) && role == Role::Caller && e.accepted => {
                err(ErrorCode::AlreadyAccepted, format!("call {call_id} was accepted"))
            }
            Some(e) if mine(e) => err(ErrorCode::AlreadyEnded, format!("call {call_id} has ended")),
            _ => {
                let role = if role == Role::Caller { "caller" } else { "callee" };
                err(ErrorCode::NotFound, format!("no call {call_id} in which you are the {role}"))
            }
        }
    }
}
