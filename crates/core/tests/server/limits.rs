//! Limits that protect the server (rate, live calls per peer, connection
//! cap), liveness (pings, idle timeout) and the v1.1 deadlines: handshake,
//! login, and writes to a client that does not read.

use super::client::*;
use futures_util::SinkExt;
use serde_json::json;
use softphone_core::server::ServerConfig;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[test]
fn defaults_allow_50_invites_per_second_and_100_live_calls() {
    let c = ServerConfig::default();
    assert!(c.rate_per_second >= 50, "{c:?}");
    assert!(c.max_calls_per_peer >= 100, "{c:?}");
    assert_eq!(c.invite_ttl, Duration::from_secs(60));
    assert_eq!(c.ack_timeout, Duration::from_secs(30));
    assert_eq!(c.offline_grace, Duration::from_secs(30));
    assert_eq!(c.ping_interval, Duration::from_secs(15));
    assert_eq!(c.idle_timeout, Duration::from_secs(45));
    assert_eq!(c.secret, None);
}

#[tokio::test]
async fn frames_beyond_the_rate_get_rate_limited_and_are_ignored() {
    let server = start_server(ServerConfig { rate_per_second: 1, rate_burst: 5, ..Default::default() }).await;
    let url = server.url();
    // Four callees, taken in turn: at most 3 calls of one caller ring at one callee (v1.1).
    let callee = |i: usize| format!("bob{}", i % 4);
    let mut bobs = Vec::new();
    for i in 0..4 {
        bobs.push(Client::login(&url, &callee(i)).await);
    }
    let mut alice = Client::login(&url, "alice").await;
    let mut reqs = Vec::new();
    for i in 0..20 {
        reqs.push((
            alice
                .send_req(json!({"type": "invite", "call_id": format!("c{i}"), "callee_id": callee(i)}))
                .await,
            i,
        ));
    }
    let mut accepted = BTreeSet::new();
    let mut limited = Vec::new();
    for (req, i) in reqs {
        let reply = alice.reply(req).await;
        match ty(&reply) {
            "ok" => {
                accepted.insert((i % 4, format!("c{i}")));
            }
            _ => {
                check_error(&reply, "rate_limited");
                limited.push(i);
            }
        }
    }
    assert!(!limited.is_empty(), "20 frames at once with a burst of 5 must hit the limit");
    assert!(!accepted.is_empty(), "the burst lets the first frames through");
    // The callees got exactly the accepted invitations: a limited frame was ignored.
    let mut got = BTreeSet::new();
    for &(b, _) in &accepted {
        let inv = bobs[b].recv().await;
        check_event(&inv, json!({"type": "invitation", "caller_id": "alice"}));
        got.insert((b, inv["call_id"].as_str().unwrap_or_default().to_string()));
    }
    assert_eq!(got, accepted);
    for bob in &mut bobs {
        bob.expect_silence(QUIET).await;
    }
    assert!(alice.pending().is_empty(), "{:?}", alice.pending());
    // Once tokens are back, an ignored invite's id is free.
    let i = limited[0];
    let id = format!("c{i}");
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = alice.request(json!({"type": "invite", "call_id": id, "callee_id": callee(i)})).await;
        if ty(&reply) == "ok" {
            break;
        }
        check_error(&reply, "rate_limited");
        assert!(Instant::now() < deadline, "still rate limited after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    check_event(&bobs[i % 4].recv().await, json!({"type": "invitation", "call_id": id}));
}

#[tokio::test]
async fn invites_beyond_the_live_calls_of_a_peer_get_too_many_calls() {
    let server = start_server(ServerConfig { max_calls_per_peer: 2, ..Default::default() }).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    alice.ok(json!({"type": "invite", "call_id": "c2", "callee_id": "carol"})).await;
    let reply = alice.request(json!({"type": "invite", "req": 3, "call_id": "c3", "callee_id": "bob"})).await;
    check(&reply, json!({"type": "error", "req": 3, "code": "too_many_calls"}));
    // Ended calls free their slot; accepted ones are still live.
    alice.ok(json!({"type": "cancel", "call_id": "c2"})).await;
    alice.ok(json!({"type": "invite", "call_id": "c3", "callee_id": "bob"})).await;
    alice.error(json!({"type": "invite", "call_id": "c4", "callee_id": "bob"}), "too_many_calls").await;
    check_event(&bob.recv().await, json!({"type": "invitation", "call_id": "c1"}));
    check_event(&bob.recv().await, json!({"type": "invitation", "call_id": "c3"}));
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    alice.error(json!({"type": "invite", "call_id": "c4", "callee_id": "bob"}), "too_many_calls").await;
    bob.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    alice.recv_until("hung_up").await;
    alice.ok(json!({"type": "invite", "call_id": "c4", "callee_id": "bob"})).await;
    check_event(&bob.recv().await, json!({"type": "invitation", "call_id": "c4"}));
    // The refused invites created nothing.
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn the_connection_cap_refuses_cleanly_and_frees_a_slot_on_close() {
    let server = start_server(ServerConfig { max_connections: 2, ..Default::default() }).await;
    let url = server.url();
    let first = Client::login(&url, "alice").await;
    let mut second = Client::connect(&url).await;
    let third = Client::try_connect(&url).await;
    assert!(third.is_err(), "the third connection must be refused at the handshake");
    // The others are unaffected.
    second.ok(json!({"type": "login", "peer_id": "bob"})).await;
    first.close().await;
    let deadline = Instant::now() + WAIT;
    let mut third = loop {
        match Client::try_connect(&url).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "no slot freed after a close: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    third.ok(json!({"type": "login", "peer_id": "carol"})).await;
    assert!(Client::try_connect(&url).await.is_err(), "the cap is full again");
    second.ok(json!({"type": "query_presence", "peer_ids": ["carol"]})).await;
}

#[tokio::test]
async fn the_server_pings_at_the_ping_interval() {
    let server =
        start_server(ServerConfig { ping_interval: Duration::from_millis(100), ..Default::default() }).await;
    let mut c = Client::login(&server.url(), "alice").await;
    let deadline = Instant::now() + WAIT;
    let mut pings = 0;
    while pings < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next_message(left).await {
            Some(Message::Ping(_)) => pings += 1,
            Some(Message::Pong(_)) => {}
            Some(other) => panic!("unexpected message while waiting for pings: {other:?}"),
            None => panic!("got {pings} pings within {WAIT:?}, expected 2"),
        }
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(400),
        ..Default::default()
    };
    let server = start_server(config).await;
    // Never answers pings, never sends anything.
    let mut raw = RawSocket::handshake(server.addr()).await;
    raw.wait_closed(WAIT).await;
}

#[tokio::test]
async fn a_client_answering_pings_stays_connected() {
    let config = ServerConfig {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let server = start_server(config).await;
    let mut c = Client::login(&server.url(), "alice").await;
    // Reading lets tungstenite answer every ping with a pong.
    c.expect_silence(Duration::from_millis(1500)).await;
    c.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
}

/// Whether `peer` is online, as `c` is told.
async fn is_online(c: &mut Client, peer: &str) -> bool {
    c.ok(json!({"type": "query_presence", "peer_ids": [peer]})).await["online"][peer] == true
}

/// Connects to `url` again and again until the handshake succeeds (a slot
/// is freed a moment after its session ends).
async fn connect_when_a_slot_is_free(url: &str) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::try_connect(url).await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "no slot freed within {WAIT:?}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads from `stream` until the server ends the connection (end of
/// stream or reset); panics if it is still open after `within`.
async fn expect_dropped(stream: &mut TcpStream, within: Duration, what: &str) {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("{what}: still open after {within:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_completes_the_handshake_is_dropped_and_frees_its_slot() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        max_connections: 2,
        ..Default::default()
    };
    let server = start_server(config).await;
    let mut silent = TcpStream::connect(server.addr()).await.expect("tcp connect");
    let mut partial = TcpStream::connect(server.addr()).await.expect("tcp connect");
    partial.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n").await.expect("write");
    // Both hold the two slots for now.
    assert!(Client::try_connect(&server.url()).await.is_err(), "the cap is full");
    // Well within the default 5 s: the configured 300 ms applies.
    expect_dropped(&mut silent, Duration::from_secs(4), "a connection that sent nothing").await;
    expect_dropped(&mut partial, Duration::from_secs(4), "a connection that sent half a request").await;
    let mut c = connect_when_a_slot_is_free(&server.url()).await;
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
}

#[tokio::test]
async fn a_connection_that_does_not_log_in_in_time_is_closed_with_1008() {
    let config = ServerConfig {
        login_timeout: Duration::from_millis(500),
        ping_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let server = start_server(config).await;
    let url = server.url();
    let mut lurker = Client::connect(&url).await;
    // Answering pings (reading does), pinging and other requests do not count as a login.
    lurker.error(json!({"type": "query_presence", "peer_ids": ["bob"]}), "not_logged_in").await;
    lurker.send_message(Message::Ping(b"still here".to_vec().into())).await;
    lurker.send_message(Message::Pong(b"still here".to_vec().into())).await;
    assert_eq!(lurker.expect_close().await, Some(1008));
    // One that logs in stays well past the login timeout.
    let mut alice = Client::login(&url, "alice").await;
    alice.expect_silence(Duration::from_millis(1200)).await;
    alice.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
}

#[tokio::test]
async fn connections_that_answer_pings_but_never_log_in_do_not_hold_the_slots() {
    let config = ServerConfig {
        max_connections: 2,
        login_timeout: Duration::from_millis(500),
        ping_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let server = start_server(config).await;
    let url = server.url();
    let mut squatters = [Client::connect(&url).await, Client::connect(&url).await];
    assert!(Client::try_connect(&url).await.is_err(), "the cap is full");
    // expect_close keeps reading, so the squatters answer every ping.
    for s in &mut squatters {
        assert_eq!(s.expect_close().await, Some(1008));
    }
    let mut alice = connect_when_a_slot_is_free(&url).await;
    alice.ok(json!({"type": "login", "peer_id": "alice"})).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_its_slot_freed() {
    let config = ServerConfig {
        max_connections: 2,
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start_server(config).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    // Bob's receive window is tiny, and he never reads: the server's
    // replies to his pings fill its send buffer, and its own pings stall.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(1024).expect("SO_RCVBUF");
    let tcp = socket.connect(server.addr()).await.expect("tcp connect");
    let (mut bob, _) = tokio_tungstenite::client_async(url.as_str(), tcp).await.expect("handshake");
    bob.send(Message::text(json!({"type": "login", "peer_id": "bob"}).to_string())).await.expect("login");
    let deadline = Instant::now() + WAIT;
    while !is_online(&mut alice, "bob").await {
        assert!(Instant::now() < deadline, "bob never came online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flood = tokio::spawn(async move {
        // Never silent, so only the write deadline can end this session.
        while bob.send(Message::Ping(vec![7u8; 125].into())).await.is_ok() {}
    });
    let deadline = Instant::now() + WAIT;
    while is_online(&mut alice, "bob").await {
        assert!(Instant::now() < deadline, "a client that never reads is still online after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut carol = connect_when_a_slot_is_free(&url).await;
    carol.ok(json!({"type": "login", "peer_id": "carol"})).await;
    flood.abort();
}

#[tokio::test]
async fn a_zero_duration_is_refused_by_spawn_not_a_panic() {
    let zero = Duration::ZERO;
    for config in [
        ServerConfig { ping_interval: zero, ..Default::default() },
        ServerConfig { idle_timeout: zero, ..Default::default() },
        ServerConfig { login_timeout: zero, ..Default::default() },
        ServerConfig { handshake_timeout: zero, ..Default::default() },
    ] {
        let refused = softphone_core::server::spawn(config).await.err().expect("a zero duration is refused");
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput, "{refused}");
        assert!(refused.to_string().contains("must be more than zero"), "{refused}");
    }
}
