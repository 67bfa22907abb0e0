//! What a call's deadline means when it passes: the ring timeout, the ack
//! timeout, a participant's offline grace. A call past its deadline is not
//! ringing: whoever looks first after the deadline ends it. Every decision
//! of the hub catches up first ([`State::catch_up`]), and the hub's one
//! timer task wakes at the earliest deadline ([`State::next_wake`]) for
//! when nobody else comes. Each lapse is judged on the call itself, so a
//! deadline looked at twice, or late, ends a call once and only if due.

use super::calls::{Call, Lapse, Moment};
use super::outbound::{Outbound, encode};
use super::state::{Outcome, State};
use super::store::CallStore;
use crate::protocol::{FailureReason, HangupReason, ServerMessage};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How late forgetting ended calls and kept events may run: neither changes
/// an answer (both are past their time already), so the timer task batches
/// them instead of waking once per call.
const HOUSEKEEPING_SLACK: Duration = Duration::from_secs(1);

impl<C: CallStore> State<C> {
    /// Applies every deadline that has passed by `now`, earliest first, and
    /// forgets the ended calls and kept events whose time is up.
    pub fn catch_up(&mut self, now: Instant) {
        if self.calls.next_deadline().is_some_and(|at| at <= now) {
            for call_id in self.calls.due(now) {
                self.settle(&call_id, now);
            }
        }
        self.calls.forget_lapsed(now);
        self.peers.forget_lapsed(now);
    }

    /// For the timer task: when to look next, noted as the time it wakes.
    pub fn arm_timer(&mut self) -> Option<Instant> {
        self.timer_wakes_at = self.next_wake();
        self.timer_wakes_at
    }

    /// Whether a decision set a deadline before the timer task's next look;
    /// if so, the task is about to be woken, and that is noted.
    pub fn timer_must_wake(&mut self) -> bool {
        let next = self.next_wake();
        let earlier = next.is_some_and(|at| self.timer_wakes_at.is_none_or(|armed| at < armed));
        if earlier {
            self.timer_wakes_at = next;
        }
        earlier
    }

    /// When [`State::catch_up`] next has something to do.
    fn next_wake(&self) -> Option<Instant> {
        let housekeeping = self
            .calls
            .next_forget()
            .into_iter()
            .chain(self.peers.next_lapse())
            .min()
            .map(|at| at + HOUSEKEEPING_SLACK);
        self.calls.next_deadline().into_iter().chain(housekeeping).min()
    }

    /// Ends `call_id` if one of its deadlines has passed by `now`, telling
    /// each side what the protocol says for that deadline.
    fn settle(&mut self, call_id: &str, now: Instant) {
        let Some(lapse) = self.calls.lapse(call_id, now) else { return };
        let call = self.calls.remove(call_id).expect("has a lapsed deadline");
        let (outcome, notices) = lapse_notices(&call, lapse);
        for Notice { to, text, seen } in notices {
            self.peers.send_to_peer(&to, &text, None, seen);
        }
        self.end(call, outcome, now);
    }
}

/// An event for every session of a peer, decided with a call's outcome.
pub(super) struct Notice {
    /// The peer whose sessions get it.
    pub to: Arc<str>,
    pub text: Outbound,
    /// Whether the peer has seen the call: only then is the event kept for
    /// it while it has no session.
    pub seen: bool,
}

/// What the protocol says to each side when `lapse` ends `call`, and how
/// the call ended: the one mapping both the single node and the cluster use.
pub(super) fn lapse_notices<T: Moment>(call: &Call<T>, lapse: Lapse) -> (Outcome, Vec<Notice>) {
    let failure = |reason| encode(&ServerMessage::Failure { call_id: call.id.to_string(), reason });
    let hung_up = |by: &str| {
        encode(&ServerMessage::HungUp {
            call_id: call.id.to_string(),
            reason: HangupReason::PeerOffline,
            by: by.to_owned(),
        })
    };
    let (caller, callee, seen) = (&call.caller, &call.callee, call.callee_seen);
    let to = |who: &Arc<str>, text: Outbound, seen: bool| Notice { to: who.clone(), text, seen };
    match (lapse, call.is_ringing()) {
        (Lapse::CalleeLost, true) => (
            Outcome::Failed(FailureReason::PeerOffline),
            vec![to(caller, failure(FailureReason::PeerOffline), true)],
        ),
        (Lapse::CallerLost, true) => (
            Outcome::Failed(FailureReason::CallerOffline),
            vec![to(callee, failure(FailureReason::CallerOffline), seen)],
        ),
        (Lapse::CalleeLost, false) => {
            (Outcome::HungUp(HangupReason::PeerOffline), vec![to(caller, hung_up(callee), true)])
        }
        (Lapse::CallerLost, false) => {
            (Outcome::HungUp(HangupReason::PeerOffline), vec![to(callee, hung_up(caller), true)])
        }
        (Lapse::AckTimeout, _) => (
            Outcome::Failed(FailureReason::PeerNoResponse),
            vec![
                to(caller, failure(FailureReason::PeerNoResponse), true),
                to(callee, failure(FailureReason::Expired), seen),
            ],
        ),
        (Lapse::Expired, _) => {
            let text = failure(FailureReason::Expired);
            (
                Outcome::Failed(FailureReason::Expired),
                vec![to(caller, text.clone(), true), to(callee, text, seen)],
            )
        }
    }
}
