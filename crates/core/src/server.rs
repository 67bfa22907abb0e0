//! The signaling server: carries call invitations between peers over
//! WebSocket, speaking protocol v1 (`docs/protocol.md`).
//!
//! The shape follows tokio's mini-redis: [`run`] takes a bound listener, a
//! [`ServerConfig`] and a shutdown future; the [`listener`] accepts connections
//! under a connection cap and hands each to a [`session`] task. The call
//! rules are written once, as a pure decision core ([`rules`]); a single
//! node applies them in the [`hub`], under one lock, a cluster node over
//! Redis with a compare-and-set ([`cluster`]), so accept, refuse, cancel and
//! expiry on one call are applied in one order and both sides always end in
//! matching states. With a [`tls`] configuration the same server speaks
//! `wss://`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use cluster::{redacted as redacted_redis_url, redis_client};
pub use metrics::MetricsListener;

mod backend;
mod calls;
mod cluster;
mod deadlines;
mod expiry;
mod hub;
mod listener;
mod metrics;
pub mod origin;
mod outbound;
mod peers;
mod relay;
mod requests;
mod rules;
mod session;
mod state;
mod store;
pub mod tls;
mod token_clock;
pub mod web;

pub use relay::{MediaListen, Relay, RelayBindError, RelayConfig, RelayLimits, RelayStats};

/// Everything the server can be told at start; `Default` gives the
/// protocol's defaults and the limits documented in `docs/protocol.md`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a call may ring before it fails with `expired`.
    pub invite_ttl: Duration,
    /// How long a reached callee has to acknowledge with `received`.
    pub ack_timeout: Duration,
    /// How long a participant may be without a session before its calls end.
    pub offline_grace: Duration,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// How long a connection may stay silent before it is closed, and how
    /// long any write may wait for a client that does not read.
    pub idle_timeout: Duration,
    /// How long a TCP connection has to complete the TLS and WebSocket
    /// handshakes before it is dropped, so half-open connections free their slot.
    pub handshake_timeout: Duration,
    /// How long after its handshake a connection has to log in before it is
    /// closed with 1008: answering pings alone must not hold a slot.
    pub login_timeout: Duration,
    /// The token secret; `None` runs in open mode (any token is accepted).
    pub secret: Option<Vec<u8>>,
    /// Connections served at once; the next one is refused with HTTP 503.
    pub max_connections: usize,
    /// Live calls one peer may have placed or accepted; an invite or an
    /// accept beyond is `too_many_calls`. Calls ringing at a peer count
    /// against their callers only.
    pub max_calls_per_peer: usize,
    /// Sessions one peer may have at once; a login beyond gets `too_many_sessions`.
    pub max_sessions_per_peer: usize,
    /// Frames per second one connection may send, sustained.
    pub rate_per_second: u32,
    /// Frames one connection may send in a burst above the sustained rate.
    pub rate_burst: u32,
    /// Frames queued for one slow connection before it is dropped.
    pub outbox_capacity: usize,
    /// The certificate and key to serve `wss://` with; `None` serves `ws://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The media relay (additive, `docs/relay.md`): where it listens and its limits.
    pub media: RelayConfig,
    /// Where `/metrics` and `/healthz` are served (`--metrics-listen`); `None` serves none.
    pub metrics_listener: Option<MetricsListener>,
    /// The cluster this node joins (`--redis`, docs/scale-out.md); `None`
    /// runs a single node that keeps everything in memory.
    pub cluster: Option<ClusterConfig>,
    /// Browser origins allowed to open a WebSocket besides the server's own
    /// (`--allow-origin`); handshakes without `Origin` (native clients) always pass.
    pub allowed_origins: Vec<origin::Origin>,
}

/// How a node joins a cluster: the Redis every node shares, and its name there.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT/[DB]`: where calls, sessions and deadlines are kept.
    pub redis_url: String,
    /// This node's name in Redis: the channel its events come on and the
    /// owner of its sessions. Unique per running node.
    pub node_id: String,
    /// How long this node's heartbeat key lives unrenewed: after it lapses
    /// the other nodes treat this node's sessions as disconnected.
    pub heartbeat_ttl: Duration,
    /// PEM certificates a `rediss://` Redis's certificate is checked
    /// against instead of the system's roots (`--redis-ca-file`).
    pub redis_ca: Option<Vec<u8>>,
}

impl ClusterConfig {
    /// Joins the Redis at `redis_url` as a node with a new random id.
    pub fn new(redis_url: impl Into<String>) -> Self {
        ClusterConfig {
            redis_url: redis_url.into(),
            node_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            heartbeat_ttl: Duration::from_secs(5),
            redis_ca: None,
        }
    }
}

/// A setting the server cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} must be more than zero")]
pub struct InvalidConfig {
    /// The setting, named as its command-line flag.
    pub setting: &'static str,
}

impl ServerConfig {
    /// Refuses the settings that cannot work: a zero duration where time
    /// must pass (a ping every 0 s, a timeout of 0 s).
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let durations = [
            ("--invite-ttl", self.invite_ttl),
            ("--ack-timeout", self.ack_timeout),
            ("--offline-grace", self.offline_grace),
            ("--ping-interval", self.ping_interval),
            ("--idle-timeout", self.idle_timeout),
            ("--handshake-timeout", self.handshake_timeout),
            ("--login-timeout", self.login_timeout),
        ];
        match durations.into_iter().find(|(_, d)| d.is_zero()) {
            Some((setting, _)) => Err(InvalidConfig { setting }),
            None => Ok(()),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            invite_ttl: Duration::from_secs(60),
            ack_timeout: Duration::from_secs(30),
            offline_grace: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            handshake_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(10),
            secret: None,
            max_connections: 32_768,
            max_calls_per_peer: 100,
            max_sessions_per_peer: 16,
            rate_per_second: 200,
            rate_burst: 400,
            outbox_capacity: 1_024,
            tls: None,
            media: RelayConfig::default(),
            metrics_listener: None,
            cluster: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// Serves connections from `listener` until `shutdown` completes, then
/// closes every session with 1001 and returns once they are gone (or after
/// a few seconds, whichever is first). `config` must pass
/// [`ServerConfig::validate`]. A media relay that cannot bind is logged and
/// the server signals without media; to make that a start error, bind it
/// first with [`bind_media`] and serve with [`run_with_media`].
pub async fn run(listener: TcpListener, config: ServerConfig, shutdown: impl Future<Output = ()>) {
    let relay = bind_relay_or_degrade(&config, &listener);
    serve(listener, config, relay, shutdown).await;
}

/// [`run`] with a relay already bound by [`bind_media`] for this listener and config.
pub async fn run_with_media(
    listener: TcpListener,
    config: ServerConfig,
    relay: Option<Arc<Relay>>,
    shutdown: impl Future<Output = ()>,
) {
    serve(listener, config, relay, shutdown).await;
}

async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    relay: Option<Arc<Relay>>,
    shutdown: impl Future<Output = ()>,
) {
    if config.secret.is_none() {
        tracing::warn!("no secret configured: open mode, any token is accepted");
    }
    listener::serve(listener, config, relay, shutdown).await;
}

/// Binds the media relay next to `listener` as `config.media` says: `None`
/// with `MediaListen::Off`, an error naming the address when its socket
/// cannot be bound (a port in use, an address not of this host).
pub fn bind_media(
    config: &ServerConfig,
    listener: &TcpListener,
) -> Result<Option<Arc<Relay>>, RelayBindError> {
    let ws_addr = listener.local_addr().map_err(|source| RelayBindError {
        listen: config.media.listen,
        addr: None,
        source,
    })?;
    relay::Relay::bind(&config.media, ws_addr)
}

/// [`bind_media`] for the embedded server ([`spawn`], [`spawn_on`], [`run`]):
/// a relay that cannot bind is logged as an error and the server signals
/// without media (accepts then carry no `media`), rather than not at all.
fn bind_relay_or_degrade(config: &ServerConfig, listener: &TcpListener) -> Option<Arc<Relay>> {
    bind_media(config, listener).unwrap_or_else(|e| {
        tracing::error!("{e}; serving without media");
        None
    })
}

/// A server running in a task of its own, as tests, the demo and the
/// desktop app's embedded mode use it.
pub struct ServerHandle {
    /// Where it listens.
    addr: SocketAddr,
    /// Whether it serves `wss://` rather than `ws://`.
    tls: bool,
    /// Completing this tells the server to shut down.
    stop: watch::Sender<bool>,
    /// The server task, awaited on shutdown.
    task: JoinHandle<()>,
    /// The media relay, for its counters; `None` without one.
    relay: Option<Arc<Relay>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `ws://` (or, with TLS, `wss://`) URL clients connect to.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/", self.addr)
    }

    /// The media relay, when the server runs one: its address and counters.
    pub fn relay(&self) -> Option<Arc<Relay>> {
        self.relay.clone()
    }

    /// Shuts the server down gracefully and waits until it has.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `127.0.0.1:0` and runs a server on it in a new task; a config
/// that fails [`ServerConfig::validate`] is an `InvalidInput` error.
pub async fn spawn(config: ServerConfig) -> std::io::Result<ServerHandle> {
    config.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(spawn_on(listener, config))
}

/// Runs a server on an already bound listener in a new task. `config`
/// must pass [`ServerConfig::validate`].
pub fn spawn_on(listener: TcpListener, config: ServerConfig) -> ServerHandle {
    let addr = listener.local_addr().expect("a bound listener has an address");
    let tls = config.tls.is_some();
    let (stop, mut stopped) = watch::channel(false);
    let relay = bind_relay_or_degrade(&config, &listener);
    let serving = relay.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        serve(listener, config, serving, stop).await;
    });
    ServerHandle { addr, tls, stop, task, relay }
}
