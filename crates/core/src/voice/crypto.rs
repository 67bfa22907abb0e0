//! End-to-end encryption of a call's voice packets, so the relay carries
//! bytes it cannot read or forge.
//!
//! Each side makes an ephemeral X25519 key ([`LocalKey`]); the public halves
//! travel in signaling (v1.2: the caller's as a commitment first, then
//! revealed; see `safety.rs`). Both sides derive the same two direction keys
//! with HKDF-SHA256 over the shared secret, with both public keys and the
//! call id in the info, and seal every packet with ChaCha20-Poly1305: the
//! 96-bit nonce is eight zero bytes then the packet's 32-bit sequence
//! number, big-endian (each direction has its own key, so the two senders'
//! counters never share a key and nonce); the clear header is the
//! associated data. An [`Opener`] drops forged, replayed and stale packets (a
//! 128-packet replay window). The agreed [`CallKeys`] carry the safety code
//! both screens show. Every secret (the private key, the shared secret, the
//! direction keys, the ciphers' keys) is wiped when it drops.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::packet::{Header, PacketError};
// Which end of the call this side is (the protocol's own `Role`): it decides
// which direction key seals and which opens.
use super::safety::{Exchange, SafetyCode};
use crate::protocol::Role;

/// Bytes of an X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Packets behind the newest one that may still arrive (out of order);
/// older ones are stale. 128 packets are 2.56 s of audio, far beyond the
/// jitter buffer's 120 ms.
const REPLAY_WINDOW: u32 = 128;
/// Domain separation: these keys are for nothing else.
const KDF_LABEL: &[u8] = b"softphone voice v1";

/// Why a call key could not be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("public key is not {PUBLIC_KEY_LEN} bytes of base64url")]
    Encoding,
    #[error("public key is a low-order point (no shared secret)")]
    NotContributory,
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpenError {
    #[error("malformed packet: {0}")]
    Malformed(#[from] PacketError),
    #[error("packet failed authentication (forged, corrupted or another call's)")]
    Forged,
    #[error("packet {0} was already received")]
    Replayed(u32),
    #[error("packet {0} is older than the replay window")]
    Stale(u32),
}

/// The sender ran out of sequence numbers (2^32 packets, 2.7 years of
/// audio): a nonce must never repeat, so it stops sealing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("sequence numbers exhausted; the call must be re-keyed")]
pub struct SealExhausted;

/// This side's key pair for one call, made fresh for each call and
/// consumed by [`LocalKey::agree`]: the secret is used once.
pub struct LocalKey {
    /// Never leaves this struct and is wiped when it drops.
    secret: StaticSecret,
    /// Goes to the other side (committed to, or in the accept).
    public: PublicKey,
}

impl LocalKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> LocalKey {
        LocalKey::from_rng(&mut rand::rng())
    }

    /// A key from the given cryptographic RNG (seeded in tests).
    pub fn from_rng<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> LocalKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *bytes);
        LocalKey::from_bytes(*bytes)
    }

    /// The key of these private bytes: for the fixed test vectors only.
    pub fn from_bytes(bytes: [u8; 32]) -> LocalKey {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey::from(&secret);
        LocalKey { secret, public }
    }

    /// The public key's bytes.
    pub fn public(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public.to_bytes()
    }

    /// Agrees the call keys with the other side's public key; `exchange`
    /// says how the keys travelled, which decides the safety code.
    pub fn agree(
        self,
        theirs: &[u8; PUBLIC_KEY_LEN],
        role: Role,
        call_id: &str,
        exchange: Exchange,
    ) -> Result<CallKeys, KeyError> {
        let ours = self.public();
        let shared = self.secret.diffie_hellman(&PublicKey::from(*theirs));
        if !shared.was_contributory() {
            return Err(KeyError::NotContributory);
        }
        let (caller, callee) = match role {
            Role::Caller => (ours, *theirs),
            Role::Callee => (*theirs, ours),
        };
        let safety = super::safety::safety_code(shared.as_bytes(), exchange, &caller, &callee, call_id);
        let mut info = Vec::with_capacity(KDF_LABEL.len() + 64 + call_id.len() + 16);
        info.extend_from_slice(KDF_LABEL);
        info.extend_from_slice(&caller);
        info.extend_from_slice(&callee);
        info.extend_from_slice(call_id.as_bytes());
        let kdf = Hkdf::<Sha256>::new(None, shared.as_bytes());
        let direction_key = |label: &[u8]| {
            let mut key = Zeroizing::new([0u8; 32]);
            let info = [info.as_slice(), label].concat();
            kdf.expand(&info, &mut *key).expect("32 bytes is a valid HKDF-SHA256 length");
            key
        };
        let caller_to_callee = direction_key(b" caller to callee");
        let callee_to_caller = direction_key(b" callee to caller");
        let (send, receive) = match role {
            Role::Caller => (caller_to_callee, callee_to_caller),
            Role::Callee => (callee_to_caller, caller_to_callee),
        };
        Ok(CallKeys { send, receive, safety_code: safety.digits, protected: safety.protected })
    }
}

/// Both direction keys of one call and its safety code. The keys are
/// wiped when it drops.
pub struct CallKeys {
    /// Seals what this side sends.
    send: Zeroizing<[u8; 32]>,
    /// Opens what the other side sends.
    receive: Zeroizing<[u8; 32]>,
    /// Shown on the call screen.
    pub safety_code: String,
    /// Whether comparing the code protects the call (`false` with a v1.1
    /// peer, see [`super::safety::SafetyCode::protected`]).
    pub protected: bool,
}

impl CallKeys {
    /// The sealing half (for the sending task) and the opening half (for
    /// the receiving task).
    pub fn split(self) -> (Sealer, Opener) {
        let sealer = Sealer { cipher: ChaCha20Poly1305::new(&(*self.send).into()), next_seq: Some(0) };
        let opener = Opener {
            cipher: ChaCha20Poly1305::new(&(*self.receive).into()),
            window: ReplayWindow::default(),
        };
        (sealer, opener)
    }

    /// The code and whether it protects the call.
    pub fn safety(&self) -> SafetyCode {
        SafetyCode { digits: self.safety_code.clone(), protected: self.protected }
    }

    /// The key each direction is sealed with, caller to callee first, as
    /// seen by a side in `role`: for the fixed test vectors.
    pub fn direction_keys(&self, role: Role) -> ([u8; 32], [u8; 32]) {
        match role {
            Role::Caller => (*self.send, *self.receive),
            Role::Callee => (*self.receive, *self.send),
        }
    }
}

/// A public key as signaling carries it: unpadded base64url.
pub fn encode_public_key(key: &[u8; PUBLIC_KEY_LEN]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// The inverse of [`encode_public_key`].
pub fn decode_public_key(text: &str) -> Result<[u8; PUBLIC_KEY_LEN], KeyError> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| KeyError::Encoding)?;
    bytes.try_into().map_err(|_| KeyError::Encoding)
}

fn nonce(seq: u32) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[8..].copy_from_slice(&seq.to_be_bytes());
    bytes.into()
}

/// Seals outgoing packets; owns the sequence counter so a nonce is never reused.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    /// The next packet's sequence number; `None` once all are used.
    next_seq: Option<u32>,
}

impl Sealer {
    /// A whole packet: header (with the next sequence number) and the
    /// sealed `body`.
    pub fn seal(&mut self, flags: u8, timestamp: u32, body: &[u8]) -> Result<Vec<u8>, SealExhausted> {
        let seq = self.next_seq.ok_or(SealExhausted)?;
        self.next_seq = seq.checked_add(1);
        let header = Header { flags, seq, timestamp }.encode();
        let sealed = self
            .cipher
            .encrypt(&nonce(seq), Payload { msg: body, aad: &header })
            .expect("ChaCha20-Poly1305 seals any packet-sized message");
        let mut packet = Vec::with_capacity(header.len() + sealed.len());
        packet.extend_from_slice(&header);
        packet.extend_from_slice(&sealed);
        Ok(packet)
    }
}

/// Opens incoming packets and keeps the replay window.
pub struct Opener {
    cipher: ChaCha20Poly1305,
    window: ReplayWindow,
}

impl Opener {
    /// The header and the plaintext body of an authentic, new packet.
    /// Nothing changes when the packet is dropped.
    pub fn open(&mut self, packet: &[u8]) -> Result<(Header, Vec<u8>), OpenError> {
        let (header, sealed) = Header::parse(packet)?;
        self.window.check(header.seq)?;
        let aad = &packet[..super::packet::HEADER_LEN];
        let body = self
            .cipher
            .decrypt(&nonce(header.seq), Payload { msg: sealed, aad })
            .map_err(|_| OpenError::Forged)?;
        // Only an authentic packet moves the window: a forger cannot push
        // real packets out of it.
        self.window.mark(header.seq);
        Ok((header, body))
    }
}

/// Which of the last [`REPLAY_WINDOW`] sequence numbers were seen (as
/// IPsec's and WireGuard's anti-replay windows).
#[derive(Debug, Default)]
struct ReplayWindow {
    /// The newest sequence number seen, if any.
    newest: Option<u32>,
    /// Bit `i` set: `newest - i` was seen.
    seen: u128,
}

impl ReplayWindow {
    fn check(&self, seq: u32) -> Result<(), OpenError> {
        let Some(newest) = self.newest else { return Ok(()) };
        if seq > newest {
            return Ok(());
        }
        let behind = newest - seq;
        if behind >= REPLAY_WINDOW {
            return Err(OpenError::Stale(seq));
        }
        if self.seen & (1u128 << behind) != 0 {
            return Err(OpenError::Replayed(seq));
        }
        Ok(())
    }

    fn mark(&mut self, seq: u32) {
        match self.newest {
            Some(newest) if seq <= newest => self.seen |= 1u128 << (newest - seq),
            Some(newest) => {
                let ahead = seq - newest;
                self.seen = if ahead >= REPLAY_WINDOW { 0 } else { self.seen << ahead };
                self.seen |= 1;
                self.newest = Some(seq);
            }
            None => {
                self.seen = 1;
                self.newest = Some(seq);
            }
        }
    }
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
