//! Tokens that end (protocol v1.2, additive): a session is told
//! `token_expiring` before its token expires, may `renew_token`, and is
//! closed with 4001 at expiry otherwise; open mode never expires. Short
//! real token lives (whole seconds, as tokens carry) or a paused clock;
//! the tests assert the order of events, never how long they took.

use super::client::*;
use super::session::spec_token;
use crate::redis_server::{RedisServer, start_nodes};
use serde_json::{Value, json};
use softphone_core::server::{ServerConfig, ServerHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &[u8] = b"token-expiry-tests-secret-32-byt";

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

fn signed() -> ServerConfig {
    ServerConfig { secret: Some(SECRET.to_vec()), ..Default::default() }
}

/// Connects and logs in as `peer` with `token`, asserting `ok`.
async fn login_with(url: &str, peer: &str, token: &str) -> Client {
    let mut c = Client::connect(url).await;
    c.ok(json!({"type": "login", "peer_id": peer, "token": token})).await;
    c.name = peer.into();
    c
}

/// The next message, which must be `token_expiring`; returns its `expires_in_ms`.
async fn expect_token_expiring(c: &mut Client) -> u64 {
    let event = c.recv().await;
    check_event(&event, json!({"type": "token_expiring"}));
    event["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms is a number: {event}"))
}

#[tokio::test]
async fn a_session_is_told_its_token_is_expiring_then_closed_with_4001() {
    let server = start_server(signed()).await;
    // Less than the 30 s warning is left: told at once, after the login's ok.
    let mut alice = login_with(&server.url(), "alice", &spec_token(SECRET, "alice", unix_now() + 2)).await;
    let left = expect_token_expiring(&mut alice).await;
    assert!(left <= 2_000, "at most the token's life is left: {left} ms");
    assert_eq!(alice.expect_close().await, Some(4001), "closed as token expired");
    assert!(alice.pending().is_empty(), "nothing between the warning and the close: {:?}", alice.pending());
}

#[tokio::test]
async fn a_renewed_token_keeps_the_session_and_a_bad_one_changes_nothing() {
    let server = start_server(signed()).await;
    let url = server.url();
    let expiry = unix_now() + 2;
    let mut renewing = login_with(&url, "alice", &spec_token(SECRET, "alice", expiry)).await;
    expect_token_expiring(&mut renewing).await;
    // Bad renewals: each refused with its code.
    let refusals = [
        (spec_token(SECRET, "bob", unix_now() + 3_600), "invalid_token"),
        (spec_token(b"another-secret-of-32-bytes-long!", "alice", unix_now() + 3_600), "invalid_token"),
        ("v1.garbage".to_owned(), "invalid_token"),
        (spec_token(SECRET, "alice", unix_now() - 10), "token_expired"),
    ];
    for (token, code) in refusals {
        renewing.error(json!({"type": "renew_token", "token": token}), code).await;
    }
    renewing
        .ok(json!({"type": "renew_token", "token": spec_token(SECRET, "alice", unix_now() + 3_600)}))
        .await;
    // A session whose token expires a second after the renewed one's old
    // expiry is closed: by then that old expiry has passed.
    let mut witness = login_with(&url, "alice", &spec_token(SECRET, "alice", expiry + 1)).await;
    expect_token_expiring(&mut witness).await;
    assert_eq!(witness.expect_close().await, Some(4001));
    // The renewed session is still open and hears no warning (an hour is left).
    renewing.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
    assert!(renewing.pending().is_empty(), "no more warnings: {:?}", renewing.pending());
}

#[tokio::test]
async fn renewing_with_a_short_token_warns_again_and_the_new_expiry_closes() {
    let server = start_server(signed()).await;
    let mut alice = login_with(&server.url(), "alice", &spec_token(SECRET, "alice", unix_now() + 1)).await;
    expect_token_expiring(&mut alice).await;
    alice.ok(json!({"type": "renew_token", "token": spec_token(SECRET, "alice", unix_now() + 3)})).await;
    expect_token_expiring(&mut alice).await;
    assert_eq!(alice.expect_close().await, Some(4001));
}

#[tokio::test]
async fn open_mode_tokens_never_expire_and_renewing_is_a_no_op() {
    let server = start_default().await;
    let mut alice = Client::login(&server.url(), "alice").await;
    alice.ok(json!({"type": "renew_token", "token": "anything"})).await;
    alice.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
    assert!(alice.pending().is_empty(), "no token_expiring in open mode: {:?}", alice.pending());
}

#[tokio::test]
async fn renew_token_before_login_is_not_logged_in() {
    let server = start_server(signed()).await;
    let mut c = Client::connect(&server.url()).await;
    c.error(json!({"type": "renew_token", "token": "x"}), "not_logged_in").await;
    c.error(json!({"type": "renew_token"}), "bad_request").await;
}

/// Keeps the paused clock from moving on its own (see crates/core/tests/server/boundary.rs).
struct FrozenClock {
    _release: std::sync::mpsc::Sender<()>,
}

impl FrozenClock {
    fn hold() -> FrozenClock {
        let (release, held) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = held.recv();
        });
        FrozenClock { _release: release }
    }
}

#[tokio::test(start_paused = true)]
async fn the_warning_comes_thirty_seconds_before_the_expiry_and_not_sooner() {
    let _frozen = FrozenClock::hold();
    let quiet = ServerConfig {
        ping_interval: Duration::from_secs(3_600),
        idle_timeout: Duration::from_secs(3_600),
        ..signed()
    };
    let server = start_server(quiet).await;
    let mut alice = login_with(&server.url(), "alice", &spec_token(SECRET, "alice", unix_now() + 120)).await;
    // 85 s on, more than 30 s are left (at least 119 s of life at login): nothing yet.
    tokio::time::advance(Duration::from_secs(85)).await;
    alice.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
    assert!(alice.pending().is_empty(), "no warning with over 30 s left: {:?}", alice.pending());
    tokio::time::advance(Duration::from_secs(10)).await;
    let left = expect_token_expiring(&mut alice).await;
    assert!(left <= 30_000, "warned with at most 30 s left: {left} ms");
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(alice.expect_close().await, Some(4001));
}

#[tokio::test]
async fn a_cluster_node_warns_renews_and_closes_alike() {
    let redis = RedisServer::start().await;
    let nodes: Vec<ServerHandle> = start_nodes(&redis, 1, signed()).await;
    let url = nodes[0].url();
    let mut renewing = login_with(&url, "alice", &spec_token(SECRET, "alice", unix_now() + 2)).await;
    let mut expiring = login_with(&url, "bob", &spec_token(SECRET, "bob", unix_now() + 3)).await;
    expect_token_expiring(&mut renewing).await;
    expect_token_expiring(&mut expiring).await;
    renewing
        .error(
            json!({"type": "renew_token", "token": spec_token(SECRET, "bob", unix_now() + 60)}),
            "invalid_token",
        )
        .await;
    renewing
        .ok(json!({"type": "renew_token", "token": spec_token(SECRET, "alice", unix_now() + 3_600)}))
        .await;
    assert_eq!(expiring.expect_close().await, Some(4001));
    let presence: Value = renewing.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
    check(&presence, json!({"online": {"alice": true}}));
}
