//! A node of a cluster: the hub's decisions made over state that every
//! node shares in Redis (`--redis`, `docs/scale-out.md`).
//!
//! What this node owns is only its connections: their outboxes, their
//! presence subscriptions ([`Peers`], as a single node keeps them). Calls,
//! the sessions of every peer, kept events and deadlines live in Redis,
//! and every change to them is one Lua script ([`scripts`]): a call's
//! transition is a compare-and-set on its key that also publishes the
//! events it causes to the nodes holding the sessions they are for (a
//! channel per node, [`bus`]). Deadlines are a sorted set every node sweeps
//! ([`sweep`]); each node renews a heartbeat, and the others take over the
//! sessions of a node whose heartbeat lapses ([`membership`]). While Redis
//! cannot be reached, requests that need it get `unavailable`; sessions
//! stay, and the outage is logged once.

use super::ServerConfig;
use super::calls::UnixMs;
use super::metrics::Metrics;
use super::outbound::{Kick, Outbound, SessionId, encode};
use super::peers::Peers;
use super::relay::Relay;
use crate::protocol::{ErrorCode, ProtocolError, Req, Request};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

mod bus;
mod connect;
mod membership;
mod record;
mod relay_audit;
mod requests;
mod scripts;
mod sweep;

pub use connect::redis_client;
use scripts::Scripts;

/// How long one Redis request may take before it counts as an outage.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a read-decide-commit that lost a race is tried again before
/// the request gets `internal` (a call changed that often in so short a
/// time is a bug, not a busy call).
const RETRIES: usize = 32;

/// Shared by every session of one node and by its background tasks.
pub(crate) struct ClusterHub {
    /// The configuration the sessions read (limits, timeouts, the secret).
    config: ServerConfig,
    /// This node's name: its channel, the owner of its sessions in Redis.
    node: Arc<str>,
    /// Commands and scripts; reconnects with backoff by itself.
    redis: ConnectionManager,
    scripts: Scripts,
    /// This node's connections, behind a lock held only for local work.
    local: Mutex<Local>,
    /// The media relay of this node, for the calls it accepts.
    relay: Option<Arc<Relay>>,
    /// This node's own `/media` URL, handed to callers on other nodes for
    /// the relay's fallback (`None` when it listens on every interface and
    /// cannot name one: then the path is handed, as on a single node).
    media_url: Option<String>,
    /// What the node counts.
    pub(super) metrics: Arc<Metrics>,
    /// Whether Redis was unreachable at the last try: an outage is logged
    /// once when it starts and once when it ends, not per request.
    redis_down: AtomicBool,
    /// The deadline (ms) the sweeper sleeps until; a decision that sets an
    /// earlier one wakes it through `deadline_moved`.
    sweeper_wakes_at: AtomicU64,
    deadline_moved: Notify,
    /// Sessions that closed while Redis was unreachable: removed from Redis
    /// by the heartbeat task once it is back, so no peer stays online.
    departures: Mutex<Vec<membership::Departure>>,
    /// The node's background tasks, stopped at shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The calls of this node's sessions as last seen (id to record JSON):
    /// from its own commits and from the records carried with the events it
    /// receives. A transition is tried with the one remembered, saving a
    /// read; the compare-and-set refuses a stale one, which is then read
    /// afresh. Only an optimisation: forgetting is always safe.
    known: Mutex<HashMap<Arc<str>, String>>,
    /// How far this node is from taking logins (see [`Startup`]).
    startup: watch::Sender<Startup>,
}

/// What must hold for a node to take logins; until it does they get
/// `unavailable`.
#[derive(Debug, Clone, Copy, Default)]
struct Startup {
    /// Its sessions from a former run under the same name are gone from
    /// Redis: that clean-up would remove a new login's session too.
    cleared: bool,
    /// It is subscribed to its channel: a session registered in Redis must
    /// hear the events published for it. False again while the
    /// subscription is down.
    listening: bool,
}

impl Startup {
    fn takes_logins(&self) -> bool {
        self.cleared && self.listening
    }
}

/// This node's own connections.
struct Local {
    /// The sessions on this node, their outboxes and presence subscriptions.
    peers: Peers,
    /// Sessions whose login is being decided: events for them wait here,
    /// so the login reply is the first thing each one is sent.
    held: HashMap<SessionId, Vec<Outbound>>,
}

/// Calls remembered at most ([`ClusterHub::known`]); past it the memory is
/// dropped whole (calls of peers that went offline are never told to end here).
const KNOWN_CALLS: usize = 65_536;

/// Redis could not be reached (or answered with an error) for a request.
#[derive(Debug)]
pub(super) struct Unavailable;

impl From<Unavailable> for ProtocolError {
    fn from(_: Unavailable) -> Self {
        ProtocolError::new(ErrorCode::Unavailable, "the cluster's shared store cannot be reached; try again")
    }
}

/// The time every node of the cluster counts deadlines in.
fn now_ms() -> UnixMs {
    UnixMs(crate::clock::unix_millis())
}

impl ClusterHub {
    /// Joins the cluster `config.cluster` names and starts the node's
    /// background tasks. Redis need not be up: the node serves
    /// `unavailable` until it is. A URL that is not a Redis URL is an error.
    pub fn start(
        config: ServerConfig,
        relay: Option<Arc<Relay>>,
        metrics: Arc<Metrics>,
        listening: Option<std::net::SocketAddr>,
    ) -> redis::RedisResult<Arc<ClusterHub>> {
        let cluster = config.cluster.clone().expect("a cluster configuration");
        let client = redis_client(cluster.redis_url.as_str(), cluster.redis_ca.as_deref())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client, manager_config)?;
        let local_peers = Peers::new(config.offline_grace, usize::MAX);
        let scheme = if config.tls.is_some() { "wss" } else { "ws" };
        let media_url = listening
            .filter(|addr| !addr.ip().is_unspecified())
            .map(|addr| format!("{scheme}://{addr}{}", crate::protocol::relay::MEDIA_WS_PATH));
        let hub = Arc::new(ClusterHub {
            node: cluster.node_id.as_str().into(),
            redis,
            scripts: Scripts::new(),
            local: Mutex::new(Local { peers: local_peers, held: HashMap::new() }),
            relay,
            media_url,
            metrics,
            redis_down: AtomicBool::new(false),
            sweeper_wakes_at: AtomicU64::new(u64::MAX),
            deadline_moved: Notify::new(),
            departures: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            known: Mutex::new(HashMap::new()),
            startup: watch::Sender::new(Startup::default()),
            config,
        });
        let tasks = vec![
            tokio::spawn(bus::listen(hub.clone(), cluster.redis_url.clone())),
            tokio::spawn(membership::heartbeat_forever(hub.clone())),
            tokio::spawn(sweep::sweep_forever(hub.clone())),
            tokio::spawn(relay_audit::audit_forever(hub.clone(), cluster.heartbeat_ttl)),
        ];
        *hub.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        tracing::info!(node = %hub.node, "joined the cluster at {}", redacted(&cluster.redis_url));
        Ok(hub)
    }

    /// Waits (at most `patience`) until the node takes logins, so the
    /// first ones are not refused; a Redis that is down at start only
    /// delays them.
    pub async fn ready(&self, patience: Duration) {
        let mut startup = self.startup.subscribe();
        if tokio::time::timeout(patience, startup.wait_for(Startup::takes_logins)).await.is_err() {
            tracing::warn!(node = %self.node, "not joined to the cluster yet: logins get `unavailable`");
        }
    }

    /// Whether a login may be decided now.
    fn takes_logins(&self) -> bool {
        self.startup.borrow().takes_logins()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Stops the background tasks and lets the heartbeat lapse at once, so
    /// the other nodes take over whatever is left. Sessions have left
    /// (each through [`ClusterHub::disconnect`]) by the time this is called.
    pub async fn shutdown(&self) {
        for task in std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner())) {
            task.abort();
        }
        let mut redis = self.redis.clone();
        let key = format!("sp:hb:{}", self.node);
        let _: Result<(), _> = redis::cmd("DEL").arg(key).query_async(&mut redis).await;
    }

    fn local(&self) -> MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's field for session `id` in a peer's sessions in Redis.
    fn field(&self, id: SessionId) -> String {
        format!("{}/{id}", self.node)
    }

    /// Runs one Redis request under the outage bookkeeping.
    async fn redis<T>(
        &self,
        request: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Unavailable> {
        match tokio::time::timeout(REDIS_TIMEOUT * 2, request).await {
            Ok(Ok(value)) => {
                self.redis_reached();
                Ok(value)
            }
            Ok(Err(e)) => {
                self.redis_failed(&e.to_string());
                Err(Unavailable)
            }
            Err(_) => {
                self.redis_failed("no answer in time");
                Err(Unavailable)
            }
        }
    }

    fn redis_reached(&self) {
        if self.redis_down.swap(false, Ordering::Relaxed) {
            tracing::info!(node = %self.node, "Redis is reachable again; serving");
        }
    }

    fn redis_failed(&self, why: &str) {
        if !self.redis_down.swap(true, Ordering::Relaxed) {
            tracing::error!(
                node = %self.node,
                "Redis is unreachable ({why}): requests get `unavailable` until it is back"
            );
        }
    }

    /// Remembers call `id` as `record` (JSON), or forgets it if `record` is
    /// empty (it ended).
    fn known_now(&self, id: &str, record: &str) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if record.is_empty() {
            known.remove(id);
            return;
        }
        if known.len() >= KNOWN_CALLS && !known.contains_key(id) {
            known.clear();
        }
        known.insert(id.into(), record.to_owned());
    }

    /// The call `id` as this node last saw it, if it remembers it: good
    /// enough to try a transition with (the compare-and-set refuses it if
    /// it is stale), never to refuse a request on.
    fn remembered(&self, id: &str) -> Option<record::Read> {
        let raw = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(id)?.clone();
        record::Read::parse(raw)
    }

    /// Queues `text` for local session `id`, or holds it while its login is decided.
    fn send_local(&self, id: SessionId, text: &Outbound) {
        let mut local = self.local();
        match local.held.get_mut(&id) {
            Some(held) => held.push(text.clone()),
            None => local.peers.send(id, text),
        }
    }

    /// Registers a logged-in session (see [`membership`]).
    pub async fn login(
        self: &Arc<Self>,
        peer: &str,
        device: &str,
        req: Option<Req>,
        outbox: tokio::sync::mpsc::Sender<Outbound>,
        kick: Kick,
    ) -> Result<SessionId, ProtocolError> {
        self.log_in(peer, device, req, outbox, kick).await
    }

    /// Forgets a session (logout or closed socket).
    pub async fn disconnect(&self, id: SessionId) {
        self.leave(id).await;
    }

    /// Applies a request of a logged-in session and queues its reply.
    pub async fn handle(&self, id: SessionId, req: Option<Req>, request: Request) {
        let Some(peer) = self.local().peers.session(id).map(|s| s.peer.clone()) else { return };
        if let Err(e) = self.apply(id, &peer, &req, request).await {
            self.send_local(id, &encode(&e.into_message(req)));
        }
    }
}

/// `url` without its password, for the log and start errors.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}
