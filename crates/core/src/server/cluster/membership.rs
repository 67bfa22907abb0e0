//! Sessions coming and going across the cluster, and nodes that die.
//!
//! A login registers the session in Redis (`sp:s:PEER`, field
//! `NODE/SESSION`) and under its node (`sp:ns:NODE`); a peer's first
//! session ends the offline grace of its calls and takes the events kept
//! for it, its last starts the grace. Each node renews a heartbeat
//! (`sp:hb:NODE`, ttl `--heartbeat-ttl`); every node looks for lapsed ones
//! and takes over such a node's sessions as if each had disconnected at
//! that moment ([`scripts`](super::scripts)'s `claim`). A node that finds
//! its own heartbeat gone (it stalled, or Redis lost its data) registers
//! its sessions again, as if each had logged in anew.

use super::record::{Committed, Guard, Transition};
use super::{ClusterHub, RETRIES, Unavailable, now_ms};
use crate::protocol::{LiveCall, OkResult, ProtocolError, Req, ServerMessage};
use crate::server::calls::UnixMs;
use crate::server::outbound::{Kick, Outbound, SessionId, encode};
use crate::server::rules;
use redis::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A session that left, or a peer that went offline, while Redis could not
/// be told (or not fully): retried until it is.
pub(super) struct Departure {
    peer: Arc<str>,
    /// This node's session that left; `None`: only the peer's calls are
    /// still to be marked (it went offline with a lapsed node).
    session: Option<SessionId>,
    /// When it left: the offline grace counts from then.
    at: UnixMs,
}

/// What the `login` script answered.
struct Arrival {
    /// Events kept for the peer while it had no session.
    kept: Vec<String>,
    /// The ids of the peer's live calls.
    calls: Vec<String>,
    /// Whether the session was still registered in Redis (registered again
    /// after this node's heartbeat lapsed): then it missed no event.
    was_registered: bool,
}

/// How one of a peer's calls looks to the session that just logged in.
struct Found {
    live: Option<LiveCall>,
    /// The invitation to hand it, for a call ringing at it.
    invitation: Option<Outbound>,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().filter_map(|v| redis::from_redis_value_ref(v).ok()).collect(),
        _ => Vec::new(),
    }
}

impl ClusterHub {
    pub(super) async fn log_in(
        &self,
        peer: &str,
        device: &str,
        req: Option<Req>,
        outbox: mpsc::Sender<Outbound>,
        kick: Kick,
    ) -> Result<SessionId, ProtocolError> {
        if !self.takes_logins() {
            return Err(super::Unavailable.into());
        }
        let (id, peer) = {
            let mut local = self.local();
            let (id, _) = local.peers.add_session(peer, device, outbox, kick).expect("no local cap");
            local.held.insert(id, Vec::new());
            let peer = local.peers.session(id).expect("just added").peer.clone();
            (id, peer)
        };
        match self.arrive(&peer, id, device).await {
            Ok(Some((arrival, found))) => {
                let calls = found.iter().filter_map(|f| f.live.clone()).collect();
                let session = uuid::Uuid::new_v4().simple().to_string();
                let reply = encode(&ServerMessage::Ok { req, result: OkResult::Login { session, calls } });
                let mut local = self.local();
                let held = local.held.remove(&id).unwrap_or_default();
                local.peers.send(id, &reply);
                for text in arrival.kept.iter().map(|t| Outbound::from(t.clone())) {
                    local.peers.send(id, &text);
                }
                for text in found.iter().filter_map(|f| f.invitation.as_ref()).chain(&held) {
                    local.peers.send(id, text);
                }
                drop(local);
                // Whether the peer came online is cluster-wide: `peers_online` is not kept per node.
                self.metrics.session_opened(false);
                tracing::debug!(peer = %peer, device, session = id, "logged in");
                Ok(id)
            }
            refused => {
                let mut local = self.local();
                local.held.remove(&id);
                local.peers.remove_session(id, tokio::time::Instant::now());
                match refused {
                    Ok(_) => Err(rules::too_many_sessions(&peer, self.config.max_sessions_per_peer)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Registers session `id` of `peer` in Redis and brings its calls up to
    /// date; `None` if the peer already has all the sessions it may.
    async fn arrive(
        &self,
        peer: &Arc<str>,
        id: SessionId,
        device: &str,
    ) -> Result<Option<(Arrival, Vec<Found>)>, ProtocolError> {
        let mut invocation = self.scripts.login.prepare_invoke();
        invocation.arg(&**peer).arg(&*self.node).arg(id).arg(device).arg(self.config.max_sessions_per_peer);
        let mut redis = self.redis.clone();
        let answer: Vec<Value> = self.redis(invocation.invoke_async(&mut redis)).await?;
        let came_online = match answer.first() {
            Some(Value::Int(2)) => true,
            Some(Value::Int(1)) => false,
            _ => return Ok(None),
        };
        let arrival = Arrival {
            kept: answer.get(1).map(strings).unwrap_or_default(),
            calls: answer.get(2).map(strings).unwrap_or_default(),
            was_registered: matches!(answer.get(3), Some(Value::Int(0))),
        };
        let mut found = Vec::new();
        for call_id in &arrival.calls {
            found.push(self.found(peer, call_id, came_online).await?);
        }
        Ok(Some((arrival, found)))
    }

    /// Brings call `call_id` up to date with `peer` having a session again:
    /// its offline grace ends (if it `came_online`), and a call ringing at
    /// it starts (or resumes) its ack timeout and is handed over.
    async fn found(&self, peer: &Arc<str>, call_id: &str, came_online: bool) -> Result<Found, Unavailable> {
        for _ in 0..RETRIES {
            let Some(read) = self.read(call_id).await? else {
                return Ok(Found { live: None, invitation: None });
            };
            let now = now_ms();
            let mut record = read.record.clone();
            let arrival = rules::arrive(&mut record.call, peer, came_online, now, self.config.ack_timeout);
            if let Some(waited) = arrival.first_reached {
                self.metrics.invitation_delivered(waited);
            }
            let found = Found { live: arrival.live, invitation: arrival.invitation };
            let unchanged = serde_json::to_string(&record).is_ok_and(|json| json == read.raw);
            if unchanged {
                return Ok(found);
            }
            let transition =
                Transition::guarded_update(&read, record, Guard { peer: peer.clone(), online: true });
            match self.commit(&transition).await? {
                Committed::Stale => continue,
                _ => return Ok(found),
            }
        }
        Ok(Found { live: None, invitation: None })
    }

    /// Forgets session `id` here and in Redis.
    pub(super) async fn leave(&self, id: SessionId) {
        let (peer, unwatched) = {
            let mut local = self.local();
            let watched = local.peers.subscriptions(id);
            let Some((peer, _)) = local.peers.remove_session(id, tokio::time::Instant::now()) else { return };
            let unwatched: Vec<Arc<str>> =
                watched.into_iter().filter(|p| !local.peers.is_watched(p)).collect();
            (peer, unwatched)
        };
        self.metrics.session_closed(false);
        self.unwatch(&unwatched).await;
        let at = now_ms();
        if self.depart(&peer, &self.node, id, at).await.is_err() {
            self.retry_later(Departure { peer, session: Some(id), at });
        }
    }

    fn retry_later(&self, departure: Departure) {
        self.departures.lock().unwrap_or_else(|p| p.into_inner()).push(departure);
    }

    /// Removes session `id` of `node` from Redis as of `at`; when it was its
    /// peer's last, starts the offline grace of the peer's calls.
    async fn depart(
        &self,
        peer: &Arc<str>,
        node: &str,
        id: SessionId,
        at: UnixMs,
    ) -> Result<(), Unavailable> {
        let grace = self.config.offline_grace.as_millis() as u64;
        let mut invocation = self.scripts.leave.prepare_invoke();
        invocation.arg(&**peer).arg(node).arg(id).arg(at.0).arg(grace.max(1));
        let mut redis = self.redis.clone();
        let answer: Value = self.redis(invocation.invoke_async(&mut redis)).await?;
        for call_id in strings(&answer) {
            self.lost(peer, &call_id, at).await?;
        }
        Ok(())
    }

    /// Marks `peer` as without a session since `at` in call `call_id`
    /// (the caller always, the callee once it has seen the invitation),
    /// unless it is back online by then.
    pub(super) async fn lost(&self, peer: &Arc<str>, call_id: &str, at: UnixMs) -> Result<(), Unavailable> {
        for _ in 0..RETRIES {
            let Some(read) = self.read(call_id).await? else { return Ok(()) };
            let mut record = read.record.clone();
            if !rules::went_offline(&mut record.call, peer, at) {
                return Ok(());
            }
            let transition =
                Transition::guarded_update(&read, record, Guard { peer: peer.clone(), online: false });
            if self.commit(&transition).await? != Committed::Stale {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The heartbeat task: renews this node's heartbeat, registers its
/// sessions again if the heartbeat had lapsed, retries departures Redis
/// missed, and takes over the sessions of nodes whose heartbeat lapsed.
pub(super) async fn heartbeat_forever(hub: Arc<ClusterHub>) {
    let ttl = hub.config.cluster.as_ref().map_or(Duration::from_secs(5), |c| c.heartbeat_ttl);
    let period = (ttl / 5).max(Duration::from_millis(50));
    // This node's sessions from before a restart under the same name are
    // gone; logins wait for this, or it would remove theirs too.
    while hub.claim(&hub.node.clone(), true).await.is_err() {
        tokio::time::sleep(period).await;
    }
    hub.startup.send_modify(|s| s.cleared = true);
    let mut first = true;
    // Since when every beat has reached Redis. Another node's lapsed
    // heartbeat only counts once that is a ttl ago: a Redis that was away
    // took every heartbeat with it, and each node needs a beat to renew its
    // own before the others may take it for lost.
    let mut reachable_since: Option<tokio::time::Instant> = None;
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        hub.metrics.hub_answered();
        hub.local().peers.forget_lapsed(tokio::time::Instant::now());
        let mut invocation = hub.scripts.beat.prepare_invoke();
        invocation.arg(&*hub.node).arg(ttl.as_millis() as u64);
        let mut redis = hub.redis.clone();
        let Ok((had, live_calls, peers_online)) =
            hub.redis::<(i64, i64, i64)>(invocation.invoke_async(&mut redis)).await
        else {
            reachable_since = None;
            continue;
        };
        hub.metrics.cluster_now(live_calls, peers_online);
        let since = *reachable_since.get_or_insert_with(tokio::time::Instant::now);
        if had == 0 && !first {
            tracing::warn!(node = %hub.node, "this node's heartbeat had lapsed; registering its sessions again");
            hub.reattach().await;
        }
        first = false;
        hub.retry_departures().await;
        if since.elapsed() >= ttl {
            hub.reap_lapsed_nodes().await;
        }
    }
}

impl ClusterHub {
    /// Registers every local session in Redis again, as a login would.
    async fn reattach(&self) {
        let sessions: Vec<(SessionId, Arc<str>, Arc<str>)> = {
            let local = self.local();
            local
                .peers
                .session_ids()
                .filter_map(|id| {
                    let s = local.peers.session(id)?;
                    Some((id, s.peer.clone(), s.device.clone()))
                })
                .collect()
        };
        for (id, peer, device) in sessions {
            if let Ok(Some((arrival, found))) = self.arrive(&peer, id, &device).await {
                if arrival.was_registered {
                    // Nobody took it over (Redis was away, with its data
                    // kept): it has had every invitation already.
                    continue;
                }
                for text in arrival.kept.into_iter().map(Outbound::from) {
                    self.send_local(id, &text);
                }
                for text in found.into_iter().filter_map(|f| f.invitation) {
                    self.send_local(id, &text);
                }
            }
        }
    }

    async fn retry_departures(&self) {
        let waiting = std::mem::take(&mut *self.departures.lock().unwrap_or_else(|p| p.into_inner()));
        for departure in waiting {
            let Departure { peer, session, at } = &departure;
            let done = match session {
                Some(id) => self.depart(peer, &self.node, *id, *at).await,
                None => self.mark_offline(peer, *at).await,
            };
            if done.is_err() {
                self.retry_later(departure);
            }
        }
    }

    /// Marks `peer` as without a session since `at` in each of its calls.
    async fn mark_offline(&self, peer: &Arc<str>, at: UnixMs) -> Result<(), Unavailable> {
        let mut redis = self.redis.clone();
        let calls: Vec<String> = self
            .redis(
                redis::cmd("SUNION")
                    .arg(format!("sp:ch:{peer}"))
                    .arg(format!("sp:rg:{peer}"))
                    .query_async(&mut redis),
            )
            .await?;
        for call_id in calls {
            self.lost(peer, &call_id, at).await?;
        }
        Ok(())
    }

    async fn reap_lapsed_nodes(&self) {
        let mut redis = self.redis.clone();
        let Ok(nodes) =
            self.redis::<Vec<String>>(redis::cmd("SMEMBERS").arg("sp:nodes").query_async(&mut redis)).await
        else {
            return;
        };
        for node in nodes.iter().filter(|n| **n != *self.node) {
            let _ = self.claim(node, false).await;
        }
    }

    /// Takes over the sessions of `node` if its heartbeat has lapsed (or,
    /// `forced`, whatever it left): each as disconnected now.
    async fn claim(&self, node: &str, forced: bool) -> Result<(), Unavailable> {
        let now = now_ms();
        let grace = self.config.offline_grace.as_millis() as u64;
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation.arg(node).arg(if forced { "1" } else { "0" }).arg(now.0).arg(grace.max(1));
        let mut redis = self.redis.clone();
        let offline: Vec<(String, Vec<String>)> = self.redis(invocation.invoke_async(&mut redis)).await?;
        if !offline.is_empty() && !forced {
            tracing::warn!(
                node,
                peers = offline.len(),
                "a node's heartbeat lapsed: its sessions are disconnected"
            );
        }
        for (peer, calls) in offline {
            let peer: Arc<str> = peer.into();
            for call_id in calls {
                if self.lost(&peer, &call_id, now).await.is_err() {
                    self.retry_later(Departure { peer: peer.clone(), session: None, at: now });
                    break;
                }
            }
        }
        Ok(())
    }
}
