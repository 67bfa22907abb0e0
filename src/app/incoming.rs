//! The incoming-call dialog, shown over whatever screen is up: who calls,
//! on which channel, with what content, and how long it will still ring.
//! Accept (or Enter) and Refuse (or Esc).

use super::theme;
use iced::widget::{button, column, container, row, text};
use iced::{Center, Element};
use std::time::Instant;

/// An invitation ringing here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub call_id: String,
    pub caller: String,
    pub channel: String,
    pub content: String,
    /// When the server will give up on it.
    pub expires_at: Instant,
    pub stage: Stage,
    /// When it arrived, in Unix milliseconds (for the history).
    pub started_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Ringing: the ringtone plays.
    Ringing,
    /// Accept was pressed; waiting for the server to confirm.
    Accepting,
}

#[derive(Debug, Clone)]
pub enum Message {
    Accept,
    Refuse,
}

/// What the dialog asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Accept { call_id: String },
    Refuse { call_id: String },
}

impl Incoming {
    pub fn update(&mut self, message: Message) -> Option<Event> {
        if self.stage != Stage::Ringing {
            return None;
        }
        let call_id = self.call_id.clone();
        match message {
            Message::Accept => {
                self.stage = Stage::Accepting;
                Some(Event::Accept { call_id })
            }
            Message::Refuse => Some(Event::Refuse { call_id }),
        }
    }

    /// Whole seconds until it stops ringing, rounded up.
    pub fn seconds_left(&self, now: Instant) -> u64 {
        self.expires_at.saturating_duration_since(now).as_millis().div_ceil(1000) as u64
    }

    pub fn view(&self, now: Instant) -> Element<'_, Message> {
        let mut body = column![
            text("Incoming call").size(theme::SMALL),
            text(self.caller.as_str()).size(theme::HEADLINE + 6.0),
            text(format!("Channel: {}", self.channel)),
        ]
        .spacing(theme::SPACING)
        .align_x(Center);
        if !self.content.is_empty() {
            body = body.push(text(format!("\"{}\"", self.content)));
        }
        body = match self.stage {
            Stage::Ringing => body
                .push(text(format!("Rings for {} more seconds", self.seconds_left(now))).size(theme::SMALL))
                .push(
                    row![
                        button(text("Refuse"))
                            .padding([10, 28])
                            .style(button::danger)
                            .on_press(Message::Refuse),
                        button(text("Accept"))
                            .padding([10, 28])
                            .style(button::success)
                            .on_press(Message::Accept),
                    ]
                    .spacing(24),
                )
                .push(text("Enter accepts, Esc refuses").size(12)),
            Stage::Accepting => body.push(text("Answering...")),
        };
        container(body).center_x(theme::DIALOG_WIDTH).padding(theme::PADDING).style(theme::dialog).into()
    }
}
