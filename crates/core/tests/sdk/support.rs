//! Helpers shared by the SDK tests: servers with short timers, clients with
//! a short backoff, and waiting for events (never for time).

use softphone_core::sdk::{Backoff, Client, ClientConfig, ConnectionState, Event, Events};
use softphone_core::server;
use std::time::Duration;

pub use crate::servers::{WAIT, start_server};

/// Server timers short enough for tests, long enough to never race them.
pub fn server_config() -> server::ServerConfig {
    server::ServerConfig {
        invite_ttl: Duration::from_secs(30),
        ack_timeout: Duration::from_secs(30),
        offline_grace: Duration::from_secs(30),
        ..server::ServerConfig::default()
    }
}

/// A client configuration with a quick backoff.
pub fn client_config(url: &str, peer: &str) -> ClientConfig {
    let mut config = ClientConfig::new(url, peer);
    config.device = format!("{peer}-device");
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.5,
    };
    config.request_timeout = Duration::from_secs(10);
    config.connect_timeout = Duration::from_secs(5);
    config
}

pub async fn connect(url: &str, peer: &str) -> (Client, Events) {
    Client::connect(client_config(url, peer)).await.unwrap_or_else(|e| panic!("{peer} cannot connect: {e}"))
}

/// The next event of any kind.
pub async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within the test's patience")
        .expect("the event stream ended")
}

/// The next event about a call (connection and presence events skipped).
pub async fn next_call_event(events: &mut Events) -> Event {
    loop {
        let event = next_event(events).await;
        if event.call_id().is_some() {
            return event;
        }
    }
}

/// Skips events until one matches; returns it.
pub async fn wait_for(events: &mut Events, what: &str, matches: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within the test's patience"))
            .unwrap_or_else(|| panic!("the stream ended before {what}"));
        if matches(&event) {
            return event;
        }
    }
}

/// Waits for the connection to reach a state named `state` (`connected`, ...).
pub async fn wait_connection(events: &mut Events, state: &str) -> Event {
    wait_for(events, state, |e| matches!(e, Event::Connection { state: s, .. } if s.as_str() == state)).await
}

/// Whether an event says the client is logged in.
pub fn is_connected(event: &Event) -> bool {
    matches!(event, Event::Connection { state: ConnectionState::Connected { .. }, .. })
}

/// The call id of the next `RemoteInvitationReceived`.
pub async fn next_invitation(events: &mut Events) -> String {
    match next_call_event(events).await {
        Event::RemoteInvitationReceived { call_id, .. } => call_id,
        other => panic!("expected an invitation, got {other:?}"),
    }
}
