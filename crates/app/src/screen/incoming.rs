//! The incoming-call dialog, shown over whatever screen is up: who calls,
//! on which channel, with what content, and how long it will still ring.
//! Accept (or Enter) and Refuse (or Esc). The call-waiting prompt beside a
//! call has the same buttons.

use crate::model::{Incoming, RingStage};
use crate::theme;
use iced::widget::{button, column, container, row, text};
use iced::{Center, Element, Fill};
use std::time::Instant;

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

/// What a press means for `incoming`: nothing once it is being answered.
pub fn update(incoming: &Incoming, message: Message) -> Option<Event> {
    if incoming.stage != RingStage::Ringing {
        return None;
    }
    let call_id = incoming.call.call_id().to_owned();
    Some(match message {
        Message::Accept => Event::Accept { call_id },
        Message::Refuse => Event::Refuse { call_id },
    })
}

/// The dialog.
pub fn view(incoming: &Incoming, now: Instant) -> Element<'_, Message> {
    let facts = &incoming.call.facts;
    let mut body = column![
        text("Incoming call").size(theme::SMALL),
        text(facts.peer.as_str()).size(theme::HEADLINE + 6.0),
        text(format!("Channel: {}", facts.channel)),
    ]
    .spacing(theme::SPACING)
    .align_x(Center);
    if !facts.content.is_empty() {
        body = body.push(text(format!("\"{}\"", facts.content)));
    }
    body = match incoming.stage {
        RingStage::Ringing => body
            .push(text(format!("Rings for {} more seconds", incoming.seconds_left(now))).size(theme::SMALL))
            .push(
                row![
                    button(text("Refuse")).padding([10, 28]).style(button::danger).on_press(Message::Refuse),
                    button(text("Accept")).padding([10, 28]).style(button::success).on_press(Message::Accept),
                ]
                .spacing(24),
            )
            .push(text("Enter accepts, Esc refuses").size(12)),
        RingStage::Accepting => body.push(text("Answering...")),
    };
    container(body).center_x(theme::DIALOG_WIDTH).padding(theme::PADDING).style(theme::dialog).into()
}

/// The call-waiting prompt: beside the call, not over it.
pub fn waiting_view(waiting: &Incoming, now: Instant) -> Element<'_, Message> {
    let body: Element<'_, Message> = match waiting.stage {
        RingStage::Ringing => row![
            column![
                text(format!("{} is calling", waiting.call.peer())).size(18),
                text(format!("Call waiting \u{00b7} rings {} s more", waiting.seconds_left(now))).size(12),
            ]
            .width(Fill),
            button(text("Decline").size(theme::SMALL)).style(button::danger).on_press(Message::Refuse),
            button(text("End call and answer").size(theme::SMALL))
                .style(button::success)
                .on_press(Message::Accept),
        ]
        .spacing(8)
        .align_y(iced::Center)
        .into(),
        RingStage::Accepting => text("Answering...").into(),
    };
    container(body).width(theme::CARD_WIDTH).padding([10, 16]).style(theme::attention).into()
}
