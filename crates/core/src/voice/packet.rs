//! The voice packet on the wire: a 10-byte clear header, then the sealed
//! (ChaCha20-Poly1305) body. The header is the AEAD's associated data, so
//! the relay can read it but changing a bit of it makes the packet forged.
//!
//! ```text
//! 0        1        2                 6                 10
//! +--------+--------+-----------------+-----------------+---------------------+
//! |version | flags  | sequence (u32)  | timestamp (u32) | sealed body + tag   |
//! +--------+--------+-----------------+-----------------+---------------------+
//! ```
//!
//! All integers are big-endian. See docs/media.md for the body's layout.

use thiserror::Error;

/// The only version this build speaks; a packet of another version is dropped.
pub const VERSION: u8 = 1;
/// Bytes of the clear header.
pub const HEADER_LEN: usize = 10;
/// Bytes of the Poly1305 tag at the end of every packet.
pub const TAG_LEN: usize = 16;
/// The largest packet accepted: far above an Opus frame at 48 kbit/s
/// (120 bytes) and under any path MTU, so a packet is never fragmented.
pub const MAX_PACKET_LEN: usize = 1200;

/// Flag: the body starts with a report (receiver
/// feedback: loss, round-trip echo) before the Opus frame.
pub const FLAG_REPORT: u8 = 0x01;
/// Flag: the sender's microphone is muted (the frame is silence).
pub const FLAG_MUTED: u8 = 0x02;
/// Flags this version knows; a packet with others set is malformed.
const KNOWN_FLAGS: u8 = FLAG_REPORT | FLAG_MUTED;

/// The clear header of a voice packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Counts packets from 0 per direction; the AEAD nonce, the replay
    /// window's index and the jitter buffer's order.
    pub seq: u32,
    /// The first sample of the frame on the sender's 48 kHz capture clock
    /// (as RTP's timestamp): lets a receiver see sender clock drift.
    pub timestamp: u32,
}

/// Why bytes are not a voice packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("packet of {0} bytes is too short for a header and a tag")]
    TooShort(usize),
    #[error("packet of {0} bytes is over the {MAX_PACKET_LEN}-byte limit")]
    TooLong(usize),
    #[error("packet version {0} is not {VERSION}")]
    Version(u8),
    #[error("packet has unknown flags {0:#04x}")]
    Flags(u8),
    #[error("packet's body of {0} bytes is too short for its report")]
    ReportTooShort(usize),
}

impl Header {
    /// The header's wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = VERSION;
        out[1] = self.flags;
        out[2..6].copy_from_slice(&self.seq.to_be_bytes());
        out[6..10].copy_from_slice(&self.timestamp.to_be_bytes());
        out
    }

    /// Splits a packet into its header and its sealed body (tag included).
    pub fn parse(packet: &[u8]) -> Result<(Header, &[u8]), PacketError> {
        if packet.len() < HEADER_LEN + TAG_LEN {
            return Err(PacketError::TooShort(packet.len()));
        }
        if packet.len() > MAX_PACKET_LEN {
            return Err(PacketError::TooLong(packet.len()));
        }
        if packet[0] != VERSION {
            return Err(PacketError::Version(packet[0]));
        }
        let flags = packet[1];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(PacketError::Flags(flags));
        }
        let seq = u32::from_be_bytes(packet[2..6].try_into().expect("4 bytes"));
        let timestamp = u32::from_be_bytes(packet[6..10].try_into().expect("4 bytes"));
        let header = Header { flags, seq, timestamp };
        Ok((header, &packet[HEADER_LEN..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(header: Header, body_len: usize) -> Vec<u8> {
        let mut bytes = header.encode().to_vec();
        bytes.resize(HEADER_LEN + body_len, 0xAB);
        bytes
    }

    #[test]
    fn header_round_trips_big_endian() {
        let header = Header { flags: FLAG_REPORT, seq: 0x0102_0304, timestamp: 0xA0B0_C0D0 };
        let bytes = packet(header, TAG_LEN + 3);
        assert_eq!(&bytes[..10], &[1, 1, 1, 2, 3, 4, 0xA0, 0xB0, 0xC0, 0xD0]);
        let (parsed, body) = Header::parse(&bytes).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(body.len(), TAG_LEN + 3);
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        let header = Header { flags: 0, seq: 1, timestamp: 2 };
        assert_eq!(Header::parse(&[1, 0, 0]), Err(PacketError::TooShort(3)));
        let long = packet(header, MAX_PACKET_LEN);
        assert_eq!(Header::parse(&long), Err(PacketError::TooLong(MAX_PACKET_LEN + HEADER_LEN)));
        let mut other_version = packet(header, TAG_LEN);
        other_version[0] = 2;
        assert_eq!(Header::parse(&other_version), Err(PacketError::Version(2)));
        let mut unknown_flag = packet(header, TAG_LEN);
        unknown_flag[1] = 0x80;
        assert_eq!(Header::parse(&unknown_flag), Err(PacketError::Flags(0x80)));
    }
}
