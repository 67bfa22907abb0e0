//! Calls going out: placing one, its ringing at the other side, and each
//! way it ends before or as it is answered, with a plain sentence for the
//! notice bar.

use super::policy::{BUSY, DND};
use super::{Active, Ask, Call, Calls, Effect, InCall, Outgoing, OutgoingStage, describe_error};
use crate::call_history::Outcome;
use softphone_core::protocol::{ErrorCode, Role};
use softphone_core::sdk::{self, FailureReason};
use std::time::Instant;

impl Calls {
    /// Our invitation went out.
    pub(super) fn placed(
        &mut self,
        call_id: String,
        peer: String,
        channel: String,
        content: String,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        out.push(Effect::Notice(None));
        let call = Call::new(call_id, peer, channel, content, Role::Caller, now);
        self.active = Some(Active::Outgoing(Outgoing { call, stage: OutgoingStage::Calling }));
    }

    /// The callee's phone has it: it rings there.
    pub(super) fn rings_there(&mut self, call_id: &str) {
        if let Some(call) = self.outgoing(call_id)
            && call.stage == OutgoingStage::Calling
        {
            call.stage = OutgoingStage::Ringing;
        }
    }

    /// The callee answered: the call is up (unless we canceled meanwhile).
    pub(super) fn accepted(&mut self, call_id: &str, response: String, now: Instant, out: &mut Vec<Effect>) {
        let Some(call) = self.outgoing(call_id) else { return };
        if call.stage == OutgoingStage::Canceling {
            // Accepted just as we canceled: the user wanted it over.
            let sentence = format!("{} answered as you canceled; the call was hung up", call.call.peer());
            self.end_outgoing(Outcome::Canceled, "answered as you canceled", sentence, out);
            out.push(Effect::Ask(Ask::HangUp(call_id.to_owned())));
            return;
        }
        let Some(Active::Outgoing(mut call)) = self.active.take() else { return };
        call.call.facts.response = response;
        out.push(Effect::Notice(None));
        out.push(Effect::RecordAnswered(call.call.record(Outcome::Answered, "", 0)));
        self.active = Some(Active::InCall(InCall::new(call.call, now)));
    }

    /// The callee refused; its response says why.
    pub(super) fn refused(&mut self, call_id: &str, response: &str, out: &mut Vec<Effect>) {
        let Some(call) = self.outgoing(call_id) else { return };
        let peer = call.call.peer().to_owned();
        let response = response.trim();
        let (outcome, detail, sentence) = if response.eq_ignore_ascii_case(BUSY) {
            (Outcome::Busy, "", format!("{peer} is busy"))
        } else if response.eq_ignore_ascii_case(DND) {
            (Outcome::Declined, "do not disturb", format!("{peer} is not taking calls (do not disturb)"))
        } else if response.is_empty() {
            (Outcome::Declined, "", format!("{peer} declined"))
        } else {
            (Outcome::Declined, response, format!("{peer} declined: {response}"))
        };
        self.end_outgoing(outcome, detail, sentence, out);
    }

    /// The server gave up on our invitation.
    pub(super) fn failed(&mut self, call_id: &str, reason: FailureReason, out: &mut Vec<Effect>) {
        let Some(call) = self.outgoing(call_id) else { return };
        let peer = call.call.peer().to_owned();
        let (detail, sentence) = match reason {
            FailureReason::PeerOffline => ("peer offline", format!("{peer} is offline")),
            FailureReason::PeerNoResponse | FailureReason::Expired => {
                ("no answer", format!("No answer from {peer}"))
            }
            FailureReason::EndedWhileDisconnected => (
                "ended while you were disconnected",
                format!("The call to {peer} ended while you were disconnected"),
            ),
            FailureReason::CallerOffline | FailureReason::Other => {
                (reason.as_str(), format!("The call to {peer} failed"))
            }
        };
        self.end_outgoing(Outcome::Failed, detail, sentence, out);
    }

    /// Cancel on the outgoing screen: it says "Canceling..." until confirmed.
    pub(super) fn cancel(&mut self, call_id: &str, out: &mut Vec<Effect>) {
        if let Some(call) = self.outgoing(call_id)
            && call.stage != OutgoingStage::Canceling
        {
            call.stage = OutgoingStage::Canceling;
            out.push(Effect::Ask(Ask::Cancel(call_id.to_owned())));
        }
    }

    /// The invitation could not be sent.
    pub(super) fn invite_failed(&mut self, call_id: &str, error: &sdk::Error, out: &mut Vec<Effect>) {
        if let Some(call) = self.outgoing(call_id) {
            let peer = call.call.peer().to_owned();
            let why = describe_error(error);
            self.end_outgoing(Outcome::Failed, &why, format!("Could not call {peer}: {why}"), out);
        }
    }

    /// Our cancel failed: accepted or ended meanwhile, the event that says
    /// how is on its way; any other failure ends the call here.
    pub(super) fn cancel_failed(&mut self, call_id: &str, error: &sdk::Error, out: &mut Vec<Effect>) {
        let accepted = matches!(error, sdk::Error::AlreadyAccept(_))
            || error.server_code() == Some(ErrorCode::AlreadyAccepted);
        let ended = matches!(error, sdk::Error::AlreadyEnd(_))
            || error.server_code() == Some(ErrorCode::AlreadyEnded);
        if !accepted && !ended && self.outgoing(call_id).is_some() {
            self.end_outgoing(Outcome::Canceled, "", "Call canceled".into(), out);
        }
    }

    /// The call being placed, if it is `call_id`.
    pub(super) fn outgoing(&mut self, call_id: &str) -> Option<&mut Outgoing> {
        match &mut self.active {
            Some(Active::Outgoing(call)) if call.call.call_id() == call_id => Some(call),
            _ => None,
        }
    }

    /// The call being placed ends with `outcome`: into the history, back
    /// to the dial screen ready to call the same peer again.
    pub(super) fn end_outgoing(
        &mut self,
        outcome: Outcome,
        detail: &str,
        sentence: String,
        out: &mut Vec<Effect>,
    ) {
        if let Some(Active::Outgoing(call)) = self.active.take() {
            out.push(Effect::Record(call.call.record(outcome, detail, 0)));
            out.push(Effect::Redial(call.call.peer().to_owned()));
        }
        out.push(Effect::Notice(Some(sentence)));
    }
}
