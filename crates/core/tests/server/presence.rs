//! Presence: query, subscribe (with the online map), unsubscribe, events on
//! every change and at once, 512 peers per request, 512 subscriptions.

use super::client::*;
use serde_json::{Map, Value, json};

fn presence(peer: &str, online: bool) -> Value {
    json!({"type": "presence", "peer_id": peer, "online": online})
}

fn peers(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn query_presence_reports_who_is_online() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let _bob = Client::login(&url, "bob").await;
    let reply =
        alice.request(json!({"type": "query_presence", "req": 4, "peer_ids": ["bob", "carol"]})).await;
    check(&reply, json!({"type": "ok", "req": 4}));
    assert_eq!(reply["online"], json!({"bob": true, "carol": false}), "{reply}");
    let reply = alice.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
    assert_eq!(reply["online"], json!({"alice": true}), "{reply}");
    let reply = alice.ok(json!({"type": "query_presence", "peer_ids": []})).await;
    assert_eq!(reply["online"], json!({}), "{reply}");
    // A query subscribes to nothing.
    let _carol = Client::login(&url, "carol").await;
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn subscribe_replies_with_the_online_map_and_events_follow_every_change_at_once() {
    // The default offline grace (30 s) is far longer than the wait: the
    // offline event must come at once, not after the grace.
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let _carol = Client::login(&url, "carol").await;
    let reply =
        alice.request(json!({"type": "subscribe_presence", "req": 5, "peer_ids": ["bob", "carol"]})).await;
    check(&reply, json!({"type": "ok", "req": 5}));
    assert_eq!(reply["online"], json!({"bob": false, "carol": true}), "{reply}");
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    check_event(&alice.recv().await, presence("bob", true));
    // A second session changes nothing; losing one of two changes nothing.
    let (bob2, _) = Client::login_device(&url, "bob", "b2").await;
    bob2.close().await;
    // Logging out the last session: offline, at once.
    bob1.ok(json!({"type": "logout"})).await;
    check_event(&alice.recv().await, presence("bob", false));
    alice.expect_silence(QUIET).await;
    // Closing the socket of the last session: the same.
    let bob3 = Client::login(&url, "bob").await;
    check_event(&alice.recv().await, presence("bob", true));
    drop(bob3);
    check_event(&alice.recv().await, presence("bob", false));
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unsubscribe_stops_the_events() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob", "carol"]})).await;
    let reply = alice.request(json!({"type": "unsubscribe_presence", "req": 6, "peer_ids": ["bob"]})).await;
    check(&reply, json!({"type": "ok", "req": 6}));
    let _bob = Client::login(&url, "bob").await;
    let _carol = Client::login(&url, "carol").await;
    check_event(&alice.recv().await, presence("carol", true));
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn at_most_512_peers_per_request() {
    let server = start_default().await;
    let mut alice = Client::login(&server.url(), "alice").await;
    let names = peers("p", 512);
    let reply = alice.ok(json!({"type": "query_presence", "peer_ids": names})).await;
    let online = reply["online"].as_object().unwrap_or_else(|| panic!("online map: {reply}"));
    assert_eq!(online.len(), 512);
    assert!(online.values().all(|v| v == false), "{reply}");
    let names = peers("q", 513);
    for t in ["query_presence", "subscribe_presence", "unsubscribe_presence"] {
        alice.error(json!({"type": t, "peer_ids": names}), "invalid_argument").await;
    }
    // The refused subscription subscribed to nothing.
    let _q0 = Client::login(&server.url(), "q0").await;
    alice.expect_silence(QUIET).await;
    let reply = alice.ok(json!({"type": "subscribe_presence", "peer_ids": peers("p", 512)})).await;
    assert_eq!(reply["online"].as_object().map(Map::len), Some(512), "{reply}");
}

#[tokio::test]
async fn at_most_512_subscriptions_per_session() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": peers("p", 300)})).await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": peers("r", 212)})).await;
    alice.error(json!({"type": "subscribe_presence", "peer_ids": ["extra"]}), "too_many_subscriptions").await;
    alice
        .error(json!({"type": "subscribe_presence", "peer_ids": peers("s", 2)}), "too_many_subscriptions")
        .await;
    // The refused one subscribed to nothing.
    let _extra = Client::login(&url, "extra").await;
    alice.expect_silence(QUIET).await;
    // Unsubscribing frees a slot.
    alice.ok(json!({"type": "unsubscribe_presence", "peer_ids": ["p0"]})).await;
    let reply = alice.ok(json!({"type": "subscribe_presence", "peer_ids": ["extra"]})).await;
    assert_eq!(reply["online"], json!({"extra": true}), "{reply}");
    let _p1 = Client::login(&url, "p1").await;
    check_event(&alice.recv().await, presence("p1", true));
    // The limit is per session: another session of alice has its own.
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    alice2.ok(json!({"type": "subscribe_presence", "peer_ids": ["extra"]})).await;
}

#[tokio::test]
async fn presence_peer_ids_must_be_valid_peer_ids() {
    let server = start_default().await;
    let mut alice = Client::login(&server.url(), "alice").await;
    for bad in [json!([""]), json!([bytes(65)]), json!(["a b"])] {
        alice.error(json!({"type": "query_presence", "peer_ids": bad}), "invalid_argument").await;
        alice.error(json!({"type": "subscribe_presence", "peer_ids": bad}), "invalid_argument").await;
    }
}
