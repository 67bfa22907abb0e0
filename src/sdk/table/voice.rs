//! The call table's part in the media handshake (v1.2): the callee's
//! answered accept starts the wait for the caller's reveal, the worker
//! wakes when the first wait is over, and a call that ends ends its voice.
//! The steps themselves are in `media_slots.rs`.

use super::Table;
use crate::protocol::OkResult;
use crate::sdk::invitation::lock;
use tokio::time::Instant;

impl Table {
    /// Our accept of `call_id` was answered with `result`: the relay
    /// credential, if any; a v1.2 caller's reveal is awaited from `now`.
    pub fn on_accept_answered(&mut self, call_id: &str, result: &OkResult, now: Instant) {
        let Some(entry) = self.remote.get(call_id) else { return };
        let relay = match result {
            OkResult::Media { media } => Some(media.clone()),
            _ => None,
        };
        let mut e = lock(entry);
        e.media.on_answered(call_id, relay, now);
        if let Some(by) = e.media.handshake.as_ref().and_then(|h| h.reveal_by) {
            self.reveals_due.insert((by, call_id.to_owned()));
        }
    }

    /// When the worker must next look at an awaited reveal.
    pub fn next_reveal_due(&self) -> Option<Instant> {
        self.reveals_due.first().map(|(at, _)| *at)
    }

    /// Every awaited reveal whose time is over by `now` fails its voice.
    pub fn reveals_overdue(&mut self, now: Instant) {
        while let Some((at, call_id)) = self.reveals_due.first().cloned() {
            if at > now {
                break;
            }
            self.reveals_due.pop_first();
            if let Some(entry) = self.remote.get(&call_id) {
                lock(entry).media.on_reveal_overdue(now);
            }
        }
    }

    /// The call `call_id` is over: so is its voice.
    pub(super) fn voice_over(&mut self, call_id: &str) {
        if let Some(entry) = self.local.get(call_id) {
            lock(entry).media.on_call_over();
        }
        if let Some(entry) = self.remote.get(call_id) {
            lock(entry).media.on_call_over();
        }
        self.reveals_due.retain(|(_, id)| id != call_id);
    }
}
