//! Transport and envelope: text frames of one JSON object, `req` echoed,
//! bad input answered with `bad_request` / `unknown_type` and never fatal
//! nor state-changing, binary frames, the 65,536-byte message limit, text
//! that is not UTF-8 (1007).

use super::client::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// Sends `text` and asserts a `bad_request` error comes back with `req`
/// (or without any `req` when `req` is `None`).
async fn expect_bad_request(c: &mut Client, text: &str, req: Option<i64>) {
    c.send_text(text).await;
    let reply = c.recv().await;
    assert_eq!(ty(&reply), "error", "{text} should get an error, got {reply}");
    check_error(&reply, "bad_request");
    match req {
        Some(r) => {
            assert_eq!(reply.get("req"), Some(&json!(r)), "{text}: the error should carry req {r}: {reply}")
        }
        None => assert!(reply.get("req").is_none(), "{text}: no req could be read, yet got {reply}"),
    }
}

#[tokio::test]
async fn not_json_gets_bad_request_and_the_connection_stays() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    // Before login: not a request at all, so bad_request (not not_logged_in).
    for text in ["hello", "{", "{\"type\":\"login\",", "", "\u{0}"] {
        expect_bad_request(&mut c, text, None).await;
    }
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
    for text in ["hello", "{\"type\":", "[1,"] {
        expect_bad_request(&mut c, text, None).await;
    }
    // Exactly one JSON object per frame: two are not JSON, and neither runs.
    c.send_text(r#"{"type":"logout","req":1}{"type":"logout","req":2}"#).await;
    check_error(&c.recv().await, "bad_request");
    c.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
}

#[tokio::test]
async fn json_that_is_not_an_object_gets_bad_request() {
    let server = start_default().await;
    let mut c = Client::login(&server.url(), "alice").await;
    for text in ["[1,2]", "42", "\"login\"", "null", "true", "[{\"type\":\"logout\",\"req\":1}]"] {
        expect_bad_request(&mut c, text, None).await;
    }
    c.ok(json!({"type": "query_presence", "peer_ids": []})).await;
}

#[tokio::test]
async fn missing_type_gets_bad_request_with_req() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    expect_bad_request(&mut c, r#"{"req":3,"peer_id":"alice"}"#, Some(3)).await;
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
    expect_bad_request(&mut c, r#"{"req":4,"call_id":"c1","callee_id":"bob"}"#, Some(4)).await;
    expect_bad_request(&mut c, r#"{}"#, None).await;
}

#[tokio::test]
async fn mistyped_field_gets_bad_request_with_req() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    expect_bad_request(&mut c, r#"{"type":5,"req":11}"#, Some(11)).await;
    expect_bad_request(&mut c, r#"{"type":"login","req":12,"peer_id":7}"#, Some(12)).await;
    expect_bad_request(&mut c, r#"{"type":"login","req":13,"peer_id":"alice","token":1}"#, Some(13)).await;
    expect_bad_request(&mut c, r#"{"type":"login","req":14,"peer_id":"alice","device":["x"]}"#, Some(14))
        .await;
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
    for (req, text) in [
        (21, r#"{"type":"invite","req":21,"call_id":["c1"],"callee_id":"bob"}"#),
        (22, r#"{"type":"invite","req":22,"call_id":"c1","callee_id":null}"#),
        (23, r#"{"type":"invite","req":23,"call_id":"c1","callee_id":"bob","content":5}"#),
        (24, r#"{"type":"invite","req":24,"call_id":"c1","callee_id":"bob","channel_id":{}}"#),
        (25, r#"{"type":"cancel","req":25,"call_id":1}"#),
        (26, r#"{"type":"accept","req":26,"call_id":"c1","response":false}"#),
        (27, r#"{"type":"refuse","req":27,"call_id":"c1","response":[]}"#),
        (28, r#"{"type":"hangup","req":28,"call_id":2.5}"#),
        (29, r#"{"type":"query_presence","req":29,"peer_ids":"bob"}"#),
        (30, r#"{"type":"subscribe_presence","req":30,"peer_ids":[1,2]}"#),
        (31, r#"{"type":"unsubscribe_presence","req":31,"peer_ids":{"bob":true}}"#),
    ] {
        expect_bad_request(&mut c, text, Some(req)).await;
    }
    // Nothing of the above created a call: c1 is free.
    c.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
}

#[tokio::test]
async fn missing_required_field_gets_bad_request_with_req() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    expect_bad_request(&mut c, r#"{"type":"login","req":1}"#, Some(1)).await;
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
    for (req, text) in [
        (2, r#"{"type":"invite","req":2,"callee_id":"bob"}"#),
        (3, r#"{"type":"invite","req":3,"call_id":"c1"}"#),
        (4, r#"{"type":"cancel","req":4}"#),
        (5, r#"{"type":"accept","req":5}"#),
        (6, r#"{"type":"refuse","req":6,"response":"busy"}"#),
        (7, r#"{"type":"hangup","req":7}"#),
        (8, r#"{"type":"query_presence","req":8}"#),
        (9, r#"{"type":"subscribe_presence","req":9}"#),
        (10, r#"{"type":"unsubscribe_presence","req":10}"#),
    ] {
        expect_bad_request(&mut c, text, Some(req)).await;
    }
    c.ok(json!({"type": "query_presence", "peer_ids": []})).await;
}

#[tokio::test]
async fn unknown_type_gets_unknown_type_and_the_connection_stays() {
    let server = start_default().await;
    let mut c = Client::login(&server.url(), "alice").await;
    let reply = c.error(json!({"type": "dance", "req": 9}), "unknown_type").await;
    assert_eq!(reply["req"], 9);
    c.send(json!({"type": "Invite", "call_id": "c1", "callee_id": "bob"})).await;
    let reply = c.recv().await;
    check_error(&reply, "unknown_type");
    assert!(reply.get("req").is_none(), "no req was sent: {reply}");
    c.ok(json!({"type": "query_presence", "peer_ids": ["bob"]})).await;
}

#[tokio::test]
async fn req_is_echoed_verbatim_and_events_have_none() {
    let server = start_default().await;
    let url = server.url();
    let mut alice = Client::connect(&url).await;
    let reply = alice.request(json!({"type": "login", "req": 0, "peer_id": "alice"})).await;
    check(&reply, json!({"type": "ok", "req": 0}));
    let big: i64 = 1 << 40;
    let reply = alice.request(json!({"type": "query_presence", "req": big, "peer_ids": []})).await;
    check(&reply, json!({"type": "ok", "req": big}));
    let reply = alice.request(json!({"type": "cancel", "req": big + 1, "call_id": "nope"})).await;
    check(&reply, json!({"type": "error", "req": big + 1, "code": "not_found"}));
    // A request without req still gets its reply (without req).
    alice.send(json!({"type": "query_presence", "peer_ids": []})).await;
    let reply = alice.recv().await;
    check(&reply, json!({"type": "ok"}));
    assert!(reply.get("req").is_none(), "{reply}");
    let mut bob = Client::login(&url, "bob").await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    let inv = bob.recv().await;
    check_event(&inv, json!({"type": "invitation", "call_id": "c1"}));
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let server = start_default().await;
    let url = server.url();
    let mut bob = Client::login(&url, "bob").await;
    let mut alice = Client::connect(&url).await;
    alice
        .ok(json!({"type": "login", "peer_id": "alice", "x-extra": {"nested": [1, 2]}, "version": 2, "req2": "a"}))
        .await;
    alice
        .ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "content": "hi", "priority": "high", "ttl": 5}))
        .await;
    let inv = bob.recv().await;
    check_event(&inv, json!({"type": "invitation", "call_id": "c1", "caller_id": "alice", "content": "hi"}));
    bob.send(json!({"type": "received", "call_id": "c1", "extra": null})).await;
    check_event(&alice.recv().await, json!({"type": "received_by_peer", "call_id": "c1"}));
    bob.ok(json!({"type": "accept", "call_id": "c1", "response": "yes", "video": true})).await;
    check_event(&alice.recv().await, json!({"type": "accepted", "call_id": "c1", "response": "yes"}));
}

#[tokio::test]
async fn bad_input_changes_nothing() {
    let server = start_default().await;
    let url = server.url();
    // A malformed login does not log in.
    let mut alice = Client::connect(&url).await;
    expect_bad_request(&mut alice, r#"{"type":"login","req":1,"peer_id":5}"#, Some(1)).await;
    alice.error(json!({"type": "invite", "call_id": "c0", "callee_id": "bob"}), "not_logged_in").await;
    alice.ok(json!({"type": "login", "peer_id": "alice"})).await;
    let mut bob = Client::login(&url, "bob").await;

    // A malformed invite creates no call: bob hears nothing, the id stays free.
    expect_bad_request(
        &mut alice,
        r#"{"type":"invite","req":2,"call_id":"c1","callee_id":"bob","content":7}"#,
        Some(2),
    )
    .await;
    bob.expect_silence(QUIET).await;
    alice.ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob"})).await;
    check_event(&bob.recv().await, json!({"type": "invitation", "call_id": "c1"}));

    // A malformed accept (and one breaking a limit) leaves the call ringing.
    expect_bad_request(&mut bob, r#"{"type":"accept","req":3,"call_id":"c1","response":5}"#, Some(3)).await;
    expect_bad_request(&mut bob, r#"{"type":"accept","req":4,"response":"ok"}"#, Some(4)).await;
    bob.send_text(r#"{"type":"accept","req":5,"call_id":"c1""#).await;
    check_error(&bob.recv().await, "bad_request");
    bob.error(json!({"type": "accept", "call_id": "c1", "response": bytes(8193)}), "invalid_argument").await;
    // A malformed cancel does not cancel.
    expect_bad_request(&mut alice, r#"{"type":"cancel","req":6,"call_id":["c1"]}"#, Some(6)).await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    let login = Client::login_device(&url, "alice", "other").await.1;
    check(
        &login["calls"][0],
        json!({"call_id": "c1", "role": "caller", "state": "ringing", "peer_id": "bob"}),
    );
    bob.ok(json!({"type": "refuse", "call_id": "c1", "response": "busy"})).await;
    check_event(&alice.recv().await, json!({"type": "refused", "call_id": "c1", "response": "busy"}));
}

#[tokio::test]
async fn binary_frame_gets_bad_request_and_the_connection_stays() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    let login = json!({"type": "login", "req": 1, "peer_id": "alice"}).to_string();
    c.send_message(Message::binary(login.into_bytes())).await;
    let reply = c.recv().await;
    check_error(&reply, "bad_request");
    // The binary login did not log in.
    c.error(json!({"type": "query_presence", "peer_ids": []}), "not_logged_in").await;
    c.ok(json!({"type": "login", "peer_id": "alice"})).await;
    c.send_message(Message::binary(vec![0u8, 159, 146, 150])).await;
    check_error(&c.recv().await, "bad_request");
    c.ok(json!({"type": "query_presence", "peer_ids": ["alice"]})).await;
}

/// A valid request padded with an unknown field to exactly `len` bytes.
fn padded_request(req: i64, len: usize) -> String {
    let head = format!(r#"{{"type":"query_presence","req":{req},"peer_ids":["alice"],"pad":""#);
    let tail = "\"}";
    let text = format!("{head}{}{tail}", "p".repeat(len - head.len() - tail.len()));
    assert_eq!(text.len(), len);
    serde_json::from_str::<Value>(&text).expect("the padded request is JSON");
    text
}

#[tokio::test]
async fn message_of_exactly_65536_bytes_is_accepted() {
    let server = start_default().await;
    let mut c = Client::login(&server.url(), "alice").await;
    c.send_text(padded_request(77, 65_536)).await;
    let reply = c.recv().await;
    check(&reply, json!({"type": "ok", "req": 77}));
    c.ok(json!({"type": "query_presence", "peer_ids": []})).await;
}

#[tokio::test]
async fn message_over_65536_bytes_closes_with_1009() {
    let server = start_default().await;
    let mut c = Client::login(&server.url(), "alice").await;
    c.send_text(padded_request(78, 65_537)).await;
    assert_eq!(c.expect_close().await, Some(1009));
    assert!(c.pending().iter().all(|m| m.get("req") != Some(&json!(78))), "{:?}", c.pending());
}

#[tokio::test]
async fn message_over_65536_bytes_closes_with_1009_before_login() {
    let server = start_default().await;
    let mut c = Client::connect(&server.url()).await;
    c.send_text(format!(r#"{{"type":"login","peer_id":"alice","token":"{}"}}"#, bytes(70_000))).await;
    assert_eq!(c.expect_close().await, Some(1009));
}

/// Sends `text` as a fragmented text message: a Text frame, then
/// Continuation frames, each at most `chunk` bytes.
async fn send_fragmented(c: &mut Client, text: &str, chunk: usize) {
    let pieces: Vec<&[u8]> = text.as_bytes().chunks(chunk).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        c.send_message(Message::Frame(Frame::message(piece.to_vec(), opcode, i + 1 == pieces.len()))).await;
    }
}

#[tokio::test]
async fn fragmented_message_within_the_limit_is_reassembled() {
    let server = start_default().await;
    let mut c = Client::login(&server.url(), "alice").await;
    send_fragmented(&mut c, &padded_request(79, 65_536), 20_000).await;
    check(&c.recv().await, json!({"type": "ok", "req": 79}));
}

#[tokio::test]
async fn fragmented_message_over_65536_bytes_closes_with_1009() {
    let server = start_default().await;
    let mut c = Client::login(&server.url(), "alice").await;
    // Every fragment is small; only the reassembled message is too big.
    send_fragmented(&mut c, &padded_request(80, 65_537), 20_000).await;
    assert_eq!(c.expect_close().await, Some(1009));
}

#[tokio::test]
async fn text_frame_that_is_not_utf8_closes_with_1007() {
    let server = start_default().await;
    let not_utf8 =
        || Frame::message(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'], OpCode::Data(Data::Text), true);
    // Before login and after.
    let mut anonymous = Client::connect(&server.url()).await;
    anonymous.send_message(Message::Frame(not_utf8())).await;
    assert_eq!(anonymous.expect_close().await, Some(1007));
    let mut alice = Client::login(&server.url(), "alice").await;
    alice.send_message(Message::Frame(not_utf8())).await;
    assert_eq!(alice.expect_close().await, Some(1007));
    // A fragmented message whose second fragment breaks the UTF-8 of the first.
    let mut bob = Client::login(&server.url(), "bob").await;
    // The head ends with the first byte of a two-byte sequence (0xC3); `z` cannot follow it.
    let mut head = br#"{"type":"ping","x":""#.to_vec();
    head.push(0xc3);
    let head = Frame::message(head, OpCode::Data(Data::Text), false);
    bob.send_message(Message::Frame(head)).await;
    bob.send_message(Message::Frame(Frame::message(b"zz\"}".to_vec(), OpCode::Data(Data::Continue), true)))
        .await;
    assert_eq!(bob.expect_close().await, Some(1007));
}
