//! A cluster on a Redis that speaks only TLS (`rediss://`) and knows only
//! ACL users, one per node (docs/scale-out.md): a real `redis-server`
//! started with `--tls-port` and a certificate signed by a CA the test
//! makes, the nodes given `rediss://USER:PASS@…` and the CA. A node with
//! a wrong password, or without the CA, never joins.

use super::cli::{ready, server_command};
use super::client::*;
use serde_json::json;
use softphone_core::server::{ClusterConfig, ServerConfig, ServerHandle};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A CA and a certificate for 127.0.0.1 it signed, in PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "softphone test CA");
        let ca_key = rcgen::KeyPair::generate().expect("a CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("a CA certificate");
        let leaf_key = rcgen::KeyPair::generate().expect("a server key");
        let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("server parameters");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("a server certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        std::fs::write(dir.path().join("redis.pem"), leaf.pem()).expect("write redis.pem");
        std::fs::write(dir.path().join("redis.key"), leaf_key.serialize_pem()).expect("write redis.key");
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

/// `redis-server` with TLS only (no plain port) and two ACL users, `n1`
/// and `n2`, limited to the cluster's keys and channels; the default user off.
struct TlsRedis {
    _child: Child,
    port: u16,
}

impl TlsRedis {
    async fn start(pki: &Pki) -> TlsRedis {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("probe").local_addr().expect("addr").port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &text(&pki.path("redis.pem"))])
            .args(["--tls-key-file", &text(&pki.path("redis.key"))])
            .args(["--tls-ca-cert-file", &text(&pki.path("ca.pem")), "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--dir", &text(pki.dir.path())])
            // One word an argument: redis-server joins them into its config line.
            .args(["--user", "default", "off"])
            .args(["--user", "n1", "on", ">node-one-password", "~sp:*", "&sp:*", "+@all", "-@dangerous"])
            .args(["--user", "n2", "on", ">node-two-password", "~sp:*", "&sp:*", "+@all", "-@dangerous"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn redis-server (installed by .ci/setup)");
        let redis = TlsRedis { _child: child, port };
        let ca = std::fs::read(pki.path("ca.pem")).expect("read ca.pem");
        let deadline = Instant::now() + WAIT;
        while !redis.pings(&redis.url("n1", "node-one-password"), &ca).await {
            assert!(Instant::now() < deadline, "redis-server with TLS did not answer PING on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@127.0.0.1:{}/", self.port)
    }

    async fn pings(&self, url: &str, ca: &[u8]) -> bool {
        let Ok(client) = softphone_core::server::redis_client(url, Some(ca)) else { return false };
        let Ok(Ok(mut con)) =
            tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await
        else {
            return false;
        };
        let ping = redis::cmd("PING");
        let pong = ping.query_async::<String>(&mut con);
        matches!(tokio::time::timeout(Duration::from_secs(1), pong).await, Ok(Ok(p)) if p == "PONG")
    }
}

/// A node in this process on `url`, trusting `ca` when given.
async fn node(url: String, node_id: &str, ca: Option<Vec<u8>>) -> ServerHandle {
    let cluster = ClusterConfig { node_id: node_id.into(), redis_ca: ca, ..ClusterConfig::new(url) };
    start_server(ServerConfig { cluster: Some(cluster), ..Default::default() }).await
}

#[tokio::test]
async fn nodes_share_a_redis_over_tls_each_as_its_own_acl_user() {
    let pki = Pki::new();
    let redis = TlsRedis::start(&pki).await;
    let ca = std::fs::read(pki.path("ca.pem")).expect("read ca.pem");
    // n1 in this process; n2 the real binary with --redis-ca-file.
    let n1 = node(redis.url("n1", "node-one-password"), "n1", Some(ca.clone())).await;
    let n2_url = redis.url("n2", "node-two-password");
    let ca_file = text(&pki.path("ca.pem"));
    let n2 =
        ready(server_command(&["--redis", &n2_url, "--redis-ca-file", &ca_file, "--node-id", "n2"]), "ws")
            .await;
    let mut alice = Client::login(&n1.url(), "alice").await;
    let mut bob = Client::login(&n2.url, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(&alice.recv_until("accepted").await, json!({"type": "accepted", "call_id": "c1"}));
    bob.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(&alice.recv_until("hung_up").await, json!({"type": "hung_up", "call_id": "c1", "by": "bob"}));
}

#[tokio::test]
async fn a_node_with_a_wrong_password_or_without_the_ca_never_joins() {
    let pki = Pki::new();
    let redis = TlsRedis::start(&pki).await;
    let ca = std::fs::read(pki.path("ca.pem")).expect("read ca.pem");
    let wrong_password = node(redis.url("n1", "not-the-password"), "n1", Some(ca)).await;
    let no_ca = node(redis.url("n2", "node-two-password"), "n2", None).await;
    for server in [&wrong_password, &no_ca] {
        let mut c = Client::connect(&server.url()).await;
        c.error(json!({"type": "login", "peer_id": "alice"}), "unavailable").await;
    }
}
