//! Every SDK event to screen and sound transition, through `App::update`,
//! with recording stand-ins: especially every way a ringing invitation can
//! end, each checked to stop the ringtone.

use super::support::{Harness, MediaRecord, Sent, TEST_URL};
use softphone_app::config::AppConfig;
use softphone_app::link::{Link, Status};
use softphone_app::model::{OutgoingStage, RingStage};
use softphone_app::ringtone::Tone;
use softphone_app::{CallRequest, Message, Screen, dial, in_call, incoming, outgoing};
use softphone_core::protocol::{ErrorCode, ProtocolError, Role};
use softphone_core::sdk::{
    self, CancelReason, ConnectionReason, ConnectionState, Event, FailureReason, HangupReason,
};
use std::time::Duration;

fn ringing(h: &Harness) -> bool {
    h.app.incoming().is_some_and(|d| d.stage == RingStage::Ringing)
}

/// An app signed in as alice with bob's call `c1` ringing.
fn alice_rung_by_bob() -> Harness {
    let mut h = Harness::signed_in("alice");
    h.invited("c1", "bob");
    assert!(ringing(&h));
    assert_eq!(h.tone(), Some(Tone::Ringtone));
    h
}

fn assert_silent_and_no_dialog(h: &Harness) {
    assert!(h.app.incoming().is_none(), "the dialog is gone");
    assert_eq!(h.tone(), None, "the ringtone stopped");
    assert_eq!(h.app.tone(), None);
}

#[test]
fn sign_in_connects_shows_dial_and_remembers_the_form() {
    let h = Harness::signed_in("alice");
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    assert!(
        matches!(h.app.link(), Link::Up { session, status: Status::Connected } if session.url == TEST_URL)
    );
    assert_eq!(h.app.title(), "alice \u{2014} softphone");
    let paths = softphone_app::paths::Paths::under(h.home.path().to_owned());
    let (config, _) = AppConfig::load(&paths);
    assert_eq!((config.peer_id.as_str(), config.servers.urls()), ("alice", &[TEST_URL.to_owned()][..]));
}

#[test]
fn first_attempt_failing_signs_out_with_the_reason() {
    let mut h = Harness::new();
    h.send(Message::SignIn(softphone_app::sign_in::Message::PeerId("alice".into())));
    h.send(Message::SignIn(softphone_app::sign_in::Message::ServerUrl(TEST_URL.into())));
    h.send(Message::SignIn(softphone_app::sign_in::Message::Submit));
    assert!(matches!(h.app.link(), Link::Up { status: Status::Connecting, .. }));
    h.sdk(Event::Connection {
        state: ConnectionState::Reconnecting { attempt: 1, next_try_in: Duration::from_millis(250) },
        reason: ConnectionReason::ConnectFailed("connection refused".into()),
    });
    let Link::SignedOut { reason: Some(reason) } = h.app.link() else { panic!() };
    assert!(reason.contains("server unreachable"), "{reason}");
    let Screen::SignIn(form) = h.app.screen() else { panic!() };
    assert!(!form.busy);
    assert!(form.error.is_some());
}

#[test]
fn a_refused_token_signs_out_saying_so() {
    let mut h = Harness::signed_in("alice");
    h.sdk(Event::Connection {
        state: ConnectionState::Aborted,
        reason: ConnectionReason::LoginRefused(ProtocolError::new(ErrorCode::InvalidToken, "bad mac")),
    });
    assert!(matches!(
        h.app.link(),
        Link::SignedOut { reason: Some(reason) } if reason == "the server refused the token"
    ));
    assert!(matches!(h.app.screen(), Screen::SignIn(_)));
}

#[test]
fn reconnecting_keeps_the_screen_and_says_when_the_next_try_is() {
    let mut h = Harness::signed_in("alice");
    h.sdk(Event::Connection {
        state: ConnectionState::Reconnecting { attempt: 2, next_try_in: Duration::from_secs(4) },
        reason: ConnectionReason::Interrupted("reset".into()),
    });
    let Link::Up { status: Status::Reconnecting { attempt: 2, reason, .. }, .. } = h.app.link() else {
        panic!()
    };
    assert!(reason.contains("connection lost"));
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    h.connected();
    assert!(h.app.link().is_connected());
}

#[test]
fn an_invitation_shows_the_dialog_rings_and_titles_the_window() {
    let h = alice_rung_by_bob();
    let dialog = h.app.incoming().unwrap();
    assert_eq!(
        (
            dialog.call.facts.peer.as_str(),
            dialog.call.facts.channel.as_str(),
            dialog.call.facts.content.as_str()
        ),
        ("bob", "bob-room", "hello")
    );
    assert_eq!(h.app.title(), "Incoming call from bob \u{2014} softphone");
    assert_eq!(h.tones.items(), vec![Some(Tone::Ringtone)], "the ringtone was started once");
}

#[test]
fn accept_stops_the_ringtone_and_starts_the_call_and_its_media() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Incoming(incoming::Message::Accept));
    assert_eq!(h.sent.last(), Some(Sent::Accept("c1".into())));
    assert_eq!(h.tone(), None, "the ringtone stops on accept");
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c1".into() });
    assert!(h.app.incoming().is_none());
    let Screen::InCall(call) = h.app.screen() else { panic!("{:?}", h.app.screen()) };
    assert_eq!((call.call.facts.peer.as_str(), call.call.facts.role), ("bob", Role::Callee));
    assert_eq!(h.app.title(), "In call with bob \u{2014} softphone");
    let Some(MediaRecord::Started(facts)) = h.media.last() else { panic!() };
    assert_eq!((facts.call_id.as_str(), facts.channel.as_str()), ("c1", "bob-room"));
}

#[test]
fn accept_confirmed_by_the_reply_alone_also_starts_the_call() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Incoming(incoming::Message::Accept));
    h.send(Message::Replied { call_id: "c1".into(), request: CallRequest::Accept, result: Ok(()) });
    assert!(matches!(h.app.screen(), Screen::InCall(_)));
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c1".into() });
    assert_eq!(h.media.items().len(), 1, "media started once");
}

#[test]
fn refuse_stops_the_ringtone() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Incoming(incoming::Message::Refuse));
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c1".into(), String::new())));
    assert_silent_and_no_dialog(&h);
    h.sdk(Event::RemoteInvitationRefused { call_id: "c1".into() });
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
}

#[test]
fn every_remote_ending_stops_the_ringtone_with_its_sentence() {
    let endings: Vec<(Event, &str)> = vec![
        (
            Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled },
            "Missed call from bob",
        ),
        (
            Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::AnsweredElsewhere },
            "bob's call was answered on another device",
        ),
        (
            Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::RefusedElsewhere },
            "bob's call was declined on another device",
        ),
        (
            Event::RemoteInvitationFailure { call_id: "c1".into(), reason: FailureReason::Expired },
            "Missed call from bob",
        ),
        (
            Event::RemoteInvitationFailure { call_id: "c1".into(), reason: FailureReason::CallerOffline },
            "Missed call from bob (bob went offline)",
        ),
        (
            Event::RemoteInvitationFailure {
                call_id: "c1".into(),
                reason: FailureReason::EndedWhileDisconnected,
            },
            "Missed call from bob (it ended while you were disconnected)",
        ),
    ];
    for (event, sentence) in endings {
        let mut h = alice_rung_by_bob();
        h.sdk(event.clone());
        assert_silent_and_no_dialog(&h);
        assert_eq!(h.app.notice(), Some(sentence), "{event:?}");
        // Missed calls put their count first: "(1) alice — softphone".
        assert!(h.app.title().ends_with("alice \u{2014} softphone"), "{}", h.app.title());
    }
}

#[test]
fn an_ending_while_answering_also_closes_the_dialog() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Incoming(incoming::Message::Accept));
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled });
    assert_silent_and_no_dialog(&h);
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    assert!(h.media.items().is_empty());
}

#[test]
fn a_failed_accept_closes_the_dialog() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Incoming(incoming::Message::Accept));
    h.send(Message::Replied {
        call_id: "c1".into(),
        request: CallRequest::Accept,
        result: Err(sdk::Error::Server(ProtocolError::new(ErrorCode::AlreadyEnded, "canceled"))),
    });
    assert_silent_and_no_dialog(&h);
    assert_eq!(h.app.notice(), Some("Could not answer bob's call: the call had already ended"));
}

#[test]
fn losing_the_session_while_ringing_stops_the_ringtone() {
    let mut h = alice_rung_by_bob();
    h.sdk(Event::Connection { state: ConnectionState::Disconnected, reason: ConnectionReason::Stopped });
    assert_silent_and_no_dialog(&h);
    assert!(matches!(h.app.screen(), Screen::SignIn(_)));
}

#[test]
fn signing_out_while_ringing_stops_the_ringtone() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Dial(dial::Message::SignOut));
    assert_silent_and_no_dialog(&h);
    assert!(matches!(h.app.link(), Link::SignedOut { reason: None }));
}

#[test]
fn quitting_while_ringing_stops_the_ringtone() {
    let mut h = alice_rung_by_bob();
    h.send(Message::CloseRequested);
    assert_eq!(h.tone(), None);
}

#[test]
fn a_second_invitation_is_refused_busy_and_the_first_keeps_ringing() {
    let mut h = alice_rung_by_bob();
    h.invited("c2", "carol");
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c2".into(), "busy".into())));
    assert_eq!(h.app.incoming().unwrap().call.facts.call_id, "c1");
    assert_eq!(h.tones.items(), vec![Some(Tone::Ringtone)], "no second ring, no gap");
    // The same invitation again (after a reconnect) is not a second call.
    h.invited("c1", "bob");
    assert!(!h.sent.items().contains(&Sent::Refuse("c1".into(), "busy".into())));
}

#[test]
fn an_invitation_during_a_call_is_refused_busy_without_a_sound() {
    let mut h = alice_rung_by_bob();
    h.send(Message::Incoming(incoming::Message::Accept));
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c1".into() });
    h.tones.clear();
    h.invited("c2", "carol");
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c2".into(), "busy".into())));
    assert!(h.app.incoming().is_none());
    assert!(h.tones.items().is_empty());
    assert!(matches!(h.app.screen(), Screen::InCall(_)));
}

/// alice calls bob; returns the call id.
fn alice_calls_bob(h: &mut Harness) -> String {
    h.send(Message::Dial(dial::Message::Peer("bob".into())));
    h.send(Message::Dial(dial::Message::Content("lunch?".into())));
    h.send(Message::Dial(dial::Message::Call));
    let Some(Sent::Invite { call_id, peer, channel, content }) = h.sent.last() else { panic!() };
    assert_eq!((peer.as_str(), channel.as_str(), content.as_str()), ("bob", "room-1", "lunch?"));
    call_id
}

#[test]
fn an_outgoing_call_rings_back_once_received_and_becomes_a_call_on_accept() {
    let mut h = Harness::signed_in("alice");
    let id = alice_calls_bob(&mut h);
    let Screen::Outgoing(call) = h.app.screen() else { panic!() };
    assert_eq!((call.stage, call.status()), (OutgoingStage::Calling, "Calling..."));
    assert_eq!(h.app.title(), "Calling bob \u{2014} softphone");
    assert_eq!(h.tone(), None, "no ringback before bob's phone rings");
    h.sdk(Event::LocalInvitationReceivedByPeer { call_id: id.clone() });
    let Screen::Outgoing(call) = h.app.screen() else { panic!() };
    assert_eq!(call.stage, OutgoingStage::Ringing);
    assert_eq!(h.tone(), Some(Tone::Ringback));
    h.sdk(Event::LocalInvitationAccepted {
        call_id: id.clone(),
        response: "ok".into(),
        device: "phone".into(),
    });
    assert_eq!(h.tone(), None);
    let Screen::InCall(call) = h.app.screen() else { panic!() };
    assert_eq!((call.call.facts.role, call.call.facts.response.as_str()), (Role::Caller, "ok"));
    assert!(matches!(h.media.last(), Some(MediaRecord::Started(f)) if f.call_id == id));
}

#[test]
fn every_outgoing_ending_has_its_sentence_and_stops_the_ringback() {
    type Ending = (fn(String) -> Event, &'static str);
    let endings: Vec<Ending> = vec![
        (|id| Event::LocalInvitationRefused { call_id: id, response: "busy".into() }, "bob is busy"),
        (|id| Event::LocalInvitationRefused { call_id: id, response: String::new() }, "bob declined"),
        (
            |id| Event::LocalInvitationRefused { call_id: id, response: "in a meeting".into() },
            "bob declined: in a meeting",
        ),
        (
            |id| Event::LocalInvitationFailure { call_id: id, reason: FailureReason::Expired },
            "No answer from bob",
        ),
        (
            |id| Event::LocalInvitationFailure { call_id: id, reason: FailureReason::PeerNoResponse },
            "No answer from bob",
        ),
        (
            |id| Event::LocalInvitationFailure { call_id: id, reason: FailureReason::PeerOffline },
            "bob is offline",
        ),
        (|id| Event::LocalInvitationCanceled { call_id: id }, "Call canceled"),
    ];
    for (event, sentence) in endings {
        let mut h = Harness::signed_in("alice");
        let id = alice_calls_bob(&mut h);
        h.sdk(Event::LocalInvitationReceivedByPeer { call_id: id.clone() });
        h.sdk(event(id));
        assert_eq!(h.app.notice(), Some(sentence));
        assert_eq!(h.tone(), None);
        let Screen::Dial(form) = h.app.screen() else { panic!() };
        assert_eq!(form.peer, "bob", "ready to call again");
    }
}

#[test]
fn cancel_stops_the_ringback_and_asks_the_sdk() {
    let mut h = Harness::signed_in("alice");
    let id = alice_calls_bob(&mut h);
    h.sdk(Event::LocalInvitationReceivedByPeer { call_id: id.clone() });
    h.send(Message::Outgoing(outgoing::Message::Cancel));
    assert_eq!(h.sent.last(), Some(Sent::Cancel(id.clone())));
    assert_eq!(h.tone(), None);
    h.sdk(Event::LocalInvitationCanceled { call_id: id });
    assert_eq!(h.app.notice(), Some("Call canceled"));
}

#[test]
fn an_accept_racing_our_cancel_is_hung_up() {
    let mut h = Harness::signed_in("alice");
    let id = alice_calls_bob(&mut h);
    h.send(Message::Outgoing(outgoing::Message::Cancel));
    h.sdk(Event::LocalInvitationAccepted {
        call_id: id.clone(),
        response: String::new(),
        device: String::new(),
    });
    assert_eq!(h.sent.last(), Some(Sent::HangUp(id)));
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    assert!(h.media.items().is_empty());
}

#[test]
fn a_refused_invite_returns_to_dial_with_the_reason() {
    let mut h = Harness::signed_in("alice");
    let id = alice_calls_bob(&mut h);
    h.send(Message::Replied {
        call_id: id,
        request: CallRequest::Invite,
        result: Err(sdk::Error::NotConnected),
    });
    assert_eq!(h.app.notice(), Some("Could not call bob: not connected to the server right now"));
}

/// alice in an accepted call with bob; returns the call id.
fn in_call_with_bob(h: &mut Harness) -> String {
    let id = alice_calls_bob(h);
    h.sdk(Event::LocalInvitationAccepted {
        call_id: id.clone(),
        response: String::new(),
        device: String::new(),
    });
    assert!(matches!(h.app.screen(), Screen::InCall(_)));
    id
}

#[test]
fn the_other_side_hanging_up_or_vanishing_ends_the_call_and_its_media() {
    for (reason, by, sentence) in [
        (HangupReason::Hangup, "bob", "bob hung up"),
        (HangupReason::PeerOffline, "bob", "Lost the connection to bob; the call ended"),
    ] {
        let mut h = Harness::signed_in("alice");
        let id = in_call_with_bob(&mut h);
        h.sdk(Event::HungUp { call_id: id.clone(), reason, by: by.into() });
        assert_eq!(h.app.notice(), Some(sentence));
        assert!(matches!(h.app.screen(), Screen::Dial(_)));
        assert_eq!(h.media.last(), Some(MediaRecord::Stopped(id)));
    }
}

#[test]
fn hanging_up_stops_media_and_tells_the_sdk() {
    let mut h = Harness::signed_in("alice");
    let id = in_call_with_bob(&mut h);
    h.send(Message::InCall(in_call::Message::HangUp));
    assert_eq!(h.sent.last(), Some(Sent::HangUp(id.clone())));
    assert_eq!(h.media.last(), Some(MediaRecord::Stopped(id.clone())));
    assert_eq!(h.app.notice(), Some("Call with bob ended"));
    // Our own hang-up confirmed later changes nothing.
    h.sdk(Event::HungUp { call_id: id, reason: HangupReason::Hangup, by: "alice".into() });
    assert_eq!(h.app.notice(), Some("Call with bob ended"));
}

#[test]
fn a_media_session_that_fails_to_start_is_shown_on_the_call_screen() {
    let mut h = Harness::with_media_failure(Some("Could not start ffplay: not found".into()));
    h.sign_in("alice");
    in_call_with_bob(&mut h);
    let Screen::InCall(call) = h.app.screen() else { panic!() };
    assert_eq!(
        call.media,
        softphone_app::media_hook::MediaStatus::Ended("Could not start ffplay: not found".into())
    );
}

#[test]
fn stale_events_are_dropped() {
    let mut h = alice_rung_by_bob();
    // About another call: ignored.
    h.sdk(Event::RemoteInvitationCanceled { call_id: "zzz".into(), reason: CancelReason::CallerCanceled });
    h.sdk(Event::LocalInvitationAccepted {
        call_id: "zzz".into(),
        response: String::new(),
        device: String::new(),
    });
    assert!(ringing(&h));
    // From an earlier session: ignored.
    let old = h.app.session_number().unwrap() - 1;
    h.send(Message::Sdk(
        old,
        Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled },
    ));
    assert!(ringing(&h));
    assert_eq!(h.tone(), Some(Tone::Ringtone));
}

#[test]
fn a_reply_about_a_call_no_longer_on_screen_is_dropped() {
    let mut h = Harness::signed_in("alice");
    let id = in_call_with_bob(&mut h);
    h.send(Message::Replied {
        call_id: id,
        request: CallRequest::Invite,
        result: Err(sdk::Error::ConnectionLost),
    });
    assert!(matches!(h.app.screen(), Screen::InCall(_)));
}
