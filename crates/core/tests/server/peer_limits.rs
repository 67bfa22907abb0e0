//! The v1.1 limits per peer that the hub keeps (`docs/protocol.md`,
//! "Hardening rules"): who counts toward `too_many_calls` (the calls a peer
//! placed or accepted, never the calls ringing at it), at most 3 calls of
//! one caller ringing at the same callee, and sessions per peer with
//! `too_many_sessions`.

use super::client::*;
use serde_json::json;
use softphone_core::server::ServerConfig;

fn unlimited_rate(config: ServerConfig) -> ServerConfig {
    ServerConfig { rate_per_second: 1_000_000, rate_burst: 1_000_000, ..config }
}

#[tokio::test]
async fn calls_ringing_at_a_peer_do_not_lock_it_out() {
    // A cap of 3, and one token ringing bob 100 times.
    let server =
        start_server(unlimited_rate(ServerConfig { max_calls_per_peer: 3, ..Default::default() })).await;
    let url = server.url();
    let mut mallory = Client::login(&url, "mallory").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    for i in 0..100 {
        let invite = json!({"type": "invite", "call_id": format!("m{i}"), "callee_id": "bob"});
        let reply = mallory.request(invite).await;
        if i < 3 {
            check(&reply, json!({"type": "ok"}));
        } else {
            check_error(&reply, "too_many_calls");
        }
    }
    for i in 0..3 {
        expect_invitation(&mut bob, &format!("m{i}"), "mallory").await;
    }
    // Bob can still call out, up to his own cap, and still be reached.
    invite(&mut bob, "b1", "carol").await;
    expect_invitation(&mut carol, "b1", "bob").await;
    invite(&mut carol, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "carol").await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    carol.recv_until("accepted").await;
    // The refused invites created nothing.
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn many_callers_ringing_a_peer_past_its_cap_do_not_lock_it_out() {
    let server = start_server(ServerConfig { max_calls_per_peer: 2, ..Default::default() }).await;
    let url = server.url();
    let mut bob = Client::login(&url, "bob").await;
    let mut callers = Vec::new();
    for i in 0..5 {
        let mut c = Client::login(&url, &format!("caller{i}")).await;
        invite(&mut c, &format!("r{i}"), "bob").await;
        expect_invitation(&mut bob, &format!("r{i}"), &format!("caller{i}")).await;
        callers.push(c);
    }
    // Five calls ring at bob, whose cap is 2: he can still call out twice.
    let mut dave = Client::login(&url, "dave").await;
    invite(&mut bob, "b1", "dave").await;
    invite(&mut bob, "b2", "dave").await;
    bob.error(json!({"type": "invite", "call_id": "b3", "callee_id": "dave"}), "too_many_calls").await;
    expect_invitation(&mut dave, "b1", "bob").await;
    expect_invitation(&mut dave, "b2", "bob").await;
    dave.expect_silence(QUIET).await;
}

#[tokio::test]
async fn an_accept_past_the_cap_is_too_many_calls_and_leaves_the_call_ringing() {
    let server = start_server(ServerConfig { max_calls_per_peer: 1, ..Default::default() }).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut carol = Client::login(&url, "carol").await;
    let mut bob = Client::login(&url, "bob").await;
    invite(&mut alice, "a1", "bob").await;
    invite(&mut carol, "c1", "bob").await;
    expect_invitation(&mut bob, "a1", "alice").await;
    expect_invitation(&mut bob, "c1", "carol").await;
    bob.ok(json!({"type": "accept", "call_id": "a1"})).await;
    alice.recv_until("accepted").await;
    // Bob takes part in one accepted call, his cap: the second accept is refused.
    bob.error(json!({"type": "accept", "call_id": "c1"}), "too_many_calls").await;
    carol.expect_silence(QUIET).await;
    // Still ringing: refusing it works, and carol hears so.
    bob.ok(json!({"type": "refuse", "call_id": "c1", "response": "busy"})).await;
    check_event(&carol.recv().await, json!({"type": "refused", "call_id": "c1", "response": "busy"}));
    // Once the first call ends, bob may accept again.
    invite(&mut carol, "c2", "bob").await;
    expect_invitation(&mut bob, "c2", "carol").await;
    bob.ok(json!({"type": "hangup", "call_id": "a1"})).await;
    alice.recv_until("hung_up").await;
    bob.ok(json!({"type": "accept", "call_id": "c2"})).await;
    carol.recv_until("accepted").await;
}

#[tokio::test]
async fn one_caller_rings_the_same_callee_at_most_three_times_at_once() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    for id in ["c1", "c2", "c3"] {
        invite(&mut alice, id, "bob").await;
        expect_invitation(&mut bob, id, "alice").await;
    }
    alice.error(json!({"type": "invite", "call_id": "c4", "callee_id": "bob"}), "too_many_calls").await;
    // The cap is per callee, and per caller.
    invite(&mut alice, "d1", "carol").await;
    expect_invitation(&mut carol, "d1", "alice").await;
    invite(&mut carol, "e1", "bob").await;
    expect_invitation(&mut bob, "e1", "carol").await;
    // A call that stops ringing (answered or ended) frees its place.
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    invite(&mut alice, "c4", "bob").await;
    expect_invitation(&mut bob, "c4", "alice").await;
    alice.error(json!({"type": "invite", "call_id": "c5", "callee_id": "bob"}), "too_many_calls").await;
    bob.ok(json!({"type": "refuse", "call_id": "c2"})).await;
    alice.recv_until("refused").await;
    invite(&mut alice, "c5", "bob").await;
    expect_invitation(&mut bob, "c5", "alice").await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn sessions_beyond_the_cap_get_too_many_sessions_and_stay_open() {
    let server = start_server(ServerConfig { max_sessions_per_peer: 2, ..Default::default() }).await;
    let url = server.url();
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (_bob2, _) = Client::login_device(&url, "bob", "b2").await;
    let mut bob3 = Client::connect(&url).await;
    bob3.error(json!({"type": "login", "peer_id": "bob", "device": "b3"}), "too_many_sessions").await;
    // Still open and not logged in; other peers are not affected.
    bob3.error(json!({"type": "query_presence", "peer_ids": ["bob"]}), "not_logged_in").await;
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    bob3.expect_silence(QUIET).await;
    // A slot that frees up can be taken by the same connection.
    bob1.close().await;
    let reply = bob3.ok(json!({"type": "login", "peer_id": "bob", "device": "b3"})).await;
    check(
        &reply,
        json!({"calls": [{"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}]}),
    );
}

#[tokio::test]
async fn the_default_is_16_sessions_per_peer() {
    assert_eq!(ServerConfig::default().max_sessions_per_peer, 16);
    let server = start_default().await;
    let url = server.url();
    let mut sessions = Vec::new();
    for i in 0..16 {
        sessions.push(Client::login_device(&url, "bob", &format!("d{i}")).await.0);
    }
    let mut extra = Client::connect(&url).await;
    extra.error(json!({"type": "login", "peer_id": "bob", "device": "d16"}), "too_many_sessions").await;
    let _carol = Client::login(&url, "carol").await;
}
