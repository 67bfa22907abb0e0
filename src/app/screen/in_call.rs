//! The in-call screen: who, which channel, how long, and what the media
//! session is doing; Hang up.

use crate::app::model::InCall;
use crate::app::theme;
use crate::app::widget::clock;
use crate::media::MediaStatus;
use iced::widget::{button, column, text};
use iced::{Center, Element};
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum Message {
    HangUp,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    HangUp { call_id: String },
}

pub fn update(call: &InCall, message: Message) -> Option<Event> {
    match message {
        Message::HangUp => Some(Event::HangUp { call_id: call.call.call_id().to_owned() }),
    }
}

pub fn view(call: &InCall, now: Instant) -> Element<'_, Message> {
    let media = match &call.media {
        MediaStatus::Running(status) => text(status.as_str()).size(theme::SMALL),
        MediaStatus::Ended(status) => text(status.as_str()).size(theme::SMALL).style(text::warning),
    };
    let body = column![
        text("In call with").size(theme::SMALL),
        text(call.call.peer()).size(theme::HEADLINE + 6.0),
        text(clock(now.saturating_duration_since(call.since))).size(theme::HEADLINE),
        text(format!("Channel: {}", call.call.facts.channel)),
        media,
        button(text("Hang up")).padding([10, 32]).style(button::danger).on_press(Message::HangUp),
    ]
    .spacing(theme::SPACING)
    .align_x(Center);
    theme::centered_card(body)
}
