//! Batched UDP for the relay on Linux: one `recvmmsg` takes up to [`BATCH`]
//! datagrams off the socket, each is judged on its own exactly as a single
//! one would be (credential, size, rate, route; drops counted), and one
//! `sendmmsg` sends every forward and probe answer of the batch, each to its
//! own address. That saves the two system calls per packet (their entry
//! and exit, and the empty reads between bursts); the kernel's work for
//! each datagram stays, and is most of the cost (`docs/media.md`, "Relay
//! capacity"). The rules are the table's, untouched. The whole batch is
//! carried without an `.await`, so the system-call headers (which hold raw
//! pointers) never live across one.

use super::super::{Relay, Source, Verdict};
use crate::protocol::relay::KIND_DATA;
use crate::protocol::relay::udp::LEG_ID_BYTES;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams taken per `recvmmsg` (and so sent at most per `sendmmsg`).
pub(crate) const BATCH: usize = 32;
/// No UDP datagram is larger.
const LARGEST_DATAGRAM: usize = 65_536;

/// A datagram of the batch to send: which buffer, which bytes of it, where.
struct Outgoing {
    /// The buffer it is in (its received datagram, rewritten in place).
    buffer: usize,
    /// Where it starts in that buffer (a forward skips the leg id).
    start: usize,
    /// How long it is.
    len: usize,
    /// Where it goes.
    to: SocketAddr,
    /// A forward is counted as such once sent; a challenge or bound notice is not.
    forward: bool,
}

/// One receive loop's buffers, reused batch after batch.
pub(crate) struct Batch {
    /// One buffer per datagram, one byte longer than the largest allowed
    /// packet: a datagram that fills it is over the limit (the kernel cut it)
    /// and is judged oversize like any other.
    buffers: Vec<Vec<u8>>,
    /// Length and sender of each datagram of the last receive, in order
    /// (a datagram socket always reports the sender; one without is skipped).
    received: Vec<(usize, Option<SocketAddr>)>,
    /// What the last judging decided to send.
    outgoing: Vec<Outgoing>,
}

/// What one batch did: datagrams received and datagrams sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Carried {
    /// Datagrams taken off the socket, whatever became of them.
    pub received: usize,
    /// Forwards and probe answers the kernel accepted.
    pub sent: usize,
}

impl Batch {
    /// Buffers for packets of up to `max_packet_bytes`.
    pub fn new(max_packet_bytes: usize) -> Batch {
        let size = (max_packet_bytes + 1).min(LARGEST_DATAGRAM);
        Batch {
            buffers: (0..BATCH).map(|_| vec![0; size]).collect(),
            received: Vec::with_capacity(BATCH),
            outgoing: Vec::with_capacity(BATCH),
        }
    }

    /// Receives what the socket holds (up to [`BATCH`]), judges each
    /// datagram and sends what is to be sent. `WouldBlock` when the socket
    /// was empty, so tokio's readiness is cleared by `try_io`.
    pub fn carry(&mut self, relay: &Relay, socket: &impl AsRawFd) -> std::io::Result<Carried> {
        let fd = socket.as_raw_fd();
        // Created per batch: they hold raw pointers (not `Send`) and must not
        // outlive this call. The send reuses the receive's headers, whose
        // address slots the receive has filled for at least as many
        // datagrams as are sent (nix reads them back for each one sent).
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        self.receive(fd, &mut headers)?;
        self.judge(relay);
        let sent = self.send(relay, fd, &mut headers);
        Ok(Carried { received: self.received.len(), sent })
    }

    fn receive(&mut self, fd: RawFd, headers: &mut MultiHeaders<SockaddrStorage>) -> std::io::Result<()> {
        self.received.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            self.buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let results = recvmmsg(fd, headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
        for message in results {
            self.received.push((message.bytes, message.address.as_ref().and_then(socket_addr)));
        }
        Ok(())
    }

    /// Judges each received datagram on its own and lines up the sends.
    fn judge(&mut self, relay: &Relay) {
        self.outgoing.clear();
        for (i, &(n, from)) in self.received.iter().enumerate() {
            let Some(from) = from else { continue };
            let buffer = &mut self.buffers[i];
            match relay.judge(&buffer[..n], Source::Udp(from)) {
                Verdict::ForwardUdp(to) => {
                    // The forwarded packet is the received one minus the
                    // leg id: its last header byte becomes the data kind.
                    buffer[LEG_ID_BYTES] = KIND_DATA;
                    let len = n - LEG_ID_BYTES;
                    self.outgoing.push(Outgoing { buffer: i, start: LEG_ID_BYTES, len, to, forward: true });
                }
                Verdict::Answer(reply) | Verdict::Challenge(reply) => {
                    // A reply is never longer than what it answers (a bind
                    // request is padded to a challenge's size): written over it.
                    let reply = reply.as_bytes();
                    buffer[..reply.len()].copy_from_slice(reply);
                    let len = reply.len();
                    self.outgoing.push(Outgoing { buffer: i, start: 0, len, to: from, forward: false });
                }
                _ => {}
            }
        }
    }

    /// Sends every outgoing datagram, never waiting: one the kernel refuses
    /// (a full send buffer, an unreachable address) is counted as a failed
    /// send and the rest still go. Returns how many were sent.
    fn send(&self, relay: &Relay, fd: RawFd, headers: &mut MultiHeaders<SockaddrStorage>) -> usize {
        let mut next = 0;
        let mut sent = 0;
        while next < self.outgoing.len() {
            let pending = &self.outgoing[next..];
            let slices: Vec<[IoSlice<'_>; 1]> = pending
                .iter()
                .map(|o| [IoSlice::new(&self.buffers[o.buffer][o.start..o.start + o.len])])
                .collect();
            let addrs: Vec<Option<SockaddrStorage>> =
                pending.iter().map(|o| Some(SockaddrStorage::from(o.to))).collect();
            match sendmmsg(fd, headers, slices.iter(), &addrs, [], MsgFlags::MSG_DONTWAIT) {
                Ok(results) => {
                    let n = results.count();
                    if n == 0 {
                        // sendmmsg(2) sends one or fails; never loop on nothing.
                        pending.iter().for_each(|_| relay.sent(Err(std::io::ErrorKind::WriteZero.into())));
                        break;
                    }
                    for o in &pending[..n] {
                        if o.forward {
                            relay.forwarded();
                        }
                        relay.sent(Ok(o.len));
                    }
                    sent += n;
                    next += n;
                }
                // The first pending datagram failed: counted, and the rest go on.
                Err(e) => {
                    relay.sent(Err(e.into()));
                    next += 1;
                }
            }
        }
        sent
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::relay::FromRelay;
    use crate::protocol::relay::udp::{LegKeys, UdpControl, UdpToRelay};
    use crate::server::relay::{MediaListen, RelayConfig, RelayLimits};
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::time::Duration;

    /// A real relay (its own loops read its own socket, untouched here) and
    /// a socket of the test's, which [`Batch::carry`] empties on demand.
    fn relay(limits: RelayLimits) -> (Arc<Relay>, UdpSocket) {
        let config = RelayConfig {
            listen: MediaListen::At("127.0.0.1:0".parse().unwrap()),
            limits,
            ..Default::default()
        };
        let relay = Relay::bind(&config, "127.0.0.1:0".parse().unwrap()).unwrap().unwrap();
        let mine = UdpSocket::bind("127.0.0.1:0").unwrap();
        mine.set_nonblocking(true).unwrap();
        (relay, mine)
    }

    fn client() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        socket
    }

    /// The legs of a new call `c1`, their keys, each route bound at its
    /// address through the relay's rules (bind, challenge, answer).
    fn call(relay: &Relay, at: [SocketAddr; 2]) -> [LegKeys; 2] {
        let (a, b) = relay.lock().open(&"c1".into());
        let keys = [LegKeys::derive(&a), LegKeys::derive(&b)];
        for (k, at) in keys.iter().zip(at) {
            let Verdict::Challenge(c) = relay.judge(&k.bind([0; 8]), Source::Udp(at)) else { panic!() };
            let Some(UdpControl::Challenge { token, cookie, .. }) = UdpControl::parse(c.as_bytes()) else {
                panic!()
            };
            assert!(matches!(relay.judge(&k.answer(token, cookie), Source::Udp(at)), Verdict::Answer(_)));
        }
        keys
    }

    fn data(keys: &LegKeys, payload: &[u8]) -> Vec<u8> {
        UdpToRelay::Data { leg: keys.id, payload }.encode()
    }

    /// The next datagram `socket` gets, as the relay framed it.
    fn next(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).expect("a datagram within 2 s");
        buf[..n].to_vec()
    }

    fn nothing_waiting(socket: &UdpSocket) {
        socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2048];
        let got = socket.recv(&mut buf);
        assert_eq!(got.map_err(|e| e.kind()), Err(std::io::ErrorKind::WouldBlock), "nothing else arrived");
    }

    #[tokio::test]
    async fn one_receive_takes_several_datagrams_and_judges_each_on_its_own() {
        let limits = RelayLimits { max_packet_bytes: 200, ..RelayLimits::default() };
        let (relay, mine) = relay(limits);
        let (alice, bob) = (client(), client());
        let [a, b] = call(&relay, [alice.local_addr().unwrap(), bob.local_addr().unwrap()]);
        let to = mine.local_addr().unwrap();
        bob.send_to(&b.bind([7; 8]), to).unwrap();
        alice.send_to(&data(&a, b"first"), to).unwrap();
        alice.send_to(&data(&LegKeys::derive(&[0xee; 16]), b"forged"), to).unwrap();
        alice.send_to(&data(&a, &[1; 300]), to).unwrap();
        alice.send_to(b"\x09not a relay packet", to).unwrap();
        alice.send_to(&data(&a, b"second"), to).unwrap();

        let carried = Batch::new(limits.max_packet_bytes).carry(&relay, &mine).unwrap();
        assert_eq!(
            carried,
            Carried { received: 6, sent: 3 },
            "one receive, the challenge and two forwards sent"
        );
        let Some(UdpControl::Challenge { leg, token, .. }) = UdpControl::parse(&next(&bob)) else {
            panic!("a challenge")
        };
        assert_eq!((leg, token), (b.id, [7; 8]));
        assert_eq!(FromRelay::parse(&next(&bob)), Some(FromRelay::Data(b"first")));
        assert_eq!(FromRelay::parse(&next(&bob)), Some(FromRelay::Data(b"second")));
        nothing_waiting(&bob);
        nothing_waiting(&alice);
        let stats = relay.stats();
        assert_eq!(
            (
                stats.challenges_sent,
                stats.forwarded,
                stats.unknown_credential,
                stats.oversize,
                stats.malformed
            ),
            (3, 2, 1, 1, 1),
            "{stats:?}"
        );
        assert_eq!(stats.dropped(), 3);
        relay.shutdown().await;
    }

    #[tokio::test]
    async fn a_flood_in_one_batch_is_cut_to_the_bucket_and_a_failed_send_spares_the_rest() {
        let limits = RelayLimits { packets_per_second: 1, burst: 2, max_packet_bytes: 200 };
        let (relay, mine) = relay(limits);
        let alice = client();
        // Bob's route: an IPv6 address, which the IPv4 socket cannot send to.
        let [a, _] = call(&relay, [alice.local_addr().unwrap(), "[::1]:9".parse().unwrap()]);
        let to = mine.local_addr().unwrap();
        alice.send_to(&data(&a, b"lost"), to).unwrap();
        alice.send_to(&a.bind([2; 8]), to).unwrap();
        for _ in 0..8 {
            alice.send_to(&data(&a, b"flood"), to).unwrap();
        }

        let carried = Batch::new(limits.max_packet_bytes).carry(&relay, &mine).unwrap();
        assert_eq!(carried.received, 10);
        // The burst of 2 lets the failed forward and one flood packet in;
        // the bind request has a bucket of its own.
        let Some(UdpControl::Challenge { token, .. }) = UdpControl::parse(&next(&alice)) else {
            panic!("the challenge is sent despite the failure before it")
        };
        assert_eq!(token, [2; 8]);
        nothing_waiting(&alice);
        let stats = relay.stats();
        assert_eq!((stats.rate_limited, stats.send_failed, stats.forwarded), (7, 2, 0), "{stats:?}");
        relay.shutdown().await;
    }
}
