//! The cluster (`softphone server --redis`, docs/scale-out.md) against the
//! protocol: a real `redis-server` per test and two or three nodes on it,
//! with the parties of every call on different nodes. To clients the
//! cluster must look like one server, so these are the single-node rules
//! again, spread over nodes; then what only a cluster has: races between
//! nodes, a node killed with SIGKILL, and Redis going away and coming back.
//!
//! In-process nodes ([`Cluster`]) serve the protocol tests; the node-loss
//! tests run nodes as child processes ([`NodeProcess`]) so they can be
//! killed for real.

use super::cli::{ServerProcess, ready, server_command};
use super::client::*;
use crate::redis_server::{RedisServer, start_nodes};
use serde_json::Value;
use softphone_core::server::{ServerConfig, ServerHandle};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

mod handshake;
mod invitation;
mod limits;
mod node_loss;
mod outage;
mod presence;
mod race;
mod relay;
mod sessions;
mod timers;

/// A Redis and nodes in this process sharing it.
pub(super) struct Cluster {
    /// The store every node shares; `mut` so a test can stop and restart it.
    pub(super) redis: RedisServer,
    /// The nodes, `n0`, `n1`, ...; dropped (so stopped) with the cluster.
    pub(super) nodes: Vec<ServerHandle>,
}

impl Cluster {
    /// A new Redis and `n` nodes on it, each with `config`.
    pub(super) async fn start(n: usize, config: ServerConfig) -> Cluster {
        let redis = RedisServer::start().await;
        let nodes = start_nodes(&redis, n, config).await;
        Cluster { redis, nodes }
    }

    /// A new Redis and `n` nodes with the protocol's defaults.
    pub(super) async fn with_defaults(n: usize) -> Cluster {
        Cluster::start(n, ServerConfig::default()).await
    }

    /// The URL of node `i`.
    pub(super) fn url(&self, i: usize) -> String {
        self.nodes[i].url()
    }
}

/// A node as its own `softphone server --redis` process, which a test can
/// kill with a real SIGKILL.
pub(super) struct NodeProcess {
    /// The child process and its ready line; killed on drop.
    process: ServerProcess,
    /// Its standard error (the node's log), shown when it fails to start.
    log: tempfile::NamedTempFile,
}

impl NodeProcess {
    /// Starts `softphone server --redis REDIS --node-id ID ARGS` and waits
    /// for its ready line.
    pub(super) async fn start(redis: &RedisServer, node_id: &str, args: &[&str]) -> NodeProcess {
        let url = redis.url();
        let mut all = vec!["--redis", url.as_str(), "--node-id", node_id];
        all.extend_from_slice(args);
        let log = tempfile::NamedTempFile::new().expect("a temp file for the node's log");
        let mut command = server_command(&all);
        command.stderr(log.reopen().expect("reopen the log file"));
        match tokio::spawn(ready(command, "ws")).await {
            Ok(process) => NodeProcess { process, log },
            Err(e) => {
                let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
                panic!("node {node_id} did not start ({e}); its standard error:\n{stderr}")
            }
        }
    }

    /// What the node has written to its standard error so far.
    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).expect("read the node's log")
    }

    /// The URL from its ready line.
    pub(super) fn url(&self) -> String {
        self.process.url.clone()
    }

    /// Sends SIGTERM now; the future waits for the exit, which the protocol
    /// wants within 5 s of the signal.
    pub(super) fn terminate(&mut self) -> impl Future<Output = ExitStatus> + '_ {
        let pid = self.process.child.id().expect("the node is running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        assert!(status.expect("run kill").success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(5);
        async move {
            tokio::time::timeout_at(deadline, self.process.child.wait())
                .await
                .unwrap_or_else(|_| panic!("node {pid} still running 5 s after SIGTERM"))
                .expect("wait for the node")
        }
    }

    /// `kill -9`: the node gets no chance to tell anyone, as when its
    /// machine is gone. Waits until the process is reaped.
    pub(super) async fn kill9(&mut self) {
        let pid = self.process.child.id().expect("the node is running");
        let status = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        assert!(status.expect("run kill").success(), "kill -KILL {pid}");
        tokio::time::timeout(WAIT, self.process.child.wait())
            .await
            .unwrap_or_else(|_| panic!("node {pid} still running {WAIT:?} after SIGKILL"))
            .expect("wait for the killed node");
    }
}

/// The next text message of `c` within `d`, or `None` when none came (or
/// the connection ended). Only for a client with nothing pending: it reads
/// the socket directly.
pub(super) async fn recv_within(c: &mut Client, d: Duration) -> Option<Value> {
    assert!(c.pending().is_empty(), "{}: recv_within with messages pending: {:?}", c.name, c.pending());
    let deadline = Instant::now() + d;
    loop {
        match c.next_message(deadline.saturating_duration_since(Instant::now())).await? {
            Message::Text(t) => return Some(serde_json::from_str(t.as_str()).expect("JSON text frame")),
            Message::Close(_) => return None,
            _ => {} // pings and pongs
        }
    }
}

/// A config without the per-connection rate limit, for tests that send
/// many requests quickly (the rate limit is not what they test).
pub(super) fn unlimited_rate(config: ServerConfig) -> ServerConfig {
    ServerConfig { rate_per_second: 1_000_000, rate_burst: 1_000_000, ..config }
}

/// Runs `race(urls, pair)` for `pairs` pairs at once and adds up the two
/// tallies each returns (how often each side of the race won).
pub(super) async fn race_pairs<F, Fut>(urls: &[String], pairs: usize, race: F) -> (usize, usize)
where
    F: Fn(Vec<String>, usize) -> Fut,
    Fut: std::future::Future<Output = (usize, usize)> + Send + 'static,
{
    let tasks: Vec<_> = (0..pairs).map(|pair| tokio::spawn(race(urls.to_vec(), pair))).collect();
    let (mut first, mut second) = (0, 0);
    for task in tasks {
        let (a, b) = task.await.expect("race task");
        first += a;
        second += b;
    }
    (first, second)
}

/// A duration of `n` milliseconds.
pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The harness itself: what the outage test relies on (a restart on the
/// same port keeps what was written, a stopped Redis answers nobody).
#[tokio::test]
async fn the_redis_harness_keeps_its_data_across_a_restart() {
    use redis::AsyncCommands;
    let mut redis = RedisServer::start().await;
    let client = redis::Client::open(redis.url()).expect("a redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect to redis");
    let () = con.set("harness-probe", "kept").await.expect("SET");
    drop(con);
    redis.stop().await;
    assert!(client.get_multiplexed_async_connection().await.is_err(), "a stopped redis refuses connections");
    redis.restart().await;
    let mut con = client.get_multiplexed_async_connection().await.expect("connect again");
    let kept: String = con.get("harness-probe").await.expect("GET");
    assert_eq!(kept, "kept");
}
