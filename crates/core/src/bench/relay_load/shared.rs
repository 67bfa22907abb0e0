//! The media bench's lighter generator (`--legs-per-socket K`, K above 1):
//! K legs share one UDP socket of the generator, each still with its own
//! leg id and proof key, so the relay does for each packet exactly what it
//! does for phones (leg id, route, rate, one datagram in and one out; each
//! leg bound by answering the relay's challenge, consent checks answered
//! by the receiving task), while the
//! generator reads a batch of datagrams per system call (`recvmmsg`) and
//! runs one receiving task per socket instead of one per leg. The
//! generator shares the machine with the relay it measures: what it does
//! not spend, the relay gets.

use super::{STAMP_BYTES, new_histogram};
use crate::bench::AnyError;
use crate::protocol::MediaInfo;
use crate::protocol::relay::FromRelay;
use crate::protocol::relay::udp::{LegId, LegKeys, UDP_DATA_HEADER_BYTES, UdpControl};
use hdrhistogram::Histogram;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

/// Datagrams read per `recvmmsg`.
const BATCH: usize = 32;
/// Receive buffer per datagram: more than a bench packet.
const DATAGRAM_BYTES: usize = 2048;
/// Socket buffer asked for each way: K legs' worth of packets queue on one socket.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// How long every leg has to be bound.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bind requests not yet answered are sent again this often.
const PROBE_AGAIN: Duration = Duration::from_millis(200);

/// One leg's way out: its socket (shared) and its data header.
pub(super) struct SharedSender {
    /// The socket this leg shares with others, connected to the relay.
    socket: Arc<UdpSocket>,
    /// The data header (kind and leg id), then the payload: reused per packet.
    packet: Vec<u8>,
}

impl SharedSender {
    /// Sends one payload with this leg's id, waiting while the socket is full.
    pub async fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.packet.truncate(UDP_DATA_HEADER_BYTES);
        self.packet.extend_from_slice(payload);
        self.socket.send(&self.packet).await.map(|_| ())
    }
}

/// The generator's sockets, each connected to the relay, and each leg's sender.
pub(super) struct SharedLegs {
    /// Each read by one receiver task, for all of its legs.
    pub sockets: Vec<Arc<UdpSocket>>,
    /// In leg order (caller of call i at 2i, its callee at 2i + 1).
    pub senders: Vec<SharedSender>,
    /// Every leg's keys by its id, for answering the relay's consent checks.
    pub keys: Arc<HashMap<LegId, LegKeys>>,
}

/// Spreads the legs of `infos` over sockets of `per_socket` legs and binds
/// each leg's route at the relay (bind request, challenge, answer) before it returns.
pub(super) async fn bind(infos: &[MediaInfo], per_socket: usize) -> Result<SharedLegs, AnyError> {
    let relay = relay_addr(infos.first().ok_or("no legs")?)?;
    let mut sockets = Vec::new();
    for _ in 0..infos.len().div_ceil(per_socket) {
        sockets.push(Arc::new(socket(relay).await?));
    }
    let legs: Vec<LegKeys> = infos
        .iter()
        .map(|i| i.credential_bytes().ok_or("a media credential that is not 16 bytes of base64url"))
        .map(|c| c.map(|c| LegKeys::derive(&c)))
        .collect::<Result<_, _>>()?;
    bind_all(&sockets, &legs, per_socket).await?;
    let senders = legs
        .iter()
        .enumerate()
        .map(|(leg, k)| SharedSender {
            socket: sockets[leg / per_socket].clone(),
            packet: k.data_header().to_vec(),
        })
        .collect();
    let keys = Arc::new(legs.into_iter().map(|k| (k.id, k)).collect());
    Ok(SharedLegs { sockets, senders, keys })
}

fn relay_addr(info: &MediaInfo) -> Result<SocketAddr, AnyError> {
    let relay = info.relay.as_deref().ok_or("the relay announces no UDP address")?;
    let addr = relay.strip_prefix("udp://").and_then(|a| a.parse().ok());
    Ok(addr.ok_or_else(|| format!("--legs-per-socket needs a relay at udp://IP:PORT, not {relay:?}"))?)
}

async fn socket(relay: SocketAddr) -> Result<UdpSocket, AnyError> {
    let local: SocketAddr = if relay.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse()?;
    let socket = socket2::Socket::new(socket2::Domain::for_address(local), socket2::Type::DGRAM, None)?;
    // Best effort: a smaller buffer only means earlier loss under load.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    socket.connect(relay).await?;
    Ok(socket)
}

/// Binds every leg (token: its leg number) until each is bound.
async fn bind_all(sockets: &[Arc<UdpSocket>], legs: &[LegKeys], per_socket: usize) -> Result<(), AnyError> {
    let by_id: HashMap<LegId, usize> = legs.iter().enumerate().map(|(i, k)| (k.id, i)).collect();
    let mut unanswered: std::collections::BTreeSet<usize> = (0..legs.len()).collect();
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut buf = [0u8; DATAGRAM_BYTES];
    while !unanswered.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("the relay bound no route for {} legs", unanswered.len()).into());
        }
        for &leg in &unanswered {
            let token = (leg as u64).to_be_bytes();
            sockets[leg / per_socket].send(&legs[leg].bind(token)).await?;
        }
        let again = Instant::now() + PROBE_AGAIN;
        for socket in sockets {
            while let Ok(Ok(n)) = tokio::time::timeout_at(again, socket.recv(&mut buf)).await {
                match UdpControl::parse(&buf[..n]) {
                    Some(UdpControl::Challenge { leg, token, cookie }) => {
                        if let Some(&i) = by_id.get(&leg) {
                            socket.send(&legs[i].answer(token, cookie)).await?;
                        }
                    }
                    Some(UdpControl::Bound(token)) => {
                        unanswered.remove(&(u64::from_be_bytes(token) as usize));
                    }
                    None => {}
                }
                if unanswered.is_empty() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Receives one socket's packets until stopped, a batch per system call,
/// answering the relay's consent checks for its legs; returns how many
/// packets and their delays.
pub(super) async fn receive(
    socket: Arc<UdpSocket>,
    keys: Arc<HashMap<LegId, LegKeys>>,
    epoch: Instant,
    mut stopped: watch::Receiver<bool>,
) -> (u64, Histogram<u64>) {
    let mut delays = new_histogram();
    let mut count = 0;
    let mut buffers = vec![[0u8; DATAGRAM_BYTES]; BATCH];
    loop {
        tokio::select! {
            ready = socket.readable() => if ready.is_err() { break },
            _ = stopped.changed() => break,
        }
        let read = socket.try_io(tokio::io::Interest::READABLE, || {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut slices: Vec<[IoSliceMut<'_>; 1]> =
                buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            let results =
                recvmmsg(socket.as_raw_fd(), &mut headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
            Ok(results.map(|m| m.bytes).collect::<Vec<_>>())
        });
        let Ok(lengths) = read else { continue };
        let now = epoch.elapsed().as_nanos() as u64;
        for (buffer, n) in buffers.iter().zip(lengths) {
            if let Some(UdpControl::Challenge { leg, token, cookie }) = UdpControl::parse(&buffer[..n])
                && let Some(k) = keys.get(&leg)
            {
                let _ = socket.try_send(&k.answer(token, cookie));
                continue;
            }
            if let Some(FromRelay::Data(payload)) = FromRelay::parse(&buffer[..n])
                && payload.len() >= STAMP_BYTES
            {
                let stamp = u64::from_be_bytes(payload[8..STAMP_BYTES].try_into().expect("8 bytes"));
                let _ = delays.record((now.saturating_sub(stamp) / 1000).max(1));
                count += 1;
            }
        }
    }
    (count, delays)
}
