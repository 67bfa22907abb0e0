//! The relay's UDP loop where `recvmmsg` / `sendmmsg` are not available:
//! one datagram per system call, judged and forwarded as in [`super::batch`].

use super::super::{Relay, Source, Verdict};
use crate::protocol::relay::KIND_DATA;
use crate::protocol::relay::udp::LEG_ID_BYTES;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Receive buffer: larger than any allowed packet, so an oversize one is seen as such.
const RECEIVE_BYTES: usize = 64 * 1024;

/// Receives and forwards one datagram at a time until aborted at shutdown.
pub(super) async fn receive_forever(relay: Arc<Relay>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; RECEIVE_BYTES];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            // E.g. an ICMP error reported for an earlier send: nothing to do about it.
            Err(e) => {
                tracing::debug!("relay receive failed: {e}");
                continue;
            }
        };
        match relay.judge(&buf[..n], Source::Udp(from)) {
            Verdict::ForwardUdp(to) => {
                // The forwarded packet is the received one minus the leg id:
                // its last header byte becomes the data kind.
                let packet = &mut buf[LEG_ID_BYTES..n];
                packet[0] = KIND_DATA;
                // Never wait: a full send buffer is loss, like on any UDP path.
                let sent = socket.try_send_to(packet, to);
                if sent.is_ok() {
                    relay.forwarded();
                }
                relay.sent(sent);
            }
            Verdict::Answer(reply) | Verdict::Challenge(reply) => {
                relay.sent(socket.try_send_to(reply.as_bytes(), from));
            }
            _ => {}
        }
    }
}
