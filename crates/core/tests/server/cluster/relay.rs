//! Relay legs end with their call on a cluster even when the message that
//! ends them is lost (issue 18, item 4): the relay node's subscription is
//! cut (its Redis user may no longer subscribe, and its subscriber
//! connection is killed), the call is hung up on the other node, and the
//! `r` message waiting in the node's backlog is gone as it would be after
//! the backlog's 60 s (`sp:bl:NODE`, `docs/scale-out.md`; deleted here,
//! rather than waited for, so the test does not take a minute). The node's
//! audit of its relay against Redis closes the legs anyway, and spares a
//! call that is still live.

use crate::redis_server::{RedisServer, node_config};
use crate::server::client::*;
use serde_json::{Value, json};
use softphone_core::protocol::MediaInfo;
use softphone_core::relay_link::{LinkOptions, RelayLink, RelayLinkError};
use softphone_core::server::{MediaListen, RelayConfig, ServerConfig, ServerHandle};
use std::time::Duration;
use tokio::time::Instant;

/// The nodes' heartbeat ttl, which is also how often they audit their relay.
const HEARTBEAT_TTL: Duration = Duration::from_secs(1);
/// How long the audit may take to close the legs here: well past the
/// legs' commit slack (3 s) and a few audits, for a loaded machine.
const AUDIT_WAIT: Duration = Duration::from_secs(20);

/// Runs one Redis command as the default user.
async fn redis_command(redis: &RedisServer, args: &[&str]) -> Value {
    let client = redis::Client::open(redis.url()).expect("a redis url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect to redis");
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let value: redis::Value = cmd.query_async(&mut con).await.unwrap_or_else(|e| panic!("{args:?}: {e}"));
    json!(format!("{value:?}"))
}

/// A node named `id` with its own relay, reaching Redis as `url`.
async fn node(redis: &RedisServer, id: &str, url: String) -> ServerHandle {
    let media = RelayConfig { listen: MediaListen::At("127.0.0.1:0".parse().unwrap()), ..Default::default() };
    let mut config = node_config(redis, id, ServerConfig { media, ..Default::default() });
    let cluster = config.cluster.as_mut().expect("a cluster config");
    cluster.heartbeat_ttl = HEARTBEAT_TTL;
    cluster.redis_url = url;
    softphone_core::server::spawn(config).await.expect("a cluster node starts")
}

fn media_of(v: &Value) -> MediaInfo {
    serde_json::from_value(v["media"].clone()).unwrap_or_else(|e| panic!("a media object ({e}) in {v}"))
}

/// `caller` on one node calls `callee` on the other, who answers: the two
/// `media` objects (caller's, callee's) from the callee's node's relay.
async fn accepted(caller: &mut Client, callee: &mut Client, call_id: &str) -> (MediaInfo, MediaInfo) {
    let callee_id = callee.name.split('/').next().unwrap_or_default().to_owned();
    caller.ok(json!({"type": "invite", "call_id": call_id, "callee_id": callee_id})).await;
    assert_eq!(ty(&callee.recv_until("invitation").await), "invitation");
    let ok = callee.ok(json!({"type": "accept", "call_id": call_id})).await;
    let accepted = caller.recv_until("accepted").await;
    (media_of(&accepted), media_of(&ok))
}

#[tokio::test]
async fn relay_legs_end_with_their_call_when_the_relay_node_missed_the_end() {
    let redis = RedisServer::start().await;
    // The relay node reaches Redis as a user of its own, whose subscriptions the test can cut.
    redis_command(&redis, &["ACL", "SETUSER", "relaynode", "on", ">pw", "~*", "&*", "+@all"]).await;
    let n0 = node(&redis, "n0", redis.url()).await;
    let relay_url = redis.url().replace("redis://", "redis://relaynode:pw@");
    let n1 = node(&redis, "n1", relay_url).await;
    let relay = n1.relay().expect("n1 runs a relay");

    let mut alice = Client::login(&n0.url(), "alice").await;
    let mut bob = Client::login(&n1.url(), "bob").await;
    let mut carol = Client::login(&n0.url(), "carol").await;
    let mut dave = Client::login(&n1.url(), "dave").await;
    let (_, bob_media) = accepted(&mut alice, &mut bob, "ended").await;
    let (carol_media, dave_media) = accepted(&mut carol, &mut dave, "live").await;
    assert_eq!(relay.stats().live_calls, 2, "both calls' legs are on the callee's node");
    let ws = LinkOptions { force_websocket: true, ..Default::default() };
    let mut bob_link = RelayLink::connect_with(&bob_media, &n1.url(), &ws).await.expect("bob's link");
    let mut carol_link = RelayLink::connect_with(&carol_media, &n0.url(), &ws).await.expect("carol's link");
    let mut dave_link = RelayLink::connect_with(&dave_media, &n1.url(), &ws).await.expect("dave's link");

    // Cut n1's subscription, and keep it cut.
    redis_command(&redis, &["ACL", "SETUSER", "relaynode", "-subscribe", "-ssubscribe", "-psubscribe"]).await;
    redis_command(&redis, &["CLIENT", "KILL", "USER", "relaynode", "TYPE", "pubsub"]).await;
    // Hung up on n0: the message telling n1 to close the legs waits in n1's backlog...
    alice.ok(json!({"type": "hangup", "call_id": "ended"})).await;
    let waiting = redis_command(&redis, &["LLEN", "sp:bl:n1"]).await;
    assert_ne!(waiting, json!("int(0)"), "the end was published while n1 was not subscribed");
    // ...which keeps it for 60 s: past that, it is gone.
    redis_command(&redis, &["DEL", "sp:bl:n1"]).await;
    redis_command(&redis, &["ACL", "SETUSER", "relaynode", "+subscribe", "+ssubscribe", "+psubscribe"]).await;

    // The audit closes the ended call's legs: bob's /media connection is told the call ended.
    let closed =
        tokio::time::timeout(AUDIT_WAIT, bob_link.recv()).await.expect("bob's link closed by the audit");
    assert_eq!(closed, Err(RelayLinkError::Closed));
    let deadline = Instant::now() + WAIT;
    while relay.stats().live_calls != 1 {
        assert!(Instant::now() < deadline, "the ended call's legs are gone: {:?}", relay.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The live call is untouched.
    carol_link.send(b"still here").await.expect("carol sends");
    let got =
        tokio::time::timeout(WAIT, dave_link.recv()).await.expect("within the wait").expect("dave's link");
    assert_eq!(got, b"still here");
}
