//! The encryption rules, one test each.

use super::*;
use crate::voice::safety::{Exchange, commitment, safety_code_v11};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Keys of both sides of a call, seeded so failures reproduce.
fn call(seed: u64, call_id: &str) -> (CallKeys, CallKeys) {
    let mut rng = StdRng::seed_from_u64(seed);
    let caller = LocalKey::from_rng(&mut rng);
    let callee = LocalKey::from_rng(&mut rng);
    let (caller_public, callee_public) = (caller.public(), callee.public());
    let exchange = Exchange::Committed(commitment(&caller_public, call_id));
    let caller_keys = caller.agree(&callee_public, Role::Caller, call_id, exchange).unwrap();
    let callee_keys = callee.agree(&caller_public, Role::Callee, call_id, exchange).unwrap();
    (caller_keys, callee_keys)
}

#[test]
fn each_side_opens_what_the_other_sealed_in_both_directions() {
    let (caller, callee) = call(1, "call-1");
    let (mut caller_seal, mut caller_open) = caller.split();
    let (mut callee_seal, mut callee_open) = callee.split();
    let packet = caller_seal.seal(0, 960, b"hello").unwrap();
    let (header, body) = callee_open.open(&packet).unwrap();
    assert_eq!((header.seq, header.timestamp, body.as_slice()), (0, 960, &b"hello"[..]));
    let packet = callee_seal.seal(0, 0, b"back").unwrap();
    assert_eq!(caller_open.open(&packet).unwrap().1, b"back");
}

#[test]
fn directions_have_separate_keys_so_a_reflected_packet_is_forged() {
    let (caller, _callee) = call(2, "call-2");
    let (mut seal, mut open) = caller.split();
    let packet = seal.seal(0, 0, b"mine").unwrap();
    assert_eq!(open.open(&packet), Err(OpenError::Forged));
}

#[test]
fn the_body_is_not_readable_on_the_wire() {
    let (caller, _) = call(3, "call-3");
    let (mut seal, _) = caller.split();
    let secret = b"a sentence the relay must not read";
    let packet = seal.seal(0, 0, secret).unwrap();
    assert!(!packet.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
    assert_eq!(packet.len(), 10 + secret.len() + 16);
}

#[test]
fn a_forged_body_or_header_bit_is_dropped_and_changes_nothing() {
    let (caller, callee) = call(4, "call-4");
    let (mut seal, _) = caller.split();
    let (_, mut open) = callee.split();
    let packet = seal.seal(0, 0, b"payload").unwrap();
    for index in [1, 5, 9, 12, packet.len() - 1] {
        let mut forged = packet.clone();
        forged[index] ^= 0x01;
        // Flag bit 0x01 flips to a known flag, so every case reaches the AEAD.
        assert_eq!(open.open(&forged), Err(OpenError::Forged), "byte {index}");
    }
    // The real packet still opens: forgeries did not move the window.
    assert!(open.open(&packet).is_ok());
}

#[test]
fn another_calls_keys_do_not_open_a_packet() {
    let (caller, _) = call(5, "call-5");
    let (_, other_callee) = call(5, "call-6");
    let (mut seal, _) = caller.split();
    let (_, mut open) = other_callee.split();
    let packet = seal.seal(0, 0, b"x").unwrap();
    assert_eq!(open.open(&packet), Err(OpenError::Forged));
}

#[test]
fn a_replayed_packet_is_dropped_even_out_of_order() {
    let (caller, callee) = call(6, "c");
    let (mut seal, _) = caller.split();
    let (_, mut open) = callee.split();
    let packets: Vec<_> = (0..5).map(|_| seal.seal(0, 0, b"f").unwrap()).collect();
    for index in [0, 2, 4, 1] {
        open.open(&packets[index]).unwrap();
    }
    assert_eq!(open.open(&packets[2]), Err(OpenError::Replayed(2)));
    assert_eq!(open.open(&packets[4]), Err(OpenError::Replayed(4)));
    // 3 arrives late but inside the window: it is new, so it opens.
    assert!(open.open(&packets[3]).is_ok());
    assert_eq!(open.open(&packets[3]), Err(OpenError::Replayed(3)));
}

#[test]
fn a_packet_older_than_the_window_is_stale() {
    let (caller, callee) = call(7, "c");
    let (mut seal, _) = caller.split();
    let (_, mut open) = callee.split();
    let packets: Vec<_> = (0..=REPLAY_WINDOW).map(|_| seal.seal(0, 0, b"f").unwrap()).collect();
    open.open(&packets[REPLAY_WINDOW as usize]).unwrap();
    assert_eq!(open.open(&packets[0]), Err(OpenError::Stale(0)));
    assert!(open.open(&packets[1]).is_ok(), "the window's oldest slot still opens");
}

#[test]
fn malformed_bytes_are_a_typed_error() {
    let (_, callee) = call(8, "c");
    let (_, mut open) = callee.split();
    assert!(matches!(open.open(&[1, 0, 0, 0]), Err(OpenError::Malformed(_))));
}

#[test]
fn sequence_numbers_never_wrap() {
    let (caller, _) = call(9, "c");
    let (mut seal, _) = caller.split();
    seal.next_seq = Some(u32::MAX);
    assert!(seal.seal(0, 0, b"last").is_ok());
    assert_eq!(seal.seal(0, 0, b"one too many"), Err(SealExhausted));
}

#[test]
fn both_sides_show_the_same_six_digit_safety_code() {
    let (caller, callee) = call(10, "c");
    assert_eq!(caller.safety_code, callee.safety_code);
    assert!(caller.protected && callee.protected, "a committed exchange protects the call");
    assert_eq!(caller.safety_code.len(), 6);
    assert!(caller.safety_code.bytes().all(|b| b.is_ascii_digit()));
}

#[test]
fn a_tampered_public_key_gives_different_codes_on_the_two_sides() {
    let mut rng = StdRng::seed_from_u64(11);
    let (caller, callee, mallory) =
        (LocalKey::from_rng(&mut rng), LocalKey::from_rng(&mut rng), LocalKey::from_rng(&mut rng));
    // Mallory swaps her key into both directions of the exchange.
    let mallory_public = mallory.public();
    let caller_code = safety_code_v11(&caller.public(), &mallory_public);
    let callee_code = safety_code_v11(&mallory_public, &callee.public());
    assert_ne!(caller_code, callee_code);
    let caller_keys = caller.agree(&mallory_public, Role::Caller, "c", Exchange::Uncommitted).unwrap();
    assert_eq!(caller_keys.safety_code, caller_code);
    assert!(!caller_keys.protected, "a v1.1 exchange does not protect the call");
}

#[test]
fn a_low_order_public_key_is_refused() {
    let key = LocalKey::from_rng(&mut StdRng::seed_from_u64(12));
    assert_eq!(
        key.agree(&[0u8; 32], Role::Caller, "c", Exchange::Uncommitted).err(),
        Some(KeyError::NotContributory)
    );
}

#[test]
fn public_keys_round_trip_through_base64url() {
    let key = LocalKey::from_rng(&mut StdRng::seed_from_u64(13)).public();
    let text = encode_public_key(&key);
    assert_eq!(text.len(), 43);
    assert_eq!(decode_public_key(&text), Ok(key));
    assert_eq!(decode_public_key("short"), Err(KeyError::Encoding));
    assert_eq!(decode_public_key("not base64 !"), Err(KeyError::Encoding));
}
