//! What the server counts for its operators: open connections, sessions,
//! peers online, live calls, call outcomes, how long invitations take to
//! reach the callee, and what the limits refused. Recorded by one-line hooks
//! in the listener, the sessions and the hub (atomic counters, cheap enough
//! under the hub's lock), encoded with `prometheus-client` and served by the
//! [`endpoint`] at `/metrics` when `--metrics-listen` is given.
//!
//! Every metric is documented in `docs/operations.md`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod endpoint;

pub use endpoint::MetricsListener;
pub(super) use endpoint::serve_endpoint;

/// Upper bounds (seconds) of the invitation delivery histogram's buckets:
/// sub-millisecond when the callee is online, up to the invite ttl when the
/// invitation waits for the callee to log in.
const DELIVERY_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

/// How long the hub may go without its sweeper getting the lock (it tries
/// every second at most) before `/healthz` says the server is stuck.
const HUB_STALL: Duration = Duration::from_secs(10);

/// How a call left a state: the first answer to a ringing call, or the end
/// of an accepted one. The label values are the names the hub logs.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) struct CallOutcome(&'static str);

impl CallOutcome {
    /// The outcomes a ringing call can have (exactly one each).
    const OF_RINGING: [&'static str; 7] =
        ["accepted", "refused", "canceled", "expired", "peer_no_response", "peer_offline", "caller_offline"];
    /// The ends an accepted call can have (exactly one each).
    const OF_ACCEPTED: [&'static str; 2] = ["hung_up", "lost"];
}

impl EncodeLabelValue for CallOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.0)
    }
}

/// The label set of `softphone_call_outcomes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: CallOutcome,
}

/// The server's metrics; one per server, shared by its hub and sessions.
pub struct Metrics {
    /// Holds every metric below for encoding.
    registry: Registry,
    /// WebSocket connections past the handshake and not yet closed.
    connections: Gauge,
    /// Connections logged in as some peer.
    sessions: Gauge,
    /// Peers with at least one session.
    peers_online: Gauge,
    /// Calls ringing or accepted.
    live_calls: Gauge,
    /// Invites the server took (answered `ok`).
    calls_placed: Counter,
    /// Each call's ringing outcome, and an accepted call's end.
    outcomes: Family<OutcomeLabel, Counter>,
    /// From the invite reaching the hub to the invitation queued for a callee session.
    delivery: Histogram,
    /// Connections refused because the connection cap was reached.
    refused_handshakes: Counter,
    /// Text frames answered `rate_limited`.
    rate_limited_frames: Counter,
    /// Connections closed because their client did not read its events.
    kicked_slow_readers: Counter,
    /// When the metrics were made; the origin of `hub_answered_ms`.
    started: Instant,
    /// When the sweeper last got the hub's lock, in ms since `started`:
    /// a hub that stops answering makes `/healthz` fail.
    hub_answered_ms: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric, each outcome at zero so dashboards see the
    /// whole family before the first call.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            connections: Gauge::default(),
            sessions: Gauge::default(),
            peers_online: Gauge::default(),
            live_calls: Gauge::default(),
            calls_placed: Counter::default(),
            outcomes: Family::default(),
            delivery: Histogram::new(DELIVERY_BUCKETS),
            refused_handshakes: Counter::default(),
            rate_limited_frames: Counter::default(),
            kicked_slow_readers: Counter::default(),
            registry: Registry::with_prefix("softphone"),
            started: Instant::now(),
            hub_answered_ms: AtomicU64::new(0),
        };
        let r = &mut m.registry;
        r.register("connections", "WebSocket connections open", m.connections.clone());
        r.register("sessions", "Connections logged in as a peer", m.sessions.clone());
        r.register("peers_online", "Peers with at least one session", m.peers_online.clone());
        r.register("live_calls", "Calls ringing or accepted", m.live_calls.clone());
        r.register("calls_placed", "Invites answered ok", m.calls_placed.clone());
        r.register(
            "call_outcomes",
            "How each call stopped ringing, and how each accepted call ended",
            m.outcomes.clone(),
        );
        r.register(
            "invitation_delivery_seconds",
            "From an invite reaching the hub to its invitation queued for the callee",
            m.delivery.clone(),
        );
        r.register(
            "refused_handshakes",
            "Connections refused with HTTP 503 at the connection cap",
            m.refused_handshakes.clone(),
        );
        r.register("rate_limited_frames", "Text frames answered rate_limited", m.rate_limited_frames.clone());
        r.register(
            "kicked_slow_readers",
            "Connections closed because they did not read their events",
            m.kicked_slow_readers.clone(),
        );
        for outcome in CallOutcome::OF_RINGING.into_iter().chain(CallOutcome::OF_ACCEPTED) {
            drop(m.outcomes.get_or_create(&OutcomeLabel { outcome: CallOutcome(outcome) }));
        }
        m
    }

    /// The metrics in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// A connection passed the handshake; it counts as open until the guard drops.
    pub(crate) fn connection_opened(&self) -> OpenConnection {
        self.connections.inc();
        OpenConnection(self.connections.clone())
    }

    /// A connection came while the server was at its connection cap.
    pub(crate) fn handshake_refused(&self) {
        self.refused_handshakes.inc();
    }

    /// A connection logged in; `came_online` when it is its peer's first.
    pub(crate) fn session_opened(&self, came_online: bool) {
        self.sessions.inc();
        if came_online {
            self.peers_online.inc();
        }
    }

    /// A session ended; `went_offline` when it was its peer's last.
    pub(crate) fn session_closed(&self, went_offline: bool) {
        self.sessions.dec();
        if went_offline {
            self.peers_online.dec();
        }
    }

    /// An invite was taken: a new live call.
    pub(crate) fn call_placed(&self) {
        self.calls_placed.inc();
        self.live_calls.inc();
    }

    /// An invite a cluster node took. `live_calls` (and `peers_online`) are
    /// cluster-wide there and not kept per node: a call placed on one node
    /// may end on another (see [`Metrics::cluster_now`]).
    pub(crate) fn call_placed_in_cluster(&self) {
        self.calls_placed.inc();
    }

    /// The cluster's live calls and peers online as Redis counted them at
    /// a cluster node's heartbeat: every node reports the same values.
    pub(crate) fn cluster_now(&self, live_calls: i64, peers_online: i64) {
        self.live_calls.set(live_calls);
        self.peers_online.set(peers_online);
    }

    /// A call a cluster node ended (see [`Metrics::call_placed_in_cluster`]).
    pub(crate) fn call_ended_in_cluster(&self, outcome: &'static str) {
        self.outcome(outcome);
    }

    /// The invitation of a call reached a callee session for the first
    /// time, `since_invite` after the invite reached the hub.
    pub(crate) fn invitation_delivered(&self, since_invite: Duration) {
        self.delivery.observe(since_invite.as_secs_f64());
    }

    /// A ringing call was accepted (it stays live).
    pub(crate) fn call_accepted(&self) {
        self.outcome("accepted");
    }

    /// A live call ended; `outcome` is the name the hub logs for it.
    pub(crate) fn call_ended(&self, outcome: &'static str) {
        self.live_calls.dec();
        self.outcome(outcome);
    }

    fn outcome(&self, outcome: &'static str) {
        debug_assert!(
            CallOutcome::OF_RINGING.contains(&outcome) || CallOutcome::OF_ACCEPTED.contains(&outcome),
            "undocumented call outcome {outcome:?}"
        );
        self.outcomes.get_or_create(&OutcomeLabel { outcome: CallOutcome(outcome) }).inc();
    }

    /// The hub's sweeper got the lock: decisions are being made.
    pub(crate) fn hub_answered(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.hub_answered_ms.store(ms, Ordering::Relaxed);
    }

    /// `Err` with a reason when the server is stuck at `now`.
    pub(crate) fn health_at(&self, now: Instant) -> Result<(), String> {
        let answered = self.started + Duration::from_millis(self.hub_answered_ms.load(Ordering::Relaxed));
        let silent = now.saturating_duration_since(answered);
        if silent > HUB_STALL {
            return Err(format!("the hub has not answered for {} s", silent.as_secs()));
        }
        Ok(())
    }

    /// A text frame was answered `rate_limited`.
    pub(crate) fn frame_rate_limited(&self) {
        self.rate_limited_frames.inc();
    }

    /// A connection is being closed because it did not read its events.
    pub(crate) fn slow_reader_kicked(&self) {
        self.kicked_slow_readers.inc();
    }
}

/// Counts one open connection while it lives.
pub(crate) struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name` (with its labels, as encoded) in `text`.
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn hooks_move_the_encoded_values() {
        let m = Metrics::new();
        let text = m.encode();
        assert_eq!(sample(&text, "softphone_call_outcomes_total{outcome=\"lost\"}"), Some(0.0), "{text}");
        let open = m.connection_opened();
        m.session_opened(true);
        m.session_opened(false);
        m.call_placed();
        m.call_accepted();
        m.invitation_delivered(Duration::from_millis(3));
        m.call_ended("hung_up");
        m.session_closed(false);
        let text = m.encode();
        assert_eq!(sample(&text, "softphone_connections"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "softphone_sessions"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "softphone_peers_online"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "softphone_live_calls"), Some(0.0), "{text}");
        assert_eq!(sample(&text, "softphone_calls_placed_total"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "softphone_call_outcomes_total{outcome=\"accepted\"}"), Some(1.0));
        assert_eq!(sample(&text, "softphone_call_outcomes_total{outcome=\"hung_up\"}"), Some(1.0));
        assert_eq!(sample(&text, "softphone_invitation_delivery_seconds_count"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "softphone_invitation_delivery_seconds_bucket{le=\"0.001\"}"), Some(0.0));
        assert_eq!(sample(&text, "softphone_invitation_delivery_seconds_bucket{le=\"0.005\"}"), Some(1.0));
        drop(open);
        assert_eq!(sample(&m.encode(), "softphone_connections"), Some(0.0));
    }

    #[test]
    fn health_fails_when_the_hub_stops_answering() {
        let m = Metrics::new();
        let now = Instant::now();
        assert_eq!(m.health_at(now), Ok(()));
        let stuck = m.health_at(now + HUB_STALL + Duration::from_secs(2)).unwrap_err();
        assert!(stuck.starts_with("the hub has not answered for 1"), "{stuck}");
        m.hub_answered();
        assert_eq!(m.health_at(Instant::now() + HUB_STALL / 2), Ok(()));
    }
}
