//! The relay's UDP framing (protocol v1.2): the credential never travels on
//! UDP. Each leg has a public id and a secret proof key, both derived from
//! the credential (HMAC-SHA256), which only the relay and the participant
//! know. An address becomes a leg's route only by answering a challenge
//! the relay sent *to that address* (a cookie over leg, address and time
//! window, keyed by the relay's per-process secret) with a proof keyed by
//! the leg's proof key; data packets carry the leg id and never move a
//! route. The `/media` WebSocket keeps its framing (`super::ToRelay`).
//! Prose: `docs/relay.md`, "UDP: bound by a challenge".

use super::Credential;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a leg id (public: every UDP packet of the leg carries it).
pub const LEG_ID_BYTES: usize = 8;
/// Bytes of the token a bind request or challenge carries, echoed back.
pub const TOKEN_BYTES: usize = 8;
/// Bytes of the relay's cookie in a challenge.
pub const COOKIE_BYTES: usize = 16;
/// Bytes of the participant's proof in an answer.
pub const PROOF_BYTES: usize = 16;

/// A leg's public id.
pub type LegId = [u8; LEG_ID_BYTES];

/// Client to relay, UDP: data for the other participant.
pub const KIND_UDP_DATA: u8 = 0x11;
/// Client to relay, UDP: "challenge me at the address this came from".
pub const KIND_BIND: u8 = 0x12;
/// Client to relay, UDP: the answer to a challenge, with the proof.
pub const KIND_ANSWER: u8 = 0x13;
/// Relay to client, UDP: a challenge (after a bind request, or a consent check).
pub const KIND_CHALLENGE: u8 = 0x14;
/// Relay to client, UDP: the answer was good; this address is the leg's route.
pub const KIND_BOUND: u8 = 0x15;

/// Header of a UDP data packet: kind and leg id.
pub const UDP_DATA_HEADER_BYTES: usize = 1 + LEG_ID_BYTES;
/// A challenge: kind, leg id, token, cookie.
pub const CHALLENGE_BYTES: usize = 1 + LEG_ID_BYTES + TOKEN_BYTES + COOKIE_BYTES;
/// A bind request is padded to the challenge's size, so that the relay never
/// sends more bytes to an unproven address than it received from it.
pub const BIND_BYTES: usize = CHALLENGE_BYTES;
/// An answer: kind, leg id, token, cookie, proof.
pub const ANSWER_BYTES: usize = 1 + LEG_ID_BYTES + TOKEN_BYTES + COOKIE_BYTES + PROOF_BYTES;
/// A bound notice: kind, token.
pub const BOUND_BYTES: usize = 1 + TOKEN_BYTES;

/// What a participant derives from its credential for UDP: the id it sends
/// in the clear and the key its proofs are made with (never sent).
#[derive(Clone)]
pub struct LegKeys {
    /// Names the leg in every UDP packet.
    pub id: LegId,
    /// Keys the proofs; an observer of the wire never sees it.
    proof_key: [u8; 32],
}

impl std::fmt::Debug for LegKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegKeys").field("id", &self.id).finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

impl LegKeys {
    /// The id and proof key of the leg whose credential is `credential`.
    pub fn derive(credential: &Credential) -> LegKeys {
        let id = hmac(credential, &[b"softphone relay v1.2 leg id"]).finalize().into_bytes();
        let key = hmac(credential, &[b"softphone relay v1.2 proof key"]).finalize().into_bytes();
        LegKeys { id: id[..LEG_ID_BYTES].try_into().expect("a SHA-256 is longer"), proof_key: key.into() }
    }

    fn proof_mac(&self, token: &[u8; TOKEN_BYTES], cookie: &[u8; COOKIE_BYTES]) -> HmacSha256 {
        hmac(&self.proof_key, &[b"answer", &self.id, token, cookie])
    }

    /// The proof that answers the challenge carrying `token` and `cookie`.
    pub fn proof(&self, token: &[u8; TOKEN_BYTES], cookie: &[u8; COOKIE_BYTES]) -> [u8; PROOF_BYTES] {
        let tag = self.proof_mac(token, cookie).finalize().into_bytes();
        tag[..PROOF_BYTES].try_into().expect("a SHA-256 is longer")
    }

    /// Whether `proof` answers `token` and `cookie` (in constant time).
    pub fn check_proof(
        &self,
        token: &[u8; TOKEN_BYTES],
        cookie: &[u8; COOKIE_BYTES],
        proof: &[u8; PROOF_BYTES],
    ) -> bool {
        self.proof_mac(token, cookie).verify_truncated_left(proof).is_ok()
    }

    /// A bind request with `token`.
    pub fn bind(&self, token: [u8; TOKEN_BYTES]) -> Vec<u8> {
        UdpToRelay::Bind { leg: self.id, token }.encode()
    }

    /// The answer to `challenge` (which must be for this leg).
    pub fn answer(&self, token: [u8; TOKEN_BYTES], cookie: [u8; COOKIE_BYTES]) -> Vec<u8> {
        UdpToRelay::Answer { leg: self.id, token, cookie, proof: self.proof(&token, &cookie) }.encode()
    }

    /// The header of this leg's UDP data packets, to which the payload is appended.
    pub fn data_header(&self) -> [u8; UDP_DATA_HEADER_BYTES] {
        let mut header = [0u8; UDP_DATA_HEADER_BYTES];
        header[0] = KIND_UDP_DATA;
        header[1..].copy_from_slice(&self.id);
        header
    }
}

/// The relay's cookie for `leg` at `address` (its bytes as the relay saw
/// them) in time window `window`, keyed by the relay's secret.
pub fn cookie(secret: &[u8], leg: &LegId, address: &[u8], window: u64) -> [u8; COOKIE_BYTES] {
    let tag = hmac(secret, &[b"cookie", leg, address, &window.to_be_bytes()]).finalize().into_bytes();
    tag[..COOKIE_BYTES].try_into().expect("a SHA-256 is longer")
}

/// A UDP packet a client sends into the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpToRelay<'a> {
    /// Opaque payload for the other participant.
    Data { leg: LegId, payload: &'a [u8] },
    /// Asks for a challenge at the sender's address.
    Bind { leg: LegId, token: [u8; TOKEN_BYTES] },
    /// Answers a challenge: the sender's address becomes (or stays) the route.
    Answer { leg: LegId, token: [u8; TOKEN_BYTES], cookie: [u8; COOKIE_BYTES], proof: [u8; PROOF_BYTES] },
}

fn split<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = bytes.split_at_checked(N)?;
    Some((head.try_into().ok()?, rest))
}

impl<'a> UdpToRelay<'a> {
    /// Reads a packet; `None` for anything malformed (the v1.1 kinds too).
    pub fn parse(packet: &'a [u8]) -> Option<UdpToRelay<'a>> {
        let (&kind, rest) = packet.split_first()?;
        let (leg, rest) = split::<LEG_ID_BYTES>(rest)?;
        match kind {
            KIND_UDP_DATA => Some(UdpToRelay::Data { leg, payload: rest }),
            KIND_BIND if packet.len() == BIND_BYTES => {
                Some(UdpToRelay::Bind { leg, token: split::<TOKEN_BYTES>(rest)?.0 })
            }
            KIND_ANSWER if packet.len() == ANSWER_BYTES => {
                let (token, rest) = split::<TOKEN_BYTES>(rest)?;
                let (cookie, rest) = split::<COOKIE_BYTES>(rest)?;
                Some(UdpToRelay::Answer { leg, token, cookie, proof: split::<PROOF_BYTES>(rest)?.0 })
            }
            _ => None,
        }
    }

    /// Frames this packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANSWER_BYTES);
        match self {
            UdpToRelay::Data { leg, payload } => {
                out.push(KIND_UDP_DATA);
                out.extend_from_slice(leg);
                out.extend_from_slice(payload);
            }
            UdpToRelay::Bind { leg, token } => {
                out.push(KIND_BIND);
                out.extend_from_slice(leg);
                out.extend_from_slice(token);
                out.resize(BIND_BYTES, 0);
            }
            UdpToRelay::Answer { leg, token, cookie, proof } => {
                out.push(KIND_ANSWER);
                out.extend_from_slice(leg);
                out.extend_from_slice(token);
                out.extend_from_slice(cookie);
                out.extend_from_slice(proof);
            }
        }
        out
    }
}

/// A challenge, as the relay frames it.
pub fn challenge(
    leg: &LegId,
    token: &[u8; TOKEN_BYTES],
    cookie: &[u8; COOKIE_BYTES],
) -> [u8; CHALLENGE_BYTES] {
    let mut out = [0u8; CHALLENGE_BYTES];
    out[0] = KIND_CHALLENGE;
    out[1..1 + LEG_ID_BYTES].copy_from_slice(leg);
    out[1 + LEG_ID_BYTES..1 + LEG_ID_BYTES + TOKEN_BYTES].copy_from_slice(token);
    out[1 + LEG_ID_BYTES + TOKEN_BYTES..].copy_from_slice(cookie);
    out
}

/// A bound notice, as the relay frames it.
pub fn bound(token: &[u8; TOKEN_BYTES]) -> [u8; BOUND_BYTES] {
    let mut out = [0u8; BOUND_BYTES];
    out[0] = KIND_BOUND;
    out[1..].copy_from_slice(token);
    out
}

/// What a client reads from the relay on UDP besides data (`super::FromRelay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpControl {
    /// Answer with [`LegKeys::answer`] if `leg` is the client's.
    Challenge { leg: LegId, token: [u8; TOKEN_BYTES], cookie: [u8; COOKIE_BYTES] },
    /// The answer with this token bound the route.
    Bound([u8; TOKEN_BYTES]),
}

impl UdpControl {
    /// Reads a control packet; `None` for data and anything else.
    pub fn parse(packet: &[u8]) -> Option<UdpControl> {
        let (&kind, rest) = packet.split_first()?;
        match kind {
            KIND_CHALLENGE if packet.len() == CHALLENGE_BYTES => {
                let (leg, rest) = split::<LEG_ID_BYTES>(rest)?;
                let (token, rest) = split::<TOKEN_BYTES>(rest)?;
                Some(UdpControl::Challenge { leg, token, cookie: rest.try_into().ok()? })
            }
            KIND_BOUND if packet.len() == BOUND_BYTES => Some(UdpControl::Bound(rest.try_into().ok()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_proofs_need_the_credential() {
        let keys = LegKeys::derive(&[7; 16]);
        let other = LegKeys::derive(&[8; 16]);
        assert_ne!(keys.id, other.id);
        let data = UdpToRelay::Data { leg: keys.id, payload: b"hi" };
        assert_eq!(UdpToRelay::parse(&data.encode()), Some(data));
        assert_eq!(&data.encode()[..UDP_DATA_HEADER_BYTES], &keys.data_header());
        let bind = keys.bind([1; 8]);
        assert_eq!(bind.len(), BIND_BYTES);
        assert_eq!(UdpToRelay::parse(&bind), Some(UdpToRelay::Bind { leg: keys.id, token: [1; 8] }));
        assert_eq!(UdpToRelay::parse(&bind[..BIND_BYTES - 1]), None, "an unpadded bind is refused");
        let answer = keys.answer([2; 8], [3; 16]);
        let Some(UdpToRelay::Answer { leg, token, cookie, proof }) = UdpToRelay::parse(&answer) else {
            panic!("an answer")
        };
        assert_eq!((leg, token, cookie), (keys.id, [2; 8], [3; 16]));
        assert!(keys.check_proof(&token, &cookie, &proof));
        assert!(!other.check_proof(&token, &cookie, &proof), "another credential's proof fails");
        assert!(!keys.check_proof(&token, &[4; 16], &proof), "the proof is over the cookie");
        let c = challenge(&keys.id, &[5; 8], &[6; 16]);
        assert_eq!(
            UdpControl::parse(&c),
            Some(UdpControl::Challenge { leg: keys.id, token: [5; 8], cookie: [6; 16] })
        );
        assert_eq!(UdpControl::parse(&bound(&[9; 8])), Some(UdpControl::Bound([9; 8])));
        assert_eq!(
            UdpToRelay::parse(&[super::super::KIND_PROBE; 25]),
            None,
            "v1.1 probes are not UDP packets"
        );
        let (a, b) = ("127.0.0.1:1".as_bytes(), "127.0.0.1:2".as_bytes());
        let made = |secret: &[u8], at: &[u8], window| super::cookie(secret, &keys.id, at, window);
        assert_ne!(made(b"s", a, 1), made(b"s", b, 1));
        assert_ne!(made(b"s", a, 1), made(b"s", a, 2));
        assert_ne!(made(b"s", a, 1), made(b"t", a, 1));
    }
}
