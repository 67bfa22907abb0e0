//! The relay's leg table: for each credential, the call it belongs to, the
//! other participant's credential, where this participant is sent its
//! packets (its route), when that route last proved consent, and its rate
//! bucket. Decides about each packet; the transports (UDP loop, `/media`
//! connections) carry the verdict out. UDP rules (challenge, proof, consent):
//! [`udp_rules`]; framing: [`crate::protocol::relay`].

use super::RelayLimits;
use crate::protocol::relay::udp::{CHALLENGE_BYTES, LegId, LegKeys};
use crate::protocol::relay::{Credential, FromRelay, PROBE_TOKEN_BYTES, ToRelay};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

mod udp_rules;

pub(crate) use udp_rules::Cookies;

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

/// Where a participant is sent its packets.
enum Route {
    /// No consenting address yet (or it stopped consenting); packets for it are dropped.
    Unbound,
    /// An address that answered the relay's challenge with the leg's proof.
    Udp(SocketAddr),
    /// A `/media` connection that presented the credential (the TCP connection is the consent).
    Ws(WsRoute),
}

/// A few bytes the relay sends back to a packet's sender: a `/media`
/// probe's answer, or on UDP a challenge or a bound notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The framed packet, in the first `len` bytes.
    bytes: [u8; CHALLENGE_BYTES],
    len: usize,
}

impl Reply {
    fn new(framed: &[u8]) -> Reply {
        let mut bytes = [0u8; CHALLENGE_BYTES];
        bytes[..framed.len()].copy_from_slice(framed);
        Reply { bytes, len: framed.len() }
    }

    /// The framed packet.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What to do with a packet.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Dropped and already counted.
    Drop,
    Malformed,
    UnknownCredential,
    RateLimited,
    /// The other participant has no route (not bound yet, or consent lost).
    NoRoute,
    /// UDP data from an address that is not the leg's route: never forwarded, never a route.
    NotRoute,
    /// A UDP answer whose cookie (address, window) or proof is wrong.
    BadProof,
    /// The other participant's `/media` queue is full or gone.
    SendFailed,
    /// Send the payload, framed as data, to this UDP address.
    ForwardUdp(SocketAddr),
    /// Already queued on the other participant's `/media` connection.
    ForwardedWs,
    /// Send this back to the sender: a probe's answer or a bound notice.
    Answer(Reply),
    /// Send this challenge back to the sender's address (UDP).
    Challenge(Reply),
}

/// The rate limit of a leg's UDP binds and answers: a link sends about one
/// of each per 5 s, and its binding retries every 200 ms.
const CONTROL_LIMITS: RelayLimits = RelayLimits { packets_per_second: 10, burst: 20, max_packet_bytes: 0 };

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
    /// This participant's rate limit (data, `/media` frames).
    bucket: Bucket,
    /// The rate limit of its UDP bind requests and answers, apart from its
    /// data: whoever floods binds in the leg's name (its id is public on
    /// the wire) cannot spend the participant's data rate.
    control: Bucket,
    /// Its UDP id and proof key, derived from the credential.
    keys: LegKeys,
    /// When its UDP route last answered a challenge (consent, RFC 7675).
    consented: Instant,
}

/// A call the relay holds legs for.
struct OpenCall {
    /// Its two credentials (caller's first).
    legs: [Credential; 2],
    /// Tells this opening from a later one of the same call id.
    serial: u64,
    /// When the legs were made (an audit spares legs too young to be committed).
    opened: Instant,
}

/// Every live leg.
pub(crate) struct Table {
    /// Every live leg, by its credential: the one lookup per packet.
    legs: HashMap<Credential, Leg>,
    /// UDP packets name legs by id: the id's credential.
    by_id: HashMap<LegId, Credential>,
    /// Each call's legs.
    calls: HashMap<Arc<str>, OpenCall>,
    /// The serial the next opened call gets.
    next_serial: u64,
    /// The UDP socket, for WebSocket-to-UDP forwarding; `None` after shutdown.
    udp: Option<Arc<UdpSocket>>,
    /// The rate limit each new leg's bucket gets.
    limits: RelayLimits,
    /// Makes and checks the challenges' cookies.
    cookies: Cookies,
}

impl Table {
    pub fn new(udp: Arc<UdpSocket>, limits: RelayLimits) -> Table {
        Table {
            legs: HashMap::new(),
            by_id: HashMap::new(),
            calls: HashMap::new(),
            next_serial: 1,
            udp: Some(udp),
            limits,
            cookies: Cookies::new(),
        }
    }

    pub fn udp(&self) -> Option<Arc<UdpSocket>> {
        self.udp.clone()
    }

    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// A credential no live leg has, whose id no live leg has either.
    fn fresh_credential(&self) -> (Credential, LegKeys) {
        loop {
            let c: Credential = rand::random();
            let keys = LegKeys::derive(&c);
            if !self.legs.contains_key(&c) && !self.by_id.contains_key(&keys.id) {
                return (c, keys);
            }
        }
    }

    /// Makes the two legs of `call` (a call accepted twice keeps its first legs' fate: replaced).
    pub fn open(&mut self, call: &Arc<str>) -> (Credential, Credential) {
        self.close(call);
        let now = Instant::now();
        let burst = f64::from(self.limits.burst);
        let leg = |other, keys| Leg {
            other,
            route: Route::Unbound,
            bucket: Bucket { tokens: burst, refilled: now },
            control: Bucket { tokens: f64::from(CONTROL_LIMITS.burst), refilled: now },
            keys,
            consented: now,
        };
        let (caller, caller_keys) = self.fresh_credential();
        self.by_id.insert(caller_keys.id, caller);
        let (callee, callee_keys) = self.fresh_credential();
        self.by_id.insert(callee_keys.id, callee);
        self.legs.insert(caller, leg(callee, caller_keys));
        self.legs.insert(callee, leg(caller, callee_keys));
        let serial = self.next_serial;
        self.next_serial += 1;
        self.calls.insert(call.clone(), OpenCall { legs: [caller, callee], serial, opened: now });
        (caller, callee)
    }

    pub fn close(&mut self, call: &str) {
        let Some(open) = self.calls.remove(call) else { return };
        for c in open.legs {
            let Some(leg) = self.legs.remove(&c) else { continue };
            self.by_id.remove(&leg.keys.id);
            if let Route::Ws(ws) = leg.route {
                // A full queue misses this; the connection's idle timeout closes it then.
                let _ = ws.out.try_send(WsOut::CallEnded);
            }
        }
    }

    /// The calls opened before `before`, with their serials (for an audit).
    pub fn opened_before(&self, before: Instant) -> Vec<(Arc<str>, u64)> {
        let old = self.calls.iter().filter(|(_, open)| open.opened < before);
        old.map(|(id, open)| (id.clone(), open.serial)).collect()
    }

    /// Closes `call` if it is still the opening with `serial`.
    pub fn close_opening(&mut self, call: &str, serial: u64) {
        if self.calls.get(call).is_some_and(|open| open.serial == serial) {
            self.close(call);
        }
    }

    pub fn close_all(&mut self) {
        let calls: Vec<Arc<str>> = self.calls.keys().cloned().collect();
        for call in calls {
            self.close(&call);
        }
        debug_assert!(self.legs.is_empty() && self.by_id.is_empty());
        self.udp = None;
    }

    /// Decides about one packet: UDP by [`udp_rules`], `/media` frames here.
    pub fn judge(&mut self, packet: &[u8], source: Source<'_>, now: Instant) -> Verdict {
        match source {
            Source::Udp(from) => self.judge_udp(packet, from, now),
            Source::Ws(ws) => self.judge_ws(packet, ws, now),
        }
    }

    /// A `/media` frame: a live credential makes this connection the
    /// participant's route (the latest connection wins), then a probe is
    /// answered and data is forwarded.
    fn judge_ws(&mut self, packet: &[u8], ws: &WsRoute, now: Instant) -> Verdict {
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
        if !matches!(&leg.route, Route::Ws(bound) if bound.id == ws.id) {
            leg.route = Route::Ws(ws.clone());
        }
        if let Some(token) = probe {
            return Verdict::Answer(probe_answer(token));
        }
        let other = leg.other;
        self.forward(&other, payload)
    }

    /// Where `payload` goes: to the route of the leg `other`.
    fn forward(&self, other: &Credential, payload: &[u8]) -> Verdict {
        match self.legs.get(other).map(|l| &l.route) {
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

fn probe_answer(token: [u8; PROBE_TOKEN_BYTES]) -> Reply {
    let mut framed = Vec::with_capacity(1 + PROBE_TOKEN_BYTES);
    FromRelay::ProbeAnswer(token).encode_into(&mut framed);
    Reply::new(&framed)
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
    use crate::protocol::relay::udp::{UdpControl, UdpToRelay};
    use std::time::Duration;

    async fn table(limits: RelayLimits) -> Table {
        let udp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        Table::new(udp, limits)
    }

    fn data(keys: &LegKeys) -> Vec<u8> {
        UdpToRelay::Data { leg: keys.id, payload: b"x" }.encode()
    }

    /// Binds `keys`'s leg at `at` as a client would: bind, challenge, answer.
    fn bind(t: &mut Table, keys: &LegKeys, at: SocketAddr, now: Instant) -> Verdict {
        let Verdict::Challenge(c) = t.judge(&keys.bind([1; 8]), Source::Udp(at), now) else {
            panic!("a challenge")
        };
        let Some(UdpControl::Challenge { token, cookie, .. }) = UdpControl::parse(c.as_bytes()) else {
            panic!("a challenge")
        };
        t.judge(&keys.answer(token, cookie), Source::Udp(at), now)
    }

    #[tokio::test]
    async fn forwards_only_between_bound_legs_of_a_live_call() {
        let mut t = table(RelayLimits::default()).await;
        let call: Arc<str> = "c1".into();
        let (a, b) = t.open(&call);
        let (ka, kb) = (LegKeys::derive(&a), LegKeys::derive(&b));
        let (at_a, at_b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:2000".parse().unwrap());
        let now = Instant::now();
        assert_eq!(t.judge(&data(&ka), Source::Udp(at_a), now), Verdict::NotRoute, "data binds nothing");
        assert!(matches!(bind(&mut t, &ka, at_a, now), Verdict::Answer(_)));
        assert_eq!(t.judge(&data(&ka), Source::Udp(at_a), now), Verdict::NoRoute);
        assert!(matches!(bind(&mut t, &kb, at_b, now), Verdict::Answer(_)));
        assert_eq!(t.judge(&data(&ka), Source::Udp(at_a), now), Verdict::ForwardUdp(at_b));
        assert_eq!(t.judge(&data(&kb), Source::Udp(at_b), now), Verdict::ForwardUdp(at_a));
        assert_eq!(t.judge(&data(&ka), Source::Udp(at_b), now), Verdict::NotRoute, "not a's route");
        let stranger = LegKeys::derive(&[0; 16]);
        assert_eq!(t.judge(&data(&stranger), Source::Udp(at_a), now), Verdict::UnknownCredential);
        assert_eq!(t.judge(b"\x11short", Source::Udp(at_a), now), Verdict::Malformed);
        let v11 = ToRelay::Data { credential: a, payload: b"x" }.encode();
        assert_eq!(t.judge(&v11, Source::Udp(at_a), now), Verdict::Malformed, "no credential on UDP");
        t.close("c1");
        assert_eq!(t.judge(&data(&ka), Source::Udp(at_a), now), Verdict::UnknownCredential);
        assert_eq!(t.live_calls(), 0);
    }

    #[tokio::test]
    async fn an_answer_binds_only_the_address_its_cookie_was_made_for_with_the_right_proof() {
        let mut t = table(RelayLimits::default()).await;
        let (a, _) = t.open(&"c1".into());
        let ka = LegKeys::derive(&a);
        let (real, victim): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:3000".parse().unwrap());
        let now = Instant::now();
        let Verdict::Challenge(c) = t.judge(&ka.bind([1; 8]), Source::Udp(real), now) else { panic!() };
        let Some(UdpControl::Challenge { token, cookie, .. }) = UdpControl::parse(c.as_bytes()) else {
            panic!()
        };
        // The real client's answer replayed from another address.
        assert_eq!(t.judge(&ka.answer(token, cookie), Source::Udp(victim), now), Verdict::BadProof);
        // A proof made without the credential.
        let wrong = LegKeys::derive(&[9; 16]);
        let forged = UdpToRelay::Answer { leg: ka.id, token, cookie, proof: wrong.proof(&token, &cookie) };
        assert_eq!(t.judge(&forged.encode(), Source::Udp(real), now), Verdict::BadProof);
        assert_eq!(t.legs[&a].udp_route(), None);
        // Too late: two windows on.
        let late = now + Duration::from_secs(25);
        assert_eq!(t.judge(&ka.answer(token, cookie), Source::Udp(real), late), Verdict::BadProof);
        assert!(matches!(t.judge(&ka.answer(token, cookie), Source::Udp(real), now), Verdict::Answer(_)));
        assert_eq!(t.legs[&a].udp_route(), Some(real));
    }

    #[tokio::test]
    async fn a_route_that_stops_answering_consent_checks_is_dropped() {
        let mut t = table(RelayLimits::default()).await;
        let (a, b) = t.open(&"c1".into());
        let (ka, kb) = (LegKeys::derive(&a), LegKeys::derive(&b));
        let (at_a, at_b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:2000".parse().unwrap());
        let now = Instant::now();
        bind(&mut t, &ka, at_a, now);
        bind(&mut t, &kb, at_b, now);
        let timeout = Duration::from_secs(30);
        let (checks, lost) = t.consent_round(now + Duration::from_secs(5), timeout);
        assert_eq!((checks.len(), lost), (2, 0));
        // a answers its check; b does not.
        let (to, check) = checks.iter().find(|(to, _)| *to == at_a).unwrap();
        let Some(UdpControl::Challenge { leg, token, cookie }) = UdpControl::parse(check) else { panic!() };
        assert_eq!((*to, leg), (at_a, ka.id));
        let later = now + Duration::from_secs(6);
        assert!(matches!(t.judge(&ka.answer(token, cookie), Source::Udp(at_a), later), Verdict::Answer(_)));
        let (checks, lost) = t.consent_round(now + Duration::from_secs(31), timeout);
        assert_eq!((checks.len(), lost), (1, 1), "b's route dropped, a's checked again");
        assert_eq!(t.judge(&data(&ka), Source::Udp(at_a), later), Verdict::NoRoute);
    }

    #[tokio::test]
    async fn a_flood_is_cut_to_the_bucket() {
        let limits = RelayLimits { packets_per_second: 10, burst: 5, max_packet_bytes: 1400 };
        let mut t = table(limits).await;
        let (a, _) = t.open(&"c1".into());
        let ka = LegKeys::derive(&a);
        let from: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let now = Instant::now();
        bind(&mut t, &ka, from, now);
        let passed =
            (0..50).filter(|_| t.judge(&data(&ka), Source::Udp(from), now) != Verdict::RateLimited).count();
        assert_eq!(passed, 5, "binding took nothing from the data's bucket");
        // Binds have a bucket of their own: a flood of them leaves the data's alone.
        let binds = (0..50)
            .filter(|_| t.judge(&ka.bind([0; 8]), Source::Udp(from), now) != Verdict::RateLimited)
            .count();
        assert_eq!(binds, CONTROL_LIMITS.burst as usize - 2, "the burst less the binding's two");
        // A second later the bucket has refilled by the sustained rate (capped at the burst).
        let later = now + Duration::from_secs(1);
        assert_ne!(t.judge(&data(&ka), Source::Udp(from), later), Verdict::RateLimited);
    }
}
