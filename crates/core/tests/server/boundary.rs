//! Calls at the very instant their deadline passes, with tokio's clock
//! paused and the server in this process: a call past its deadline is not
//! ringing, so whoever looks at it then (a login, an answer, the timer)
//! ends it first, and no `invitation` ever goes out with no time left.
//!
//! The clock is held still while the sockets talk ([`FrozenClock`]) and
//! moved only by `tokio::time::advance`, to exactly the deadline, while a
//! request is already on its way to the server.

use super::client::*;
use serde_json::{Value, json};
use softphone_core::server::{ServerConfig, ServerHandle};
use std::time::Duration;

/// The invite ttl of these tests; every other timer is far beyond it.
const TTL: Duration = Duration::from_secs(10);
const FAR: Duration = Duration::from_secs(3_600);

fn config() -> ServerConfig {
    ServerConfig {
        invite_ttl: TTL,
        ack_timeout: FAR,
        offline_grace: FAR,
        ping_interval: FAR,
        idle_timeout: 2 * FAR,
        ..Default::default()
    }
}

fn failure(call_id: &str, reason: &str) -> Value {
    json!({"type": "failure", "call_id": call_id, "reason": reason})
}

/// Keeps the paused clock from moving on its own while it lives. A paused
/// clock jumps to the next timer whenever the runtime waits, even for
/// socket I/O; tokio does not do that while a `spawn_blocking` task runs
/// (see "Preventing auto-advance" in `tokio::time::pause`), so one waits
/// here until this is dropped. Time then moves only by `advance`.
struct FrozenClock {
    _release: std::sync::mpsc::Sender<()>,
}

impl FrozenClock {
    fn hold() -> FrozenClock {
        let (release, held) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = held.recv();
        });
        FrozenClock { _release: release }
    }
}

/// Sends `request` and, while it travels, moves the clock by `by`; returns
/// the reply. The request reaches the server at the new instant.
async fn request_as_time_moves(c: &mut Client, request: Value, by: Duration) -> Value {
    let req = c.send_req(request).await;
    tokio::time::advance(by).await;
    c.reply(req).await
}

/// Asserts that nothing but the reply to a later request reaches `c`.
async fn expect_nothing_more(c: &mut Client) {
    c.ok(json!({"type": "query_presence", "peer_ids": ["nobody"]})).await;
    assert!(c.pending().is_empty(), "{}: nothing else should have come: {:?}", c.name, c.pending());
}

/// Alice calls bob, who is offline; bob logs in while the clock moves `by`
/// past the invite. Returns the held clock, the server, both clients and
/// bob's login reply.
async fn bob_logs_in_after(by: Duration) -> (FrozenClock, ServerHandle, Client, Client, Value) {
    let frozen = FrozenClock::hold();
    let server = start_server(config()).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    let mut bob = Client::connect(&url).await;
    bob.name = "bob".into();
    let login = json!({"type": "login", "peer_id": "bob"});
    let reply = request_as_time_moves(&mut bob, login, by).await;
    (frozen, server, alice, bob, reply)
}

#[tokio::test(start_paused = true)]
async fn a_callee_logging_in_at_the_deadline_gets_no_invitation() {
    let (_frozen, _server, mut alice, mut bob, reply) = bob_logs_in_after(TTL).await;
    check(&reply, json!({"type": "ok", "calls": []}));
    check_event(&alice.recv().await, failure("c1", "expired"));
    // Bob never saw the call, so nothing about it reaches him.
    expect_nothing_more(&mut bob).await;
    expect_nothing_more(&mut alice).await;
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
}

#[tokio::test(start_paused = true)]
async fn a_callee_back_at_the_deadline_gets_the_failure_not_the_invitation() {
    let _frozen = FrozenClock::hold();
    let server = start_server(config()).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    alice.ok(json!({"type": "subscribe_presence", "peer_ids": ["bob"]})).await;
    let mut bob = Client::login(&url, "bob").await;
    alice.recv_until("presence").await;
    invite(&mut alice, "c1", "bob").await;
    let inv = expect_invitation(&mut bob, "c1", "alice").await;
    assert_eq!(inv["expires_in_ms"], json!(TTL.as_millis() as u64), "{inv}");
    // Bob's connection drops without a `received`; he comes back exactly at the deadline.
    bob.close().await;
    check_event(&alice.recv().await, json!({"type": "presence", "peer_id": "bob", "online": false}));
    let mut bob = Client::connect(&url).await;
    bob.name = "bob (again)".into();
    let login = json!({"type": "login", "peer_id": "bob"});
    let reply = request_as_time_moves(&mut bob, login, TTL).await;
    check(&reply, json!({"type": "ok", "calls": []}));
    // He had seen the call: its end is kept for him, and is all he gets.
    check_event(&bob.recv().await, failure("c1", "expired"));
    expect_nothing_more(&mut bob).await;
    // The call ended before bob's login was looked at.
    check_event(&alice.recv().await, failure("c1", "expired"));
    check_event(&alice.recv().await, json!({"type": "presence", "peer_id": "bob", "online": true}));
    expect_nothing_more(&mut alice).await;
}

#[tokio::test(start_paused = true)]
async fn an_answer_at_the_deadline_finds_the_call_expired() {
    let _frozen = FrozenClock::hold();
    let server = start_server(config()).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    let accept = json!({"type": "accept", "call_id": "c1"});
    let reply = request_as_time_moves(&mut bob, accept, TTL).await;
    check_error(&reply, "already_ended");
    // The call ended before the answer was looked at: the failure came first.
    let pending: Vec<Value> = bob.pending().iter().cloned().collect();
    assert_eq!(pending.len(), 1, "bob: only the failure before the reply: {pending:?}");
    check_event(&pending[0], failure("c1", "expired"));
    check_event(&alice.recv().await, failure("c1", "expired"));
    expect_nothing_more(&mut alice).await;
}

#[tokio::test(start_paused = true)]
async fn a_login_a_millisecond_before_the_deadline_still_rings_with_time_left() {
    let (_frozen, _server, mut alice, mut bob, reply) =
        bob_logs_in_after(TTL - Duration::from_millis(1)).await;
    check(
        &reply,
        json!({"type": "ok", "calls": [{"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}]}),
    );
    let inv = expect_invitation(&mut bob, "c1", "alice").await;
    assert_eq!(inv["expires_in_ms"], json!(1), "{inv}");
    // The timer ends it at the deadline, on both sides.
    tokio::time::advance(Duration::from_millis(1)).await;
    check_event(&alice.recv().await, failure("c1", "expired"));
    check_event(&bob.recv().await, failure("c1", "expired"));
}
