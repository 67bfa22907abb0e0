//! The callee's side: every state of a `RemoteInvitation` and every local
//! error, several devices of one peer, stale events, and presence.

use crate::support::*;
use futures_util::FutureExt;
use softphone_core::sdk::{CancelReason, Error, Event, FailureReason, RemoteInvitationState as R};
use std::time::Duration;

fn local_error<T: std::fmt::Debug>(reply: softphone_core::sdk::Reply<T>) -> Error {
    match reply.now_or_never() {
        Some(Err(e)) if e.is_local_rule() => e,
        other => panic!("expected an immediate local error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_remote_invitation_goes_received_accept_sent_accepted() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    let remote = bob.remote_invitation(&call_id).unwrap();
    assert_eq!(remote.state(), R::InvitationReceived);
    assert_eq!(remote.caller_id(), "alice");

    let accepting = remote.accept();
    assert_eq!(remote.state(), R::AcceptSentToLocal);
    assert_eq!(local_error(remote.accept()).code(), "ALREADY_ACCEPT");
    assert_eq!(local_error(remote.refuse()).code(), "ALREADY_ACCEPT");
    assert_eq!(remote.set_response("late").unwrap_err().code(), "ALREADY_ACCEPT");
    accepting.await.unwrap();
    assert_eq!(remote.state(), R::Accepted);
    assert_eq!(
        next_call_event(&mut bob_events).await,
        Event::RemoteInvitationAccepted { call_id: call_id.clone() }
    );
    assert_eq!(local_error(remote.accept()).code(), "ALREADY_ACCEPT");
    remote.hang_up().await.unwrap();
    assert_eq!(local_error(remote.hang_up()).code(), "ALREADY_END");
    server.shutdown().await;
}

#[tokio::test]
async fn a_remote_invitation_refused() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    let remote = bob.remote_invitation(&call_id).unwrap();
    assert_eq!(local_error(remote.hang_up()).code(), "NOT_STARTED");
    let refusing = remote.refuse();
    assert_eq!(local_error(remote.refuse()).code(), "ALREADY_END");
    assert_eq!(local_error(remote.accept()).code(), "ALREADY_END");
    refusing.await.unwrap();
    assert_eq!(remote.state(), R::Refused);
    assert_eq!(next_call_event(&mut bob_events).await, Event::RemoteInvitationRefused { call_id });
    assert_eq!(local_error(remote.accept()).code(), "ALREADY_END");
    assert_eq!(local_error(remote.hang_up()).code(), "ALREADY_END");
    server.shutdown().await;
}

#[tokio::test]
async fn a_remote_invitation_canceled_by_the_caller_cannot_be_answered() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    let invitation = alice.create_local_invitation("bob").unwrap();
    invitation.send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    invitation.cancel().await.unwrap();
    assert_eq!(
        next_call_event(&mut bob_events).await,
        Event::RemoteInvitationCanceled { call_id: call_id.clone(), reason: CancelReason::CallerCanceled }
    );
    let remote = bob.remote_invitation(&call_id).unwrap();
    assert_eq!(remote.state(), R::Canceled);
    assert_eq!(local_error(remote.accept()).code(), "ALREADY_END");
    assert_eq!(local_error(remote.refuse()).code(), "ALREADY_END");
    assert_eq!(remote.set_response("x").unwrap_err().code(), "ALREADY_END");
    server.shutdown().await;
}

#[tokio::test]
async fn a_remote_invitation_expires() {
    let config =
        softphone_core::server::ServerConfig { invite_ttl: Duration::from_millis(300), ..server_config() };
    let server = start_server(config).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    let call_id = next_invitation(&mut bob_events).await;
    assert_eq!(
        next_call_event(&mut bob_events).await,
        Event::RemoteInvitationFailure { call_id: call_id.clone(), reason: FailureReason::Expired }
    );
    let remote = bob.remote_invitation(&call_id).unwrap();
    assert_eq!(remote.state(), R::Failure);
    assert_eq!(local_error(remote.accept()).code(), "ALREADY_END");
    server.shutdown().await;
}

#[tokio::test]
async fn responses_over_the_limit_are_refused_locally() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    let remote = bob.remote_invitation(&next_invitation(&mut bob_events).await).unwrap();
    remote.set_response("fine").unwrap();
    assert_eq!(remote.set_response("é".repeat(4097)).unwrap_err().code(), "INVALID_ARGUMENT");
    assert_eq!(remote.response(), "fine");
    assert_eq!(remote.state(), R::InvitationReceived);
    server.shutdown().await;
}

#[tokio::test]
async fn other_devices_hear_answered_or_refused_elsewhere_and_drop_stale_events() {
    let server = start_server(server_config()).await;
    let (alice, _alice_events) = connect(&server.url(), "alice").await;
    let (alice_phone, mut phone_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&server.url(), "bob").await;
    let (bob_tablet, mut tablet_events) = connect(&server.url(), "bob").await;
    phone_events_subscribe(&alice_phone).await;

    // Answered on one device: canceled (answered_elsewhere) on the other.
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    let first = next_invitation(&mut bob_events).await;
    assert_eq!(next_invitation(&mut tablet_events).await, first);
    bob.remote_invitation(&first).unwrap().accept().await.unwrap();
    assert_eq!(
        next_call_event(&mut tablet_events).await,
        Event::RemoteInvitationCanceled { call_id: first.clone(), reason: CancelReason::AnsweredElsewhere }
    );
    assert_eq!(bob_tablet.remote_invitation(&first).unwrap().state(), R::Canceled);

    // Refused on one device: canceled (refused_elsewhere) on the other.
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    let second = next_invitation(&mut tablet_events).await;
    bob_tablet.remote_invitation(&second).unwrap().refuse().await.unwrap();
    wait_for(
        &mut bob_events,
        "the second invitation",
        |e| matches!(e, Event::RemoteInvitationReceived { call_id, .. } if *call_id == second),
    )
    .await;
    wait_for(&mut bob_events, "refused elsewhere", |e| {
        *e == Event::RemoteInvitationCanceled {
            call_id: second.clone(),
            reason: CancelReason::RefusedElsewhere,
        }
    })
    .await;

    // Alice's phone heard received_by_peer, accepted and refused for calls
    // it never placed: all dropped, so the first thing it reports is the
    // presence change that comes after them.
    let (_zed, _zed_events) = connect(&server.url(), "zed").await;
    let event = wait_for(&mut phone_events, "an event", |e| !matches!(e, Event::Connection { .. })).await;
    assert_eq!(event, Event::Presence { peer_id: "zed".into(), online: true });
    server.shutdown().await;
}

async fn phone_events_subscribe(client: &softphone_core::sdk::Client) {
    let online = client.subscribe_presence(&["zed"]).await.unwrap();
    assert_eq!(online.get("zed"), Some(&false));
}

#[tokio::test]
async fn presence_query_subscribe_and_unsubscribe() {
    let server = start_server(server_config()).await;
    let (alice, mut events) = connect(&server.url(), "alice").await;
    let (_bob, _bob_events) = connect(&server.url(), "bob").await;
    let online = alice.query_presence(&["bob", "carol"]).await.unwrap();
    assert_eq!((online["bob"], online["carol"]), (true, false));

    alice.subscribe_presence(&["carol", "dave"]).await.unwrap();
    let (carol, _carol_events) = connect(&server.url(), "carol").await;
    assert_eq!(
        wait_for(&mut events, "presence", |e| matches!(e, Event::Presence { .. })).await,
        Event::Presence { peer_id: "carol".into(), online: true }
    );
    alice.unsubscribe_presence(&["carol"]).await.unwrap();
    carol.logout().await.unwrap();
    let (_dave, _dave_events) = connect(&server.url(), "dave").await;
    // Carol's going offline is not reported; Dave's coming online is next.
    assert_eq!(
        wait_for(&mut events, "presence", |e| matches!(e, Event::Presence { .. })).await,
        Event::Presence { peer_id: "dave".into(), online: true }
    );

    // Bad input is refused locally and changes nothing.
    let too_many: Vec<String> = (0..513).map(|i| format!("p{i}")).collect();
    assert_eq!(local_error(alice.subscribe_presence(&too_many)).code(), "INVALID_ARGUMENT");
    assert_eq!(local_error(alice.query_presence(&["bad id"])).code(), "INVALID_ARGUMENT");
    server.shutdown().await;
}
