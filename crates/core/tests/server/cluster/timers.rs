//! The call timers across nodes (short, configured ones; the tests wait for
//! events, they do not measure): the invite ttl and the ack timeout fire
//! once for a call whose parties are on different nodes, whichever node
//! sweeps the deadline; the ack timer pauses while the callee has no
//! session and resumes on whatever node it comes back; and a refuse on one
//! node racing the expiry has one outcome on both sides.

use super::{Cluster, ms, race_pairs, unlimited_rate};
use crate::server::client::*;
use serde_json::{Value, json};
use softphone_core::server::ServerConfig;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn config(invite_ttl: Duration, ack_timeout: Duration, offline_grace: Duration) -> ServerConfig {
    ServerConfig { invite_ttl, ack_timeout, offline_grace, ..Default::default() }
}

fn failure(call_id: &str, reason: &str) -> Value {
    json!({"type": "failure", "call_id": call_id, "reason": reason})
}

#[tokio::test]
async fn the_invite_ttl_fails_every_session_on_every_node_once() {
    let cluster = Cluster::start(3, config(ms(500), LONG, LONG)).await;
    let (mut alice1, _) = Client::login_device(&cluster.url(0), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&cluster.url(2), "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    invite(&mut alice1, "c1", "bob").await;
    for bob in [&mut bob1, &mut bob2] {
        let inv = expect_invitation(bob, "c1", "alice").await;
        let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
        assert!(left <= 500, "expires_in_ms at most the ttl: {inv}");
    }
    for alice in [&mut alice1, &mut alice2] {
        check_event(&alice.recv().await, failure("c1", "expired"));
    }
    check_event(&bob1.recv().await, failure("c1", "expired"));
    check_event(&bob2.recv().await, failure("c1", "expired"));
    // Fired once: no node sends it again, and the call stays ended.
    for c in [&mut alice1, &mut alice2, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
    bob1.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    alice2.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    alice2.error(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}), "duplicate_call_id").await;
}

#[tokio::test]
async fn the_ack_timeout_fails_both_sides_across_nodes() {
    let cluster = Cluster::start(2, config(LONG, ms(400), LONG)).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    check_event(&alice.recv().await, failure("c1", "peer_no_response"));
    check_event(&bob.recv().await, failure("c1", "expired"));
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    // `received` stops it: a second call, acknowledged, outlives the timeout.
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob, "c2", "alice").await;
    bob.send(json!({"type": "received", "call_id": "c2"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c2"}));
    alice.expect_silence(ms(1000)).await;
    bob.ok(json!({"type": "accept", "call_id": "c2"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c2"}));
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn the_ack_timer_pauses_while_the_callee_is_away_and_resumes_on_its_new_node() {
    let cluster = Cluster::start(3, config(LONG, ms(600), LONG)).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut carol = Client::login(&cluster.url(0), "carol").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    carol.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob"]})).await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // Bob leaves without acknowledging: the ack timer stops with time left.
    bob.close().await;
    check_event(&carol.recv().await, json!({"type": "presence", "peer_id": "bob", "online": false}));
    // Well past the ack timeout, but bob has no session: nothing happens.
    alice.expect_silence(ms(1200)).await;
    let mut bob = Client::login(&cluster.url(2), "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // The timer runs again (with what was left of it).
    check_event(&alice.recv().await, failure("c1", "peer_no_response"));
    check_event(&bob.recv().await, failure("c1", "expired"));
}

/// `rounds` refuse-vs-expiry races between caller{pair} on one node and
/// callee{pair} on another; returns (refuse won, expiry won).
async fn refuse_against_expiry(urls: Vec<String>, pair: usize, rounds: usize) -> (usize, usize) {
    let caller_id = format!("caller{pair}");
    let callee_id = format!("callee{pair}");
    let mut caller = Client::login(&urls[pair % urls.len()], &caller_id).await;
    let mut callee = Client::login(&urls[(pair + 1) % urls.len()], &callee_id).await;
    let (mut refused, mut expired) = (0, 0);
    for i in 0..rounds {
        let id = format!("re-{pair}-{i}");
        invite(&mut caller, &id, &callee_id).await;
        let inv = expect_invitation(&mut callee, &id, &caller_id).await;
        // Answer around the moment the call expires: up to 10 ms before or after.
        let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
        let jitter = ((i * 7919 + pair * 31) % 21) as i64 - 10;
        tokio::time::sleep(Duration::from_millis((left as i64 + jitter).max(0) as u64)).await;
        let reply = callee.request(json!({"type": "refuse", "call_id": id, "response": "busy"})).await;
        if ty(&reply) == "ok" {
            check_event(&caller.recv().await, json!({"type": "refused", "call_id": id, "response": "busy"}));
            refused += 1;
        } else {
            check_error(&reply, "already_ended");
            check_event(&callee.recv().await, failure(&id, "expired"));
            check_event(&caller.recv().await, failure(&id, "expired"));
            expired += 1;
        }
    }
    caller.expect_silence(QUIET).await;
    callee.expect_silence(QUIET).await;
    (refused, expired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refuse_on_one_node_racing_the_expiry_has_one_outcome() {
    const PAIRS: usize = 8;
    const ROUNDS: usize = 125; // 1000 races in all
    let config = unlimited_rate(ServerConfig { invite_ttl: ms(60), ..Default::default() });
    let cluster = Cluster::start(3, config).await;
    let urls: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let (refused, expired) =
        race_pairs(&urls, PAIRS, |urls, pair| refuse_against_expiry(urls, pair, ROUNDS)).await;
    assert_eq!(refused + expired, PAIRS * ROUNDS);
    eprintln!("across nodes, refuse against expiry: refuse won {refused}, expiry won {expired}");
}
