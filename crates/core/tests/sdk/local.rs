//! The caller's side: every state of a `LocalInvitation` and every local
//! error, against a real server.

use crate::support::*;
use futures_util::FutureExt;
use softphone_core::sdk::{Error, Event, FailureReason, HangupReason, LocalInvitationState as L};
use std::time::Duration;

/// A local error is ready at once: nothing went to the server.
fn local_error<T: std::fmt::Debug>(reply: softphone_core::sdk::Reply<T>) -> Error {
    match reply.now_or_never() {
        Some(Err(e)) => {
            assert!(e.is_local_rule(), "{e:?} is not a local rule error");
            e
        }
        other => panic!("expected an immediate local error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_local_invitation_goes_sent_received_accepted_then_hung_up() {
    let server = start_server(server_config()).await;
    let (alice, mut alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;

    let invitation = alice.create_local_invitation("bob").unwrap();
    assert_eq!(invitation.state(), L::Idle);
    assert_eq!(invitation.callee_id(), "bob");
    invitation.set_content("hello").unwrap();
    invitation.set_channel_id("room-1").unwrap();
    assert_eq!((invitation.content(), invitation.channel_id()), ("hello".into(), "room-1".into()));
    invitation.send().await.unwrap();
    assert!(matches!(invitation.state(), L::SentToRemote | L::ReceivedByRemote));

    let call_id = invitation.call_id().to_owned();
    match next_call_event(&mut bob_events).await {
        Event::RemoteInvitationReceived { call_id: id, caller_id, content, channel_id, expires_in } => {
            assert_eq!((id.as_str(), caller_id.as_str()), (call_id.as_str(), "alice"));
            assert_eq!((content.as_str(), channel_id.as_str()), ("hello", "room-1"));
            assert!(expires_in > Duration::ZERO);
        }
        other => panic!("{other:?}"),
    }
    // Bob's SDK acknowledged on its own.
    assert_eq!(
        next_call_event(&mut alice_events).await,
        Event::LocalInvitationReceivedByPeer { call_id: call_id.clone() }
    );
    assert_eq!(invitation.state(), L::ReceivedByRemote);

    let remote = bob.remote_invitation(&call_id).unwrap();
    remote.set_response("on my way").unwrap();
    remote.accept().await.unwrap();
    assert_eq!(
        next_call_event(&mut alice_events).await,
        Event::LocalInvitationAccepted {
            call_id: call_id.clone(),
            response: "on my way".into(),
            device: "bob-device".into()
        }
    );
    assert_eq!(invitation.state(), L::AcceptedByRemote);
    assert_eq!(invitation.response(), "on my way");
    assert!(invitation.is_call_live());

    invitation.hang_up().await.unwrap();
    assert_eq!(
        next_call_event(&mut alice_events).await,
        Event::HungUp { call_id: call_id.clone(), reason: HangupReason::Hangup, by: "alice".into() }
    );
    assert!(!invitation.is_call_live());
    assert_eq!(
        next_call_event(&mut bob_events).await,
        Event::RemoteInvitationAccepted { call_id: call_id.clone() }
    );
    assert_eq!(
        next_call_event(&mut bob_events).await,
        Event::HungUp { call_id, reason: HangupReason::Hangup, by: "alice".into() }
    );
    assert_eq!(local_error(invitation.hang_up()).code(), "ALREADY_END");
    server.shutdown().await;
}

#[tokio::test]
async fn a_local_invitation_refused_by_the_callee() {
    let server = start_server(server_config()).await;
    let (alice, mut alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    let invitation = alice.create_local_invitation("bob").unwrap();
    invitation.send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    let remote = bob.remote_invitation(&call_id).unwrap();
    remote.set_response("busy").unwrap();
    remote.refuse().await.unwrap();
    wait_for(&mut alice_events, "refused", |e| {
        *e == Event::LocalInvitationRefused { call_id: call_id.clone(), response: "busy".into() }
    })
    .await;
    assert_eq!(invitation.state(), L::RefusedByRemote);
    assert_eq!(invitation.response(), "busy");
    assert_eq!(local_error(invitation.cancel()).code(), "ALREADY_END");
    assert_eq!(local_error(invitation.hang_up()).code(), "ALREADY_END");
    server.shutdown().await;
}

#[tokio::test]
async fn a_local_invitation_canceled_by_the_caller() {
    let server = start_server(server_config()).await;
    let (alice, mut alice_events) = connect(&server.url(), "alice").await;
    let (_bob, mut bob_events) = connect(&server.url(), "bob").await;
    let invitation = alice.create_local_invitation("bob").unwrap();
    invitation.send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    invitation.cancel().await.unwrap();
    assert_eq!(invitation.state(), L::Canceled);
    wait_for(&mut alice_events, "canceled", |e| {
        *e == Event::LocalInvitationCanceled { call_id: call_id.clone() }
    })
    .await;
    assert_eq!(local_error(invitation.cancel()).code(), "ALREADY_END");
    assert_eq!(local_error(invitation.send()).code(), "ALREADY_SENT");
    server.shutdown().await;
}

#[tokio::test]
async fn a_local_invitation_fails_when_the_callee_stays_offline_or_nobody_answers() {
    let config = softphone_core::server::ServerConfig {
        offline_grace: Duration::from_millis(300),
        invite_ttl: Duration::from_millis(600),
        ..server_config()
    };
    let server = start_server(config).await;
    let (alice, mut alice_events) = connect(&server.url(), "alice").await;
    let (_bob, mut bob_events) = connect(&server.url(), "bob").await;

    let offline = alice.create_local_invitation("nobody").unwrap();
    offline.send().await.unwrap();
    let event =
        wait_for(&mut alice_events, "failure", |e| matches!(e, Event::LocalInvitationFailure { .. })).await;
    assert_eq!(
        event,
        Event::LocalInvitationFailure {
            call_id: offline.call_id().into(),
            reason: FailureReason::PeerOffline
        }
    );
    assert_eq!(offline.state(), L::Failure);

    let unanswered = alice.create_local_invitation("bob").unwrap();
    unanswered.send().await.unwrap();
    let call_id = unanswered.call_id().to_owned();
    wait_for(&mut alice_events, "expiry", |e| {
        *e == Event::LocalInvitationFailure { call_id: call_id.clone(), reason: FailureReason::Expired }
    })
    .await;
    assert_eq!(unanswered.state(), L::Failure);
    assert_eq!(local_error(unanswered.cancel()).code(), "ALREADY_END");
    wait_for(&mut bob_events, "the callee's expiry", |e| {
        *e == Event::RemoteInvitationFailure { call_id: call_id.clone(), reason: FailureReason::Expired }
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn local_rule_errors_are_immediate_and_change_nothing() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;

    // Bad arguments.
    for bad in ["", "has space", &"x".repeat(65)] {
        assert_eq!(alice.create_local_invitation(bad).unwrap_err().code(), "INVALID_ARGUMENT");
    }
    assert_eq!(alice.create_local_invitation("alice").unwrap_err().code(), "INVALID_ARGUMENT");
    let invitation = alice.create_local_invitation("bob").unwrap();
    invitation.set_content("kept").unwrap();
    assert_eq!(invitation.set_content("x".repeat(8193)).unwrap_err().code(), "INVALID_ARGUMENT");
    assert_eq!(invitation.set_channel_id("c".repeat(65)).unwrap_err().code(), "INVALID_ARGUMENT");
    assert_eq!(invitation.content(), "kept");
    invitation.set_content("y".repeat(8192)).unwrap();

    // Out of order.
    assert_eq!(local_error(invitation.cancel()).code(), "NOT_STARTED");
    assert_eq!(local_error(invitation.hang_up()).code(), "NOT_STARTED");
    assert_eq!(invitation.state(), L::Idle);
    let sending = invitation.send();
    assert_eq!(local_error(invitation.send()).code(), "ALREADY_SENT");
    sending.await.unwrap();
    assert_eq!(local_error(invitation.send()).code(), "ALREADY_SENT");
    assert_eq!(invitation.set_content("late").unwrap_err().code(), "ALREADY_SENT");
    assert_eq!(local_error(invitation.hang_up()).code(), "NOT_STARTED");

    // After accept.
    let call_id = next_invitation(&mut bob_events).await;
    bob.remote_invitation(&call_id).unwrap().accept().await.unwrap();
    let accepted = alice.local_invitation(&call_id).unwrap();
    let mut alice_events = _alice_events;
    wait_for(&mut alice_events, "accepted", |e| matches!(e, Event::LocalInvitationAccepted { .. })).await;
    assert_eq!(local_error(accepted.cancel()).code(), "ALREADY_ACCEPT");
    let hanging = accepted.hang_up();
    assert_eq!(local_error(accepted.hang_up()).code(), "ALREADY_END");
    hanging.await.unwrap();
    assert_eq!(local_error(alice.hang_up("no-such-call")).code(), "INVALID_ARGUMENT");
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_refusal_is_typed_and_leaves_the_invitation_idle() {
    let config = softphone_core::server::ServerConfig { max_calls_per_peer: 1, ..server_config() };
    let server = start_server(config).await;
    let (alice, _events) = connect(&server.url(), "alice").await;
    let first = alice.create_local_invitation("bob").unwrap();
    first.send().await.unwrap();
    let second = alice.create_local_invitation("carol").unwrap();
    match second.send().await {
        Err(Error::Server(e)) => assert_eq!(e.code, softphone_core::protocol::ErrorCode::TooManyCalls),
        other => panic!("{other:?}"),
    }
    assert_eq!(second.state(), L::Idle);
    first.cancel().await.unwrap();
    second.send().await.unwrap();
    assert_eq!(second.state(), L::SentToRemote);
    server.shutdown().await;
}
