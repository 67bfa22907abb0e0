//! The call rules of time passing: which deadline of a call is due, and
//! what each one does (ring timeout, ack timeout, offline grace).

use super::super::calls::{Call, Lapse, Moment};
use super::super::outbound::{Outbound, encode};
use super::{Ending, Notice, Notices, Outcome};
use crate::protocol::{FailureReason, HangupReason, ServerMessage};
use std::sync::Arc;
use std::time::Duration;

/// The deadline of `call` that has passed by `now`, if one has (`grace`:
/// the offline grace). Judged on the call itself, so a deadline looked at
/// twice, or late, ends a call once and only if due.
pub(in crate::server) fn lapsed<T: Moment>(call: &Call<T>, grace: Duration, now: T) -> Option<Lapse> {
    let (at, lapse) = call.next_deadline(grace)?;
    (at <= now).then_some(lapse)
}

/// What ends `call` when `lapse` passes, and what each side is told: a
/// ringing call fails (`peer_offline` to the caller, `caller_offline` to the
/// callee, `peer_no_response` to the caller and `expired` to the callee for
/// the ack timeout, `expired` to both for the ring timeout); an accepted
/// call whose party stayed offline is hung up for the other.
pub(in crate::server) fn end_by<T: Moment>(call: &Call<T>, lapse: Lapse) -> Ending {
    let failure = |reason| encode(&ServerMessage::Failure { call_id: call.id.to_string(), reason });
    let hung_up = |by: &str| {
        encode(&ServerMessage::HungUp {
            call_id: call.id.to_string(),
            reason: HangupReason::PeerOffline,
            by: by.to_owned(),
        })
    };
    let (caller, callee, seen) = (&call.caller, &call.callee, call.callee_seen);
    let to = |who: &Arc<str>, text: Outbound, seen: bool| Notice::to(who, &text, seen);
    let (outcome, notices) = match (lapse, call.is_ringing()) {
        (Lapse::CalleeLost, true) => (
            Outcome::Failed(FailureReason::PeerOffline),
            Notices::one(to(caller, failure(FailureReason::PeerOffline), true)),
        ),
        (Lapse::CallerLost, true) => (
            Outcome::Failed(FailureReason::CallerOffline),
            Notices::one(to(callee, failure(FailureReason::CallerOffline), seen)),
        ),
        (Lapse::CalleeLost, false) => {
            (Outcome::HungUp(HangupReason::PeerOffline), Notices::one(to(caller, hung_up(callee), true)))
        }
        (Lapse::CallerLost, false) => {
            (Outcome::HungUp(HangupReason::PeerOffline), Notices::one(to(callee, hung_up(caller), true)))
        }
        (Lapse::AckTimeout, _) => (
            Outcome::Failed(FailureReason::PeerNoResponse),
            Notices::two(
                to(caller, failure(FailureReason::PeerNoResponse), true),
                to(callee, failure(FailureReason::Expired), seen),
            ),
        ),
        (Lapse::Expired, _) => {
            let text = failure(FailureReason::Expired);
            (
                Outcome::Failed(FailureReason::Expired),
                Notices::two(to(caller, text.clone(), true), to(callee, text, seen)),
            )
        }
    };
    let while_offline = match lapse {
        Lapse::CalleeLost => Some(callee.clone()),
        Lapse::CallerLost => Some(caller.clone()),
        Lapse::AckTimeout | Lapse::Expired => None,
    };
    Ending { outcome, notices, while_offline }
}
