//! The requests of a logged-in session on a cluster node: each is decided
//! by the call rules ([`rules`]) on the call as this node remembers it or
//! reads it, and committed as one compare-and-set with its events (read
//! again and decided again when another node changed the call in between).

use super::record::{CallRecord, Change, Committed, Read, Transition};
use super::{ClusterHub, RETRIES, Unavailable, now_ms};
use crate::protocol::{
    ErrorCode, MAX_RINGING_PER_CALLEE, MAX_SUBSCRIPTIONS, OkResult, ProtocolError, Req, Request,
    ServerMessage,
};
use crate::server::calls::{Call, Ended, Invite, UnixMs};
use crate::server::outbound::{SessionId, encode};
use crate::server::rules::{self, Acceptance, Admission, Ending, Notice, Notices, Outcome, Refused, err};
use crate::server::state::{LogEntry, ok};
use redis::{AsyncCommands, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A race lost [`RETRIES`] times in a row.
fn contended(call_id: &str) -> ProtocolError {
    err(ErrorCode::Internal, format!("call {call_id} changed too often to decide; try again"))
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
                rules::may_call(peer, &callee_id)?;
                let callee = callee_id.as_str().into();
                let invite =
                    Invite { call_id, callee: callee_id, content, channel_id, media_key, media_commit };
                let call = Call::ringing(invite, peer.clone(), callee, now_ms(), self.config.invite_ttl);
                self.invite(id, req, call).await
            }
            Request::Cancel { call_id } => {
                self.end_on_request(id, peer, req, &call_id, |call| rules::cancel(call, peer)).await
            }
            Request::Received { call_id } => self.received(peer, &call_id).await,
            Request::Accept { call_id, response, media_key } => {
                let acceptance = Acceptance { response, media_key, device: String::new(), media: None };
                self.accept(id, peer, req, &call_id, acceptance).await
            }
            Request::Refuse { call_id, response } => {
                let refuse = |call: Option<&Call<UnixMs>>| rules::refuse(call, peer, &response);
                self.end_on_request(id, peer, req, &call_id, refuse).await
            }
            Request::Hangup { call_id } => {
                self.end_on_request(id, peer, req, &call_id, |call| rules::hangup(call, peer)).await
            }
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
            Request::Login { .. } | Request::Logout | Request::RenewToken { .. } => {
                unreachable!("handled by the session")
            }
        }
    }

    /// A new call: the `invite` script files it (as reached if its callee
    /// has a session, else as not) if the rules admit it, which it checks
    /// atomically with the caps [`rules::admit`] names; a refusal comes back
    /// with the counts it saw, and the rules name the error.
    async fn invite(
        &self,
        id: SessionId,
        req: &Option<Req>,
        offline: Call<UnixMs>,
    ) -> Result<(), ProtocolError> {
        let now = offline.invited;
        let mut online = offline.clone();
        let invitation = rules::reach(&mut online, now, self.config.ack_timeout);
        let grace = self.config.offline_grace;
        let deadline = |c: &Call<UnixMs>| c.next_deadline(grace).map_or(0, |(at, _)| at.0);
        let json = |c: &Call<UnixMs>| {
            serde_json::to_string(&CallRecord { call: c.clone(), relay: None }).expect("plain data encodes")
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
            .arg(invitation.text.as_str())
            .arg(max)
            .arg(MAX_RINGING_PER_CALLEE);
        let mut redis = self.redis.clone();
        let answer: Value = self.redis(invocation.invoke_async(&mut redis)).await?;
        let call_id = &online.id;
        let reached = match &answer {
            Value::Array(counts) => {
                let count = |i: usize| match counts.get(i) {
                    Some(Value::Int(n)) => *n as usize,
                    _ => 0,
                };
                let seen =
                    Admission { id_taken: count(0) > 0, caller_calls: count(1), ringing_at_callee: count(2) };
                return Err(rules::admit(call_id, &online.callee, seen, max).err().unwrap_or_else(|| {
                    err(
                        ErrorCode::Internal,
                        format!("the invite script refused call {call_id} on counts the rules admit"),
                    )
                }));
            }
            Value::BulkString(reached) => reached.as_slice() == b"online",
            _ => return Err(Unavailable.into()),
        };
        let stored = if reached { &online } else { &offline };
        self.known_now(call_id, &json(stored));
        self.send_local(id, &encode(&ok(req.clone())));
        // The invitation's delivery is not timed here: another node queues it.
        self.metrics.call_placed_in_cluster();
        self.deadline_set(deadline(&offline).min(deadline(&online)));
        Ok(())
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
        let remember = rules::remembered_for(self.config.invite_ttl);
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
    fn relay_ended(&self, record: &CallRecord) {
        if record.relay.as_deref() == Some(&*self.node)
            && let Some(relay) = &self.relay
        {
            relay.close(&record.call.id);
        }
    }

    /// Counts and logs a call this node ended.
    pub(super) fn ended_call(&self, call: &Call<UnixMs>, outcome: Outcome) {
        self.metrics.call_ended_in_cluster(outcome.name(&call.phase));
        LogEntry::ended(call, outcome, now_ms()).write();
    }

    /// `rule`'s decision for `peer`'s request on call `call_id`, made on the
    /// call as this node remembers it if the rule lets the request go ahead
    /// there (a stale memory is then refused by the compare-and-set,
    /// forgotten, and read afresh), else on the call as Redis has it: a
    /// request is refused only on what Redis says.
    async fn decide<X>(
        &self,
        call_id: &str,
        peer: &str,
        rule: &impl Fn(Option<&Call<UnixMs>>) -> Result<X, Refused>,
    ) -> Result<(Read, X), ProtocolError> {
        if let Some(read) = self.remembered(call_id)
            && let Ok(decided) = rule(Some(&read.record.call))
        {
            return Ok((read, decided));
        }
        let read = self.read(call_id).await?;
        match (rule(read.as_ref().map(|r| &r.record.call)), read) {
            (Ok(decided), Some(read)) => Ok((read, decided)),
            (Ok(_), None) => unreachable!("a rule lets a request go ahead only on a live call"),
            (Err(Refused::Now(e)), _) => Err(e),
            (Err(refused), _) => Err(refused.given(self.ended(call_id).await?.as_ref(), call_id, peer)),
        }
    }

    /// The asking session's field, if `notices` skip it.
    fn asker(&self, id: SessionId, notices: &Notices) -> Option<String> {
        notices.iter().any(|n| n.skip_asker).then(|| self.field(id))
    }

    /// A request of session `id` that ends call `call_id` if `rule` says
    /// so: committed with the rule's events, then answered `ok`.
    async fn end_on_request(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        rule: impl Fn(Option<&Call<UnixMs>>) -> Result<Ending, Refused>,
    ) -> Result<(), ProtocolError> {
        for _ in 0..RETRIES {
            let (read, Ending { outcome, notices, .. }) = self.decide(call_id, peer, &rule).await?;
            let asker = self.asker(id, &notices);
            if self.commit(&Transition::end(&read, notices, asker)).await? == Committed::Done {
                self.send_local(id, &encode(&ok(req.clone())));
                self.ended_call(&read.record.call, outcome);
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    async fn received(&self, peer: &str, call_id: &str) -> Result<(), ProtocolError> {
        /// The change the rule makes to the call as `read`, if any.
        fn decided(read: Read, peer: &str) -> Option<(Read, CallRecord, Notice)> {
            let mut record = read.record.clone();
            let told = rules::received(&mut record.call, peer)?;
            Some((read, record, told))
        }
        for _ in 0..RETRIES {
            let remembered = self.remembered(call_id).and_then(|read| decided(read, peer));
            let (read, record, told) = match remembered {
                Some(d) => d,
                // Received already, answered or not this peer's: nothing to do.
                None => match self.read(call_id).await?.and_then(|read| decided(read, peer)) {
                    Some(d) => d,
                    None => return Ok(()),
                },
            };
            let transition = Transition::of(&read, Change::Update(record), Notices::one(told), None);
            if self.commit(&transition).await? == Committed::Done {
                return Ok(());
            }
        }
        Err(contended(call_id))
    }

    async fn accept(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        acceptance: Acceptance,
    ) -> Result<(), ProtocolError> {
        let device = self.local().peers.session(id).map(|s| s.device.to_string()).unwrap_or_default();
        let answerable = |call: Option<&Call<UnixMs>>| rules::answerable(call, peer).map(|_| ());
        for _ in 0..RETRIES {
            let (read, ()) = self.decide(call_id, peer, &answerable).await?;
            let mut record = read.record.clone();
            let now = now_ms();
            // Only the answering session learns the callee's credential: another device cannot send.
            let media = self.relay.as_ref().map(|relay| relay.open(&record.call.id));
            record.relay = media.as_ref().map(|_| self.node.clone());
            let (mut caller_media, callee_media) = media.unzip();
            if let (Some(media), Some(url)) = (&mut caller_media, &self.media_url) {
                // The caller may be on another node, whose `/media` knows nothing of this call.
                media.ws = url.clone();
            }
            let acceptance = Acceptance {
                response: acceptance.response.clone(),
                media_key: acceptance.media_key.clone(),
                device: device.clone(),
                media: caller_media,
            };
            let notices = rules::accept(&mut record.call, acceptance, now);
            let asker = self.asker(id, &notices);
            let transition = Transition::of(&read, Change::Accept(record), notices, asker);
            let committed = self.commit(&transition).await;
            if !matches!(committed, Ok(Committed::Done))
                && let Some(relay) = &self.relay
            {
                relay.close(call_id);
            }
            match committed? {
                Committed::Done => {}
                // The `commit` script checks the callee's cap atomically (rules::within_callee_cap).
                Committed::CalleeAtCap => return Err(rules::too_many_calls(self.config.max_calls_per_peer)),
                Committed::Stale | Committed::Guarded => continue,
            }
            let result = match callee_media {
                Some(media) => OkResult::Media { media },
                None => OkResult::Empty {},
            };
            self.send_local(id, &encode(&ServerMessage::Ok { req: req.clone(), result }));
            self.metrics.call_accepted();
            LogEntry::answered(&read.record.call, now_ms()).write();
            return Ok(());
        }
        Err(contended(call_id))
    }

    /// v1.2: the caller's key reveal, passed on to the callee's sessions on
    /// every node as the rules decide. The call does not change: the event
    /// rides on a compare-and-set of the call as read, so it goes out only
    /// while the call is still the accepted one that was checked.
    async fn reveal(
        &self,
        id: SessionId,
        peer: &str,
        req: &Option<Req>,
        call_id: &str,
        media_key: String,
    ) -> Result<(), ProtocolError> {
        let rule = |call: Option<&Call<UnixMs>>| rules::reveal(call, peer, media_key.clone());
        for _ in 0..RETRIES {
            let (read, told) = self.decide(call_id, peer, &rule).await?;
            let unchanged = Change::Update(read.record.clone());
            if self.commit(&Transition::of(&read, unchanged, Notices::one(told), None)).await?
                == Committed::Done
            {
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
                return Err(rules::too_many_subscriptions());
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
