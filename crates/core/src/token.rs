//! Login tokens: `v1.<expiry unix seconds>.<base64url(HMAC-SHA256(secret, "v1.<peer_id>.<expiry>"))>`.
//!
//! Minted by `softphone token` (or by whatever issues credentials in a
//! deployment) and checked by the server when it has a secret. Where a
//! client's token comes from, and its renewal, is [`source`].

pub mod source;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret a server accepts (trimmed): below it anyone could
/// guess the key, and an empty one would let anyone mint tokens.
pub const MIN_SECRET_BYTES: usize = 16;

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

/// The expiry in its one spelling: decimal digits, no sign, no leading
/// zero (so `+123` and `0123`, which `u64::from_str` takes, are refused).
fn parse_expiry(text: &str) -> Option<u64> {
    let canonical = text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// Checks `token` for `peer_id` at time `now_unix_secs`. The MAC is checked
/// before the expiry, so a forged token is `Invalid` whatever its date.
pub fn verify(secret: &[u8], peer_id: &str, token: &str, now_unix_secs: u64) -> Result<(), TokenError> {
    expiry_of(secret, peer_id, token, now_unix_secs).map(|_| ())
}

/// [`verify`], returning the token's expiry (Unix seconds) when it is
/// valid: the server closes the session then unless it is renewed.
pub fn expiry_of(secret: &[u8], peer_id: &str, token: &str, now_unix_secs: u64) -> Result<u64, TokenError> {
    let rest = token.strip_prefix("v1.").ok_or(TokenError::Invalid)?;
    let (expiry, tag) = rest.split_once('.').ok_or(TokenError::Invalid)?;
    let expiry = parse_expiry(expiry).ok_or(TokenError::Invalid)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Invalid)?;
    mac(secret, peer_id, expiry).verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
    if expiry <= now_unix_secs {
        return Err(TokenError::Expired);
    }
    Ok(expiry)
}

/// Why a secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    Read {
        /// The file named on the command line.
        path: std::path::PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Trimmed, the secret is shorter than [`MIN_SECRET_BYTES`].
    #[error(
        "secret file {} holds {len} bytes once white space is trimmed; at least {MIN_SECRET_BYTES} are needed",
        path.display()
    )]
    TooShort {
        /// The file named on the command line.
        path: std::path::PathBuf,
        /// Its length, trimmed.
        len: usize,
    },
}

/// Reads a secret file: its content with surrounding white space trimmed,
/// at least [`MIN_SECRET_BYTES`] long.
pub fn read_secret_file(path: &std::path::Path) -> Result<Vec<u8>, SecretError> {
    let raw = std::fs::read(path).map_err(|source| SecretError::Read { path: path.into(), source })?;
    let secret = raw.trim_ascii();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort { path: path.into(), len: secret.len() });
    }
    Ok(secret.to_vec())
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

    #[test]
    fn the_expiry_has_one_spelling() {
        let t = mint(b"s3cret", "alice", 2_000);
        let tag = t.strip_prefix("v1.2000.").expect("minted form");
        // Same MAC input as far as u64::from_str goes, other spellings: all refused.
        for expiry in ["+2000", "02000", "0002000", " 2000", "2000 ", "-2000", "2_000", ""] {
            let other = format!("v1.{expiry}.{tag}");
            assert_eq!(verify(b"s3cret", "alice", &other, 1_000), Err(TokenError::Invalid), "{other}");
        }
        // Even with a MAC made over the odd spelling itself.
        let mut mac = HmacSha256::new_from_slice(b"s3cret").expect("any key length");
        mac.update(b"v1.alice.+2000");
        let odd = format!("v1.+2000.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert_eq!(verify(b"s3cret", "alice", &odd, 1_000), Err(TokenError::Invalid));
        assert_eq!(parse_expiry("0"), Some(0));
        assert_eq!(parse_expiry("18446744073709551616"), None, "past u64");
        assert_eq!(parse_expiry("2000"), Some(2000));
    }

    #[test]
    fn secret_files_shorter_than_16_bytes_trimmed_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        for short in ["", " \n\t \r\n", "  fifteen-bytes!!  \n"] {
            std::fs::write(&path, short).expect("write");
            assert!(matches!(read_secret_file(&path), Err(SecretError::TooShort { .. })), "{short:?}");
        }
        std::fs::write(&path, " \n sixteen-bytes!!! \n").expect("write");
        assert_eq!(read_secret_file(&path).expect("16 bytes"), b"sixteen-bytes!!!");
        let missing = dir.path().join("missing");
        assert!(matches!(read_secret_file(&missing), Err(SecretError::Read { .. })));
    }
}
