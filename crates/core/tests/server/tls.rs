//! `wss://`: the server with `--tls-cert`/`--tls-key` (in process and the
//! real binary), the SDK and the headless peer trusting a self-signed
//! certificate through `--ca-file`, a plain `ws://` client on a TLS port,
//! and certificate and key problems found at start.

use super::cli::{ready, refused_at_start, server_command};
use super::client::*;
use rustls_pki_types::pem::PemObject;
use softphone_core::relay_link::{LinkOptions, RelayLink, RelayLinkError, Transport};
use softphone_core::sdk::{self, Client as SdkClient, ClientConfig, Event, Events};
use softphone_core::server::{self, ServerConfig, ServerHandle};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Command;

/// A self-signed certificate for 127.0.0.1 and localhost, in PEM files.
struct SelfSigned {
    dir: tempfile::TempDir,
}

impl SelfSigned {
    fn new() -> SelfSigned {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).expect("write cert.pem");
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).expect("write key.pem");
        SelfSigned { dir }
    }

    /// A self-signed certificate that is also a CA certificate
    /// (basicConstraints CA:TRUE), as openssl's one-liner makes it.
    fn ca() -> SelfSigned {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("certificate parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("a key pair");
        let cert = params.self_signed(&key).expect("a self-signed CA certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write cert.pem");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key.pem");
        SelfSigned { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// A file next to the others holding `content`.
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A server in this process serving `wss://` with `pki`.
async fn start_tls(pki: &SelfSigned) -> ServerHandle {
    let tls = server::tls::load(&pki.cert(), &pki.key()).expect("the certificate and key load");
    start_server(ServerConfig { tls: Some(tls), ..Default::default() }).await
}

/// An SDK client of `url` that trusts `ca`, logged in as `peer`.
async fn sdk_client(url: &str, peer: &str, ca: PathBuf) -> (SdkClient, Events) {
    let mut config = ClientConfig::new(url, peer);
    config.ca_file = Some(ca);
    SdkClient::connect(config).await.unwrap_or_else(|e| panic!("{peer} cannot log in over {url}: {e}"))
}

/// The next event about a call (connection and presence events skipped).
async fn next_call_event(events: &mut Events) -> Event {
    loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event within the wait")
            .expect("the event stream goes on");
        if event.call_id().is_some() {
            return event;
        }
    }
}

/// `alice` calls `callee` and waits until it is accepted; returns the call id.
async fn call_until_accepted(alice: &SdkClient, alice_events: &mut Events, callee: &str) -> String {
    let invitation = alice.create_local_invitation(callee).expect("an invitation");
    alice.send_local_invitation(&invitation).await.expect("the invite is sent");
    let call_id = invitation.call_id().to_owned();
    until_accepted(alice_events, &call_id).await;
    call_id
}

/// Waits for the caller's call `call_id` to be accepted.
async fn until_accepted(caller_events: &mut Events, call_id: &str) {
    loop {
        match next_call_event(caller_events).await {
            Event::LocalInvitationAccepted { call_id: id, .. } if id == call_id => return,
            Event::LocalInvitationReceivedByPeer { .. } => {}
            other => panic!("expected the call to be accepted, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sdk_clients_log_in_and_place_a_call_over_wss_with_a_ca_file() {
    let pki = SelfSigned::new();
    let server = start_tls(&pki).await;
    let url = server.url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let (alice, mut alice_events) = sdk_client(&url, "alice", pki.cert()).await;
    let (bob, mut bob_events) = sdk_client(&url, "bob", pki.cert()).await;
    let answer = tokio::spawn(async move {
        let Event::RemoteInvitationReceived { call_id, caller_id, .. } =
            next_call_event(&mut bob_events).await
        else {
            panic!("bob expected an invitation");
        };
        assert_eq!(caller_id, "alice");
        let invitation = bob.remote_invitation(&call_id).expect("the invitation is in bob's table");
        bob.accept_remote_invitation(&invitation).await.expect("bob accepts");
        (bob, bob_events)
    });
    let call_id = call_until_accepted(&alice, &mut alice_events, "bob").await;
    let (_bob, _) = answer.await.expect("bob's task");
    alice.hang_up(&call_id).await.expect("alice hangs up");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let pki = SelfSigned::new();
    let server = start_tls(&pki).await;
    // The public roots only (tokio-tungstenite's default): a self-signed certificate is unknown.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let refused = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(server.url())).await;
    let error = refused.expect("an answer within the wait").expect_err("an untrusted certificate");
    assert!(error.to_string().to_lowercase().contains("certificate"), "{error}");
    // A CA file that holds no certificate is refused before connecting.
    let mut config = ClientConfig::new(server.url(), "alice");
    config.ca_file = Some(pki.file("empty.pem", "nothing here\n"));
    assert!(matches!(SdkClient::connect(config).await, Err(sdk::Error::InvalidArgument(_))));
}

#[tokio::test]
async fn a_plain_ws_client_on_the_wss_port_fails_cleanly() {
    let pki = SelfSigned::new();
    let server = start_tls(&pki).await;
    let plain = format!("ws://{}/", server.addr());
    // An error, not a hang (try_connect panics past the wait).
    assert!(Client::try_connect(&plain).await.is_err(), "ws:// on a wss:// port must fail");
    // A raw HTTP request is answered with a TLS alert at most, then the end.
    let mut raw = TcpStream::connect(server.addr()).await.expect("tcp connect");
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut rest))
        .await
        .expect("the server drops the connection within the wait")
        .ok();
    assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1"), "no plain HTTP answer: {rest:?}");
    // The server still serves wss://.
    sdk_client(&server.url(), "alice", pki.cert()).await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_finishes_is_dropped_at_the_handshake_deadline() {
    let pki = SelfSigned::new();
    let tls = server::tls::load(&pki.cert(), &pki.key()).expect("the certificate and key load");
    let config =
        ServerConfig { tls: Some(tls), handshake_timeout: Duration::from_millis(300), ..Default::default() };
    let server = start_server(config).await;
    // The first bytes of a TLS ClientHello record, and then nothing.
    let mut stalled = TcpStream::connect(server.addr()).await.expect("tcp connect");
    stalled.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]).await.expect("write");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(4), stalled.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "still open after 4 s with a 300 ms handshake timeout");
}

#[tokio::test]
async fn the_binary_serves_wss_and_the_headless_peer_answers_over_it() {
    let pki = SelfSigned::new();
    let server =
        ready(server_command(&["--tls-cert", text(&pki.cert()), "--tls-key", text(&pki.key())]), "wss").await;
    let mut bob = Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["peer", "--server", &server.url, "--id", "bob", "--auto", "accept"])
        .args(["--ca-file", text(&pki.cert())])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn softphone peer");
    let mut lines = BufReader::new(bob.stdout.take().expect("piped stdout")).lines();
    let connected = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read the peer's output") {
            if line.contains("\"connected\"") {
                return line;
            }
        }
        panic!("the peer ended before it connected");
    });
    connected.await.expect("the peer logs in over wss:// within the wait");
    let (alice, mut alice_events) = sdk_client(&server.url, "alice", pki.cert()).await;
    call_until_accepted(&alice, &mut alice_events, "bob").await;
}

#[tokio::test]
async fn bad_certificate_or_key_files_are_refused_at_start() {
    let pki = SelfSigned::new();
    let other = SelfSigned::new();
    let (cert, key) = (pki.cert(), pki.key());
    let missing = pki.dir.path().join("missing.pem");
    let garbage = pki.file("garbage.pem", "not PEM at all\n");
    let cases: [(&Path, &Path, &[&str]); 5] = [
        (&missing, &key, &["missing.pem"]),
        (&cert, &missing, &["missing.pem"]),
        (&garbage, &key, &["garbage.pem", "no PEM certificate"]),
        (&cert, &garbage, &["garbage.pem", "private key"]),
        // A key, but not the certificate's.
        (&cert, &other.key(), &["cannot be served together"]),
    ];
    for (cert, key, says) in cases {
        let stderr = refused_at_start(&["--tls-cert", text(cert), "--tls-key", text(key)]).await;
        for words in says {
            assert!(stderr.contains(words), "{cert:?} {key:?}: {words:?} in {stderr}");
        }
    }
    // One without the other is a usage error.
    let stderr = refused_at_start(&["--tls-cert", text(&cert)]).await;
    assert!(stderr.contains("--tls-key"), "{stderr}");
}

#[tokio::test]
async fn a_ca_file_pins_the_servers_own_certificate_even_when_it_is_a_ca_certificate() {
    let pki = SelfSigned::ca();
    let server = start_tls(&pki).await;
    let cert = std::fs::read(pki.cert()).expect("read cert.pem");
    let der = rustls_pki_types::CertificateDer::from_pem_slice(&cert).expect("a PEM certificate");
    assert!(server::tls::is_ca_certificate(&der), "the test's certificate is a CA certificate");
    // Pinned through --ca-file: webpki alone says CaUsedAsEndEntity.
    let (alice, _events) = sdk_client(&server.url(), "alice", pki.cert()).await;
    alice.logout().await.expect("alice logs out");
    // Another CA:TRUE certificate pins nothing here: the pin is that exact certificate.
    let other = SelfSigned::ca();
    let mut config = ClientConfig::new(server.url(), "bob");
    config.ca_file = Some(other.cert());
    match SdkClient::connect(config).await {
        Err(sdk::Error::Connect(why)) => assert!(why.to_lowercase().contains("certificate"), "{why}"),
        other => panic!("a certificate not pinned must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn the_server_warns_at_start_when_its_certificate_is_a_ca_certificate() {
    for (pki, warns) in [(SelfSigned::ca(), true), (SelfSigned::new(), false)] {
        let mut command = server_command(&["--tls-cert", text(&pki.cert()), "--tls-key", text(&pki.key())]);
        command.stderr(Stdio::piped());
        let mut server = ready(command, "wss").await;
        // SIGTERM: the server exits on its own, flushing its log.
        let pid = server.child.id().expect("a running server has a pid").to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        let mut stderr = String::new();
        let mut pipe = server.child.stderr.take().expect("piped stderr");
        tokio::time::timeout(WAIT, pipe.read_to_string(&mut stderr))
            .await
            .expect("stderr ends")
            .expect("read");
        assert_eq!(stderr.contains("is a CA certificate"), warns, "{stderr}");
        // Stopped by its own handler (status 0), not killed by the signal:
        // the handler is installed before the ready line the test waited for.
        let status = tokio::time::timeout(WAIT, server.child.wait()).await.expect("exits").expect("wait");
        assert!(
            status.success(),
            "a SIGTERM right after the ready line must stop the server cleanly: {status}"
        );
    }
}

/// The voice relay's WebSocket fallback goes to the same `wss://` server
/// as signaling, so it must trust what signaling trusts: with the client's
/// `ca_file` it binds and carries packets both ways; with the public roots
/// alone it is refused, as signaling would be.
#[tokio::test]
async fn the_relays_websocket_fallback_trusts_the_clients_ca_file() {
    let pki = SelfSigned::new();
    let server = start_tls(&pki).await;
    let url = server.url();
    let (alice, mut alice_events) = sdk_client(&url, "alice", pki.cert()).await;
    let (bob, mut bob_events) = sdk_client(&url, "bob", pki.cert()).await;
    let answer = tokio::spawn(async move {
        let Event::RemoteInvitationReceived { call_id, .. } = next_call_event(&mut bob_events).await else {
            panic!("bob expected an invitation");
        };
        let invitation = bob.remote_invitation(&call_id).expect("the invitation is in bob's table");
        invitation.accept_with_voice().await.expect("bob accepts with voice");
        let keys = invitation.voice().expect("voice was asked for").ready().await.expect("bob's voice keys");
        (bob, keys.media)
    });
    let invitation = alice.create_local_invitation("bob").expect("an invitation");
    invitation.offer_voice().expect("voice is offered before sending");
    alice.send_local_invitation(&invitation).await.expect("the invite is sent");
    let mut voice = invitation.voice().expect("voice was offered");
    until_accepted(&mut alice_events, invitation.call_id()).await;
    let alice_media = voice.ready().await.expect("alice's voice keys").media;
    let (bob, bob_media) = answer.await.expect("bob's task");

    let public_roots = LinkOptions { force_websocket: true, ..LinkOptions::default() };
    match RelayLink::connect_with(&alice_media, &url, &public_roots).await {
        Err(RelayLinkError::Unreachable(why)) => assert!(why.to_lowercase().contains("certificate"), "{why}"),
        other => panic!("a private CA not trusted must be refused, got {:?}", other.map(|l| l.transport())),
    }
    let links =
        [(&alice, &alice_media), (&bob, &bob_media)].map(|(client, media)| {
            let options =
                LinkOptions { force_websocket: true, tls: client.tls_connector(), ..LinkOptions::default() };
            let url = url.clone();
            let media = media.clone();
            async move {
                RelayLink::connect_with(&media, &url, &options).await.expect("the fallback binds over wss")
            }
        });
    let [a, b] = links;
    let (mut a, mut b) = (a.await, b.await);
    assert_eq!((a.transport(), b.transport()), (Transport::WebSocket, Transport::WebSocket));
    a.send(b"from alice").await.expect("alice sends");
    let got = tokio::time::timeout(WAIT, b.recv()).await.expect("within the wait").expect("bob's link works");
    assert_eq!(got, b"from alice");
    b.send(b"from bob").await.expect("bob sends");
    let got =
        tokio::time::timeout(WAIT, a.recv()).await.expect("within the wait").expect("alice's link works");
    assert_eq!(got, b"from bob");
}
