//! The call history as calls end, and desktop notifications.
//!
//! Every ending of a call calls one of the `record_*` functions here with
//! its outcome, so the history has a row for every call in and out, and a
//! missed call is recorded however short it rang. Notifications go out
//! only while the window is not in front: someone looking at the app sees
//! the call already.

use super::in_call::InCall;
use super::incoming::Incoming;
use super::outgoing::Outgoing;
use super::{App, invitations};
use crate::history::{Direction, Outcome, Record};

impl App {
    /// Records how an invitation that rang here (or was refused unrung) ended.
    pub(super) fn record_incoming(&mut self, dialog: &Incoming, outcome: Outcome, detail: &str) {
        self.record(Record {
            call_id: dialog.call_id.clone(),
            direction: Direction::Incoming,
            peer: dialog.caller.clone(),
            channel: dialog.channel.clone(),
            started_at_ms: dialog.started_at_ms,
            duration_ms: 0,
            outcome,
            detail: detail.to_owned(),
        });
    }

    /// Records how a call we placed ended before it was answered.
    pub(super) fn record_outgoing(&mut self, call: &Outgoing, outcome: Outcome, detail: &str) {
        self.record(Record {
            call_id: call.call_id.clone(),
            direction: Direction::Outgoing,
            peer: call.peer.clone(),
            channel: call.channel.clone(),
            started_at_ms: call.started_at_ms,
            duration_ms: 0,
            outcome,
            detail: detail.to_owned(),
        });
    }

    /// Records an answered call that has just ended, with how long it lasted.
    pub(super) fn record_call(&mut self, call: &InCall) {
        let direction = match call.facts.role {
            crate::protocol::Role::Caller => Direction::Outgoing,
            crate::protocol::Role::Callee => Direction::Incoming,
        };
        self.record(Record {
            call_id: call.facts.call_id.clone(),
            direction,
            peer: call.facts.peer.clone(),
            channel: call.facts.channel.clone(),
            started_at_ms: call.started_at_ms,
            duration_ms: self.now.saturating_duration_since(call.since).as_millis() as u64,
            outcome: Outcome::Answered,
            detail: String::new(),
        });
    }

    /// Whether `call_id` has a row already (an invitation sent anew after
    /// a reconnect is not a second call).
    pub(super) fn already_recorded(&self, call_id: &str) -> bool {
        self.history.records().iter().rev().take(50).any(|r| r.call_id == call_id)
    }

    fn record(&mut self, record: Record) {
        if record.is_missed() && record.detail != invitations::DND_DETAIL {
            // Do-not-disturb means no interruptions, a notification included.
            self.notify("Missed call", &format!("Missed call from {}", record.peer));
        }
        if let Err(e) = self.history.append(record) {
            tracing::warn!("{e}");
        }
        // The history screen open shows the new row as seen already.
        if matches!(self.screen, super::Screen::History(_))
            && let Err(e) = self.history.mark_seen()
        {
            tracing::warn!("{e}");
        }
    }

    /// Shows a desktop notification if the window is not in front.
    pub(super) fn notify(&mut self, summary: &str, body: &str) {
        if !self.focused && !self.quitting {
            self.notifier.notify(summary, body);
        }
    }
}
