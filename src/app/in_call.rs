//! The in-call screen: who, which channel, how long, and what the media
//! session is doing; Hang up.

use super::theme;
use super::widget::clock;
use crate::media::{CallFacts, MediaStatus};
use iced::widget::{button, column, text};
use iced::{Center, Element};
use std::time::Instant;

/// An accepted call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InCall {
    pub facts: CallFacts,
    /// When it was accepted.
    pub since: Instant,
    /// When it started ringing, in Unix milliseconds (for the history).
    pub started_at_ms: u64,
    /// The media session's last reported status.
    pub media: MediaStatus,
}

#[derive(Debug, Clone)]
pub enum Message {
    HangUp,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    HangUp { call_id: String },
}

impl InCall {
    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::HangUp => Some(Event::HangUp { call_id: self.facts.call_id.clone() }),
        }
    }

    pub fn view(&self, now: Instant) -> Element<'_, Message> {
        let media = match &self.media {
            MediaStatus::Running(status) => text(status.as_str()).size(theme::SMALL),
            MediaStatus::Ended(status) => text(status.as_str()).size(theme::SMALL).style(text::warning),
        };
        let body = column![
            text("In call with").size(theme::SMALL),
            text(self.facts.peer.as_str()).size(theme::HEADLINE + 6.0),
            text(clock(now.saturating_duration_since(self.since))).size(theme::HEADLINE),
            text(format!("Channel: {}", self.facts.channel)),
            media,
            button(text("Hang up")).padding([10, 32]).style(button::danger).on_press(Message::HangUp),
        ]
        .spacing(theme::SPACING)
        .align_x(Center);
        theme::centered_card(body)
    }
}
