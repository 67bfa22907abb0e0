//! The relay's UDP transport: one socket, read by one receive loop per CPU
//! (a loop that finds the socket empty waits; the others go on), so the
//! relay is not held to one core. Two loops may pass one client's packets
//! on out of order, as any UDP path may; the voice jitter buffer orders
//! them by sequence number. (`SO_REUSEPORT` would spread clients over one
//! socket per loop, but would also let any process of the same user join
//! the port.) A data packet
//! is forwarded in place (the credential is cut off by moving the start of
//! the datagram, no copy); a probe is answered to its sender.

use super::{Relay, Source, Verdict};
use crate::protocol::media::{CREDENTIAL_BYTES, FromRelay, KIND_DATA};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Socket buffer asked for each way; Linux caps it at `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Receive buffer: larger than any allowed packet, so an oversize one is seen as such.
const RECEIVE_BYTES: usize = 64 * 1024;

/// Most receive loops, however many CPUs there are.
const MAX_LOOPS: usize = 4;

/// How many receive loops share the socket: one per CPU, so the relay is
/// not held to one core.
pub(super) fn loops() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_LOOPS)
}

/// Binds a non-blocking UDP socket with large buffers.
pub(super) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, None)?;
    // Best effort: a smaller buffer only means earlier loss under load.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Receives and forwards until aborted at shutdown.
pub(super) async fn receive_forever(relay: Arc<Relay>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; RECEIVE_BYTES];
    let mut answer = Vec::with_capacity(16);
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
                // The forwarded packet is the received one minus the credential:
                // its last header byte becomes the data kind.
                let packet = &mut buf[CREDENTIAL_BYTES..n];
                packet[0] = KIND_DATA;
                // Never wait: a full send buffer is loss, like on any UDP path.
                let sent = socket.try_send_to(packet, to);
                if sent.is_ok() {
                    relay.forwarded();
                }
                relay.sent(sent);
            }
            Verdict::Answer(token) => {
                FromRelay::ProbeAnswer(token).encode_into(&mut answer);
                relay.sent(socket.try_send_to(&answer, from));
            }
            _ => {}
        }
    }
}
