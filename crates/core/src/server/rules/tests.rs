//! The call rules on their own: plain values in, decisions out, no server,
//! no store, no clock.

use super::*;
use crate::server::calls::{Lapse, UnixMs, test_call};

const T0: UnixMs = UnixMs(1_764_000_000_000);
const ACK: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(30);

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// alice's call c1 ringing at bob, whose session has the invitation.
fn ringing() -> Call<UnixMs> {
    let mut call = test_call(T0);
    call.reach(T0, ACK);
    call
}

/// The same call, accepted at `T0 + 1 s`.
fn accepted() -> Call<UnixMs> {
    let mut call = ringing();
    call.phase = Phase::Accepted { at: T0 + s(1) };
    call
}

fn json(text: &Outbound) -> serde_json::Value {
    serde_json::from_str(text.as_str()).unwrap()
}

/// The first of `notices`.
fn first(notices: &Notices) -> &Notice {
    notices.iter().next().expect("a notice")
}

/// Each notice as (to, type, reason or "", seen, skip_asker).
fn said(notices: &Notices) -> Vec<(String, String, String, bool, bool)> {
    notices
        .iter()
        .map(|n| {
            let m = json(&n.text);
            let field = |k: &str| m[k].as_str().unwrap_or("").to_owned();
            (n.to.to_string(), field("type"), field("reason"), n.seen, n.skip_asker)
        })
        .collect()
}

fn code(refused: Refused) -> ErrorCode {
    match refused {
        Refused::Now(e) => e.code,
        Refused::NotLive(asked) => panic!("not live as {asked:?}: wanted an error now"),
    }
}

fn ended(accepted: bool) -> Ended {
    Ended { caller: "alice".into(), callee: "bob".into(), accepted }
}

#[test]
fn nobody_calls_themself() {
    assert_eq!(may_call("alice", "alice").unwrap_err().code, ErrorCode::InvalidArgument);
    assert!(may_call("alice", "bob").is_ok());
}

#[test]
fn a_new_call_needs_a_fresh_id_and_room_under_both_caps() {
    let max = 4;
    let room =
        Admission { id_taken: false, caller_calls: max - 1, ringing_at_callee: MAX_RINGING_PER_CALLEE - 1 };
    assert!(admit("c1", "bob", room, max).is_ok());
    let taken = admit("c1", "bob", Admission { id_taken: true, caller_calls: max, ..room }, max).unwrap_err();
    assert_eq!(taken.code, ErrorCode::DuplicateCallId, "the id is looked at first");
    assert_eq!(taken.message, "call id c1 is already in use");
    let full = admit("c1", "bob", Admission { caller_calls: max, ..room }, max).unwrap_err();
    assert_eq!(
        (full.code, full.message.as_str()),
        (ErrorCode::TooManyCalls, "you already take part in 4 live calls")
    );
    let ringing = admit("c1", "bob", Admission { ringing_at_callee: MAX_RINGING_PER_CALLEE, ..room }, max);
    let ringing = ringing.unwrap_err();
    assert_eq!(ringing.code, ErrorCode::TooManyCalls);
    assert!(ringing.message.contains("ring at bob"), "{}", ringing.message);
}

#[test]
fn a_reached_callee_gets_the_invitation_and_its_ack_timeout_runs() {
    let mut call = test_call(T0);
    let invitation = reach(&mut call, T0 + s(2), ACK);
    assert!(call.callee_seen && call.callee_lost.is_none());
    assert!(matches!(call.phase, Phase::Ringing { ack: Ack::Running(at), .. } if at == T0 + s(32)));
    assert_eq!(
        said(&Notices::one(invitation)),
        [("bob".into(), "invitation".into(), "".into(), true, false)]
    );
}

#[test]
fn the_invitation_says_the_time_left_rounded_up() {
    let call = ringing();
    assert_eq!(json(&invitation(&call, T0))["expires_in_ms"], 60_000);
    assert_eq!(json(&invitation(&call, UnixMs(T0.0 + 59_999)))["expires_in_ms"], 1);
}

#[test]
fn only_the_caller_cancels_and_only_while_it_rings() {
    let call = ringing();
    let ending = cancel(Some(&call), "alice").unwrap();
    assert_eq!(ending.outcome, Outcome::Canceled);
    assert_eq!(
        said(&ending.notices),
        [("bob".into(), "canceled".into(), "caller_canceled".into(), true, false)]
    );
    let unseen = test_call(T0);
    assert!(
        !first(&cancel(Some(&unseen), "alice").unwrap().notices).seen,
        "kept only for a callee that saw it"
    );
    assert!(matches!(cancel(Some(&call), "bob"), Err(Refused::NotLive(Asked::As(Role::Caller)))));
    assert!(matches!(cancel::<UnixMs>(None, "alice"), Err(Refused::NotLive(Asked::As(Role::Caller)))));
    assert_eq!(code(cancel(Some(&accepted()), "alice").unwrap_err()), ErrorCode::AlreadyAccepted);
}

#[test]
fn a_call_that_is_not_live_is_judged_on_what_is_remembered() {
    let caller = Asked::As(Role::Caller);
    let callee = Asked::As(Role::Callee);
    let e = |asked, ended: Option<&Ended>, peer| not_live(asked, ended, "c1", peer);
    assert_eq!(e(caller, Some(&ended(true)), "alice").code, ErrorCode::AlreadyAccepted);
    assert_eq!(e(caller, Some(&ended(false)), "alice").code, ErrorCode::AlreadyEnded);
    assert_eq!(e(callee, Some(&ended(true)), "bob").code, ErrorCode::AlreadyEnded);
    let stranger = e(callee, Some(&ended(false)), "carol");
    assert_eq!(
        (stranger.code, stranger.message.as_str()),
        (ErrorCode::NotFound, "no call c1 in which you are the callee")
    );
    let wrong_side = e(caller, Some(&ended(false)), "bob");
    assert_eq!(wrong_side.message, "no call c1 in which you are the caller");
    assert_eq!(e(caller, None, "alice").code, ErrorCode::NotFound);
    let hung_up = e(Asked::Hangup, Some(&ended(true)), "bob");
    assert_eq!(
        (hung_up.code, hung_up.message.as_str()),
        (ErrorCode::AlreadyEnded, "call c1 was already hung up")
    );
    assert_eq!(e(Asked::Hangup, Some(&ended(false)), "bob").message, "no accepted call c1 of yours");
    assert_eq!(e(Asked::Hangup, Some(&ended(true)), "carol").code, ErrorCode::NotFound);
    let refused = Refused::NotLive(Asked::Hangup);
    assert_eq!(refused.given(None, "c1", "bob").code, ErrorCode::NotFound);
}

#[test]
fn the_first_received_ends_the_ack_timeout_and_tells_the_caller_once() {
    let mut call = ringing();
    assert!(received(&mut call, "alice").is_none(), "not the callee's: nothing");
    let told = received(&mut call, "bob").expect("the first");
    assert_eq!(
        said(&Notices::one(told)),
        [("alice".into(), "received_by_peer".into(), "".into(), true, false)]
    );
    assert!(matches!(call.phase, Phase::Ringing { received: true, ack: Ack::Done, .. }));
    assert!(received(&mut call, "bob").is_none(), "the second says nothing");
    assert!(received(&mut accepted(), "bob").is_none(), "an answered call: nothing");
}

#[test]
fn only_the_callee_answers_and_only_while_it_rings() {
    assert!(answerable(Some(&ringing()), "bob").is_ok());
    assert!(matches!(answerable(Some(&ringing()), "alice"), Err(Refused::NotLive(Asked::As(Role::Callee)))));
    let answered = answerable(Some(&accepted()), "bob").map(|_| ()).unwrap_err();
    assert_eq!(code(answered), ErrorCode::AlreadyEnded);
    assert!(within_callee_cap(3, 4).is_ok());
    assert_eq!(within_callee_cap(4, 4).unwrap_err().code, ErrorCode::TooManyCalls);
}

#[test]
fn an_accept_tells_the_caller_and_stops_the_callees_other_sessions() {
    let mut call = ringing();
    let acceptance = Acceptance {
        response: "hi".into(),
        media_key: Some("k".into()),
        device: "phone".into(),
        media: None,
    };
    let notices = accept(&mut call, acceptance, T0 + s(5));
    assert!(matches!(call.phase, Phase::Accepted { at } if at == T0 + s(5)));
    assert_eq!(
        said(&notices),
        [
            ("alice".into(), "accepted".into(), "".into(), true, false),
            ("bob".into(), "canceled".into(), "answered_elsewhere".into(), true, true),
        ]
    );
    let accepted = json(&first(&notices).text);
    assert_eq!((accepted["response"].as_str(), accepted["device"].as_str()), (Some("hi"), Some("phone")));
    assert_eq!(accepted["media_key"], "k");
}

#[test]
fn a_refusal_ends_the_call_telling_the_caller() {
    let ending = refuse(Some(&ringing()), "bob", "busy").unwrap();
    assert_eq!(ending.outcome, Outcome::Refused);
    assert_eq!(
        said(&ending.notices),
        [
            ("alice".into(), "refused".into(), "".into(), true, false),
            ("bob".into(), "canceled".into(), "refused_elsewhere".into(), true, true),
        ]
    );
    assert_eq!(json(&first(&ending.notices).text)["response"], "busy");
    assert!(matches!(refuse(Some(&ringing()), "carol", ""), Err(Refused::NotLive(Asked::As(Role::Callee)))));
}

#[test]
fn either_party_hangs_up_an_accepted_call_only() {
    for peer in ["alice", "bob"] {
        let ending = hangup(Some(&accepted()), peer).unwrap();
        assert_eq!(ending.outcome, Outcome::HungUp(HangupReason::Hangup));
        let told = said(&ending.notices);
        assert_eq!(told.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(told.iter().all(|t| t.1 == "hung_up" && t.2 == "hangup" && t.4), "{told:?}");
        assert_eq!(json(&first(&ending.notices).text)["by"], peer);
    }
    assert_eq!(code(hangup(Some(&ringing()), "alice").unwrap_err()), ErrorCode::NotFound);
    assert_eq!(code(hangup(Some(&accepted()), "carol").unwrap_err()), ErrorCode::NotFound);
    assert!(matches!(hangup::<UnixMs>(None, "alice"), Err(Refused::NotLive(Asked::Hangup))));
}

#[test]
fn a_deadline_ends_a_call_only_once_due() {
    let call = ringing(); // ack at T0 + 30 s, ring timeout at T0 + 60 s
    assert_eq!(lapsed(&call, GRACE, T0 + s(29)), None);
    assert_eq!(lapsed(&call, GRACE, T0 + s(30)), Some(Lapse::AckTimeout));
    let unreached = test_call(T0); // the callee's grace since the invite
    assert_eq!(lapsed(&unreached, GRACE, T0 + s(30)), Some(Lapse::CalleeLost));
    let mut acked = ringing();
    received(&mut acked, "bob");
    assert_eq!(lapsed(&acked, GRACE, T0 + s(59)), None);
    assert_eq!(lapsed(&acked, GRACE, T0 + s(60)), Some(Lapse::Expired));
    assert_eq!(lapsed(&accepted(), GRACE, T0 + s(3600)), None, "an accepted call has no deadline of its own");
}

#[test]
fn each_deadline_tells_each_side_what_the_protocol_says() {
    let unseen = test_call(T0);
    let cases = [
        (
            ringing(),
            Lapse::CalleeLost,
            "peer_offline",
            vec![("alice", "failure", "peer_offline", true)],
            Some("bob"),
        ),
        (
            ringing(),
            Lapse::CallerLost,
            "caller_offline",
            vec![("bob", "failure", "caller_offline", true)],
            Some("alice"),
        ),
        (
            unseen,
            Lapse::AckTimeout,
            "peer_no_response",
            vec![("alice", "failure", "peer_no_response", true), ("bob", "failure", "expired", false)],
            None,
        ),
        (
            ringing(),
            Lapse::Expired,
            "expired",
            vec![("alice", "failure", "expired", true), ("bob", "failure", "expired", true)],
            None,
        ),
        (
            accepted(),
            Lapse::CalleeLost,
            "lost",
            vec![("alice", "hung_up", "peer_offline", true)],
            Some("bob"),
        ),
        (
            accepted(),
            Lapse::CallerLost,
            "lost",
            vec![("bob", "hung_up", "peer_offline", true)],
            Some("alice"),
        ),
    ];
    for (call, lapse, outcome, told, offline) in cases {
        let ending = end_by(&call, lapse);
        assert_eq!(ending.outcome.name(&call.phase), outcome, "{lapse:?}");
        let want: Vec<_> = told
            .iter()
            .map(|(to, ty, why, seen)| (to.to_string(), ty.to_string(), why.to_string(), *seen, false))
            .collect();
        assert_eq!(said(&ending.notices), want, "{lapse:?}");
        assert_eq!(ending.while_offline.as_deref(), offline, "{lapse:?}");
    }
    let by = json(&first(&end_by(&accepted(), Lapse::CalleeLost).notices).text);
    assert_eq!(by["by"], "bob", "the one who went away");
}

#[test]
fn a_login_ends_the_grace_and_hands_over_a_call_ringing_at_it() {
    let mut call = test_call(T0); // bob had no session at the invite
    let arrival = arrive(&mut call, "bob", true, T0 + s(4), ACK);
    assert!(call.callee_lost.is_none() && call.callee_seen);
    assert_eq!(arrival.first_reached, Some(s(4)));
    assert_eq!(json(arrival.invitation.as_ref().unwrap())["expires_in_ms"], 56_000);
    assert!(matches!(call.phase, Phase::Ringing { ack: Ack::Running(at), .. } if at == T0 + s(34)));
    let live = arrival.live.unwrap();
    assert_eq!((live.role, live.peer_id.as_str()), (Role::Callee, "alice"));
    // A second session of bob: handed over again, but not counted as a first delivery.
    let again = arrive(&mut call, "bob", false, T0 + s(5), ACK);
    assert!(again.invitation.is_some() && again.first_reached.is_none());
    // The caller coming back: its grace ends; nothing rings at it.
    call.caller_lost = Some(T0);
    let caller = arrive(&mut call, "alice", true, T0 + s(6), ACK);
    assert!(call.caller_lost.is_none() && caller.invitation.is_none());
    assert_eq!(caller.live.unwrap().role, Role::Caller);
    // An accepted call is listed, not handed over.
    let mut call = accepted();
    assert!(arrive(&mut call, "bob", true, T0 + s(7), ACK).invitation.is_none());
}

#[test]
fn going_offline_starts_the_grace_once_and_pauses_the_ack() {
    let mut unseen = test_call(T0);
    unseen.callee_lost = None;
    assert!(!went_offline(&mut unseen, "bob", T0 + s(1)), "a callee that never saw it is not marked");
    let mut call = ringing(); // ack at T0 + 30 s
    assert!(went_offline(&mut call, "bob", T0 + s(10)));
    assert_eq!(call.callee_lost, Some(T0 + s(10)));
    assert!(matches!(call.phase, Phase::Ringing { ack: Ack::Paused(left), .. } if left == s(20)));
    assert!(!went_offline(&mut call, "bob", T0 + s(12)), "marked once: the first time stays");
    assert_eq!(call.callee_lost, Some(T0 + s(10)));
    assert!(went_offline(&mut call, "alice", T0 + s(11)));
    assert_eq!(call.caller_lost, Some(T0 + s(11)));
    assert!(!went_offline(&mut call, "carol", T0 + s(11)));
    // Found online after all: the mark goes and the ack timeout runs on.
    found_online(&mut call, "bob", T0 + s(15), ACK);
    assert!(call.callee_lost.is_none());
    assert!(matches!(call.phase, Phase::Ringing { ack: Ack::Running(at), .. } if at == T0 + s(35)));
    found_online(&mut call, "alice", T0 + s(15), ACK);
    assert!(call.caller_lost.is_none());
}

#[test]
fn the_caps_on_sessions_and_subscriptions_say_so() {
    assert!(!session_cap_reached(2, 3) && session_cap_reached(3, 3));
    let e = too_many_sessions("bob", 3);
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::TooManySessions, "bob already has 3 sessions"));
    assert_eq!(too_many_subscriptions().code, ErrorCode::TooManySubscriptions);
}
