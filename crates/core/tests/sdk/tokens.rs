//! Tokens that end, through the SDK and the headless peer (protocol v1.2):
//! `Event::TokenExpiring`, `Client::renew_token` (and the renewed token
//! used by the next login), the peer renewing from `--token-file` or
//! `--token-command`, and signing out with the reason when it cannot.
//! Real token lives of a few whole seconds; assertions on order only.

use crate::peer::Peer;
use crate::support::*;
use serde_json::json;
use softphone_core::protocol::ErrorCode;
use softphone_core::sdk::{self, ConnectionReason, Event, Events};
use softphone_core::server::{self, ServerConfig, ServerHandle};

const SECRET: &[u8] = b"sdk-token-tests-secret-of-32-byt";

fn unix_now() -> u64 {
    softphone_core::clock::unix_secs()
}

fn token(peer: &str, expiry: u64) -> String {
    softphone_core::token::mint(SECRET, peer, expiry)
}

fn signed() -> ServerConfig {
    ServerConfig { secret: Some(SECRET.to_vec()), ..server_config() }
}

async fn connect_with(url: &str, peer: &str, token: String) -> (sdk::Client, Events) {
    let mut config = client_config(url, peer);
    config.token = token;
    sdk::Client::connect(config).await.unwrap_or_else(|e| panic!("{peer} cannot connect: {e}"))
}

async fn token_expiring(events: &mut Events) {
    wait_for(events, "token_expiring", |e| matches!(e, Event::TokenExpiring { .. })).await;
}

/// Waits until a session whose token expires at `expiry` has been closed
/// by the server: from then on, every token of that expiry has expired.
async fn wait_past(url: &str, expiry: u64) {
    let (_witness, mut events) = connect_with(url, "witness", token("witness", expiry)).await;
    wait_connection(&mut events, "reconnecting").await;
}

#[tokio::test]
async fn the_sdk_announces_the_expiry_renews_and_logs_in_again_with_the_renewed_token() {
    let server = start_server(signed()).await;
    let url = server.url();
    let expiry = unix_now() + 2;
    let (alice, mut events) = connect_with(&url, "alice", token("alice", expiry)).await;
    token_expiring(&mut events).await;
    match alice.renew_token(&token("bob", unix_now() + 3_600)).await {
        Err(sdk::Error::Server(e)) => assert_eq!(e.code, ErrorCode::InvalidToken),
        other => panic!("another peer's token must be refused, got {other:?}"),
    }
    alice.renew_token(&token("alice", unix_now() + 3_600)).await.expect("a fresh token is taken");
    wait_past(&url, expiry + 1).await;
    assert!(alice.query_presence(&["alice"]).await.expect("still logged in")["alice"]);
    // A new server on the same address: the next login must use the renewed token.
    let addr = server.addr();
    server.shutdown().await;
    wait_connection(&mut events, "reconnecting").await;
    let listener = tokio::net::TcpListener::bind(addr).await.expect("the address again");
    let _again: ServerHandle = server::spawn_on(listener, signed());
    let connected = wait_for(&mut events, "connected or refused", |e| {
        is_connected(e) || matches!(e, Event::Connection { reason: ConnectionReason::LoginRefused(_), .. })
    })
    .await;
    assert!(is_connected(&connected), "logged in with the renewed token: {connected:?}");
}

#[tokio::test]
async fn the_peer_renews_from_its_token_file_read_again() {
    let server = start_server(signed()).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let expiry = unix_now() + 5;
    std::fs::write(&file, token("bob", expiry)).unwrap();
    let mut bob = Peer::spawn(&url, "bob", &["--token-file", file.to_str().unwrap()]);
    bob.expect(json!({"event": "connected"})).await;
    // The credential agent's part: a fresh token in the file. The peer
    // reads it again at `token_expiring`, and again each second while it
    // still holds the expiring one.
    std::fs::write(&file, token("bob", unix_now() + 3_600)).unwrap();
    bob.expect(json!({"event": "token_expiring"})).await;
    let renewed = bob.expect(json!({"auto": "renew_token"})).await;
    assert_eq!(renewed["ok"], true, "renewed from the token file: {renewed}");
    wait_past(&url, expiry + 1).await;
    let (alice, _) = connect_with(&url, "alice", token("alice", unix_now() + 60)).await;
    assert!(alice.query_presence(&["bob"]).await.unwrap()["bob"], "bob is still signed in");
}

#[tokio::test]
async fn the_peer_renews_from_its_token_command_and_without_one_signs_out_saying_why() {
    let server = start_server(signed()).await;
    let url = server.url();
    let fresh = token("bob", unix_now() + 3_600);
    // The command prints a short token at start, then a fresh one.
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("n");
    let first = token("bob", unix_now() + 2);
    let script =
        format!("if [ -e {n} ]; then echo {fresh}; else touch {n}; echo {first}; fi", n = counter.display());
    let command = format!("sh -c '{script}'");
    let mut bob = Peer::spawn(&url, "bob", &["--token-command", &command]);
    bob.expect(json!({"event": "token_expiring"})).await;
    bob.expect(json!({"auto": "renew_token", "ok": true})).await;

    // No source: told so, then signed out at expiry with the reason.
    let mut carol = Peer::spawn(&url, "carol", &["--token", &token("carol", unix_now() + 2)]);
    carol.expect(json!({"event": "token_expiring"})).await;
    let line = carol.expect(json!({"auto": "renew_token", "ok": false})).await;
    assert!(line["message"].as_str().unwrap_or("").contains("--token-file"), "{line}");
    let ended = carol.expect(json!({"event": "aborted"})).await;
    assert!(ended["reason"].as_str().unwrap_or("").contains("token_expired"), "{ended}");
}
