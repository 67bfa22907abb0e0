//! A node killed with SIGKILL (its machine gone): once its heartbeat lapses
//! the surviving nodes treat its sessions as disconnected at that moment, so
//! the other parties get what a disconnect gives them, after the offline
//! grace: `failure` `caller_offline` or `peer_offline` for a ringing call,
//! `hung_up` `peer_offline` for an accepted one. A participant that
//! reconnects to another node within the grace keeps its calls.
//!
//! The nodes are real `softphone server --redis` processes with a short
//! heartbeat and grace, so the waits (all bounded by [`WAIT`]) stay short.

use super::NodeProcess;
use crate::redis_server::RedisServer;
use crate::server::client::*;
use serde_json::{Value, json};
use std::time::Duration;

/// The heartbeat ttl and offline grace every node here runs with.
const FLAGS: &[&str] = &["--heartbeat-ttl", "1s", "--offline-grace", "2s"];

fn failure(call_id: &str, reason: &str) -> Value {
    json!({"type": "failure", "call_id": call_id, "reason": reason})
}

fn presence(peer: &str, online: bool) -> Value {
    json!({"type": "presence", "peer_id": peer, "online": online})
}

/// Waits until `watcher` has heard that each of `peers` went offline, in any order.
async fn await_all_offline(watcher: &mut Client, peers: &[&str]) {
    let mut left: Vec<&str> = peers.to_vec();
    while !left.is_empty() {
        let m = watcher.recv().await;
        check_event(&m, json!({"type": "presence", "online": false}));
        let peer = m["peer_id"].as_str().unwrap_or_default();
        let i = left.iter().position(|p| *p == peer).unwrap_or_else(|| panic!("unexpected {m}"));
        left.remove(i);
    }
}

/// `caller` invites `callee` to `id`; the callee acknowledges it.
async fn ringing(caller: &mut Client, callee: &mut Client, id: &str, caller_id: &str, callee_id: &str) {
    invite(caller, id, callee_id).await;
    expect_invitation(callee, id, caller_id).await;
    callee.send(json!({"type": "received", "call_id": id})).await;
    check_event(&caller.recv().await, json!({"type": "received_by_peer", "call_id": id}));
}

/// `caller` invites `callee` to `id` and the callee accepts.
async fn accepted(caller: &mut Client, callee: &mut Client, id: &str, caller_id: &str, callee_id: &str) {
    invite(caller, id, callee_id).await;
    expect_invitation(callee, id, caller_id).await;
    callee.ok(json!({"type": "accept", "call_id": id})).await;
    check_event(&caller.recv().await, json!({"type": "accepted", "call_id": id}));
}

#[tokio::test]
async fn a_node_killed_mid_ring_fails_its_calls_on_the_other_nodes() {
    let redis = RedisServer::start().await;
    let mut lost = NodeProcess::start(&redis, "lost", FLAGS).await;
    let survivor = NodeProcess::start(&redis, "survivor", FLAGS).await;
    let mut alice = Client::login(&lost.url(), "alice").await;
    let mut dave = Client::login(&lost.url(), "dave").await;
    let mut bob = Client::login(&survivor.url(), "bob").await;
    let mut carol = Client::login(&survivor.url(), "carol").await;
    let mut erin = Client::login(&survivor.url(), "erin").await;
    erin.ok(json!({"type": "subscribe_presence", "peer_ids": ["alice", "dave"]})).await;
    // c1: the caller is on the lost node; c2: the callee is.
    ringing(&mut alice, &mut bob, "c1", "alice", "bob").await;
    ringing(&mut carol, &mut dave, "c2", "carol", "dave").await;
    lost.kill9().await;
    // Its peers go offline when its heartbeat lapses, then the grace runs.
    await_all_offline(&mut erin, &["alice", "dave"]).await;
    check_event(&bob.recv().await, failure("c1", "caller_offline"));
    check_event(&carol.recv().await, failure("c2", "peer_offline"));
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    carol.error(json!({"type": "cancel", "call_id": "c2"}), "already_ended").await;
    // Coming back after the grace, on the survivor: nothing is left.
    let (mut alice2, login) = Client::login_device(&survivor.url(), "alice", "a2").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    check_event(&erin.recv().await, presence("alice", true));
    alice2.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    for c in [&mut alice2, &mut bob, &mut carol, &mut erin] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn a_node_killed_mid_call_hangs_up_its_calls_with_peer_offline() {
    let redis = RedisServer::start().await;
    let mut lost = NodeProcess::start(&redis, "lost", FLAGS).await;
    let survivor = NodeProcess::start(&redis, "survivor", FLAGS).await;
    let mut bob = Client::login(&lost.url(), "bob").await;
    let mut carol = Client::login(&lost.url(), "carol").await;
    let mut alice = Client::login(&survivor.url(), "alice").await;
    let mut dave = Client::login(&survivor.url(), "dave").await;
    // c1: the callee is on the lost node; c2: the caller is.
    accepted(&mut alice, &mut bob, "c1", "alice", "bob").await;
    accepted(&mut carol, &mut dave, "c2", "carol", "dave").await;
    lost.kill9().await;
    check_event(
        &alice.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "peer_offline", "by": "bob"}),
    );
    check_event(
        &dave.recv().await,
        json!({"type": "hung_up", "call_id": "c2", "reason": "peer_offline", "by": "carol"}),
    );
    alice.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    dave.error(json!({"type": "hangup", "call_id": "c2"}), "already_ended").await;
    // Their places are free again: the survivors can call each other.
    accepted(&mut alice, &mut dave, "c3", "alice", "dave").await;
    let (_, login) = Client::login_device(&survivor.url(), "bob", "b2").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    alice.expect_silence(QUIET).await;
    dave.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_peer_reconnecting_to_another_node_within_the_grace_keeps_its_calls() {
    let redis = RedisServer::start().await;
    // A longer grace: the reconnect must land within it on a loaded machine.
    let flags = ["--heartbeat-ttl", "1s", "--offline-grace", "4s"];
    let mut lost = NodeProcess::start(&redis, "lost", &flags).await;
    let node_b = NodeProcess::start(&redis, "b", &flags).await;
    let node_c = NodeProcess::start(&redis, "c", &flags).await;
    let mut alice = Client::login(&lost.url(), "alice").await;
    let mut bob = Client::login(&node_b.url(), "bob").await;
    bob.ok(json!({"type": "subscribe_presence", "peer_ids": ["alice"]})).await;
    // c1 accepted (alice calls), c2 and c3 ringing at alice (bob calls).
    accepted(&mut alice, &mut bob, "c1", "alice", "bob").await;
    ringing(&mut bob, &mut alice, "c2", "bob", "alice").await;
    ringing(&mut bob, &mut alice, "c3", "bob", "alice").await;
    lost.kill9().await;
    check_event(&bob.recv().await, presence("alice", false));
    // While alice is away, bob cancels c3: the event is kept for her.
    bob.ok(json!({"type": "cancel", "call_id": "c3"})).await;
    let (mut alice2, login) = Client::login_device(&node_c.url(), "alice", "a2").await;
    check_event(&bob.recv().await, presence("alice", true));
    let mut calls = login["calls"].as_array().unwrap_or_else(|| panic!("calls: {login}")).clone();
    calls.sort_by_key(|c| c["call_id"].as_str().unwrap_or_default().to_owned());
    assert_eq!(calls.len(), 2, "c1 and c2 are live: {login}");
    check(&calls[0], json!({"call_id": "c1", "role": "caller", "state": "accepted", "peer_id": "bob"}));
    check(&calls[1], json!({"call_id": "c2", "role": "callee", "state": "ringing", "peer_id": "bob"}));
    // The kept cancel and the invitation still ringing, in either order.
    let mut got = [alice2.recv().await, alice2.recv().await];
    got.sort_by_key(|m| ty(m).to_owned());
    check_event(&got[0], json!({"type": "canceled", "call_id": "c3", "reason": "caller_canceled"}));
    check_event(&got[1], json!({"type": "invitation", "call_id": "c2", "caller_id": "bob"}));
    // Past the heartbeat ttl and the grace (and a second more): nothing ends.
    bob.expect_silence(Duration::from_secs(1 + 4 + 1)).await;
    alice2.expect_silence(QUIET).await;
    // Both calls go on from the new node.
    alice2.ok(json!({"type": "accept", "call_id": "c2"})).await;
    check_event(&bob.recv().await, json!({"type": "accepted", "call_id": "c2"}));
    alice2.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(
        &bob.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "alice"}),
    );
    bob.ok(json!({"type": "hangup", "call_id": "c2"})).await;
    check_event(
        &alice2.recv().await,
        json!({"type": "hung_up", "call_id": "c2", "reason": "hangup", "by": "bob"}),
    );
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_peer_with_a_session_on_a_surviving_node_loses_nothing() {
    let redis = RedisServer::start().await;
    let mut lost = NodeProcess::start(&redis, "lost", FLAGS).await;
    let survivor = NodeProcess::start(&redis, "survivor", FLAGS).await;
    let (mut bob1, _) = Client::login_device(&lost.url(), "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&survivor.url(), "bob", "b2").await;
    let mut alice = Client::login(&survivor.url(), "alice").await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob"]})).await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    bob1.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    lost.kill9().await;
    // Bob still has a session: he stays online and the call keeps ringing,
    // past the heartbeat ttl and the grace (and a second more).
    alice.expect_silence(Duration::from_secs(1 + 2 + 1)).await;
    bob2.expect_silence(QUIET).await;
    let reply = alice.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
    assert_eq!(reply["online"], json!({"bob": true}), "{reply}");
    bob2.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c1", "device": "b2"}));
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(
        &bob2.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "alice"}),
    );
}

#[tokio::test]
async fn the_deadlines_of_a_call_placed_on_a_lost_node_still_fire() {
    let redis = RedisServer::start().await;
    let flags = [FLAGS, &["--invite-ttl", "4s"]].concat();
    let mut lost = NodeProcess::start(&redis, "lost", &flags).await;
    let survivor = NodeProcess::start(&redis, "survivor", &flags).await;
    let (mut alice1, _) = Client::login_device(&lost.url(), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&survivor.url(), "alice", "a2").await;
    let mut bob = Client::login(&survivor.url(), "bob").await;
    invite(&mut alice1, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice2.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    lost.kill9().await;
    // Alice is still online (a2): the call rings on until its ttl, swept
    // by the survivor, and ends the same on both sides.
    check_event(&alice2.recv().await, failure("c1", "expired"));
    check_event(&bob.recv().await, failure("c1", "expired"));
    alice2.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_node_stopped_with_sigterm_closes_with_1001_and_its_peers_move_on() {
    let redis = RedisServer::start().await;
    let flags = ["--heartbeat-ttl", "1s", "--offline-grace", "4s"];
    let mut stopping = NodeProcess::start(&redis, "stopping", &flags).await;
    let other = NodeProcess::start(&redis, "other", &flags).await;
    let mut alice = Client::login(&stopping.url(), "alice").await;
    let mut bob = Client::login(&other.url(), "bob").await;
    bob.ok(json!({"type": "subscribe_presence", "peer_ids": ["alice"]})).await;
    accepted(&mut alice, &mut bob, "c1", "alice", "bob").await;
    let exit = stopping.terminate();
    assert_eq!(alice.expect_close().await, Some(1001), "close code after SIGTERM");
    let status = exit.await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    check_event(&bob.recv().await, presence("alice", false));
    // Back on the other node within the grace: the call goes on.
    let (mut alice2, login) = Client::login_device(&other.url(), "alice", "a2").await;
    check_event(&bob.recv().await, presence("alice", true));
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "caller", "state": "accepted", "peer_id": "bob"}),
    );
    bob.expect_silence(Duration::from_secs(1 + 4 + 1)).await;
    bob.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(
        &alice2.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "bob"}),
    );
}

#[tokio::test]
async fn a_node_restarted_under_its_name_drops_its_former_sessions_at_once() {
    let redis = RedisServer::start().await;
    // A heartbeat ttl longer than any wait here: only the restart can tell
    // the others that the former sessions are gone.
    let flags = ["--heartbeat-ttl", "60s", "--offline-grace", "2s"];
    let mut first = NodeProcess::start(&redis, "n1", &flags).await;
    let other = NodeProcess::start(&redis, "n2", &flags).await;
    let mut alice = Client::login(&first.url(), "alice").await;
    let mut bob = Client::login(&other.url(), "bob").await;
    bob.ok(json!({"type": "subscribe_presence", "peer_ids": ["alice", "carol"]})).await;
    ringing(&mut alice, &mut bob, "c1", "alice", "bob").await;
    first.kill9().await;
    let again = NodeProcess::start(&redis, "n1", &flags).await;
    check_event(&bob.recv().await, presence("alice", false));
    check_event(&bob.recv().await, failure("c1", "caller_offline"));
    // The restarted node serves: its new sessions log in and hear events.
    let (mut carol, login) = Client::login_device(&again.url(), "carol", "c").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    check_event(&bob.recv().await, presence("carol", true));
    invite(&mut bob, "c2", "carol").await;
    expect_invitation(&mut carol, "c2", "bob").await;
    carol.ok(json!({"type": "accept", "call_id": "c2"})).await;
    check_event(&bob.recv().await, json!({"type": "accepted", "call_id": "c2", "device": "c"}));
    let (_, login) = Client::login_device(&again.url(), "alice", "a2").await;
    assert_eq!(login["calls"], json!([]), "{login}");
}
