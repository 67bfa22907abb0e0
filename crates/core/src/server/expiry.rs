//! When a single node applies a call's deadlines: the ring timeout, the ack
//! timeout, a participant's offline grace (what each means is a call rule,
//! [`rules::end_by`]). A call past its deadline is not
//! ringing: whoever looks first after the deadline ends it. Every decision
//! of the hub catches up first ([`State::catch_up`]), and the hub's one
//! timer task wakes at the earliest deadline ([`State::next_wake`]) for
//! when nobody else comes. Each lapse is judged on the call itself, so a
//! deadline looked at twice, or late, ends a call once and only if due.

use super::rules;
use super::state::State;
use super::store::CallStore;
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
                self.end_if_due(&call_id, now);
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
    /// each side what the call rules say for that deadline. (Under the
    /// lock a peer's offline mark is cleared the moment it logs in, so an
    /// offline grace that has passed always finds its peer still offline.)
    fn end_if_due(&mut self, call_id: &str, now: Instant) {
        let Some(lapse) = self.calls.lapse(call_id, now) else { return };
        let call = self.calls.remove(call_id).expect("has a lapsed deadline");
        let ending = rules::end_by(&call, lapse);
        self.tell(None, ending.notices);
        self.end(call, ending.outcome, now);
    }
}
