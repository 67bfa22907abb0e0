//! Headless clicks and key presses on the app's real view (iced_test), and
//! snapshots of the incoming-call dialog, the home screen with missed
//! calls, the history and the settings (tiny-skia, committed PNGs).
//!
//! Each test renders `App::view`, interacts with it, and feeds the messages
//! the interaction produced back into `App::update`, as the runtime would.

use super::support::{Harness, Sent};
use iced::keyboard::{Key, key::Named};
use iced_test::Simulator;
use softphone_app::model::OutgoingStage;
use softphone_app::ringtone::Tone;
use softphone_app::{Message, Screen, Tab, contacts, settings, theme};
use softphone_core::sdk::{CancelReason, Event};

/// The window size the app opens with.
const WINDOW: (f32, f32) = softphone_app::layout::WINDOW;

/// Renders the app, lets `interact` play with it, and delivers the
/// messages it produced.
pub(super) fn interact(h: &mut Harness, interact: impl FnOnce(&mut Simulator<'_, Message>)) {
    // Snapshots are taken with the CPU renderer, the one that needs no GPU.
    // SAFETY: every test sets the same value; nothing reads it concurrently
    // in a way a torn write could confuse.
    unsafe { std::env::set_var("ICED_TEST_BACKEND", "tiny-skia") };
    let messages: Vec<Message> = {
        let mut ui = Simulator::with_size(iced::Settings::default(), WINDOW, h.app.view());
        interact(&mut ui);
        ui.into_messages().collect()
    };
    for message in messages {
        h.send(message);
    }
}

fn alice_rung_by_bob() -> Harness {
    let mut h = Harness::signed_in("alice");
    h.invited("c1", "bob");
    h
}

#[test]
fn clicking_accept_answers_the_call() {
    let mut h = alice_rung_by_bob();
    interact(&mut h, |ui| {
        ui.click("Accept").expect("an Accept button");
    });
    assert_eq!(h.sent.last(), Some(Sent::Accept("c1".into())));
    assert_eq!(h.tone(), None);
}

#[test]
fn pressing_enter_answers_the_call() {
    let mut h = alice_rung_by_bob();
    interact(&mut h, |ui| {
        ui.tap_key(Key::Named(Named::Enter));
    });
    assert_eq!(h.sent.last(), Some(Sent::Accept("c1".into())));
}

#[test]
fn clicking_refuse_declines_the_call() {
    let mut h = alice_rung_by_bob();
    interact(&mut h, |ui| {
        ui.click("Refuse").expect("a Refuse button");
    });
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c1".into(), String::new())));
    assert!(h.app.incoming().is_none());
    assert_eq!(h.tone(), None);
}

#[test]
fn pressing_esc_declines_the_call() {
    let mut h = alice_rung_by_bob();
    interact(&mut h, |ui| {
        ui.tap_key(Key::Named(Named::Escape));
    });
    assert_eq!(h.sent.last(), Some(Sent::Refuse("c1".into(), String::new())));
    assert_eq!(h.tone(), None);
}

#[test]
fn the_dialog_covers_the_screen_below() {
    let mut h = alice_rung_by_bob();
    interact(&mut h, |ui| {
        ui.click("Call").expect("the Call button is drawn under the dialog");
    });
    assert!(!h.sent.items().iter().any(|s| matches!(s, Sent::Invite { .. })), "the Call button is covered");
}

/// alice calls bob from the dial screen by clicking Call.
fn alice_calling_bob() -> (Harness, String) {
    let mut h = Harness::signed_in("alice");
    h.send(Message::Dial(softphone_app::dial::Message::Peer("bob".into())));
    interact(&mut h, |ui| {
        ui.click("Call").expect("a Call button");
    });
    let Some(Sent::Invite { call_id, .. }) = h.sent.last() else { panic!("{:?}", h.sent.items()) };
    h.sdk(Event::LocalInvitationReceivedByPeer { call_id: call_id.clone() });
    assert_eq!(h.tone(), Some(Tone::Ringback));
    (h, call_id)
}

#[test]
fn clicking_cancel_withdraws_the_call() {
    let (mut h, id) = alice_calling_bob();
    interact(&mut h, |ui| {
        ui.click("Cancel").expect("a Cancel button");
    });
    assert_eq!(h.sent.last(), Some(Sent::Cancel(id)));
    assert_eq!(h.tone(), None);
    assert!(matches!(h.app.screen(), Screen::Outgoing(c) if c.stage == OutgoingStage::Canceling));
}

#[test]
fn pressing_esc_withdraws_the_call() {
    let (mut h, id) = alice_calling_bob();
    interact(&mut h, |ui| {
        ui.tap_key(Key::Named(Named::Escape));
    });
    assert_eq!(h.sent.last(), Some(Sent::Cancel(id)));
}

#[test]
fn clicking_hang_up_ends_the_call() {
    let (mut h, id) = alice_calling_bob();
    h.sdk(Event::LocalInvitationAccepted {
        call_id: id.clone(),
        response: String::new(),
        device: String::new(),
    });
    interact(&mut h, |ui| {
        ui.click("Hang up").expect("a Hang up button");
    });
    assert_eq!(h.sent.last(), Some(Sent::HangUp(id)));
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
}

#[test]
fn snapshot_of_the_incoming_call_dialog() {
    let mut h = alice_rung_by_bob();
    let theme = theme::theme();
    let mut matched = None;
    interact(&mut h, |ui| {
        let snapshot = ui.snapshot(&theme).expect("a snapshot");
        matched = Some(snapshot.matches_image("tests/snapshots/incoming_call").expect("comparable"));
    });
    assert_eq!(
        matched,
        Some(true),
        "the dialog differs from tests/snapshots/incoming_call-tiny-skia.png (delete it to accept the new look)"
    );
}

/// Presses Ctrl + `character`.
fn ctrl(ui: &mut Simulator<'_, Message>, character: &str) {
    let mut press = iced_test::simulator::press_key(Key::Character(character.into()), None);
    if let iced::Event::Keyboard(iced::keyboard::Event::KeyPressed { modifiers, .. }) = &mut press {
        *modifiers = iced::keyboard::Modifiers::CTRL;
    }
    ui.simulate([press]);
}

/// alice signed in, with missed calls from bob and carol.
fn alice_missed_bob_and_carol() -> Harness {
    let mut h = Harness::signed_in("alice");
    for (id, caller) in [("c1", "bob"), ("c2", "carol")] {
        h.invited(id, caller);
        h.sdk(Event::RemoteInvitationCanceled { call_id: id.into(), reason: CancelReason::CallerCanceled });
    }
    h.send(Message::DismissNotice);
    h
}

#[test]
fn snapshot_of_the_home_screen_with_missed_calls() {
    let mut h = alice_missed_bob_and_carol();
    let theme = theme::theme();
    let mut matched = None;
    interact(&mut h, |ui| {
        ui.find("2 missed calls").expect("the count on the home screen");
        let snapshot = ui.snapshot(&theme).expect("a snapshot");
        matched = Some(snapshot.matches_image("tests/snapshots/home_missed_calls").expect("comparable"));
    });
    assert_eq!(
        matched,
        Some(true),
        "the home screen differs from tests/snapshots/home_missed_calls-tiny-skia.png (delete it to accept the new look)"
    );
}

#[test]
fn clicking_call_back_on_the_home_screen_calls_the_newest_missed_caller() {
    let mut h = alice_missed_bob_and_carol();
    interact(&mut h, |ui| {
        ui.click("Call back").expect("a Call back button");
    });
    assert!(
        matches!(h.sent.last(), Some(Sent::Invite { peer, .. }) if peer == "carol"),
        "{:?}",
        h.sent.last()
    );
}

#[test]
fn the_history_tab_lists_the_calls_and_marks_them_seen() {
    let mut h = alice_missed_bob_and_carol();
    interact(&mut h, |ui| {
        ui.click("History").expect("the History tab");
    });
    assert!(matches!(h.app.screen(), Screen::History(_)));
    assert_eq!(h.app.history().unseen_missed().count(), 0);
    interact(&mut h, |ui| {
        ui.find("bob").expect("bob's row");
        ui.tap_key(Key::Named(Named::ArrowDown));
        ui.tap_key(Key::Named(Named::ArrowDown));
    });
    interact(&mut h, |ui| {
        ui.tap_key(Key::Named(Named::Enter));
    });
    assert!(matches!(h.sent.last(), Some(Sent::Invite { peer, .. }) if peer == "bob"), "{:?}", h.sent.last());
}

#[test]
fn snapshot_of_the_history_screen() {
    let mut h = alice_missed_bob_and_carol();
    h.send(Message::Go(Tab::History));
    let theme = theme::theme();
    let mut matched = None;
    interact(&mut h, |ui| {
        let snapshot = ui.snapshot(&theme).expect("a snapshot");
        matched = Some(snapshot.matches_image("tests/snapshots/history").expect("comparable"));
    });
    assert_eq!(matched, Some(true), "the history differs from tests/snapshots/history-tiny-skia.png");
}

#[test]
fn contacts_are_added_from_the_keyboard_and_called_with_a_click() {
    let mut h = Harness::signed_in("alice");
    interact(&mut h, |ui| ctrl(ui, "2"));
    assert!(matches!(h.app.screen(), Screen::Contacts(_)), "Ctrl+2 opens the contacts");
    interact(&mut h, |ui| {
        ui.click(iced::widget::Id::new(contacts::NEW_PEER_FIELD)).expect("the peer id field");
        ui.typewrite("bob");
        ui.tap_key(Key::Named(Named::Enter));
    });
    assert_eq!(h.app.config().contacts.len(), 1);
    assert_eq!(h.sent.last(), Some(Sent::Subscribe(vec!["bob".into()])));
    let session = h.app.session_number().unwrap();
    h.send(Message::PresenceReplied(session, Ok([("bob".to_owned(), true)].into_iter().collect())));
    interact(&mut h, |ui| {
        ui.find("online").expect("bob's presence");
        ui.click("Call").expect("bob's Call button");
    });
    assert!(matches!(h.sent.last(), Some(Sent::Invite { peer, .. }) if peer == "bob"));
}

#[test]
fn esc_backs_out_of_the_contacts_and_history() {
    let mut h = Harness::signed_in("alice");
    for tab in [Tab::Contacts, Tab::History] {
        h.send(Message::Go(tab));
        interact(&mut h, |ui| {
            ui.tap_key(Key::Named(Named::Escape));
        });
        assert!(matches!(h.app.screen(), Screen::Dial(_)), "{tab:?}");
    }
}

#[test]
fn settings_save_with_a_click_and_cancel_with_esc() {
    let mut h = Harness::signed_in("alice");
    interact(&mut h, |ui| {
        ui.click("Settings").expect("the Settings tab");
    });
    assert!(matches!(h.app.screen(), Screen::Settings(_)));
    h.send(Message::Settings(settings::Message::CallWaiting(true)));
    interact(&mut h, |ui| {
        ui.tap_key(Key::Named(Named::Escape));
    });
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
    assert!(!h.app.config().call_waiting, "Esc cancels");
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::CallWaiting(true)));
    interact(&mut h, |ui| {
        ui.click("Save").expect("the Save button");
    });
    assert!(h.app.config().call_waiting);
}

#[test]
fn snapshot_of_the_settings_screen() {
    let mut h = Harness::signed_in("alice");
    h.send(Message::Go(Tab::Settings));
    // The default device label is the machine's name: fixed here for a stable picture.
    h.send(Message::Settings(settings::Message::Device("laptop".into())));
    let theme = theme::theme();
    let mut matched = None;
    interact(&mut h, |ui| {
        let snapshot = ui.snapshot(&theme).expect("a snapshot");
        matched = Some(snapshot.matches_image("tests/snapshots/settings").expect("comparable"));
    });
    assert_eq!(matched, Some(true), "the settings differ from tests/snapshots/settings-tiny-skia.png");
}

#[test]
fn the_call_waiting_prompt_answers_with_a_click() {
    let mut h = Harness::signed_in("alice");
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::CallWaiting(true)));
    h.send(Message::Settings(settings::Message::Save));
    h.invited("c1", "bob");
    h.send(Message::Incoming(softphone_app::incoming::Message::Accept));
    h.sdk(Event::RemoteInvitationAccepted { call_id: "c1".into() });
    h.invited("c2", "carol");
    interact(&mut h, |ui| {
        ui.find("carol is calling").expect("the prompt");
        ui.click("End call and answer").expect("the answer button");
    });
    assert_eq!(h.sent.last(), Some(Sent::Accept("c2".into())));
}

/// Where the dial card's headline is drawn.
fn headline_top(h: &Harness) -> f32 {
    let mut ui = Simulator::with_size(iced::Settings::default(), WINDOW, h.app.view());
    ui.find("New call").expect("the dial card's headline").bounds().y
}

#[test]
fn the_dial_card_stays_put_when_a_notice_appears_and_goes() {
    let (mut h, id) = alice_calling_bob();
    h.sdk(Event::LocalInvitationRefused { call_id: id, response: "busy".into() });
    assert_eq!(h.app.notice(), Some("bob is busy"));
    let with_notice = headline_top(&h);
    h.send(Message::DismissNotice);
    assert_eq!(h.app.notice(), None);
    assert_eq!(headline_top(&h), with_notice, "the card does not move");
}
