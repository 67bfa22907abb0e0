//! What the voice tests of the SDK (`tests/sdk/`) and the app's sound-card
//! rig (`crates/app/tests/sound_card.rs`) share: the test speech, an
//! accepted call through the SDK's media API with both sides' keys and
//! relay credentials, and the two scores of what was heard (the delay by
//! cross-correlation, wideband PESQ).

use crate::support::*;
use softphone_core::protocol::Role;
use softphone_core::relay_link::LinkOptions;
use softphone_core::sdk::{Client, Event, Events};
use softphone_core::voice::CallLink;
use softphone_core::voice::audio::resample::resample_i16;
use softphone_core::voice::codec::SAMPLE_RATE;
use softphone_core::voice::crypto::LocalKey;
use softphone_core::voice::safety::Exchange;

/// Three Harvard sentences (docs/media.md); the path works from crates/core
/// and crates/app alike.
pub(crate) const SPEECH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/speech-harvard-22k.wav");

/// The lag (48 kHz samples) at which `heard` best matches `sent`, up to
/// `max_lag`, and the normalised correlation there: coarse at 4 kHz, then
/// exact around it.
pub(crate) fn best_lag(sent: &[i16], heard: &[i16], max_lag: usize) -> (usize, f64) {
    let to_f64 = |s: &[i16]| s.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
    let score = |a: &[f64], b: &[f64], lag: usize| -> f64 {
        a.iter().zip(b.get(lag..).unwrap_or(&[])).map(|(p, q)| p * q).sum()
    };
    let best = |a: &[f64], b: &[f64], lags: std::ops::Range<usize>| {
        lags.max_by(|&x, &y| score(a, b, x).total_cmp(&score(a, b, y))).unwrap()
    };
    let (a4, b4) =
        (to_f64(&resample_i16(sent, SAMPLE_RATE, 4000)), to_f64(&resample_i16(heard, SAMPLE_RATE, 4000)));
    let coarse = best(&a4, &b4, 0..max_lag / 12) * 12;
    let (a, b) = (to_f64(sent), to_f64(heard));
    let lag = best(&a, &b, coarse.saturating_sub(24)..coarse + 24);
    let overlap = &b[lag.min(b.len())..];
    let n = a.len().min(overlap.len());
    let energy = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>();
    let norm = score(&a[..n], overlap, 0) / (energy(&a[..n]) * energy(&overlap[..n])).sqrt().max(1.0);
    (lag, norm)
}

/// Wideband PESQ (P.862.2) of `heard` against `sent` after removing `lag`.
pub(crate) fn pesq_wb(sent: &[i16], heard: &[i16], lag: usize) -> f32 {
    let aligned = &heard[lag.min(heard.len())..];
    let n = sent.len().min(aligned.len());
    let reference = resample_i16(&sent[..n], SAMPLE_RATE, 16_000);
    let degraded = resample_i16(&aligned[..n], SAMPLE_RATE, 16_000);
    pesq::pesq_wb(&reference, &degraded).unwrap()
}

/// An accepted call from alice to bob through the SDK's media API: both
/// sides' call keys and relay credentials.
pub(crate) struct MediaCall {
    pub alice: (Client, Events),
    pub bob: (Client, Events),
    pub call_id: String,
    pub alice_keys: softphone_core::voice::crypto::CallKeys,
    pub bob_keys: softphone_core::voice::crypto::CallKeys,
    pub alice_link: CallLink,
    pub bob_link: CallLink,
}

pub(crate) async fn media_call(url: &str, options: LinkOptions) -> MediaCall {
    let (alice, mut alice_events) = connect(url, "alice").await;
    let (bob, mut bob_events) = connect(url, "bob").await;
    let alice_key = LocalKey::generate();
    let alice_public = alice_key.public();
    let invitation = alice.create_local_invitation("bob").unwrap();
    invitation.set_media_key(&alice_public).unwrap();
    invitation.send().await.unwrap();
    assert!(invitation.set_media_key(&alice_public).is_err(), "no new key once sent");
    let call_id = next_invitation(&mut bob_events).await;
    let ringing = bob.remote_invitation(&call_id).unwrap();
    assert_eq!(ringing.remote_media_key(), Some(alice_public), "the caller's key reaches the callee");
    let bob_key = LocalKey::generate();
    let bob_public = bob_key.public();
    let bob_media = ringing.accept_with_media(&bob_public).await.unwrap().expect("the callee's credential");
    assert_eq!(ringing.relay(), Some(bob_media.clone()));
    wait_for(&mut alice_events, "accepted", |e| matches!(e, Event::LocalInvitationAccepted { .. })).await;
    assert_eq!(invitation.remote_media_key(), Some(bob_public), "the callee's key reaches the caller");
    let alice_media = invitation.relay().expect("the caller's credential");
    assert_ne!(alice_media.credential, bob_media.credential);
    let link = |media| CallLink { media, server_url: url.to_owned(), options: options.clone() };
    MediaCall {
        alice_keys: alice_key.agree(&bob_public, Role::Caller, &call_id, Exchange::Uncommitted).unwrap(),
        bob_keys: bob_key.agree(&alice_public, Role::Callee, &call_id, Exchange::Uncommitted).unwrap(),
        alice_link: link(alice_media),
        bob_link: link(bob_media),
        alice: (alice, alice_events),
        bob: (bob, bob_events),
        call_id,
    }
}
