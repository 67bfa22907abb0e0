//! The media relay's part of the protocol (the additive `media*` fields and
//! the relay's packets): the `media` object that hands a participant its
//! relay credential, the optional `media_key` that carries a
//! side's X25519 public key, the v1.2 `media_commit` (the caller's hash
//! commitment to its key), and the framing of the relay's packets (UDP
//! datagrams or binary frames on the WebSocket path `/media`).
//!
//! No I/O: the server's relay and the client's relay link both frame and
//! parse packets here, so they agree by construction. `docs/relay.md` is the
//! prose version. [`ToRelay`] is the `/media` WebSocket's framing; UDP has
//! its own ([`udp`]), in which the credential never travels.

use super::ProtocolError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

pub mod udp;

/// Bytes of a relay credential (random, per call and participant).
pub const CREDENTIAL_BYTES: usize = 16;
/// Bytes of an X25519 public key in `media_key`.
pub const MEDIA_KEY_BYTES: usize = 32;
/// Bytes of the token a probe carries and its answer echoes.
pub const PROBE_TOKEN_BYTES: usize = 8;
/// The WebSocket path of the relay's fallback transport.
pub const MEDIA_WS_PATH: &str = "/media";

/// A relay credential: who may send into the relay for one call leg.
pub type Credential = [u8; CREDENTIAL_BYTES];

/// First byte of a data packet, both directions.
pub const KIND_DATA: u8 = 0x01;
/// First byte of a probe (client to relay): "bind me here and answer".
pub const KIND_PROBE: u8 = 0x02;
/// First byte of a probe's answer (relay to client).
pub const KIND_PROBE_ANSWER: u8 = 0x03;

/// Where and how one participant of an accepted call reaches the relay;
/// the `media` field of `accepted` (caller) and of the accept's `ok` (callee).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// `udp://HOST:PORT` of the relay's UDP socket; absent when the server
    /// offers no UDP. An unspecified HOST (`0.0.0.0`, `[::]`) means "the
    /// host of the signaling URL".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// The WebSocket path of the fallback, on the signaling server's own
    /// host and port (`/media`).
    pub ws: String,
    /// This participant's credential, base64url without padding.
    pub credential: String,
}

impl MediaInfo {
    /// The credential as bytes, or `None` when it is not 16 bytes of base64url.
    pub fn credential_bytes(&self) -> Option<Credential> {
        decode_fixed::<CREDENTIAL_BYTES>(&self.credential)
    }
}

/// Encodes a credential for the `media` object.
pub fn encode_credential(credential: &Credential) -> String {
    URL_SAFE_NO_PAD.encode(credential)
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    bytes.try_into().ok()
}

/// Checks an optional `media_key`: absent, or 32 bytes in base64url without padding.
pub fn check_media_key(key: &Option<String>) -> Result<(), ProtocolError> {
    match key {
        Some(k) if decode_fixed::<MEDIA_KEY_BYTES>(k).is_none() => Err(ProtocolError::invalid_argument(
            format!("media_key must be {MEDIA_KEY_BYTES} bytes in base64url without padding"),
        )),
        _ => Ok(()),
    }
}

/// Bytes of a v1.2 `media_commit` (a SHA-256 digest).
pub const MEDIA_COMMIT_BYTES: usize = 32;

/// Checks an optional `media_commit` (v1.2): absent, or 32 bytes in
/// base64url without padding, and never beside a `media_key` (a v1.2
/// caller commits to its key instead of sending it).
pub fn check_media_commit(commit: &Option<String>, key: &Option<String>) -> Result<(), ProtocolError> {
    let Some(commit) = commit else { return Ok(()) };
    if decode_fixed::<MEDIA_COMMIT_BYTES>(commit).is_none() {
        return Err(ProtocolError::invalid_argument(format!(
            "media_commit must be {MEDIA_COMMIT_BYTES} bytes in base64url without padding"
        )));
    }
    if key.is_some() {
        return Err(ProtocolError::invalid_argument(
            "an invite carries media_commit (v1.2) or media_key (v1.1), not both",
        ));
    }
    Ok(())
}

/// A packet a client sends into the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToRelay<'a> {
    /// Opaque payload for the other participant.
    Data { credential: Credential, payload: &'a [u8] },
    /// Binds the sender's address (or WebSocket) to its leg; answered with the token.
    Probe { credential: Credential, token: [u8; PROBE_TOKEN_BYTES] },
}

/// A packet the relay sends to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromRelay<'a> {
    /// The other participant's opaque payload.
    Data(&'a [u8]),
    /// The answer to the probe that carried this token.
    ProbeAnswer([u8; PROBE_TOKEN_BYTES]),
}

/// The length of a client's data packet header (kind and credential).
pub const DATA_HEADER_BYTES: usize = 1 + CREDENTIAL_BYTES;

impl<'a> ToRelay<'a> {
    /// Reads a packet; `None` for anything malformed.
    pub fn parse(packet: &'a [u8]) -> Option<ToRelay<'a>> {
        let (&kind, rest) = packet.split_first()?;
        let credential: Credential = rest.get(..CREDENTIAL_BYTES)?.try_into().ok()?;
        let rest = &rest[CREDENTIAL_BYTES..];
        match kind {
            KIND_DATA => Some(ToRelay::Data { credential, payload: rest }),
            KIND_PROBE => Some(ToRelay::Probe { credential, token: rest.try_into().ok()? }),
            _ => None,
        }
    }

    /// Frames this packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DATA_HEADER_BYTES + 64);
        match self {
            ToRelay::Data { credential, payload } => {
                out.push(KIND_DATA);
                out.extend_from_slice(credential);
                out.extend_from_slice(payload);
            }
            ToRelay::Probe { credential, token } => {
                out.push(KIND_PROBE);
                out.extend_from_slice(credential);
                out.extend_from_slice(token);
            }
        }
        out
    }
}

/// The header of a client's data packet, to which the payload is appended.
pub fn data_header(credential: &Credential) -> [u8; DATA_HEADER_BYTES] {
    let mut header = [0u8; DATA_HEADER_BYTES];
    header[0] = KIND_DATA;
    header[1..].copy_from_slice(credential);
    header
}

impl<'a> FromRelay<'a> {
    /// Reads a packet; `None` for anything malformed.
    pub fn parse(packet: &'a [u8]) -> Option<FromRelay<'a>> {
        let (&kind, rest) = packet.split_first()?;
        match kind {
            KIND_DATA => Some(FromRelay::Data(rest)),
            KIND_PROBE_ANSWER => Some(FromRelay::ProbeAnswer(rest.try_into().ok()?)),
            _ => None,
        }
    }

    /// Frames this packet into `out` (cleared first), so a hot loop reuses one buffer.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        match self {
            FromRelay::Data(payload) => {
                out.push(KIND_DATA);
                out.extend_from_slice(payload);
            }
            FromRelay::ProbeAnswer(token) => {
                out.push(KIND_PROBE_ANSWER);
                out.extend_from_slice(token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_malformed_ones_are_refused() {
        let credential = [7u8; CREDENTIAL_BYTES];
        let data = ToRelay::Data { credential, payload: b"hello" };
        assert_eq!(ToRelay::parse(&data.encode()), Some(data));
        assert_eq!(&data.encode()[..DATA_HEADER_BYTES], &data_header(&credential));
        let probe = ToRelay::Probe { credential, token: [1; PROBE_TOKEN_BYTES] };
        assert_eq!(ToRelay::parse(&probe.encode()), Some(probe));
        assert_eq!(ToRelay::parse(&[]), None);
        assert_eq!(ToRelay::parse(&[KIND_DATA, 1, 2]), None, "short credential");
        assert_eq!(ToRelay::parse(&[9; 40]), None, "unknown kind");
        let mut short_probe = probe.encode();
        short_probe.pop();
        assert_eq!(ToRelay::parse(&short_probe), None);
        let mut out = Vec::new();
        FromRelay::Data(b"hi").encode_into(&mut out);
        assert_eq!(FromRelay::parse(&out), Some(FromRelay::Data(b"hi")));
        FromRelay::ProbeAnswer([3; PROBE_TOKEN_BYTES]).encode_into(&mut out);
        assert_eq!(FromRelay::parse(&out), Some(FromRelay::ProbeAnswer([3; PROBE_TOKEN_BYTES])));
        assert_eq!(FromRelay::parse(&[KIND_PROBE, 0]), None);
    }

    #[test]
    fn media_keys_and_credentials_are_checked_for_length() {
        assert!(check_media_key(&None).is_ok());
        assert!(check_media_key(&Some(URL_SAFE_NO_PAD.encode([0u8; 32]))).is_ok());
        let e = check_media_key(&Some(URL_SAFE_NO_PAD.encode([0u8; 31]))).unwrap_err();
        assert!(e.message.contains("media_key"), "{e}");
        assert!(check_media_key(&Some("not base64!".into())).is_err());
        let commit = Some(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert!(check_media_commit(&None, &None).is_ok());
        assert!(check_media_commit(&commit, &None).is_ok());
        let e = check_media_commit(&Some(URL_SAFE_NO_PAD.encode([1u8; 33])), &None).unwrap_err();
        assert!(e.message.contains("media_commit"), "{e}");
        assert!(check_media_commit(&Some(format!("{}=", URL_SAFE_NO_PAD.encode([1u8; 32]))), &None).is_err());
        let both = check_media_commit(&commit, &Some(URL_SAFE_NO_PAD.encode([0u8; 32]))).unwrap_err();
        assert!(both.message.contains("not both"), "{both}");
        let info =
            MediaInfo { relay: None, ws: MEDIA_WS_PATH.into(), credential: encode_credential(&[5; 16]) };
        assert_eq!(info.credential_bytes(), Some([5; 16]));
        let bad = MediaInfo { credential: "abc".into(), ..info };
        assert_eq!(bad.credential_bytes(), None);
    }
}
