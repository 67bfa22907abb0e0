//! Built-in voice in the app: the default media kind, the call screen's
//! safety code, mute (click and `M`), speaker volume, microphone meter and
//! missing-device sentences, the settings' device choice and microphone
//! test, and the ringtone letting go of the sound card before call audio
//! opens it. The sound card is a fake list with a tone for a microphone
//! ([`FakeDevices`]); the call driver a real voice session without a
//! network ([`super::support::FakeDriver`]). No sound card, no display.

use super::simulator::interact;
use super::support::{FakeDevices, Harness};
use iced::keyboard::Key;
use softphone_app::config::{AppConfig, MediaConfig};
use softphone_app::settings::DeviceOption;
use softphone_app::{Message, Screen, Tab, in_call, settings, theme};
use std::time::{Duration, Instant};

fn voice_code(h: &Harness) -> String {
    h.app.voice().expect("a voice call").safety_code.clone()
}

#[test]
fn the_ringtone_stops_before_call_audio_opens_the_device() {
    let h = Harness::in_voice_call(FakeDevices::full());
    let order = h.order.items();
    let at = |what: &str| {
        order.iter().position(|o| o.starts_with(what)).unwrap_or_else(|| panic!("{what} in {order:?}"))
    };
    assert!(at("tone Some(Ringtone)") < at("tone None"), "{order:?}");
    assert!(at("tone None") < at("open input"), "the ringer lets go first: {order:?}");
    assert!(at("open input") < at("voice start"), "{order:?}");
}

#[test]
fn the_ringtone_stops_before_a_configured_media_session_starts() {
    let mut h = Harness::signed_in("alice");
    h.invited("c1", "bob");
    h.send(Message::Incoming(softphone_app::incoming::Message::Accept));
    h.send(Message::Replied {
        call_id: "c1".into(),
        request: softphone_app::CallRequest::Accept,
        result: Ok(()),
    });
    let order = h.order.items();
    let off = order.iter().position(|o| o == "tone None").expect("the ringtone stopped");
    let media = order.iter().position(|o| o == "media start c1").expect("media started");
    assert!(off < media, "{order:?}");
}

#[test]
fn a_voice_call_shows_the_safety_code_the_meter_and_the_quality_line() {
    let mut h = Harness::in_voice_call(FakeDevices::full());
    assert!(matches!(h.app.screen(), Screen::InCall(_)));
    let code = voice_code(&h);
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{code}");
    let level = h.app.voice().unwrap().control.as_ref().unwrap().mic_level();
    assert!((level.rms_dbfs + 23.0).abs() < 4.0, "the tone at -20 dBFS peak reads so: {level:?}");
    let shown = format!("{} {}", &code[..3], &code[3..]);
    interact(&mut h, |ui| {
        ui.find(shown.as_str()).expect("the safety code, large");
        ui.find("Compare this code with the other person").expect("what to do with it");
        ui.find("Loss 0.0% \u{b7} jitter 0 ms \u{b7} round trip - \u{b7} speaker underruns 0")
            .expect("the quality line");
        ui.find("Voice through the relay (UDP)").expect("the driver's status");
        ui.find("Microphone").expect("the meter's label");
    });
}

#[test]
fn the_speakers_underruns_show_in_the_quality_line() {
    let devices = FakeDevices { speaker_underruns: 3, ..FakeDevices::full() };
    let mut h = Harness::in_voice_call(devices);
    let quality = h.app.voice().unwrap().control.as_ref().unwrap().quality();
    assert_eq!(quality.speaker_underruns, 3, "the sink's count reached the model");
    interact(&mut h, |ui| {
        ui.find("Loss 0.0% \u{b7} jitter 0 ms \u{b7} round trip - \u{b7} speaker underruns 3")
            .expect("the playback running dry is on the screen");
    });
}

#[test]
fn clicking_mute_and_pressing_m_toggle_the_microphone() {
    let mut h = Harness::in_voice_call(FakeDevices::full());
    let control = h.app.voice().unwrap().control.clone().unwrap();
    interact(&mut h, |ui| {
        ui.click("Mute (M)").expect("a Mute button");
    });
    assert!(control.is_muted());
    interact(&mut h, |ui| {
        ui.find("Unmute (M)").expect("the button says what it does now");
        ui.find("Microphone (muted)").expect("the meter says so");
        ui.tap_key(Key::Character("m".into()));
    });
    assert!(!control.is_muted(), "M unmutes");
    interact(&mut h, |ui| {
        ui.tap_key(Key::Character("M".into()));
    });
    assert!(control.is_muted(), "either case");
}

#[test]
fn the_volume_slider_sets_the_speaker_volume() {
    let mut h = Harness::in_voice_call(FakeDevices::full());
    interact(&mut h, |ui| {
        ui.find("100%").expect("the volume as sent");
    });
    h.send(Message::InCall(in_call::Message::Volume(50)));
    assert_eq!(h.app.voice().unwrap().control.as_ref().unwrap().volume(), 0.5);
    interact(&mut h, |ui| {
        ui.find("50%").expect("the slider reads the control");
    });
}

#[test]
fn voice_controls_appear_once_the_relay_answers() {
    let mut h = Harness::with_voice(FakeDevices::full());
    h.voice_connecting.store(true, std::sync::atomic::Ordering::Relaxed);
    h.accept_call_from_bob();
    assert!(h.app.voice().unwrap().control.is_none());
    interact(&mut h, |ui| {
        ui.find("Connecting voice...").expect("while the relay has not answered");
        ui.find("Compare this code with the other person").expect("the code is known from the keys");
        assert!(ui.find("Mute (M)").is_err());
        ui.tap_key(Key::Character("m".into()));
    });
    h.voice_connecting.store(false, std::sync::atomic::Ordering::Relaxed);
    h.send(Message::Tick(Instant::now()));
    let control = h.app.voice().unwrap().control.clone().expect("picked up at the next tick");
    assert!(!control.is_muted(), "M before the relay answered did nothing");
    interact(&mut h, |ui| {
        ui.find("Mute (M)").expect("now the controls show");
    });
}

#[test]
fn without_a_microphone_the_call_connects_and_says_so() {
    let mut h = Harness::in_voice_call(FakeDevices::without_microphone());
    assert!(matches!(h.app.screen(), Screen::InCall(_)), "the call is up");
    let voice = h.app.voice().expect("voice runs, sending silence");
    assert!(voice.no_speaker.is_none());
    interact(&mut h, |ui| {
        ui.find("No microphone found: the other side cannot hear you").expect("said plainly");
    });
}

#[test]
fn without_a_speaker_the_call_connects_and_says_so() {
    let devices = FakeDevices { outputs: Vec::new(), ..FakeDevices::full() };
    let mut h = Harness::in_voice_call(devices);
    interact(&mut h, |ui| {
        ui.find("No speaker found: you cannot hear the other side").expect("said plainly");
    });
}

#[test]
fn a_call_without_voice_shows_no_voice_controls() {
    let config = AppConfig { media: MediaConfig::None, ..AppConfig::default() };
    let mut h = Harness::with_voice_config(config, FakeDevices::full());
    h.accept_call_from_bob();
    assert!(h.app.voice().is_none());
    interact(&mut h, |ui| {
        ui.find("No media session configured").expect("as before");
        assert!(ui.find("Mute (M)").is_err());
    });
}

#[test]
fn settings_offer_the_devices_and_the_chosen_one_is_saved_and_used() {
    let mut h = Harness::with_voice(FakeDevices::full());
    h.sign_in("alice");
    h.send(Message::Go(Tab::Settings));
    let Screen::Settings(form) = h.app.screen() else { panic!("settings") };
    assert_eq!(form.devices.inputs, ["Headset mic", "Built-in mic"]);
    assert_eq!(form.media_kind, settings::MediaKind::Voice, "the default media kind");
    assert_eq!((form.audio_input.as_str(), form.audio_output.as_str()), ("", ""), "System default");
    interact(&mut h, |ui| {
        ui.find("Microphone").expect("the microphone's list");
        ui.find("Speaker").expect("the speaker's list");
    });
    h.send(Message::Settings(settings::Message::AudioInput(DeviceOption("Headset mic".into()))));
    h.send(Message::Settings(settings::Message::AudioOutput(DeviceOption("Built-in speaker".into()))));
    interact(&mut h, |ui| {
        ui.click("Save").expect("a Save button");
    });
    assert_eq!(h.app.config().audio_input, "Headset mic");
    let (saved, _) = AppConfig::load(&h.paths());
    assert_eq!(
        (saved.audio_input.as_str(), saved.audio_output.as_str()),
        ("Headset mic", "Built-in speaker")
    );
    h.order.clear();
    h.accept_call_from_bob();
    let order = h.order.items();
    assert!(order.contains(&"open input Named(\"Headset mic\")".to_owned()), "{order:?}");
    assert!(order.contains(&"open output Named(\"Built-in speaker\")".to_owned()), "{order:?}");
}

#[test]
fn voice_cleans_the_microphone_by_default_and_settings_turn_each_stage_off() {
    let mut by_default = Harness::with_voice(FakeDevices::full());
    by_default.accept_call_from_bob();
    let order = by_default.order.items();
    assert!(order.contains(&"voice processing aec ns agc".to_owned()), "{order:?}");
    let mut h = Harness::with_voice(FakeDevices::full());
    h.sign_in("alice");
    h.send(Message::Go(Tab::Settings));
    let Screen::Settings(form) = h.app.screen() else { panic!("settings") };
    assert!(form.echo_cancellation && form.noise_suppression && form.gain_control, "on by default");
    // The toggles' labels are drawn inside them (iced_test finds no text
    // to check); their messages are what the form acts on.
    h.send(Message::Settings(settings::Message::EchoCancellation(false)));
    h.send(Message::Settings(settings::Message::GainControl(false)));
    interact(&mut h, |ui| {
        ui.click("Save").expect("a Save button");
    });
    let (saved, _) = AppConfig::load(&h.paths());
    assert_eq!((saved.echo_cancellation, saved.noise_suppression, saved.gain_control), (false, true, false));
    h.order.clear();
    h.accept_call_from_bob();
    assert!(h.order.items().contains(&"voice processing ns".to_owned()), "{:?}", h.order.items());
}

#[test]
fn the_microphone_test_shows_the_level_and_stops_on_leaving_settings() {
    let mut h = Harness::with_voice(FakeDevices::full());
    h.sign_in("alice");
    h.send(Message::Go(Tab::Settings));
    assert_eq!(h.app.mic_test_level(), None);
    interact(&mut h, |ui| {
        ui.find("Test microphone").expect("a test button");
    });
    // Below the fold of the scrolled form: pressed by its message.
    h.send(Message::Settings(settings::Message::MicTest));
    // The test thread measures a frame every 20 ms; wait for the first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.app.mic_test_level().is_none_or(|l| l.rms_dbfs < -40.0) {
        assert!(Instant::now() < deadline, "no level: {:?}", h.app.mic_test_level());
        std::thread::sleep(Duration::from_millis(20));
        h.send(Message::Tick(Instant::now()));
    }
    interact(&mut h, |ui| {
        ui.find("Stop").expect("the button stops it now");
    });
    h.send(Message::Settings(settings::Message::Cancel));
    assert_eq!(h.app.mic_test_level(), None, "leaving settings stops the test");
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::MicTest));
    assert!(h.app.mic_test_level().is_some());
    h.send(Message::Settings(settings::Message::MicTest));
    assert_eq!(h.app.mic_test_level(), None, "pressing Stop stops it");
}

#[test]
fn the_microphone_test_without_a_microphone_says_so() {
    let mut h = Harness::with_voice(FakeDevices::without_microphone());
    h.sign_in("alice");
    h.send(Message::Go(Tab::Settings));
    h.send(Message::Settings(settings::Message::MicTest));
    assert_eq!(h.app.mic_test_level(), None);
    let Screen::Settings(form) = h.app.screen() else { panic!("settings") };
    assert!(form.error.as_deref().unwrap().starts_with("Cannot open the microphone"), "{:?}", form.error);
}

#[test]
fn snapshot_of_the_voice_call_screen() {
    let mut h = Harness::in_voice_call(FakeDevices::full());
    let theme = theme::theme();
    let mut matched = None;
    interact(&mut h, |ui| {
        let snapshot = ui.snapshot(&theme).expect("a snapshot");
        matched = Some(snapshot.matches_image("tests/snapshots/voice_call").expect("comparable"));
    });
    assert_eq!(
        matched,
        Some(true),
        "the call screen differs from tests/snapshots/voice_call-tiny-skia.png (delete it to accept the new look)"
    );
}

#[test]
fn in_a_voice_call_the_call_waiting_beeps_go_into_the_call_not_the_ringer() {
    let config = AppConfig { call_waiting: true, ..AppConfig::default() };
    let mut h = Harness::with_voice_config(config, FakeDevices::full());
    h.sign_in("alice");
    h.accept_call_from_bob();
    let control = h.app.voice().and_then(|voice| voice.control.clone()).expect("the call's voice");
    assert!(!control.is_call_waiting());
    h.invited("c2", "carol");
    assert!(h.app.waiting().is_some(), "carol waits");
    // In the speaker's own frames, where the echo canceller has them; the
    // ringer's stream, which the microphone heard with no reference, stays quiet.
    assert!(control.is_call_waiting());
    assert_eq!(h.app.tone(), None);
    assert!(!h.order.items().iter().any(|o| o == "tone Some(CallWaiting)"), "{:?}", h.order.items());
    // Declined: the beeps stop, the call goes on.
    h.send(Message::Waiting(softphone_app::incoming::Message::Refuse));
    assert!(h.app.waiting().is_none());
    assert!(!control.is_call_waiting());
}
