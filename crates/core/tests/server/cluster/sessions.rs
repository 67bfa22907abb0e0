//! Sessions across nodes: the login `calls` list sees calls placed and
//! answered on other nodes; an invitation is re-sent to each new session of
//! the callee, on whatever node it logs in; the offline grace, and the
//! events kept for a participant, handed over when it comes back on a
//! different node; and the grace's outcomes when it does not come back.

use super::{Cluster, ms};
use crate::server::client::*;
use serde_json::{Value, json};
use softphone_core::server::ServerConfig;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn grace(offline_grace: Duration) -> ServerConfig {
    ServerConfig { offline_grace, ..Default::default() }
}

fn failure(call_id: &str, reason: &str) -> Value {
    json!({"type": "failure", "call_id": call_id, "reason": reason})
}

/// The login's live calls, sorted by call_id.
fn sorted_calls(login: &Value) -> Vec<Value> {
    let mut calls =
        login["calls"].as_array().unwrap_or_else(|| panic!("login reply without calls: {login}")).clone();
    calls.sort_by_key(|c| c["call_id"].as_str().unwrap_or_default().to_string());
    calls
}

/// Waits for the presence event saying `peer` (to which `watcher` is
/// subscribed) went offline: from then on the cluster knows it has no session.
async fn await_offline(watcher: &mut Client, peer: &str) {
    check_event(&watcher.recv().await, json!({"type": "presence", "peer_id": peer, "online": false}));
}

#[tokio::test]
async fn login_lists_the_live_calls_made_on_other_nodes() {
    let cluster = Cluster::with_defaults(3).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    let mut carol = Client::login(&cluster.url(2), "carol").await;
    let mut dave = Client::login(&cluster.url(1), "dave").await;
    // c1: alice calls bob, ringing.
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // c2: carol calls alice, accepted.
    invite(&mut carol, "c2", "alice").await;
    expect_invitation(&mut alice, "c2", "carol").await;
    alice.ok(json!({"type": "accept", "call_id": "c2"})).await;
    carol.recv_until("accepted").await;
    // c3 refused, c4 canceled, c5 accepted then hung up: none is live.
    invite(&mut dave, "c3", "alice").await;
    expect_invitation(&mut alice, "c3", "dave").await;
    alice.ok(json!({"type": "refuse", "call_id": "c3"})).await;
    dave.recv_until("refused").await;
    invite(&mut alice, "c4", "dave").await;
    expect_invitation(&mut dave, "c4", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "c4"})).await;
    dave.recv_until("canceled").await;
    invite(&mut dave, "c5", "alice").await;
    expect_invitation(&mut alice, "c5", "dave").await;
    alice.ok(json!({"type": "accept", "call_id": "c5"})).await;
    dave.recv_until("accepted").await;
    dave.ok(json!({"type": "hangup", "call_id": "c5"})).await;
    alice.recv_until("hung_up").await;
    // A new session of each, on a node other than its first.
    let (_alice2, login) = Client::login_device(&cluster.url(2), "alice", "phone").await;
    let calls = sorted_calls(&login);
    assert_eq!(calls.len(), 2, "only c1 and c2 are live: {login}");
    check(&calls[0], json!({"call_id": "c1", "role": "caller", "state": "ringing", "peer_id": "bob"}));
    check(&calls[1], json!({"call_id": "c2", "role": "callee", "state": "accepted", "peer_id": "carol"}));
    let (_bob2, login) = Client::login_device(&cluster.url(0), "bob", "phone").await;
    let calls = sorted_calls(&login);
    assert_eq!(calls.len(), 1, "{login}");
    check(&calls[0], json!({"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}));
    let (_carol2, login) = Client::login_device(&cluster.url(1), "carol", "phone").await;
    let calls = sorted_calls(&login);
    assert_eq!(calls.len(), 1, "{login}");
    check(&calls[0], json!({"call_id": "c2", "role": "caller", "state": "accepted", "peer_id": "alice"}));
    let (_dave2, login) = Client::login_device(&cluster.url(0), "dave", "phone").await;
    assert_eq!(login["calls"], json!([]), "{login}");
}

#[tokio::test]
async fn the_invitation_is_re_sent_to_each_new_session_on_any_node() {
    let cluster = Cluster::with_defaults(3).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    alice
        .ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "content": "hey", "channel_id": "room-9"}))
        .await;
    let (mut bob1, login) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}),
    );
    let inv = expect_invitation(&mut bob1, "c1", "alice").await;
    check(&inv, json!({"content": "hey", "channel_id": "room-9"}));
    let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
    let (mut bob2, _) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    let inv = expect_invitation(&mut bob2, "c1", "alice").await;
    check(&inv, json!({"content": "hey", "channel_id": "room-9"}));
    let left2 = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
    assert!(left2 <= left, "the time left only shrinks, whichever node says it: {left2} after {left}");
    bob2.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    bob2.ok(json!({"type": "accept", "call_id": "c1", "response": "yo"})).await;
    check_event(
        &alice.recv().await,
        json!({"type": "accepted", "call_id": "c1", "response": "yo", "device": "b2"}),
    );
    check_event(
        &bob1.recv().await,
        json!({"type": "canceled", "call_id": "c1", "reason": "answered_elsewhere"}),
    );
    // Accepted is no longer ringing: a new session, on the caller's node, gets no invitation.
    let (mut bob3, login) = Client::login_device(&cluster.url(0), "bob", "b3").await;
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "callee", "state": "accepted", "peer_id": "alice"}),
    );
    bob3.expect_silence(QUIET).await;
    for c in [&mut alice, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn the_callers_kept_events_reach_its_session_on_another_node_in_order() {
    let cluster = Cluster::start(3, grace(LONG)).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    bob.ok(json!({"type": "subscribe_presence", "peer_ids": ["alice"]})).await;
    for id in ["c1", "c2", "c3"] {
        invite(&mut alice, id, "bob").await;
        expect_invitation(&mut bob, id, "alice").await;
        bob.send(json!({"type": "received", "call_id": id})).await;
        check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": id}));
    }
    alice.close().await;
    await_offline(&mut bob, "alice").await;
    bob.ok(json!({"type": "accept", "call_id": "c1", "response": "r1"})).await;
    bob.ok(json!({"type": "refuse", "call_id": "c2", "response": "r2"})).await;
    bob.ok(json!({"type": "accept", "call_id": "c3", "response": "r3"})).await;
    bob.ok(json!({"type": "hangup", "call_id": "c3"})).await;
    let (mut alice2, login) = Client::login_device(&cluster.url(2), "alice", "a2").await;
    check_event(&bob.recv().await, json!({"type": "presence", "peer_id": "alice", "online": true}));
    assert_eq!(login["calls"].as_array().map(Vec::len), Some(1), "{login}");
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "caller", "state": "accepted", "peer_id": "bob"}),
    );
    check_event(&alice2.recv().await, json!({"type": "accepted", "call_id": "c1", "response": "r1"}));
    check_event(&alice2.recv().await, json!({"type": "refused", "call_id": "c2", "response": "r2"}));
    check_event(&alice2.recv().await, json!({"type": "accepted", "call_id": "c3", "response": "r3"}));
    check_event(
        &alice2.recv().await,
        json!({"type": "hung_up", "call_id": "c3", "reason": "hangup", "by": "bob"}),
    );
    alice2.expect_silence(QUIET).await;
    // Handed over once: a further session, on yet another node, gets none again.
    let (mut alice3, _) = Client::login_device(&cluster.url(1), "alice", "a3").await;
    alice3.expect_silence(QUIET).await;
    // The call kept goes on: a hangup from the new session reaches bob.
    alice2.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(
        &bob.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "alice"}),
    );
}

#[tokio::test]
async fn the_callees_kept_events_and_invitations_reach_its_session_on_another_node() {
    let cluster = Cluster::start(3, grace(LONG)).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob"]})).await;
    for id in ["c1", "c2", "c3"] {
        invite(&mut alice, id, "bob").await;
        expect_invitation(&mut bob, id, "alice").await;
        bob.send(json!({"type": "received", "call_id": id})).await;
        check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": id}));
    }
    bob.ok(json!({"type": "accept", "call_id": "c3"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c3"}));
    bob.close().await;
    await_offline(&mut alice, "bob").await;
    alice.ok(json!({"type": "cancel", "call_id": "c1"})).await;
    alice.ok(json!({"type": "hangup", "call_id": "c3"})).await;
    let (mut bob2, login) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    assert_eq!(login["calls"].as_array().map(Vec::len), Some(1), "{login}");
    check(
        &login["calls"][0],
        json!({"call_id": "c2", "role": "callee", "state": "ringing", "peer_id": "alice"}),
    );
    // The kept events in order, and an invitation for c2 (still ringing) among them.
    let mut kept = Vec::new();
    let mut invitation = None;
    for _ in 0..3 {
        let m = bob2.recv().await;
        if ty(&m) == "invitation" {
            assert!(invitation.is_none(), "a second invitation: {m}");
            invitation = Some(m);
        } else {
            kept.push(m);
        }
    }
    let invitation = invitation.expect("an invitation for c2");
    check_event(&invitation, json!({"type": "invitation", "call_id": "c2", "caller_id": "alice"}));
    assert_eq!(kept.len(), 2, "{kept:?}");
    check_event(&kept[0], json!({"type": "canceled", "call_id": "c1", "reason": "caller_canceled"}));
    check_event(&kept[1], json!({"type": "hung_up", "call_id": "c3", "reason": "hangup", "by": "alice"}));
    bob2.expect_silence(QUIET).await;
    bob2.ok(json!({"type": "refuse", "call_id": "c2", "response": "later"})).await;
    check_event(&alice.recv_until("refused").await, json!({"call_id": "c2", "response": "later"}));
}

#[tokio::test]
async fn the_grace_ends_calls_whose_participant_left_a_node_for_good() {
    let cluster = Cluster::start(3, grace(ms(300))).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    let mut carol = Client::login(&cluster.url(2), "carol").await;
    let mut dave = Client::login(&cluster.url(1), "dave").await;
    let mut erin = Client::login(&cluster.url(2), "erin").await;
    // c1 ringing alice -> bob; c2 ringing carol -> alice; c3 accepted dave -> erin.
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    invite(&mut carol, "c2", "alice").await;
    expect_invitation(&mut alice, "c2", "carol").await;
    invite(&mut dave, "c3", "erin").await;
    expect_invitation(&mut erin, "c3", "dave").await;
    erin.ok(json!({"type": "accept", "call_id": "c3"})).await;
    check_event(&dave.recv().await, json!({"type": "accepted", "call_id": "c3"}));
    // The callee of c1 and the callee of c3 leave their nodes.
    bob.close().await;
    erin.close().await;
    check_event(&alice.recv().await, failure("c1", "peer_offline"));
    check_event(
        &dave.recv().await,
        json!({"type": "hung_up", "call_id": "c3", "reason": "peer_offline", "by": "erin"}),
    );
    // alice, the callee of c2, leaves too.
    alice.close().await;
    check_event(&carol.recv().await, failure("c2", "peer_offline"));
    // The caller lost: the callee gets caller_offline.
    invite(&mut dave, "c4", "carol").await;
    expect_invitation(&mut carol, "c4", "dave").await;
    dave.close().await;
    check_event(&carol.recv().await, failure("c4", "caller_offline"));
    carol.error(json!({"type": "accept", "call_id": "c4"}), "already_ended").await;
    carol.expect_silence(QUIET).await;
    // An ended call is not listed on any node.
    let (_, login) = Client::login_device(&cluster.url(0), "bob", "b2").await;
    assert_eq!(login["calls"], json!([]), "{login}");
}

#[tokio::test]
async fn a_callee_with_no_session_anywhere_fails_with_peer_offline() {
    let cluster = Cluster::start(2, grace(ms(300))).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    invite(&mut alice, "c1", "bob").await;
    check_event(&alice.recv().await, failure("c1", "peer_offline"));
    let (mut bob, login) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    bob.expect_silence(QUIET).await;
    alice.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    alice.expect_silence(QUIET).await;
}
