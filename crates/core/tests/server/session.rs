//! Session: login (reply, live calls), not_logged_in, already_logged_in,
//! tokens (open mode and with a secret), several devices, logout, shutdown.

use super::client::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use softphone_core::server::ServerConfig;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// A token built from the spec's words, independently of `softphone_core::token`.
pub fn spec_token(secret: &[u8], peer: &str, expiry: u64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("v1.{peer}.{expiry}").as_bytes());
    format!("v1.{expiry}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The login's live calls, sorted by call_id.
fn sorted_calls(login: &Value) -> Vec<Value> {
    let mut calls =
        login["calls"].as_array().unwrap_or_else(|| panic!("login reply without calls: {login}")).clone();
    calls.sort_by_key(|c| c["call_id"].as_str().unwrap_or_default().to_string());
    calls
}

#[tokio::test]
async fn login_reply_has_a_session_and_no_calls() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    let reply = c
        .request(json!({"type": "login", "req": 1, "peer_id": "alice", "token": "", "device": "laptop"}))
        .await;
    check(&reply, json!({"type": "ok", "req": 1, "calls": []}));
    let session = reply["session"].as_str().unwrap_or_else(|| panic!("no session string: {reply}"));
    assert!(!session.is_empty(), "{reply}");
}

#[tokio::test]
async fn login_lists_every_live_call() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    let mut dave = Client::login(&url, "dave").await;
    // c1: alice calls bob, ringing.
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    bob.recv_until("invitation").await;
    // c2: carol calls alice, accepted.
    carol.ok(json!({"type": "invite", "call_id": "c2", "callee_id": "alice"})).await;
    check_event(&alice.recv().await, json!({"type": "invitation", "call_id": "c2"}));
    alice.ok(json!({"type": "accept", "call_id": "c2"})).await;
    carol.recv_until("accepted").await;
    // c3: dave calls alice, refused; c4: alice calls dave and cancels; c5: accepted then hung up.
    dave.ok(json!({"type": "invite", "call_id": "c3", "callee_id": "alice"})).await;
    check_event(&alice.recv().await, json!({"type": "invitation", "call_id": "c3"}));
    alice.ok(json!({"type": "refuse", "call_id": "c3"})).await;
    alice.ok(json!({"type": "invite", "call_id": "c4", "callee_id": "dave"})).await;
    alice.ok(json!({"type": "cancel", "call_id": "c4"})).await;
    dave.ok(json!({"type": "invite", "call_id": "c5", "callee_id": "alice"})).await;
    check_event(&alice.recv().await, json!({"type": "invitation", "call_id": "c5"}));
    alice.ok(json!({"type": "accept", "call_id": "c5"})).await;
    alice.ok(json!({"type": "hangup", "call_id": "c5"})).await;

    let (_alice2, login) = Client::login_device(&url, "alice", "phone").await;
    let calls = sorted_calls(&login);
    assert_eq!(calls.len(), 2, "only c1 and c2 are live: {login}");
    check(&calls[0], json!({"call_id": "c1", "role": "caller", "state": "ringing", "peer_id": "bob"}));
    check(&calls[1], json!({"call_id": "c2", "role": "callee", "state": "accepted", "peer_id": "carol"}));
    let (_bob2, login) = Client::login_device(&url, "bob", "phone").await;
    let calls = sorted_calls(&login);
    assert_eq!(calls.len(), 1, "{login}");
    check(&calls[0], json!({"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}));
    let (_carol2, login) = Client::login_device(&url, "carol", "phone").await;
    let calls = sorted_calls(&login);
    assert_eq!(calls.len(), 1, "{login}");
    check(&calls[0], json!({"call_id": "c2", "role": "caller", "state": "accepted", "peer_id": "alice"}));
    let (_dave2, login) = Client::login_device(&url, "dave", "phone").await;
    assert_eq!(login["calls"], json!([]), "{login}");
}

#[tokio::test]
async fn requests_before_login_get_not_logged_in() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    for request in [
        json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}),
        json!({"type": "cancel", "call_id": "c1"}),
        json!({"type": "accept", "call_id": "c1"}),
        json!({"type": "refuse", "call_id": "c1"}),
        json!({"type": "hangup", "call_id": "c1"}),
        json!({"type": "query_presence", "peer_ids": ["bob"]}),
        json!({"type": "subscribe_presence", "peer_ids": ["bob"]}),
        json!({"type": "unsubscribe_presence", "peer_ids": ["bob"]}),
        json!({"type": "logout"}),
    ] {
        let reply = c.error(request, "not_logged_in").await;
        assert!(reply.get("req").is_some(), "{reply}");
    }
    // The connection stays and can still log in.
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
}

#[tokio::test]
async fn a_second_login_gets_already_logged_in() {
    let server = start_default().await;
    let url = server.url();
    let mut c = Client::login(&url, "alice").await;
    c.error(json!({"type": "login", "peer_id": "alice"}), "already_logged_in").await;
    c.error(json!({"type": "login", "peer_id": "bob"}), "already_logged_in").await;
    // Still alice, still usable; bob did not log in.
    let reply = c.ok(json!({"type": "query_presence", "peer_ids": ["alice", "bob"]})).await;
    assert_eq!(reply["online"], json!({"alice": true, "bob": false}), "{reply}");
}

#[tokio::test]
async fn a_refused_login_can_be_followed_by_a_good_one() {
    let server = start_server(ServerConfig { secret: Some(b"k3y".to_vec()), ..Default::default() }).await;
    let mut c = Client::connect(&server.url()).await;
    c.error(json!({"type": "login", "peer_id": "alice", "token": "nope"}), "invalid_token").await;
    c.error(json!({"type": "query_presence", "peer_ids": []}), "not_logged_in").await;
    let token = softphone_core::token::mint(b"k3y", "alice", now() + 3600);
    c.ok(json!({"type": "login", "peer_id": "alice", "token": token})).await;
}

#[tokio::test]
async fn open_mode_accepts_any_token() {
    let server = start_default().await;
    let url = server.url();
    let expired = softphone_core::token::mint(b"whatever", "p4", 1);
    for (i, token) in
        [json!("garbage"), json!(""), json!("v1.1.AAAA"), json!(expired)].into_iter().enumerate()
    {
        let mut c = Client::connect(&url).await;
        c.ok(json!({"type": "login", "peer_id": format!("p{i}"), "token": token})).await;
    }
    let mut c = Client::connect(&url).await;
    c.ok(json!({"type": "login", "peer_id": "no-token"})).await;
}

#[test]
fn mint_follows_the_spec_format() {
    let t = softphone_core::token::mint(b"s3cret", "alice", 2_000_000_000);
    assert_eq!(t, spec_token(b"s3cret", "alice", 2_000_000_000));
    assert!(
        t.starts_with("v1.2000000000.") && !t.contains('=') && !t.contains('+') && !t.contains('/'),
        "{t}"
    );
}

#[tokio::test]
async fn tokens_with_a_secret() {
    let secret = b"top secret".to_vec();
    let server = start_server(ServerConfig { secret: Some(secret.clone()), ..Default::default() }).await;
    let url = server.url();
    let later = now() + 3600;
    // Good: minted by the library, or built by hand from the spec.
    for (peer, token) in [
        ("alice", softphone_core::token::mint(&secret, "alice", later)),
        ("bob", spec_token(&secret, "bob", later)),
        ("~!x", spec_token(&secret, "~!x", later)),
    ] {
        let mut c = Client::connect(&url).await;
        c.ok(json!({"type": "login", "peer_id": peer, "token": token})).await;
    }
    let good = spec_token(&secret, "carol", later);
    let mut flipped = good.clone().into_bytes();
    // A character in the middle of the MAC (the last one may carry only padding bits).
    let i = flipped.len() - 10;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let bad = [
        json!(spec_token(&secret, "dave", later)), // for another peer
        json!(spec_token(b"other secret", "carol", later)),
        json!(flipped),
        json!(good.replacen(&format!("v1.{later}."), &format!("v1.{}.", later + 1), 1)),
        json!(good.replacen("v1.", "v2.", 1)),
        json!("garbage"),
        json!(""),
    ];
    let mut c = Client::connect(&url).await;
    for token in bad {
        c.error(json!({"type": "login", "peer_id": "carol", "token": token}), "invalid_token").await;
    }
    // A missing token defaults to empty: refused.
    c.error(json!({"type": "login", "peer_id": "carol"}), "invalid_token").await;
    // Past its expiry, with a good MAC.
    for expiry in [now() - 10, 1] {
        let token = spec_token(&secret, "carol", expiry);
        c.error(json!({"type": "login", "peer_id": "carol", "token": token}), "token_expired").await;
    }
    c.ok(json!({"type": "login", "peer_id": "carol", "token": good})).await;
}

#[tokio::test]
async fn every_session_of_a_peer_gets_its_events() {
    let server = start_default().await;
    let url = server.url();
    let (mut bob1, _) = Client::login_device(&url, "bob", "laptop").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "phone").await;
    let mut alice = Client::login(&url, "alice").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "content": "hi"})).await;
    for bob in [&mut bob1, &mut bob2] {
        check_event(&bob.recv().await, json!({"type": "invitation", "call_id": "c1", "caller_id": "alice"}));
    }
    alice.ok(json!({"type": "cancel", "call_id": "c1"})).await;
    for bob in [&mut bob1, &mut bob2] {
        check_event(
            &bob.recv().await,
            json!({"type": "canceled", "call_id": "c1", "reason": "caller_canceled"}),
        );
    }
}

#[tokio::test]
async fn logout_gets_ok_then_close_1000() {
    let server = start_default().await;
    let url = server.url();
    let mut watcher = Client::login(&url, "watcher").await;
    let mut alice = Client::login(&url, "alice").await;
    let reply = alice.request(json!({"type": "logout", "req": 5})).await;
    check(&reply, json!({"type": "ok", "req": 5}));
    assert_eq!(alice.expect_close().await, Some(1000));
    let reply = watcher.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
    assert_eq!(reply["online"], json!({"alice": false}), "{reply}");
}

#[tokio::test]
async fn logout_and_close_end_only_that_session() {
    let server = start_default().await;
    let url = server.url();
    let mut watcher = Client::login(&url, "watcher").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "one").await;
    let (bob2, _) = Client::login_device(&url, "bob", "two").await;
    let (mut bob3, _) = Client::login_device(&url, "bob", "three").await;
    bob1.ok(json!({"type": "logout"})).await;
    assert_eq!(bob1.expect_close().await, Some(1000));
    bob2.close().await;
    let reply = watcher.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
    assert_eq!(reply["online"], json!({"bob": true}), "{reply}");
    let mut alice = Client::login(&url, "alice").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    check_event(&bob3.recv().await, json!({"type": "invitation", "call_id": "c1"}));
    // Closing the socket of the last session ends it: bob goes offline.
    bob3.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = watcher.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
        if reply["online"] == json!({"bob": false}) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "bob still online after closing: {reply}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob, _) = Client::login_device(&url, "bob", "phone").await;
    let mut anonymous = Client::connect(&url).await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    bob.recv_until("invitation").await;
    let shutdown = tokio::spawn(server.shutdown());
    for c in [&mut alice, &mut bob, &mut anonymous] {
        assert_eq!(c.expect_close().await, Some(1001), "{}", c.name);
    }
    tokio::time::timeout(WAIT, shutdown).await.expect("shutdown returns").expect("shutdown task");
}

#[tokio::test]
async fn a_token_expiry_spelled_otherwise_is_invalid_whatever_its_mac() {
    let secret = b"a secret of 16+ bytes".to_vec();
    let server = start_server(ServerConfig { secret: Some(secret.clone()), ..Default::default() }).await;
    let mut c = Client::connect(&server.url()).await;
    let later = now() + 3600;
    let genuine = spec_token(&secret, "alice", later);
    let tag = genuine.rsplit('.').next().expect("three parts").to_owned();
    for odd in [format!("+{later}"), format!("0{later}"), format!("00{later}")] {
        // With the genuine MAC (what `u64::from_str` would make of it) ...
        c.error(
            json!({"type": "login", "peer_id": "alice", "token": format!("v1.{odd}.{tag}")}),
            "invalid_token",
        )
        .await;
        // ... and with a MAC over the odd spelling itself.
        let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("any key length");
        mac.update(format!("v1.alice.{odd}").as_bytes());
        let own = format!("v1.{odd}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        c.error(json!({"type": "login", "peer_id": "alice", "token": own}), "invalid_token").await;
    }
    c.ok(json!({"type": "login", "peer_id": "alice", "token": genuine})).await;
}
