//! The relay's UDP rules, which keep it from being aimed at anyone: a leg's
//! route is only ever an address that answered a challenge the relay sent
//! to that very address (the cookie names leg, address and time window,
//! under a per-process secret) with a proof only the holder of the
//! credential can make; data packets never move a route; and a route that
//! stops answering the periodic consent checks is dropped (RFC 7675).

use super::{CONTROL_LIMITS, Leg, Reply, Route, Table, Verdict};
use crate::protocol::relay::udp::{
    CHALLENGE_BYTES, COOKIE_BYTES, LegId, TOKEN_BYTES, UdpToRelay, bound, challenge, cookie,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long one cookie window lasts; a cookie is good in its window and the
/// next, so an answer has 10 to 20 s to come back.
const COOKIE_WINDOW: Duration = Duration::from_secs(10);

/// Makes and checks cookies: stateless, so a flood of bind requests costs
/// the relay no memory.
pub(crate) struct Cookies {
    /// Random per process: nobody outside the relay can make a cookie.
    secret: [u8; 32],
    /// Windows are counted from here.
    epoch: Instant,
}

/// An address as the cookie covers it: IP octets and port.
fn address_bytes(addr: SocketAddr) -> ([u8; 18], usize) {
    let mut out = [0u8; 18];
    let len = match addr.ip() {
        std::net::IpAddr::V4(ip) => {
            out[..4].copy_from_slice(&ip.octets());
            4
        }
        std::net::IpAddr::V6(ip) => {
            out[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    out[len..len + 2].copy_from_slice(&addr.port().to_be_bytes());
    (out, len + 2)
}

impl Cookies {
    pub fn new() -> Cookies {
        Cookies { secret: rand::random(), epoch: Instant::now() }
    }

    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / COOKIE_WINDOW.as_secs()
    }

    fn make(&self, leg: &LegId, to: SocketAddr, window: u64) -> [u8; COOKIE_BYTES] {
        let (bytes, len) = address_bytes(to);
        cookie(&self.secret, leg, &bytes[..len], window)
    }

    /// A cookie for a challenge to `to` now.
    fn now(&self, leg: &LegId, to: SocketAddr, now: Instant) -> [u8; COOKIE_BYTES] {
        self.make(leg, to, self.window(now))
    }

    /// Whether `given` is a cookie the relay made for `leg` at `from` in
    /// this window or the one before.
    fn check(&self, leg: &LegId, from: SocketAddr, given: &[u8; COOKIE_BYTES], now: Instant) -> bool {
        let window = self.window(now);
        let matches = |w: u64| {
            let made = self.make(leg, from, w);
            // Not secret-dependent timing in any useful way, but cheap to do right.
            made.iter().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        };
        matches(window) || (window > 0 && matches(window - 1))
    }
}

impl Table {
    /// A UDP datagram from `from`.
    pub(super) fn judge_udp(&mut self, packet: &[u8], from: SocketAddr, now: Instant) -> Verdict {
        let Some(parsed) = UdpToRelay::parse(packet) else { return Verdict::Malformed };
        let leg_id = match parsed {
            UdpToRelay::Data { leg, .. } | UdpToRelay::Bind { leg, .. } | UdpToRelay::Answer { leg, .. } => {
                leg
            }
        };
        let Some(credential) = self.by_id.get(&leg_id).copied() else { return Verdict::UnknownCredential };
        let limits = self.limits;
        let leg = self.legs.get_mut(&credential).expect("every leg id names a live leg");
        if let UdpToRelay::Data { .. } = parsed
            && !matches!(leg.route, Route::Udp(route) if route == from)
        {
            // Checked before the bucket: a spoofer cannot spend the participant's rate.
            return Verdict::NotRoute;
        }
        let bucket = match parsed {
            UdpToRelay::Data { .. } => (&mut leg.bucket, &limits),
            UdpToRelay::Bind { .. } | UdpToRelay::Answer { .. } => (&mut leg.control, &CONTROL_LIMITS),
        };
        if !bucket.0.allow(now, bucket.1) {
            return Verdict::RateLimited;
        }
        match parsed {
            UdpToRelay::Data { payload, .. } => {
                let other = leg.other;
                self.forward(&other, payload)
            }
            UdpToRelay::Bind { token, .. } => {
                let cookie = self.cookies.now(&leg_id, from, now);
                Verdict::Challenge(Reply::new(&challenge(&leg_id, &token, &cookie)))
            }
            UdpToRelay::Answer { token, cookie, proof, .. } => {
                if !self.cookies.check(&leg_id, from, &cookie, now)
                    || !leg.keys.check_proof(&token, &cookie, &proof)
                {
                    return Verdict::BadProof;
                }
                leg.route = Route::Udp(from);
                leg.consented = now;
                Verdict::Answer(Reply::new(&bound(&token)))
            }
        }
    }

    /// One round of consent checks: every UDP route silent for longer than
    /// `timeout` is dropped (counted in the returned number); every other
    /// one is sent a challenge (returned, to be sent without the lock).
    pub fn consent_round(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> (Vec<(SocketAddr, [u8; CHALLENGE_BYTES])>, u64) {
        let mut checks = Vec::new();
        let mut lost = 0;
        for leg in self.legs.values_mut() {
            let Route::Udp(addr) = leg.route else { continue };
            if now.saturating_duration_since(leg.consented) > timeout {
                tracing::debug!(%addr, "relay route dropped: no answer to consent checks");
                leg.route = Route::Unbound;
                lost += 1;
                continue;
            }
            let token: [u8; TOKEN_BYTES] = rand::random();
            checks.push((addr, challenge(&leg.keys.id, &token, &self.cookies.now(&leg.keys.id, addr, now))));
        }
        (checks, lost)
    }
}

impl Leg {
    /// Whether this leg's route is a UDP address (for tests).
    #[cfg(test)]
    pub(super) fn udp_route(&self) -> Option<SocketAddr> {
        match self.route {
            Route::Udp(addr) => Some(addr),
            _ => None,
        }
    }
}
