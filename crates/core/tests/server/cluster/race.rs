//! One outcome per call under races between nodes: an accept on one node
//! against a cancel on another, and an accept against a refuse from two
//! devices on two nodes, and a hang-up from each side at once, thousands
//! of times over several pairs at once.
//! Every round must have exactly one winner, and both sides must agree.

use super::{Cluster, race_pairs, unlimited_rate};
use crate::server::client::*;
use serde_json::json;
use softphone_core::server::ServerConfig;

const NODES: usize = 3;
const PAIRS: usize = 8;
const ROUNDS_PER_PAIR: usize = 250; // 2000 races in all

/// Who won one race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Winner {
    Accept,
    Cancel,
}

/// One accept-vs-cancel race on call `id`, already ringing at `callee`;
/// checks both replies and the event each side then gets.
async fn race_once(caller: &mut Client, callee: &mut Client, id: &str, caller_id: &str, i: usize) -> Winner {
    let creq = caller.fresh_req();
    let areq = callee.fresh_req();
    let cancel = json!({"type": "cancel", "req": creq, "call_id": id});
    let accept = json!({"type": "accept", "req": areq, "call_id": id, "response": "r"});
    if i.is_multiple_of(2) {
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
            Winner::Cancel
        }
        ("error", "ok") => {
            check_error(&c, "already_accepted");
            let ev = caller.recv().await;
            check_event(&ev, json!({"type": "accepted", "call_id": id, "response": "r"}));
            caller.ok(json!({"type": "hangup", "call_id": id})).await;
            let ev = callee.recv().await;
            check_event(&ev, json!({"type": "hung_up", "call_id": id, "reason": "hangup", "by": caller_id}));
            Winner::Accept
        }
        _ => panic!("call {id}: cancel got {c}, accept got {a}: not one outcome"),
    }
}

/// `ROUNDS_PER_PAIR` races between caller{pair} on one node and
/// callee{pair} on the next; returns (accept won, cancel won).
async fn accept_against_cancel(urls: Vec<String>, pair: usize) -> (usize, usize) {
    let caller_id = format!("caller{pair}");
    let callee_id = format!("callee{pair}");
    let mut caller = Client::login(&urls[pair % NODES], &caller_id).await;
    let mut callee = Client::login(&urls[(pair + 1) % NODES], &callee_id).await;
    let (mut accept_won, mut cancel_won) = (0, 0);
    for i in 0..ROUNDS_PER_PAIR {
        let id = format!("ac-{pair}-{i}");
        invite(&mut caller, &id, &callee_id).await;
        expect_invitation(&mut callee, &id, &caller_id).await;
        match race_once(&mut caller, &mut callee, &id, &caller_id, i).await {
            Winner::Accept => accept_won += 1,
            Winner::Cancel => cancel_won += 1,
        }
    }
    caller.expect_silence(QUIET).await;
    callee.expect_silence(QUIET).await;
    (accept_won, cancel_won)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_on_one_node_against_cancel_on_another_has_one_outcome() {
    let cluster = Cluster::start(NODES, unlimited_rate(ServerConfig::default())).await;
    let urls: Vec<String> = (0..NODES).map(|i| cluster.url(i)).collect();
    let (accepted, canceled) = race_pairs(&urls, PAIRS, accept_against_cancel).await;
    assert_eq!(accepted + canceled, PAIRS * ROUNDS_PER_PAIR);
    eprintln!("across nodes, accept against cancel: accept won {accepted}, cancel won {canceled}");
}

/// `rounds` races between two devices of callee{pair}, on two nodes, one
/// accepting and one refusing; the caller on a third. Returns (accept won,
/// refuse won).
async fn accept_against_refuse(urls: Vec<String>, pair: usize, rounds: usize) -> (usize, usize) {
    let caller_id = format!("caller{pair}");
    let callee_id = format!("callee{pair}");
    let mut caller = Client::login(&urls[pair % NODES], &caller_id).await;
    let (mut d1, _) = Client::login_device(&urls[(pair + 1) % NODES], &callee_id, "d1").await;
    let (mut d2, _) = Client::login_device(&urls[(pair + 2) % NODES], &callee_id, "d2").await;
    let (mut accept_won, mut refuse_won) = (0, 0);
    for i in 0..rounds {
        let id = format!("ar-{pair}-{i}");
        invite(&mut caller, &id, &callee_id).await;
        expect_invitation(&mut d1, &id, &caller_id).await;
        expect_invitation(&mut d2, &id, &caller_id).await;
        let (r1, r2) = (d1.fresh_req(), d2.fresh_req());
        tokio::join!(
            d1.send(json!({"type": "accept", "req": r1, "call_id": id, "response": "yes"})),
            d2.send(json!({"type": "refuse", "req": r2, "call_id": id, "response": "no"})),
        );
        let (a, r) = (d1.reply(r1).await, d2.reply(r2).await);
        match (ty(&a), ty(&r)) {
            ("ok", "error") => {
                check_error(&r, "already_ended");
                let ev = caller.recv().await;
                check_event(
                    &ev,
                    json!({"type": "accepted", "call_id": id, "response": "yes", "device": "d1"}),
                );
                let ev = d2.recv().await;
                check_event(&ev, json!({"type": "canceled", "call_id": id, "reason": "answered_elsewhere"}));
                d1.ok(json!({"type": "hangup", "call_id": id})).await;
                let hung_up = json!({"type": "hung_up", "call_id": id, "reason": "hangup", "by": callee_id});
                check_event(&caller.recv().await, hung_up.clone());
                check_event(&d2.recv().await, hung_up);
                accept_won += 1;
            }
            ("error", "ok") => {
                check_error(&a, "already_ended");
                let ev = caller.recv().await;
                check_event(&ev, json!({"type": "refused", "call_id": id, "response": "no"}));
                let ev = d1.recv().await;
                check_event(&ev, json!({"type": "canceled", "call_id": id, "reason": "refused_elsewhere"}));
                refuse_won += 1;
            }
            _ => panic!("call {id}: accept got {a}, refuse got {r}: not one outcome"),
        }
    }
    for c in [&mut caller, &mut d1, &mut d2] {
        c.expect_silence(QUIET).await;
    }
    (accept_won, refuse_won)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_and_refuse_from_devices_on_two_nodes_have_one_outcome() {
    const ROUNDS: usize = 125; // 1000 races in all
    let cluster = Cluster::start(NODES, unlimited_rate(ServerConfig::default())).await;
    let urls: Vec<String> = (0..NODES).map(|i| cluster.url(i)).collect();
    let (accepted, refused) =
        race_pairs(&urls, PAIRS, |urls, pair| accept_against_refuse(urls, pair, ROUNDS)).await;
    assert_eq!(accepted + refused, PAIRS * ROUNDS);
    eprintln!("across nodes, accept against refuse: accept won {accepted}, refuse won {refused}");
}

/// `rounds` calls between caller{pair} and callee{pair} on two nodes,
/// accepted, then hung up by both at once: one hang-up wins, the other
/// gets `already_ended` and the winner's `hung_up`. Each node then tries
/// the hang-up with the call as it remembers it (accepted); the loser's
/// compare-and-set must refuse that stale memory and decide on Redis.
/// Returns (caller won, callee won).
async fn hangup_against_hangup(urls: Vec<String>, pair: usize, rounds: usize) -> (usize, usize) {
    let caller_id = format!("caller{pair}");
    let callee_id = format!("callee{pair}");
    let mut caller = Client::login(&urls[pair % NODES], &caller_id).await;
    let mut callee = Client::login(&urls[(pair + 1) % NODES], &callee_id).await;
    let (mut caller_won, mut callee_won) = (0, 0);
    for i in 0..rounds {
        let id = format!("hh-{pair}-{i}");
        invite(&mut caller, &id, &callee_id).await;
        expect_invitation(&mut callee, &id, &caller_id).await;
        callee.ok(json!({"type": "accept", "call_id": id, "response": "r"})).await;
        check_event(&caller.recv().await, json!({"type": "accepted", "call_id": id}));
        let (r1, r2) = (caller.fresh_req(), callee.fresh_req());
        tokio::join!(
            caller.send(json!({"type": "hangup", "req": r1, "call_id": id})),
            callee.send(json!({"type": "hangup", "req": r2, "call_id": id})),
        );
        let (a, b) = (caller.reply(r1).await, callee.reply(r2).await);
        let (loser, by) = match (ty(&a), ty(&b)) {
            ("ok", "error") => {
                check_error(&b, "already_ended");
                caller_won += 1;
                (&mut callee, &caller_id)
            }
            ("error", "ok") => {
                check_error(&a, "already_ended");
                callee_won += 1;
                (&mut caller, &callee_id)
            }
            _ => panic!("call {id}: the caller's hang-up got {a}, the callee's {b}: not one outcome"),
        };
        let hung_up = json!({"type": "hung_up", "call_id": id, "reason": "hangup", "by": by});
        check_event(&loser.recv().await, hung_up);
    }
    caller.expect_silence(QUIET).await;
    callee.expect_silence(QUIET).await;
    (caller_won, callee_won)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_ups_from_both_sides_on_two_nodes_have_one_outcome() {
    const ROUNDS: usize = 125; // 1000 races in all
    let cluster = Cluster::start(NODES, unlimited_rate(ServerConfig::default())).await;
    let urls: Vec<String> = (0..NODES).map(|i| cluster.url(i)).collect();
    let (by_caller, by_callee) =
        race_pairs(&urls, PAIRS, |urls, pair| hangup_against_hangup(urls, pair, ROUNDS)).await;
    assert_eq!(by_caller + by_callee, PAIRS * ROUNDS);
    eprintln!(
        "across nodes, hang-up against hang-up: the caller's won {by_caller}, the callee's {by_callee}"
    );
}
