//! The history screen: every call in and out, newest first, with its peer,
//! when, how long and how it ended; missed calls not seen before are
//! marked. Every row has Call back. Keyboard: Up and Down pick a row,
//! Enter calls back.

use crate::call_history::{Direction, History, HistoryEntry, Outcome};
use crate::theme;
use crate::widget::clock;
use iced::widget::{button, column, container, row, scrollable, text};
use iced::{Element, Fill};
use std::time::Duration;

/// How many calls the screen lists (the file keeps them all).
pub const SHOWN: usize = 200;

/// The screen's own state; the calls live in the app's [`History`].
#[derive(Debug, Clone, Default)]
pub struct HistoryScreen {
    /// The row picked with the arrow keys: 0 is the newest call.
    pub selected: Option<usize>,
    /// How many calls were unseen missed ones when the screen opened: they
    /// stay marked while it is open, though opening it marked them seen.
    pub fresh: usize,
}

#[derive(Debug, Clone)]
pub enum Message {
    /// Calls this peer back.
    CallBack(String),
    /// Up (-1) or Down (+1) in the list.
    Move(i32),
    /// Enter: calls back the selected row.
    CallSelected,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Call(String),
}

impl HistoryScreen {
    pub fn update(&mut self, message: Message, history: &History) -> Option<Event> {
        let count = history.records().len().min(SHOWN);
        match message {
            Message::CallBack(peer) => Some(Event::Call(peer)),
            Message::Move(step) => {
                if count > 0 {
                    let last = count as i32 - 1;
                    let next = self.selected.map_or(if step > 0 { 0 } else { last }, |i| i as i32 + step);
                    self.selected = Some(next.clamp(0, last) as usize);
                }
                None
            }
            Message::CallSelected => {
                let index = self.selected?;
                history.records().iter().rev().nth(index).map(|r| Event::Call(r.peer.clone()))
            }
        }
    }

    /// `now_ms` is the wall clock, for "5 min ago".
    pub fn view<'a>(&'a self, history: &'a History, now_ms: u64) -> Element<'a, Message> {
        let mut rows = column![].spacing(6);
        if history.records().is_empty() {
            rows = rows.push(text("No calls yet.").size(theme::SMALL));
        }
        for (index, record) in history.records().iter().rev().take(SHOWN).enumerate() {
            let fresh = record.is_missed() && index < self.fresh_rows(history);
            rows = rows.push(row_view(record, fresh, self.selected == Some(index), now_ms));
        }
        let body = column![
            text("History").size(theme::HEADLINE),
            scrollable(rows).height(Fill),
            text("Up/Down pick, Enter calls back, Esc goes back").size(12),
        ]
        .spacing(theme::SPACING);
        container(body).width(theme::CARD_WIDTH).padding(theme::PADDING).style(theme::card).into()
    }

    /// How many of the newest rows were unseen when the screen opened.
    fn fresh_rows(&self, history: &History) -> usize {
        // The unseen missed calls are the newest ones: count rows back to
        // the `fresh`-th missed call.
        let mut missed = 0;
        for (index, record) in history.records().iter().rev().enumerate() {
            if missed == self.fresh {
                return index;
            }
            if record.is_missed() {
                missed += 1;
            }
        }
        history.records().len()
    }
}

fn row_view(record: &HistoryEntry, fresh: bool, selected: bool, now_ms: u64) -> Element<'_, Message> {
    let direction = match record.direction {
        Direction::Incoming => "In",
        Direction::Outgoing => "Out",
    };
    let mut outcome = record.outcome.label().to_owned();
    if !record.detail.is_empty() {
        outcome = format!("{outcome} ({})", record.detail);
    }
    let mut facts = format!("{direction} \u{00b7} {} \u{00b7} {outcome}", ago(record.started_at_ms, now_ms));
    if record.outcome == Outcome::Answered {
        facts = format!("{facts} \u{00b7} {}", clock(Duration::from_millis(record.duration_ms)));
    }
    let mut peer = text(record.peer.as_str());
    if record.is_missed() {
        peer = peer.style(text::danger);
    }
    let mut who = row![peer].spacing(8).align_y(iced::Center);
    if fresh {
        who = who.push(container(text("new").size(11)).padding([1, 6]).style(theme::badge));
    }
    let line = row![
        column![who, text(facts).size(12)].width(Fill),
        button(text("Call back").size(theme::SMALL))
            .style(button::secondary)
            .on_press(Message::CallBack(record.peer.clone())),
    ]
    .spacing(10)
    .align_y(iced::Center);
    container(line).padding([4, 8]).style(move |t| theme::list_row(t, selected)).into()
}

/// How long ago `then_ms` was, as a phone says it.
pub fn ago(then_ms: u64, now_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => match secs / 86_400 {
            1 => "yesterday".into(),
            days => format!("{days} days ago"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn ago_reads_like_a_phone() {
        assert_eq!(ago(0, 30_000), "just now");
        assert_eq!(ago(0, 5 * 60_000), "5 min ago");
        assert_eq!(ago(0, 3 * 3_600_000), "3 h ago");
        assert_eq!(ago(0, 30 * 3_600_000), "yesterday");
        assert_eq!(ago(0, 72 * 3_600_000), "3 days ago");
        assert_eq!(ago(10, 0), "just now");
    }
}
