//! The `softphone peer` binary end to end: two processes place, answer and
//! hang up a call through an in-process server; every JSON line checked.

use crate::support::*;
use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A running `softphone peer`.
pub(crate) struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every line read so far, in order.
    seen: Vec<Value>,
}

impl Peer {
    pub(crate) fn spawn(url: &str, id: &str, extra: &[&str]) -> Peer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
            .args(["peer", "--server", url, "--id", id])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn softphone peer");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Peer { child, stdin, stdout, seen: Vec::new() }
    }

    /// The process id, for sending it a signal.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("the peer runs")
    }

    pub(crate) async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Reads lines until one has every field of `want`; returns it.
    pub(crate) async fn expect(&mut self, want: Value) -> Value {
        if let Some(found) = self.seen.iter().find(|line| has(line, &want)) {
            return found.clone();
        }
        let read = async {
            loop {
                let line = self.stdout.next_line().await.unwrap().expect("the peer ended its output");
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                self.seen.push(value.clone());
                if has(&value, &want) {
                    return value;
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .unwrap_or_else(|_| panic!("no line like {want} in {:#?}", self.seen))
    }

    /// Waits for the process to exit; returns its status code.
    pub(crate) async fn exit_code(mut self) -> i32 {
        drop(self.stdin.take());
        // Drain the rest of the output so the process never blocks on a full pipe.
        while let Ok(Some(line)) = self.stdout.next_line().await {
            self.seen.push(serde_json::from_str(&line).unwrap());
        }
        let status = tokio::time::timeout(WAIT, self.child.wait()).await.unwrap().unwrap();
        status.code().expect("exited, not killed")
    }
}

/// Whether `line` has every field of `want` with the same value.
fn has(line: &Value, want: &Value) -> bool {
    want.as_object().unwrap().iter().all(|(k, v)| line.get(k) == Some(v))
}

#[tokio::test]
async fn two_peer_processes_place_answer_and_hang_up_a_call() {
    let server = start_server(server_config()).await;
    let url = server.url();
    let mut bob =
        Peer::spawn(&url, "bob", &["--device", "bob-phone", "--auto", "accept", "--response", "hi"]);
    bob.expect(json!({"event": "connected"})).await;
    let mut alice = Peer::spawn(&url, "alice", &[]);
    alice.expect(json!({"event": "connected", "reason": "login_success"})).await;

    bob.send("wait invitation_received").await;
    bob.send("wait hung_up --timeout 20s").await;
    bob.send("quit").await;
    alice.send("# place a call").await;
    alice.send("call bob --channel room-1 --content 'hello bob'").await;
    let placed = alice.expect(json!({"command": "call", "ok": true, "callee": "bob"})).await;
    let call_id = placed["call_id"].clone();
    assert!(call_id.is_string());

    let received = bob.expect(json!({"event": "invitation_received", "call_id": call_id})).await;
    assert_eq!(received["caller"], "alice");
    assert_eq!(received["content"], "hello bob");
    assert_eq!(received["channel_id"], "room-1");
    assert!(received["expires_in_ms"].as_u64().unwrap() > 0);
    bob.expect(json!({"command": "wait", "ok": true, "event": "invitation_received", "call_id": call_id}))
        .await;
    bob.expect(json!({"auto": "accept", "ok": true, "call_id": call_id})).await;
    bob.expect(json!({"event": "invitation_accepted", "call_id": call_id})).await;

    alice.expect(json!({"event": "received_by_peer", "call_id": call_id})).await;
    alice.send("wait accepted").await;
    alice
        .expect(json!({"event": "accepted", "call_id": call_id, "response": "hi", "device": "bob-phone"}))
        .await;
    alice.expect(json!({"command": "wait", "ok": true, "event": "accepted"})).await;
    alice.send("hangup").await;
    alice.expect(json!({"command": "hangup", "ok": true, "call_id": call_id})).await;
    alice.expect(json!({"event": "hung_up", "call_id": call_id, "by": "alice", "reason": "hangup"})).await;

    bob.expect(json!({"event": "hung_up", "call_id": call_id, "by": "alice", "reason": "hangup"})).await;
    bob.expect(json!({"command": "wait", "ok": true, "event": "hung_up"})).await;
    bob.expect(json!({"event": "disconnected", "reason": "logged_out"})).await;
    assert_eq!(bob.exit_code().await, 0);

    alice.send("quit").await;
    alice.expect(json!({"event": "disconnected"})).await;
    assert_eq!(alice.exit_code().await, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn quit_while_reconnecting_says_disconnected_and_exits() {
    let server = start_server(server_config()).await;
    let mut alice = Peer::spawn(&server.url(), "alice", &[]);
    alice.expect(json!({"event": "connected"})).await;
    server.shutdown().await;
    alice.expect(json!({"event": "reconnecting"})).await;
    // Logging out needs no server: the client stops in whatever phase it is.
    alice.send("quit").await;
    alice.expect(json!({"event": "disconnected", "reason": "logged_out"})).await;
    assert_eq!(alice.exit_code().await, 0);
}

#[tokio::test]
async fn a_peer_given_two_servers_moves_to_the_second_when_the_first_goes() {
    let first = start_server(server_config()).await;
    let second = start_server(server_config()).await;
    let servers = format!("{},{}", first.url(), second.url());
    let mut alice = Peer::spawn(&servers, "alice", &[]);
    alice.expect(json!({"event": "connected"})).await;
    first.shutdown().await;
    alice.expect(json!({"event": "reconnecting"})).await;
    alice.seen.clear(); // the next `connected` must be a new one
    alice.expect(json!({"event": "connected"})).await;
    // Only the second server is left: the peer is logged in there.
    let (watcher, _events) = connect(&second.url(), "watcher").await;
    alice.send("subscribe watcher").await;
    let subscribed = alice.expect(json!({"command": "subscribe", "ok": true})).await;
    assert_eq!(subscribed["online"]["watcher"], true);
    assert!(watcher.query_presence(&["alice"]).await.unwrap()["alice"]);
    alice.send("quit").await;
    assert_eq!(alice.exit_code().await, 0);
    second.shutdown().await;
}

#[tokio::test]
async fn the_exit_code_says_whether_every_command_succeeded() {
    let server = start_server(server_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.txt");
    std::fs::write(
        &script,
        "# nothing placed yet\n\ncancel\nfrobnicate now\nwait accepted --timeout 50ms\npresence nobody\nquit\nsleep 1h\n",
    )
    .unwrap();
    let mut peer = Peer::spawn(&server.url(), "alice", &["--script", script.to_str().unwrap()]);
    peer.expect(json!({"command": "cancel", "ok": false, "error": "no_call"})).await;
    let bad = peer.expect(json!({"command": "frobnicate", "ok": false, "error": "bad_command"})).await;
    assert!(bad["message"].as_str().unwrap().starts_with("line 4:"), "{bad}");
    peer.expect(json!({"command": "wait", "ok": false, "error": "timeout"})).await;
    peer.expect(json!({"command": "presence", "ok": true, "online": {"nobody": false}})).await;
    assert_eq!(peer.exit_code().await, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_unattended_peer_answers_until_terminated() {
    let server = start_server(server_config()).await;
    let mut bob =
        Peer::spawn(&server.url(), "bob", &["--auto", "refuse", "--after", "50ms", "--response", "busy"]);
    drop(bob.stdin.take()); // end of input: with --auto it keeps running
    bob.expect(json!({"event": "connected"})).await;
    let (alice, mut events) = connect(&server.url(), "alice").await;
    for _ in 0..2 {
        let invitation = alice.create_local_invitation("bob").unwrap();
        invitation.send().await.unwrap();
        let call_id = invitation.call_id().to_owned();
        wait_for(&mut events, "refused", |e| {
            *e == softphone_core::sdk::Event::LocalInvitationRefused {
                call_id: call_id.clone(),
                response: "busy".into(),
            }
        })
        .await;
        bob.expect(json!({"auto": "refuse", "ok": true, "call_id": call_id})).await;
    }
    let pid = bob.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    assert_eq!(bob.exit_code().await, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_binary_hosts_the_demo_peers() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_softphone-headless"))
        .args(["server", "--listen", "127.0.0.1:0", "--demo-peers"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn softphone server");
    let mut stdout = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, stdout.next_line()).await.unwrap().unwrap().unwrap();
    let url = first.strip_prefix("listening on ").expect("the listening line").to_owned();

    let mut alice = Peer::spawn(&url, "alice", &[]);
    alice.expect(json!({"event": "connected"})).await;
    // The demo peers log in on their own, soon after the server starts.
    alice.send("subscribe busy").await;
    let subscribed = alice.expect(json!({"command": "subscribe"})).await;
    if subscribed["online"]["busy"] != json!(true) {
        alice.expect(json!({"event": "presence", "peer": "busy", "online": true})).await;
    }
    alice.send("call busy").await;
    alice.send("wait refused").await;
    alice.expect(json!({"event": "refused", "response": "busy"})).await;
    alice.expect(json!({"command": "wait", "ok": true, "event": "refused"})).await;
    alice.send("quit").await;
    assert_eq!(alice.exit_code().await, 0);

    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(WAIT, server.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}
