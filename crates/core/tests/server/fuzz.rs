//! Property-based fuzzing (proptest, stable Rust) of what the server reads
//! from strangers: the frame decoder and the token verifier. Any input gives
//! a typed error or a value that re-encodes to itself, never a panic.
//!
//! The inputs mix arbitrary text and bytes with structure-aware ones (JSON
//! objects with the protocol's field names and random values, valid frames
//! with a few bytes changed, minted tokens with one character changed), so
//! the cases reach past the JSON parser and the first `split`.
//!
//! `cargo test` runs a short pass with a fixed seed; the long run is
//! `fuzz_decoder_long` (see `docs/operations.md`).

use crate::fuzz_strategies::{fixed, json_value, text};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Map, Value};
use softphone_core::protocol::{ClientFrame, ErrorCode, REQUEST_TYPES, Req, Request, decode_request};
use softphone_core::token::{self, TokenError};

/// The names a request's fields have, and some it does not.
fn field_name() -> impl Strategy<Value = String> + Clone {
    const KNOWN: &[&str] = &[
        "type",
        "req",
        "peer_id",
        "token",
        "device",
        "call_id",
        "callee_id",
        "content",
        "channel_id",
        "response",
        "peer_ids",
    ];
    prop_oneof![4 => prop::sample::select(KNOWN).prop_map(str::to_owned), 1 => text()]
}

/// What a field may hold: mostly the right kind, sometimes anything.
fn field_value() -> impl Strategy<Value = Value> + Clone {
    prop_oneof![
        3 => text().prop_map(Value::String),
        1 => prop::collection::vec(text().prop_map(Value::String), 0..4).prop_map(Value::Array),
        2 => json_value(),
    ]
}

/// A JSON object shaped like a frame: a known or random `type`, a `req`
/// of any JSON kind, random fields with random values.
fn frame_object() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        4 => prop::sample::select(REQUEST_TYPES).prop_map(|t| Some(Value::from(t))),
        1 => json_value().prop_map(Some),
        1 => Just(None),
    ];
    let req =
        prop_oneof![Just(None), any::<i64>().prop_map(|n| Some(Value::from(n))), json_value().prop_map(Some)];
    (kind, req, prop::collection::vec((field_name(), field_value()), 0..6)).prop_map(|(kind, req, fields)| {
        let mut object = Map::new();
        for (name, value) in fields {
            object.insert(name, value);
        }
        if let Some(kind) = kind {
            object.insert("type".into(), kind);
        }
        if let Some(req) = req {
            object.insert("req".into(), req);
        }
        Value::Object(object).to_string()
    })
}

/// Any request the protocol has, with any strings in it.
fn request() -> impl Strategy<Value = Request> {
    let peers = || prop::collection::vec(text(), 0..4);
    prop_oneof![
        (text(), text(), text()).prop_map(|(peer_id, token, device)| Request::Login {
            peer_id,
            token,
            device
        }),
        Just(Request::Logout),
        (text(), text(), text(), text(), media_key(), media_key()).prop_map(
            |(call_id, callee_id, content, channel_id, media_key, media_commit)| Request::Invite {
                call_id,
                callee_id,
                content,
                channel_id,
                media_key,
                media_commit
            }
        ),
        (text(), text()).prop_map(|(call_id, media_key)| Request::MediaReveal { call_id, media_key }),
        text().prop_map(|call_id| Request::Cancel { call_id }),
        text().prop_map(|call_id| Request::Received { call_id }),
        (text(), text(), media_key()).prop_map(|(call_id, response, media_key)| Request::Accept {
            call_id,
            response,
            media_key
        }),
        (text(), text()).prop_map(|(call_id, response)| Request::Refuse { call_id, response }),
        text().prop_map(|call_id| Request::Hangup { call_id }),
        peers().prop_map(|peer_ids| Request::QueryPresence { peer_ids }),
        peers().prop_map(|peer_ids| Request::SubscribePresence { peer_ids }),
        peers().prop_map(|peer_ids| Request::UnsubscribePresence { peer_ids }),
    ]
}

fn req() -> impl Strategy<Value = Option<Req>> {
    prop_oneof![
        Just(None),
        any::<i64>().prop_map(|n| Some(n.into())),
        any::<u64>().prop_map(|n| Some(n.into()))
    ]
}

/// A frame as a client sends it.
fn encode(req: Option<Req>, request: Request) -> String {
    serde_json::to_string(&ClientFrame { req, request }).expect("a frame encodes")
}

/// A valid frame with a few bytes replaced, inserted or removed.
fn mutated_frame() -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), 0u8..3, any::<u8>());
    (req(), request(), prop::collection::vec(edit, 1..4)).prop_map(|(req, request, edits)| {
        let mut bytes = encode(req, request).into_bytes();
        for (at, how, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match how {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => drop(bytes.remove(i)),
                _ => bytes.push(byte),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Every kind of decoder input, mixed.
fn decoder_input() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        3 => frame_object(),
        2 => (req(), request()).prop_map(|(req, request)| encode(req, request)),
        3 => mutated_frame(),
    ]
}

/// The decoder's property: a typed error with a message, or a request
/// whose encoding decodes to it again.
fn decoder_holds(text: &str) -> Result<(), TestCaseError> {
    match decode_request(text) {
        Ok((req, request)) => {
            let again = encode(req.clone(), request.clone());
            prop_assert_eq!(decode_request(&again), Ok((req, request)), "re-encoded as {}", again);
        }
        Err(e) => {
            let code = e.error.code;
            prop_assert!(code == ErrorCode::BadRequest || code == ErrorCode::UnknownType, "{:?}", e);
            prop_assert!(!e.error.message.is_empty());
        }
    }
    Ok(())
}

#[test]
fn fuzz_decoder() {
    let mut runner = TestRunner::new(fixed(4_000));
    runner.run(&decoder_input(), |text| decoder_holds(&text)).unwrap();
}

#[test]
fn fuzz_every_request_survives_encode_and_decode() {
    let mut runner = TestRunner::new(fixed(2_000));
    runner
        .run(&(req(), request()), |(req, request)| {
            let text = encode(req.clone(), request.clone());
            prop_assert_eq!(decode_request(&text), Ok((req, request)));
            Ok(())
        })
        .unwrap();
}

/// The long run: `FUZZ_CASES` decoder inputs (default 10 million) from
/// `FUZZ_SEED` (default the short pass's seed). See `docs/operations.md`.
#[test]
#[ignore = "long: run with --ignored, see docs/operations.md"]
fn fuzz_decoder_long() {
    let env =
        |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let cases = u32::try_from(env("FUZZ_CASES", 10_000_000)).expect("FUZZ_CASES fits in a u32");
    let config =
        Config { rng_seed: RngSeed::Fixed(env("FUZZ_SEED", crate::fuzz_strategies::SEED)), ..fixed(cases) };
    let started = std::time::Instant::now();
    TestRunner::new(config).run(&decoder_input(), |text| decoder_holds(&text)).unwrap();
    println!("fuzz_decoder_long: {cases} inputs, no failure, {:.1} s", started.elapsed().as_secs_f64());
}

/// The token verifier's inputs: a secret, a peer and an expiry to mint
/// with, and the time of the check.
fn minted() -> impl Strategy<Value = (Vec<u8>, String, u64, u64)> {
    let secret = prop::collection::vec(any::<u8>(), 1..40);
    let expiry = prop_oneof![any::<u64>(), 0u64..3_000_000_000];
    (secret, "[!-~]{1,64}", expiry, any::<u64>())
}

#[test]
fn fuzz_tokens_of_any_text_are_refused_as_invalid() {
    let mut runner = TestRunner::new(fixed(4_000));
    let token = prop_oneof![
        any::<String>(),
        "v1\\.[0-9+-]{0,22}\\.[A-Za-z0-9_=+/-]{0,50}",
        "(v1|v2|V1|)[.]{0,3}[0-9]{0,5}[.]{0,3}[A-Za-z0-9_-]{43}",
    ];
    runner
        .run(&(minted(), token), |((secret, peer, _, now), token)| {
            prop_assert_eq!(
                token::verify(&secret, &peer, &token, now),
                Err(TokenError::Invalid),
                "{}",
                token
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_minted_tokens_verify_until_their_expiry() {
    let mut runner = TestRunner::new(fixed(2_000));
    runner
        .run(&minted(), |(secret, peer, expiry, now)| {
            let t = token::mint(&secret, &peer, expiry);
            let want = if now < expiry { Ok(()) } else { Err(TokenError::Expired) };
            prop_assert_eq!(token::verify(&secret, &peer, &t, now), want);
            let written = expiry.to_string();
            prop_assert_eq!(t.split('.').nth(1), Some(written.as_str()), "the expiry is written plainly");
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_a_token_with_one_character_changed_is_refused() {
    let mut runner = TestRunner::new(fixed(4_000));
    let edit = (any::<prop::sample::Index>(), 0u8..3, prop::char::range('\0', '\u{7f}'));
    runner
        .run(&(minted(), edit), |((secret, peer, expiry, _), (at, how, c))| {
            let original = token::mint(&secret, &peer, expiry);
            let mut chars: Vec<char> = original.chars().collect();
            let i = at.index(chars.len());
            match how {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                _ => drop(chars.remove(i)),
            }
            let changed: String = chars.into_iter().collect();
            if changed == original {
                return Ok(()); // the same character put back: nothing changed
            }
            // Checked before the expiry, so a changed token is never `Expired`: now = 0.
            match token::verify(&secret, &peer, &changed, 0) {
                Err(TokenError::Invalid) => {}
                Err(TokenError::Expired) => prop_assert!(expiry == 0, "{changed} expired"),
                // The MAC binds the expiry and the expiry has one spelling
                // (protocol v1.1): no other token passes.
                Ok(()) => prop_assert!(false, "{} accepted, changed from {}", changed, original),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_a_token_is_refused_for_another_peer_or_secret() {
    let mut runner = TestRunner::new(fixed(2_000));
    let other = ("[!-~]{1,64}", prop::collection::vec(1u8..=255, 1..40));
    runner
        .run(&(minted(), other), |((secret, peer, expiry, _), (other_peer, other_secret))| {
            let t = token::mint(&secret, &peer, expiry);
            if other_peer != peer {
                prop_assert_eq!(token::verify(&secret, &other_peer, &t, 0), Err(TokenError::Invalid));
            }
            // HMAC pads short keys with zero bytes, so `k` and `k\0` are one
            // key: compare without trailing zeros.
            let trimmed = |s: &[u8]| s.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            if other_secret[..trimmed(&other_secret)] != secret[..trimmed(&secret)] {
                prop_assert_eq!(token::verify(&other_secret, &peer, &t, 0), Err(TokenError::Invalid));
            }
            Ok(())
        })
        .unwrap();
}

/// The optional `media_key` of invite and accept: absent, well formed (43
/// base64url characters, 32 bytes) or any text.
fn media_key() -> impl Strategy<Value = Option<String>> + Clone {
    proptest::option::of(prop_oneof!["[A-Za-z0-9_-]{43}", text()])
}
