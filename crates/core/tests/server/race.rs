//! One outcome per call, the same on both sides, under races: accept
//! against cancel, and refuse against expiry, thousands of times across
//! several connection pairs in parallel.

use super::client::*;
use serde_json::json;
use softphone_core::server::ServerConfig;
use std::time::Duration;

const PAIRS: usize = 8;
const CALLS_PER_PAIR: usize = 250; // 2000 calls in all

fn unlimited(config: ServerConfig) -> ServerConfig {
    ServerConfig { rate_per_second: 1_000_000, rate_burst: 1_000_000, ..config }
}

/// Runs `CALLS_PER_PAIR` accept-vs-cancel races between caller{pair} and
/// callee{pair}; returns (accept won, cancel won).
async fn accept_against_cancel(url: String, pair: usize) -> (usize, usize) {
    let caller_id = format!("caller{pair}");
    let callee_id = format!("callee{pair}");
    let mut caller = Client::login(&url, &caller_id).await;
    let mut callee = Client::login(&url, &callee_id).await;
    let (mut accept_won, mut cancel_won) = (0, 0);
    for i in 0..CALLS_PER_PAIR {
        let id = format!("ac-{pair}-{i}");
        caller.ok(json!({"type": "invite", "call_id": id, "callee_id": callee_id})).await;
        check_event(
            &callee.recv().await,
            json!({"type": "invitation", "call_id": id, "caller_id": caller_id}),
        );
        let creq = caller.fresh_req();
        let areq = callee.fresh_req();
        let cancel = json!({"type": "cancel", "req": creq, "call_id": id});
        let accept = json!({"type": "accept", "req": areq, "call_id": id, "response": "r"});
        if i % 2 == 0 {
            tokio::join!(caller.send(cancel), callee.send(accept));
        } else {
            tokio::join!(callee.send(accept), caller.send(cancel));
        }
        let c = caller.reply(creq).await;
        let a = callee.reply(areq).await;
        match (ty(&c), ty(&a)) {
            ("ok", "error") => {
                check_error(&a, "already_ended");
                let ev = callee.recv().await;
                check_event(&ev, json!({"type": "canceled", "call_id": id, "reason": "caller_canceled"}));
                cancel_won += 1;
            }
            ("error", "ok") => {
                check_error(&c, "already_accepted");
                let ev = caller.recv().await;
                check_event(&ev, json!({"type": "accepted", "call_id": id, "response": "r"}));
                caller.ok(json!({"type": "hangup", "call_id": id})).await;
                let ev = callee.recv().await;
                check_event(
                    &ev,
                    json!({"type": "hung_up", "call_id": id, "reason": "hangup", "by": caller_id}),
                );
                accept_won += 1;
            }
            _ => panic!("call {id}: cancel got {c}, accept got {a}: not one outcome"),
        }
    }
    caller.expect_silence(QUIET).await;
    callee.expect_silence(QUIET).await;
    (accept_won, cancel_won)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_against_cancel_has_one_outcome_on_both_sides() {
    let server = start_server(unlimited(ServerConfig::default())).await;
    let tasks: Vec<_> =
        (0..PAIRS).map(|pair| tokio::spawn(accept_against_cancel(server.url(), pair))).collect();
    let (mut accepted, mut canceled) = (0, 0);
    for t in tasks {
        let (a, c) = t.await.expect("race task");
        accepted += a;
        canceled += c;
    }
    assert_eq!(accepted + canceled, PAIRS * CALLS_PER_PAIR);
    eprintln!("accept against cancel: accept won {accepted}, cancel won {canceled}");
}

/// Runs `CALLS_PER_PAIR` refuse-vs-expiry races; returns (refuse won, expiry won).
async fn refuse_against_expiry(url: String, pair: usize) -> (usize, usize) {
    let caller_id = format!("caller{pair}");
    let callee_id = format!("callee{pair}");
    let mut caller = Client::login(&url, &caller_id).await;
    let mut callee = Client::login(&url, &callee_id).await;
    let (mut refused, mut expired) = (0, 0);
    for i in 0..CALLS_PER_PAIR {
        let id = format!("re-{pair}-{i}");
        caller.ok(json!({"type": "invite", "call_id": id, "callee_id": callee_id})).await;
        let inv = callee.recv().await;
        check_event(&inv, json!({"type": "invitation", "call_id": id, "caller_id": caller_id}));
        // Answer around the moment the call expires: up to 10 ms before or after.
        let left = inv["expires_in_ms"].as_u64().unwrap_or_else(|| panic!("expires_in_ms: {inv}"));
        let jitter = ((i * 7919 + pair * 31) % 21) as i64 - 10;
        let delay = (left as i64 + jitter).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let reply = callee.request(json!({"type": "refuse", "call_id": id, "response": "busy"})).await;
        if ty(&reply) == "ok" {
            let ev = caller.recv().await;
            check_event(&ev, json!({"type": "refused", "call_id": id, "response": "busy"}));
            refused += 1;
        } else {
            check_error(&reply, "already_ended");
            check_event(&callee.recv().await, json!({"type": "failure", "call_id": id, "reason": "expired"}));
            check_event(&caller.recv().await, json!({"type": "failure", "call_id": id, "reason": "expired"}));
            expired += 1;
        }
    }
    caller.expect_silence(QUIET).await;
    callee.expect_silence(QUIET).await;
    (refused, expired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_against_expiry_has_one_outcome_on_both_sides() {
    let config = ServerConfig { invite_ttl: Duration::from_millis(40), ..Default::default() };
    let server = start_server(unlimited(config)).await;
    let tasks: Vec<_> =
        (0..PAIRS).map(|pair| tokio::spawn(refuse_against_expiry(server.url(), pair))).collect();
    let (mut refused, mut expired) = (0, 0);
    for t in tasks {
        let (r, e) = t.await.expect("race task");
        refused += r;
        expired += e;
    }
    assert_eq!(refused + expired, PAIRS * CALLS_PER_PAIR);
    eprintln!("refuse against expiry: refuse won {refused}, expiry won {expired}");
}
