//! Closing the app with calls under way, through a real server: a real
//! SIGTERM to this process reaches the app's signal stream, and closing
//! hangs up the call up (the other side hears `hangup` at once, not after
//! the server's 30 s grace) and refuses the one ringing; both are in the
//! history. (The binary itself cannot be run here: it needs a display.)

use super::end_to_end::{Driver, WAIT, next_event, sdk_peer, signed_in_to};
use futures_util::{FutureExt, StreamExt};
use softphone_app::call_history::{History, Outcome};
use softphone_app::{Message, incoming, signals};
use softphone_core::sdk::{Event, HangupReason};

/// Sends `signal` to this very process, as `kill` from a shell would.
fn kill_self(signal: &str) {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("kill").args([signal, &pid]).status().expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_hangs_up_the_call_at_once_and_records_it() {
    let server = crate::servers::start_server(softphone_core::server::ServerConfig::default()).await;
    let url = server.url();
    let mut alice = Driver::start("alice", signed_in_to(&url, "alice"));
    alice.until_dial().await;
    let (bob, mut bob_events) = sdk_peer(&url, "bob").await;
    let invitation = bob.create_local_invitation("alice").unwrap();
    invitation.send().await.unwrap();
    alice.until_ringing().await;
    alice.send(Message::Incoming(incoming::Message::Accept));
    alice.until_in_call().await;
    next_event(&mut bob_events, |e| matches!(e, Event::LocalInvitationAccepted { .. }).then_some(())).await;

    // The app's signal stream, as its subscription runs it: the first poll
    // installs the handlers (so the signal no longer ends the process).
    let mut requests = Box::pin(signals::close_requests());
    assert!(requests.next().now_or_never().is_none(), "no signal yet");
    kill_self("-TERM");
    let request = tokio::time::timeout(WAIT, requests.next()).await.expect("the signal arrives").unwrap();
    assert!(matches!(request, Message::CloseRequested));
    alice.send(request);
    alice.drain().await;

    let (reason, by) = next_event(&mut bob_events, |e| match e {
        Event::HungUp { reason, by, .. } => Some((*reason, by.clone())),
        _ => None,
    })
    .await;
    assert_eq!((reason, by.as_str()), (HangupReason::Hangup, "alice"));
    let (history, _) = History::load(&alice.history_file());
    let [call] = history.records() else { panic!("{:?}", history.records()) };
    assert_eq!((call.peer.as_str(), call.outcome, call.detail.as_str()), ("bob", Outcome::Answered, ""));
}

#[tokio::test]
async fn closing_refuses_the_ringing_call_and_records_it() {
    let server = crate::servers::start_server(softphone_core::server::ServerConfig::default()).await;
    let url = server.url();
    let mut alice = Driver::start("alice", signed_in_to(&url, "alice"));
    alice.until_dial().await;
    let (carol, mut carol_events) = sdk_peer(&url, "carol").await;
    let invitation = carol.create_local_invitation("alice").unwrap();
    invitation.send().await.unwrap();
    alice.until_ringing().await;

    alice.send(Message::CloseRequested);
    alice.drain().await;
    assert_eq!(alice.app.tone(), None);
    next_event(&mut carol_events, |e| matches!(e, Event::LocalInvitationRefused { .. }).then_some(())).await;
    let (history, _) = History::load(&alice.history_file());
    let [call] = history.records() else { panic!("{:?}", history.records()) };
    assert_eq!(
        (call.peer.as_str(), call.outcome, call.detail.as_str()),
        ("carol", Outcome::Missed, "the app was closed")
    );
}
