//! Presence across nodes: a query sees sessions on every node; a
//! subscription on one node hears every change of a peer whose sessions
//! come and go on others, at once (not after the offline grace), and only
//! changes: a second session elsewhere is no change.

use super::Cluster;
use crate::server::client::*;
use serde_json::{Value, json};

fn presence(peer: &str, online: bool) -> Value {
    json!({"type": "presence", "peer_id": peer, "online": online})
}

#[tokio::test]
async fn query_presence_sees_sessions_on_every_node() {
    let cluster = Cluster::with_defaults(3).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let mut bob = Client::login(&cluster.url(1), "bob").await;
    let _dave = Client::login(&cluster.url(2), "dave").await;
    let reply = alice
        .request(json!({"type": "query_presence", "req": 4, "peer_ids": ["bob", "carol", "dave"]}))
        .await;
    check(&reply, json!({"type": "ok", "req": 4}));
    assert_eq!(reply["online"], json!({"bob": true, "carol": false, "dave": true}), "{reply}");
    // Logged out on its node: offline for a query on another.
    bob.ok(json!({"type": "logout"})).await;
    bob.expect_close().await;
    let reply = alice.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
    assert_eq!(reply["online"], json!({"bob": false}), "{reply}");
    // A query subscribes to nothing.
    let _carol = Client::login(&cluster.url(2), "carol").await;
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn subscriptions_hear_every_change_on_other_nodes_at_once() {
    // The default offline grace (30 s) is longer than the wait: offline
    // must come at once.
    let cluster = Cluster::with_defaults(3).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    let _carol = Client::login(&cluster.url(2), "carol").await;
    let reply =
        alice.request(json!({"type": "subscribe_presence", "req": 5, "peer_ids": ["bob", "carol"]})).await;
    check(&reply, json!({"type": "ok", "req": 5}));
    assert_eq!(reply["online"], json!({"bob": false, "carol": true}), "{reply}");
    let (mut bob1, _) = Client::login_device(&cluster.url(1), "bob", "b1").await;
    check_event(&alice.recv().await, presence("bob", true));
    // A second session on a third node, then its loss: no change.
    let (bob2, _) = Client::login_device(&cluster.url(2), "bob", "b2").await;
    bob2.close().await;
    alice.expect_silence(QUIET).await;
    // Logging out the last session: offline at once.
    bob1.ok(json!({"type": "logout"})).await;
    check_event(&alice.recv().await, presence("bob", false));
    // Closing the socket of the last session, on another node: the same.
    let bob3 = Client::login(&cluster.url(2), "bob").await;
    check_event(&alice.recv().await, presence("bob", true));
    drop(bob3);
    check_event(&alice.recv().await, presence("bob", false));
    // Sessions on the subscriber's own node count the same.
    let bob4 = Client::login(&cluster.url(0), "bob").await;
    check_event(&alice.recv().await, presence("bob", true));
    bob4.close().await;
    check_event(&alice.recv().await, presence("bob", false));
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn subscribers_on_several_nodes_each_hear_the_change_once() {
    let cluster = Cluster::with_defaults(3).await;
    let mut watchers = Vec::new();
    for i in 0..3 {
        let mut w = Client::login(&cluster.url(i), &format!("w{i}")).await;
        w.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob"]})).await;
        watchers.push(w);
    }
    // Two subscribing sessions of one peer on two nodes: each hears it.
    let (mut w0b, _) = Client::login_device(&cluster.url(1), "w0", "second").await;
    w0b.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob"]})).await;
    watchers.push(w0b);
    let bob = Client::login(&cluster.url(1), "bob").await;
    for w in &mut watchers {
        check_event(&w.recv().await, presence("bob", true));
    }
    bob.close().await;
    for w in &mut watchers {
        check_event(&w.recv().await, presence("bob", false));
        w.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn unsubscribe_stops_the_events_from_other_nodes() {
    let cluster = Cluster::with_defaults(2).await;
    let mut alice = Client::login(&cluster.url(0), "alice").await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob", "carol"]})).await;
    let reply = alice.request(json!({"type": "unsubscribe_presence", "req": 6, "peer_ids": ["bob"]})).await;
    check(&reply, json!({"type": "ok", "req": 6}));
    let _bob = Client::login(&cluster.url(1), "bob").await;
    let _carol = Client::login(&cluster.url(1), "carol").await;
    check_event(&alice.recv().await, presence("carol", true));
    alice.expect_silence(QUIET).await;
}
