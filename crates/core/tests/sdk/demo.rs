//! The demo peers, with short timings: `echo` answers then hangs up, `busy`
//! refuses with `busy`, `noanswer` lets the invitation expire; with a
//! secret they mint their own tokens.

use crate::support::*;
use softphone_core::demo::{self, Timing};
use softphone_core::sdk::{Event, FailureReason, HangupReason};
use std::time::Duration;

fn quick() -> Timing {
    Timing {
        echo_answer_after: Duration::from_millis(100),
        echo_hang_up_after: Duration::from_millis(200),
        busy_refuse_after: Duration::from_millis(50),
    }
}

/// Places a call and returns its id.
async fn call(client: &softphone_core::sdk::Client, callee: &str) -> String {
    let invitation = client.create_local_invitation(callee).unwrap();
    invitation.send().await.unwrap();
    invitation.call_id().to_owned()
}

#[tokio::test]
async fn each_demo_peer_shows_its_outcome() {
    let config =
        softphone_core::server::ServerConfig { invite_ttl: Duration::from_millis(500), ..server_config() };
    let server = start_server(config).await;
    let demo = demo::spawn(&server.url(), None, quick()).unwrap();
    demo.ready().await.unwrap();
    let (alice, mut events) = connect(&server.url(), "alice").await;

    let echo = call(&alice, "echo").await;
    assert_eq!(
        next_call_event(&mut events).await,
        Event::LocalInvitationReceivedByPeer { call_id: echo.clone() }
    );
    assert_eq!(
        next_call_event(&mut events).await,
        Event::LocalInvitationAccepted {
            call_id: echo.clone(),
            response: "echo".into(),
            device: "demo".into()
        }
    );
    assert_eq!(
        next_call_event(&mut events).await,
        Event::HungUp { call_id: echo, reason: HangupReason::Hangup, by: "echo".into() }
    );

    let busy = call(&alice, "busy").await;
    assert_eq!(
        next_call_event(&mut events).await,
        Event::LocalInvitationReceivedByPeer { call_id: busy.clone() }
    );
    assert_eq!(
        next_call_event(&mut events).await,
        Event::LocalInvitationRefused { call_id: busy, response: "busy".into() }
    );

    let noanswer = call(&alice, "noanswer").await;
    assert_eq!(
        next_call_event(&mut events).await,
        Event::LocalInvitationReceivedByPeer { call_id: noanswer.clone() }
    );
    assert_eq!(
        next_call_event(&mut events).await,
        Event::LocalInvitationFailure { call_id: noanswer, reason: FailureReason::Expired }
    );
    demo.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn with_a_secret_the_demo_peers_mint_their_own_tokens() {
    let secret = b"demo-secret".to_vec();
    let config = softphone_core::server::ServerConfig { secret: Some(secret.clone()), ..server_config() };
    let server = start_server(config).await;
    let demo = demo::spawn(&server.url(), Some(secret.clone()), quick()).unwrap();
    demo.ready().await.unwrap();
    let mut config = client_config(&server.url(), "alice");
    config.token = softphone_core::token::mint(&secret, "alice", softphone_core::clock::unix_secs() + 60);
    let (alice, _events) = softphone_core::sdk::Client::connect(config).await.unwrap();
    let online = alice.query_presence(&["echo", "busy", "noanswer"]).await.unwrap();
    assert!(online.values().all(|o| *o), "{online:?}");
    demo.shutdown().await;
    server.shutdown().await;
}
