//! Timers (short, configured ones; the tests wait for events, they do not
//! measure): invite ttl, ack timeout, offline grace, and the offline queue
//! that hands a peer's events to its next session.

use super::client::*;
use serde_json::{Value, json};
use softphone_core::server::ServerConfig;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn config(invite_ttl: Duration, ack_timeout: Duration, offline_grace: Duration) -> ServerConfig {
    ServerConfig { invite_ttl, ack_timeout, offline_grace, ..Default::default() }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn failure(call_id: &str, reason: &str) -> Value {
    json!({"type": "failure", "call_id": call_id, "reason": reason})
}

/// Subscribes `watcher` to `peer`'s presence.
async fn subscribe(watcher: &mut Client, peer: &str) {
    watcher.ok(json!({"type": "subscribe_presence", "peer_ids": [peer]})).await;
}

/// Waits for the presence event saying `peer` went offline: from then on
/// the server knows `peer` has no session.
async fn await_offline(watcher: &mut Client, peer: &str) {
    check_event(&watcher.recv().await, json!({"type": "presence", "peer_id": peer, "online": false}));
}

#[tokio::test]
async fn invite_ttl_fails_both_sides() {
    let server = start_server(config(ms(300), LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    invite(&mut alice, "c1", "bob").await;
    for bob in [&mut bob1, &mut bob2] {
        let inv = expect_invitation(bob, "c1", "alice").await;
        let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
        assert!(left <= 300, "expires_in_ms at most the ttl: {inv}");
    }
    check_event(&alice.recv().await, failure("c1", "expired"));
    check_event(&bob1.recv().await, failure("c1", "expired"));
    check_event(&bob2.recv().await, failure("c1", "expired"));
    for c in [&mut alice, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn ack_timeout_fails_both_sides_and_the_call_stays_ended() {
    let server = start_server(config(LONG, ms(300), LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    check_event(&alice.recv().await, failure("c1", "peer_no_response"));
    check_event(&alice2.recv().await, failure("c1", "peer_no_response"));
    check_event(&bob1.recv().await, failure("c1", "expired"));
    check_event(&bob2.recv().await, failure("c1", "expired"));
    // Later actions get already_ended and change nothing; the id is remembered.
    alice.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    bob1.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    bob2.error(json!({"type": "refuse", "call_id": "c1"}), "already_ended").await;
    alice.error(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}), "duplicate_call_id").await;
    bob1.send(json!({"type": "received", "call_id": "c1"})).await;
    for c in [&mut alice, &mut alice2, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn received_stops_the_ack_timer() {
    let server = start_server(config(LONG, ms(1000), LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    alice.expect_silence(ms(1500)).await;
    bob.expect_silence(QUIET).await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c1"}));
}

#[tokio::test]
async fn ack_timer_does_not_run_while_the_callee_has_no_session() {
    let server = start_server(config(LONG, ms(300), LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    // Well past the ack timeout, but bob has no session: nothing happens.
    alice.expect_silence(ms(1000)).await;
    let (mut bob, login) = Client::login_device(&url, "bob", "b1").await;
    assert_eq!(login["calls"].as_array().map(Vec::len), Some(1), "{login}");
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}),
    );
    expect_invitation(&mut bob, "c1", "alice").await;
    // Now the timer runs from the invitation's arrival.
    check_event(&alice.recv().await, failure("c1", "peer_no_response"));
    check_event(&bob.recv().await, failure("c1", "expired"));
}

#[tokio::test]
async fn callee_without_session_gets_peer_offline_and_never_the_invitation() {
    let server = start_server(config(LONG, LONG, ms(300))).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    check_event(&alice.recv().await, failure("c1", "peer_offline"));
    let (mut bob, login) = Client::login_device(&url, "bob", "b1").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    bob.expect_silence(QUIET).await;
    alice.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
    bob.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn callee_logging_in_within_the_grace_gets_the_invitation() {
    let server = start_server(config(LONG, LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    alice
        .ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "content": "hey", "channel_id": "room-9"}))
        .await;
    let (mut bob1, login) = Client::login_device(&url, "bob", "b1").await;
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "callee", "state": "ringing", "peer_id": "alice"}),
    );
    let inv = expect_invitation(&mut bob1, "c1", "alice").await;
    check(&inv, json!({"content": "hey", "channel_id": "room-9"}));
    let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
    assert!(left > 0 && left <= 60_000, "{inv}");
    // Every session that logs in gets an invitation for each call still ringing.
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    let inv = expect_invitation(&mut bob2, "c1", "alice").await;
    check(&inv, json!({"content": "hey", "channel_id": "room-9"}));
    let left2 = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
    assert!(left2 <= left, "the time left only shrinks: {left2} after {left}");
    bob2.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    bob1.ok(json!({"type": "accept", "call_id": "c1", "response": "yo"})).await;
    check_event(
        &alice.recv().await,
        json!({"type": "accepted", "call_id": "c1", "response": "yo", "device": "b1"}),
    );
    check_event(
        &bob2.recv().await,
        json!({"type": "canceled", "call_id": "c1", "reason": "answered_elsewhere"}),
    );
    // Accepted is no longer ringing: a new session gets no invitation.
    let (mut bob3, login) = Client::login_device(&url, "bob", "b3").await;
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "callee", "state": "accepted", "peer_id": "alice"}),
    );
    bob3.expect_silence(QUIET).await;
    bob1.expect_silence(QUIET).await;
}

#[tokio::test]
async fn an_invitation_that_ends_before_any_callee_session_saw_it_is_never_delivered() {
    // Canceled while bob had no session.
    let server = start_server(config(LONG, LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    alice.ok(json!({"type": "cancel", "call_id": "c1"})).await;
    let (mut bob, login) = Client::login_device(&url, "bob", "b1").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    bob.expect_silence(QUIET).await;
    alice.expect_silence(QUIET).await;

    // Expired while bob had no session.
    let server = start_server(config(ms(300), LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    check_event(&alice.recv().await, failure("c1", "expired"));
    let (mut bob, login) = Client::login_device(&url, "bob", "b1").await;
    assert_eq!(login["calls"], json!([]), "{login}");
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn callee_losing_its_last_session_fails_the_call_after_the_grace() {
    let server = start_server(config(LONG, LONG, ms(300))).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (bob2, _) = Client::login_device(&url, "bob", "b2").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    bob1.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    bob2.close().await;
    bob1.close().await;
    check_event(&alice.recv().await, failure("c1", "peer_offline"));
    alice.expect_silence(QUIET).await;
}

#[tokio::test]
async fn caller_losing_its_last_session_fails_the_call_after_the_grace() {
    let server = start_server(config(LONG, LONG, ms(300))).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    alice.close().await;
    check_event(&bob1.recv().await, failure("c1", "caller_offline"));
    check_event(&bob2.recv().await, failure("c1", "caller_offline"));
    bob1.error(json!({"type": "accept", "call_id": "c1"}), "already_ended").await;
    bob1.expect_silence(QUIET).await;
    bob2.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_participant_back_within_the_grace_keeps_its_calls() {
    let server = start_server(config(LONG, LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    subscribe(&mut bob, "alice").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    alice.close().await;
    await_offline(&mut bob, "alice").await;
    let (mut alice2, login) = Client::login_device(&url, "alice", "a2").await;
    check_event(&bob.recv().await, json!({"type": "presence", "peer_id": "alice", "online": true}));
    assert_eq!(login["calls"].as_array().map(Vec::len), Some(1), "{login}");
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "caller", "state": "ringing", "peer_id": "bob"}),
    );
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(&alice2.recv().await, json!({"type": "accepted", "call_id": "c1"}));
    alice2.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn an_accepted_call_ends_with_hung_up_peer_offline_naming_the_lost_peer() {
    let server = start_server(config(LONG, LONG, ms(300))).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    let mut dave = Client::login(&url, "dave").await;
    for (caller, callee, id, caller_id, callee_id) in
        [(&mut alice, &mut bob, "c1", "alice", "bob"), (&mut carol, &mut dave, "c2", "carol", "dave")]
    {
        invite(caller, id, callee_id).await;
        expect_invitation(callee, id, caller_id).await;
        callee.ok(json!({"type": "accept", "call_id": id})).await;
        check_event(&caller.recv().await, json!({"type": "accepted", "call_id": id}));
    }
    // The callee of c1 and the caller of c2 are lost.
    bob.close().await;
    carol.close().await;
    check_event(
        &alice.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "peer_offline", "by": "bob"}),
    );
    check_event(
        &dave.recv().await,
        json!({"type": "hung_up", "call_id": "c2", "reason": "peer_offline", "by": "carol"}),
    );
    alice.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    alice.expect_silence(QUIET).await;
    dave.expect_silence(QUIET).await;
}

#[tokio::test]
async fn the_callers_events_wait_for_its_next_session_in_order() {
    let server = start_server(config(LONG, LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    subscribe(&mut bob, "alice").await;
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
    let (mut alice2, login) = Client::login_device(&url, "alice", "a2").await;
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
    // Handed over once: another session does not get them again.
    let (mut alice3, _) = Client::login_device(&url, "alice", "a3").await;
    alice3.expect_silence(QUIET).await;
}

#[tokio::test]
async fn the_callees_events_wait_for_its_next_session_in_order() {
    let server = start_server(config(LONG, LONG, LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    subscribe(&mut alice, "bob").await;
    for id in ["c1", "c2", "c3", "c4"] {
        invite(&mut alice, id, "bob").await;
        expect_invitation(&mut bob, id, "alice").await;
        bob.send(json!({"type": "received", "call_id": id})).await;
        check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": id}));
        // Accepted before c4 is invited: at most 3 of alice's calls ring at bob at once (v1.1).
        if id == "c3" {
            bob.ok(json!({"type": "accept", "call_id": "c3"})).await;
            check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c3"}));
        }
    }
    bob.close().await;
    await_offline(&mut alice, "bob").await;
    alice.ok(json!({"type": "cancel", "call_id": "c1"})).await;
    alice.ok(json!({"type": "hangup", "call_id": "c3"})).await;
    alice.ok(json!({"type": "cancel", "call_id": "c4"})).await;
    let (mut bob2, login) = Client::login_device(&url, "bob", "b2").await;
    assert_eq!(login["calls"].as_array().map(Vec::len), Some(1), "{login}");
    check(
        &login["calls"][0],
        json!({"call_id": "c2", "role": "callee", "state": "ringing", "peer_id": "alice"}),
    );
    // The queued events in order, and an invitation for c2 (still ringing) somewhere.
    let mut queued = Vec::new();
    let mut invitation = None;
    for _ in 0..4 {
        let m = bob2.recv().await;
        if ty(&m) == "invitation" {
            assert!(invitation.is_none(), "a second invitation: {m}");
            invitation = Some(m);
        } else {
            queued.push(m);
        }
    }
    let invitation = invitation.expect("an invitation for c2");
    check_event(&invitation, json!({"type": "invitation", "call_id": "c2", "caller_id": "alice"}));
    assert_eq!(queued.len(), 3, "{queued:?}");
    check_event(&queued[0], json!({"type": "canceled", "call_id": "c1", "reason": "caller_canceled"}));
    check_event(&queued[1], json!({"type": "hung_up", "call_id": "c3", "reason": "hangup", "by": "alice"}));
    check_event(&queued[2], json!({"type": "canceled", "call_id": "c4", "reason": "caller_canceled"}));
    bob2.expect_silence(QUIET).await;
    bob2.ok(json!({"type": "refuse", "call_id": "c2", "response": "later"})).await;
    check_event(&alice.recv_until("refused").await, json!({"call_id": "c2", "response": "later"}));
}

#[tokio::test]
async fn ack_timer_pauses_while_a_reached_callee_is_offline_and_resumes() {
    let server = start_server(config(LONG, ms(600), LONG)).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut carol = Client::login(&url, "carol").await;
    let mut bob = Client::login(&url, "bob").await;
    subscribe(&mut carol, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // Bob leaves without acknowledging: the ack timer stops with time left.
    bob.close().await;
    await_offline(&mut carol, "bob").await;
    // Well past the ack timeout, but bob has no session: nothing happens.
    alice.expect_silence(ms(1200)).await;
    let mut bob = Client::login(&url, "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // The timer runs again (with what was left of it).
    check_event(&alice.recv().await, failure("c1", "peer_no_response"));
    check_event(&bob.recv().await, failure("c1", "expired"));
}
