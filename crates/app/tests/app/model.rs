//! The call model on its own, without iced: events in, effects and state
//! out. The screens' tests (simulator, transitions) drive the same model
//! through the app.

use softphone_app::call_history::{Direction, HistoryEntry, Outcome};
use softphone_app::model::policy::{BUSY, DND, DND_DETAIL};
use softphone_app::model::{Active, Ask, Calls, Effect, Event, OutgoingStage, Policy, RingStage};
use softphone_app::ringtone::Tone;
use softphone_core::sdk::{self, CancelReason, HangupReason};
use std::time::{Duration, Instant};

fn policy() -> Policy {
    Policy { me: "alice".into(), ..Policy::default() }
}

fn invitation(call_id: &str, caller: &str) -> Event {
    Event::Sdk(sdk::Event::RemoteInvitationReceived {
        call_id: call_id.into(),
        caller_id: caller.into(),
        content: "hello".into(),
        channel_id: format!("{caller}-room"),
        expires_in: Duration::from_secs(30),
    })
}

fn records(effects: &[Effect]) -> Vec<&HistoryEntry> {
    effects
        .iter()
        .filter_map(|e| if let Effect::Record(r) | Effect::RecordOnce(r) = e { Some(r) } else { None })
        .collect()
}

fn asks(effects: &[Effect]) -> Vec<&Ask> {
    effects.iter().filter_map(|e| if let Effect::Ask(a) = e { Some(a) } else { None }).collect()
}

/// Alice's model with bob's call up (answered here).
fn in_call_with_bob(now: Instant) -> Calls {
    let mut calls = Calls::default();
    calls.on_event(invitation("c1", "bob"), &policy(), now);
    calls.on_event(Event::Accept { call_id: "c1".into() }, &policy(), now);
    calls.on_event(Event::Sdk(sdk::Event::RemoteInvitationAccepted { call_id: "c1".into() }), &policy(), now);
    assert!(calls.in_call());
    calls
}

#[test]
fn an_invitation_rings_is_answered_and_hung_up_with_one_record() {
    let now = Instant::now();
    let mut calls = Calls::default();
    let effects = calls.on_event(invitation("c1", "bob"), &policy(), now);
    assert!(effects.contains(&Effect::Attention(true)), "{effects:?}");
    assert!(
        matches!(&effects[0], Effect::Notify { summary: "Incoming call", body } if body == "bob is calling")
    );
    assert_eq!(calls.tone(&policy()), Some(Tone::Ringtone));
    assert_eq!(calls.media(), None);

    let effects = calls.on_event(Event::Accept { call_id: "c1".into() }, &policy(), now);
    assert_eq!(asks(&effects), [&Ask::Accept("c1".into())]);
    assert_eq!(calls.ringing().map(|d| d.stage), Some(RingStage::Accepting));
    assert_eq!(calls.tone(&policy()), None, "answering stops the ringtone");

    let answered =
        Event::Replied { call_id: "c1".into(), request: softphone_app::CallRequest::Accept, result: Ok(()) };
    let effects = calls.on_event(answered, &policy(), now);
    assert!(effects.contains(&Effect::Attention(false)), "the urgency hint is withdrawn");
    let written = effects.iter().find_map(|e| if let Effect::RecordAnswered(r) = e { Some(r) } else { None });
    assert_eq!(
        written.map(|r| (r.outcome, r.duration_ms)),
        Some((Outcome::Answered, 0)),
        "written at the answer"
    );
    assert_eq!(calls.media().map(|f| (f.peer.as_str(), f.channel.as_str())), Some(("bob", "bob-room")));

    let later = now + Duration::from_secs(7);
    let effects = calls.on_event(Event::HangUp { call_id: "c1".into() }, &policy(), later);
    assert_eq!(asks(&effects), [&Ask::HangUp("c1".into())]);
    let rows = records(&effects);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].direction, rows[0].outcome, rows[0].duration_ms),
        (Direction::Incoming, Outcome::Answered, 7000)
    );
    assert!(effects.contains(&Effect::Redial("bob".into())));
    assert!(effects.contains(&Effect::Notice(Some("Call with bob ended".into()))));
    assert!(calls.active().is_none() && calls.media().is_none());
}

#[test]
fn do_not_disturb_refuses_without_a_sound_and_records_a_quiet_miss() {
    let mut calls = Calls::default();
    let dnd = Policy { do_not_disturb: true, ..policy() };
    let effects = calls.on_event(invitation("c1", "bob"), &dnd, Instant::now());
    assert_eq!(asks(&effects), [&Ask::Refuse { call_id: "c1".into(), response: DND.into() }]);
    let [Effect::RecordOnce(row), _] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!((row.outcome, row.detail.as_str()), (Outcome::Missed, DND_DETAIL));
    assert!(calls.ringing().is_none());
    assert_eq!(calls.tone(&dnd), None);
}

#[test]
fn an_invitation_while_placing_a_call_is_refused_busy() {
    let now = Instant::now();
    let mut calls = Calls::default();
    let placed = Event::Placed {
        call_id: "out-1".into(),
        peer: "carol".into(),
        channel: "r".into(),
        content: String::new(),
    };
    calls.on_event(placed, &policy(), now);
    let effects = calls.on_event(invitation("c1", "bob"), &policy(), now);
    assert_eq!(asks(&effects), [&Ask::Refuse { call_id: "c1".into(), response: BUSY.into() }]);
    assert!(calls.ringing().is_none());
    assert!(matches!(calls.active(), Some(Active::Outgoing(c)) if c.call.peer() == "carol"));
}

#[test]
fn ringback_plays_only_when_wanted_and_busy_ends_the_call() {
    let now = Instant::now();
    let mut calls = Calls::default();
    let placed = Event::Placed {
        call_id: "out-1".into(),
        peer: "bob".into(),
        channel: "r".into(),
        content: String::new(),
    };
    calls.on_event(placed, &policy(), now);
    calls.on_event(
        Event::Sdk(sdk::Event::LocalInvitationReceivedByPeer { call_id: "out-1".into() }),
        &policy(),
        now,
    );
    assert!(matches!(calls.active(), Some(Active::Outgoing(c)) if c.stage == OutgoingStage::Ringing));
    assert_eq!(calls.tone(&policy()), None);
    assert_eq!(calls.tone(&Policy { ringback: true, ..policy() }), Some(Tone::Ringback));

    let refused = sdk::Event::LocalInvitationRefused { call_id: "out-1".into(), response: " Busy ".into() };
    let effects = calls.on_event(Event::Sdk(refused), &policy(), now);
    let rows = records(&effects);
    assert_eq!((rows[0].direction, rows[0].outcome), (Direction::Outgoing, Outcome::Busy));
    assert!(effects.contains(&Effect::Notice(Some("bob is busy".into()))));
    assert!(effects.contains(&Effect::Redial("bob".into())));
    assert!(calls.active().is_none());
}

#[test]
fn a_waiting_call_rings_once_the_call_ends() {
    let now = Instant::now();
    let waiting = Policy { call_waiting: true, ..policy() };
    let mut calls = in_call_with_bob(now);
    let effects = calls.on_event(invitation("c2", "carol"), &waiting, now);
    assert!(asks(&effects).is_empty(), "not refused: it waits");
    assert_eq!(calls.waiting().map(|w| w.call.peer()), Some("carol"));
    assert_eq!(calls.tone(&waiting), Some(Tone::CallWaiting));

    let hung_up = sdk::Event::HungUp { call_id: "c1".into(), reason: HangupReason::Hangup, by: "bob".into() };
    let effects = calls.on_event(Event::Sdk(hung_up), &waiting, now);
    assert!(effects.contains(&Effect::Notice(Some("bob hung up".into()))));
    assert!(effects.contains(&Effect::Attention(true)), "the waiting call now rings: {effects:?}");
    assert_eq!(calls.ringing().map(|d| d.call.peer()), Some("carol"));
    assert!(calls.waiting().is_none());
    assert_eq!(calls.tone(&waiting), Some(Tone::Ringtone));
}

#[test]
fn events_about_other_calls_change_nothing() {
    let now = Instant::now();
    let mut calls = in_call_with_bob(now);
    let stale = [
        sdk::Event::HungUp { call_id: "old".into(), reason: HangupReason::Hangup, by: "bob".into() },
        sdk::Event::RemoteInvitationCanceled { call_id: "old".into(), reason: CancelReason::CallerCanceled },
        sdk::Event::LocalInvitationAccepted {
            call_id: "old".into(),
            response: String::new(),
            device: String::new(),
        },
    ];
    for event in stale {
        assert_eq!(calls.on_event(Event::Sdk(event), &policy(), now), []);
    }
    assert!(calls.in_call());
    assert_eq!(calls.on_event(Event::HangUp { call_id: "old".into() }, &policy(), now), []);
}

#[test]
fn closing_ends_every_call_and_tells_the_other_sides() {
    let now = Instant::now();
    let mut calls = in_call_with_bob(now);
    calls.on_event(invitation("c2", "carol"), &Policy { call_waiting: true, ..policy() }, now);
    let effects = calls.on_event(Event::Closing, &policy(), now + Duration::from_secs(3));
    let refuse = Ask::Refuse { call_id: "c2".into(), response: String::new() };
    assert_eq!(asks(&effects), [&Ask::HangUp("c1".into()), &refuse]);
    let rows: Vec<_> =
        records(&effects).iter().map(|r| (r.peer.as_str(), r.outcome, r.detail.as_str())).collect();
    assert_eq!(rows, [("bob", Outcome::Answered, ""), ("carol", Outcome::Missed, "the app was closed")]);
    assert!(calls.active().is_none() && calls.ringing().is_none() && calls.waiting().is_none());

    let mut placing = Calls::default();
    let placed = Event::Placed {
        call_id: "out-1".into(),
        peer: "bob".into(),
        channel: "r".into(),
        content: String::new(),
    };
    placing.on_event(placed, &policy(), now);
    let effects = placing.on_event(Event::Closing, &policy(), now);
    assert_eq!(asks(&effects), [&Ask::Cancel("out-1".into())]);
    assert_eq!(records(&effects)[0].outcome, Outcome::Canceled);
}

#[test]
fn a_session_that_ends_records_what_it_had_and_sends_nothing() {
    let now = Instant::now();
    let mut calls = Calls::default();
    calls.on_event(invitation("c1", "bob"), &policy(), now);
    let effects = calls.on_event(Event::SessionEnded, &policy(), now);
    assert!(asks(&effects).is_empty());
    assert_eq!(records(&effects)[0].detail, "signed out");
    assert!(effects.contains(&Effect::Attention(false)));
    assert_eq!(calls.tone(&policy()), None);
}
