//! What is counted server-wide is counted cluster-wide: call ids live and
//! remembered (`duplicate_call_id`), the live calls of a peer whose sessions
//! are on several nodes (`too_many_calls`, with the cap of 3 calls ringing
//! at one callee), and the sessions of a peer (`too_many_sessions`).

use super::{Cluster, unlimited_rate};
use crate::server::client::*;
use serde_json::json;
use softphone_core::server::ServerConfig;

#[tokio::test]
async fn duplicate_call_id_is_cluster_wide_live_and_remembered() {
    let cluster = Cluster::with_defaults(3).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    let mut carol = Client::login(&cluster.url(2), "carol").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // Live: from anyone, on any node, to anyone.
    carol.error(json!({"type": "invite", "call_id": "c1", "callee_id": "dave"}), "duplicate_call_id").await;
    bob.error(json!({"type": "invite", "call_id": "c1", "callee_id": "alice"}), "duplicate_call_id").await;
    alice.error(json!({"type": "invite", "call_id": "c1", "callee_id": "carol"}), "duplicate_call_id").await;
    bob.expect_silence(QUIET).await;
    // Still ringing, once: accept works.
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    carol.error(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}), "duplicate_call_id").await;
    // Remembered after it ended: hung up, canceled, refused.
    bob.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    alice.recv_until("hung_up").await;
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob, "c2", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "c2"})).await;
    bob.recv_until("canceled").await;
    invite(&mut alice, "c3", "bob").await;
    expect_invitation(&mut bob, "c3", "alice").await;
    bob.ok(json!({"type": "refuse", "call_id": "c3"})).await;
    alice.recv_until("refused").await;
    // A session that logs in later, on any node, meets the same memory.
    let mut dave = Client::login(&cluster.url(1), "dave").await;
    for id in ["c1", "c2", "c3"] {
        carol.error(json!({"type": "invite", "call_id": id, "callee_id": "bob"}), "duplicate_call_id").await;
        dave.error(json!({"type": "invite", "call_id": id, "callee_id": "carol"}), "duplicate_call_id").await;
        alice.error(json!({"type": "invite", "call_id": id, "callee_id": "bob"}), "duplicate_call_id").await;
    }
    // And a late action on a remembered call, from another node: already_ended.
    let (mut alice2, _) = Client::login_device(&cluster.url(2), "alice", "a2").await;
    alice2.error(json!({"type": "cancel", "call_id": "c2"}), "already_ended").await;
    alice2.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn the_same_call_id_invited_on_two_nodes_at_once_is_created_once() {
    let cluster = Cluster::start(2, unlimited_rate(ServerConfig::default())).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut carol = Client::login(&cluster.url(1), "carol").await;
    let _bob = Client::login(&cluster.url(1), "bob").await;
    for i in 0..200 {
        let id = format!("dup-{i}");
        let (ra, rc) = (alice.fresh_req(), carol.fresh_req());
        tokio::join!(
            alice.send(json!({"type": "invite", "req": ra, "call_id": id, "callee_id": "bob"})),
            carol.send(json!({"type": "invite", "req": rc, "call_id": id, "callee_id": "bob"})),
        );
        let (a, c) = (alice.reply(ra).await, carol.reply(rc).await);
        let (winner, loser) = match (ty(&a), ty(&c)) {
            ("ok", "error") => (&mut alice, c),
            ("error", "ok") => (&mut carol, a),
            _ => panic!("call {id}: alice got {a}, carol got {c}: not one call"),
        };
        check_error(&loser, "duplicate_call_id");
        // Cancel it again, or the caps would stop the loop.
        winner.ok(json!({"type": "cancel", "call_id": id})).await;
    }
}

#[tokio::test]
async fn too_many_calls_counts_the_calls_of_every_session_on_every_node() {
    let config = unlimited_rate(ServerConfig { max_calls_per_peer: 2, ..Default::default() });
    let cluster = Cluster::start(3, config).await;
    let (mut alice1, _) = Client::login_device(&cluster.url(0), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&cluster.url(1), "alice", "a2").await;
    let mut bob = Client::login(&cluster.url(2), "bob").await;
    let mut carol = Client::login(&cluster.url(2), "carol").await;
    invite(&mut alice1, "a1", "bob").await;
    invite(&mut alice2, "a2", "carol").await;
    // Two live calls placed, from two nodes: a third is refused from either.
    alice1.error(json!({"type": "invite", "call_id": "a3", "callee_id": "carol"}), "too_many_calls").await;
    alice2.error(json!({"type": "invite", "call_id": "a3", "callee_id": "bob"}), "too_many_calls").await;
    expect_invitation(&mut bob, "a1", "alice").await;
    expect_invitation(&mut carol, "a2", "alice").await;
    // The refused invites created nothing.
    bob.expect_silence(QUIET).await;
    carol.expect_silence(QUIET).await;
    // A call that ends frees its place, for a session on the other node.
    alice1.ok(json!({"type": "cancel", "call_id": "a1"})).await;
    bob.recv_until("canceled").await;
    invite(&mut alice2, "a3", "bob").await;
    expect_invitation(&mut bob, "a3", "alice").await;
}

#[tokio::test]
async fn an_accept_past_the_cap_counts_calls_accepted_on_other_nodes() {
    let cluster = Cluster::start(3, ServerConfig { max_calls_per_peer: 1, ..Default::default() }).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut carol = Client::login(&cluster.url(1), "carol").await;
    let (mut bob1, _) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    invite(&mut alice, "a1", "bob").await;
    invite(&mut carol, "c1", "bob").await;
    for bob in [&mut bob1, &mut bob2] {
        expect_invitation(bob, "a1", "alice").await;
        expect_invitation(bob, "c1", "carol").await;
    }
    bob1.ok(json!({"type": "accept", "call_id": "a1"})).await;
    alice.recv_until("accepted").await;
    bob2.recv_until("canceled").await;
    // Bob takes part in one accepted call (his cap), accepted on another node.
    bob2.error(json!({"type": "accept", "call_id": "c1"}), "too_many_calls").await;
    carol.expect_silence(QUIET).await;
    // Still ringing: refusing it works.
    bob2.ok(json!({"type": "refuse", "call_id": "c1", "response": "busy"})).await;
    check_event(&carol.recv().await, json!({"type": "refused", "call_id": "c1", "response": "busy"}));
    check_event(
        &bob1.recv().await,
        json!({"type": "canceled", "call_id": "c1", "reason": "refused_elsewhere"}),
    );
}

#[tokio::test]
async fn one_caller_rings_one_callee_at_most_three_times_from_any_node() {
    let cluster = Cluster::with_defaults(3).await;
    let (mut alice1, _) = Client::login_device(&cluster.url(0), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&cluster.url(1), "alice", "a2").await;
    let mut bob = Client::login(&cluster.url(2), "bob").await;
    invite(&mut alice1, "c1", "bob").await;
    invite(&mut alice2, "c2", "bob").await;
    invite(&mut alice1, "c3", "bob").await;
    for id in ["c1", "c2", "c3"] {
        expect_invitation(&mut bob, id, "alice").await;
    }
    alice2.error(json!({"type": "invite", "call_id": "c4", "callee_id": "bob"}), "too_many_calls").await;
    alice1.error(json!({"type": "invite", "call_id": "c4", "callee_id": "bob"}), "too_many_calls").await;
    // A call that stops ringing frees its place.
    bob.ok(json!({"type": "refuse", "call_id": "c2"})).await;
    alice1.recv_until("refused").await;
    invite(&mut alice2, "c4", "bob").await;
    expect_invitation(&mut bob, "c4", "alice").await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn too_many_sessions_counts_the_sessions_on_every_node() {
    let cluster = Cluster::start(3, ServerConfig { max_sessions_per_peer: 2, ..Default::default() }).await;
    let (mut bob1, _) = Client::login_device(&cluster.url(0), "bob", "b1").await;
    let (_bob2, _) = Client::login_device(&cluster.url(1), "bob", "b2").await;
    let mut bob3 = Client::connect(&cluster.url(2)).await;
    bob3.error(json!({"type": "login", "peer_id": "bob", "device": "b3"}), "too_many_sessions").await;
    // Still open and not logged in; other peers are not affected.
    bob3.error(json!({"type": "query_presence", "peer_ids": ["bob"]}), "not_logged_in").await;
    let mut bob4 = Client::connect(&cluster.url(0)).await;
    bob4.error(json!({"type": "login", "peer_id": "bob", "device": "b4"}), "too_many_sessions").await;
    let mut alice = Client::login(&cluster.url(2), "alice").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    bob3.expect_silence(QUIET).await;
    // A slot that frees up on one node can be taken on another.
    bob1.ok(json!({"type": "logout"})).await;
    bob1.expect_close().await;
    let reply = bob3.ok(json!({"type": "login", "peer_id": "bob", "device": "b3"})).await;
    check(
        &reply,
        json!({"calls": [{"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}]}),
    );
    bob4.error(json!({"type": "login", "peer_id": "bob", "device": "b4"}), "too_many_sessions").await;
}
