//! The everyday features at the `update` level, with recording stand-ins:
//! do-not-disturb, call waiting, the call history and missed calls,
//! contacts with presence, the settings screen, notifications and the QA
//! timeline.

use super::support::{Harness, MediaRecord, Sent};
use softphone_app::call_history::{Direction, Outcome};
use softphone_app::config::{AppConfig, Contact};
use softphone_app::ringtone::Tone;
use softphone_app::{Message, Options, Screen, Tab, contacts, history, in_call, incoming, settings};
use softphone_core::sdk::{CancelReason, Event, FailureReason, HangupReason};
use std::time::{Duration, Instant};

fn config(change: impl FnOnce(&mut AppConfig)) -> AppConfig {
    let mut config = AppConfig::default();
    change(&mut config);
    config
}

/// An app with `config`, signed in as alice.
fn alice_with(change: impl FnOnce(&mut AppConfig)) -> Harness {
    let mut h = Harness::with_config(config(change));
    h.sign_in("alice");
    h
}

/// bob's call `c1` answered: alice in a call with bob.
fn in_call_with_bob(h: &mut Harness) {
    h.invited("c1", "bob");
    h.send(Message::Incoming(incoming::Message::Accept));
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c1".into() });
    assert!(matches!(h.app.screen(), Screen::InCall(_)));
    h.tones.clear();
}

fn outcomes(h: &Harness) -> Vec<(String, Direction, Outcome)> {
    h.app.history().records().iter().map(|r| (r.peer.clone(), r.direction, r.outcome)).collect()
}

#[test]
fn do_not_disturb_refuses_with_dnd_without_ringing_and_records_a_missed_call() {
    let mut h = alice_with(|c| c.do_not_disturb = true);
    h.send(Message::Focused(false));
    h.invited("c1", "bob");
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c1".into(), "dnd".into())));
    assert!(h.app.incoming().is_none());
    assert!(h.tones.items().iter().all(|t| *t != Some(Tone::Ringtone)), "never rang: {:?}", h.tones.items());
    let record = &h.app.history().records()[0];
    assert_eq!((record.peer.as_str(), record.outcome), ("bob", Outcome::Missed));
    assert_eq!(record.detail, "do not disturb");
    assert_eq!(h.app.history().unseen_missed().count(), 1);
    assert!(h.notes.items().is_empty(), "do not disturb: no notification either");
    // The same invitation again (after a reconnect) is refused, not recorded twice.
    h.invited("c1", "bob");
    assert_eq!(h.app.history().records().len(), 1);
}

#[test]
fn call_waiting_shows_a_second_prompt_with_a_short_tone() {
    let mut h = alice_with(|c| c.call_waiting = true);
    in_call_with_bob(&mut h);
    h.invited("c2", "carol");
    assert!(!h.sent.items().iter().any(|s| matches!(s, Sent::Refuse(..))), "not refused busy");
    assert_eq!(h.app.waiting().map(|w| w.call.peer()), Some("carol"));
    assert!(h.app.incoming().is_none(), "no modal dialog over the call");
    assert!(matches!(h.app.screen(), Screen::InCall(_)), "the call goes on");
    assert_eq!(h.tone(), Some(Tone::CallWaiting));
    assert_eq!(h.app.title(), "carol is waiting \u{2014} softphone");
    // A third call while one waits is refused busy.
    h.invited("c3", "dave");
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c3".into(), "busy".into())));
    assert_eq!(h.app.waiting().unwrap().call.facts.call_id, "c2");
}

#[test]
fn answering_a_waiting_call_hangs_up_the_first() {
    let mut h = alice_with(|c| c.call_waiting = true);
    in_call_with_bob(&mut h);
    h.invited("c2", "carol");
    h.send(Message::Waiting(incoming::Message::Accept));
    let sent = h.sent.items();
    assert_eq!(sent[sent.len() - 2..], [Sent::HangUp("c1".into()), Sent::Accept("c2".into())]);
    assert_eq!(h.media.last(), Some(MediaRecord::Stopped("c1".into())));
    assert_eq!(h.tone(), None);
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c2".into() });
    let Screen::InCall(call) = h.app.screen() else { panic!("{:?}", h.app.screen()) };
    assert_eq!(call.call.facts.peer, "carol");
    assert!(h.app.waiting().is_none() && h.app.incoming().is_none());
    // bob's call ended; carol's is in the history from its answer on.
    assert_eq!(
        outcomes(&h),
        [
            ("bob".into(), Direction::Incoming, Outcome::Answered),
            ("carol".into(), Direction::Incoming, Outcome::Answered)
        ]
    );
    // Our hang-up of bob's call, confirmed late, changes nothing.
    h.sdk(Event::HungUp { call_id: "c1".into(), reason: HangupReason::Hangup, by: "alice".into() });
    assert!(matches!(h.app.screen(), Screen::InCall(c) if c.call.facts.peer == "carol"));
}

#[test]
fn declining_a_waiting_call_keeps_the_first() {
    let mut h = alice_with(|c| c.call_waiting = true);
    in_call_with_bob(&mut h);
    h.invited("c2", "carol");
    h.send(Message::Waiting(incoming::Message::Refuse));
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c2".into(), "busy".into())));
    assert!(h.app.waiting().is_none());
    assert_eq!(h.tone(), None);
    assert!(matches!(h.app.screen(), Screen::InCall(c) if c.call.facts.peer == "bob"));
    // bob's call is in the history from its answer on; carol's declined.
    assert_eq!(
        outcomes(&h),
        [
            ("bob".into(), Direction::Incoming, Outcome::Answered),
            ("carol".into(), Direction::Incoming, Outcome::Declined)
        ]
    );
}

#[test]
fn a_waiting_call_rings_when_the_first_call_ends_and_is_missed_if_given_up() {
    let mut h = alice_with(|c| c.call_waiting = true);
    in_call_with_bob(&mut h);
    h.invited("c2", "carol");
    h.sdk(Event::HungUp { call_id: "c1".into(), reason: HangupReason::Hangup, by: "bob".into() });
    assert_eq!(h.app.incoming().map(|d| d.call.peer()), Some("carol"));
    assert!(h.app.waiting().is_none());
    assert_eq!(h.tone(), Some(Tone::Ringtone));
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c2".into(), reason: CancelReason::CallerCanceled });
    assert_eq!(h.tone(), None);
    assert_eq!(
        outcomes(&h),
        [
            ("bob".into(), Direction::Incoming, Outcome::Answered),
            ("carol".into(), Direction::Incoming, Outcome::Missed)
        ]
    );
}

#[test]
fn without_call_waiting_a_call_during_a_call_is_refused_busy_and_missed() {
    let mut h = alice_with(|_| {});
    in_call_with_bob(&mut h);
    h.invited("c2", "carol");
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c2".into(), "busy".into())));
    assert!(h.app.waiting().is_none());
    assert_eq!(h.app.history().unseen_missed().next().map(|r| r.peer.as_str()), Some("carol"));
}

#[test]
fn every_call_lands_in_the_history_with_its_outcome() {
    let mut h = alice_with(|_| {});
    // A missed call, however short it rang.
    h.invited("c1", "bob");
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled });
    // Answered on another device; declined here; expired.
    h.invited("c2", "carol");
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c2".into(), reason: CancelReason::AnsweredElsewhere });
    h.invited("c3", "dave");
    h.send(Message::Incoming(incoming::Message::Refuse));
    h.invited("c4", "erin");
    h.sdk(Event::RemoteInvitationFailure { call_id: "c4".into(), reason: FailureReason::Expired });
    // Outgoing: busy, failed (offline), canceled, answered and hung up.
    let place = |h: &mut Harness, peer: &str| {
        h.send(Message::CallBack(peer.into()));
        let Some(Sent::Invite { call_id, .. }) = h.sent.last() else { panic!() };
        call_id
    };
    let id = place(&mut h, "bob");
    h.sdk(Event::LocalInvitationRefused { call_id: id, response: "busy".into() });
    let id = place(&mut h, "carol");
    h.sdk(Event::LocalInvitationFailure { call_id: id, reason: FailureReason::PeerOffline });
    let id = place(&mut h, "dave");
    h.send(Message::Outgoing(softphone_app::outgoing::Message::Cancel));
    h.sdk(Event::LocalInvitationCanceled { call_id: id });
    let id = place(&mut h, "erin");
    h.sdk(Event::LocalInvitationAccepted { call_id: id, response: String::new(), device: String::new() });
    h.send(Message::InCall(in_call::Message::HangUp));
    use Direction::{Incoming as In, Outgoing as Out};
    let expected = [
        ("bob", In, Outcome::Missed),
        ("carol", In, Outcome::AnsweredElsewhere),
        ("dave", In, Outcome::Declined),
        ("erin", In, Outcome::Missed),
        ("bob", Out, Outcome::Busy),
        ("carol", Out, Outcome::Failed),
        ("dave", Out, Outcome::Canceled),
        ("erin", Out, Outcome::Answered),
    ]
    .map(|(p, d, o)| (p.to_owned(), d, o));
    assert_eq!(outcomes(&h), expected);
    let failed = &h.app.history().records()[5];
    assert_eq!(failed.detail, "peer offline", "a failure keeps its reason");
    assert!(h.app.history().records().iter().all(|r| r.started_at_ms > 0 && !r.channel.is_empty()));
    // What is in memory is what is on disk.
    let h = h.restart();
    assert_eq!(outcomes(&h), expected);
}

#[test]
fn missed_calls_are_counted_until_the_history_is_seen_even_across_restarts() {
    let mut h = alice_with(|_| {});
    for (id, caller) in [("c1", "bob"), ("c2", "carol")] {
        h.invited(id, caller);
        h.sdk(Event::RemoteInvitationCanceled { call_id: id.into(), reason: CancelReason::CallerCanceled });
    }
    assert_eq!(h.app.history().unseen_missed().count(), 2);
    assert_eq!(h.app.title(), "(2) alice \u{2014} softphone");
    let mut h = h.restart();
    assert_eq!(h.app.history().unseen_missed().count(), 2, "still unseen after a restart");
    h.sign_in("alice");
    h.send(Message::Go(Tab::History));
    assert!(
        matches!(h.app.screen(), Screen::History(s) if s.fresh == 2),
        "marked on the screen that shows them"
    );
    assert_eq!(h.app.history().unseen_missed().count(), 0);
    h.send(Message::Go(Tab::Dial));
    let h = h.restart();
    assert_eq!(h.app.history().unseen_missed().count(), 0, "seen is remembered");
}

#[test]
fn call_back_from_the_home_screen_and_from_a_history_row() {
    let mut h = alice_with(|_| {});
    h.invited("c1", "bob");
    h.sdk(Event::RemoteInvitationFailure { call_id: "c1".into(), reason: FailureReason::CallerOffline });
    h.send(Message::CallBack("bob".into()));
    assert!(matches!(h.sent.last(), Some(Sent::Invite { peer, .. }) if peer == "bob"));
    let Some(Sent::Invite { call_id, .. }) = h.sent.last() else { panic!() };
    h.sdk(Event::LocalInvitationRefused { call_id, response: "busy".into() });
    // From the history screen, with the keyboard: the newest row is bob's busy call.
    h.send(Message::Go(Tab::History));
    h.send(Message::History(history::Message::Move(1)));
    h.send(Message::History(history::Message::Move(1)));
    h.send(Message::History(history::Message::CallSelected));
    assert!(matches!(h.sent.last(), Some(Sent::Invite { peer, .. }) if peer == "bob"));
    assert!(matches!(h.app.screen(), Screen::Outgoing(_)));
}

#[test]
fn contacts_are_added_watched_called_and_removed() {
    let mut h = alice_with(|c| c.contacts = vec![Contact { peer_id: "bob".into(), name: "Bob".into() }]);
    assert!(h.sent.items().contains(&Sent::Subscribe(vec!["bob".into()])), "watched at sign-in");
    h.send(Message::Go(Tab::Contacts));
    h.send(Message::Contacts(contacts::Message::NewPeer("carol".into())));
    h.send(Message::Contacts(contacts::Message::Add));
    assert_eq!(h.sent.last(), Some(Sent::Subscribe(vec!["carol".into()])));
    let session = h.app.session_number().unwrap();
    let reply = [("carol".to_owned(), true)].into_iter().collect();
    h.send(Message::PresenceReplied(session, Ok(reply)));
    assert_eq!(h.app.presence().get("carol"), Some(&true));
    h.sdk(Event::Presence { peer_id: "carol".into(), online: false });
    assert_eq!(h.app.presence().get("carol"), Some(&false));
    let (saved, _) = AppConfig::load(&h.paths());
    let ids: Vec<_> = saved.contacts.iter().map(|c| c.peer_id.as_str()).collect();
    assert_eq!(ids, ["bob", "carol"], "saved at once");

    h.send(Message::Contacts(contacts::Message::Remove("bob".into())));
    assert_eq!(h.sent.last(), Some(Sent::Unsubscribe(vec!["bob".into()])));
    assert_eq!(AppConfig::load(&h.paths()).0.contacts.len(), 1);
    // Enter on the selected contact calls it.
    h.send(Message::Contacts(contacts::Message::Move(1)));
    h.send(Message::Contacts(contacts::Message::CallSelected));
    assert!(matches!(h.sent.last(), Some(Sent::Invite { peer, .. }) if peer == "carol"));
}

#[test]
fn settings_are_saved_and_take_effect_or_canceled() {
    let mut h = alice_with(|_| {});
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::DoNotDisturb(true)));
    h.send(Message::Settings(settings::Message::Cancel));
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    assert!(!h.app.config().do_not_disturb, "Cancel changes nothing");

    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::DoNotDisturb(true)));
    h.send(Message::Settings(settings::Message::Ringback(false)));
    h.send(Message::Settings(settings::Message::Volume(40)));
    h.send(Message::Settings(settings::Message::Save));
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    assert_eq!(h.app.notice(), Some("Settings saved."));
    let (saved, _) = AppConfig::load(&h.paths());
    assert!(saved.do_not_disturb && !saved.ringback && saved.volume == 40);
    assert_eq!(h.sounds.last().map(|s| s.volume), Some(0.4), "the ringer follows the new volume");
    h.invited("c1", "bob");
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c1".into(), "dnd".into())), "in force at once");
}

#[test]
fn a_bad_ringtone_file_is_refused_and_nothing_is_saved() {
    let mut h = alice_with(|_| {});
    let bad = h.home.path().join("ring.mp3");
    std::fs::write(&bad, b"definitely not audio").unwrap();
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::Ringtone(bad.display().to_string())));
    h.send(Message::Settings(settings::Message::Save));
    let Screen::Settings(form) = h.app.screen() else { panic!() };
    assert!(form.error.as_deref().unwrap().contains("not a sound file"));
    assert_eq!(AppConfig::load(&h.paths()).0.ringtone, None);
}

#[test]
fn the_preview_plays_the_form_sound_until_stopped_or_over() {
    let mut h = alice_with(|_| {});
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::Volume(25)));
    h.send(Message::Settings(settings::Message::Preview));
    assert_eq!(h.tone(), Some(Tone::Ringtone));
    assert_eq!(h.sounds.last().map(|s| s.volume), Some(0.25), "previewed as the form has it");
    h.send(Message::Settings(settings::Message::Preview));
    assert_eq!(h.tone(), None, "the button stops it");
    assert_eq!(h.sounds.last().map(|s| s.volume), Some(0.8), "the saved sound is back");
    h.send(Message::Settings(settings::Message::Preview));
    h.send(Message::Tick(Instant::now() + Duration::from_secs(60)));
    assert_eq!(h.tone(), None, "it ends by itself");
    h.send(Message::Settings(settings::Message::Preview));
    h.send(Message::Settings(settings::Message::Cancel));
    assert_eq!(h.tone(), None, "leaving the screen stops it");
}

#[test]
fn ringback_can_be_turned_off() {
    let mut h = alice_with(|c| c.ringback = false);
    h.send(Message::CallBack("bob".into()));
    let Some(Sent::Invite { call_id, .. }) = h.sent.last() else { panic!() };
    h.sdk(Event::LocalInvitationReceivedByPeer { call_id });
    assert_eq!(h.tone(), None);
}

#[test]
fn notifications_only_while_the_window_is_not_in_front() {
    let mut h = alice_with(|_| {});
    h.invited("c1", "bob");
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled });
    assert!(h.notes.items().is_empty(), "the window is in front: it shows the call itself");
    h.send(Message::Focused(false));
    h.invited("c2", "carol");
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c2".into(), reason: CancelReason::CallerCanceled });
    let notes = h.notes.items();
    assert_eq!(
        notes,
        [
            ("Incoming call".to_owned(), "carol is calling".to_owned()),
            ("Missed call".to_owned(), "Missed call from carol".to_owned())
        ]
    );
}

#[test]
fn the_qa_timeline_has_every_sdk_event_and_ui_change() {
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("qa/timeline.jsonl");
    let options = Options { log_events: Some(log.clone()), ..Options::default() };
    let mut h = Harness::start(home, options, None);
    h.sign_in("alice");
    h.invited("c1", "bob");
    h.send(Message::Incoming(incoming::Message::Accept));
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c1".into() });
    h.send(Message::InCall(in_call::Message::HangUp));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let sdk: Vec<&str> =
        lines.iter().filter(|l| l["kind"] == "sdk").map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(sdk, ["connected", "invitation_received", "invitation_accepted"]);
    let screens: Vec<&str> =
        lines.iter().filter(|l| l["kind"] == "ui").map(|l| l["screen"].as_str().unwrap()).collect();
    assert!(screens.windows(3).any(|w| w == ["dial", "in_call", "dial"]), "{screens:?}");
    assert!(
        lines.iter().any(|l| l["kind"] == "ui" && l["dialog"]["caller"] == "bob" && l["tone"] == "ringtone")
    );
    assert!(lines.iter().any(|l| l["kind"] == "input" && l["message"].as_str().unwrap().contains("Accept")));
    assert!(lines.iter().all(|l| l["t_us"].as_u64().is_some()));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("PeerId("), "keystrokes in fields (tokens among them) are not logged");
}
