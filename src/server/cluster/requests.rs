//! The requests of a logged-in session, decided over the shared state:
//! each reads the call, decides as a single node would, and commits the
//! transition as one compare-and-set with its events (read again and
//! decided again when another node changed the call in between).

use super::record::{Change, Committed, Read, Record, Transition};
use super::{ClusterHub, RETRIES, Unavailable, now_ms};
use crate::protocol::{
    CancelReason, ErrorCode, HangupReason, MAX_RINGING_PER_CALLEE, MAX_SUBSCRIPTIONS, OkResult,
    ProtocolError, Req, Request, Role, ServerMessage,
};
use crate::server::calls::{Ack, Call, Ended, Invite, Phase, UnixMs};
use crate::server::expiry::Notice;
use crate::server::outbound::{SessionId, encode};
use crate::server::requests::{
    ended_error, hangup_error, not_found_to_hang_up, reveal_ended_error, reveal_to,
};
use crate::server::state::{LogEntry, Outcome, err, invitation, ok};
use redis::AsyncCommands;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A race lost [`RETRIES`] times in a row.
fn contended(call_id: &str) -> ProtocolError {
    err(ErrorCode::Internal, format!("call {call_id} changed too often to decide; try again"))
}

fn notice(to: &Arc<str>, message: &ServerMessage, seen: bool) -> Notice {
    Notice { to: to.clone(), text: encode(message), seen }
}

impl ClusterHub {
    pub(super) async fn apply(
        &self,
        id: SessionId,
        peer: &Arc<str>,
        req: &Option<Req>,
        request: Request,
    ) -> Result<(), ProtocolError> {
        match request {
            Request::Invite { call_id, callee_id, content, channel_id, media_key, media_commit } => {
                if *callee_id == **peer {
                    return Err(ProtocolError::invalid_argument("callee_id must not be your own peer_id"));
                }
                let callee = callee_id.as_str().into();
                let invite =
                    Invite { call_id, callee: callee_id, content, channel_id, media_key, media_commit };
                let call = Call::ringing(invite, peer.clone(), callee, now_ms(), self.config.invite_ttl);
                self.invite(id, req, call).await
            }
            Request::Cancel { call_id } => self.cancel(id, peer, req, &call_id).await,
            Request::Received { call_id } => self.received(peer, &call_id).await,
            Request::Accept { call_id, response, media_key } => {
                self.accept(id, peer, req, &call_id, response, media_key).await
            }
            Request::Refuse { call_id, response } => self.refuse(id, peer, req, &call_id, response).await,
            Request::Hangup { call_id } => self.hangup(id, peer, req, &call_id).await,
            Request::MediaReveal { call_id, media_key } => {
                self.reveal(id, peer, req, &call_id, media_key).await
            }
            Request::QueryPresence { peer_ids } => {
                let online = self.online_map(&peer_ids).await?;
                let reply = ServerMessage::Ok { req: req.clone(), result: OkResult::Presence { online } };
                self.send_local(id, &encode(&reply));
                Ok(())
            }
            Request::SubscribePresence { peer_ids } => self.subscribe(id, req, &peer_ids).await,
            Request::UnsubscribePresence { peer_ids } => self.unsubscribe(id, req, &peer_ids).await,
            Request::Login { .. } | Request::Logout => unreachable!("handled by the session"),
        }
    }

    async fn invite(
        &self,
        id: SessionId,
        req: &Option<Req>,
        offline: Call<UnixMs>,
    ) -> Result<(), ProtocolError> {
        let now = offline.invited;
        let mut online = offline.clone();
        online.reach(now, self.config.ack_timeout);
        let grace = self.config.offline_grace;
        let deadline = |c: &Call<UnixMs>| c.next_deadline(grace).map_or(0, |(at, _)| at.0);
        let json = |c: &Call<UnixMs>| {
            serde_json::to_string(&Record { call: c.clone(), relay: None }).expect("plain data encodes")
        };
        let max = self.config.max_calls_per_peer;
        let mut invocation = self.scripts.invite.prepare_invoke();
        invocation
            .arg(&*online.id)
            .arg(&*online.caller)
            .arg(&*online.callee)
            .arg(json(&online))
            .arg(deadline(&online))
            .arg(json(&offline))
            .arg(deadline(&offline))
            .arg(invitation(&online, now).as_str())
            .arg(max)
            .arg(MAX_RINGING_PER_CALLEE);
        let mut redis = self.redis.clone();
        let answer: String = self.redis(invocation.invoke_async(&mut redis)).await?;
        let call_id = &online.id;
        match answer.as_str() {
            "duplicate" => {
                Err(err(ErrorCode::DuplicateCallId, format!("call id {call_id} is already in use")))
            }
            "calls" => {
                Err(err(ErrorCode::TooManyCalls, format!("you already take part in {max} live calls")))
            }
            "ringing" => Err(err(
                ErrorCode::TooManyCalls,
                format!(
                    "at most {MAX_RINGING_PER_CALLEE} of your calls may ring at {} at once",
                    online.callee
                ),
            )),
            reached => {
                let stored = if reached == "online" { &online } else { &offline };
                self.known_now(call_id, &json(stored));
                self.send_local(id, &encode(&ok(req.clone())));
                // The invitation's delivery is not timed here: another node queues it.
                self.metrics.call_placed_in_cluster();
                self.deadline_set(deadline(&offline).min(deadline(&online)));
                Ok(())
            }
        }
    }

    /// The live call `call_id`, if there is one.
    pub(super) async fn read(&self, call_id: &str) -> Result<Option<Read>, Unavailable> {
        let mut redis = self.redis.clone();
        let raw: Option<String> = self.redis(redis.get(format!("sp:c:{call_id}"))).await?;
        Ok(raw.and_then(Read::parse))
    }

    /// What is remembered of the ended call `call_id`.
    async fn ended(&self, call_id: &str) -> Result<Option<Ended>, Unavailable> {
        let mut redis = self.redis.clone();
        let raw: Option<String> = self.redis(redis.get(format!("sp:e:{call_id}"))).await?;
        Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// Applies `transition` if the call is still as read.
    pub(super) async fn commit(&self, transition: &Transition) -> Result<Committed, Unavailable> {
        let remember = self.config.invite_ttl.max(crate::server::state::MIN_REMEMBERED);
        let args = transition.args(self.config.offline_grace, remember, self.config.max_calls_per_peer);
        let mut invocation = self.scripts.commit.prepare_invoke();
        for arg in &args {
            invocation.arg(arg);
        }
        let mut redis = self.redis.clone();
        let code: i64 = self.redis(invocation.invoke_async(&mut redis)).await?;
        let committed = super::record::committed(code);
        if committed == Committed::Stale {
            self.known_now(&transition.id, "");
        }
        if committed == Committed::Done {
            match &transition.change {
                Change::End(record) => {
                    self.known_now(&transition.id, "");
                    self.relay_ended(record);
                }
                Change::Update(r) | Change::Accept(r) => {
                    self.known_now(&transition.id, &args[3]);
                    self.deadline_set(
                        super::record::next_look(&r.call, self.config.offline_grace, now_ms()).0,
                    );
                }
            }
        }
        Ok(committed)
    }

    /// Closes the relay state of an ended call this node carried (another
    /// node's is closed by the message the commit published to it).
    fn relay_ended(&self, record: &Record) {
        if record.relay.as_deref() == Some(&*self.node)
            && let Some(relay) = &self.relay
        {
            relay.close(&record.call.id);
        }
    }

    /// Ends the call as `read` with `notices`, answers session `id`'s
    /// request `ok` and logs `outcome`; `false` if the call changed since it
    /// was read (nothing was done: read again and decide again).
    async fn end_as_read(
        &self,
        id: SessionId,
        req: &Option<Req>,
        read: &Read,
        notices: Vec<(Notice, Option<String>)>,
        outcome: Outcome,
    ) -> Result<bool, Unavailable> {
        if self.commit(&Transition::end(read, notices)).await? != Committed::Done {
            return Ok(false);
        }
        self.send_local(id, &encode(&ok(req.clone())));
        self.ended_call(&read.record.call, outcome);
        Ok(true)
    }

    /// Counts and logs a call this node ended.
    pub(super) fn ended_call(&self, call: &Call<UnixMs>, outcome: Outcome) {
        self.metrics.call_ended_in_cluster(outcome.name(&call.phase));
        LogEntry::ended(call, outcome, now_ms()).write();
    }

    async fn cancel(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
    ) -> Result<(), ProtocolError> {
        let cancelable = |call: &Call<UnixMs>| *call.caller == *peer && call.is_ringing();
        for _ in 0..RETRIES {
            let read = match self.read_for(call_id, cancelable).await? {
                Some(read) if *read.record.call.caller == *peer => read,
                _ => {
                    return Err(ended_error(
                        self.ended(call_id).await?.as_ref(),
                        call_id,
                        peer,
                        Role::Caller,
                    ));
                }
            };
            let call = &read.record.call;
            if !call.is_ringing() {
                return Err(err(ErrorCode::AlreadyAccepted, format!("call {call_id} was accepted")));
            }
            let canceled =
                ServerMessage::Canceled { call_id: call_id.to_owned(), reason: CancelReason::CallerCanceled };
            let notices = vec![(notice(&call.callee, &canceled, call.callee_seen), None)];
            if self.end_as_read(id, req, &read, notices, Outcome::Canceled).await? {
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    async fn received(&self, peer: &str, call_id: &str) -> Result<(), ProtocolError> {
        let unreceived = |call: &Call<UnixMs>| {
            *call.callee == *peer && matches!(call.phase, Phase::Ringing { received: false, .. })
        };
        for _ in 0..RETRIES {
            let Some(read) = self.read_for(call_id, unreceived).await? else { return Ok(()) };
            let mut record = read.record.clone();
            let call = &mut record.call;
            match &mut call.phase {
                Phase::Ringing { received, ack, .. } if *call.callee == *peer && !*received => {
                    *received = true;
                    *ack = Ack::Done;
                }
                // Received already, answered or not this peer's: nothing to do.
                _ => return Ok(()),
            }
            let told = ServerMessage::ReceivedByPeer { call_id: call_id.to_owned() };
            let notices = vec![(notice(&call.caller, &told, true), None)];
            let transition = Transition::of(&read, Change::Update(record), notices);
            if self.commit(&transition).await? == Committed::Done {
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    /// The call `call_id` as this node remembers it if that is a state in
    /// which `allows` lets the request go ahead (a stale memory is then
    /// refused by the compare-and-set, forgotten, and read afresh), else as
    /// Redis has it: a request is refused only on what Redis says.
    async fn read_for(
        &self,
        call_id: &str,
        allows: impl Fn(&Call<UnixMs>) -> bool,
    ) -> Result<Option<Read>, Unavailable> {
        match self.remembered(call_id) {
            Some(read) if allows(&read.record.call) => Ok(Some(read)),
            _ => self.read(call_id).await,
        }
    }

    /// The events of an answer from session `id`: `to_caller` for the
    /// caller's sessions, `canceled` with `elsewhere` for the callee's other
    /// sessions (on any node; not the one that answered).
    fn answer_notices(
        &self,
        id: SessionId,
        call: &Call<UnixMs>,
        to_caller: &ServerMessage,
        elsewhere: CancelReason,
    ) -> Vec<(Notice, Option<String>)> {
        let canceled = ServerMessage::Canceled { call_id: call.id.to_string(), reason: elsewhere };
        vec![
            (notice(&call.caller, to_caller, true), None),
            (notice(&call.callee, &canceled, true), Some(self.field(id))),
        ]
    }

    /// The call `call_id` as its callee `peer` may answer it, or the error.
    async fn answerable(&self, peer: &str, call_id: &str) -> Result<Read, ProtocolError> {
        let answerable = |call: &Call<UnixMs>| *call.callee == *peer && call.is_ringing();
        match self.read_for(call_id, answerable).await? {
            Some(read) if *read.record.call.callee == *peer => {
                if read.record.call.is_ringing() {
                    Ok(read)
                } else {
                    Err(err(ErrorCode::AlreadyEnded, format!("call {call_id} was already answered")))
                }
            }
            _ => Err(ended_error(self.ended(call_id).await?.as_ref(), call_id, peer, Role::Callee)),
        }
    }

    async fn accept(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        response: String,
        media_key: Option<String>,
    ) -> Result<(), ProtocolError> {
        let device = self.local().peers.session(id).map(|s| s.device.to_string()).unwrap_or_default();
        for _ in 0..RETRIES {
            let read = self.answerable(peer, call_id).await?;
            let mut record = read.record.clone();
            let now = now_ms();
            record.call.phase = Phase::Accepted { at: now };
            // Only the answering session learns the callee's credential: another device cannot send.
            let media = self.relay.as_ref().map(|relay| relay.open(&record.call.id));
            record.relay = media.as_ref().map(|_| self.node.clone());
            let (mut caller_media, callee_media) = media.unzip();
            if let (Some(media), Some(url)) = (&mut caller_media, &self.media_url) {
                // The caller may be on another node, whose `/media` knows nothing of this call.
                media.ws = url.clone();
            }
            let call = &record.call;
            let accepted = ServerMessage::Accepted {
                call_id: call_id.to_owned(),
                response: response.clone(),
                device: device.clone(),
                media_key: media_key.clone(),
                media: caller_media,
            };
            let notices = self.answer_notices(id, call, &accepted, CancelReason::AnsweredElsewhere);
            let transition = Transition::of(&read, Change::Accept(record.clone()), notices);
            let committed = self.commit(&transition).await;
            if !matches!(committed, Ok(Committed::Done))
                && let Some(relay) = &self.relay
            {
                relay.close(call_id);
            }
            match committed? {
                Committed::Done => {}
                Committed::CalleeAtCap => {
                    let max = self.config.max_calls_per_peer;
                    return Err(err(
                        ErrorCode::TooManyCalls,
                        format!("you already take part in {max} live calls"),
                    ));
                }
                Committed::Stale | Committed::Guarded => continue,
            }
            let result = match callee_media {
                Some(media) => OkResult::Media { media },
                None => OkResult::Empty {},
            };
            self.send_local(id, &encode(&ServerMessage::Ok { req: req.clone(), result }));
            self.metrics.call_accepted();
            let call = &read.record.call;
            LogEntry::Answered {
                call_id: call.id.clone(),
                caller: call.caller.clone(),
                callee: call.callee.clone(),
                ringing_ms: now_ms().0.saturating_sub(call.invited.0),
            }
            .write();
            return Ok(());
        }
        Err(contended(call_id))
    }

    async fn refuse(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        response: String,
    ) -> Result<(), ProtocolError> {
        for _ in 0..RETRIES {
            let read = self.answerable(peer, call_id).await?;
            let call = &read.record.call;
            let refused = ServerMessage::Refused { call_id: call_id.to_owned(), response: response.clone() };
            let notices = self.answer_notices(id, call, &refused, CancelReason::RefusedElsewhere);
            if self.end_as_read(id, req, &read, notices, Outcome::Refused).await? {
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    async fn hangup(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
    ) -> Result<(), ProtocolError> {
        let live = |call: &Call<UnixMs>| call.role_of(peer).is_some() && !call.is_ringing();
        for _ in 0..RETRIES {
            let read = match self.read_for(call_id, live).await? {
                Some(read) if live(&read.record.call) => read,
                Some(_) => return Err(not_found_to_hang_up(call_id)),
                None => return Err(hangup_error(self.ended(call_id).await?.as_ref(), call_id, peer)),
            };
            let call = &read.record.call;
            let hung_up = ServerMessage::HungUp {
                call_id: call_id.to_owned(),
                reason: HangupReason::Hangup,
                by: peer.to_owned(),
            };
            let me = Some(self.field(id));
            let notices = vec![
                (notice(&call.caller, &hung_up, true), me.clone()),
                (notice(&call.callee, &hung_up, true), me),
            ];
            if self.end_as_read(id, req, &read, notices, Outcome::HungUp(HangupReason::Hangup)).await? {
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    /// v1.2: the caller's key reveal, passed on to the callee's sessions on
    /// every node. The call does not change; the event rides on a
    /// compare-and-set of the call as read, so it goes out only while the
    /// call is still the accepted one that was checked.
    async fn reveal(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        media_key: String,
    ) -> Result<(), ProtocolError> {
        let revealable = |call: &Call<UnixMs>| *call.caller == *peer && !call.is_ringing();
        for _ in 0..RETRIES {
            let read = self.read_for(call_id, revealable).await?;
            let Some(callee) = reveal_to(read.as_ref().map(|r| &r.record.call), peer, call_id)? else {
                return Err(reveal_ended_error(self.ended(call_id).await?.as_ref(), call_id, peer));
            };
            let read = read.expect("a live call was read");
            let reveal =
                ServerMessage::MediaReveal { call_id: call_id.to_owned(), media_key: media_key.clone() };
            let notices = vec![(notice(&callee, &reveal, true), None)];
            let transition = Transition::of(&read, Change::Update(read.record.clone()), notices);
            if self.commit(&transition).await? == Committed::Done {
                self.send_local(id, &encode(&ok(req.clone())));
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    /// Whether each of `peers` has a session on any node.
    pub(super) async fn online_map(&self, peers: &[String]) -> Result<BTreeMap<String, bool>, Unavailable> {
        let mut pipe = redis::pipe();
        for peer in peers {
            pipe.exists(format!("sp:s:{peer}"));
        }
        let mut redis = self.redis.clone();
        let online: Vec<bool> = self.redis(pipe.query_async(&mut redis)).await?;
        Ok(peers.iter().cloned().zip(online).collect())
    }

    async fn subscribe(
        &self,
        id: SessionId,
        req: &Option<Req>,
        peer_ids: &[String],
    ) -> Result<(), ProtocolError> {
        let newly_watched: Vec<String> = {
            let mut local = self.local();
            let unwatched: Vec<String> =
                peer_ids.iter().filter(|p| !local.peers.is_watched(p)).cloned().collect();
            if !local.peers.subscribe(id, peer_ids, MAX_SUBSCRIPTIONS) {
                return Err(err(
                    ErrorCode::TooManySubscriptions,
                    format!("a session may watch at most {MAX_SUBSCRIPTIONS} peers"),
                ));
            }
            unwatched
        };
        if !newly_watched.is_empty() {
            let mut pipe = redis::pipe();
            for peer in &newly_watched {
                pipe.sadd(format!("sp:w:{peer}"), &*self.node).ignore();
            }
            let mut redis = self.redis.clone();
            let added: Result<(), _> = self.redis(pipe.query_async(&mut redis)).await;
            if let Err(e) = added {
                self.local().peers.unsubscribe(id, peer_ids);
                return Err(e.into());
            }
        }
        let online = self.online_map(peer_ids).await?;
        let reply = ServerMessage::Ok { req: req.clone(), result: OkResult::Presence { online } };
        self.send_local(id, &encode(&reply));
        Ok(())
    }

    async fn unsubscribe(
        &self,
        id: SessionId,
        req: &Option<Req>,
        peer_ids: &[String],
    ) -> Result<(), ProtocolError> {
        let unwatched: Vec<Arc<str>> = {
            let mut local = self.local();
            local.peers.unsubscribe(id, peer_ids);
            peer_ids.iter().filter(|p| !local.peers.is_watched(p)).map(|p| p.as_str().into()).collect()
        };
        self.unwatch(&unwatched).await;
        // The protocol answers it with `ok` like every other request.
        self.send_local(id, &encode(&ok(req.clone())));
        Ok(())
    }

    /// Tells Redis this node no longer watches `peers` (best effort: a
    /// stale entry only sends this node presence events nobody reads).
    pub(super) async fn unwatch(&self, peers: &[Arc<str>]) {
        if peers.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for peer in peers {
            pipe.srem(format!("sp:w:{peer}"), &*self.node).ignore();
        }
        let mut redis = self.redis.clone();
        let _ = self.redis::<()>(pipe.query_async(&mut redis)).await;
    }
}
