//! A relay that cannot be aimed at anyone (issue 18, items 2 and 3): on UDP
//! a route is only an address that answered the relay's challenge with the
//! leg's proof; data never moves it, the credential never travels on UDP,
//! and a route that stops answering consent checks is dropped. `/media`
//! connections must present a live credential within the bind deadline and
//! are capped apart from the signaling connections. Real sockets on
//! 127.0.0.1: a "spoofed" packet is sent from the victim's own socket, as a
//! spoofer could make it look, and the victim's socket then shows what the
//! relay sent there.

use super::client::*;
use serde_json::json;
use softphone_core::protocol::MediaInfo;
use softphone_core::protocol::relay::udp::{LegKeys, UdpControl, UdpToRelay};
use softphone_core::protocol::relay::{FromRelay, ToRelay};
use softphone_core::relay_link::{LinkOptions, RelayLink, RelayReceiver, RelaySender, Transport};
use softphone_core::server::{MediaListen, RelayConfig, RelayStats, ServerConfig, ServerHandle};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

async fn start(media: RelayConfig) -> ServerHandle {
    let media = RelayConfig { listen: MediaListen::At("127.0.0.1:0".parse().unwrap()), ..media };
    start_server(ServerConfig { media, ..Default::default() }).await
}

fn stats(server: &ServerHandle) -> RelayStats {
    server.relay().expect("a relay").stats()
}

fn relay_addr(server: &ServerHandle) -> SocketAddr {
    server.relay().expect("a relay").udp_url().trim_start_matches("udp://").parse().expect("udp://IP:PORT")
}

/// An accepted call from alice to bob: the two `media` objects, and the two
/// signaling connections (kept open, or the call would end).
async fn accepted_call(url: &str) -> (MediaInfo, MediaInfo, [Client; 2]) {
    let mut alice = Client::login(url, "alice").await;
    let mut bob = Client::login(url, "bob").await;
    invite(&mut alice, "c1", "bob").await;
    expect_invitation(&mut bob, "c1", "alice").await;
    let ok = bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    let accepted = alice.recv_until("accepted").await;
    let media = |v: &serde_json::Value| serde_json::from_value(v["media"].clone()).expect("a media object");
    (media(&accepted), media(&ok), [alice, bob])
}

/// A participant's UDP socket driven by hand, so the test sees every byte.
struct Hand {
    socket: UdpSocket,
    keys: LegKeys,
}

impl Hand {
    async fn new(info: &MediaInfo, relay: SocketAddr) -> Hand {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(relay).await.unwrap();
        Hand { socket, keys: LegKeys::derive(&info.credential_bytes().expect("a credential")) }
    }

    /// The next datagram within `d`, or `None`.
    async fn next(&self, d: Duration) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        let n = tokio::time::timeout(d, self.socket.recv(&mut buf)).await.ok()?.expect("recv");
        Some(buf[..n].to_vec())
    }

    /// Bind request, challenge, answer, bound (skipping what else comes:
    /// data, consent checks); returns the answer sent.
    async fn bind(&self) -> Vec<u8> {
        self.socket.send(&self.keys.bind([1; 8])).await.unwrap();
        let mut sent = None;
        loop {
            let packet = self.next(WAIT).await.expect("a challenge, then bound");
            match UdpControl::parse(&packet) {
                Some(UdpControl::Challenge { leg, token: [1, 1, 1, 1, 1, 1, 1, 1], cookie })
                    if sent.is_none() =>
                {
                    assert_eq!(leg, self.keys.id);
                    let answer = self.keys.answer([1; 8], cookie);
                    self.socket.send(&answer).await.unwrap();
                    sent = Some(answer);
                }
                Some(UdpControl::Bound([1, 1, 1, 1, 1, 1, 1, 1])) => {
                    return sent.expect("bound after the answer");
                }
                _ => {}
            }
        }
    }

    async fn send(&self, payload: &[u8]) {
        self.socket.send(&UdpToRelay::Data { leg: self.keys.id, payload }.encode()).await.unwrap();
    }

    /// The next data payload within the wait, skipping control packets.
    async fn data(&self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            let packet = self.next(deadline.saturating_duration_since(Instant::now())).await.expect("data");
            if let Some(FromRelay::Data(payload)) = FromRelay::parse(&packet) {
                return payload.to_vec();
            }
        }
    }
}

/// What reaches `socket` within [`QUIET`].
async fn received(socket: &UdpSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(Ok(n)) = tokio::time::timeout(QUIET, socket.recv(&mut buf)).await {
        got.push(buf[..n].to_vec());
    }
    got
}

/// The data payloads among what reaches `socket` within [`QUIET`].
async fn data_received(socket: &UdpSocket) -> Vec<Vec<u8>> {
    let packets = received(socket).await;
    let data = packets.iter().filter_map(|p| match FromRelay::parse(p) {
        Some(FromRelay::Data(payload)) => Some(payload.to_vec()),
        _ => None,
    });
    data.collect()
}

/// Alice's real link, receiving in a task of its own (so it answers the
/// relay's consent checks); what she receives comes out of the channel.
async fn alice_link(server: &ServerHandle, info: &MediaInfo) -> (RelaySender, mpsc::Receiver<Vec<u8>>) {
    let link = RelayLink::connect(info, &server.url()).await.expect("alice's link");
    assert_eq!(link.transport(), Transport::Udp);
    let (sender, receiver) = link.split();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(forward(receiver, tx));
    (sender, rx)
}

async fn forward(mut receiver: RelayReceiver, tx: mpsc::Sender<Vec<u8>>) {
    while let Ok(payload) = receiver.recv().await {
        if tx.send(payload).await.is_err() {
            return;
        }
    }
}

async fn got(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    tokio::time::timeout(WAIT, rx.recv()).await.expect("a payload within the wait").expect("the link works")
}

#[tokio::test]
async fn a_spoofed_source_with_a_stolen_credential_gets_nothing_sent_to_the_spoofed_address() {
    let server = start(RelayConfig::default()).await;
    let (alice_media, bob_media, _signaling) = accepted_call(&server.url()).await;
    let relay = relay_addr(&server);
    let (mut alice, _from_bob) = alice_link(&server, &alice_media).await;
    let bob = Hand::new(&bob_media, relay).await;
    let captured = bob.bind().await;
    alice.send(b"hello").await.unwrap();
    assert_eq!(bob.data().await, b"hello");

    // The victim: a real socket at the address the spoofer puts on its packets.
    let victim = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let credential = bob_media.credential_bytes().unwrap();
    let stolen = LegKeys::derive(&credential);
    // The v1.1 way: a probe with the credential itself.
    victim.send_to(&ToRelay::Probe { credential, token: [2; 8] }.encode(), relay).await.unwrap();
    victim.send_to(&ToRelay::Data { credential, payload: b"x" }.encode(), relay).await.unwrap();
    // Data with the leg's id, and bob's own answer replayed, from the victim's address.
    victim.send_to(&UdpToRelay::Data { leg: stolen.id, payload: b"x" }.encode(), relay).await.unwrap();
    victim.send_to(&captured, relay).await.unwrap();
    // A proof made with the stolen credential for a cookie the thief got at its own address.
    let thief = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    thief.send_to(&stolen.bind([3; 8]), relay).await.unwrap();
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(WAIT, thief.recv(&mut buf)).await.expect("the thief's challenge").unwrap();
    let Some(UdpControl::Challenge { token, cookie, .. }) = UdpControl::parse(&buf[..n]) else { panic!() };
    victim.send_to(&stolen.answer(token, cookie), relay).await.unwrap();

    for i in 0..10u8 {
        alice.send(&[i]).await.unwrap();
    }
    assert_eq!(received(&victim).await, Vec::<Vec<u8>>::new(), "the victim's socket received nothing");
    for i in 0..10u8 {
        assert_eq!(bob.data().await, vec![i], "bob's route did not move");
    }
    let s = stats(&server);
    assert_eq!((s.malformed, s.not_route, s.bad_proof), (2, 1, 2), "{s:?}");
}

#[tokio::test]
async fn a_client_on_a_new_port_is_sent_nothing_until_it_answers_the_check_from_there() {
    let server = start(RelayConfig::default()).await;
    let (alice_media, bob_media, _signaling) = accepted_call(&server.url()).await;
    let relay = relay_addr(&server);
    let (mut alice, mut from_bob) = alice_link(&server, &alice_media).await;
    let old = Hand::new(&bob_media, relay).await;
    old.bind().await;
    alice.send(b"before").await.unwrap();
    assert_eq!(old.data().await, b"before");

    // The NAT gave bob a new port: a new socket. Its data moves nothing.
    let moved = Hand::new(&bob_media, relay).await;
    moved.send(b"from the new port").await;
    alice.send(b"lost").await.unwrap();
    assert_eq!(data_received(&moved.socket).await, Vec::<Vec<u8>>::new(), "no route to the new port yet");
    assert_eq!(old.data().await, b"lost", "still sent to the old port");
    assert_eq!(stats(&server).not_route, 1);
    // After the check from the new port, both ways work there.
    moved.bind().await;
    alice.send(b"after").await.unwrap();
    assert_eq!(moved.data().await, b"after");
    moved.send(b"back").await;
    assert_eq!(got(&mut from_bob).await, b"back");
    assert_eq!(data_received(&old.socket).await, Vec::<Vec<u8>>::new(), "nothing more to the old port");
}

#[tokio::test]
async fn a_route_that_stops_answering_consent_checks_is_dropped() {
    let consent = RelayConfig {
        consent_every: Duration::from_millis(100),
        consent_timeout: Duration::from_millis(1_000),
        ..Default::default()
    };
    let server = start(consent).await;
    let (alice_media, bob_media, _signaling) = accepted_call(&server.url()).await;
    let relay = relay_addr(&server);
    // Alice's link answers the checks by itself; bob, by hand, never does.
    let (mut alice, mut from_bob) = alice_link(&server, &alice_media).await;
    let bob = Hand::new(&bob_media, relay).await;
    bob.bind().await;
    alice.send(b"heard").await.unwrap();
    assert_eq!(bob.data().await, b"heard");
    let deadline = Instant::now() + WAIT;
    while stats(&server).consent_lost == 0 {
        assert!(Instant::now() < deadline, "bob's route dropped: {:?}", stats(&server));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stats(&server).consent_lost, 1, "only bob's: alice's link answers its checks");
    // Whatever was sent before the drop has arrived; from now on nothing is sent to bob.
    let _ = received(&bob.socket).await;
    let before = stats(&server).no_route;
    alice.send(b"unheard").await.unwrap();
    assert_eq!(received(&bob.socket).await, Vec::<Vec<u8>>::new(), "nothing, not even checks");
    assert_eq!(stats(&server).no_route, before + 1);
    // Bob answers a check again: bound again, both ways.
    bob.bind().await;
    alice.send(b"again").await.unwrap();
    assert_eq!(bob.data().await, b"again");
    bob.send(b"back").await;
    assert_eq!(got(&mut from_bob).await, b"back");
}

#[tokio::test]
async fn media_sockets_up_to_their_cap_leave_logins_their_slots() {
    // A bind deadline longer than the test: the held sockets keep their slots.
    let deadline = Duration::from_secs(600);
    let media = RelayConfig { max_media_connections: 4, media_bind_deadline: deadline, ..Default::default() };
    let media = RelayConfig { listen: MediaListen::At("127.0.0.1:0".parse().unwrap()), ..media };
    let server = start_server(ServerConfig { media, max_connections: 2, ..Default::default() }).await;
    let media_url = format!("ws://{}/media", server.addr());
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(Client::connect(&media_url).await);
    }
    assert!(Client::try_connect(&media_url).await.is_err(), "past the media cap: 503");
    // Both signaling slots are free for logins.
    let alice = Client::login(&server.url(), "alice").await;
    let bob = Client::login(&server.url(), "bob").await;
    assert!(Client::try_connect(&server.url()).await.is_err(), "the signaling cap holds on its own");
    drop((alice, bob, held));
}

#[tokio::test]
async fn a_media_socket_that_presents_no_live_credential_is_closed_at_the_deadline() {
    const BIND_DEADLINE: Duration = Duration::from_secs(1);
    let media = RelayConfig { media_bind_deadline: BIND_DEADLINE, ..Default::default() };
    let server = start(media).await;
    let media_url = format!("ws://{}/media", server.addr());
    let (alice_media, bob_media, _signaling) = accepted_call(&server.url()).await;
    let ws = LinkOptions { force_websocket: true, ..Default::default() };
    // One silent but for pings, one presenting a forged credential, one a live one.
    let mut pinging = Client::connect(&media_url).await;
    let mut forged = Client::connect(&media_url).await;
    let probe = ToRelay::Probe { credential: [0x5a; 16], token: [1; 8] }.encode();
    forged.send_message(Message::Binary(probe.into())).await;
    let mut a = RelayLink::connect_with(&alice_media, &server.url(), &ws).await.expect("alice's link");
    let mut b = RelayLink::connect_with(&bob_media, &server.url(), &ws).await.expect("bob's link");
    for _ in 0..3 {
        pinging.send_message(Message::Ping(vec![1].into())).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for c in [&mut pinging, &mut forged] {
        let deadline = Instant::now() + WAIT;
        let code = loop {
            match c.next_message(WAIT).await {
                Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
                Some(_) => assert!(Instant::now() < deadline, "not closed within the wait"),
                None => panic!("not closed within the wait"),
            }
        };
        assert_eq!(code, Some(1008), "closed for presenting no live credential");
    }
    // The links that presented their credentials stay past the deadline.
    a.send(b"still open").await.expect("alice sends");
    let got = tokio::time::timeout(WAIT, b.recv()).await.expect("within the wait").expect("bob's link");
    assert_eq!(got, b"still open");
}
