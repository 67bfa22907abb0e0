//! The relay's leg table: for each credential, the call it belongs to, the
//! other participant's credential, where this participant was last heard
//! from (its route) and its rate bucket. Decides about each packet; the
//! transports (UDP loop, `/media` connections) carry the verdict out.

use super::RelayLimits;
use crate::protocol::media::{Credential, FromRelay, PROBE_TOKEN_BYTES, ToRelay};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// What a `/media` connection's writer is handed.
#[derive(Debug)]
pub(crate) enum WsOut {
    /// A framed packet to write as one binary frame.
    Packet(Vec<u8>),
    /// The call this connection carried has ended: close.
    CallEnded,
}

/// A `/media` connection as a route: its id (to tell whether a leg is
/// already bound to it) and its writer's queue.
#[derive(Debug, Clone)]
pub(crate) struct WsRoute {
    /// Unique per connection, so rebinding to the same one is a no-op.
    pub id: u64,
    /// The connection's writer queue (bounded; a full one drops the packet).
    pub out: mpsc::Sender<WsOut>,
}

/// Where a packet came from.
pub(crate) enum Source<'a> {
    Udp(SocketAddr),
    Ws(&'a WsRoute),
}

/// Where a participant is sent its packets: where it was last heard from.
enum Route {
    /// Not heard from yet; packets for it are dropped.
    Unbound,
    Udp(SocketAddr),
    Ws(WsRoute),
}

/// What to do with a packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Dropped and already counted.
    Drop,
    Malformed,
    UnknownCredential,
    RateLimited,
    /// The other participant has not bound an address yet.
    NoRoute,
    /// The other participant's `/media` queue is full or gone.
    SendFailed,
    /// Send the payload, framed as data, to this UDP address.
    ForwardUdp(SocketAddr),
    /// Already queued on the other participant's `/media` connection.
    ForwardedWs,
    /// A probe: answer the sender with its token.
    Answer([u8; PROBE_TOKEN_BYTES]),
}

/// A token bucket: `burst` packets at once, refilled at `per_second`.
struct Bucket {
    /// Packets that may be sent right now.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    refilled: Instant,
}

/// One participant of one accepted call.
struct Leg {
    /// The other participant's credential: where data goes.
    other: Credential,
    /// Where this participant's packets are sent.
    route: Route,
    /// This participant's rate limit.
    bucket: Bucket,
}

/// Every live leg.
pub(crate) struct Table {
    /// Every live leg, by its credential: the one lookup per packet.
    legs: HashMap<Credential, Leg>,
    /// Each call's two credentials (caller's first).
    calls: HashMap<Arc<str>, [Credential; 2]>,
    /// The UDP socket, for WebSocket-to-UDP forwarding; `None` after shutdown.
    udp: Option<Arc<UdpSocket>>,
    /// The rate limit each new leg's bucket gets.
    limits: RelayLimits,
}

impl Table {
    pub fn new(udp: Arc<UdpSocket>, limits: RelayLimits) -> Table {
        Table { legs: HashMap::new(), calls: HashMap::new(), udp: Some(udp), limits }
    }

    pub fn udp(&self) -> Option<Arc<UdpSocket>> {
        self.udp.clone()
    }

    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    fn fresh_credential(&self) -> Credential {
        loop {
            let c: Credential = rand::random();
            if !self.legs.contains_key(&c) {
                return c;
            }
        }
    }

    /// Makes the two legs of `call` (a call accepted twice keeps its first legs' fate: replaced).
    pub fn open(&mut self, call: &Arc<str>) -> (Credential, Credential) {
        self.close(call);
        let caller = self.fresh_credential();
        let callee = loop {
            let c = self.fresh_credential();
            if c != caller {
                break c;
            }
        };
        let burst = f64::from(self.limits.burst);
        let leg = |other| Leg {
            other,
            route: Route::Unbound,
            bucket: Bucket { tokens: burst, refilled: Instant::now() },
        };
        self.legs.insert(caller, leg(callee));
        self.legs.insert(callee, leg(caller));
        self.calls.insert(call.clone(), [caller, callee]);
        (caller, callee)
    }

    pub fn close(&mut self, call: &str) {
        let Some(credentials) = self.calls.remove(call) else { return };
        for c in credentials {
            if let Some(Leg { route: Route::Ws(ws), .. }) = self.legs.remove(&c) {
                // A full queue misses this; the connection's idle timeout closes it then.
                let _ = ws.out.try_send(WsOut::CallEnded);
            }
        }
    }

    pub fn close_all(&mut self) {
        let calls: Vec<Arc<str>> = self.calls.keys().cloned().collect();
        for call in calls {
            self.close(&call);
        }
        debug_assert!(self.legs.is_empty());
        self.udp = None;
    }

    /// Decides about one packet: checks its credential and the sender's
    /// rate, binds the sender's route, and finds the other participant's.
    pub fn judge(&mut self, packet: &[u8], source: Source<'_>, now: Instant) -> Verdict {
        let Some(parsed) = ToRelay::parse(packet) else { return Verdict::Malformed };
        let (credential, probe, payload) = match parsed {
            ToRelay::Data { credential, payload } => (credential, None, payload),
            ToRelay::Probe { credential, token } => (credential, Some(token), &[][..]),
        };
        let limits = self.limits;
        let Some(leg) = self.legs.get_mut(&credential) else { return Verdict::UnknownCredential };
        if !leg.bucket.allow(now, &limits) {
            return Verdict::RateLimited;
        }
        leg.bind(source);
        if let Some(token) = probe {
            return Verdict::Answer(token);
        }
        let other = leg.other;
        match self.legs.get(&other).map(|l| &l.route) {
            None | Some(Route::Unbound) => Verdict::NoRoute,
            Some(Route::Udp(addr)) => Verdict::ForwardUdp(*addr),
            Some(Route::Ws(ws)) => {
                let mut framed = Vec::with_capacity(payload.len() + 1);
                FromRelay::Data(payload).encode_into(&mut framed);
                match ws.out.try_send(WsOut::Packet(framed)) {
                    Ok(()) => Verdict::ForwardedWs,
                    Err(_) => Verdict::SendFailed,
                }
            }
        }
    }
}

impl Leg {
    /// Makes `source` this participant's route: the latest address wins
    /// (a NAT may move it), and only a valid credential gets this far.
    fn bind(&mut self, source: Source<'_>) {
        match (source, &self.route) {
            (Source::Udp(addr), Route::Udp(bound)) if *bound == addr => {}
            (Source::Ws(ws), Route::Ws(bound)) if bound.id == ws.id => {}
            (Source::Udp(addr), _) => self.route = Route::Udp(addr),
            (Source::Ws(ws), _) => self.route = Route::Ws(ws.clone()),
        }
    }
}

impl Bucket {
    fn allow(&mut self, now: Instant, limits: &RelayLimits) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens =
            (self.tokens + elapsed * f64::from(limits.packets_per_second)).min(f64::from(limits.burst));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::media::ToRelay;
    use std::time::Duration;

    async fn table(limits: RelayLimits) -> Table {
        let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        Table::new(udp, limits)
    }

    fn data(credential: Credential) -> Vec<u8> {
        ToRelay::Data { credential, payload: b"x" }.encode()
    }

    #[tokio::test]
    async fn forwards_only_between_bound_legs_of_a_live_call() {
        let mut t = table(RelayLimits::default()).await;
        let call: Arc<str> = "c1".into();
        let (a, b) = t.open(&call);
        let (at_a, at_b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:2000".parse().unwrap());
        let now = Instant::now();
        assert_eq!(t.judge(&data(a), Source::Udp(at_a), now), Verdict::NoRoute);
        let probe = ToRelay::Probe { credential: b, token: [9; 8] }.encode();
        assert_eq!(t.judge(&probe, Source::Udp(at_b), now), Verdict::Answer([9; 8]));
        assert_eq!(t.judge(&data(a), Source::Udp(at_a), now), Verdict::ForwardUdp(at_b));
        assert_eq!(t.judge(&data(b), Source::Udp(at_b), now), Verdict::ForwardUdp(at_a));
        assert_eq!(t.judge(&data([0; 16]), Source::Udp(at_a), now), Verdict::UnknownCredential);
        assert_eq!(t.judge(b"\x01short", Source::Udp(at_a), now), Verdict::Malformed);
        t.close("c1");
        assert_eq!(t.judge(&data(a), Source::Udp(at_a), now), Verdict::UnknownCredential);
        assert_eq!(t.live_calls(), 0);
    }

    #[tokio::test]
    async fn a_flood_is_cut_to_the_bucket() {
        let limits = RelayLimits { packets_per_second: 10, burst: 5, max_packet_bytes: 1400 };
        let mut t = table(limits).await;
        let (a, _) = t.open(&"c1".into());
        let from = Source::Udp("127.0.0.1:1000".parse().unwrap());
        let now = Instant::now();
        let passed = (0..50)
            .filter(|_| {
                t.judge(&data(a), Source::Udp("127.0.0.1:1000".parse().unwrap()), now) != Verdict::RateLimited
            })
            .count();
        assert_eq!(passed, 5);
        // A second later the bucket has refilled by the sustained rate (capped at the burst).
        assert_ne!(t.judge(&data(a), from, now + Duration::from_secs(1)), Verdict::RateLimited);
    }
}
