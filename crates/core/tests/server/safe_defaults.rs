//! Safe defaults of the server: open mode only on loopback unless
//! `--open`, browser pages checked by `Origin` at the handshake (on `/`
//! and `/media`), and a metrics request that cannot hold its connection.

use super::client::*;
use softphone_core::server::origin::Origin;
use softphone_core::server::{MetricsListener, ServerConfig};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const BIN: &str = env!("CARGO_BIN_EXE_softphone-headless");

/// `softphone server ARGS` (the caller gives `--listen`), its stdout piped.
fn server(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `softphone server ARGS` to its end: exit status and standard error.
async fn run_to_end(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(WAIT, server(args).output())
        .await
        .unwrap_or_else(|_| panic!("softphone server {args:?} still running after {WAIT:?}"))
        .expect("run softphone server");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Starts `softphone server ARGS` and returns its ready line (the child is
/// killed when the test ends).
async fn ready_line(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = server(args).spawn().expect("spawn softphone server");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("a ready line within the wait")
        .expect("read stdout")
        .unwrap_or_else(|| panic!("softphone server {args:?} ended without a ready line"));
    (child, line)
}

#[tokio::test]
async fn open_mode_is_refused_off_loopback_unless_asked_for_with_open() {
    let (status, stdout, stderr) = run_to_end(&["--listen", "0.0.0.0:0"]).await;
    assert_eq!(status, Some(2), "refused at start: {stderr}");
    assert_eq!(stdout, "", "nothing listens");
    let line = stderr.lines().find(|l| l.starts_with("softphone: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("refusing open mode on 0.0.0.0:0"), "{line}");
    assert!(line.contains("--secret-file") && line.contains("--open"), "says what to do: {line}");
    // --open says so on purpose; loopback needs nothing.
    let (_open, line) = ready_line(&["--listen", "0.0.0.0:0", "--open", "--no-media"]).await;
    assert!(line.starts_with("listening on ws://0.0.0.0:"), "{line}");
    let (_loopback, line) = ready_line(&["--listen", "127.0.0.1:0", "--no-media"]).await;
    assert!(line.starts_with("listening on ws://127.0.0.1:"), "{line}");
    // With a secret any address is fine; --open with a secret is a usage error.
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a-secret-of-at-least-16-bytes").expect("write the secret");
    let secret = secret.to_str().expect("utf-8 path");
    let (_signed, line) = ready_line(&["--listen", "0.0.0.0:0", "--secret-file", secret, "--no-media"]).await;
    assert!(line.starts_with("listening on ws://0.0.0.0:"), "{line}");
    let (status, _, stderr) = run_to_end(&["--listen", "0.0.0.0:0", "--open", "--secret-file", secret]).await;
    assert_eq!(status, Some(2), "{stderr}");
}

/// Opens a WebSocket to `url` sending `origin` (if any); `Ok` when the
/// handshake succeeded, else the HTTP status it was refused with.
async fn handshake_with_origin(url: &str, origin: Option<&str>) -> Result<(), u16> {
    let mut request = url.into_client_request().expect("a ws:// URL");
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", HeaderValue::from_str(origin).expect("a header value"));
    }
    let connect = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await;
    match connect.expect("an answer within the wait") {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("{url} with origin {origin:?}: {e}"),
    }
}

#[tokio::test]
async fn browser_origins_other_than_the_servers_own_and_the_allowed_get_403_on_both_paths() {
    let allowed = Origin::parse("https://app.example.org").expect("an origin");
    let server = start_server(ServerConfig { allowed_origins: vec![allowed], ..Default::default() }).await;
    let own = format!("http://{}", server.addr());
    assert!(server.relay().is_some(), "the relay serves /media");
    for path in ["", "media"] {
        let url = format!("{}{path}", server.url());
        assert_eq!(handshake_with_origin(&url, None).await, Ok(()), "{url}: native clients send no Origin");
        assert_eq!(handshake_with_origin(&url, Some(&own)).await, Ok(()), "{url}: the server's own origin");
        let allowed = Some("https://app.example.org");
        assert_eq!(handshake_with_origin(&url, allowed).await, Ok(()), "{url}: --allow-origin");
        for other in ["http://evil.example", "null", "https://app.example.org:8443", "http://app.example.org"]
        {
            assert_eq!(handshake_with_origin(&url, Some(other)).await, Err(403), "{url}: {other}");
        }
        let other_port = format!("http://127.0.0.1:{}", server.addr().port() + 1);
        assert_eq!(handshake_with_origin(&url, Some(&other_port)).await, Err(403), "{url}: {other_port}");
    }
    // A refused handshake costs nothing: a native client still logs in.
    Client::login(&server.url(), "alice").await;
}

#[tokio::test]
async fn allow_origin_takes_only_origins() {
    for bad in ["example.org", "ftp://example.org", "https://example.org/page"] {
        let (status, _, stderr) = run_to_end(&["--listen", "127.0.0.1:0", "--allow-origin", bad]).await;
        assert_eq!(status, Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--allow-origin"), "{bad}: {stderr}");
    }
}

#[tokio::test]
async fn a_metrics_client_that_sends_nothing_is_cut_off() {
    let metrics = MetricsListener::bind("127.0.0.1:0").expect("bind metrics");
    let addr = metrics.local_addr();
    let _server = start_server(ServerConfig { metrics_listener: Some(metrics), ..Default::default() }).await;
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect to metrics");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, silent.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "a silent metrics connection must be closed by the server");
    // Half a request head, then nothing: cut off too.
    let mut trickle = tokio::net::TcpStream::connect(addr).await.expect("connect to metrics");
    tokio::io::AsyncWriteExt::write_all(&mut trickle, b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let read = tokio::time::timeout(WAIT, trickle.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "a half-sent request must be cut off");
}
