//! The outgoing-call screen: "Calling bob", then "Ringing" once bob's phone
//! has the invitation; Cancel (or Esc) withdraws it.

use crate::model::{Outgoing, OutgoingStage};
use crate::theme;
use crate::widget::clock;
use iced::widget::{button, column, text};
use iced::{Center, Element};
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum Message {
    Cancel,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Cancel { call_id: String },
}

/// What a press means for `call`: nothing while it is being canceled.
pub fn update(call: &Outgoing, message: Message) -> Option<Event> {
    match message {
        Message::Cancel if call.stage != OutgoingStage::Canceling => {
            Some(Event::Cancel { call_id: call.call.call_id().to_owned() })
        }
        Message::Cancel => None,
    }
}

pub fn view(call: &Outgoing, now: Instant) -> Element<'_, Message> {
    let facts = &call.call.facts;
    let mut cancel = button(text("Cancel")).padding([10, 32]).style(button::danger);
    if call.stage != OutgoingStage::Canceling {
        cancel = cancel.on_press(Message::Cancel);
    }
    let mut body = column![
        text(format!("Calling {}", facts.peer)).size(theme::HEADLINE),
        text(call.status()),
        text(clock(now.saturating_duration_since(call.call.started))).size(theme::SMALL),
        text(format!("Channel: {}", facts.channel)).size(theme::SMALL),
    ]
    .spacing(theme::SPACING)
    .align_x(Center);
    if !facts.content.is_empty() {
        body = body.push(text(format!("\"{}\"", facts.content)).size(theme::SMALL));
    }
    body = body.push(cancel).push(text("Esc cancels").size(12));
    theme::centered_card(body)
}
