//! Protocol v1.2's media handshake as the server sees it: `media_commit`
//! on the invite passed to the callee verbatim (also on the copy re-sent
//! at login), `media_reveal` from the caller of an accepted call passed to
//! every callee session, and every bad commitment or reveal refused with
//! a typed error that changes nothing. The same rules run against a
//! cluster (caller and callee on different nodes) in `cluster/handshake.rs`.

use super::client::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

fn b64(byte: u8, len: usize) -> String {
    URL_SAFE_NO_PAD.encode(vec![byte; len])
}

/// Bad commitments: refused with `invalid_argument` naming the field, and
/// no call made (the id stays free, the callee hears nothing).
pub(crate) async fn bad_commitments_change_nothing(caller_url: &str, callee_url: &str) {
    let mut alice = Client::login(caller_url, "alice").await;
    let mut bob = Client::login(callee_url, "bob").await;
    let invite = |commit: serde_json::Value, key: Option<String>| {
        let mut v = json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "media_commit": commit});
        if let Some(key) = key {
            v["media_key"] = json!(key);
        }
        v
    };
    for commit in [json!(b64(1, 31)), json!(b64(1, 33)), json!(format!("{}=", b64(1, 32))), json!("!!")] {
        let e = alice.error(invite(commit, None), "invalid_argument").await;
        assert!(e["message"].as_str().unwrap().contains("media_commit"), "{e}");
    }
    let e = alice.error(invite(json!(b64(1, 32)), Some(b64(2, 32))), "invalid_argument").await;
    assert!(e["message"].as_str().unwrap().contains("media_key"), "both fields: {e}");
    alice.error(invite(json!(7), None), "bad_request").await;
    bob.expect_silence(QUIET).await;
    // The id is still free: no bad invite left a call behind.
    alice.ok(invite(json!(b64(1, 32)), None)).await;
    let invitation = expect_invitation(&mut bob, "c1", "alice").await;
    assert_eq!(invitation["media_commit"], json!(b64(1, 32)), "passed on verbatim: {invitation}");
    assert!(invitation.get("media_key").is_none(), "{invitation}");
}

/// The reveal: refused from anyone but the caller of an accepted live call,
/// with a bad key, or after the end; passed on verbatim otherwise, to every
/// session of the callee; the call is unchanged by it.
pub(crate) async fn reveals_reach_the_callee_and_bad_ones_are_refused(caller_url: &str, callee_url: &str) {
    let mut alice = Client::login(caller_url, "alice").await;
    let (mut bob, _) = Client::login_device(callee_url, "bob", "phone").await;
    let (mut bob_desk, _) = Client::login_device(caller_url, "bob", "desk").await;
    let reveal =
        |call_id: &str, key: &str| json!({"type": "media_reveal", "call_id": call_id, "media_key": key});
    let key = b64(3, 32);
    alice.error(reveal("c1", &key), "not_found").await;
    alice
        .ok(json!({"type": "invite", "call_id": "c1", "callee_id": "bob", "media_commit": b64(1, 32)}))
        .await;
    let inv = expect_invitation(&mut bob, "c1", "alice").await;
    assert_eq!(inv["media_commit"], json!(b64(1, 32)));
    expect_invitation(&mut bob_desk, "c1", "alice").await;
    // A copy re-sent at login carries the commitment too.
    let (mut bob_tablet, _) = Client::login_device(callee_url, "bob", "tablet").await;
    let copy = bob_tablet.recv_until("invitation").await;
    assert_eq!(copy["media_commit"], json!(b64(1, 32)), "{copy}");
    alice.error(reveal("c1", &key), "not_found").await; // still ringing
    bob.ok(json!({"type": "accept", "call_id": "c1", "media_key": b64(2, 32)})).await;
    alice.recv_until("accepted").await;
    bob.error(reveal("c1", &key), "not_found").await; // the callee cannot reveal
    let mut mallory = Client::login(caller_url, "mallory").await;
    mallory.error(reveal("c1", &key), "not_found").await;
    for bad in [b64(3, 31), b64(3, 33), "not base64!".into()] {
        let e = alice.error(reveal("c1", &bad), "invalid_argument").await;
        assert!(e["message"].as_str().unwrap().contains("media_key"), "{e}");
    }
    alice.error(json!({"type": "media_reveal", "call_id": "c1"}), "bad_request").await;
    alice.ok(reveal("c1", &key)).await;
    for session in [&mut bob, &mut bob_desk, &mut bob_tablet] {
        let event = session.recv_until("media_reveal").await;
        check_event(&event, json!({"type": "media_reveal", "call_id": "c1", "media_key": key}));
    }
    // The call is unchanged: still accepted, still hung up normally.
    alice.ok(json!({"type": "hangup", "call_id": "c1"})).await;
    alice.error(reveal("c1", &key), "already_ended").await;
    mallory.error(reveal("c1", &key), "not_found").await;
    bob.recv_until("hung_up").await;
    bob.expect_silence(QUIET).await;
}

#[tokio::test]
async fn bad_media_commitments_are_invalid_argument_and_make_no_call() {
    let server = start_default().await;
    bad_commitments_change_nothing(&server.url(), &server.url()).await;
}

#[tokio::test]
async fn media_reveal_goes_to_every_callee_session_and_bad_reveals_are_refused() {
    let server = start_default().await;
    reveals_reach_the_callee_and_bad_ones_are_refused(&server.url(), &server.url()).await;
}
