//! Calls coming in: who may ring (do-not-disturb, busy, call waiting),
//! answering and refusing, and every way an invitation stops ringing.
//! Every invitation that does not ring is recorded as missed.

use super::policy::{BUSY, DND, DND_DETAIL, Policy};
use super::{Active, Ask, Call, Calls, Effect, InCall, Incoming, RingStage, describe_error};
use crate::call_history::Outcome;
use softphone_core::sdk::{self, CancelReason, FailureReason};
use std::time::Instant;

impl Calls {
    /// An invitation arrived: it rings in the dialog, waits beside the call
    /// in progress, or is refused without a sound.
    pub(super) fn invited(
        &mut self,
        call: Call,
        expires_at: Instant,
        policy: &Policy,
        out: &mut Vec<Effect>,
    ) {
        for ringing in [&mut self.ringing, &mut self.waiting].into_iter().flatten() {
            if ringing.call.call_id() == call.call_id() {
                // The same invitation again (sent anew after a reconnect).
                ringing.expires_at = expires_at;
                return;
            }
        }
        if matches!(&self.active, Some(Active::InCall(up)) if up.call.call_id() == call.call_id()) {
            return;
        }
        let caller = call.peer().to_owned();
        let incoming = Incoming { call, expires_at, stage: RingStage::Ringing };
        if policy.do_not_disturb {
            return refuse_unrung(incoming, DND, DND_DETAIL, out);
        }
        let nothing_else_rings = self.ringing.is_none() && self.waiting.is_none();
        if self.in_call() && policy.call_waiting && nothing_else_rings {
            out.push(Effect::Notify { summary: "Call waiting", body: format!("{caller} is calling") });
            self.waiting = Some(incoming);
            return;
        }
        if !nothing_else_rings || self.active.is_some() {
            return refuse_unrung(incoming, BUSY, "you were on another call", out);
        }
        out.push(Effect::Notify { summary: "Incoming call", body: format!("{caller} is calling") });
        self.ringing = Some(incoming);
        out.push(Effect::Attention(true));
    }

    /// Our accept went through: the dialog becomes the call.
    pub(super) fn answered(&mut self, call_id: &str, now: Instant, out: &mut Vec<Effect>) {
        if let Some(incoming) = self.take_ringing(call_id) {
            out.push(Effect::Notice(None));
            out.push(Effect::RecordAnswered(incoming.call.record(Outcome::Answered, "", 0)));
            self.active = Some(Active::InCall(InCall::new(incoming.call, now)));
        }
    }

    /// The caller gave up, or another of our devices answered or refused.
    pub(super) fn invitation_canceled(&mut self, call_id: &str, reason: CancelReason, out: &mut Vec<Effect>) {
        let Some(incoming) = self.take_ringing(call_id) else { return };
        let caller = incoming.call.peer();
        let (sentence, outcome, detail) = match reason {
            CancelReason::AnsweredElsewhere => {
                (format!("{caller}'s call was answered on another device"), Outcome::AnsweredElsewhere, "")
            }
            CancelReason::RefusedElsewhere => (
                format!("{caller}'s call was declined on another device"),
                Outcome::Declined,
                "on another device",
            ),
            CancelReason::CallerCanceled | CancelReason::Other => {
                (format!("Missed call from {caller}"), Outcome::Missed, "")
            }
        };
        out.push(Effect::Notice(Some(sentence)));
        out.push(Effect::Record(incoming.call.record(outcome, detail, 0)));
    }

    /// The invitation ended on the server's side: expired, or the caller went.
    pub(super) fn invitation_failed(&mut self, call_id: &str, reason: FailureReason, out: &mut Vec<Effect>) {
        let Some(incoming) = self.take_ringing(call_id) else { return };
        let caller = incoming.call.peer();
        let (sentence, detail) = match reason {
            FailureReason::CallerOffline => {
                (format!("Missed call from {caller} ({caller} went offline)"), "caller went offline")
            }
            FailureReason::EndedWhileDisconnected => (
                format!("Missed call from {caller} (it ended while you were disconnected)"),
                "ended while you were disconnected",
            ),
            _ => (format!("Missed call from {caller}"), ""),
        };
        out.push(Effect::Notice(Some(sentence)));
        out.push(Effect::Record(incoming.call.record(Outcome::Missed, detail, 0)));
    }

    /// Accept on the dialog: it says "Answering..." until the server confirms.
    pub(super) fn accept(&mut self, call_id: &str, out: &mut Vec<Effect>) {
        if let Some(incoming) = &mut self.ringing
            && incoming.call.call_id() == call_id
            && incoming.stage == RingStage::Ringing
        {
            incoming.stage = RingStage::Accepting;
            out.push(Effect::Ask(Ask::Accept(call_id.to_owned())));
        }
    }

    /// Refuse on the dialog.
    pub(super) fn refuse(&mut self, call_id: &str, out: &mut Vec<Effect>) {
        if !self
            .ringing
            .as_ref()
            .is_some_and(|d| d.call.call_id() == call_id && d.stage == RingStage::Ringing)
        {
            return;
        }
        if let Some(incoming) = self.ringing.take() {
            out.push(Effect::Record(incoming.call.record(Outcome::Declined, "", 0)));
        }
        out.push(Effect::Ask(Ask::Refuse { call_id: call_id.to_owned(), response: String::new() }));
    }

    /// Answer on the call-waiting prompt: the call in progress is hung up
    /// first, one call at a time.
    pub(super) fn accept_waiting(&mut self, call_id: &str, now: Instant, out: &mut Vec<Effect>) {
        if !self
            .waiting
            .as_ref()
            .is_some_and(|w| w.call.call_id() == call_id && w.stage == RingStage::Ringing)
        {
            return;
        }
        if let Some(Active::InCall(call)) = self.active.take() {
            out.push(Effect::Record(call.record(now)));
            out.push(Effect::Ask(Ask::HangUp(call.call.call_id().to_owned())));
            out.push(Effect::Redial(call.call.peer().to_owned()));
        }
        // The dialog says "Answering..." until the accept is confirmed.
        self.ringing = self.waiting.take().map(|w| Incoming { stage: RingStage::Accepting, ..w });
        out.push(Effect::Ask(Ask::Accept(call_id.to_owned())));
    }

    /// Decline on the call-waiting prompt: the caller hears we are busy.
    pub(super) fn refuse_waiting(&mut self, call_id: &str, out: &mut Vec<Effect>) {
        if !self
            .waiting
            .as_ref()
            .is_some_and(|w| w.call.call_id() == call_id && w.stage == RingStage::Ringing)
        {
            return;
        }
        if let Some(waiting) = self.waiting.take() {
            out.push(Effect::Record(waiting.call.record(Outcome::Declined, "during another call", 0)));
        }
        out.push(Effect::Ask(Ask::Refuse { call_id: call_id.to_owned(), response: BUSY.to_owned() }));
    }

    /// Our accept was refused by the server or the SDK.
    pub(super) fn accept_failed(&mut self, call_id: &str, error: &sdk::Error, out: &mut Vec<Effect>) {
        if let Some(incoming) = self.take_ringing(call_id) {
            let why = describe_error(error);
            out.push(Effect::Notice(Some(format!(
                "Could not answer {}'s call: {why}",
                incoming.call.peer()
            ))));
            out.push(Effect::Record(incoming.call.record(
                Outcome::Failed,
                &format!("could not answer: {why}"),
                0,
            )));
        }
    }

    /// Removes the dialog or the call-waiting prompt if it shows `call_id`.
    pub(super) fn take_ringing(&mut self, call_id: &str) -> Option<Incoming> {
        for slot in [&mut self.ringing, &mut self.waiting] {
            if slot.as_ref().is_some_and(|d| d.call.call_id() == call_id) {
                return slot.take();
            }
        }
        None
    }
}

/// Refuses an invitation that never rang, and records it as missed.
fn refuse_unrung(incoming: Incoming, response: &str, detail: &str, out: &mut Vec<Effect>) {
    let call = incoming.call;
    tracing::info!(call_id = %call.call_id(), caller = %call.peer(), "refused with {response:?} ({detail})");
    out.push(Effect::RecordOnce(call.record(Outcome::Missed, detail, 0)));
    out.push(Effect::Ask(Ask::Refuse { call_id: call.facts.call_id, response: response.to_owned() }));
}
