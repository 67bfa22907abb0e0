//! The timers of live calls: one task per call waits for its next deadline
//! (ring timeout, ack timeout, a participant's offline grace) and applies
//! whichever has passed, under the hub's lock like every other decision.

use super::calls::Lapse;
use super::hub::{Hub, Outcome, encode};
use crate::protocol::{FailureReason, HangupReason, ServerMessage};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::time::Instant;

impl Hub {
    /// The next deadline of a call: `None` if the call is gone, `Some(None)`
    /// if it has none right now.
    fn deadline(&self, call_id: &str) -> Option<Option<Instant>> {
        let state = self.lock();
        let call = state.calls.live.get(call_id)?;
        Some(call.next_deadline(&self.config).map(|(at, _)| at))
    }

    /// Applies whatever deadline of the call has passed.
    fn on_timer(&self, call_id: &str) {
        let now = Instant::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        let Some(call) = state.calls.live.get(call_id) else { return };
        let Some((at, lapse)) = call.next_deadline(&self.config) else { return };
        if at > now {
            return;
        }
        let call = state.calls.live.remove(call_id).expect("looked up above");
        let ringing = call.is_ringing();
        let id = call.id.to_string();
        let failure = |reason| encode(&ServerMessage::Failure { call_id: id.clone(), reason });
        let hung_up = |by: &str| {
            encode(&ServerMessage::HungUp {
                call_id: id.clone(),
                reason: HangupReason::PeerOffline,
                by: by.to_owned(),
            })
        };
        let outcome = match (lapse, ringing) {
            (Lapse::CalleeLost, true) => {
                state.peers.send_to_peer(&call.caller, &failure(FailureReason::PeerOffline), None, true);
                Outcome::Failed(FailureReason::PeerOffline)
            }
            (Lapse::CallerLost, true) => {
                state.peers.send_to_peer(
                    &call.callee,
                    &failure(FailureReason::CallerOffline),
                    None,
                    call.callee_seen,
                );
                Outcome::Failed(FailureReason::CallerOffline)
            }
            (Lapse::CalleeLost, false) => {
                state.peers.send_to_peer(&call.caller, &hung_up(&call.callee), None, true);
                Outcome::HungUp(HangupReason::PeerOffline)
            }
            (Lapse::CallerLost, false) => {
                state.peers.send_to_peer(&call.callee, &hung_up(&call.caller), None, true);
                Outcome::HungUp(HangupReason::PeerOffline)
            }
            (Lapse::AckTimeout, _) => {
                state.peers.send_to_peer(&call.caller, &failure(FailureReason::PeerNoResponse), None, true);
                state.peers.send_to_peer(
                    &call.callee,
                    &failure(FailureReason::Expired),
                    None,
                    call.callee_seen,
                );
                Outcome::Failed(FailureReason::PeerNoResponse)
            }
            (Lapse::Expired, _) => {
                let text = failure(FailureReason::Expired);
                state.peers.send_to_peer(&call.caller, &text, None, true);
                state.peers.send_to_peer(&call.callee, &text, None, call.callee_seen);
                Outcome::Failed(FailureReason::Expired)
            }
        };
        state.end(call, outcome, now, &self.config);
    }
}

/// Waits for each deadline of one call in turn; ends when the call does.
pub(super) async fn watch_call(hub: Arc<Hub>, call_id: Arc<str>, wake: Arc<Notify>) {
    loop {
        match hub.deadline(&call_id) {
            None => return,
            Some(None) => wake.notified().await,
            Some(Some(at)) => tokio::select! {
                _ = tokio::time::sleep_until(at) => hub.on_timer(&call_id),
                _ = wake.notified() => {}
            },
        }
    }
}
