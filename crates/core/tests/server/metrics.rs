//! The metrics endpoint (`--metrics-listen`): a real server with metrics on
//! 127.0.0.1:0, real clients placing and answering calls, and `/metrics`
//! scraped over a real TCP connection after each step.

use super::client::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use softphone_core::server::{MetricsListener, ServerConfig, ServerHandle};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A server with its metrics endpoint.
struct Monitored {
    server: ServerHandle,
    metrics: SocketAddr,
}

async fn start_monitored(config: ServerConfig) -> Monitored {
    let listener = MetricsListener::bind("127.0.0.1:0").expect("bind the metrics listener");
    let metrics = listener.local_addr();
    assert_ne!(metrics.port(), 0, "the real port is known before the server starts");
    let server = start_server(ServerConfig { metrics_listener: Some(listener), ..config }).await;
    Monitored { server, metrics }
}

/// An HTTP/1.1 response read to its end: status code, head, body.
struct HttpResponse {
    status: u16,
    head: String,
    body: String,
}

/// `METHOD path` over a fresh TCP connection.
async fn http(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect to the metrics endpoint");
        let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write the request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read the response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange).await.expect("a response within the wait");
    let text = String::from_utf8(raw).expect("the response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    HttpResponse {
        status: status.unwrap_or_else(|| panic!("no status in {head:?}")),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The body of `/metrics`.
async fn scrape(addr: SocketAddr) -> String {
    let response = http(addr, "GET", "/metrics").await;
    assert_eq!(response.status, 200, "{}", response.head);
    response.body
}

/// The value of `sample` (name with labels as encoded, e.g.
/// `softphone_call_outcomes_total{outcome="refused"}`), if present.
fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

fn outcome(name: &str) -> String {
    format!("softphone_call_outcomes_total{{outcome=\"{name}\"}}")
}

/// Scrapes until every sample has its expected value, or panics with the
/// last scrape when the wait is over (hooks run a moment after the reply
/// that reveals them may already have been read).
async fn expect_metrics(addr: SocketAddr, expected: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(addr).await;
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(sample, want)| value(&text, sample) != Some(*want))
            .map(|(sample, want)| format!("{sample}: want {want}, got {:?}", value(&text, sample)))
            .collect();
        if wrong.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "metrics never matched: {wrong:?}\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_follow_sessions_and_a_call_from_ringing_to_hang_up() {
    let m = start_monitored(ServerConfig::default()).await;
    let url = m.server.url();
    let text =
        expect_metrics(m.metrics, &[("softphone_connections", 0.0), ("softphone_sessions", 0.0)]).await;
    for name in ["accepted", "refused", "canceled", "expired", "peer_offline", "hung_up", "lost"] {
        assert_eq!(value(&text, &outcome(name)), Some(0.0), "every outcome starts at 0: {text}");
    }
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob, _) = Client::login_device(&url, "bob", "desk").await;
    let (bob_phone, _) = Client::login_device(&url, "bob", "phone").await;
    let idle = Client::connect(&url).await;
    expect_metrics(
        m.metrics,
        &[("softphone_connections", 4.0), ("softphone_sessions", 3.0), ("softphone_peers_online", 2.0)],
    )
    .await;

    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    expect_metrics(
        m.metrics,
        &[
            ("softphone_live_calls", 1.0),
            ("softphone_calls_placed_total", 1.0),
            ("softphone_invitation_delivery_seconds_count", 1.0),
        ],
    )
    .await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    expect_metrics(m.metrics, &[(&outcome("accepted"), 1.0), ("softphone_live_calls", 1.0)]).await;
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    expect_metrics(
        m.metrics,
        &[(&outcome("hung_up"), 1.0), (&outcome("accepted"), 1.0), ("softphone_live_calls", 0.0)],
    )
    .await;

    // A second session of bob closing leaves bob online.
    bob_phone.close().await;
    expect_metrics(m.metrics, &[("softphone_sessions", 2.0), ("softphone_peers_online", 2.0)]).await;
    for c in [alice, bob, idle] {
        c.close().await;
    }
    expect_metrics(
        m.metrics,
        &[("softphone_connections", 0.0), ("softphone_sessions", 0.0), ("softphone_peers_online", 0.0)],
    )
    .await;
}

#[tokio::test]
async fn each_way_a_ringing_call_ends_is_counted_under_its_outcome() {
    let config = ServerConfig {
        invite_ttl: Duration::from_secs(2),
        ack_timeout: Duration::from_millis(300),
        offline_grace: Duration::from_millis(300),
        ..Default::default()
    };
    let m = start_monitored(config).await;
    let url = m.server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;

    invite(&mut alice, "refused", "bob").await;
    expect_invitation(&mut bob, "refused", "alice").await;
    bob.ok(json!({"type": "refuse", "call_id": "refused"})).await;
    invite(&mut alice, "canceled", "bob").await;
    expect_invitation(&mut bob, "canceled", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "canceled"})).await;
    // Bob never acknowledges this one: the ack timeout ends it.
    invite(&mut alice, "no_ack", "bob").await;
    // Carol has no session: the offline grace ends it.
    invite(&mut alice, "offline", "carol").await;
    // Acknowledged but never answered: the ttl ends it.
    invite(&mut alice, "expired", "bob").await;
    bob.send(json!({"type": "received", "call_id": "expired"})).await;

    expect_metrics(
        m.metrics,
        &[
            (&outcome("refused"), 1.0),
            (&outcome("canceled"), 1.0),
            (&outcome("peer_no_response"), 1.0),
            (&outcome("peer_offline"), 1.0),
            (&outcome("expired"), 1.0),
            (&outcome("accepted"), 0.0),
            ("softphone_calls_placed_total", 5.0),
            ("softphone_live_calls", 0.0),
        ],
    )
    .await;
}

#[tokio::test]
async fn an_invitation_waiting_for_its_callee_is_timed_until_it_is_handed_over() {
    let m = start_monitored(ServerConfig::default()).await;
    let url = m.server.url();
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "carol").await;
    let waited = Duration::from_millis(400);
    tokio::time::sleep(waited).await;
    expect_metrics(m.metrics, &[("softphone_invitation_delivery_seconds_count", 0.0)]).await;
    let mut carol = Client::login(&url, "carol").await;
    expect_invitation(&mut carol, "c1", "alice").await;
    let text = expect_metrics(m.metrics, &[("softphone_invitation_delivery_seconds_count", 1.0)]).await;
    let sum = value(&text, "softphone_invitation_delivery_seconds_sum").expect("a sum");
    assert!(sum >= waited.as_secs_f64(), "the wait for carol is in the figure: {sum}\n{text}");
    let quick = "softphone_invitation_delivery_seconds_bucket{le=\"0.25\"}";
    assert_eq!(value(&text, quick), Some(0.0), "{text}");
    // A second device of carol gets the invitation too, but it was delivered once.
    let mut carol2 = Client::login(&url, "carol").await;
    expect_invitation(&mut carol2, "c1", "alice").await;
    expect_metrics(m.metrics, &[("softphone_invitation_delivery_seconds_count", 1.0)]).await;
}

#[tokio::test]
async fn refused_handshakes_and_rate_limited_frames_are_counted() {
    let config = ServerConfig { max_connections: 1, rate_per_second: 1, rate_burst: 3, ..Default::default() };
    let m = start_monitored(config).await;
    let url = m.server.url();
    let mut alice = Client::login(&url, "alice").await;
    for _ in 0..2 {
        assert!(Client::try_connect(&url).await.is_err(), "over the cap");
    }
    expect_metrics(m.metrics, &[("softphone_refused_handshakes_total", 2.0)]).await;

    let mut reqs = Vec::new();
    for _ in 0..10 {
        reqs.push(alice.send_req(json!({"type": "query_presence", "peer_ids": ["bob"]})).await);
    }
    let mut limited = 0.0;
    for req in reqs {
        if ty(&alice.reply(req).await) == "error" {
            limited += 1.0;
        }
    }
    assert!(limited > 0.0, "10 frames at once with a burst of 3 hit the limit");
    expect_metrics(m.metrics, &[("softphone_rate_limited_frames_total", limited)]).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_its_events_is_counted_as_kicked() {
    let config = ServerConfig {
        outbox_capacity: 4,
        max_calls_per_peer: 10_000,
        rate_per_second: 100_000,
        rate_burst: 100_000,
        ..Default::default()
    };
    let m = start_monitored(config).await;
    let url = m.server.url();
    // Bob's tiny receive window makes the server's writes to him block
    // soon, so his outbox fills while he does not read.
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("a small receive buffer");
    let stream = socket.connect(m.server.addr()).await.expect("tcp connect");
    let (mut bob, _) = tokio_tungstenite::client_async(url.as_str(), stream).await.expect("handshake");
    bob.send(Message::text(json!({"type": "login", "peer_id": "bob", "req": 1}).to_string()))
        .await
        .expect("send login");
    let mut alice = Client::login(&url, "alice").await;
    // About 8 MB of invitations: more than the socket buffers can hold
    // (4 MiB at most for a send buffer with the usual Linux settings). Each
    // is canceled at once, so no more than one rings at bob (v1.1 allows 3
    // per caller) and bob's outbox gets an invitation and a cancel each time.
    let content = bytes(softphone_core::protocol::MAX_TEXT_BYTES);
    let mut reqs = Vec::new();
    for i in 0..1000 {
        let call_id = format!("c{i}");
        let invite = json!({"type": "invite", "call_id": call_id, "callee_id": "bob", "content": content});
        reqs.push(alice.send_req(invite).await);
        reqs.push(alice.send_req(json!({"type": "cancel", "call_id": call_id})).await);
    }
    for req in reqs {
        check(&alice.reply(req).await, json!({"type": "ok"}));
    }
    // Reading again lets the blocked write finish; then the server sees the
    // overflow and closes with 1008.
    let deadline = Instant::now() + WAIT;
    let mut read = 0;
    let code = loop {
        let next = tokio::time::timeout_at(deadline, bob.next()).await;
        match next.unwrap_or_else(|_| panic!("bob is not closed within the wait ({read} frames read)")) {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => read += 1,
            Some(Err(e)) => panic!("the connection ended without a close frame: {e}"),
            None => panic!("the connection ended without a close frame"),
        }
    };
    assert_eq!(code, Some(1008), "closed as too slow");
    expect_metrics(m.metrics, &[("softphone_kicked_slow_readers_total", 1.0), ("softphone_sessions", 1.0)])
        .await;
}

#[tokio::test]
async fn healthz_is_200_metrics_is_prometheus_text_and_other_paths_are_404() {
    let m = start_monitored(ServerConfig::default()).await;
    let health = http(m.metrics, "GET", "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"), "{}", health.head);
    let metrics = http(m.metrics, "GET", "/metrics").await;
    assert_eq!(metrics.status, 200);
    let head = metrics.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert!(metrics.body.contains("# TYPE softphone_call_outcomes_total counter"), "{}", metrics.body);
    assert!(metrics.body.contains("# HELP softphone_live_calls "), "{}", metrics.body);
    for path in ["/", "/metrics/", "/nope", "/healthz?x"] {
        let status = http(m.metrics, "GET", path).await.status;
        if path == "/healthz?x" {
            assert_eq!(status, 200, "a query string does not change the path");
        } else {
            assert_eq!(status, 404, "{path}");
        }
    }
    let post = http(m.metrics, "POST", "/metrics").await;
    assert_eq!(post.status, 405, "{}", post.head);
    assert!(post.head.to_ascii_lowercase().contains("allow: get, head"), "{}", post.head);
    // The endpoint stops with the server.
    let addr = m.metrics;
    m.server.shutdown().await;
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "the metrics endpoint outlived its server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_binary_prints_the_metrics_address_and_serves_it() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["server", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn softphone server");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a line within 30 s")
            .expect("read stdout")
            .expect("a line before the end of stdout")
    };
    let ws = next().await;
    assert!(ws.starts_with("listening on ws://127.0.0.1:"), "{ws}");
    let line = next().await;
    let addr = line
        .strip_prefix("metrics listening on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected metrics line {line:?}"));
    let addr: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("bad address in {line:?}"));
    assert_ne!(addr.port(), 0, "{line}");
    let text = scrape(addr).await;
    assert_eq!(value(&text, "softphone_sessions"), Some(0.0), "{text}");
    assert_eq!(http(addr, "GET", "/healthz").await.status, 200);
}

#[tokio::test]
async fn an_address_that_cannot_be_bound_fails_at_start_with_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("an address").to_string();
    for addr in ["not-an-address", taken.as_str()] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
            .args(["server", "--listen", "127.0.0.1:0", "--metrics-listen", addr])
            .stdin(Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out).await.expect("exits").expect("runs");
        assert!(!out.status.success(), "{addr}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("cannot listen on {addr} for metrics")), "{addr}: {stderr}");
        assert!(out.stdout.is_empty(), "no ready line: {}", String::from_utf8_lossy(&out.stdout));
    }
}

/// On a cluster (`--redis`) each node reports the cluster's live calls and
/// peers online, as Redis counts them at the node's heartbeat, and its own
/// sessions: a call between peers on two nodes shows on both.
#[tokio::test]
async fn every_cluster_node_reports_the_clusters_live_calls_and_peers_online() {
    use crate::redis_server::{RedisServer, node_config};
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for id in ["m0", "m1"] {
        let listener = MetricsListener::bind("127.0.0.1:0").expect("bind the metrics listener");
        let metrics = listener.local_addr();
        let config =
            node_config(&redis, id, ServerConfig { metrics_listener: Some(listener), ..Default::default() });
        let server = softphone_core::server::spawn(config).await.expect("a cluster node starts");
        nodes.push(Monitored { server, metrics });
    }
    let mut alice = Client::login(&nodes[0].server.url(), "alice").await;
    let (mut bob, _) = Client::login_device(&nodes[1].server.url(), "bob", "desk").await;
    let (bob_phone, _) = Client::login_device(&nodes[0].server.url(), "bob", "phone").await;
    let both_online = [("softphone_peers_online", 2.0), ("softphone_live_calls", 0.0)];
    expect_metrics(nodes[0].metrics, &[&both_online[..], &[("softphone_sessions", 2.0)]].concat()).await;
    expect_metrics(nodes[1].metrics, &[&both_online[..], &[("softphone_sessions", 1.0)]].concat()).await;

    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    for node in &nodes {
        expect_metrics(node.metrics, &[("softphone_live_calls", 1.0)]).await;
    }
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    for node in &nodes {
        expect_metrics(node.metrics, &[("softphone_live_calls", 0.0), ("softphone_peers_online", 2.0)]).await;
    }
    // Bob's session on m0 leaving leaves him online through m1; alice's
    // leaving takes her offline everywhere.
    bob_phone.close().await;
    alice.close().await;
    for node in &nodes {
        expect_metrics(node.metrics, &[("softphone_peers_online", 1.0)]).await;
    }
    expect_metrics(nodes[0].metrics, &[("softphone_sessions", 0.0)]).await;
    bob.close().await;
    for node in &nodes {
        expect_metrics(node.metrics, &[("softphone_peers_online", 0.0)]).await;
    }
}
