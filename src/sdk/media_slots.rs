//! What one call's invitation entry keeps for built-in voice (see
//! `media.rs` for the API that fills and reads it): plain data, so the
//! entries can hold it without depending on the API.

use crate::protocol::MediaInfo;
use crate::protocol::media::MEDIA_KEY_BYTES;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An X25519 public key as it travels in `media_key`.
pub type MediaKey = [u8; MEDIA_KEY_BYTES];

/// The media facts of one call, kept on its invitation entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MediaSlots {
    /// Our public key, base64url, sent with the invite or the accept.
    pub ours: Option<String>,
    /// The other side's public key, as it arrived (caller's in the
    /// invitation, callee's in `accepted`).
    pub theirs: Option<String>,
    /// Our way into the relay, once the call is accepted.
    pub relay: Option<MediaInfo>,
}

impl MediaSlots {
    /// The slots of an invitation that arrived with `theirs`.
    pub fn offered(theirs: Option<String>) -> MediaSlots {
        MediaSlots { theirs, ..MediaSlots::default() }
    }

    pub fn their_key(&self) -> Option<MediaKey> {
        let bytes = URL_SAFE_NO_PAD.decode(self.theirs.as_deref()?).ok()?;
        bytes.try_into().ok()
    }
}
