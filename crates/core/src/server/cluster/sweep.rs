//! The deadlines of every call in the cluster: a sorted set (`sp:dl`, call
//! id by deadline in ms) that every node sweeps. The node that set a
//! deadline wakes for it on time; the others look a little later
//! ([`POLL`]), so a deadline outlives the node that set it. Two nodes
//! ending a call on one deadline are harmless: the end of a call is a
//! compare-and-set, and the second finds the call gone.

use super::record::{Committed, Guard, Transition};
use super::{ClusterHub, RETRIES, Unavailable, now_ms};
use crate::server::calls::UnixMs;
use crate::server::rules::{self, Ending};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a node looks for deadlines other nodes set.
const POLL: Duration = Duration::from_millis(200);
/// Deadlines looked at per sweep; more are looked at at once in the next.
const BATCH: isize = 256;

/// The sweeper task.
pub(super) async fn sweep_forever(hub: Arc<ClusterHub>) {
    loop {
        let now = now_ms();
        let wake = match hub.sweep(now).await {
            Ok(Some(next)) => next.min(now.0 + POLL.as_millis() as u64),
            Ok(None) => now.0,
            Err(Unavailable) => now.0 + POLL.as_millis() as u64,
        };
        hub.sweeper_wakes_at.store(wake, Ordering::Relaxed);
        let sleep = Duration::from_millis(wake.saturating_sub(now_ms().0));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = hub.deadline_moved.notified() => {}
        }
    }
}

impl ClusterHub {
    /// A decision set a deadline at `at_ms`: wakes the sweeper if it sleeps past it.
    pub(super) fn deadline_set(&self, at_ms: u64) {
        if at_ms < self.sweeper_wakes_at.load(Ordering::Relaxed) {
            self.sweeper_wakes_at.store(at_ms, Ordering::Relaxed);
            self.deadline_moved.notify_one();
        }
    }

    /// Ends the calls whose deadline is due by `now`; the next deadline after them,
    /// or `None` if there may be more due at once.
    async fn sweep(&self, now: UnixMs) -> Result<Option<u64>, Unavailable> {
        let mut redis = self.redis.clone();
        let due: Vec<String> = self
            .redis(
                redis::cmd("ZRANGEBYSCORE")
                    .arg("sp:dl")
                    .arg("-inf")
                    .arg(now.0)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(BATCH)
                    .query_async(&mut redis),
            )
            .await?;
        for call_id in &due {
            self.end_if_due(call_id, now).await?;
        }
        if due.len() as isize == BATCH {
            return Ok(None);
        }
        let next: Vec<(String, f64)> = self
            .redis(redis::cmd("ZRANGE").arg("sp:dl").arg(0).arg(0).arg("WITHSCORES").query_async(&mut redis))
            .await?;
        Ok(Some(next.first().map_or(u64::MAX, |(_, at)| *at as u64)))
    }

    /// Ends `call_id` if one of its deadlines has passed by `now`.
    async fn end_if_due(&self, call_id: &str, now: UnixMs) -> Result<(), Unavailable> {
        let grace = self.config.offline_grace;
        for _ in 0..RETRIES {
            let Some(read) = self.read(call_id).await? else {
                let mut redis = self.redis.clone();
                return self
                    .redis(redis::cmd("ZREM").arg("sp:dl").arg(call_id).query_async(&mut redis))
                    .await;
            };
            let call = &read.record.call;
            if call.next_deadline(grace).is_none() {
                return self.audit(read, now).await;
            }
            let Some(lapse) = rules::lapsed(call, grace, now) else { return Ok(()) };
            let Ending { outcome, notices, while_offline } = rules::end_by(call, lapse);
            // An offline grace ends a call only if its peer is still offline.
            let guard = while_offline.map(|peer| Guard { peer, online: false });
            let transition = Transition { guard: guard.clone(), ..Transition::end(&read, notices, None) };
            match self.commit(&transition).await? {
                Committed::Done => {
                    self.ended_call(call, outcome);
                    return Ok(());
                }
                Committed::Stale => continue,
                Committed::Guarded => return self.found_online(read, guard.expect("guarded")).await,
                Committed::CalleeAtCap => return Ok(()),
            }
        }
        Ok(())
    }

    /// Looks at a live call with no deadline of its own: a party with no
    /// session anywhere that the call does not mark offline gets the mark
    /// now (its grace starts); else the next audit is set.
    async fn audit(&self, read: super::record::Read, now: UnixMs) -> Result<(), Unavailable> {
        let call = &read.record.call;
        let parties = [call.caller.to_string(), call.callee.to_string()];
        let online = self.online_map(&parties).await?;
        let mut marked = false;
        for peer in [&call.caller, &call.callee] {
            if !online.get(&**peer).copied().unwrap_or(false) {
                self.lost(peer, &call.id, now).await?;
                marked = true;
            }
        }
        if !marked {
            let next = super::record::next_look(call, self.config.offline_grace, now);
            let mut redis = self.redis.clone();
            // Only if the call is still there: a plain ZADD could revive a
            // deadline entry for a call that ended meanwhile (XX: update only).
            let _: i64 = self
                .redis(
                    redis::cmd("ZADD")
                        .arg("sp:dl")
                        .arg("XX")
                        .arg(next.0)
                        .arg(&*call.id)
                        .query_async(&mut redis),
                )
                .await?;
        }
        Ok(())
    }

    /// Repairs a call that marks a peer offline while it is online (its
    /// node died between the login and the call's update): the mark goes.
    async fn found_online(&self, read: super::record::Read, guard: Guard) -> Result<(), Unavailable> {
        let mut record = read.record.clone();
        rules::found_online(&mut record.call, &guard.peer, now_ms(), self.config.ack_timeout);
        let transition = Transition::guarded_update(&read, record, Guard { online: true, ..guard });
        self.commit(&transition).await.map(|_| ())
    }
}
