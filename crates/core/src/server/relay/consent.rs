//! Consent freshness for UDP routes (as RFC 7675 does for ICE): every few
//! seconds the relay sends each UDP route a challenge; the participant's
//! link answers it with its proof, which renews the route's consent. A
//! route that has answered nothing for the consent timeout is dropped, so
//! the relay stops sending to an address that no longer wants its packets
//! (a participant gone, a NAT mapping handed to someone else).

use super::{Relay, bump};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// When checks are sent and when a silent route is dropped.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timers {
    /// How often every route is sent a check.
    pub every: Duration,
    /// How long a route may go without a good answer.
    pub timeout: Duration,
}

/// Sends the checks and drops silent routes until aborted at shutdown.
pub(super) async fn check_forever(relay: Arc<Relay>, socket: Arc<UdpSocket>, timers: Timers) {
    let mut every = tokio::time::interval(timers.every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let (checks, lost) = relay.lock().consent_round(std::time::Instant::now(), timers.timeout);
        relay.counters.consent_lost.fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
        for (to, check) in checks {
            // Never wait: a check lost to a full buffer is like one lost on the way.
            let sent = socket.try_send_to(&check, to);
            if sent.is_ok() {
                bump(&relay.counters.challenges_sent);
            }
            relay.sent(sent);
        }
    }
}
