//! `softphone bench` against several nodes, small: `setups` puts each
//! call's caller and callee on different nodes, `sessions` spreads its
//! sessions over the nodes, worker processes and source addresses. Most
//! nodes here are stand-alone servers in this process (no cluster), so a
//! session's node shows in which server knows it; the last test runs both
//! benches against a real two-node cluster over a real redis-server.

use super::client::*;
use serde_json::{Value, json};
use softphone_core::server::{ClusterConfig, ServerConfig};
use std::collections::BTreeSet;
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_softphone-headless");

async fn bench(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(BIN)
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(WAIT, run).await.expect("the bench ends").expect("run the bench")
}

fn figures(output: &Output) -> Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// The one run of a fixed-rate `setups`: (completed, failed).
fn completed_and_failed(output: &Output) -> (u64, u64) {
    let runs = figures(output);
    let run = &runs.as_array().expect("a list of runs")[0];
    (run["completed"].as_u64().unwrap(), run["failed"].as_u64().unwrap())
}

#[tokio::test]
async fn setups_over_two_nodes_puts_every_callee_on_the_other_node() {
    let (a, b) = (start_default().await, start_default().await);
    let fixed = ["--pairs", "4", "--rate", "40", "--duration", "1s", "--call-timeout", "1s", "--json"];
    let one = bench(&[&["setups", "--server", &a.url()][..], &fixed].concat()).await;
    assert_eq!(completed_and_failed(&one), (40, 0), "one server: every call completes");
    // The same node twice is a list too: every call completes there.
    let twice = format!("{},{}", a.url(), a.url());
    let same = bench(&[&["setups", "--server", &twice][..], &fixed].concat()).await;
    assert_eq!(completed_and_failed(&same), (40, 0));
    // Two stand-alone servers: a caller's server never knows the callee,
    // so no call can complete unless caller and callee share a node.
    let both = format!("{},{}", a.url(), b.url());
    let crossed = bench(&[&["setups", "--server", &both][..], &fixed].concat()).await;
    assert_eq!(completed_and_failed(&crossed), (0, 40), "every call crossed between the nodes");
}

/// Watches `peers` on the server at `url` until `expected` of them came
/// online; returns those that did.
async fn watch_online(url: String, peers: Vec<String>, expected: usize) -> BTreeSet<String> {
    let mut watcher = Client::login(&url, "watcher").await;
    let reply = watcher.ok(json!({"type": "subscribe_presence", "peer_ids": peers})).await;
    assert!(reply["online"].as_object().unwrap().values().all(|v| v == false), "{reply}");
    let mut online = BTreeSet::new();
    while online.len() < expected {
        let event = watcher.recv_until("presence").await;
        if event["online"] == true {
            online.insert(event["peer_id"].as_str().unwrap().to_owned());
        }
    }
    online
}

#[tokio::test]
async fn sessions_spread_over_the_nodes_from_several_workers_and_source_addresses() {
    let (a, b) = (start_default().await, start_default().await);
    let peers: Vec<String> = (0..30).map(|i| format!("idle-spread-{i}")).collect();
    let on = |parity: usize| -> BTreeSet<String> {
        peers.iter().enumerate().filter(|(i, _)| i % 2 == parity).map(|(_, p)| p.clone()).collect()
    };
    let watch_a = tokio::spawn(watch_online(a.url(), peers.clone(), 15));
    let watch_b = tokio::spawn(watch_online(b.url(), peers.clone(), 15));
    // Let both subscriptions be in place before the first login.
    tokio::time::sleep(QUIET).await;
    let (servers, me) = (format!("{},{}", a.url(), b.url()), std::process::id().to_string());
    let pids = format!("{me},{me}");
    // 10 sessions a worker: 3 workers; 8 a source address: 127.0.0.1 to .4.
    let args = ["sessions", "--server", &servers, "--pid", &pids, "--count", "30", "--tag", "spread"];
    let output = bench(&[&args[..], &["--per-worker", "10", "--per-source", "8", "--json"]].concat()).await;
    let stats = figures(&output);
    assert_eq!((stats["sessions"].as_u64(), stats["workers"].as_u64()), (Some(30), Some(3)), "{stats}");
    let nodes = stats["nodes"].as_array().unwrap();
    assert_eq!(nodes.iter().map(|n| n["sessions"].as_u64().unwrap()).collect::<Vec<_>>(), [15, 15]);
    assert_eq!(nodes[1]["url"], b.url());
    assert!(stats["redis"].is_null(), "no --redis, no Redis figures");
    // Every session was held, each on its node: the even ones on the first.
    assert_eq!(watch_a.await.unwrap(), on(0));
    assert_eq!(watch_b.await.unwrap(), on(1));
}

#[tokio::test]
async fn sessions_refuses_a_pid_list_that_does_not_match_the_servers() {
    let a = start_default().await;
    let servers = format!("{},{}", a.url(), a.url());
    let output = bench(&["sessions", "--server", &servers, "--pid", "1", "--count", "2"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("one process id per --server URL"), "{stderr}");
    let bad = bench(&["setups", "--server", "ws://127.0.0.1:1/,127.0.0.1:2", "--rate", "1"]).await;
    assert!(String::from_utf8_lossy(&bad.stderr).contains("127.0.0.1:2"), "a bad entry is named");
}

/// A redis-server on a free port of 127.0.0.1, killed when dropped.
struct Redis {
    child: std::process::Child,
    url: String,
}

impl Redis {
    async fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/setup)");
        let redis = Redis { child, url: format!("redis://127.0.0.1:{port}/") };
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not listen on {port}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        redis
    }

    fn node(&self, id: &str) -> ServerConfig {
        let mut cluster = ClusterConfig::new(self.url.clone());
        cluster.node_id = id.into();
        ServerConfig { cluster: Some(cluster), ..ServerConfig::default() }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn over_a_real_cluster_every_crossing_call_completes_and_redis_memory_is_read() {
    let redis = Redis::start().await;
    let (a, b) = (start_server(redis.node("bench-a")).await, start_server(redis.node("bench-b")).await);
    let both = format!("{},{}", a.url(), b.url());
    let fixed = ["--pairs", "4", "--rate", "40", "--duration", "1s", "--json"];
    let crossed = bench(&[&["setups", "--server", &both][..], &fixed].concat()).await;
    assert_eq!(completed_and_failed(&crossed), (40, 0), "the cluster carries every call across");
    let me = std::process::id().to_string();
    let pids = format!("{me},{me}");
    let args = ["sessions", "--server", &both, "--pid", &pids, "--redis", &redis.url, "--count", "20"];
    let stats = figures(&bench(&[&args[..], &["--per-worker", "10", "--json"]].concat()).await);
    assert_eq!(stats["workers"], 2, "{stats}");
    // 20 sessions are lost in Redis's own noise: the figures must be read
    // (a real INFO from the real Redis) and their difference per session.
    let used = |key: &str| stats["redis"][key].as_u64().expect("Redis figures with --redis");
    let (before, after) = (used("used_memory_before_bytes"), used("used_memory_after_bytes"));
    assert!(before > 0 && after > 0, "{stats}");
    assert_eq!(used("bytes_per_session"), after.saturating_sub(before) / 20, "{stats}");
}
