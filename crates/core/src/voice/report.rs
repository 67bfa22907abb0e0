//! Receiver feedback carried inside the sealed body of some packets (flag
//! `FLAG_REPORT`): the loss this side measures, so the other side's
//! encoder can size its FEC, and a time echo for the round-trip time (as
//! RTCP's sender and receiver reports, in 11 bytes).

use super::packet::PacketError;

/// Bytes of a report on the wire.
pub const REPORT_LEN: usize = 11;
/// `echo_ms` when nothing has been received yet.
pub const NO_ECHO: u32 = u32::MAX;
/// `loss_pct` before a full second of packets has been measured.
pub const LOSS_UNKNOWN: u8 = u8::MAX;

/// See the module documentation. Times are milliseconds on the clock of
/// the side that wrote them (since its session began), so no clock sync
/// is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// When this report was sent, on the sender's clock.
    pub send_ms: u32,
    /// The `send_ms` of the newest report received from the other side,
    /// returned so it can compute the round trip; [`NO_ECHO`] if none.
    pub echo_ms: u32,
    /// How long that report was held here before this one went out.
    pub hold_ms: u16,
    /// Percent of the other side's packets lost on the way here, or
    /// [`LOSS_UNKNOWN`].
    pub loss_pct: u8,
}

impl Report {
    pub fn encode(&self) -> [u8; REPORT_LEN] {
        let mut out = [0u8; REPORT_LEN];
        out[..4].copy_from_slice(&self.send_ms.to_be_bytes());
        out[4..8].copy_from_slice(&self.echo_ms.to_be_bytes());
        out[8..10].copy_from_slice(&self.hold_ms.to_be_bytes());
        out[10] = self.loss_pct;
        out
    }

    /// The report at the start of `body` and the Opus frame after it.
    pub fn split(body: &[u8]) -> Result<(Report, &[u8]), PacketError> {
        if body.len() < REPORT_LEN {
            return Err(PacketError::ReportTooShort(body.len()));
        }
        let word =
            |range: std::ops::Range<usize>| u32::from_be_bytes(body[range].try_into().expect("4 bytes"));
        let report = Report {
            send_ms: word(0..4),
            echo_ms: word(4..8),
            hold_ms: u16::from_be_bytes(body[8..10].try_into().expect("2 bytes")),
            loss_pct: if body[10] == LOSS_UNKNOWN { LOSS_UNKNOWN } else { body[10].min(100) },
        };
        Ok((report, &body[REPORT_LEN..]))
    }

    /// The reported loss, if measured yet.
    pub fn loss(&self) -> Option<f32> {
        (self.loss_pct != LOSS_UNKNOWN).then_some(f32::from(self.loss_pct))
    }

    /// The round trip seen from the side that receives this report at
    /// `now_ms`, if it echoes one of that side's reports.
    pub fn round_trip_ms(&self, now_ms: u32) -> Option<u32> {
        if self.echo_ms == NO_ECHO {
            return None;
        }
        let rtt = now_ms.wrapping_sub(self.echo_ms).checked_sub(u32::from(self.hold_ms))?;
        // Anything above ten seconds is a confused echo, not a path.
        (rtt < 10_000).then_some(rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_and_gives_the_round_trip_time() {
        let report = Report { send_ms: 7, echo_ms: 1000, hold_ms: 30, loss_pct: 12 };
        let mut body = report.encode().to_vec();
        body.extend_from_slice(b"opus");
        let (parsed, rest) = Report::split(&body).unwrap();
        assert_eq!((parsed, rest), (report, &b"opus"[..]));
        assert_eq!(parsed.round_trip_ms(1100), Some(70));
        assert_eq!(parsed.round_trip_ms(1010), None, "hold longer than the trip");
        let none = Report { echo_ms: NO_ECHO, ..report };
        assert_eq!(none.round_trip_ms(5000), None);
        assert_eq!(parsed.loss(), Some(12.0));
        assert_eq!(Report { loss_pct: LOSS_UNKNOWN, ..report }.loss(), None);
        assert_eq!(Report::split(&body[..5]), Err(PacketError::ReportTooShort(5)));
    }
}
