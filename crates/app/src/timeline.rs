//! The QA timeline (`--log-events`): the inputs, the replies, the SDK
//! events let in, and a line whenever what the user sees has changed.

use super::{App, Message, contacts, dial, settings, sign_in};
use crate::event_log::EventLog;
use crate::model::{Active, Incoming};
use serde_json::{Value, json};
use std::path::Path;

/// The timeline file, and the UI state last written to it.
pub struct Timeline {
    log: EventLog,
    /// Written again only when it changes.
    last_ui: Option<Value>,
}

impl Timeline {
    /// Opens the timeline at `path`; a failure is logged and there is none.
    pub fn open(path: &Path) -> Option<Timeline> {
        match EventLog::open(path) {
            Ok(log) => Some(Timeline { log, last_ui: None }),
            Err(e) => {
                tracing::warn!("cannot open the event log {}: {e}", path.display());
                None
            }
        }
    }

    /// An SDK event of session `session` that was let in.
    pub fn sdk(&mut self, session: u64, event: &softphone_core::sdk::Event) {
        self.log.sdk(session, event);
    }
}

impl App {
    /// What the user sees, in the timeline's terms.
    fn ui_state(&self) -> Value {
        let ringing = |d: &Incoming| json!({ "call_id": d.call.call_id(), "caller": d.call.peer(), "stage": format!("{:?}", d.stage).to_lowercase() });
        let call = match self.calls.active() {
            Some(Active::Outgoing(c)) => {
                json!({ "call_id": c.call.call_id(), "peer": c.call.peer(), "stage": c.status() })
            }
            Some(Active::InCall(c)) => json!({ "call_id": c.call.call_id(), "peer": c.call.peer() }),
            None => Value::Null,
        };
        json!({
            "screen": self.screen().name(),
            "call": call,
            "dialog": self.calls.ringing().map(ringing),
            "waiting": self.calls.waiting().map(ringing),
            "tone": self.outputs.tone().map(|t| t.to_string()),
            "connection": self.link.name(),
            "notice": self.notice,
            "unseen_missed": self.history.unseen_missed().count(),
        })
    }

    /// Writes the UI state to the timeline when it changed.
    pub(super) fn log_ui(&mut self) {
        if self.timeline.is_none() {
            return;
        }
        let state = self.ui_state();
        if let Some(timeline) = &mut self.timeline
            && timeline.last_ui.as_ref() != Some(&state)
        {
            timeline.log.write("ui", state.clone());
            timeline.last_ui = Some(state);
        }
    }

    /// Writes an input or a reply to the timeline (SDK events are written
    /// where they are let in, after the stale ones are dropped).
    pub(super) fn log_message(&mut self, message: &Message) {
        let Some(timeline) = &mut self.timeline else { return };
        match message {
            Message::Replied { call_id, request, result } => timeline.log.write(
                "reply",
                json!({
                    "call_id": call_id,
                    "request": format!("{request:?}").to_lowercase(),
                    "result": match result { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
                }),
            ),
            Message::Sdk(..) | Message::Tick(_) | Message::Done | Message::PresenceReplied(..) => {}
            message if is_typing(message) => {}
            message => timeline.log.write("input", json!({ "message": format!("{message:?}") })),
        }
    }
}

/// Whether `message` is a keystroke in a text field: not worth a line, and
/// it may be a token.
fn is_typing(message: &Message) -> bool {
    matches!(
        message,
        Message::SignIn(
            sign_in::Message::ServerUrl(_)
                | sign_in::Message::PeerId(_)
                | sign_in::Message::Token(_)
                | sign_in::Message::Device(_)
        ) | Message::Dial(dial::Message::Peer(_) | dial::Message::Channel(_) | dial::Message::Content(_))
            | Message::Contacts(contacts::Message::NewPeer(_) | contacts::Message::NewName(_))
            | Message::Settings(
                settings::Message::ServerUrl(_)
                    | settings::Message::PeerId(_)
                    | settings::Message::Token(_)
                    | settings::Message::Device(_)
                    | settings::Message::Ringtone(_)
                    | settings::Message::MediaTemplate(_)
                    | settings::Message::Volume(_)
            )
    )
}
