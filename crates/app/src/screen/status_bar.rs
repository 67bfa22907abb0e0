//! The status bar, always on screen: connected, reconnecting (and when the
//! next try is), or signed out with the reason; and the embedded server's
//! note on the right.

use crate::link::Link;
use crate::theme;
use iced::widget::{column, container, row, text};
use iced::{Element, Fill};
use std::time::Instant;

/// The bar for `link`, with `note` under it.
pub fn view<'a, Message: 'a>(link: &Link, now: Instant, note: Option<String>) -> Element<'a, Message> {
    let state = match link {
        Link::Up { status: crate::link::Status::Connected, .. } => theme::Light::Good,
        Link::SignedOut { .. } => theme::Light::Bad,
        Link::Up { .. } => theme::Light::Waiting,
    };
    let line = row![theme::light(state), text(link.describe(now)).size(theme::SMALL).width(Fill)]
        .spacing(8)
        .align_y(iced::Center);
    let mut bar = column![line].spacing(2);
    if let Some(note) = note {
        bar = bar.push(text(note).size(12));
    }
    container(bar).width(Fill).padding([6, 12]).style(theme::status_bar).into()
}
