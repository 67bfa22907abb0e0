//! The single node: where the call rules ([`rules`]) are applied to
//! memory. Every request that touches a call, every deadline and every
//! session that comes or goes is one decision under the hub's lock
//! ([`Hub::decide`]), so the first of accept,
//! refuse, cancel and expiry to reach a call wins and every later one sees
//! the outcome. Each decision first applies the deadlines that have passed,
//! so no call past its deadline is ever treated as ringing. Events are
//! encoded once and queued to the sessions' outboxes under the same lock,
//! so each session sees them in the order they were decided; log lines are
//! written after the lock is released.

use super::ServerConfig;
use super::calls::Invite;
use super::metrics::Metrics;
use super::outbound::{Kick, Outbound, SessionId, encode};
use super::relay::Relay;
use super::rules::{self, Acceptance};
use super::state::{State, ok};
use super::store::MemoryStore;
use crate::protocol::{MAX_SUBSCRIPTIONS, OkResult, ProtocolError, Req, Request, ServerMessage};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// Shared by every session of one server and by its timer task.
pub(crate) struct Hub {
    /// The configuration the sessions read (limits, timeouts, the secret).
    config: ServerConfig,
    /// Every call and session, behind the one lock all decisions take.
    state: Mutex<State>,
    /// Wakes the timer task when a decision moved the earliest deadline
    /// earlier than the one it sleeps until.
    deadline_moved: Notify,
    /// What the server counts; also in [`State`], for hooks under the lock.
    pub(super) metrics: Arc<Metrics>,
}

impl Hub {
    pub fn new(config: ServerConfig, relay: Option<Arc<Relay>>) -> Arc<Hub> {
        let metrics = Arc::new(Metrics::new());
        let calls = MemoryStore::new(config.offline_grace);
        let state = Mutex::new(State::new(config.clone(), calls, relay, metrics.clone()));
        Arc::new(Hub { state, config, deadline_moved: Notify::new(), metrics })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves no half-made decision worth refusing service for.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one decision: under the lock, applies the deadlines that have
    /// passed, then `decision`; after the lock, wakes the timer task if the
    /// decision set a deadline earlier than the one it sleeps until, and
    /// writes the log lines decided.
    fn decide<R>(&self, decision: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let (result, wake_timer, log) = {
            let mut state = self.lock();
            state.catch_up(now);
            let result = decision(&mut state, now);
            (result, state.timer_must_wake(), std::mem::take(&mut state.log))
        };
        if wake_timer {
            self.deadline_moved.notify_one();
        }
        for entry in log {
            entry.write();
        }
        result
    }

    /// The hub's one timer task: sleeps until the earliest deadline (or
    /// until a decision sets an earlier one), then applies what has passed.
    pub async fn sweep_forever(hub: Arc<Hub>) {
        loop {
            let wake = hub.decide(|state, _| state.arm_timer());
            hub.metrics.hub_answered();
            match wake {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = hub.deadline_moved.notified() => {}
                },
                None => hub.deadline_moved.notified().await,
            }
        }
    }

    /// Registers a logged-in session, replies to its `login`, then hands it
    /// the events kept for its peer and an `invitation` for each call still
    /// ringing for it. A peer with all the sessions it may have gets
    /// `too_many_sessions`, and nothing changes.
    pub fn login(
        &self,
        peer: &str,
        device: &str,
        req: Option<Req>,
        outbox: mpsc::Sender<Outbound>,
        kick: Kick,
    ) -> Result<SessionId, ProtocolError> {
        self.decide(|state, now| state.login(peer, device, req, outbox, kick, now))
    }

    /// Forgets a session (logout or closed socket).
    pub fn disconnect(&self, id: SessionId) {
        self.decide(|state, now| state.disconnect(id, now));
    }

    /// Applies a request from a logged-in session and queues its reply.
    pub fn handle(&self, id: SessionId, req: Option<Req>, request: Request) {
        self.decide(|state, now| {
            let Some(session) = state.peers.session(id) else { return };
            let peer = session.peer.clone();
            if let Err(e) = apply(state, id, &peer, &req, request, now) {
                state.peers.send(id, &encode(&e.into_message(req)));
            }
        });
    }
}

/// Applies one request of `peer`'s session `id`; queues its `ok` (the error
/// is the caller's to send).
fn apply(
    state: &mut State,
    id: SessionId,
    peer: &Arc<str>,
    req: &Option<Req>,
    request: Request,
    now: Instant,
) -> Result<(), ProtocolError> {
    match request {
        Request::Invite { call_id, callee_id, content, channel_id, media_key, media_commit } => {
            let invite = Invite { call_id, callee: callee_id, content, channel_id, media_key, media_commit };
            state.invite(id, peer, req, invite, now)
        }
        Request::MediaReveal { call_id, media_key } => state.reveal(id, peer, req, &call_id, media_key),
        Request::Cancel { call_id } => state.cancel(id, peer, req, &call_id, now),
        Request::Received { call_id } => {
            state.received(peer, &call_id);
            Ok(())
        }
        Request::Accept { call_id, response, media_key } => {
            let acceptance = Acceptance { response, media_key, device: String::new(), media: None };
            state.accept(id, peer, req, &call_id, acceptance, now)
        }
        Request::Refuse { call_id, response } => state.refuse(id, peer, req, &call_id, &response, now),
        Request::Hangup { call_id } => state.hangup(id, peer, req, &call_id, now),
        Request::QueryPresence { peer_ids } => {
            let online = state.online_map(&peer_ids);
            let reply = ServerMessage::Ok { req: req.clone(), result: OkResult::Presence { online } };
            state.peers.send(id, &encode(&reply));
            Ok(())
        }
        Request::SubscribePresence { peer_ids } => {
            if !state.peers.subscribe(id, &peer_ids, MAX_SUBSCRIPTIONS) {
                return Err(rules::too_many_subscriptions());
            }
            let online = state.online_map(&peer_ids);
            let reply = ServerMessage::Ok { req: req.clone(), result: OkResult::Presence { online } };
            state.peers.send(id, &encode(&reply));
            Ok(())
        }
        Request::UnsubscribePresence { peer_ids } => {
            state.peers.unsubscribe(id, &peer_ids);
            // The protocol answers it with `ok` like every other request.
            state.peers.send(id, &encode(&ok(req.clone())));
            Ok(())
        }
        Request::Login { .. } | Request::Logout | Request::RenewToken { .. } => {
            unreachable!("handled by the session")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;
    use std::time::Duration;

    /// A session's outbox, as the session task would hold it.
    fn outbox() -> (mpsc::Sender<Outbound>, mpsc::Receiver<Outbound>) {
        mpsc::channel(64)
    }

    /// What the hub queued in an outbox so far, decoded.
    fn drain(rx: &mut mpsc::Receiver<Outbound>) -> Vec<serde_json::Value> {
        std::iter::from_fn(|| rx.try_recv().ok()).map(|t| serde_json::from_str(t.as_str()).unwrap()).collect()
    }

    /// With no timer task running, the login is the first to look at the
    /// call at its deadline: it ends the call before registering the session.
    #[tokio::test(start_paused = true)]
    async fn a_login_at_the_deadline_ends_the_call_before_anything_is_sent() {
        let ttl = Duration::from_secs(10);
        let hub = Hub::new(ServerConfig { invite_ttl: ttl, ..Default::default() }, None);
        let (tx, mut alice) = outbox();
        let id = hub.login("alice", "", None, tx, Kick::default()).unwrap();
        let invite = Request::Invite {
            call_id: "c1".into(),
            callee_id: "bob".into(),
            content: String::new(),
            channel_id: String::new(),
            media_key: None,
            media_commit: None,
        };
        hub.handle(id, None, invite);
        tokio::time::advance(ttl).await;
        let (tx, mut bob) = outbox();
        hub.login("bob", "", None, tx, Kick::default()).unwrap();
        let bob = drain(&mut bob);
        assert_eq!(bob.len(), 1, "only the login reply: {bob:?}");
        assert_eq!(bob[0]["calls"], serde_json::json!([]), "{bob:?}");
        let alice = drain(&mut alice);
        let types: Vec<_> = alice.iter().map(|m| m["type"].as_str().unwrap_or("")).collect();
        assert_eq!(types, ["ok", "ok", "failure"], "{alice:?}");
        assert_eq!(alice[2]["reason"], "expired");
    }

    #[tokio::test]
    async fn a_login_beyond_the_sessions_of_a_peer_changes_nothing() {
        let hub = Hub::new(ServerConfig { max_sessions_per_peer: 1, ..Default::default() }, None);
        let (tx, _first) = outbox();
        let first = hub.login("bob", "b1", None, tx, Kick::default()).unwrap();
        let (tx, mut second) = outbox();
        let refused = hub.login("bob", "b2", None, tx.clone(), Kick::default()).unwrap_err();
        assert_eq!(refused.code, ErrorCode::TooManySessions);
        assert!(drain(&mut second).is_empty(), "the hub sent nothing to the refused session");
        // The refused login took no slot: once the first session goes, it may log in.
        hub.disconnect(first);
        hub.login("bob", "b2", None, tx, Kick::default()).unwrap();
        assert_eq!(drain(&mut second).len(), 1, "the login reply");
    }

    /// Counts the log events written, and those written while the hub's
    /// lock was held (a `try_lock` that fails on this one thread).
    struct LockProbe {
        hub: Arc<Hub>,
        events: Arc<std::sync::atomic::AtomicUsize>,
        under_lock: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LockProbe {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            use std::sync::atomic::Ordering::Relaxed;
            self.events.fetch_add(1, Relaxed);
            if self.hub.state.try_lock().is_err() {
                self.under_lock.fetch_add(1, Relaxed);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_logged_while_the_lock_is_held() {
        use std::sync::atomic::Ordering::Relaxed;
        use tracing_subscriber::layer::SubscriberExt;
        let ttl = Duration::from_secs(10);
        let hub = Hub::new(ServerConfig { invite_ttl: ttl, ..Default::default() }, None);
        let (events, under_lock) = (Arc::default(), Arc::default());
        let probe =
            LockProbe { hub: hub.clone(), events: Arc::clone(&events), under_lock: Arc::clone(&under_lock) };
        let _logging = tracing::subscriber::set_default(tracing_subscriber::registry().with(probe));
        let invite = |call_id: &str| Request::Invite {
            call_id: call_id.into(),
            callee_id: "bob".into(),
            content: String::new(),
            channel_id: String::new(),
            media_key: None,
            media_commit: None,
        };
        let (tx, _alice) = outbox();
        let alice = hub.login("alice", "a", None, tx, Kick::default()).unwrap();
        let (tx, _bob) = outbox();
        let bob = hub.login("bob", "b", None, tx, Kick::default()).unwrap();
        hub.handle(alice, None, invite("c1"));
        hub.handle(
            bob,
            None,
            Request::Accept { call_id: "c1".into(), response: String::new(), media_key: None },
        );
        hub.handle(alice, None, Request::Hangup { call_id: "c1".into() });
        hub.handle(alice, None, invite("c2"));
        tokio::time::advance(ttl).await;
        hub.disconnect(bob); // catches up first: c2 expires
        // Logged in twice, answered, hung up, expired.
        assert_eq!(events.load(Relaxed), 5);
        assert_eq!(under_lock.load(Relaxed), 0, "log lines written under the hub's lock");
    }
}
