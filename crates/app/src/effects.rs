//! What the app does for the call model: it hands each [`model::Event`] to
//! [`Calls::on_event`](super::model::Calls::on_event) and carries out the
//! effects that come back, in order: requests to the SDK, rows in the call
//! history (an answered call is written at once, and completed when it
//! ends), the notice bar, desktop notifications and the window's
//! attention. Notifications go out only while the window is not in front:
//! someone looking at the app sees the call already.

use super::model::{self, Ask, Effect, policy::DND_DETAIL};
use super::phone::Phone;
use super::{App, Message, Page, Screen};
use crate::call_history::HistoryEntry;
use iced::{Task, window};
use softphone_core::sdk::Reply;

impl App {
    /// Hands `event` to the call model and carries out what it asks.
    pub(super) fn drive(&mut self, event: model::Event) -> Task<Message> {
        // Rows written as the history screen shows are seen already: the
        // screen the event happened on, not the one it leads to.
        let history_open = matches!(self.screen(), Screen::History(_));
        let effects = self.calls.on_event(event, &self.policy(), self.now);
        Task::batch(effects.into_iter().map(|effect| self.apply(effect, history_open)))
    }

    pub(super) fn apply(&mut self, effect: Effect, history_open: bool) -> Task<Message> {
        match effect {
            Effect::Ask(ask) => return self.ask(ask),
            Effect::Record(record) => self.record(record, history_open),
            Effect::RecordAnswered(record) => {
                if let Err(e) = self.history.append_answered(record) {
                    tracing::warn!("{e}");
                }
            }
            Effect::RecordOnce(record) => {
                if !self.already_recorded(&record.call_id) {
                    self.record(record, history_open);
                }
            }
            Effect::Notice(notice) => self.notice = notice,
            Effect::Notify { summary, body } => self.notify(summary, &body),
            Effect::Attention(wanted) => return attention(wanted),
            Effect::Redial(peer) => self.page = Page::Dial(super::dial::Dial::redial(&peer)),
        }
        Task::none()
    }

    /// Sends `ask` for the session; its reply comes back as `Replied`.
    fn ask(&self, ask: Ask) -> Task<Message> {
        let Some(session) = self.link.session() else { return Task::none() };
        let reply = send(session.phone.as_ref(), &ask);
        let request = ask.request();
        let call_id = ask.call_id().to_owned();
        Task::perform(reply, move |result| Message::Replied { call_id, request, result })
    }

    /// Whether `call_id` has a row already (an invitation sent anew after
    /// a reconnect is not a second call).
    fn already_recorded(&self, call_id: &str) -> bool {
        self.history.records().iter().rev().take(50).any(|r| r.call_id == call_id)
    }

    /// Adds a row to the history; a missed call is also a notification.
    fn record(&mut self, record: HistoryEntry, history_open: bool) {
        if record.is_missed() && record.detail != DND_DETAIL {
            // Do-not-disturb means no interruptions, a notification included.
            self.notify("Missed call", &format!("Missed call from {}", record.peer));
        }
        if let Err(e) = self.history.append(record) {
            tracing::warn!("{e}");
        }
        if history_open && let Err(e) = self.history.mark_seen() {
            tracing::warn!("{e}");
        }
    }

    /// Shows a desktop notification if the window is not in front.
    fn notify(&mut self, summary: &str, body: &str) {
        if !self.focused && !self.quitting {
            self.notifier.notify(summary, body);
        }
    }
}

/// The SDK request for `ask`.
pub(super) fn send(phone: &dyn Phone, ask: &Ask) -> Reply<()> {
    match ask {
        Ask::Accept(call_id) => phone.accept(call_id),
        Ask::Refuse { call_id, response } => phone.refuse(call_id, response),
        Ask::Cancel(call_id) => phone.cancel(call_id),
        Ask::HangUp(call_id) => phone.hang_up(call_id),
    }
}

/// Asks the window manager to draw the user's attention to the window, or
/// (`false`) to stop.
fn attention(wanted: bool) -> Task<Message> {
    let level = wanted.then_some(window::UserAttention::Critical);
    window::latest().and_then(move |id| window::request_user_attention(id, level))
}
