//! The decisions a participant asks for on a single node: invite, cancel,
//! received, accept, refuse and hang-up, each decided by the call rules
//! ([`rules`]) and applied to the [`State`] under the hub's lock, with its
//! reply and the events it causes queued in the order decided. Every one
//! finds no call past its deadline: the hub catches up first.

use super::calls::{Call, Invite};
use super::outbound::{SessionId, encode};
use super::rules::{self, Acceptance, Admission, Ending, Refused};
use super::state::{LogEntry, State, ok};
use super::store::CallStore;
use crate::protocol::{OkResult, ProtocolError, Req, ServerMessage};
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

    pub fn invite(
        &mut self,
        id: SessionId,
        caller: &Arc<str>,
        req: &Option<Req>,
        invite: Invite,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        rules::may_call(caller, &invite.callee)?;
        let seen = Admission {
            id_taken: self.calls.exists(&invite.call_id),
            caller_calls: self.peers.charged_count(caller),
            ringing_at_callee: self.ringing_from(caller, &invite.callee),
        };
        rules::admit(&invite.call_id, &invite.callee, seen, self.config.max_calls_per_peer)?;
        let callee = self.peers.intern(&invite.callee);
        let online = self.peers.is_online(&callee);
        let mut call = Call::ringing(invite, caller.clone(), callee, now, self.config.invite_ttl);
        self.peers.send(id, &encode(&ok(req.clone())));
        self.metrics.call_placed();
        if online {
            self.metrics.invitation_delivered(now.saturating_duration_since(call.invited));
            let invitation = rules::reach(&mut call, now, self.config.ack_timeout);
            self.tell(Some(id), [invitation]);
        }
        self.add_call(call);
        Ok(())
    }

    /// The error for a refused request about `call_id` of `peer`.
    fn refused(&self, refused: Refused, call_id: &str, peer: &str) -> ProtocolError {
        refused.given(self.calls.ended(call_id), call_id, peer)
    }

    /// Ends the live call `call_id` as `ending` decided: answers session
    /// `id`'s request `ok`, then tells the parties.
    fn end_as_decided(
        &mut self,
        id: SessionId,
        req: &Option<Req>,
        call_id: &str,
        ending: Ending,
        now: Instant,
    ) {
        let call = self.calls.remove(call_id).expect("decided on the live call");
        self.peers.send(id, &encode(&ok(req.clone())));
        self.tell(Some(id), ending.notices);
        self.end(call, ending.outcome, now);
    }

    pub fn cancel(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let ending =
            rules::cancel(self.calls.get(call_id), peer).map_err(|r| self.refused(r, call_id, peer))?;
        self.end_as_decided(id, req, call_id, ending, now);
        Ok(())
    }

    pub fn received(&mut self, peer: &str, call_id: &str) {
        if let Some(told) = self.calls.update(call_id, |call| rules::received(call, peer)).flatten() {
            self.tell(None, [told]);
        }
    }

    pub fn accept(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        acceptance: Acceptance,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        let call =
            rules::answerable(self.calls.get(call_id), peer).map_err(|r| self.refused(r, call_id, peer))?;
        let (call_id, callee) = (call.id.clone(), call.callee.clone());
        rules::within_callee_cap(self.peers.charged_count(peer), self.config.max_calls_per_peer)?;
        // Only the answering session learns the callee's credential: another device cannot send.
        let (caller_media, callee_media) = match &self.relay {
            Some(relay) => {
                let (caller_media, callee_media) = relay.open(&call_id);
                (Some(caller_media), Some(callee_media))
            }
            None => (None, None),
        };
        let device = self.peers.session(id).map(|s| s.device.to_string()).unwrap_or_default();
        let acceptance = Acceptance { device, media: caller_media, ..acceptance };
        let (notices, answered) = self
            .calls
            .update(&call_id, |call| (rules::accept(call, acceptance, now), LogEntry::answered(call, now)))
            .expect("checked above");
        self.charge_callee(&callee, &call_id);
        self.metrics.call_accepted();
        self.log.push(answered);
        let result = match callee_media {
            Some(media) => OkResult::Media { media },
            None => OkResult::Empty {},
        };
        self.peers.send(id, &encode(&ServerMessage::Ok { req: req.clone(), result }));
        self.tell(Some(id), notices);
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
        let ending = rules::refuse(self.calls.get(call_id), peer, response)
            .map_err(|r| self.refused(r, call_id, peer))?;
        self.end_as_decided(id, req, call_id, ending, now);
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
        let ending =
            rules::hangup(self.calls.get(call_id), peer).map_err(|r| self.refused(r, call_id, peer))?;
        self.end_as_decided(id, req, call_id, ending, now);
        Ok(())
    }

    /// v1.2: the caller's key reveal, passed on to the callee's sessions as
    /// the rules decide. Nothing changes.
    pub fn reveal(
        &mut self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        media_key: String,
    ) -> Result<(), ProtocolError> {
        let notice = rules::reveal(self.calls.get(call_id), peer, media_key)
            .map_err(|r| self.refused(r, call_id, peer))?;
        self.peers.send(id, &encode(&ok(req.clone())));
        self.tell(Some(id), [notice]);
        Ok(())
    }
}
