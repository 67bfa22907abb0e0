//! The invitation lifecycle with the caller and the callee on different
//! nodes: invite, received_by_peer, accept, refuse, cancel, hangup and their
//! errors; several devices spread over nodes (first answer wins, the others
//! get `canceled`); `received_by_peer` once per call on each caller session;
//! a node that reaches Redis over its Unix socket.

use super::Cluster;
use crate::redis_server::RedisServer;
use crate::server::client::*;
use serde_json::json;
use softphone_core::server::{ClusterConfig, ServerConfig};

#[tokio::test]
async fn invite_received_accept_hangup_across_nodes() {
    let cluster = Cluster::with_defaults(2).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let (mut bob, _) = Client::login_device(&cluster.url(1), "bob", "phone").await;
    let reply = alice
        .request(json!({"type": "invite", "req": 2, "call_id": "c1", "callee_id": "bob", "content": "hello", "channel_id": "room-1"}))
        .await;
    check(&reply, json!({"type": "ok", "req": 2}));
    let inv = bob.recv().await;
    check_event(
        &inv,
        json!({"type": "invitation", "call_id": "c1", "caller_id": "alice", "content": "hello", "channel_id": "room-1"}),
    );
    let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms is a number: {inv}"));
    assert!(left > 0 && left <= 60_000, "expires_in_ms within the default ttl: {inv}");
    alice.expect_silence(QUIET).await;
    bob.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    bob.expect_silence(QUIET).await;
    let reply = bob.request(json!({"type": "accept", "req": 7, "call_id": "c1", "response": "hi"})).await;
    check(&reply, json!({"type": "ok", "req": 7}));
    check_event(
        &alice.recv().await,
        json!({"type": "accepted", "call_id": "c1", "response": "hi", "device": "phone"}),
    );
    // Accepted: cancel is already_accepted, a second answer already_ended.
    alice.error(json!({"type": "cancel", "call_id": "c1"}), "already_accepted").await;
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    bob.error(json!({"type": "refuse", "call_id": "c1"}), "already_ended").await;
    let reply = bob.request(json!({"type": "hangup", "req": 9, "call_id": "c1"})).await;
    check(&reply, json!({"type": "ok", "req": 9}));
    check_event(
        &alice.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "bob"}),
    );
    alice.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    bob.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn refuse_and_cancel_across_nodes() {
    let cluster = Cluster::with_defaults(3).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    let mut carol = Client::login(&cluster.url(2), "carol").await;
    // Refused.
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    let reply = bob.request(json!({"type": "refuse", "req": 8, "call_id": "c1", "response": "busy"})).await;
    check(&reply, json!({"type": "ok", "req": 8}));
    check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c1", "response": "busy"}));
    alice.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    // Canceled, before and after the callee acknowledged.
    for (id, ack) in [("c2", false), ("c3", true)] {
        invite(&mut alice, id, "bob").await;
        expect_invitation(&mut bob, id, "alice").await;
        if ack {
            bob.send(json!({"type": "received", "call_id": id})).await;
            check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": id}));
        }
        let reply = alice.request(json!({"type": "cancel", "req": 3, "call_id": id})).await;
        check(&reply, json!({"type": "ok", "req": 3}));
        check_event(
            &bob.recv().await,
            json!({"type": "canceled", "call_id": id, "reason": "caller_canceled"}),
        );
        alice.error(json!({"type": "cancel", "call_id": id}), "already_ended").await;
        bob.error(json!({"type": "refuse", "call_id": id}), "already_ended").await;
    }
    // A third party on a third node: not its call, in any role.
    invite(&mut alice, "c4", "bob").await;
    expect_invitation(&mut bob, "c4", "alice").await;
    for t in ["cancel", "accept", "refuse", "hangup"] {
        carol.error(json!({"type": t, "call_id": "c4"}), "not_found").await;
    }
    // Nor is a ringing call the callee's to cancel, or the caller's to answer.
    bob.error(json!({"type": "cancel", "call_id": "c4"}), "not_found").await;
    alice.error(json!({"type": "accept", "call_id": "c4"}), "not_found").await;
    alice.error(json!({"type": "hangup", "call_id": "c4"}), "not_found").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn first_answer_wins_among_devices_on_different_nodes() {
    let cluster = Cluster::with_defaults(3).await;
    let (mut alice1, _) = Client::login_device(&cluster.url(0), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&cluster.url(2), "alice", "a2").await;
    let (mut phone, _) = Client::login_device(&cluster.url(1), "bob", "phone").await;
    let (mut laptop, _) = Client::login_device(&cluster.url(2), "bob", "laptop").await;
    // Accepted on the phone: the laptop, on another node, is answered_elsewhere.
    invite(&mut alice1, "c1", "bob").await;
    expect_invitation(&mut phone, "c1", "alice").await;
    expect_invitation(&mut laptop, "c1", "alice").await;
    phone.ok(json!({"type": "accept", "call_id": "c1", "response": "here"})).await;
    for alice in [&mut alice1, &mut alice2] {
        check_event(
            &alice.recv().await,
            json!({"type": "accepted", "call_id": "c1", "response": "here", "device": "phone"}),
        );
    }
    check_event(
        &laptop.recv().await,
        json!({"type": "canceled", "call_id": "c1", "reason": "answered_elsewhere"}),
    );
    laptop.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    laptop.error(json!({"type": "refuse", "call_id": "c1"}), "already_ended").await;
    // Refused on the laptop: the phone is refused_elsewhere.
    invite(&mut alice2, "c2", "bob").await;
    expect_invitation(&mut phone, "c2", "alice").await;
    expect_invitation(&mut laptop, "c2", "alice").await;
    laptop.ok(json!({"type": "refuse", "call_id": "c2", "response": "busy"})).await;
    for alice in [&mut alice1, &mut alice2] {
        check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c2", "response": "busy"}));
    }
    check_event(
        &phone.recv().await,
        json!({"type": "canceled", "call_id": "c2", "reason": "refused_elsewhere"}),
    );
    phone.error(json!({"type": "accept", "call_id": "c2"}), "already_ended").await;
    // Hung up from the laptop (which did not answer c1): every other session hears it.
    laptop.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    let hung_up = json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "bob"});
    for c in [&mut alice1, &mut alice2, &mut phone] {
        check_event(&c.recv().await, hung_up.clone());
    }
    for c in [&mut alice1, &mut alice2, &mut phone, &mut laptop] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn cancel_from_another_caller_session_reaches_every_callee_session() {
    let cluster = Cluster::with_defaults(3).await;
    let (mut alice1, _) = Client::login_device(&cluster.url(0), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&cluster.url(1), "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    invite(&mut alice1, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    alice2.ok(json!({"type": "cancel", "call_id": "c1"})).await;
    for bob in [&mut bob1, &mut bob2] {
        check_event(
            &bob.recv().await,
            json!({"type": "canceled", "call_id": "c1", "reason": "caller_canceled"}),
        );
    }
    alice1.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    for c in [&mut alice1, &mut alice2, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn received_by_peer_once_per_call_on_each_caller_session_across_nodes() {
    let cluster = Cluster::with_defaults(3).await;
    let (mut alice1, _) = Client::login_device(&cluster.url(0), "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&cluster.url(1), "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    invite(&mut alice1, "c1", "bob").await;
    invite(&mut alice2, "c2", "bob").await;
    for bob in [&mut bob1, &mut bob2] {
        expect_invitation(bob, "c1", "alice").await;
        expect_invitation(bob, "c2", "alice").await;
    }
    // Both devices, on two nodes, acknowledge twice each, at once.
    for _ in 0..2 {
        tokio::join!(
            bob1.send(json!({"type": "received", "call_id": "c1"})),
            bob2.send(json!({"type": "received", "call_id": "c1"})),
        );
    }
    for alice in [&mut alice1, &mut alice2] {
        check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    }
    bob2.send(json!({"type": "received", "call_id": "c2"})).await;
    bob1.send(json!({"type": "received", "call_id": "c2"})).await;
    for alice in [&mut alice1, &mut alice2] {
        check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c2"}));
    }
    for c in [&mut alice1, &mut alice2, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

/// A node beside its Redis may reach it over a Unix socket
/// (`--redis unix:///path/redis.sock`): such a node and one on TCP are one
/// cluster, and a call between them goes through.
#[tokio::test]
async fn a_node_on_the_unix_socket_and_one_on_tcp_share_one_cluster() {
    let redis = RedisServer::start().await;
    let node = |id: &str, url: String| {
        let cluster = ClusterConfig { node_id: id.to_owned(), ..ClusterConfig::new(url) };
        softphone_core::server::spawn(ServerConfig { cluster: Some(cluster), ..ServerConfig::default() })
    };
    let on_tcp = node("tcp", redis.url()).await.expect("a node on TCP starts");
    let on_unix = node("unix", redis.unix_url()).await.expect("a node on the Unix socket starts");
    let mut alice = Client::login(&on_tcp.url(), "alice").await;
    let mut bob = Client::login(&on_unix.url(), "bob").await;
    invite(&mut alice, "u1", "bob").await;
    expect_invitation(&mut bob, "u1", "alice").await;
    bob.send(json!({"type": "received", "call_id": "u1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "u1"}));
    bob.ok(json!({"type": "accept", "call_id": "u1", "response": "hi"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "u1", "response": "hi"}));
    alice.ok(json!({"type": "hangup", "call_id": "u1"})).await;
    check_event(&bob.recv().await, json!({"type": "hung_up", "call_id": "u1", "by": "alice"}));
}
