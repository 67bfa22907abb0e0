//! The relay's UDP transport: one socket, read by one receive loop per CPU
//! (a loop that finds the socket empty waits; the others go on), so the
//! relay is not held to one core. Two loops may pass one client's packets
//! on out of order, as any UDP path may; the voice jitter buffer orders
//! them by sequence number. (`SO_REUSEPORT` would spread clients over one
//! socket per loop, but would also let any process of the same user join
//! the port.) A data packet
//! is forwarded in place (the leg id is cut off by moving the start of
//! the datagram, no copy); a bind request or an answer is replied to its sender. On Linux a
//! loop takes a batch of datagrams per system call and sends the batch's
//! forwards in one ([`batch`]); elsewhere one datagram at a time.

use super::Relay;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

#[cfg(target_os = "linux")]
pub(super) mod batch;
#[cfg(not(target_os = "linux"))]
mod single;

/// Socket buffer asked for each way; Linux caps it at `net.core.rmem_max` / `wmem_max`.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

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
    #[cfg(target_os = "linux")]
    receive_batches(relay, socket).await;
    #[cfg(not(target_os = "linux"))]
    single::receive_forever(relay, socket).await;
}

/// Carries batches until aborted: waits until the socket is readable, then
/// takes one batch; going back through `readable` between batches keeps
/// tokio's budget (a loop that never waits would starve the signaling
/// tasks on its thread), and `try_io` clears the readiness once the
/// socket is empty.
#[cfg(target_os = "linux")]
async fn receive_batches(relay: Arc<Relay>, socket: Arc<UdpSocket>) {
    let mut batch = batch::Batch::new(relay.limits.max_packet_bytes);
    loop {
        if let Err(e) = socket.readable().await {
            tracing::debug!("relay socket not readable: {e}");
            continue;
        }
        match socket.try_io(tokio::io::Interest::READABLE, || batch.carry(&relay, &*socket)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // E.g. an ICMP error reported for an earlier send: nothing to do about it.
            Err(e) => tracing::debug!("relay receive failed: {e}"),
        }
    }
}
