//! The window closed: with a tray host it hides and the phone stays signed
//! in behind the tray icon, which shows the state derived from the model;
//! an incoming call brings the window back; without a host it quits. The
//! start-at-login setting writes and removes a real autostart entry. And
//! the settings' device lists follow what the sound card has.

use super::support::{Harness, Sent};
use softphone_app::audio::device::DeviceList;
use softphone_app::config::AppConfig;
use softphone_app::link::Link;
use softphone_app::ringtone::Tone;
use softphone_app::tray::{TrayAction, TrayHost, TrayStatus, TrayView};
use softphone_app::{Message, Screen, Tab, settings};
use softphone_core::sdk::{CancelReason, Event};

fn with_tray_host(h: &Harness) {
    *h.tray_host.lock().unwrap() = TrayHost::Present;
}

fn shown(h: &Harness) -> TrayStatus {
    h.app.tray_view().expect("the tray was told what to show").status.clone()
}

#[test]
fn without_a_tray_host_closing_the_window_quits() {
    let mut h = Harness::signed_in("alice");
    h.send(Message::WindowCloseRequested(iced::window::Id::unique()));
    assert!(!h.app.window_hidden());
    assert!(matches!(h.app.link(), Link::SignedOut { .. }), "quit: the session ended");
}

#[test]
fn with_a_tray_host_closing_the_window_hides_it_and_stays_signed_in() {
    let mut h = Harness::signed_in("alice");
    with_tray_host(&h);
    h.send(Message::WindowCloseRequested(iced::window::Id::unique()));
    assert!(h.app.window_hidden());
    assert!(matches!(h.app.link(), Link::Up { .. }), "still signed in");
    assert!(!h.sent.items().contains(&Sent::Logout));
    assert_eq!(shown(&h), TrayStatus::SignedIn("alice".into()));
}

#[test]
fn an_incoming_call_while_hidden_brings_the_window_back_ringing_with_a_notification() {
    let mut h = Harness::signed_in("alice");
    with_tray_host(&h);
    h.send(Message::WindowCloseRequested(iced::window::Id::unique()));
    h.invited("c1", "bob");
    assert!(!h.app.window_hidden(), "the window is asked back");
    assert!(h.app.incoming().is_some(), "with its dialog");
    assert_eq!(h.tone(), Some(Tone::Ringtone));
    // Hidden was not in front: the call is also a notification.
    assert_eq!(h.notes.last(), Some(("Incoming call".into(), "bob is calling".into())));
    assert_eq!(shown(&h), TrayStatus::Ringing("bob".into()));
}

#[test]
fn the_tray_shows_offline_signed_in_in_a_call_and_the_missed_calls() {
    let mut h = Harness::new();
    assert_eq!(h.tray_views.items(), vec![TrayView::default()], "offline from the start");
    h.sign_in("alice");
    assert_eq!(shown(&h), TrayStatus::SignedIn("alice".into()));
    h.invited("c1", "bob");
    h.sdk(Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled });
    let view = h.app.tray_view().unwrap().clone();
    assert_eq!(view, TrayView { status: TrayStatus::SignedIn("alice".into()), missed: 1 });
    assert_eq!(view.missed_line().as_deref(), Some("1 missed call"));
    // Seeing the history clears the count.
    h.send(Message::Go(Tab::History));
    assert_eq!(h.app.tray_view().unwrap().missed, 0);
    h.accept_call_from_bob();
    assert_eq!(shown(&h), TrayStatus::InCall("bob".into()));
    // Each view was sent once: the tray hears only about changes.
    let views = h.tray_views.items();
    assert!(views.windows(2).all(|pair| pair[0] != pair[1]), "{views:?}");
}

#[test]
fn the_tray_menu_opens_the_window_and_quits() {
    let mut h = Harness::signed_in("alice");
    with_tray_host(&h);
    h.send(Message::WindowCloseRequested(iced::window::Id::unique()));
    h.send(Message::Tray(TrayAction::Open));
    assert!(!h.app.window_hidden());
    assert!(matches!(h.app.link(), Link::Up { .. }));
    h.send(Message::Tray(TrayAction::Quit));
    assert!(matches!(h.app.link(), Link::SignedOut { .. }), "quit: the session ended");
}

#[test]
fn start_at_login_writes_the_autostart_entry_and_turning_it_off_removes_it() {
    let mut h = Harness::signed_in("alice");
    let entry = h.home.path().join("autostart/softphone.desktop");
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::StartAtLogin(true)));
    assert!(!entry.exists(), "nothing before Save");
    h.send(Message::Settings(settings::Message::Save));
    let written = std::fs::read_to_string(&entry).expect("the entry is written");
    assert!(written.starts_with("[Desktop Entry]\n") && written.contains("\nExec="), "{written}");
    assert!(AppConfig::load(&h.paths()).0.start_at_login, "and remembered");
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::StartAtLogin(false)));
    h.send(Message::Settings(settings::Message::Save));
    assert!(!entry.exists(), "removed");
    assert!(!AppConfig::load(&h.paths()).0.start_at_login);
}

#[test]
fn the_settings_take_a_fresh_device_list() {
    let mut h = Harness::signed_in("alice");
    h.send(Message::Go(Tab::Settings));
    let plugged = DeviceList { inputs: vec!["USB headset".into()], outputs: vec!["USB headset".into()] };
    h.send(Message::DevicesListed(plugged.clone()));
    let Screen::Settings(form) = h.app.screen() else { panic!("on the settings") };
    assert_eq!(form.devices, plugged);
    // Off the settings screen, a late list changes nothing and asks for nothing.
    h.send(Message::Go(Tab::Dial));
    h.send(Message::DevicesListed(DeviceList::default()));
    h.send(Message::RefreshDevices);
    assert!(matches!(h.app.screen(), Screen::Dial(_)));
}
