//! Connection troubles: a server restarted on the same port, a link cut and
//! restored, requests in flight or unanswered, logins refused for good,
//! logout; and the reconnect measurement (ignored; run by hand).

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use softphone_core::sdk::{
    Backoff, CancelReason, Client, ConnectionReason, ConnectionState, Error, Event, FailureReason,
    HangupReason, LocalInvitationState, RemoteInvitationState,
};
use softphone_core::server::{self, ServerHandle};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

async fn restartable(config: server::ServerConfig) -> (ServerHandle, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (server::spawn_on(listener, config), addr)
}

/// A new server on the port the old one used.
async fn restart(addr: SocketAddr, config: server::ServerConfig) -> ServerHandle {
    let listener = TcpListener::bind(addr).await.expect("rebind the same port");
    server::spawn_on(listener, config)
}

/// The next `n` call events, as a set (their order depends on call ids).
async fn call_events(events: &mut softphone_core::sdk::Events, n: usize) -> HashSet<String> {
    let mut seen = HashSet::new();
    for _ in 0..n {
        seen.insert(format!("{:?}", next_call_event(events).await));
    }
    seen
}

#[tokio::test]
async fn after_a_server_restart_the_client_logs_in_again_renews_presence_and_ends_stale_calls() {
    let (server, addr) = restartable(server_config()).await;
    let url = format!("ws://{addr}"); // no trailing slash
    let (alice, mut alice_events) = connect(&url, "alice").await;
    let (bob, mut bob_events) = connect(&url, "bob").await;
    assert!(!alice.subscribe_presence(&["carol"]).await.unwrap()["carol"]);

    // One call ringing, one accepted.
    let ringing = alice.create_local_invitation("bob").unwrap();
    ringing.send().await.unwrap();
    let ringing_id = ringing.call_id().to_owned();
    assert_eq!(next_invitation(&mut bob_events).await, ringing_id);
    let live = alice.create_local_invitation("bob").unwrap();
    live.send().await.unwrap();
    let live_id = live.call_id().to_owned();
    assert_eq!(next_invitation(&mut bob_events).await, live_id);
    bob.remote_invitation(&live_id).unwrap().accept().await.unwrap();
    wait_for(&mut alice_events, "accepted", |e| matches!(e, Event::LocalInvitationAccepted { .. })).await;

    server.shutdown().await;
    wait_connection(&mut alice_events, "reconnecting").await;
    // While away: requests fail at once instead of waiting; rules still apply.
    assert_eq!(alice.query_presence(&["bob"]).await, Err(Error::NotConnected));
    assert_eq!(live.cancel().await.unwrap_err().code(), "ALREADY_ACCEPT");
    assert_eq!(ringing.state(), LocalInvitationState::ReceivedByRemote);

    let server = restart(addr, server_config()).await;
    wait_connection(&mut alice_events, "connected").await;
    let expected: HashSet<String> = [
        Event::LocalInvitationFailure {
            call_id: ringing_id.clone(),
            reason: FailureReason::EndedWhileDisconnected,
        },
        Event::HungUp {
            call_id: live_id.clone(),
            reason: HangupReason::EndedWhileDisconnected,
            by: String::new(),
        },
    ]
    .iter()
    .map(|e| format!("{e:?}"))
    .collect();
    assert_eq!(call_events(&mut alice_events, 2).await, expected);
    assert_eq!(ringing.state(), LocalInvitationState::Failure);
    assert!(!live.is_call_live());

    wait_for(&mut bob_events, "bob's login", is_connected).await;
    let expected: HashSet<String> = [
        Event::RemoteInvitationFailure {
            call_id: ringing_id.clone(),
            reason: FailureReason::EndedWhileDisconnected,
        },
        Event::HungUp {
            call_id: live_id.clone(),
            reason: HangupReason::EndedWhileDisconnected,
            by: String::new(),
        },
    ]
    .iter()
    .map(|e| format!("{e:?}"))
    .collect();
    assert_eq!(call_events(&mut bob_events, 2).await, expected);
    assert_eq!(bob.remote_invitation(&ringing_id).unwrap().state(), RemoteInvitationState::Failure);

    // The subscription came back with the new login.
    let (_carol, _carol_events) = connect(&url, "carol").await;
    assert_eq!(
        wait_for(&mut alice_events, "presence", |e| matches!(e, Event::Presence { .. })).await,
        Event::Presence { peer_id: "carol".into(), online: true }
    );
    // And the client works as before.
    alice.create_local_invitation("bob").unwrap().send().await.unwrap();
    next_invitation(&mut bob_events).await;
    server.shutdown().await;
}

/// A TCP relay whose links can be cut and whose door can be shut, to drop
/// one client's connection while the server keeps its state.
struct Relay {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    open: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (l, o) = (links.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !o.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the door is shut
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Relay { addr, links, open }
    }

    fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    fn cut_and_shut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn reopen(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn after_a_dropped_link_live_calls_stay_live_and_ended_ones_end() {
    let server = start_server(server_config()).await;
    let relay = Relay::start(server.addr()).await;
    let (alice, mut alice_events) = connect(&server.url(), "alice").await;
    let (bob, mut bob_events) = connect(&relay.url(), "bob").await;

    let kept = alice.create_local_invitation("bob").unwrap();
    kept.send().await.unwrap();
    let kept_id = next_invitation(&mut bob_events).await;
    let gone = alice.create_local_invitation("bob").unwrap();
    gone.send().await.unwrap();
    let gone_id = next_invitation(&mut bob_events).await;
    wait_for(&mut alice_events, "received", |e| {
        *e == Event::LocalInvitationReceivedByPeer { call_id: gone_id.clone() }
    })
    .await;

    relay.cut_and_shut();
    wait_connection(&mut bob_events, "reconnecting").await;
    gone.cancel().await.unwrap(); // the server keeps the news for bob
    relay.reopen();
    wait_connection(&mut bob_events, "connected").await;

    // The canceled call ends (with the server's reason when its kept event
    // arrives with the login reply, else as ended while disconnected).
    match next_call_event(&mut bob_events).await {
        Event::RemoteInvitationCanceled { call_id, reason: CancelReason::CallerCanceled }
        | Event::RemoteInvitationFailure { call_id, reason: FailureReason::EndedWhileDisconnected } => {
            assert_eq!(call_id, gone_id)
        }
        other => panic!("{other:?}"),
    }
    // The one still ringing is the same invitation, not announced twice, and answerable.
    let remote = bob.remote_invitation(&kept_id).unwrap();
    assert_eq!(remote.state(), RemoteInvitationState::InvitationReceived);
    remote.accept().await.unwrap();
    assert_eq!(next_call_event(&mut bob_events).await, Event::RemoteInvitationAccepted { call_id: kept_id });
    server.shutdown().await;
}

/// A fake server: answers `login`, then ignores every request, and drops
/// the connection when a request names the peer `drop-me`.
async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    let text = message.into_text().unwrap_or_default();
                    if text.contains("\"login\"") {
                        let ok = r#"{"type":"ok","req":0,"session":"s","calls":[]}"#;
                        let _ = ws.send(ok.into()).await;
                    } else if text.contains("drop-me") {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn requests_time_out_when_unanswered_and_fail_when_the_link_drops() {
    let addr = silent_server().await;
    let mut config = client_config(&format!("ws://{addr}"), "alice");
    config.request_timeout = Duration::from_millis(200);
    let (impatient, _events) = Client::connect(config).await.unwrap();
    assert_eq!(impatient.query_presence(&["bob"]).await, Err(Error::Timeout(Duration::from_millis(200))));

    let (patient, mut events) = Client::connect(client_config(&format!("ws://{addr}"), "bob")).await.unwrap();
    assert_eq!(patient.query_presence(&["drop-me"]).await, Err(Error::ConnectionLost));
    wait_connection(&mut events, "reconnecting").await;
}

#[tokio::test]
async fn a_refused_login_aborts_without_retrying() {
    let secret = b"s3cret".to_vec();
    let config = server::ServerConfig { secret: Some(secret.clone()), ..server_config() };
    let server = start_server(config).await;

    let mut bad = client_config(&server.url(), "alice");
    bad.token = "v1.1.nope".into();
    match Client::connect(bad.clone()).await {
        Err(Error::LoginRefused(e)) => assert_eq!(e.code, softphone_core::protocol::ErrorCode::InvalidToken),
        other => panic!("{other:?}"),
    }
    let (_client, mut events) = Client::start(bad).unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        Event::Connection { state: ConnectionState::Connecting { .. }, .. }
    ));
    match next_event(&mut events).await {
        Event::Connection { state: ConnectionState::Aborted, reason: ConnectionReason::LoginRefused(e) } => {
            assert_eq!(e.code, softphone_core::protocol::ErrorCode::InvalidToken)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events.recv().await, None, "no retry after a refused token");

    let mut expired = client_config(&server.url(), "alice");
    expired.token = softphone_core::token::mint(&secret, "alice", 1_000);
    match Client::connect(expired).await {
        Err(Error::LoginRefused(e)) => assert_eq!(e.code, softphone_core::protocol::ErrorCode::TokenExpired),
        other => panic!("{other:?}"),
    }
    let mut good = client_config(&server.url(), "alice");
    good.token = softphone_core::token::mint(&secret, "alice", softphone_core::clock::unix_secs() + 3600);
    Client::connect(good).await.unwrap();

    // A server that answers the handshake with 404 will not change its mind either.
    let wrong_path = client_config(&format!("ws://{}/nope", server.addr()), "alice");
    assert!(matches!(Client::connect(wrong_path).await, Err(Error::Connect(_))));
    server.shutdown().await;
}

#[tokio::test]
async fn wss_urls_go_through_rustls() {
    // The test server speaks plain ws, so the TLS handshake fails: cleanly,
    // as a failed first attempt, not as rustls' panic for want of a provider.
    let server = start_server(server_config()).await;
    let config = client_config(&format!("wss://{}", server.addr()), "alice");
    match Client::connect(config).await {
        Err(Error::Connect(why)) => assert!(!why.is_empty()),
        other => panic!("{other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_stream_and_the_client() {
    let server = start_server(server_config()).await;
    let (alice, mut events) = connect(&server.url(), "alice").await;
    alice.logout().await.unwrap();
    assert_eq!(
        wait_for(
            &mut events,
            "the end",
            |e| matches!(e, Event::Connection { state, .. } if state.is_final())
        )
        .await,
        Event::Connection { state: ConnectionState::Disconnected, reason: ConnectionReason::LoggedOut }
    );
    assert_eq!(events.recv().await, None);
    assert_eq!(alice.query_presence(&["bob"]).await, Err(Error::Stopped));
    server.shutdown().await;
}

/// The event that ends a client's stream.
async fn final_event(events: &mut softphone_core::sdk::Events) -> Event {
    wait_for(events, "the end", |e| matches!(e, Event::Connection { state, .. } if state.is_final())).await
}

const LOGGED_OUT: Event =
    Event::Connection { state: ConnectionState::Disconnected, reason: ConnectionReason::LoggedOut };

/// Longer than any test waits: a client that needs it never gets there.
const HOUR: Duration = Duration::from_secs(3600);

/// A listener that accepts connections and never answers the WebSocket handshake.
async fn mute_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[tokio::test]
async fn logout_while_reconnecting_or_connecting_ends_the_stream_at_once() {
    // Reconnecting: the server is gone and the next try is an hour away.
    let server = start_server(server_config()).await;
    let mut config = client_config(&server.url(), "alice");
    config.backoff = Backoff { initial: HOUR, max: HOUR, multiplier: 1.0, jitter: 0.0 };
    let (alice, mut events) = Client::connect(config).await.unwrap();
    server.shutdown().await;
    wait_connection(&mut events, "reconnecting").await;
    alice.logout().await.unwrap();
    assert_eq!(final_event(&mut events).await, LOGGED_OUT);
    assert_eq!(events.recv().await, None);
    assert_eq!(alice.query_presence(&["bob"]).await, Err(Error::Stopped));
    assert_eq!(alice.logout().await, Err(Error::Stopped));

    // Connecting: the handshake is never answered, and the attempt may take an hour.
    let mut config = client_config(&format!("ws://{}", mute_listener().await), "bob");
    config.connect_timeout = HOUR;
    let (bob, mut events) = Client::start(config).unwrap();
    wait_connection(&mut events, "connecting").await;
    bob.logout().await.unwrap();
    assert_eq!(final_event(&mut events).await, LOGGED_OUT);
    assert_eq!(events.recv().await, None);
}

#[tokio::test]
async fn a_logout_the_server_never_answers_still_ends_the_client() {
    let addr = silent_server().await;
    let mut config = client_config(&format!("ws://{addr}"), "alice");
    config.request_timeout = Duration::from_millis(200);
    let (alice, mut events) = Client::connect(config).await.unwrap();
    assert!(matches!(alice.logout().await, Err(Error::Timeout(_) | Error::ConnectionLost)));
    assert_eq!(final_event(&mut events).await, LOGGED_OUT);
    assert_eq!(events.recv().await, None);
}

#[tokio::test]
async fn with_several_servers_a_dropped_client_logs_in_on_the_next() {
    let first = start_server(server_config()).await;
    let second = start_server(server_config()).await;
    let mut config = client_config(&first.url(), "alice");
    config.other_urls = vec![second.url()];
    let (alice, mut events) = Client::connect(config).await.unwrap();
    let (watcher, _watcher_events) = connect(&second.url(), "watcher").await;
    assert!(!watcher.query_presence(&["alice"]).await.unwrap()["alice"], "on the first server");

    first.shutdown().await;
    wait_connection(&mut events, "reconnecting").await;
    wait_connection(&mut events, "connected").await;
    assert!(watcher.query_presence(&["alice"]).await.unwrap()["alice"], "now on the second");
    // And it works there: a call to the watcher goes through the second server.
    alice.create_local_invitation("watcher").unwrap().send().await.unwrap();
    second.shutdown().await;
}

/// How long a reconnect takes after a server restart, with the default
/// backoff. Run by hand:
/// `cargo test --release --test sdk -- --ignored --nocapture measure_reconnect`
#[tokio::test]
#[ignore]
async fn measure_reconnect() {
    let (mut server, addr) = restartable(server::ServerConfig::default()).await;
    let config = softphone_core::sdk::ClientConfig::new(format!("ws://{addr}"), "alice");
    let (_alice, mut events) = Client::connect(config).await.unwrap();
    for gap_ms in [0u64, 1_000, 3_000] {
        let (mut from_up, mut from_down) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            let down = tokio::time::Instant::now();
            server.shutdown().await;
            wait_connection(&mut events, "reconnecting").await;
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
            let up = tokio::time::Instant::now();
            server = restart(addr, server::ServerConfig::default()).await;
            wait_connection(&mut events, "connected").await;
            from_up.push(up.elapsed().as_secs_f64() * 1000.0);
            from_down.push(down.elapsed().as_secs_f64() * 1000.0);
        }
        let stats = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            format!("median {:.0} ms, max {:.0} ms", v[v.len() / 2], v[v.len() - 1])
        };
        println!(
            "server down for {gap_ms} ms: new server up -> Connected: {}; old server shutdown -> Connected: {}",
            stats(&mut from_up),
            stats(&mut from_down)
        );
    }
    server.shutdown().await;
}
