//! The app and tokens (protocol v1.2): its own embedded server is not
//! open (another user, with another data dir, cannot sign in; the
//! instances of one user can), and on a configured server the app renews
//! its token from `--token-file` when told it is expiring, or, without a
//! source, says so and is signed out at the expiry with the reason shown.

use super::end_to_end::{Driver, WAIT};
use softphone_app::Options;
use softphone_app::link::Link;
use softphone_core::sdk::{self, Client};
use softphone_core::server::ServerConfig;
use softphone_core::token::source::TokenSource;

const SECRET: &[u8] = b"app-token-tests-secret-of-32-byt";

fn token(peer: &str, expiry: u64) -> String {
    softphone_core::token::mint(SECRET, peer, expiry)
}

fn now() -> u64 {
    softphone_core::clock::unix_secs()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn the_embedded_server_takes_its_users_tokens_only() {
    let listen = format!("127.0.0.1:{}", free_port());
    let options =
        Options { peer_id: Some("alice".into()), default_listen: listen.clone(), ..Options::default() };
    let mut alice = Driver::start("alice", options);
    alice.until_dial().await;
    let url = alice.app.embedded_url().expect("the app hosts the default server");
    // No token, or one minted from another secret (another user's data dir): refused.
    for token in [
        String::new(),
        softphone_core::token::mint(b"another-users-secret-32-bytes!!", "mallory", now() + 60),
    ] {
        let mut config = sdk::ClientConfig::new(&url, "mallory");
        config.token = token;
        match Client::connect(config).await {
            Err(sdk::Error::LoginRefused(e)) => {
                assert_eq!(e.code, softphone_core::protocol::ErrorCode::InvalidToken)
            }
            other => panic!("a stranger must be refused, got {other:?}"),
        }
    }
    // A web page is refused at the handshake.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
            .expect("a ws:// URL");
    request.headers_mut().insert("Origin", "http://evil.example".parse().unwrap());
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("an answer") {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!("a foreign page must get 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn the_app_renews_from_its_token_file_and_without_a_source_is_signed_out_saying_why() {
    let server =
        crate::servers::start_server(ServerConfig { secret: Some(SECRET.to_vec()), ..Default::default() })
            .await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let expiry = now() + 3;
    std::fs::write(&file, token("alice", now() + 3_600)).unwrap();
    let renewing = Options {
        server_url: Some(url.clone()),
        peer_id: Some("alice".into()),
        token: Some(token("alice", expiry)),
        token_source: Some(TokenSource::File(file)),
        ..Options::default()
    };
    let mut alice = Driver::start("alice", renewing);
    alice.until_dial().await;
    alice
        .until("the renewed token", |app| {
            app.link().session().is_some_and(|s| s.tokens.current != token("alice", expiry))
        })
        .await;
    // No source: told so, then signed out at the expiry with the reason.
    let stranded = Options {
        server_url: Some(url.clone()),
        peer_id: Some("bob".into()),
        token: Some(token("bob", expiry + 1)),
        ..Options::default()
    };
    let mut bob = Driver::start("bob", stranded);
    bob.until_dial().await;
    bob.until("the warning", |app| app.notice().is_some_and(|n| n.contains("no way to renew it"))).await;
    bob.until(
        "signed out",
        |app| matches!(app.link(), Link::SignedOut { reason: Some(reason) } if reason.contains("expired")),
    )
    .await;
    // bob's token expired a second after alice's old one: alice is still in.
    let (watcher, _events) = Client::connect({
        let mut config = sdk::ClientConfig::new(&url, "watcher");
        config.token = token("watcher", now() + 60);
        config
    })
    .await
    .expect("the watcher signs in");
    assert!(watcher.query_presence(&["alice"]).await.unwrap()["alice"], "alice renewed and stayed");
    assert!(matches!(alice.app.link(), Link::Up { .. }));
}
