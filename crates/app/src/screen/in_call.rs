//! The in-call screen: who, which channel, how long, and what the media
//! session is doing; with built-in voice also the safety code, mute (the
//! button and `M`), the speaker volume, the microphone's level, the
//! quality line, and a plain sentence when a device is missing. Hang up.
//!
//! Mute, volume and levels are read from the voice control at every
//! draw (the app redraws ten times a second during a voice call), so the
//! screen shows what the audio does, not what a widget remembers.

use crate::audio::meter_fill;
use crate::media_hook::{MediaStatus, VoiceView};
use crate::model::InCall;
use crate::theme;
use crate::widget::clock;
use iced::widget::{Column, button, column, progress_bar, row, slider, text};
use iced::{Center, Element, Fill};
use softphone_core::voice::Quality;
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum Message {
    HangUp,
    /// The mute button or `M`.
    ToggleMute,
    /// The speaker volume slider, in percent (100 leaves it as sent).
    Volume(u8),
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    HangUp {
        call_id: String,
    },
    SetMuted(bool),
    /// 0.0 to 2.0, as the voice control takes it.
    SetVolume(f32),
}

pub fn update(call: &InCall, voice: Option<&VoiceView>, message: Message) -> Option<Event> {
    match message {
        Message::HangUp => Some(Event::HangUp { call_id: call.call.call_id().to_owned() }),
        Message::ToggleMute => voice.and_then(|v| v.control.as_ref()).map(|c| Event::SetMuted(!c.is_muted())),
        Message::Volume(percent) => voice
            .and_then(|v| v.control.as_ref())
            .map(|_| Event::SetVolume(f32::from(percent.min(200)) / 100.0)),
    }
}

pub fn view<'a>(call: &'a InCall, voice: Option<&'a VoiceView>, now: Instant) -> Element<'a, Message> {
    let media = match &call.media {
        MediaStatus::Running(status) => text(status.as_str()).size(theme::SMALL),
        MediaStatus::Ended(status) => text(status.as_str()).size(theme::SMALL).style(text::warning),
    };
    let mut body = column![
        text("In call with").size(theme::SMALL),
        text(call.call.peer()).size(theme::HEADLINE + 6.0),
        text(clock(now.saturating_duration_since(call.since))).size(theme::HEADLINE),
    ]
    .spacing(theme::SPACING)
    .align_x(Center);
    body = match voice {
        Some(voice) => voice_part(body, voice),
        None => body.push(text(format!("Channel: {}", call.call.facts.channel))),
    };
    let body = body
        .push(media)
        .push(button(text("Hang up")).padding([10, 32]).style(button::danger).on_press(Message::HangUp));
    theme::centered_card(body)
}

/// The safety code, the missing devices, the controls and the meters.
fn voice_part<'a>(mut body: Column<'a, Message>, voice: &'a VoiceView) -> Column<'a, Message> {
    body = match (voice.safety_code.is_empty(), &voice.safety_note) {
        (true, _) => body.push(text("Agreeing the voice keys...").size(theme::SMALL)),
        (false, Some(note)) => body
            .push(text(spaced(&voice.safety_code)).size(theme::HEADLINE + 12.0))
            .push(text(note.as_str()).style(text::warning)),
        (false, None) => body
            .push(text(spaced(&voice.safety_code)).size(theme::HEADLINE + 12.0))
            .push(text("Compare this code with the other person").size(theme::SMALL)),
    };
    for missing in [&voice.no_microphone, &voice.no_speaker].into_iter().flatten() {
        body = body.push(text(missing.as_str()).style(text::warning));
    }
    let Some(control) = &voice.control else {
        return body.push(text("Connecting voice...").size(theme::SMALL));
    };
    let muted = control.is_muted();
    let (mute_label, mute_style): (_, fn(&iced::Theme, button::Status) -> button::Style) =
        if muted { ("Unmute (M)", button::primary) } else { ("Mute (M)", button::secondary) };
    let volume = (control.volume() * 100.0).round() as u8;
    let mic = if muted { "Microphone (muted)" } else { "Microphone" };
    body.push(button(text(mute_label)).padding([8, 24]).style(mute_style).on_press(Message::ToggleMute))
        .push(
            row![
                text("Speaker").size(theme::SMALL).width(90),
                slider(0..=200u8, volume, Message::Volume).width(Fill),
                text(format!("{volume}%")).size(theme::SMALL).width(44),
            ]
            .spacing(8)
            .align_y(Center),
        )
        .push(
            row![
                text(mic).size(theme::SMALL).width(90),
                progress_bar(0.0..=1.0, meter_fill(control.mic_level())).girth(10),
            ]
            .spacing(8)
            .align_y(Center),
        )
        .push(text(quality_line(&control.quality())).size(theme::SMALL))
}

/// "123 456": two halves read aloud more easily.
fn spaced(code: &str) -> String {
    if code.len() == 6 && code.is_ascii() {
        format!("{} {}", &code[..3], &code[3..])
    } else {
        code.to_owned()
    }
}

/// "Loss 1.2% · jitter 4 ms · round trip 38 ms · speaker underruns 0":
/// what the network does, then whether our own playback keeps up (a
/// loaded machine runs the speaker dry, which no network figure shows).
pub fn quality_line(quality: &Quality) -> String {
    let rtt = quality.rtt_ms.map_or("round trip -".to_owned(), |ms| format!("round trip {ms:.0} ms"));
    format!(
        "Loss {:.1}% \u{b7} jitter {:.0} ms \u{b7} {rtt} \u{b7} speaker underruns {}",
        quality.loss_pct, quality.jitter_ms, quality.speaker_underruns
    )
}
