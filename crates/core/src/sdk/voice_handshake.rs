//! What one call's invitation entry keeps for built-in voice (see
//! `manual_voice_keys.rs` and `voice.rs` for the API that fills and reads it): plain
//! data and the handshake's steps, so the entries can hold it without
//! depending on the API.
//!
//! The handshake (protocol v1.2, docs/media.md): the caller commits to its
//! key in the invite and reveals it once the callee's key came in
//! `accepted`; the callee keeps the commitment and agrees the call keys
//! only when the revealed key matches it. Each step here is pure: it reads
//! what arrived, moves the [`Handshake`] on and publishes its
//! [`VoiceStatus`]; the call table calls them under its lock.

use crate::protocol::MediaInfo;
use crate::protocol::Role;
use crate::protocol::relay::MEDIA_KEY_BYTES;
use crate::voice::crypto::{CallKeys, LocalKey};
use crate::voice::safety::{self, Exchange};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;
use tokio::sync::watch;
use tokio::time::Instant;

/// An X25519 public key as it travels in `media_key`.
pub type MediaKey = [u8; MEDIA_KEY_BYTES];

/// How long a callee waits after its accept for the caller's reveal.
pub const REVEAL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why voice ends when the revealed key does not match the commitment.
pub const TAMPERED: &str =
    "the caller's key does not match its commitment: someone may be tampering with this call";
/// Why voice does not start when the reveal never came.
pub const NEVER_REVEALED: &str = "the caller never revealed its key";

/// Where a call's voice keys stand, as [`crate::sdk::Voice`] watches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoiceStatus {
    /// Keys not agreed yet (or the relay credential not here yet).
    Waiting,
    /// The keys are agreed and the relay credential is here: voice may start.
    Ready {
        /// The six digits both call screens show.
        safety_code: String,
        /// `false` with a v1.1 peer: the code does not protect the call.
        protected: bool,
    },
    /// No voice for this call, or no more: why, in a sentence for people.
    Failed(String),
    /// The call ended.
    Ended,
}

/// The media facts of one call, kept on its invitation entry.
#[derive(Debug, Default)]
pub(crate) struct MediaSlots {
    /// Our public key, base64url, sent with the invite (v1.1 raw API) or
    /// the accept.
    pub ours: Option<String>,
    /// The other side's public key, as it arrived (caller's in the
    /// invitation from a v1.1 caller, callee's in `accepted`).
    pub theirs: Option<String>,
    /// The caller's commitment, base64url: ours as sent, or theirs as it
    /// arrived in the invitation (v1.2).
    pub commit: Option<String>,
    /// Our way into the relay, once the call is accepted.
    pub relay: Option<MediaInfo>,
    /// The SDK's own handshake, when the app asked for built-in voice
    /// (`offer_voice`, `accept_with_voice`); `None` with the raw key API.
    pub handshake: Option<Handshake>,
}

/// One side's part of the media handshake of one call.
pub(crate) struct Handshake {
    /// Which side we are.
    role: Role,
    /// Our secret key, until the call keys are agreed (then wiped).
    key: Option<LocalKey>,
    /// The agreed keys, until the app takes them (wiped when dropped).
    keys: Option<CallKeys>,
    /// The key the caller revealed and we accepted (callee): a second
    /// reveal with another key means tampering.
    revealed: Option<MediaKey>,
    /// When the callee stops waiting for the reveal.
    pub reveal_by: Option<Instant>,
    /// What the app's [`crate::sdk::Voice`] handles watch.
    status: watch::Sender<VoiceStatus>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake").field("role", &self.role).field("status", &*self.status.borrow()).finish()
    }
}

fn decode<const N: usize>(text: Option<&str>) -> Option<[u8; N]> {
    URL_SAFE_NO_PAD.decode(text?).ok()?.try_into().ok()
}

impl MediaSlots {
    /// The slots of an invitation that arrived with `theirs` and `commit`.
    pub fn offered(theirs: Option<String>, commit: Option<String>) -> MediaSlots {
        MediaSlots { theirs, commit, ..MediaSlots::default() }
    }

    pub fn their_key(&self) -> Option<MediaKey> {
        decode(self.theirs.as_deref())
    }

    /// The caller: a fresh key, committed to for `call_id`.
    pub fn commit_to_new_key(&mut self, call_id: &str) {
        let key = LocalKey::generate();
        self.commit = Some(URL_SAFE_NO_PAD.encode(safety::commitment(&key.public(), call_id)));
        self.handshake = Some(Handshake::new(Role::Caller, key));
    }

    /// The callee: a fresh key, to be sent with the accept.
    pub fn answer_with_new_key(&mut self) {
        let key = LocalKey::generate();
        self.ours = Some(URL_SAFE_NO_PAD.encode(key.public()));
        self.handshake = Some(Handshake::new(Role::Callee, key));
    }

    /// A handle's view of the status, if the SDK runs this call's handshake.
    pub fn watch(&self) -> Option<watch::Receiver<VoiceStatus>> {
        Some(self.handshake.as_ref()?.status.subscribe())
    }

    /// The agreed keys and the relay credential, once, when ready.
    pub fn take_keys(&mut self) -> Option<(CallKeys, MediaInfo)> {
        let relay = self.relay.clone()?;
        Some((self.handshake.as_mut()?.keys.take()?, relay))
    }

    /// The caller got `accepted` (its media facts are in the slots): agree
    /// the keys; the reveal to send, if it may be sent.
    pub fn on_accepted(&mut self, call_id: &str) -> Option<String> {
        let commitment = decode::<32>(self.commit.as_deref())?;
        let theirs = self.their_key();
        let hs = self.handshake.as_mut()?;
        let Some(theirs) = theirs else {
            hs.fail("the other phone sent no voice key: it is older, or has no voice");
            return None;
        };
        let public = hs.agree(&theirs, call_id, Exchange::Committed(commitment))?;
        hs.publish_if_ready(self.relay.is_some());
        Some(URL_SAFE_NO_PAD.encode(public))
    }

    /// The callee's accept was answered (`relay` is its credential, if the
    /// server runs a relay): a v1.1 caller's keys are agreed now, a v1.2
    /// caller's reveal is awaited until `now` + [`REVEAL_WAIT`].
    pub fn on_answered(&mut self, call_id: &str, relay: Option<MediaInfo>, now: Instant) {
        // A plain accept does not ask for the credential; the raw key API
        // (`accept_with_media`) records its own from the reply.
        if self.handshake.is_none() {
            return;
        }
        self.relay = relay;
        let (theirs, committed) = (self.their_key(), self.commit.is_some());
        let has_relay = self.relay.is_some();
        let Some(hs) = self.handshake.as_mut() else { return };
        if !has_relay {
            hs.fail("the server runs no media relay");
        } else if hs.keys.is_some() {
            hs.publish_if_ready(true);
        } else if committed {
            hs.reveal_by = Some(now + REVEAL_WAIT);
        } else if let Some(theirs) = theirs {
            // A v1.1 caller: its key came in the invite, uncommitted.
            hs.agree(&theirs, call_id, Exchange::Uncommitted);
            hs.publish_if_ready(true);
        } else {
            hs.fail("the caller offered no voice");
        }
    }

    /// The callee got the caller's key in `media_reveal`.
    pub fn on_reveal(&mut self, call_id: &str, media_key: &str) {
        let commitment = decode::<32>(self.commit.as_deref());
        let has_relay = self.relay.is_some();
        let Some(hs) = self.handshake.as_mut() else { return };
        // A v1.1 exchange uses no reveal; an ended handshake hears nothing more.
        let Some(commitment) = commitment else { return };
        if matches!(*hs.status.borrow(), VoiceStatus::Failed(_) | VoiceStatus::Ended) {
            return;
        }
        let revealed = decode::<MEDIA_KEY_BYTES>(Some(media_key));
        match (hs.revealed, revealed) {
            (Some(before), Some(now)) if before == now => {}
            (Some(_), _) => hs.fail(TAMPERED),
            (None, Some(key)) if safety::reveal_matches(&commitment, &key, call_id) => {
                hs.revealed = Some(key);
                hs.reveal_by = None;
                if hs.agree(&key, call_id, Exchange::Committed(commitment)).is_some() {
                    hs.publish_if_ready(has_relay);
                }
            }
            (None, _) => hs.fail(TAMPERED),
        }
    }

    /// The reveal did not come in time.
    pub fn on_reveal_overdue(&mut self, now: Instant) {
        let Some(hs) = self.handshake.as_mut() else { return };
        if hs.reveal_by.is_some_and(|by| by <= now) {
            hs.reveal_by = None;
            hs.fail(NEVER_REVEALED);
        }
    }

    /// The call ended (or never was): no voice from now on.
    pub fn on_call_over(&mut self) {
        let Some(hs) = self.handshake.as_mut() else { return };
        hs.reveal_by = None;
        hs.key = None;
        hs.keys = None;
        hs.status.send_if_modified(|status| {
            let open = matches!(status, VoiceStatus::Waiting | VoiceStatus::Ready { .. });
            if open {
                *status = VoiceStatus::Ended;
            }
            open
        });
    }
}

impl Handshake {
    fn new(role: Role, key: LocalKey) -> Handshake {
        let (status, _) = watch::channel(VoiceStatus::Waiting);
        Handshake { role, key: Some(key), keys: None, revealed: None, reveal_by: None, status }
    }

    /// Agrees the keys with `theirs` (our public key back), or fails.
    fn agree(&mut self, theirs: &MediaKey, call_id: &str, exchange: Exchange) -> Option<MediaKey> {
        let key = self.key.take()?;
        let public = key.public();
        match key.agree(theirs, self.role, call_id, exchange) {
            Ok(keys) => {
                self.keys = Some(keys);
                Some(public)
            }
            Err(e) => {
                self.fail(&format!("the other phone's voice key is unusable: {e}"));
                None
            }
        }
    }

    /// Ready once the keys are agreed and the relay credential is here.
    fn publish_if_ready(&mut self, has_relay: bool) {
        let Some(keys) = &self.keys else { return };
        if !has_relay {
            return self.fail("the server runs no media relay");
        }
        let ready = VoiceStatus::Ready { safety_code: keys.safety_code.clone(), protected: keys.protected };
        self.status.send_if_modified(|status| {
            let waiting = *status == VoiceStatus::Waiting;
            if waiting {
                *status = ready;
            }
            waiting
        });
    }

    /// No voice (any more), for `why`; the keys are wiped.
    fn fail(&mut self, why: &str) {
        self.key = None;
        self.keys = None;
        self.reveal_by = None;
        self.status.send_if_modified(|status| {
            let open = matches!(status, VoiceStatus::Waiting | VoiceStatus::Ready { .. });
            if open {
                *status = VoiceStatus::Failed(why.to_owned());
            }
            open
        });
    }
}
