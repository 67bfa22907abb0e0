//! Identifiers and limits: `peer_id`, `call_id` (1 to 64 bytes of printable
//! ASCII), `content` / `response` (8192 bytes), `channel_id` and `device`
//! (64 bytes). Beyond: `invalid_argument`, and the message names the field.

use super::client::*;
use serde_json::{Value, json};

/// Asserts `reply` is `invalid_argument` and its message names `field`.
fn names(reply: &Value, field: &str) {
    check_error(reply, "invalid_argument");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "the message should name {field:?}: {reply}");
}

/// Ids that break the printable-ASCII 1..64 rule.
fn bad_ids() -> Vec<String> {
    vec![
        String::new(),
        bytes(65),
        "a b".into(),
        "é".into(),
        "tab\there".into(),
        "del\u{7f}".into(),
        "nl\n".into(),
        "\u{0}".into(),
    ]
}

/// Ids at the edges of the rule.
fn good_ids() -> Vec<String> {
    vec![bytes(64), "!".into(), "~".into(), "!~\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}".into()]
}

#[tokio::test]
async fn peer_id_limits_at_login() {
    let server = start_default().await;
    let url = server.url();
    let mut c = Client::connect(&url).await;
    for id in bad_ids() {
        let reply = c.error(json!({"type": "login", "peer_id": id}), "invalid_argument").await;
        names(&reply, "peer_id");
    }
    // None of those logged in.
    c.error(json!({"type": "query_presence", "peer_ids": []}), "not_logged_in").await;
    for id in good_ids() {
        let mut c = Client::connect(&url).await;
        c.ok(json!({"type": "login", "peer_id": id})).await;
    }
}

#[tokio::test]
async fn callee_id_limits_at_invite() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    for (i, id) in bad_ids().into_iter().enumerate() {
        let reply = alice
            .error(json!({"type": "invite", "call_id": format!("c{i}"), "callee_id": id}), "invalid_argument")
            .await;
        names(&reply, "callee_id");
    }
    let long = bytes(64);
    let mut callee = Client::login(&url, &long).await;
    alice.ok(json!({"type": "invite", "call_id": "ok", "callee_id": long})).await;
    check_event(&callee.recv().await, json!({"type": "invitation", "call_id": "ok", "caller_id": "alice"}));
    // The rejected invites created no call.
    callee.expect_silence(QUIET).await;
    alice.ok(json!({"type": "invite", "call_id": "c0", "callee_id": "bob"})).await;
}

#[tokio::test]
async fn call_id_limits_at_invite() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    for id in bad_ids() {
        let reply = alice
            .error(json!({"type": "invite", "call_id": id, "callee_id": "bob"}), "invalid_argument")
            .await;
        names(&reply, "call_id");
    }
    bob.expect_silence(QUIET).await;
    for id in good_ids() {
        alice.ok(json!({"type": "invite", "call_id": id, "callee_id": "bob"})).await;
        check_event(&bob.recv().await, json!({"type": "invitation", "call_id": id}));
        // At most 3 calls of one caller ring at one callee (v1.1): end each one.
        alice.ok(json!({"type": "cancel", "call_id": id})).await;
        check_event(&bob.recv().await, json!({"type": "canceled", "call_id": id}));
    }
}

#[tokio::test]
async fn call_id_limits_on_the_other_requests() {
    let server = start_default().await;
    let mut alice = Client::login(&server.url(), "alice").await;
    for t in ["cancel", "accept", "refuse", "hangup"] {
        for id in ["".to_string(), bytes(65), "a b".into()] {
            let reply = alice.error(json!({"type": t, "call_id": id}), "invalid_argument").await;
            names(&reply, "call_id");
        }
    }
}

#[tokio::test]
async fn content_limit_is_8192_bytes_of_utf8() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    let two_byte_8192 = "é".repeat(4096);
    for (i, content) in [bytes(8192), two_byte_8192.clone(), String::new()].into_iter().enumerate() {
        let id = format!("ok{i}");
        alice.ok(json!({"type": "invite", "call_id": id, "callee_id": "bob", "content": content})).await;
        check_event(&bob.recv().await, json!({"type": "invitation", "call_id": id, "content": content}));
    }
    for (i, content) in [bytes(8193), format!("{two_byte_8192}x")].into_iter().enumerate() {
        let reply = alice
            .error(
                json!({"type": "invite", "call_id": format!("bad{i}"), "callee_id": "bob", "content": content}),
                "invalid_argument",
            )
            .await;
        names(&reply, "content");
    }
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn channel_id_limit_is_64_bytes_of_utf8() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    for (i, channel) in [bytes(64), "é".repeat(32), String::new(), "room 1 ü".into()].into_iter().enumerate()
    {
        let id = format!("ok{i}");
        alice.ok(json!({"type": "invite", "call_id": id, "callee_id": "bob", "channel_id": channel})).await;
        check_event(&bob.recv().await, json!({"type": "invitation", "call_id": id, "channel_id": channel}));
        // At most 3 calls of one caller ring at one callee (v1.1): end each one.
        alice.ok(json!({"type": "cancel", "call_id": id})).await;
        check_event(&bob.recv().await, json!({"type": "canceled", "call_id": id}));
    }
    for (i, channel) in [bytes(65), format!("{}x", "é".repeat(32))].into_iter().enumerate() {
        let reply = alice
            .error(
                json!({"type": "invite", "call_id": format!("bad{i}"), "callee_id": "bob", "channel_id": channel}),
                "invalid_argument",
            )
            .await;
        names(&reply, "channel_id");
    }
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn response_limit_is_8192_bytes_and_a_rejected_answer_leaves_the_call_ringing() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::login(&url, "alice").await;
    let mut bob = Client::login(&url, "bob").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    alice.ok(json!({"type": "invite", "call_id": "c2", "callee_id": "bob"})).await;
    bob.recv_until("invitation").await;
    bob.recv_until("invitation").await;
    for t in ["accept", "refuse"] {
        for response in [bytes(8193), format!("{}x", "é".repeat(4096))] {
            let reply = bob
                .error(json!({"type": t, "call_id": "c1", "response": response}), "invalid_argument")
                .await;
            names(&reply, "response");
        }
    }
    alice.expect_silence(QUIET).await;
    let long = "é".repeat(4096);
    bob.ok(json!({"type": "accept", "call_id": "c1", "response": long})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c1", "response": long}));
    let long = bytes(8192);
    bob.ok(json!({"type": "refuse", "call_id": "c2", "response": long})).await;
    check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c2", "response": long}));
}

#[tokio::test]
async fn device_limit_is_64_bytes() {
    let server = start_default().await;
    let url = server.url();
    let mut c = Client::connect(&url).await;
    for device in [bytes(65), format!("{}x", "é".repeat(32))] {
        let reply =
            c.error(json!({"type": "login", "peer_id": "bob", "device": device}), "invalid_argument").await;
        names(&reply, "device");
    }
    let device = "é".repeat(32);
    let (mut bob, _) = Client::login_device(&url, "bob", &device).await;
    let mut alice = Client::login(&url, "alice").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    bob.recv_until("invitation").await;
    bob.ok(json!({"type": "accept", "call_id": "c1"})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c1", "device": device}));
}
