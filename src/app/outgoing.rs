//! The outgoing-call screen: "Calling bob", then "Ringing" once bob's phone
//! has the invitation; Cancel (or Esc) withdraws it.

use super::theme;
use super::widget::clock;
use iced::widget::{button, column, text};
use iced::{Center, Element};
use std::time::Instant;

/// A call we placed that has not been answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub call_id: String,
    pub peer: String,
    pub channel: String,
    pub content: String,
    pub stage: Stage,
    /// When Call was pressed.
    pub started: Instant,
    /// The same, in Unix milliseconds (for the history).
    pub started_at_ms: u64,
}

/// How far the invitation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Sent (or being sent); the callee's phone has not confirmed it yet.
    Calling,
    /// The callee's phone has it: it rings there, ringback plays here.
    Ringing,
    /// Cancel was pressed; waiting for the server to confirm.
    Canceling,
}

#[derive(Debug, Clone)]
pub enum Message {
    Cancel,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Cancel { call_id: String },
}

impl Outgoing {
    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::Cancel if self.stage != Stage::Canceling => {
                self.stage = Stage::Canceling;
                Some(Event::Cancel { call_id: self.call_id.clone() })
            }
            Message::Cancel => None,
        }
    }

    /// The line under the peer's name.
    pub fn status(&self) -> &'static str {
        match self.stage {
            Stage::Calling => "Calling...",
            Stage::Ringing => "Ringing",
            Stage::Canceling => "Canceling...",
        }
    }

    pub fn view(&self, now: Instant) -> Element<'_, Message> {
        let headline = format!("Calling {}", self.peer);
        let mut cancel = button(text("Cancel")).padding([10, 32]).style(button::danger);
        if self.stage != Stage::Canceling {
            cancel = cancel.on_press(Message::Cancel);
        }
        let mut body = column![
            text(headline).size(theme::HEADLINE),
            text(self.status()),
            text(clock(now.saturating_duration_since(self.started))).size(theme::SMALL),
            text(format!("Channel: {}", self.channel)).size(theme::SMALL),
        ]
        .spacing(theme::SPACING)
        .align_x(Center);
        if !self.content.is_empty() {
            body = body.push(text(format!("\"{}\"", self.content)).size(theme::SMALL));
        }
        body = body.push(cancel).push(text("Esc cancels").size(12));
        theme::centered_card(body)
    }
}
