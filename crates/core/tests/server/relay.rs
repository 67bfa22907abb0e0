//! The media relay (additive, `docs/relay.md`): credentials handed out at
//! accept, `media_key` passed through, payloads carried by real
//! [`RelayLink`]s over UDP and over the WebSocket fallback, and everything
//! the relay must drop (forged, third-party, other-device, after hang-up,
//! oversize, flood), counted; relay state ends with the call and the server.

use super::client::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use softphone_core::protocol::MediaInfo;
use softphone_core::protocol::relay::udp::{LegKeys, UDP_DATA_HEADER_BYTES, UdpToRelay};
use softphone_core::relay_link::{LinkOptions, RelayLink, RelayLinkError, Transport};
use softphone_core::server::{
    MediaListen, Relay, RelayConfig, RelayLimits, RelayStats, ServerConfig, ServerHandle,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// A server whose relay listens on a free UDP port of its own.
async fn start_relay(limits: RelayLimits) -> ServerHandle {
    let listen = MediaListen::At("127.0.0.1:0".parse().unwrap());
    let media = RelayConfig { listen, limits, ..Default::default() };
    start_server(ServerConfig { media, ..Default::default() }).await
}

fn key(byte: u8) -> String {
    URL_SAFE_NO_PAD.encode([byte; 32])
}

fn media_of(v: &Value) -> MediaInfo {
    serde_json::from_value(v["media"].clone()).unwrap_or_else(|e| panic!("a media object ({e}) in {v}"))
}

/// An accepted call `c1` from alice to bob: both clients and both `media` objects.
struct Call {
    alice: Client,
    bob: Client,
    alice_media: MediaInfo,
    bob_media: MediaInfo,
}

async fn accepted_call(url: &str) -> Call {
    let mut alice = Client::login(url, "alice").await;
    let mut bob = Client::login(url, "bob").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "media_key": key(1)})).await;
    let invitation = expect_invitation(&mut bob, "c1", "alice").await;
    assert_eq!(invitation["media_key"], json!(key(1)), "the caller's key reaches the callee: {invitation}");
    let ok = bob.ok(json!({"type": "accept", "call_id": "c1", "media_key": key(2)})).await;
    let accepted = alice.recv_until("accepted").await;
    assert_eq!(accepted["media_key"], json!(key(2)), "the callee's key reaches the caller: {accepted}");
    Call { alice, bob, alice_media: media_of(&accepted), bob_media: media_of(&ok) }
}

fn stats(server: &ServerHandle) -> RelayStats {
    server.relay().expect("the server runs a relay").stats()
}

async fn links(
    server: &ServerHandle,
    call: &Call,
    alice: &LinkOptions,
    bob: &LinkOptions,
) -> (RelayLink, RelayLink) {
    let url = server.url();
    let a = RelayLink::connect_with(&call.alice_media, &url, alice).await.expect("alice's link");
    let b = RelayLink::connect_with(&call.bob_media, &url, bob).await.expect("bob's link");
    (a, b)
}

async fn recv(link: &mut RelayLink) -> Vec<u8> {
    tokio::time::timeout(WAIT, link.recv()).await.expect("a payload within the wait").expect("the link works")
}

/// Asserts that nothing reaches `link` for a while.
async fn nothing_for(link: &mut RelayLink) {
    if let Ok(got) = tokio::time::timeout(QUIET, link.recv()).await {
        panic!("expected nothing, got {got:?}");
    }
}

/// Sends both ways and checks each side gets exactly what the other sent.
async fn both_ways(a: &mut RelayLink, b: &mut RelayLink) {
    for i in 0..5u8 {
        a.send(&[b'a', i]).await.expect("alice sends");
        assert_eq!(recv(b).await, vec![b'a', i]);
        b.send(&[b'b', i, 0xff]).await.expect("bob sends");
        assert_eq!(recv(a).await, vec![b'b', i, 0xff]);
    }
}

#[tokio::test]
async fn accept_hands_each_side_its_own_credential() {
    let server = start_relay(RelayLimits::default()).await;
    let call = accepted_call(&server.url()).await;
    let relay = server.relay().expect("a relay");
    for m in [&call.alice_media, &call.bob_media] {
        assert_eq!(m.relay.as_deref(), Some(relay.udp_url()));
        assert_eq!(m.ws, "/media");
        assert!(m.credential_bytes().is_some(), "16 bytes of base64url: {m:?}");
    }
    assert_ne!(call.alice_media.credential, call.bob_media.credential);
    assert_eq!(stats(&server).live_calls, 1);
}

#[tokio::test]
async fn a_bad_media_key_is_invalid_argument_and_changes_nothing() {
    let server = start_relay(RelayLimits::default()).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let short = URL_SAFE_NO_PAD.encode([0u8; 31]);
    let e = alice
        .error(
            json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "media_key": short}),
            "invalid_argument",
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("media_key"), "{e}");
    bob.expect_silence(QUIET).await;
    // The id is still free: the bad invite left no call behind.
    invite(&mut alice, "c1", "bob").await;
    let inv = expect_invitation(&mut bob, "c1", "alice").await;
    assert!(inv.get("media_key").is_none(), "no key sent, none passed on: {inv}");
    let e =
        bob.error(json!({"type": "accept", "call_id": "c1", "media_key": "!!"}), "invalid_argument").await;
    assert!(e["message"].as_str().unwrap().contains("media_key"), "{e}");
    // Still ringing: a good accept works, and a client without keys gets no key fields.
    let ok = bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    assert!(ok.get("media").is_some(), "{ok}");
    let accepted = alice.recv_until("accepted").await;
    assert!(accepted.get("media_key").is_none(), "{accepted}");
}

#[tokio::test]
async fn without_a_relay_nothing_about_media_is_sent_and_media_is_not_served() {
    let media = RelayConfig { listen: MediaListen::Off, ..Default::default() };
    let server = start_server(ServerConfig { media, ..Default::default() }).await;
    assert!(server.relay().is_none());
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    let ok = bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    assert!(ok.get("media").is_none(), "{ok}");
    let accepted = alice.recv_until("accepted").await;
    assert!(accepted.get("media").is_none(), "{accepted}");
    let media_url = format!("ws://{}/media", server.addr());
    assert!(Client::try_connect(&media_url).await.is_err(), "/media is refused without a relay");
}

#[tokio::test]
async fn by_default_the_relay_takes_the_websocket_port_number() {
    let server = start_default().await;
    let relay = server.relay().expect("a relay by default (unless that UDP port is taken)");
    assert_eq!(relay.udp_url(), format!("udp://{}", server.addr()));
}

#[tokio::test]
async fn payloads_pass_both_ways_over_udp() {
    let server = start_relay(RelayLimits::default()).await;
    let call = accepted_call(&server.url()).await;
    let options = LinkOptions::default();
    let (mut a, mut b) = links(&server, &call, &options, &options).await;
    assert_eq!((a.transport(), b.transport()), (Transport::Udp, Transport::Udp));
    both_ways(&mut a, &mut b).await;
    let s = stats(&server);
    assert_eq!(s.forwarded, 10, "{s:?}");
    assert_eq!(s.dropped(), 0, "{s:?}");
    // A keepalive is a bind request: challenged, answered and bound inside
    // recv (the "probe answered"), nothing forwarded.
    a.keepalive().await.expect("keepalive");
    nothing_for(&mut b).await;
    nothing_for(&mut a).await;
    let after = stats(&server);
    assert_eq!((after.probes_answered, after.forwarded), (s.probes_answered + 1, 10), "{after:?}");
    both_ways(&mut a, &mut b).await;
}

#[tokio::test]
async fn a_client_whose_udp_goes_nowhere_falls_back_to_websocket() {
    let server = start_relay(RelayLimits::default()).await;
    let call = accepted_call(&server.url()).await;
    // A bound socket nobody reads: datagrams to it vanish without an ICMP error.
    let blackhole = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let lost = LinkOptions { udp_override: Some(blackhole.local_addr().unwrap()), ..Default::default() };
    let (mut a, mut b) = links(&server, &call, &lost, &LinkOptions::default()).await;
    assert_eq!((a.transport(), b.transport()), (Transport::WebSocket, Transport::Udp));
    both_ways(&mut a, &mut b).await;
}

#[tokio::test]
async fn both_sides_on_websocket_talk_too() {
    let server = start_relay(RelayLimits::default()).await;
    let call = accepted_call(&server.url()).await;
    let ws = LinkOptions { force_websocket: true, ..Default::default() };
    let (mut a, mut b) = links(&server, &call, &ws, &ws).await;
    assert_eq!((a.transport(), b.transport()), (Transport::WebSocket, Transport::WebSocket));
    both_ways(&mut a, &mut b).await;
    assert_eq!(stats(&server).forwarded, 10);
    b.keepalive().await.expect("keepalive over WebSocket");
    both_ways(&mut a, &mut b).await;
    assert_eq!(stats(&server).probes_answered, 3, "two binding probes and the keepalive");
}

#[tokio::test]
async fn forged_third_party_and_other_device_packets_are_dropped_and_counted() {
    let server = start_relay(RelayLimits::default()).await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let (mut bob, _) = Client::login_device(&url, "bob", "phone").await;
    let (mut bob_laptop, _) = Client::login_device(&url, "bob", "laptop").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    expect_invitation(&mut bob_laptop, "c1", "alice").await;
    let ok = bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    let accepted = alice.recv_until("accepted").await;
    let elsewhere = bob_laptop.recv_until("canceled").await;
    assert!(
        elsewhere.get("media").is_none(),
        "the device that did not answer gets no credential: {elsewhere}"
    );
    let call = Call { alice, bob, alice_media: media_of(&accepted), bob_media: media_of(&ok) };
    let options = LinkOptions::default();
    let (mut a, mut b) = links(&server, &call, &options, &options).await;
    let relay_addr = server
        .relay()
        .unwrap()
        .udp_url()
        .trim_start_matches("udp://")
        .parse::<std::net::SocketAddr>()
        .unwrap();

    // A third party (or the laptop) with made-up credentials, and junk.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for guess in [[0u8; 16], [0xab; 16]] {
        let leg = LegKeys::derive(&guess);
        stranger
            .send_to(&UdpToRelay::Data { leg: leg.id, payload: b"spoof" }.encode(), relay_addr)
            .await
            .unwrap();
        stranger.send_to(&leg.bind([1; 8]), relay_addr).await.unwrap();
    }
    stranger.send_to(b"junk", relay_addr).await.unwrap();
    // A WebSocket stranger: it connects but never gets its probe answered.
    let forged = MediaInfo { credential: URL_SAFE_NO_PAD.encode([0x5a; 16]), ..call.bob_media.clone() };
    let ws = LinkOptions { force_websocket: true, ..Default::default() };
    let refused =
        RelayLink::connect_with(&forged, &url, &ws).await.err().expect("a forged credential is refused");
    assert!(matches!(refused, RelayLinkError::Unreachable(_)), "{refused}");

    nothing_for(&mut a).await;
    nothing_for(&mut b).await;
    let mut no_answer = [0u8; 64];
    assert!(
        tokio::time::timeout(QUIET, stranger.recv(&mut no_answer)).await.is_err(),
        "strangers get no answer"
    );
    let s = stats(&server);
    assert_eq!(s.unknown_credential, 5, "{s:?}");
    assert_eq!(s.malformed, 1, "{s:?}");
    assert_eq!(s.forwarded, 0, "{s:?}");
    // The participants are unaffected.
    both_ways(&mut a, &mut b).await;
}

#[tokio::test]
async fn after_hang_up_packets_are_dropped_and_the_call_is_forgotten() {
    let server = start_relay(RelayLimits::default()).await;
    let mut call = accepted_call(&server.url()).await;
    let ws = LinkOptions { force_websocket: true, ..Default::default() };
    let (mut a, mut b) = links(&server, &call, &LinkOptions::default(), &ws).await;
    both_ways(&mut a, &mut b).await;
    call.alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    call.bob.recv_until("hung_up").await;
    assert_eq!(stats(&server).live_calls, 0);
    // Bob's /media connection is closed with the call.
    let closed = tokio::time::timeout(WAIT, b.recv()).await.expect("closed within the wait");
    assert_eq!(closed, Err(RelayLinkError::Closed));
    let before = stats(&server).unknown_credential;
    a.send(b"too late").await.unwrap();
    nothing_for(&mut a).await;
    assert_eq!(stats(&server).unknown_credential, before + 1);
}

#[tokio::test]
async fn oversize_packets_and_floods_are_dropped_never_forwarded() {
    let limits = RelayLimits { packets_per_second: 10, burst: 20, max_packet_bytes: 200 };
    let server = start_relay(limits).await;
    let call = accepted_call(&server.url()).await;
    let options = LinkOptions::default();
    let (mut a, mut b) = links(&server, &call, &options, &options).await;
    // Let the probes' tokens come back: the buckets refill at 10 per second.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fits = vec![7u8; 200 - UDP_DATA_HEADER_BYTES];
    a.send(&fits).await.unwrap();
    assert_eq!(recv(&mut b).await, fits, "a packet of exactly the limit passes");
    a.send(&[7u8; 200 - UDP_DATA_HEADER_BYTES + 1]).await.unwrap();
    nothing_for(&mut b).await;
    assert_eq!(stats(&server).oversize, 1);

    let before = stats(&server).forwarded;
    let started = std::time::Instant::now();
    for i in 0..500u32 {
        a.send(&i.to_be_bytes()).await.unwrap();
    }
    let mut received = 0u64;
    while tokio::time::timeout(QUIET, b.recv()).await.is_ok() {
        received += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let s = stats(&server);
    let forwarded = s.forwarded - before;
    assert_eq!(received, forwarded, "what the relay forwards arrives: {s:?}");
    let allowed = 20.0 + 10.0 * elapsed + 1.0;
    assert!((forwarded as f64) <= allowed, "at most the bucket passes: {forwarded} > {allowed} ({s:?})");
    assert_eq!(s.rate_limited, 500 - forwarded, "the rest is counted: {s:?}");
}

#[tokio::test]
async fn a_lost_peer_ends_the_relay_state_with_the_call() {
    let media = RelayConfig { listen: MediaListen::At("127.0.0.1:0".parse().unwrap()), ..Default::default() };
    let config = ServerConfig { offline_grace: Duration::from_millis(200), media, ..Default::default() };
    let server = start_server(config).await;
    let call = accepted_call(&server.url()).await;
    let options = LinkOptions::default();
    let (mut a, mut b) = links(&server, &call, &options, &options).await;
    both_ways(&mut a, &mut b).await;
    let Call { alice, mut bob, .. } = call;
    alice.close().await;
    check_event(&bob.recv_until("hung_up").await, json!({"reason": "peer_offline", "by": "alice"}));
    assert_eq!(stats(&server).live_calls, 0);
    let before = stats(&server).unknown_credential;
    b.send(b"anyone?").await.unwrap();
    nothing_for(&mut a).await;
    assert_eq!(stats(&server).unknown_credential, before + 1);
}

#[tokio::test]
async fn shutdown_forgets_every_call_and_releases_the_socket() {
    let server = start_relay(RelayLimits::default()).await;
    let call = accepted_call(&server.url()).await;
    let ws = LinkOptions { force_websocket: true, ..Default::default() };
    let (_a, mut b) = links(&server, &call, &LinkOptions::default(), &ws).await;
    let relay: Arc<Relay> = server.relay().unwrap();
    assert_eq!(relay.stats().live_calls, 1);
    let addr = relay.udp_url().trim_start_matches("udp://").to_owned();
    server.shutdown().await;
    assert_eq!(relay.stats().live_calls, 0);
    assert_eq!(tokio::time::timeout(WAIT, b.recv()).await.expect("closed"), Err(RelayLinkError::Closed));
    UdpSocket::bind(&addr).await.expect("the relay's port is free again after shutdown");
}

/// Starts the real binary with `args` and returns it with its signaling URL.
async fn binary(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["server", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn softphone server");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the ready line within 30 s")
        .expect("read stdout")
        .expect("a ready line");
    let addr = line.strip_prefix("listening on ws://").unwrap_or_else(|| panic!("ready line {line:?}"));
    (child, format!("ws://{addr}/"))
}

/// The `media` of the callee's accept `ok` on a server at `url` (`Value::Null` when absent).
async fn accept_media(url: &str) -> Value {
    let mut alice = Client::login(url, "alice").await;
    let mut bob = Client::login(url, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await["media"].clone()
}

#[tokio::test]
async fn the_media_flags_move_the_relay_or_turn_it_off() {
    let (_moved, url) = binary(&["--media-listen", "127.0.0.1:0"]).await;
    let media = accept_media(&url).await;
    let relay = media["relay"].as_str().unwrap_or_else(|| panic!("a relay address: {media}"));
    assert!(relay.starts_with("udp://127.0.0.1:") && !relay.ends_with(":0"), "{relay}");
    let (_off, url) = binary(&["--no-media"]).await;
    assert_eq!(accept_media(&url).await, Value::Null, "--no-media hands out no media");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["server", "--no-media", "--media-listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run softphone");
    assert_eq!(status.code(), Some(2), "the two flags conflict");
}

#[tokio::test]
async fn max_media_connections_caps_media_sockets_and_not_logins() {
    let (_server, url) = binary(&["--media-listen", "127.0.0.1:0", "--max-media-connections", "1"]).await;
    let media_url = format!("{}media", url);
    let _held = Client::connect(&media_url).await;
    assert!(Client::try_connect(&media_url).await.is_err(), "a second /media socket gets 503");
    Client::login(&url, "alice").await;
}

/// Runs `softphone server ARGS` (no `--listen` added), which must refuse to
/// start: exit status 2, no ready line. Returns its standard error.
async fn refused(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
            .arg("server")
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("softphone server {args:?} still running after 30 s"))
    .expect("run softphone server");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: exit status; stderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{args:?}: nothing listens, so no ready line");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

/// The one line of `stderr` that says why the start failed.
fn start_error(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("softphone: ")).collect();
    assert_eq!(lines.len(), 1, "one line saying what failed: {stderr}");
    lines[0]
}

#[tokio::test]
async fn an_asked_for_media_address_that_cannot_bind_is_a_start_error() {
    let held = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let taken = held.local_addr().unwrap().to_string();
    let stderr = refused(&["--listen", "127.0.0.1:0", "--media-listen", &taken]).await;
    let line = start_error(&stderr);
    assert!(line.contains(&format!("cannot bind the media relay on udp://{taken}")), "{line}");
    assert!(line.contains("--media-listen") && line.contains("--no-media"), "{line}");
}

#[tokio::test]
async fn a_default_relay_port_that_cannot_bind_is_a_start_error_and_nothing_listens() {
    // A port number free for TCP whose UDP side the test holds.
    let (held, port) = loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)).await {
            break (udp, port);
        }
    };
    let listen = format!("127.0.0.1:{port}");
    let stderr = refused(&["--listen", &listen]).await;
    let line = start_error(&stderr);
    assert!(line.contains(&format!("cannot bind the media relay on udp://{listen}")), "{line}");
    assert!(line.contains("--media-listen") && line.contains("--no-media"), "{line}");
    std::net::TcpListener::bind(&listen).expect("the signaling port was let go: nothing listens");
    drop(held);
}

#[tokio::test]
async fn the_embedded_server_runs_without_media_when_its_relay_cannot_bind() {
    let held = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let media = RelayConfig { listen: MediaListen::At(held.local_addr().unwrap()), ..Default::default() };
    let server = start_server(ServerConfig { media, ..Default::default() }).await;
    assert!(server.relay().is_none(), "no relay");
    assert_eq!(accept_media(&server.url()).await, Value::Null, "accepts carry no media; signaling works");
}
