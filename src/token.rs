//! Login tokens: `v1.<expiry unix seconds>.<base64url(HMAC-SHA256(secret, "v1.<peer_id>.<expiry>"))>`.
//!
//! Minted by `softphone token` (or by whatever issues credentials in a
//! deployment) and checked by the server when it has a secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused; each maps to its protocol error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the `v1.<expiry>.<mac>` form, for another peer, or a bad MAC.
    #[error("the token is not valid for this peer")]
    Invalid,
    /// A genuine token whose expiry has passed.
    #[error("the token has expired")]
    Expired,
}

fn mac(secret: &[u8], peer_id: &str, expiry: u64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("v1.{peer_id}.{expiry}").as_bytes());
    mac
}

/// A token for `peer_id` valid until `expiry_unix_secs`.
pub fn mint(secret: &[u8], peer_id: &str, expiry_unix_secs: u64) -> String {
    let tag = mac(secret, peer_id, expiry_unix_secs).finalize().into_bytes();
    format!("v1.{expiry_unix_secs}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks `token` for `peer_id` at time `now_unix_secs`. The MAC is checked
/// before the expiry, so a forged token is `Invalid` whatever its date.
pub fn verify(secret: &[u8], peer_id: &str, token: &str, now_unix_secs: u64) -> Result<(), TokenError> {
    let rest = token.strip_prefix("v1.").ok_or(TokenError::Invalid)?;
    let (expiry, tag) = rest.split_once('.').ok_or(TokenError::Invalid)?;
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Invalid)?;
    mac(secret, peer_id, expiry).verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
    if expiry <= now_unix_secs {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Reads a secret file: its content with surrounding white space trimmed.
pub fn read_secret_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    Ok(raw.trim_ascii().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let t = mint(b"s3cret", "alice", 2_000);
        assert!(t.starts_with("v1.2000."));
        assert_eq!(verify(b"s3cret", "alice", &t, 1_999), Ok(()));
        assert_eq!(verify(b"s3cret", "alice", &t, 2_000), Err(TokenError::Expired));
        assert_eq!(verify(b"s3cret", "bob", &t, 1_000), Err(TokenError::Invalid));
        assert_eq!(verify(b"other", "alice", &t, 1_000), Err(TokenError::Invalid));
        let forged = t.replace("v1.2000.", "v1.9999.");
        assert_eq!(verify(b"s3cret", "alice", &forged, 1_000), Err(TokenError::Invalid));
        for junk in ["", "v1.", "v1.x.y", "v2.2000.abc", "v1.2000.!!!"] {
            assert_eq!(verify(b"s3cret", "alice", junk, 1_000), Err(TokenError::Invalid), "{junk}");
        }
    }
}
