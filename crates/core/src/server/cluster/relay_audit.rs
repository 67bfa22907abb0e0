//! Relay legs end with their call even when the message that ends them is
//! lost. Whoever ends a call tells the node whose relay carries it (`r`
//! on that node's channel); a message published while that node was not
//! subscribed waits in its backlog only 60 s, and one Redis had accepted
//! but not written out when a connection broke is gone. So every
//! heartbeat ttl (5 s by default) the node reads the calls its relay holds
//! legs for (one `MGET` of `sp:c:ID` per 512) and closes the legs of every
//! call that is no longer live and accepted with this node's relay: a leg
//! outlives its call by at most one period, whatever was lost.

use super::ClusterHub;
use super::record::Read;
use crate::server::calls::Phase;
use crate::server::relay::Relay;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Legs younger than this are spared: their accept may not be committed yet
/// (a commit takes at most two Redis deadlines; a retry opens new legs).
const COMMIT_SLACK: Duration = Duration::from_secs(3);
/// Calls read per `MGET`.
const CHUNK: usize = 512;

/// Audits the relay's legs every `every` until the node stops.
pub(super) async fn audit_forever(hub: Arc<ClusterHub>, every: Duration) {
    let Some(relay) = hub.relay.clone() else { return };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        hub.audit_relay(&relay).await;
    }
}

impl ClusterHub {
    /// Closes the legs of the calls that Redis no longer has live,
    /// accepted and carried by this node's relay. Redis unreachable: tried
    /// again next time (nothing is closed on a guess).
    async fn audit_relay(&self, relay: &Relay) {
        let Some(before) = Instant::now().checked_sub(COMMIT_SLACK) else { return };
        let calls = relay.opened_before(before);
        for chunk in calls.chunks(CHUNK) {
            let keys: Vec<String> = chunk.iter().map(|(id, _)| format!("sp:c:{id}")).collect();
            let mut redis = self.redis.clone();
            let mut mget = redis::cmd("MGET");
            mget.arg(&keys);
            let Ok(records) = self.redis(mget.query_async::<Vec<Option<String>>>(&mut redis)).await else {
                return;
            };
            for ((id, serial), raw) in chunk.iter().zip(records) {
                let carried = raw.and_then(Read::parse).is_some_and(|read| {
                    read.record.relay.as_deref() == Some(&*self.node)
                        && matches!(read.record.call.phase, Phase::Accepted { .. })
                });
                if !carried {
                    tracing::info!(node = %self.node, call = %id, "relay legs of a call that has ended closed by the audit");
                    relay.close_opening(id, *serial);
                }
            }
        }
    }
}
