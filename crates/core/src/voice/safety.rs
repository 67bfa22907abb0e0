//! The media handshake's commitment and the safety code both call screens
//! show (protocol v1.2, docs/media.md "The handshake").
//!
//! The caller commits to its key before the callee chooses one, and reveals
//! it only once it has the callee's key, so nobody who rewrites signaling
//! can try keys until the two codes agree: each side's code depends on the
//! X25519 shared secret and on the whole exchange (the commitment, both
//! keys, the call id). A v1.1 peer sends its key in the invite and makes no
//! commitment: its code is the old one, of the public keys only, and
//! [`SafetyCode::protected`] says it does not protect the call.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::crypto::PUBLIC_KEY_LEN;

/// Bytes of a commitment (a SHA-256 digest).
pub const COMMITMENT_LEN: usize = 32;
/// Domain separation of the commitment.
const COMMIT_LABEL: &[u8] = b"softphone commit v1.2";
/// Domain separation of the v1.2 code.
const CODE_LABEL_V12: &[u8] = b"softphone safety code v1.2";
/// Domain separation of the v1.1 code (public keys only).
const CODE_LABEL_V11: &[u8] = b"softphone safety code v1";
/// Six digits.
const CODE_MODULUS: u64 = 1_000_000;

/// A caller's commitment to its public key for one call.
pub type Commitment = [u8; COMMITMENT_LEN];

/// `SHA-256("softphone commit v1.2" || caller_public || call_id)`.
pub fn commitment(caller_public: &[u8; PUBLIC_KEY_LEN], call_id: &str) -> Commitment {
    Sha256::new()
        .chain_update(COMMIT_LABEL)
        .chain_update(caller_public)
        .chain_update(call_id.as_bytes())
        .finalize()
        .into()
}

/// Whether `revealed` is the key `committed` was made of, compared in
/// constant time (the comparison leaks nothing of how close a guess came).
pub fn reveal_matches(committed: &Commitment, revealed: &[u8; PUBLIC_KEY_LEN], call_id: &str) -> bool {
    commitment(revealed, call_id).ct_eq(committed).into()
}

/// How the two keys of a call were exchanged, which decides its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// v1.2: the caller committed to its key first (this commitment).
    Committed(Commitment),
    /// v1.1: the caller's key came in the invite, uncommitted.
    Uncommitted,
}

/// The digits both call screens show, and whether comparing them protects
/// the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyCode {
    /// Six decimal digits, zero padded.
    pub digits: String,
    /// `false` for a v1.1 exchange: a man in the middle can make the two
    /// screens agree, so equal digits prove nothing.
    pub protected: bool,
}

/// What the call screen says under the code of an unprotected call.
pub const UNPROTECTED_NOTE: &str = "the other phone is older: this code does not protect the call";

/// The code of a call whose keys were agreed to `shared` (the X25519
/// shared secret) through `exchange`.
pub fn safety_code(
    shared: &[u8; 32],
    exchange: Exchange,
    caller_public: &[u8; PUBLIC_KEY_LEN],
    callee_public: &[u8; PUBLIC_KEY_LEN],
    call_id: &str,
) -> SafetyCode {
    match exchange {
        Exchange::Committed(commitment) => {
            let mut info = Vec::with_capacity(CODE_LABEL_V12.len() + 96 + call_id.len());
            info.extend_from_slice(CODE_LABEL_V12);
            info.extend_from_slice(&commitment);
            info.extend_from_slice(caller_public);
            info.extend_from_slice(callee_public);
            info.extend_from_slice(call_id.as_bytes());
            let mut number = [0u8; 8];
            Hkdf::<Sha256>::new(None, shared)
                .expand(&info, &mut number)
                .expect("8 bytes is a valid HKDF-SHA256 length");
            SafetyCode { digits: six_digits(number), protected: true }
        }
        Exchange::Uncommitted => {
            SafetyCode { digits: safety_code_v11(caller_public, callee_public), protected: false }
        }
    }
}

/// The v1.1 code: six digits from the two public keys alone, the same on
/// both sides whatever the order. Grinding one key matches it in about a
/// million tries, which is why v1.2 replaced it.
pub fn safety_code_v11(a: &[u8; PUBLIC_KEY_LEN], b: &[u8; PUBLIC_KEY_LEN]) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::new().chain_update(CODE_LABEL_V11).chain_update(low).chain_update(high).finalize();
    six_digits(digest[..8].try_into().expect("8 bytes"))
}

fn six_digits(number: [u8; 8]) -> String {
    format!("{:06}", u64::from_be_bytes(number) % CODE_MODULUS)
}

#[cfg(test)]
#[path = "safety_tests.rs"]
mod tests;
