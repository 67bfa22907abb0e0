//! The browser phone on the server's port (crates/core/src/server/web.rs, docs/web.md):
//! plain HTTP gets the page built into the binary with its validators and
//! policy, over TLS too, while WebSocket upgrades on `/` go on as before;
//! `web/dist` is what the sources build; and the web tests themselves, the
//! SDK's node tests and the Playwright suite in Chromium, against the real
//! `softphone` binary and headless peers.
//!
//! The web tests need node, `web/node_modules` (`npm ci` in web/, which
//! `.ci/setup` runs) and `/usr/bin/chromium`; without them they fail and
//! say what is missing.

use super::client::*;
use serde_json::json;
use softphone_core::server::{self, ServerConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// `web/` in the source tree.
fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

fn dist(name: &str) -> Vec<u8> {
    std::fs::read(web_dir().join("dist").join(name)).unwrap_or_else(|e| panic!("web/dist/{name}: {e}"))
}

/// One HTTP/1.1 response: status line, headers (lower-cased names), body.
struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `request` on `stream` and reads the answer to the end (the server closes).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> Response {
    stream.write_all(request.as_bytes()).await.expect("write the request");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("the server answers and closes within the wait")
        .ok();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8(raw[..end].to_vec()).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response { status, headers, body: raw[end + 4..].to_vec() }
}

async fn get(addr: std::net::SocketAddr, request: &str) -> Response {
    exchange(TcpStream::connect(addr).await.expect("tcp connect"), request).await
}

#[tokio::test]
async fn the_page_is_served_with_validators_and_a_strict_policy() {
    let server = start_default().await;
    let addr = server.addr();
    let page = get(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(page.status, "HTTP/1.1 200 OK");
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.body, dist("index.html"));
    assert_eq!(page.header("content-length"), Some(page.body.len().to_string().as_str()));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'self'; script-src 'self';"), "{csp}");
    assert!(csp.contains(&format!("connect-src 'self' ws://{addr} wss://{addr};")), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("blob:"), "{csp}");
    let etag = page.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 26, "{etag}");

    // Revalidation: the same ETag gets 304 and no body; another gets the page.
    let again = get(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nIf-None-Match: {etag}\r\n\r\n")).await;
    assert_eq!(again.status, "HTTP/1.1 304 Not Modified");
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let stale = get(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nIf-None-Match: \"old\"\r\n\r\n")).await;
    assert_eq!(stale.status, "HTTP/1.1 200 OK");

    // Compressed for clients that accept gzip; HEAD has the head only.
    let zipped =
        get(addr, &format!("GET /app.js HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: gzip, br\r\n\r\n"))
            .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    assert_eq!(zipped.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(zipped.body, dist("app.js.gz"));
    let head = get(addr, &format!("HEAD /app.css HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(head.status, "HTTP/1.1 200 OK");
    assert_eq!(head.header("content-length"), Some(dist("app.css").len().to_string().as_str()));
    assert!(head.body.is_empty());
    let worklet = get(addr, &format!("GET /worklet.js HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(worklet.body, dist("worklet.js"));

    // Unknown paths and other methods.
    let missing = get(addr, &format!("GET /secret.txt HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(missing.status, "HTTP/1.1 404 Not Found");
    let post = get(addr, &format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n")).await;
    assert_eq!(post.status, "HTTP/1.1 405 Method Not Allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let garbage = get(addr, "\x01\x02 not http\r\n\r\n").await;
    assert_eq!(garbage.status, "HTTP/1.1 400 Bad Request");

    // The WebSocket on the same port is as it was.
    let mut alice = Client::login(&server.url(), "alice").await;
    let reply = alice.request(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
    check(&reply, json!({"type": "ok", "online": {"alice": true}}));
    server.shutdown().await;
}

#[tokio::test]
async fn over_tls_the_page_comes_over_https_on_the_same_port() {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    let tls = server::tls::load(&cert, &key).expect("the certificate loads");
    let server = start_server(ServerConfig { tls: Some(tls), ..Default::default() }).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("the certificate is a root");
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr()).await.expect("tcp connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("a name");
    let stream = connector.connect(name, tcp).await.expect("the TLS handshake");
    let page = exchange(stream, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(page.status, "HTTP/1.1 200 OK");
    assert_eq!(page.body, dist("index.html"));
    server.shutdown().await;
}

/// The desktop app hosts its default server with `server::spawn_on` on a
/// listener it bound (crates/app/src/embedded.rs): that server serves the page too.
#[tokio::test]
async fn the_server_the_desktop_app_embeds_serves_the_page() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = server::spawn_on(listener, ServerConfig::default());
    let addr = server.addr();
    let page = get(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
    assert_eq!(page.status, "HTTP/1.1 200 OK");
    assert_eq!(page.body, dist("index.html"));
    server.shutdown().await;
}

#[test]
fn every_file_of_web_dist_is_built_into_the_binary() {
    let mut on_disk: Vec<String> = std::fs::read_dir(web_dir().join("dist"))
        .expect("web/dist")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut built_in = server::web::built_in_files();
    on_disk.sort();
    built_in.sort();
    assert_eq!(on_disk, built_in, "web/dist and crates/core/src/server/web.rs's list differ");
}

/// Runs `node ARGS` in web/ with the binary's path, and fails with its output unless it passes.
fn node_in_web(args: &[&str], what: &str) {
    let web = web_dir();
    assert!(
        web.join("node_modules").is_dir(),
        "{what} needs web/node_modules: run `bash .ci/setup` (or `npm ci` in web/)"
    );
    let output = Command::new("node")
        .args(args)
        .current_dir(&web)
        .env("SOFTPHONE_BIN", env!("CARGO_BIN_EXE_softphone-headless"))
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run node ({e}); run `bash .ci/setup`"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    for line in text
        .lines()
        .filter(|l| l.starts_with("# FIGURE") || l.starts_with("# pass") || l.starts_with("# fail"))
    {
        eprintln!("{what}: {line}");
    }
    assert!(output.status.success(), "{what} failed:\n{text}");
}

#[test]
fn web_dist_is_what_the_sources_build() {
    node_in_web(&["build.mjs", "--check"], "the web build check");
}

#[test]
fn the_web_sdk_passes_its_tests_against_the_real_server() {
    node_in_web(&["tests/run.mjs", "sdk"], "the web SDK tests");
}

#[test]
fn the_browser_phone_passes_its_chromium_suite() {
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "the browser suite needs /usr/bin/chromium: run `bash .ci/setup`"
    );
    node_in_web(&["tests/run.mjs", "browser"], "the browser suite");
}
