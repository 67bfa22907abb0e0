//! The handshake's rules, and the fixed vectors the browser phone checks
//! against (`crates/core/tests/data/handshake-vectors.json`): the keys of RFC 7748's
//! X25519 example, a fixed call id, and everything derived from them.

use super::*;
use crate::protocol::Role;
use crate::voice::crypto::{LocalKey, encode_public_key};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

/// The vectors as checked in.
const VECTORS: &str = include_str!("../../tests/data/handshake-vectors.json");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> [u8; N] {
    let bytes: Vec<u8> =
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect();
    bytes.try_into().unwrap()
}

/// Everything the vectors hold, computed here from their private keys and call id.
fn derive(caller_private: [u8; 32], callee_private: [u8; 32], call_id: &str) -> Value {
    let (caller, callee) = (LocalKey::from_bytes(caller_private), LocalKey::from_bytes(callee_private));
    let (caller_public, callee_public) = (caller.public(), callee.public());
    let committed = commitment(&caller_public, call_id);
    let exchange = Exchange::Committed(committed);
    let caller_keys = caller.agree(&callee_public, Role::Caller, call_id, exchange).unwrap();
    let callee_keys = callee.agree(&caller_public, Role::Callee, call_id, exchange).unwrap();
    assert_eq!(caller_keys.safety(), callee_keys.safety(), "both sides derive the same code");
    let (to_callee, to_caller) = caller_keys.direction_keys(Role::Caller);
    assert_eq!(callee_keys.direction_keys(Role::Callee), (to_callee, to_caller));
    let v11_caller = LocalKey::from_bytes(caller_private);
    let v11 = v11_caller.agree(&callee_public, Role::Caller, call_id, Exchange::Uncommitted).unwrap();
    let (mut sealer, _) = caller_keys.split();
    let packet = sealer.seal(0, 960, b"hello").unwrap();
    json!({
        "caller_private": hex(&caller_private),
        "caller_public": hex(&caller_public),
        "caller_public_b64": encode_public_key(&caller_public),
        "callee_private": hex(&callee_private),
        "callee_public": hex(&callee_public),
        "callee_public_b64": encode_public_key(&callee_public),
        "call_id": call_id,
        "commitment": hex(&committed),
        "commitment_b64": encode_public_key(&committed),
        "safety_code_v12": callee_keys.safety_code,
        "safety_code_v11": v11.safety_code,
        "caller_to_callee_key": hex(&to_callee),
        "callee_to_caller_key": hex(&to_caller),
        "first_packet_caller_to_callee": {"flags": 0, "seq": 0, "timestamp": 960, "body_utf8": "hello", "packet": hex(&packet)},
    })
}

#[test]
fn the_checked_in_vectors_are_what_the_code_derives() {
    let file: Value = serde_json::from_str(VECTORS).unwrap();
    let vector = &file["vectors"][0];
    let computed = derive(
        unhex(vector["caller_private"].as_str().unwrap()),
        unhex(vector["callee_private"].as_str().unwrap()),
        vector["call_id"].as_str().unwrap(),
    );
    // RFC 7748 section 6.1: the public keys of its example private keys.
    assert_eq!(computed["caller_public"], "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    assert_eq!(computed["callee_public"], "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    if std::env::var_os("SOFTPHONE_WRITE_VECTORS").is_some() {
        let out = json!({
            "description": "Protocol v1.2 media handshake (docs/media.md): X25519 keys of RFC 7748 section 6.1, \
                the caller's commitment, the v1.2 and v1.1 safety codes, both direction keys, and the caller's \
                first sealed packet (ChaCha20-Poly1305, nonce = 8 zero bytes || seq u32 big-endian, AAD = the \
                10-byte header). Hex unless the name ends in _b64 (base64url, no padding).",
            "vectors": [computed],
        });
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/handshake-vectors.json");
        std::fs::write(path, serde_json::to_string_pretty(&out).unwrap() + "\n").unwrap();
        return;
    }
    assert_eq!(&computed, vector, "the vectors file is what the code derives");
}

#[test]
fn a_reveal_matches_only_its_own_commitment() {
    let mut rng = StdRng::seed_from_u64(21);
    let (key, other) = (LocalKey::from_rng(&mut rng).public(), LocalKey::from_rng(&mut rng).public());
    let committed = commitment(&key, "call-1");
    assert!(reveal_matches(&committed, &key, "call-1"));
    assert!(!reveal_matches(&committed, &other, "call-1"), "another key");
    assert!(!reveal_matches(&committed, &key, "call-2"), "another call");
}

#[test]
fn the_v12_code_depends_on_the_commitment_and_the_call() {
    let mut rng = StdRng::seed_from_u64(22);
    let (a, b) = (LocalKey::from_rng(&mut rng).public(), LocalKey::from_rng(&mut rng).public());
    let shared = [9u8; 32];
    let code = |exchange, call_id| safety_code(&shared, exchange, &a, &b, call_id);
    let committed = Exchange::Committed(commitment(&a, "c"));
    let base = code(committed, "c");
    assert!(base.protected);
    assert_eq!(base.digits.len(), 6);
    assert_ne!(base.digits, code(Exchange::Committed([0; 32]), "c").digits, "another commitment");
    assert_ne!(base.digits, code(committed, "d").digits, "another call id");
    assert_ne!(base.digits, safety_code(&[8; 32], committed, &a, &b, "c").digits, "another shared secret");
    let old = code(Exchange::Uncommitted, "c");
    assert!(!old.protected, "a v1.1 exchange is flagged");
    assert_eq!(old.digits, safety_code_v11(&b, &a), "the v1.1 code ignores order and secret");
}
