//! Invitation lifecycle: every row of the caller's and the callee's event
//! tables, the errors of invite / cancel / accept / refuse / hangup, one
//! outcome per call, and the hangup of an accepted call.

use super::client::*;
use serde_json::json;

#[tokio::test]
async fn invitation_and_received_by_peer() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let reply = alice
        .request(json!({"type": "invite", "req": 2, "call_id": "c1", "callee_id": "bob", "content": "hello", "channel_id": "room-1"}))
        .await;
    check(&reply, json!({"type": "ok", "req": 2}));
    let inv = bob.recv().await;
    check_event(
        &inv,
        json!({"type": "invitation", "call_id": "c1", "caller_id": "alice", "content": "hello", "channel_id": "room-1"}),
    );
    let ms = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms is a number: {inv}"));
    assert!(ms > 0 && ms <= 60_000, "expires_in_ms within the default ttl: {inv}");
    alice.expect_silence(QUIET).await;
    bob.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    // `received` gets no reply.
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn optional_fields_default_to_empty() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::connect(&url).await;
    bob.ok(json!({"type": "login", "peer_id": "bob"})).await;
    invite(&mut alice, "c1", "bob").await;
    check_event(
        &bob.recv().await,
        json!({"type": "invitation", "call_id": "c1", "caller_id": "alice", "content": "", "channel_id": ""}),
    );
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(
        &alice.recv().await,
        json!({"type": "accepted", "call_id": "c1", "response": "", "device": ""}),
    );
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob, "c2", "alice").await;
    bob.ok(json!({"type": "refuse", "call_id": "c2"})).await;
    check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c2", "response": ""}));
}

#[tokio::test]
async fn received_by_peer_once_per_call_on_each_caller_session() {
    let server = start_default().await;
    let url = server.url();
    let (mut alice1, _) = Client::login_device(&url, "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    invite(&mut alice1, "c1", "bob").await;
    invite(&mut alice2, "c2", "bob").await;
    for bob in [&mut bob1, &mut bob2] {
        expect_invitation(bob, "c1", "alice").await;
        expect_invitation(bob, "c2", "alice").await;
    }
    for _ in 0..2 {
        bob1.send(json!({"type": "received", "call_id": "c1"})).await;
        bob2.send(json!({"type": "received", "call_id": "c1"})).await;
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

#[tokio::test]
async fn accept_reaches_the_caller_and_cancels_the_other_callee_sessions() {
    let server = start_default().await;
    let url = server.url();
    let (mut alice1, _) = Client::login_device(&url, "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "phone").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "laptop").await;
    alice1
        .ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "content": "x", "channel_id": "room-1"}))
        .await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    bob1.send(json!({"type": "received", "call_id": "c1"})).await;
    for alice in [&mut alice1, &mut alice2] {
        check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    }
    let reply =
        bob1.request(json!({"type": "accept", "req": 7, "call_id": "c1", "response": "hi there"})).await;
    check(&reply, json!({"type": "ok", "req": 7}));
    for alice in [&mut alice1, &mut alice2] {
        check_event(
            &alice.recv().await,
            json!({"type": "accepted", "call_id": "c1", "response": "hi there", "device": "phone"}),
        );
    }
    check_event(
        &bob2.recv().await,
        json!({"type": "canceled", "call_id": "c1", "reason": "answered_elsewhere"}),
    );
    for c in [&mut alice1, &mut alice2, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn refuse_reaches_the_caller_and_cancels_the_other_callee_sessions() {
    let server = start_default().await;
    let url = server.url();
    let (mut alice1, _) = Client::login_device(&url, "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "phone").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "laptop").await;
    invite(&mut alice1, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    let reply = bob2.request(json!({"type": "refuse", "req": 8, "call_id": "c1", "response": "busy"})).await;
    check(&reply, json!({"type": "ok", "req": 8}));
    for alice in [&mut alice1, &mut alice2] {
        check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c1", "response": "busy"}));
    }
    check_event(
        &bob1.recv().await,
        json!({"type": "canceled", "call_id": "c1", "reason": "refused_elsewhere"}),
    );
    for c in [&mut alice1, &mut alice2, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn cancel_reaches_every_callee_session() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "phone").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "laptop").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    bob2.send(json!({"type": "received", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    let reply = alice.request(json!({"type": "cancel", "req": 3, "call_id": "c1"})).await;
    check(&reply, json!({"type": "ok", "req": 3}));
    for bob in [&mut bob1, &mut bob2] {
        check_event(
            &bob.recv().await,
            json!({"type": "canceled", "call_id": "c1", "reason": "caller_canceled"}),
        );
    }
    // A cancel before the callee acknowledged works the same.
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob1, "c2", "alice").await;
    expect_invitation(&mut bob2, "c2", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "c2"})).await;
    for bob in [&mut bob1, &mut bob2] {
        check_event(
            &bob.recv().await,
            json!({"type": "canceled", "call_id": "c2", "reason": "caller_canceled"}),
        );
    }
    for c in [&mut alice, &mut bob1, &mut bob2] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn any_session_of_the_caller_may_cancel() {
    let server = start_default().await;
    let url = server.url();
    let (mut alice1, _) = Client::login_device(&url, "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let mut bob = Client::login(&url, "bob").await;
    invite(&mut alice1, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    alice2.ok(json!({"type": "cancel", "call_id": "c1"})).await;
    check_event(&bob.recv().await, json!({"type": "canceled", "call_id": "c1", "reason": "caller_canceled"}));
    alice1.error(json!({"type": "cancel", "call_id": "c1"}), "already_ended").await;
}

#[tokio::test]
async fn cancel_errors() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    // not_found: no such call; a call where you are the callee; someone else's call.
    alice.error(json!({"type": "cancel", "call_id": "nope"}), "not_found").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.error(json!({"type": "cancel", "call_id": "c1"}), "not_found").await;
    carol.error(json!({"type": "cancel", "call_id": "c1"}), "not_found").await;
    // already_accepted: after accept (and the call stays accepted).
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    let reply = alice.request(json!({"type": "cancel", "req": 3, "call_id": "c1"})).await;
    check(&reply, json!({"type": "error", "req": 3, "code": "already_accepted"}));
    bob.expect_silence(QUIET).await;
    bob.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    check_event(
        &alice.recv().await,
        json!({"type": "hung_up", "call_id": "c1", "reason": "hangup", "by": "bob"}),
    );
    // already_ended: after refuse; after cancel.
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob, "c2", "alice").await;
    bob.ok(json!({"type": "refuse", "call_id": "c2", "response": "busy"})).await;
    alice.recv_until("refused").await;
    alice.error(json!({"type": "cancel", "call_id": "c2"}), "already_ended").await;
    invite(&mut alice, "c3", "bob").await;
    expect_invitation(&mut bob, "c3", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "c3"})).await;
    bob.recv_until("canceled").await;
    alice.error(json!({"type": "cancel", "call_id": "c3"}), "already_ended").await;
    // Remembered calls are still not the callee's to cancel.
    bob.error(json!({"type": "cancel", "call_id": "c3"}), "not_found").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn accept_and_refuse_errors() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    let mut carol = Client::login(&url, "carol").await;
    for t in ["accept", "refuse"] {
        bob1.error(json!({"type": t, "call_id": "nope"}), "not_found").await;
    }
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob1, "c1", "alice").await;
    expect_invitation(&mut bob2, "c1", "alice").await;
    // not_found: the caller, or a third party, answering.
    for t in ["accept", "refuse"] {
        alice.error(json!({"type": t, "call_id": "c1"}), "not_found").await;
        carol.error(json!({"type": t, "call_id": "c1"}), "not_found").await;
    }
    // Answered on another device, or twice on the same one: already_ended.
    bob1.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    bob2.recv_until("canceled").await;
    for t in ["accept", "refuse"] {
        bob2.error(json!({"type": t, "call_id": "c1"}), "already_ended").await;
        bob1.error(json!({"type": t, "call_id": "c1"}), "already_ended").await;
    }
    // After cancel.
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob1, "c2", "alice").await;
    expect_invitation(&mut bob2, "c2", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "c2"})).await;
    bob1.recv_until("canceled").await;
    bob2.recv_until("canceled").await;
    for t in ["accept", "refuse"] {
        bob1.error(json!({"type": t, "call_id": "c2"}), "already_ended").await;
    }
    // After refuse.
    invite(&mut alice, "c3", "bob").await;
    expect_invitation(&mut bob1, "c3", "alice").await;
    expect_invitation(&mut bob2, "c3", "alice").await;
    bob2.ok(json!({"type": "refuse", "call_id": "c3"})).await;
    alice.recv_until("refused").await;
    bob1.recv_until("canceled").await;
    for t in ["accept", "refuse"] {
        bob1.error(json!({"type": t, "call_id": "c3"}), "already_ended").await;
        bob2.error(json!({"type": t, "call_id": "c3"}), "already_ended").await;
    }
    // A remembered call is still not the caller's to answer.
    alice.error(json!({"type": "accept", "call_id": "c3"}), "not_found").await;
    // None of the late answers changed anything.
    for c in [&mut alice, &mut bob1, &mut bob2, &mut carol] {
        c.expect_silence(QUIET).await;
    }
    let login = Client::login_device(&url, "alice", "a2").await.1;
    assert_eq!(login["calls"].as_array().map(Vec::len), Some(1), "{login}");
    check(&login["calls"][0], json!({"call_id": "c1", "state": "accepted"}));
}

#[tokio::test]
async fn duplicate_call_id_live_and_remembered() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    // Live: from the same caller, to the same or another callee, or from anyone (server-wide).
    alice.error(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}), "duplicate_call_id").await;
    alice.error(json!({"type": "invite", "call_id": "c1", "callee_id": "carol"}), "duplicate_call_id").await;
    carol.error(json!({"type": "invite", "call_id": "c1", "callee_id": "dave"}), "duplicate_call_id").await;
    bob.error(json!({"type": "invite", "call_id": "c1", "callee_id": "alice"}), "duplicate_call_id").await;
    bob.expect_silence(QUIET).await;
    // Still ringing, once.
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    alice.error(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"}), "duplicate_call_id").await;
    // Remembered after it ended: hung up, canceled, refused.
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    bob.recv_until("hung_up").await;
    invite(&mut alice, "c2", "bob").await;
    expect_invitation(&mut bob, "c2", "alice").await;
    alice.ok(json!({"type": "cancel", "call_id": "c2"})).await;
    bob.recv_until("canceled").await;
    invite(&mut alice, "c3", "bob").await;
    expect_invitation(&mut bob, "c3", "alice").await;
    bob.ok(json!({"type": "refuse", "call_id": "c3"})).await;
    alice.recv_until("refused").await;
    for id in ["c1", "c2", "c3"] {
        alice.error(json!({"type": "invite", "call_id": id, "callee_id": "bob"}), "duplicate_call_id").await;
        carol.error(json!({"type": "invite", "call_id": id, "callee_id": "bob"}), "duplicate_call_id").await;
    }
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn invite_to_self_is_invalid_argument() {
    let server = start_default().await;
    let url = server.url();
    let (mut alice1, _) = Client::login_device(&url, "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let reply = alice1
        .error(json!({"type": "invite", "call_id": "c1", "callee_id": "alice"}), "invalid_argument")
        .await;
    assert!(reply["message"].as_str().unwrap_or_default().contains("callee_id"), "names callee_id: {reply}");
    alice2.expect_silence(QUIET).await;
    // No call was created.
    alice1.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
}

#[tokio::test]
async fn hangup_by_either_side_reaches_every_other_session() {
    let server = start_default().await;
    let url = server.url();
    let (mut alice1, _) = Client::login_device(&url, "alice", "a1").await;
    let (mut alice2, _) = Client::login_device(&url, "alice", "a2").await;
    let (mut bob1, _) = Client::login_device(&url, "bob", "b1").await;
    let (mut bob2, _) = Client::login_device(&url, "bob", "b2").await;
    for (id, hanger, by) in [("c1", 0, "alice"), ("c2", 1, "bob")] {
        invite(&mut alice1, id, "bob").await;
        expect_invitation(&mut bob1, id, "alice").await;
        expect_invitation(&mut bob2, id, "alice").await;
        bob1.ok(json!({"type": "accept", "call_id": id})).await;
        alice1.recv_until("accepted").await;
        alice2.recv_until("accepted").await;
        bob2.recv_until("canceled").await;
        let reply = if hanger == 0 {
            alice1.request(json!({"type": "hangup", "req": 9, "call_id": id})).await
        } else {
            bob2.request(json!({"type": "hangup", "req": 9, "call_id": id})).await
        };
        check(&reply, json!({"type": "ok", "req": 9}));
        let expected = json!({"type": "hung_up", "call_id": id, "reason": "hangup", "by": by});
        let others: Vec<&mut Client> = if hanger == 0 {
            vec![&mut alice2, &mut bob1, &mut bob2]
        } else {
            vec![&mut alice1, &mut alice2, &mut bob1]
        };
        for c in others {
            check_event(&c.recv().await, expected.clone());
        }
        for c in [&mut alice1, &mut alice2, &mut bob1, &mut bob2] {
            c.expect_silence(QUIET).await;
        }
    }
}

#[tokio::test]
async fn hangup_errors() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let mut carol = Client::login(&url, "carol").await;
    alice.error(json!({"type": "hangup", "call_id": "nope"}), "not_found").await;
    // A ringing call cannot be hung up, by either side.
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    alice.error(json!({"type": "hangup", "call_id": "c1"}), "not_found").await;
    bob.error(json!({"type": "hangup", "call_id": "c1"}), "not_found").await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    alice.recv_until("accepted").await;
    // A third party.
    carol.error(json!({"type": "hangup", "call_id": "c1"}), "not_found").await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    bob.recv_until("hung_up").await;
    alice.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    bob.error(json!({"type": "hangup", "call_id": "c1"}), "already_ended").await;
    for c in [&mut alice, &mut bob, &mut carol] {
        c.expect_silence(QUIET).await;
    }
}
