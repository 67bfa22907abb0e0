//! Headless clicks and key presses on the app's real view (iced_test), and
//! a snapshot of the incoming-call dialog.
//!
//! Each test renders `App::view`, interacts with it, and feeds the messages
//! the interaction produced back into `App::update`, as the runtime would.

use super::support::{Harness, Sent};
use iced::keyboard::{Key, key::Named};
use iced_test::Simulator;
use softphone::app::{Message, Screen, outgoing, theme};
use softphone::ringtone::Tone;
use softphone::sdk::Event;

/// The window size the app opens with.
const WINDOW: (f32, f32) = softphone::app::layout::WINDOW;

/// Renders the app, lets `interact` play with it, and delivers the
/// messages it produced.
fn interact(h: &mut Harness, interact: impl FnOnce(&mut Simulator<'_, Message>)) {
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
    h.send(Message::Dial(softphone::app::dial::Message::Peer("bob".into())));
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
    assert!(matches!(h.app.screen(), Screen::Outgoing(c) if c.stage == outgoing::Stage::Canceling));
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
