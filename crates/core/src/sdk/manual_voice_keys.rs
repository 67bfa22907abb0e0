//! The SDK's media additions (beyond Agora), by hand (v1.1; `voice.rs`
//! runs the v1.2 handshake instead and is what the app, the peer and
//! `echo` use): each side's X25519 public
//! key travels in the invite and the accept (`media_key`), and the server
//! hands each participant its relay credential (`media`): the caller in
//! `accepted`, the callee in its accept's `ok`.
//!
//! Events stay as they were; what arrives is kept on the invitation, so an
//! app looks the invitation up by `call_id` after `LocalInvitationAccepted`
//! or `RemoteInvitationReceived` and reads it there:
//! [`LocalInvitation::set_media_key`] before sending, then
//! [`LocalInvitation::remote_media_key`] and [`LocalInvitation::relay`]
//! once accepted; [`RemoteInvitation::remote_media_key`] when it rings,
//! and [`RemoteInvitation::accept_with_media`], whose reply is the
//! callee's relay credential.

use super::invitation::{LocalPhase, RemoteInvitationState, lock};
pub use super::voice_handshake::MediaKey;
use super::{Client, Error, LocalInvitation, RemoteInvitation, Reply};
use crate::protocol::{MediaInfo, OkResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::FutureExt;

fn encode(key: &MediaKey) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

impl LocalInvitation {
    /// Offers our X25519 public key for end-to-end encrypted voice; sent
    /// with the invite, so only before it is sent (ALREADY_SENT after).
    pub fn set_media_key(&self, key: &MediaKey) -> Result<(), Error> {
        let mut entry = lock(&self.entry);
        if !matches!(entry.phase, LocalPhase::Unsent) {
            return Err(Error::AlreadySent("the invitation has been sent; it can no longer change".into()));
        }
        entry.media.ours = Some(encode(key));
        Ok(())
    }

    /// The callee's public key from its accept; `None` before accept, or
    /// when it sent none (or one that is not 32 bytes of base64url).
    pub fn remote_media_key(&self) -> Option<MediaKey> {
        lock(&self.entry).media.their_key()
    }

    /// Our relay credential from `accepted`; `None` before accept, or when
    /// the server runs without a relay (`--no-media`).
    pub fn relay(&self) -> Option<MediaInfo> {
        lock(&self.entry).media.relay.clone()
    }
}

impl RemoteInvitation {
    /// The caller's public key from the invitation, if it sent a valid one.
    pub fn remote_media_key(&self) -> Option<MediaKey> {
        lock(&self.entry).media.their_key()
    }

    /// Our relay credential, once [`accept_with_media`](Self::accept_with_media) was answered.
    pub fn relay(&self) -> Option<MediaInfo> {
        lock(&self.entry).media.relay.clone()
    }

    /// [`Client::accept_with_media`] on this invitation.
    pub fn accept_with_media(&self, key: &MediaKey) -> Reply<Option<MediaInfo>> {
        self.client.accept_with_media(self, key)
    }
}

impl Client {
    /// Accepts like [`Client::accept_remote_invitation`], sending our
    /// public key; the reply is our relay credential (`None` when the
    /// server runs without a relay). The same errors as a plain accept.
    pub fn accept_with_media(
        &self,
        invitation: &RemoteInvitation,
        key: &MediaKey,
    ) -> Reply<Option<MediaInfo>> {
        {
            let mut entry = lock(&invitation.entry);
            // Only a ringing invitation takes a key; the accept below
            // refuses the others with the usual error.
            if entry.phase.state() == RemoteInvitationState::InvitationReceived {
                entry.media.ours = Some(encode(key));
            }
        }
        let entry = invitation.entry.clone();
        self.accept_remote_invitation_raw(invitation)
            .map(move |reply| {
                reply.map(|ok| match ok {
                    OkResult::Media { media } => {
                        lock(&entry).media.relay = Some(media.clone());
                        Some(media)
                    }
                    _ => None,
                })
            })
            .boxed()
    }
}
