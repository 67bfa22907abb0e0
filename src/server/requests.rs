//! The decisions a participant asks for: invite, cancel, received, accept,
//! refuse and hang-up, each applied to the [`State`] under the hub's lock,
//! with its reply and the events it causes queued in the order decided.
//! Every one finds no call past its deadline: the hub catches up first.

use super::calls::{Ack, Call, Ended, Invite, Phase};
use super::outbound::{SessionId, encode};
use super::state::{LogEntry, Outcome, State, err, invitation, ok};
use super::store::CallStore;
use crate::protocol::{
    CancelReason, ErrorCode, HangupReason, MAX_RINGING_PER_CALLEE, OkResult, ProtocolError, Req, Role,
    ServerMessage,
};
use std::sync::Arc;
use tokio::time::Instant;

impl<C: CallStore> State<C> {
    /// How many of `caller`'s calls are ringing at `callee`.
    fn ringing_from(&self, caller: &str, callee: &str) -> usize {
        let Some(p) = self.peers.get(caller) else { return 0 };
        p.charged
            .iter()
            .filter_map(|id| self.calls.get(id))
            .filter(|c| *c.callee == *callee && c.is_ringing())
            .count()
    }

    /// Checks the v1.1 limits on a new call: the caller's live calls, and its
    /// calls ringing at this callee. The callee's own calls do not count.
    fn check_invite_limits(&self, caller: &str, callee: &str) -> Result<(), ProtocolError> {
        let max = self.config.max_calls_per_peer;
        if self.peers.charged_count(caller) >= max {
            return Err(err(ErrorCode::TooManyCalls, format!("you already take part in {max} live calls")));
        }
        if self.ringing_from(caller, callee) >= MAX_RINGING_PER_CALLEE {
            return Err(err(
                ErrorCode::TooManyCalls,
                format!("at most {MAX_RINGING_PER_CALLEE} of your calls may ring at {callee} at once"),
            ));
        }
        Ok(())
    }

    pub fn invite(
        &mut self,
        id: SessionId,
        caller: &Arc<str>,
        req: &Option<Req>,
        invite: Invite,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        if *invite.callee == **caller {
            return Err(ProtocolError::invalid_argument("callee_id must not be your own peer_id"));
        }
        if self.calls.exists(&invite.call_id) {
            let call_id = &invite.call_id;
            return Err(err(ErrorCode::DuplicateCallId, format!("call id {call_id} is already in use")));
        }
        self.check_invite_limits(caller, &invite.callee)?;
        let callee = self.peers.intern(&invite.callee);
        let online = self.peers.is_online(&callee);
        let mut call = Call::ringing(invite, caller.clone(), callee.clone(), now, self.config.invite_ttl);
        self.peers.send(id, &encode(&ok(req.clone())));
        self.metrics.call_placed();
        if online {
            self.metrics.invitation_delivered(now.saturating_duration_since(call.invited));
            call.reach(now, self.config.ack_timeout);
            self.peers.send_to_peer(&callee, &invitation(&call, now), None, true);
        }
        self.add_call(call);
        Ok(())
    }

    pub fn cancel(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        match self.calls.get(call_id) {
            Some(call) if *call.caller == *peer => {
                if !call.is_ringing() {
                    return Err(err(ErrorCode::AlreadyAccepted, format!("call {call_id} was accepted")));
                }
            }
            _ => return Err(self.ended_error(call_id, peer, Role::Caller)),
        }
        let call = self.calls.remove(call_id).expect("checked above");
        self.peers.send(id, &encode(&ok(req.clone())));
        let text = encode(&ServerMessage::Canceled {
            call_id: call_id.to_owned(),
            reason: CancelReason::CallerCanceled,
        });
        self.peers.send_to_peer(&call.callee, &text, None, call.callee_seen);
        self.end(call, Outcome::Canceled, now);
        Ok(())
    }

    pub fn received(&mut self, peer: &str, call_id: &str) {
        let first = |call: &mut Call| {
            if *call.callee != *peer {
                return None;
            }
            match &mut call.phase {
                Phase::Ringing { received, ack, .. } if !*received => {
                    *received = true;
                    *ack = Ack::Done;
                    Some(call.caller.clone())
                }
                _ => None,
            }
        };
        if let Some(caller) = self.calls.update(call_id, first).flatten() {
            let text = encode(&ServerMessage::ReceivedByPeer { call_id: call_id.to_owned() });
            self.peers.send_to_peer(&caller, &text, None, true);
        }
    }

    /// Checks that `peer` may answer `call_id` as its callee.
    fn check_answerable(&self, peer: &str, call_id: &str) -> Result<(), ProtocolError> {
        match self.calls.get(call_id) {
            Some(call) if *call.callee == *peer => {
                if call.is_ringing() {
                    Ok(())
                } else {
                    Err(err(ErrorCode::AlreadyEnded, format!("call {call_id} was already answered")))
                }
            }
            _ => Err(self.ended_error(call_id, peer, Role::Callee)),
        }
    }

    pub fn accept(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        answer: Answer,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        self.check_answerable(peer, call_id)?;
        let max = self.config.max_calls_per_peer;
        if self.peers.charged_count(peer) >= max {
            return Err(err(ErrorCode::TooManyCalls, format!("you already take part in {max} live calls")));
        }
        let device = self.peers.session(id).map(|s| s.device.to_string()).unwrap_or_default();
        let call = self
            .calls
            .update(call_id, |call| {
                call.phase = Phase::Accepted { at: now };
                (call.id.clone(), call.caller.clone(), call.callee.clone(), call.invited)
            })
            .expect("checked above");
        let (call_id, caller, callee, invited) = call;
        self.charge_callee(&callee, &call_id);
        self.metrics.call_accepted();
        self.log.push(LogEntry::Answered {
            call_id: call_id.clone(),
            caller: caller.clone(),
            callee: callee.clone(),
            ringing_ms: now.saturating_duration_since(invited).as_millis() as u64,
        });
        // Only the answering session learns the callee's credential: another device cannot send.
        let (caller_media, callee_media) = match &self.relay {
            Some(relay) => {
                let (caller_media, callee_media) = relay.open(&call_id);
                (Some(caller_media), Some(callee_media))
            }
            None => (None, None),
        };
        let result = match callee_media {
            Some(media) => OkResult::Media { media },
            None => OkResult::Empty {},
        };
        self.peers.send(id, &encode(&ServerMessage::Ok { req: req.clone(), result }));
        let accepted = ServerMessage::Accepted {
            call_id: call_id.to_string(),
            response: answer.response,
            device,
            media_key: answer.media_key,
            media: caller_media,
        };
        self.peers.send_to_peer(&caller, &encode(&accepted), None, true);
        let elsewhere =
            ServerMessage::Canceled { call_id: call_id.to_string(), reason: CancelReason::AnsweredElsewhere };
        self.peers.send_to_peer(&callee, &encode(&elsewhere), Some(id), true);
        Ok(())
    }

    pub fn refuse(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        response: &str,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        self.check_answerable(peer, call_id)?;
        let call = self.calls.remove(call_id).expect("checked above");
        self.peers.send(id, &encode(&ok(req.clone())));
        let refused = ServerMessage::Refused { call_id: call_id.to_owned(), response: response.to_owned() };
        self.peers.send_to_peer(&call.caller, &encode(&refused), None, true);
        let elsewhere =
            ServerMessage::Canceled { call_id: call_id.to_owned(), reason: CancelReason::RefusedElsewhere };
        self.peers.send_to_peer(&call.callee, &encode(&elsewhere), Some(id), true);
        self.end(call, Outcome::Refused, now);
        Ok(())
    }

    pub fn hangup(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        match self.calls.get(call_id) {
            Some(call) if call.role_of(peer).is_some() => {
                if call.is_ringing() {
                    return Err(not_found_to_hang_up(call_id));
                }
            }
            Some(_) => return Err(not_found_to_hang_up(call_id)),
            None => return Err(hangup_error(self.calls.ended(call_id), call_id, peer)),
        }
        let call = self.calls.remove(call_id).expect("checked above");
        self.peers.send(id, &encode(&ok(req.clone())));
        let text = encode(&ServerMessage::HungUp {
            call_id: call_id.to_owned(),
            reason: HangupReason::Hangup,
            by: peer.to_owned(),
        });
        self.peers.send_to_peer(&call.caller, &text, Some(id), true);
        self.peers.send_to_peer(&call.callee, &text, Some(id), true);
        self.end(call, Outcome::HungUp(HangupReason::Hangup), now);
        Ok(())
    }

    /// v1.2: the caller's key reveal, passed on to the callee's sessions
    /// (every one; those that did not answer ignore it). Nothing changes.
    pub fn reveal(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        media_key: String,
    ) -> Result<(), ProtocolError> {
        let Some(callee) = reveal_to(self.calls.get(call_id), peer, call_id)? else {
            return Err(reveal_ended_error(self.calls.ended(call_id), call_id, peer));
        };
        self.peers.send(id, &encode(&ok(req.clone())));
        let reveal = ServerMessage::MediaReveal { call_id: call_id.to_owned(), media_key };
        self.peers.send_to_peer(&callee, &encode(&reveal), None, true);
        Ok(())
    }

    /// The error for an action on a call that is not live for `peer` in `role`.
    fn ended_error(&self, call_id: &str, peer: &str, role: Role) -> ProtocolError {
        ended_error(self.calls.ended(call_id), call_id, peer, role)
    }
}

/// The error for an action on a call that is not live for `peer` in
/// `role`, from what is remembered of it (`ended`).
pub(super) fn ended_error(ended: Option<&Ended>, call_id: &str, peer: &str, role: Role) -> ProtocolError {
    let mine = |e: &Ended| match role {
        Role::Caller => *e.caller == *peer,
        Role::Callee => *e.callee == *peer,
    };
    match ended {
        Some(e) if mine(e) && role == Role::Caller && e.accepted => {
            err(ErrorCode::AlreadyAccepted, format!("call {call_id} was accepted"))
        }
        Some(e) if mine(e) => err(ErrorCode::AlreadyEnded, format!("call {call_id} has ended")),
        _ => {
            let role = if role == Role::Caller { "caller" } else { "callee" };
            err(ErrorCode::NotFound, format!("no call {call_id} in which you are the {role}"))
        }
    }
}

/// The error for a hang-up of a call that is not live: `already_ended` if
/// `peer` took part in it once it was accepted, else `not_found`.
pub(super) fn hangup_error(ended: Option<&Ended>, call_id: &str, peer: &str) -> ProtocolError {
    match ended {
        Some(e) if e.accepted && (*e.caller == *peer || *e.callee == *peer) => {
            err(ErrorCode::AlreadyEnded, format!("call {call_id} was already hung up"))
        }
        _ => not_found_to_hang_up(call_id),
    }
}

/// The error for a hang-up of a call that is not an accepted call of yours.
pub(super) fn not_found_to_hang_up(call_id: &str) -> ProtocolError {
    err(ErrorCode::NotFound, format!("no accepted call {call_id} of yours"))
}

/// The fields of an `accept` passed on to the caller.
pub(super) struct Answer {
    pub response: String,
    /// The callee's public key for the media session, passed on opaquely.
    pub media_key: Option<String>,
}

/// Whom a `media_reveal` from `peer` goes to, by the call as it stands
/// (both backends decide with it): the callee of an accepted call whose
/// caller is `peer`; `not_found` for a call that is not `peer`'s to reveal
/// in or still rings; `None` when no such call is live (see
/// [`reveal_ended_error`]).
pub(super) fn reveal_to<T>(
    call: Option<&Call<T>>,
    peer: &str,
    call_id: &str,
) -> Result<Option<Arc<str>>, ProtocolError> {
    let Some(call) = call else { return Ok(None) };
    if *call.caller != *peer || matches!(call.phase, Phase::Ringing { .. }) {
        return Err(err(
            ErrorCode::NotFound,
            format!("no accepted call {call_id} in which you are the caller"),
        ));
    }
    Ok(Some(call.callee.clone()))
}

/// The error for a `media_reveal` in a call that is not live:
/// `already_ended` if `peer` was its caller, else `not_found`.
pub(super) fn reveal_ended_error(ended: Option<&Ended>, call_id: &str, peer: &str) -> ProtocolError {
    match ended {
        Some(e) if *e.caller == *peer => err(ErrorCode::AlreadyEnded, format!("call {call_id} has ended")),
        _ => err(ErrorCode::NotFound, format!("no accepted call {call_id} in which you are the caller")),
    }
}
