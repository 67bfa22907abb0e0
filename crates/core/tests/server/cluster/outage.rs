//! Redis going away and coming back (issue 12, item 6): while it is down,
//! requests that need it get `unavailable` and nobody is disconnected, no
//! call ends, no node takes another for dead; once it is back, with the
//! data of its append-only file, every node serves again within 5 s and the
//! calls from before the outage go on.

use super::{Cluster, NodeProcess, recv_within};
use crate::redis_server::{RedisServer, node_config};
use crate::server::client::*;
use serde_json::json;
use softphone_core::server::ServerConfig;
use std::time::Duration;
use tokio::time::Instant;

/// The heartbeat ttl and offline grace of the nodes here: short, so that a
/// node that took the outage for the loss of the others, or of its own
/// sessions, would end calls within the test's waits.
const HEARTBEAT_TTL: Duration = Duration::from_secs(1);
const OFFLINE_GRACE: Duration = Duration::from_secs(2);
/// How long Redis stays down: past the heartbeat ttl and the grace.
const OUTAGE: Duration = Duration::from_secs(4);
/// The bound on serving again after Redis is back (5 s), with
/// slack for a machine shared by several test binaries.
const RECOVERY: Duration = Duration::from_secs(10);

/// Two nodes with [`HEARTBEAT_TTL`] and [`OFFLINE_GRACE`] on a new Redis.
async fn cluster() -> Cluster {
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for i in 0..2 {
        let base = ServerConfig { offline_grace: OFFLINE_GRACE, ..Default::default() };
        let mut config = node_config(&redis, &format!("n{i}"), base);
        config.cluster.as_mut().expect("a cluster config").heartbeat_ttl = HEARTBEAT_TTL;
        nodes.push(softphone_core::server::spawn(config).await.expect("a cluster node starts"));
    }
    Cluster { redis, nodes }
}

/// Sends `request` from `c` until it gets something other than
/// `unavailable`, which must be `ok`; panics after `deadline`.
async fn until_served(c: &mut Client, request: serde_json::Value, deadline: Instant) -> serde_json::Value {
    loop {
        let reply = c.request(request.clone()).await;
        match (ty(&reply), reply["code"].as_str()) {
            ("ok", _) => return reply,
            ("error", Some("unavailable")) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("{}: {request} after Redis came back got {reply}", c.name),
        }
    }
}

/// Invites probe calls from `from` to `to` (canceling each) until one
/// reaches `to`, by `back` + [`RECOVERY`]; returns how many did not (what
/// is published for a node that is not subscribed again yet waits in its
/// backlog, so none should be lost).
async fn events_flow(from: &mut Client, to: &mut Client, back: Instant) -> usize {
    let to_id = to.name.split('/').next().unwrap_or_default().to_owned();
    for k in 0.. {
        let id = format!("probe-{}-{k}", from.name.split('/').next().unwrap_or_default());
        let invite = json!({"type": "invite", "call_id": id, "callee_id": to_id});
        until_served(from, invite, back + RECOVERY).await;
        let mut reached = false;
        while let Some(m) = recv_within(to, Duration::from_secs(1)).await {
            // Only this probe's invitation, or the cancel of a lost earlier one.
            if ty(&m) == "invitation" {
                check_event(&m, json!({"call_id": id}));
                reached = true;
                break;
            }
            check_event(&m, json!({"type": "canceled", "reason": "caller_canceled"}));
        }
        until_served(from, json!({"type": "cancel", "call_id": id}), back + RECOVERY).await;
        if reached {
            check_event(
                &to.recv().await,
                json!({"type": "canceled", "call_id": id, "reason": "caller_canceled"}),
            );
            return k;
        }
        assert!(
            Instant::now() < back + RECOVERY,
            "{}: no invitation reached {to_id} within {RECOVERY:?}",
            from.name
        );
    }
    unreachable!("the loop returns or panics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_gives_unavailable_drops_nobody_and_service_returns() {
    let mut cluster = cluster().await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    let mut carol = Client::login(&cluster.url(0), "carol").await;
    carol.ok(json!({"type": "subscribe_presence", "peer_ids": ["alice", "bob"]})).await;
    // c1 accepted alice -> bob; c2 ringing bob -> alice.
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c1"}));
    invite(&mut bob, "c2", "alice").await;
    expect_invitation(&mut alice, "c2", "bob").await;
    alice.send(json!({"type": "received", "call_id": "c2"})).await;
    check_event(&bob.recv().await, json!({"type": "received_by_peer", "call_id": "c2"}));

    cluster.redis.stop().await;
    alice.error(json!({"type": "invite", "call_id": "c3", "callee_id": "bob"}), "unavailable").await;
    bob.error(json!({"type": "cancel", "call_id": "c2"}), "unavailable").await;
    alice.error(json!({"type": "hangup", "call_id": "c1"}), "unavailable").await;
    let mut newcomer = Client::connect(&cluster.url(1)).await;
    newcomer.error(json!({"type": "login", "peer_id": "dave"}), "unavailable").await;
    // Past the heartbeat ttl and the grace: no session is dropped, no call ends.
    alice.expect_silence(OUTAGE).await;
    for c in [&mut bob, &mut carol, &mut newcomer] {
        c.expect_silence(QUIET).await;
    }

    cluster.redis.restart().await;
    let back = Instant::now();
    // Each node serves again, and events cross between them both ways.
    let lost = events_flow(&mut alice, &mut bob, back).await + events_flow(&mut bob, &mut alice, back).await;
    eprintln!("events flow again {:?} after Redis came back ({lost} probe invitations lost)", back.elapsed());
    assert_eq!(lost, 0, "an event published while a node was not subscribed again was lost");
    invite(&mut alice, "c3", "bob").await;
    expect_invitation(&mut bob, "c3", "alice").await;
    bob.ok(json!({"type": "refuse", "call_id": "c3"})).await;
    check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c3"}));

    // The calls from before the outage are as they were.
    alice.ok(json!({"type": "accept", "call_id": "c2"})).await;
    check_event(&bob.recv().await, json!({"type": "accepted", "call_id": "c2"}));
    // Past the heartbeat ttl and the grace again: no node took another for dead.
    alice.expect_silence(HEARTBEAT_TTL + OFFLINE_GRACE + Duration::from_secs(1)).await;
    for c in [&mut bob, &mut carol] {
        c.expect_silence(QUIET).await;
    }
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(
        &bob.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "alice"}),
    );
    bob.ok(json!({"type": "hangup", "call_id": "c2"})).await;
    check_event(
        &alice.recv().await,
        json!({"type": "hung_up", "call_id": "c2", "reason": "hangup", "by": "bob"}),
    );
    // Logins and presence work again, across the nodes.
    let dave = Client::login(&cluster.url(1), "dave").await;
    carol.ok(json!({"type": "subscribe_presence", "peer_ids": ["dave"]})).await;
    dave.close().await;
    check_event(&carol.recv().await, json!({"type": "presence", "peer_id": "dave", "online": false}));
    let reply = carol.ok(json!({"type": "query_presence", "peer_ids": ["alice", "bob", "dave"]})).await;
    assert_eq!(reply["online"], json!({"alice": true, "bob": true, "dave": false}), "{reply}");
}

#[tokio::test]
async fn an_outage_is_logged_once_not_per_request() {
    let mut redis = RedisServer::start().await;
    let node = NodeProcess::start(&redis, "n0", &[]).await;
    let mut alice = Client::login(&node.url(), "alice").await;
    let before = node.log().lines().count();
    redis.stop().await;
    for i in 0..5 {
        alice
            .error(json!({"type": "invite", "call_id": format!("a{i}"), "callee_id": "bob"}), "unavailable")
            .await;
    }
    // The outage is logged (the log writer does not block, so give it a moment).
    let deadline = Instant::now() + WAIT;
    while node.log().lines().count() == before {
        assert!(Instant::now() < deadline, "the outage was not logged: {}", node.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after_five = node.log().lines().count();
    for i in 0..50 {
        alice
            .error(json!({"type": "invite", "call_id": format!("b{i}"), "callee_id": "bob"}), "unavailable")
            .await;
    }
    alice.expect_silence(Duration::from_secs(1)).await;
    let log = node.log();
    assert_eq!(log.lines().count(), after_five, "50 more requests, more log lines:\n{log}");
    redis.restart().await;
    let back = Instant::now();
    until_served(&mut alice, json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}), back + RECOVERY)
        .await;
}
