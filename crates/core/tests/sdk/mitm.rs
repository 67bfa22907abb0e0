//! A man in the middle for the handshake tests: a WebSocket proxy between
//! a real SDK client (the callee) and a real server that rewrites the
//! media handshake as an attacker who runs or controls signaling would,
//! and then searches keys to make the two safety codes agree.
//!
//! What it does to the callee's connection:
//! - `invitation`: keeps the caller's commitment, gives the callee a
//!   commitment to a key of its own (M1);
//! - `accept`: keeps the callee's key B, gives the caller a key of its own (M2);
//! - `media_reveal`: learns the caller's key A, so it knows the caller's
//!   code; then tries keys M1' (M1 first) until the callee's code with M1'
//!   equals the caller's, within [`GRIND_TRIES`] tries or [`GRIND_BUDGET`]
//!   of time (the callee waits 10 s for the reveal), and reveals the one it
//!   found, else M1.
//!
//! The search walks M1' = (m1 + 8i)·G and the shared secret (m1 + 8i)·B
//! by point additions with batched inversions (the way vanity keys are
//! ground), so it reaches far more keys than fresh key pairs would.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::{EdwardsPoint, MontgomeryPoint, Scalar};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use softphone_core::voice::crypto::{decode_public_key, encode_public_key};
use softphone_core::voice::safety::{Exchange, commitment, safety_code};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use x25519_dalek::{PublicKey, StaticSecret};

/// As many tries as matching a six-digit code needs about (2^20 > 10^6).
pub const GRIND_TRIES: u64 = 1 << 20;
/// The search stops here, so its reveal still comes within the callee's
/// 10 s wait (a reveal that never comes also ends voice, which would prove
/// less).
pub const GRIND_BUDGET: Duration = Duration::from_secs(7);
/// Keys converted to Montgomery form at once (one inversion each batch).
const BATCH: usize = 512;

/// What the man in the middle learned and did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The caller's code, as the attacker computes it (it knows m2 and A).
    pub caller_code: String,
    /// The callee's code with the honest M1, as the attacker computes it.
    pub callee_code_with_m1: String,
    /// Keys tried.
    pub tries: u64,
    /// The index of a key M1' whose code matched, if any (0 is M1 itself).
    pub found: Option<u64>,
}

/// A fresh clamped scalar whose top bits leave room for 8·2^20 more
/// without a carry into bit 254 (so m1 + 8i stays a valid X25519 secret).
fn grindable_secret() -> [u8; 32] {
    let mut bytes: [u8; 32] = rand::random();
    bytes[0] &= 248;
    bytes[31] = 0x40 | (bytes[31] & 0x0f);
    bytes
}

fn add_small(secret: &[u8; 32], step: u64) -> [u8; 32] {
    let mut out = *secret;
    let mut carry = u128::from(step);
    for byte in out.iter_mut() {
        let sum = u128::from(*byte) + (carry & 0xff);
        *byte = sum as u8;
        carry = (carry >> 8) + (sum >> 8);
    }
    out
}

/// The callee-side state of the attack.
struct Attack {
    call_id: String,
    /// The caller's real commitment.
    caller_commit: [u8; 32],
    /// Our key toward the callee, m1 (grindable), and its commitment.
    m1: [u8; 32],
    m1_commit: [u8; 32],
    /// Our key toward the caller.
    m2: StaticSecret,
    /// The callee's real key.
    callee_key: Option<[u8; 32]>,
}

impl Attack {
    /// Searches M1' for a callee code equal to the caller's.
    fn grind(&self, caller_key: [u8; 32]) -> (Report, [u8; 32]) {
        let b = self.callee_key.expect("the accept came before the reveal");
        let m2_public = PublicKey::from(&self.m2).to_bytes();
        let to_caller = self.m2.diffie_hellman(&PublicKey::from(caller_key));
        let caller_code = safety_code(
            to_caller.as_bytes(),
            Exchange::Committed(self.caller_commit),
            &caller_key,
            &m2_public,
            &self.call_id,
        )
        .digits;
        let exchange = Exchange::Committed(self.m1_commit);
        let b_point = MontgomeryPoint(b).to_edwards(0).expect("the callee's key is a curve point");
        let m1 = Scalar::from_bytes_mod_order(self.m1);
        let (mut public, mut shared) = (m1 * ED25519_BASEPOINT_POINT, m1 * b_point);
        let (step_public, step_shared) =
            (ED25519_BASEPOINT_POINT.mul_by_cofactor(), b_point.mul_by_cofactor());
        // The walk starts where X25519 itself does: check it once.
        let m1_secret = StaticSecret::from(self.m1);
        assert_eq!(public.to_montgomery().to_bytes(), PublicKey::from(&m1_secret).to_bytes());
        assert_eq!(
            shared.to_montgomery().to_bytes(),
            *m1_secret.diffie_hellman(&PublicKey::from(b)).as_bytes()
        );
        let m1_public = public.to_montgomery().to_bytes();
        let m1_shared = shared.to_montgomery().to_bytes();
        let callee_code_with_m1 = safety_code(&m1_shared, exchange, &m1_public, &b, &self.call_id).digits;
        let fast = fast_code(&m1_shared, &self.m1_commit, &m1_public, &b, &self.call_id);
        assert_eq!(format!("{fast:06}"), callee_code_with_m1, "the search computes codes as the phones do");
        let target: u64 = caller_code.parse().unwrap();
        let started = Instant::now();
        let (mut tries, mut found) = (0u64, None);
        'search: while tries < GRIND_TRIES && started.elapsed() < GRIND_BUDGET {
            let mut publics = Vec::with_capacity(BATCH);
            let mut shareds = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                publics.push(public);
                shareds.push(shared);
                public += step_public;
                shared += step_shared;
            }
            let publics = EdwardsPoint::to_montgomery_batch(&publics);
            let shareds = EdwardsPoint::to_montgomery_batch(&shareds);
            for (p, s) in publics.iter().zip(&shareds) {
                if fast_code(s.as_bytes(), &self.m1_commit, p.as_bytes(), &b, &self.call_id) == target {
                    found = Some(tries);
                    break 'search;
                }
                tries += 1;
            }
        }
        let reveal = match found {
            Some(i) => PublicKey::from(&StaticSecret::from(add_small(&self.m1, 8 * i))).to_bytes(),
            None => m1_public,
        };
        (Report { caller_code, callee_code_with_m1, tries, found }, reveal)
    }
}

/// The v1.2 code as `safety::safety_code` computes it (checked against it
/// for the first key), with ring's HMAC: the search's inner loop.
fn fast_code(
    shared: &[u8; 32],
    commit: &[u8; 32],
    caller: &[u8; 32],
    callee: &[u8; 32],
    call_id: &str,
) -> u64 {
    struct Eight;
    impl ring::hkdf::KeyType for Eight {
        fn len(&self) -> usize {
            8
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(shared);
    let info: [&[u8]; 5] = [b"softphone safety code v1.2", commit, caller, callee, call_id.as_bytes()];
    let mut number = [0u8; 8];
    prk.expand(&info, Eight).unwrap().fill(&mut number).unwrap();
    u64::from_be_bytes(number) % 1_000_000
}

fn b64_field(v: &Value, field: &str) -> [u8; 32] {
    decode_public_key(v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}"))).unwrap()
}

/// Starts the proxy in front of `server_url`; its URL, and what it did
/// once the reveal went through.
pub async fn start(server_url: String) -> (String, oneshot::Receiver<Report>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (report_tx, report) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let callee = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (server, _) = tokio_tungstenite::connect_async(&server_url).await.unwrap();
        let (mut to_callee, mut from_callee) = callee.split();
        let (mut to_server, mut from_server) = server.split();
        let mut attack: Option<Attack> = None;
        let mut report_tx = Some(report_tx);
        loop {
            tokio::select! {
                Some(Ok(message)) = from_callee.next() => {
                    let message = match (&message, attack.as_mut()) {
                        (Message::Text(text), Some(attack)) => {
                            let mut v: Value = serde_json::from_str(text).unwrap();
                            if v["type"] == "accept" {
                                attack.callee_key = Some(b64_field(&v, "media_key"));
                                v["media_key"] = encode_public_key(&PublicKey::from(&attack.m2).to_bytes()).into();
                            }
                            Message::Text(v.to_string().into())
                        }
                        _ => message,
                    };
                    if to_server.send(message).await.is_err() { break }
                }
                Some(Ok(message)) = from_server.next() => {
                    let message = match &message {
                        Message::Text(text) => {
                            let mut v: Value = serde_json::from_str(text).unwrap();
                            if v["type"] == "invitation" && v.get("media_commit").is_some() {
                                let call_id = v["call_id"].as_str().unwrap().to_owned();
                                let m1 = grindable_secret();
                                let m1_public = PublicKey::from(&StaticSecret::from(m1)).to_bytes();
                                let m1_commit = commitment(&m1_public, &call_id);
                                let caller_commit = b64_field(&v, "media_commit");
                                v["media_commit"] = encode_public_key(&m1_commit).into();
                                let m2 = StaticSecret::from(grindable_secret());
                                attack = Some(Attack { call_id, caller_commit, m1, m1_commit, m2, callee_key: None });
                            }
                            if v["type"] == "media_reveal" && let Some(attack) = attack.take() {
                                let caller_key = b64_field(&v, "media_key");
                                let (report, reveal) =
                                    tokio::task::spawn_blocking(move || attack.grind(caller_key)).await.unwrap();
                                v["media_key"] = encode_public_key(&reveal).into();
                                if let Some(tx) = report_tx.take() {
                                    let _ = tx.send(report);
                                }
                            }
                            Message::Text(v.to_string().into())
                        }
                        _ => message,
                    };
                    if to_callee.send(message).await.is_err() { break }
                }
                else => break,
            }
        }
    });
    (url, report)
}
