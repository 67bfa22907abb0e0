//! The real binary when what it leans on runs short: file descriptors (the
//! connection cap lowered to the open-file limit, 503 past it) and a
//! standard error that nobody reads (calls go on, log lines are lost).

use super::cli::{ready, server_command};
use super::client::*;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What the server keeps for its own files (documented in docs/protocol.md).
const RESERVED: u64 = 64;

/// Sends an upgrade request on a new connection and returns the status
/// line of the answer; panics when there is none within the wait.
async fn handshake_status(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write the upgrade request");
    let mut head = Vec::new();
    let mut chunk = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&chunk[..n]),
            other => panic!("no answer to the handshake ({other:?}): {}", String::from_utf8_lossy(&head)),
        }
    }
    let head = String::from_utf8_lossy(&head);
    head.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_connection_cap_is_lowered_to_the_open_file_limit_and_503_answers_past_it() {
    const OPEN_FILES: u64 = 150;
    let mut command = server_command(&[]);
    command.stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        command.pre_exec(|| rlimit::setrlimit(rlimit::Resource::NOFILE, OPEN_FILES, OPEN_FILES));
    }
    let mut server = ready(command, "ws").await;
    let mut stderr = BufReader::new(server.child.stderr.take().expect("piped stderr")).lines();
    let deadline = Instant::now() + WAIT;
    let cap: usize = loop {
        let line = tokio::time::timeout_at(deadline, stderr.next_line())
            .await
            .expect("a log line about the connection cap")
            .expect("read stderr")
            .expect("stderr open");
        if let Some(rest) = line.split("connection cap lowered to ").nth(1) {
            break rest.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a number");
        }
    };
    assert_eq!(cap as u64, OPEN_FILES - RESERVED, "the default 32,768 lowered to what can be opened");
    // Keep reading the log so that it cannot be what stalls the server here.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let addr = server.url.trim_start_matches("ws://").trim_end_matches('/').parse().expect("socket address");
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(RawSocket::handshake(addr).await);
    }
    // Past the cap every handshake is answered, with 503.
    for _ in 0..20 {
        let status = handshake_status(addr).await;
        assert!(status.starts_with("HTTP/1.1 503"), "past the cap: {status}");
    }
    drop(held);
}

#[tokio::test]
async fn a_full_standard_error_pipe_never_stalls_calls() {
    let mut command = server_command(&[]);
    // Piped and never read: the pipe fills after a few kilobytes of trace.
    command.env("RUST_LOG", "trace").stderr(Stdio::piped());
    let server = ready(command, "ws").await;
    let mut alice = Client::login(&server.url, "alice").await;
    let mut bob = Client::login(&server.url, "bob").await;
    for i in 0..300 {
        let call_id = format!("c{i}");
        invite(&mut alice, &call_id, "bob").await;
        expect_invitation(&mut bob, &call_id, "alice").await;
        bob.send(serde_json::json!({"type": "received", "call_id": call_id})).await;
        bob.ok(serde_json::json!({"type": "accept", "call_id": call_id})).await;
        alice.ok(serde_json::json!({"type": "hangup", "call_id": call_id})).await;
        bob.recv_until("hung_up").await;
    }
    drop(server);
}
