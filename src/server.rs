//! The signaling server: carries call invitations between peers over
//! WebSocket, speaking protocol v1 (`docs/protocol.md`).
//!
//! The shape follows tokio's mini-redis: [`run`] takes a bound listener, a
//! [`ServerConfig`] and a shutdown future; the [`listener`] accepts connections
//! under a connection cap and hands each to a [`session`] task; every
//! decision about a call is made in one place, the [`hub`], under one lock,
//! so accept, refuse, cancel and expiry on one call are applied in one order
//! and both sides always end in matching states.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod calls;
mod deadlines;
mod expiry;
mod hub;
mod listener;
mod outbound;
mod peers;
mod requests;
mod session;
mod state;
mod store;

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
    /// How long a connection may stay silent before it is closed.
    pub idle_timeout: Duration,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            invite_ttl: Duration::from_secs(60),
            ack_timeout: Duration::from_secs(30),
            offline_grace: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            secret: None,
            max_connections: 32_768,
            max_calls_per_peer: 100,
            max_sessions_per_peer: 16,
            rate_per_second: 200,
            rate_burst: 400,
            outbox_capacity: 1_024,
        }
    }
}

/// Serves connections from `listener` until `shutdown` completes, then
/// closes every session with 1001 and returns once they are gone (or after
/// a few seconds, whichever is first).
pub async fn run(listener: TcpListener, config: ServerConfig, shutdown: impl Future<Output = ()>) {
    if config.secret.is_none() {
        tracing::warn!("no secret configured: open mode, any token is accepted");
    }
    listener::serve(listener, config, shutdown).await;
}

/// A server running in a task of its own, as tests, the demo and the
/// desktop app's embedded mode use it.
pub struct ServerHandle {
    /// Where it listens.
    addr: SocketAddr,
    /// Completing this tells the server to shut down.
    stop: watch::Sender<bool>,
    /// The server task, awaited on shutdown.
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `ws://` URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Shuts the server down gracefully and waits until it has.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `127.0.0.1:0` and runs a server on it in a new task.
pub async fn spawn(config: ServerConfig) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Ok(spawn_on(listener, config))
}

/// Runs a server on an already bound listener in a new task.
pub fn spawn_on(listener: TcpListener, config: ServerConfig) -> ServerHandle {
    let addr = listener.local_addr().expect("a bound listener has an address");
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        run(listener, config, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;
    });
    ServerHandle { addr, stop, task }
}
