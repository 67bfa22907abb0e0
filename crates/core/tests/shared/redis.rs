//! A real `redis-server` for the cluster tests (installed by `.ci/setup`):
//! one per test, on a free port of 127.0.0.1, with its files in a temp dir,
//! and in-process server nodes that share it. The tests only ever talk to
//! it through the nodes (and PING): they rely on behaviour, never on the
//! keys the nodes keep.
//!
//! Redis keeps an append-only file, which it fsyncs when SIGTERM stops it,
//! so [`RedisServer::stop`] followed by [`RedisServer::restart`] is an
//! outage that loses nothing. It fsyncs once a second otherwise
//! (`everysec`), not per write: on a machine whose disk is busy with
//! builds, an fsync per write can stall Redis past the nodes' request
//! timeout, and the tests would see `unavailable` that no outage caused.

use softphone_core::server::{ClusterConfig, ServerConfig, ServerHandle};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long Redis may take to answer PING after it is started, or to exit
/// after SIGTERM (a guard against a hang, not a measure).
const REDIS_WAIT: Duration = Duration::from_secs(20);

/// A running (or, between [`RedisServer::stop`] and
/// [`RedisServer::restart`], stopped) `redis-server` process.
pub struct RedisServer {
    /// The process while it runs; `None` while stopped. `kill_on_drop`, so
    /// a failing test leaves no Redis behind.
    child: Option<Child>,
    /// The port it listens on, kept across a restart so the nodes' URL holds.
    port: u16,
    /// Its working directory: the append-only file that survives a restart,
    /// and its log, removed when the test ends.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a Redis on a free port and waits until it answers PING.
    pub async fn start() -> RedisServer {
        let mut dir = tempfile::tempdir().expect("a temp dir for redis");
        // A port another process takes between our probe and Redis's bind
        // makes Redis exit at once: try another.
        for _ in 0..5 {
            let port = free_port();
            let mut redis = RedisServer { child: None, port, dir };
            if redis.launch().await {
                return redis;
            }
            dir = redis.dir;
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis://127.0.0.1:PORT/`, what the nodes are given.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `unix:///…/redis.sock`: the same Redis over its Unix socket, as a
    /// node beside its Redis may be given.
    pub fn unix_url(&self) -> String {
        format!("unix://{}", self.dir.path().join("redis.sock").display())
    }

    /// Stops Redis with SIGTERM (it fsyncs and exits) and waits for the end.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("stop: redis is running");
        let pid = child.id().expect("a running child has a pid");
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        if tokio::time::timeout(REDIS_WAIT, child.wait()).await.is_err() {
            let _ = child.kill().await;
            panic!("redis-server did not exit within {REDIS_WAIT:?} of SIGTERM");
        }
    }

    /// Starts Redis again on the same port with the same directory (so
    /// with the data of its append-only file) and waits for PING.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: redis is still running");
        assert!(self.launch().await, "redis-server did not start again on port {}", self.port);
    }

    /// Spawns the process and waits until it answers PING; `false` when it
    /// exits first (its port was taken).
    async fn launch(&mut self) -> bool {
        let dir = self.dir.path().to_str().expect("a UTF-8 temp dir").to_owned();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--dir", &dir, "--logfile", "redis.log", "--daemonize", "no"])
            .args(["--unixsocket", "redis.sock", "--unixsocketperm", "700"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn redis-server (installed by .ci/setup)");
        let deadline = Instant::now() + REDIS_WAIT;
        loop {
            if child.try_wait().expect("poll redis-server").is_some() {
                return false;
            }
            if ping(&self.url()).await {
                self.child = Some(child);
                return true;
            }
            assert!(Instant::now() < deadline, "redis-server on {} did not answer PING", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether the Redis at `url` answers PING now.
async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else { return false };
    let connect = client.get_multiplexed_async_connection();
    let Ok(Ok(mut con)) = tokio::time::timeout(Duration::from_secs(1), connect).await else {
        return false;
    };
    let ping = redis::cmd("PING");
    let pong = ping.query_async::<String>(&mut con);
    matches!(tokio::time::timeout(Duration::from_secs(1), pong).await, Ok(Ok(p)) if p == "PONG")
}

/// A port nothing listens on at the moment (the kernel's choice for port 0).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    probe.local_addr().expect("the probe's address").port()
}

/// `config` made a node named `node_id` of the cluster sharing `redis`.
pub fn node_config(redis: &RedisServer, node_id: &str, config: ServerConfig) -> ServerConfig {
    let cluster = ClusterConfig { node_id: node_id.to_owned(), ..ClusterConfig::new(redis.url()) };
    ServerConfig { cluster: Some(cluster), ..config }
}

/// `n` nodes in this process, named `n0`, `n1`, ..., all on `redis`, each
/// with `config` (plus its cluster settings).
pub async fn start_nodes(redis: &RedisServer, n: usize, config: ServerConfig) -> Vec<ServerHandle> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let config = node_config(redis, &format!("n{i}"), config.clone());
        nodes
            .push(softphone_core::server::spawn(config).await.expect("a cluster node starts on 127.0.0.1:0"));
    }
    nodes
}
