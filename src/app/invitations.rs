//! Who may ring: an invitation that arrives rings in the incoming-call
//! dialog, waits beside the call in progress (call waiting), or is refused
//! without a sound: `dnd` in do-not-disturb, `busy` while another call
//! rings, is being placed or (without call waiting) is up. Every one that
//! does not ring is recorded as missed.

use super::calls::BUSY;
use super::dial::Dial;
use super::incoming::{self, Incoming};
use super::{App, Message, Request, Screen};
use crate::clock::unix_millis;
use crate::history::Outcome;
use iced::{Task, window};

/// The response that tells a caller we take no calls now.
pub const DND: &str = "dnd";

/// The history's detail of a call refused in do-not-disturb.
pub const DND_DETAIL: &str = "do not disturb";

impl App {
    pub(super) fn on_invitation(
        &mut self,
        call_id: String,
        caller: String,
        content: String,
        channel: String,
        expires_in: std::time::Duration,
    ) -> Task<Message> {
        let expires_at = self.now + expires_in;
        for ringing in [&mut self.incoming, &mut self.waiting].into_iter().flatten() {
            if ringing.call_id == call_id {
                // The same invitation again (sent anew after a reconnect).
                ringing.expires_at = expires_at;
                return Task::none();
            }
        }
        if matches!(&self.screen, Screen::InCall(call) if call.facts.call_id == call_id) {
            return Task::none();
        }
        let dialog = Incoming {
            call_id,
            caller,
            channel,
            content,
            expires_at,
            stage: incoming::Stage::Ringing,
            started_at_ms: unix_millis(),
        };
        if self.config.do_not_disturb {
            return self.refuse_unrung(dialog, DND, DND_DETAIL);
        }
        let in_call = matches!(self.screen, Screen::InCall(_));
        if in_call && self.config.call_waiting && self.incoming.is_none() && self.waiting.is_none() {
            self.notify("Call waiting", &format!("{} is calling", dialog.caller));
            self.waiting = Some(dialog);
            return Task::none();
        }
        let busy = self.incoming.is_some()
            || self.waiting.is_some()
            || matches!(self.screen, Screen::Outgoing(_) | Screen::InCall(_));
        if busy {
            return self.refuse_unrung(dialog, BUSY, "you were on another call");
        }
        self.notify("Incoming call", &format!("{} is calling", dialog.caller));
        self.incoming = Some(dialog);
        attention()
    }

    /// Refuses an invitation that never rang, and records it as missed.
    fn refuse_unrung(&mut self, dialog: Incoming, response: &str, detail: &str) -> Task<Message> {
        tracing::info!(call_id = %dialog.call_id, caller = %dialog.caller, "refused with {response:?} ({detail})");
        if !self.already_recorded(&dialog.call_id) {
            self.record_incoming(&dialog, Outcome::Missed, detail);
        }
        self.refuse(dialog.call_id, response)
    }

    /// Sends a refusal with `response`; its reply comes back as `Replied`.
    pub(super) fn refuse(&self, call_id: String, response: &str) -> Task<Message> {
        let Some(session) = &self.session else { return Task::none() };
        let reply = session.phone.refuse(&call_id, response);
        Task::perform(reply, move |result| Message::Replied { call_id, request: Request::Refuse, result })
    }

    /// Answer or Decline on the call-waiting prompt. Answering hangs up the
    /// call in progress first: one call at a time.
    pub(super) fn on_waiting(&mut self, message: incoming::Message) -> Task<Message> {
        let Some(waiting) = &mut self.waiting else { return Task::none() };
        match waiting.update(message) {
            Some(incoming::Event::Accept { call_id }) => {
                let mut tasks = Vec::new();
                if let Screen::InCall(call) = &self.screen {
                    let call = call.clone();
                    self.record_call(&call);
                    tasks.push(self.request(call.facts.call_id.clone(), Request::HangUp));
                    self.screen = Screen::Dial(Dial::redial(&call.facts.peer));
                }
                // The dialog says "Answering..." until the accept is confirmed.
                self.incoming = self.waiting.take();
                tasks.push(self.request(call_id, Request::Accept));
                Task::batch(tasks)
            }
            Some(incoming::Event::Refuse { call_id }) => {
                if let Some(dialog) = self.waiting.take() {
                    self.record_incoming(&dialog, Outcome::Declined, "during another call");
                }
                self.refuse(call_id, BUSY)
            }
            None => Task::none(),
        }
    }

    /// A waiting call whose first call has ended rings like any other.
    pub(super) fn promote_waiting(&mut self) -> Task<Message> {
        if self.waiting.is_some() && self.incoming.is_none() && !matches!(self.screen, Screen::InCall(_)) {
            self.incoming = self.waiting.take();
            return attention();
        }
        Task::none()
    }

    /// Removes the dialog or the call-waiting prompt if it shows `call_id`.
    pub(super) fn take_ringing(&mut self, call_id: &str) -> Option<Incoming> {
        for slot in [&mut self.incoming, &mut self.waiting] {
            if slot.as_ref().is_some_and(|d| d.call_id == call_id) {
                return slot.take();
            }
        }
        None
    }
}

/// Asks the window manager to draw the user's attention to the window.
fn attention() -> Task<Message> {
    window::latest().and_then(|id| window::request_user_attention(id, Some(window::UserAttention::Critical)))
}
