//! The client's side of the media relay: a [`RelayLink`] carries opaque
//! payloads to and from the other participant of an accepted call, over UDP
//! when the relay binds its route within [`PROBE_TIMEOUT`] (a bind request,
//! the relay's challenge, the link's proof), else as binary frames on a
//! WebSocket of its own to the signaling server's `/media`. On UDP the
//! receiving half answers the relay's consent checks, and the sending half
//! asks for a challenge every [`REBIND_EVERY`], so a moved NAT mapping is
//! bound again; the credential itself never goes on UDP.
//! It knows nothing of audio or encryption: what goes in comes out on the
//! other side, or is lost. Framing: [`crate::protocol::relay`]; prose:
//! `docs/relay.md`.

use crate::protocol::relay::udp::{LegKeys, TOKEN_BYTES, UDP_DATA_HEADER_BYTES, UdpControl};
use crate::protocol::relay::{self, Credential, FromRelay, MediaInfo, ToRelay};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_tungstenite::Connector;

mod websocket;

use websocket::{WsReceiver, WsSender};

/// How long the UDP probe may go unanswered before the link falls back to WebSocket.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the probe is repeated within that time (a datagram may be lost).
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// How long the WebSocket fallback may take to connect and answer its probe.
const WS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of every write on the WebSocket fallback.
const WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// How often a link that sends no payload should call `keepalive`: well
/// inside the relay's 30 s idle timeout and the usual 30 s NAT UDP timeout.
pub const KEEPALIVE_EVERY: Duration = Duration::from_secs(10);
/// How often a UDP link sending payloads also asks the relay for a
/// challenge: a NAT that moved the link's mapping is noticed and bound
/// again within this, and the relay's consent is renewed from the link's side.
pub const REBIND_EVERY: Duration = Duration::from_secs(5);
/// Largest datagram the link reads.
const RECEIVE_BYTES: usize = 64 * 1024;

/// How a link tries to reach the relay; `Default` is what real clients
/// use over `ws://` or a publicly trusted `wss://`.
#[derive(Clone)]
pub struct LinkOptions {
    /// How long to wait for the UDP probe's answer.
    pub probe_timeout: Duration,
    /// Skips UDP and goes straight to the WebSocket fallback.
    pub force_websocket: bool,
    /// Sends UDP here instead of the announced address (tests, port forwarding).
    pub udp_override: Option<SocketAddr>,
    /// How the WebSocket fallback verifies a `wss://` server: the same as
    /// the signaling connection (the SDK client's
    /// [`tls_connector`](crate::sdk::Client::tls_connector), which trusts
    /// its `ca_file`); `None`, the public roots.
    pub tls: Option<Connector>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions { probe_timeout: PROBE_TIMEOUT, force_websocket: false, udp_override: None, tls: None }
    }
}

impl std::fmt::Debug for LinkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOptions")
            .field("probe_timeout", &self.probe_timeout)
            .field("force_websocket", &self.force_websocket)
            .field("udp_override", &self.udp_override)
            .field("tls", &self.tls.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Which way a link reaches the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    WebSocket,
}

/// Why a link could not be made or stopped working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayLinkError {
    /// The `media` object is not usable (bad credential, bad address).
    #[error("bad media info: {0}")]
    BadInfo(String),
    /// Neither UDP nor the WebSocket fallback reached the relay.
    #[error("cannot reach the media relay: {0}")]
    Unreachable(String),
    /// A socket failed.
    #[error("media relay link failed: {0}")]
    Io(String),
    /// The relay closed the WebSocket (the call ended, or the server stops).
    #[error("the media relay closed the link")]
    Closed,
}

fn io_error(e: impl std::fmt::Display) -> RelayLinkError {
    RelayLinkError::Io(e.to_string())
}

/// A link to the relay for one call leg, both ways.
pub struct RelayLink {
    /// Writes packets (and probes).
    sender: RelaySender,
    /// Reads packets, skipping probe answers.
    receiver: RelayReceiver,
}

/// The sending half of a [`RelayLink`].
pub struct RelaySender {
    /// UDP or the `/media` WebSocket's writing half.
    way: SendWay,
    /// The data header (kind and credential on `/media`, kind and leg id on
    /// UDP), then the payload: reused per packet.
    packet: Vec<u8>,
    /// The header's length.
    header: usize,
}

/// The receiving half of a [`RelayLink`].
pub struct RelayReceiver {
    /// UDP (with its receive buffer) or the `/media` WebSocket's reading half.
    way: ReceiveWay,
}

enum SendWay {
    /// The socket, the leg's keys (for bind requests) and when the last bind request went.
    Udp {
        socket: Arc<UdpSocket>,
        keys: Arc<LegKeys>,
        last_bind: Instant,
    },
    Ws(WsSender),
}

enum ReceiveWay {
    /// The socket, the leg's keys (to answer challenges) and the receive buffer.
    Udp {
        socket: Arc<UdpSocket>,
        keys: Arc<LegKeys>,
        buf: Vec<u8>,
    },
    Ws(WsReceiver),
}

impl RelayLink {
    /// Reaches the relay described by `info` (from `accepted` or the
    /// accept's `ok`) for a call signaled through `server_url`: UDP if it
    /// answers within 2 s, else WebSocket `/media`.
    pub async fn connect(info: &MediaInfo, server_url: &str) -> Result<RelayLink, RelayLinkError> {
        RelayLink::connect_with(info, server_url, &LinkOptions::default()).await
    }

    /// [`RelayLink::connect`] with options.
    pub async fn connect_with(
        info: &MediaInfo,
        server_url: &str,
        options: &LinkOptions,
    ) -> Result<RelayLink, RelayLinkError> {
        let credential = info
            .credential_bytes()
            .ok_or_else(|| RelayLinkError::BadInfo("credential is not 16 bytes of base64url".into()))?;
        if !options.force_websocket {
            let target = match options.udp_override {
                Some(addr) => Some(addr),
                None => udp_target(info, server_url).await?,
            };
            if let Some(target) = target {
                let keys = LegKeys::derive(&credential);
                match bind_udp(target, &keys, options.probe_timeout).await {
                    Ok(socket) => return Ok(RelayLink::over_udp(socket, keys)),
                    Err(e) => {
                        tracing::info!("media relay: no UDP answer from {target} ({e}); using WebSocket")
                    }
                }
            }
        }
        let url = websocket_url(info, server_url)?;
        let (sender, receiver) = websocket::connect(&url, credential, options.tls.clone()).await?;
        Ok(RelayLink {
            sender: RelaySender {
                way: SendWay::Ws(sender),
                packet: relay::data_header(&credential).to_vec(),
                header: relay::DATA_HEADER_BYTES,
            },
            receiver: RelayReceiver { way: ReceiveWay::Ws(receiver) },
        })
    }

    fn over_udp(socket: UdpSocket, keys: LegKeys) -> RelayLink {
        let (socket, keys) = (Arc::new(socket), Arc::new(keys));
        let packet = keys.data_header().to_vec();
        let udp = SendWay::Udp { socket: socket.clone(), keys: keys.clone(), last_bind: Instant::now() };
        RelayLink {
            sender: RelaySender { way: udp, packet, header: UDP_DATA_HEADER_BYTES },
            receiver: RelayReceiver { way: ReceiveWay::Udp { socket, keys, buf: vec![0; RECEIVE_BYTES] } },
        }
    }

    /// Which way this link reaches the relay.
    pub fn transport(&self) -> Transport {
        self.sender.transport()
    }

    /// Sends one payload to the other participant (lost, like any datagram, if the relay drops it).
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), RelayLinkError> {
        self.sender.send(payload).await
    }

    /// Sends a probe (`/media`) or a bind request (UDP), which keeps the
    /// route (a NAT mapping, the `/media` connection's idle timer) alive
    /// while no payload goes out; see [`KEEPALIVE_EVERY`]. On UDP the
    /// receiving half must be read for the relay's challenge to be answered.
    pub async fn keepalive(&mut self) -> Result<(), RelayLinkError> {
        self.sender.keepalive().await
    }

    /// The next payload from the other participant.
    pub async fn recv(&mut self) -> Result<Vec<u8>, RelayLinkError> {
        self.receiver.recv().await
    }

    /// Splits the link, so one task can send while another receives.
    pub fn split(self) -> (RelaySender, RelayReceiver) {
        (self.sender, self.receiver)
    }
}

impl RelaySender {
    /// Which way this link reaches the relay.
    pub fn transport(&self) -> Transport {
        match self.way {
            SendWay::Udp { .. } => Transport::Udp,
            SendWay::Ws(_) => Transport::WebSocket,
        }
    }

    /// Sends one payload to the other participant (on UDP, after a bind
    /// request when the last one is [`REBIND_EVERY`] old).
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), RelayLinkError> {
        if let SendWay::Udp { last_bind, .. } = &self.way
            && last_bind.elapsed() >= REBIND_EVERY
        {
            self.keepalive().await?;
        }
        self.packet.truncate(self.header);
        self.packet.extend_from_slice(payload);
        self.write().await
    }

    /// Sends a probe or a bind request (what comes back is handled by
    /// [`RelayReceiver::recv`]).
    pub async fn keepalive(&mut self) -> Result<(), RelayLinkError> {
        let keepalive = match &mut self.way {
            SendWay::Udp { keys, last_bind, .. } => {
                *last_bind = Instant::now();
                keys.bind(rand::random())
            }
            SendWay::Ws(_) => {
                let credential: Credential =
                    self.packet[1..self.header].try_into().expect("the header holds the credential");
                ToRelay::Probe { credential, token: rand::random() }.encode()
            }
        };
        let data = std::mem::replace(&mut self.packet, keepalive);
        let written = self.write().await;
        self.packet = data;
        written
    }

    /// Writes `self.packet` as it is.
    async fn write(&mut self) -> Result<(), RelayLinkError> {
        match &mut self.way {
            SendWay::Udp { socket, .. } => {
                match tokio::time::timeout(WRITE_DEADLINE, socket.send(&self.packet)).await {
                    Ok(sent) => sent.map(drop).map_err(io_error),
                    Err(_) => Err(RelayLinkError::Io(format!("a send took longer than {WRITE_DEADLINE:?}"))),
                }
            }
            SendWay::Ws(ws) => ws.send(self.packet.clone()).await,
        }
    }
}

impl RelayReceiver {
    /// The next payload from the other participant; anything that is not
    /// one is skipped, and on UDP the relay's challenges (consent checks,
    /// answers to bind requests) are answered on the way.
    pub async fn recv(&mut self) -> Result<Vec<u8>, RelayLinkError> {
        loop {
            let packet = match &mut self.way {
                ReceiveWay::Udp { socket, keys, buf } => {
                    // The socket is connected to the relay: the kernel drops anyone else's datagrams.
                    let n = match socket.recv(buf).await {
                        Ok(n) => n,
                        // An ICMP "port unreachable" for an earlier send; the relay may come back.
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                        Err(e) => return Err(io_error(e)),
                    };
                    if let Some(UdpControl::Challenge { leg, token, cookie }) = UdpControl::parse(&buf[..n])
                        && leg == keys.id
                    {
                        // Never wait: an answer lost to a full buffer is like one lost on the way.
                        let _ = socket.try_send(&keys.answer(token, cookie));
                        continue;
                    }
                    buf[..n].to_vec()
                }
                ReceiveWay::Ws(ws) => ws.recv().await?,
            };
            if let Some(FromRelay::Data(payload)) = FromRelay::parse(&packet) {
                return Ok(payload.to_vec());
            }
        }
    }
}

/// The relay's UDP address: the announced one, with an unspecified host
/// replaced by the signaling server's; `None` when none is announced.
async fn udp_target(info: &MediaInfo, server_url: &str) -> Result<Option<SocketAddr>, RelayLinkError> {
    let Some(relay) = &info.relay else { return Ok(None) };
    let bad = || RelayLinkError::BadInfo(format!("relay {relay:?} is not udp://HOST:PORT"));
    let host_port = relay.strip_prefix("udp://").ok_or_else(bad)?;
    let mut addr = match host_port.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => tokio::net::lookup_host(host_port).await.map_err(|_| bad())?.next().ok_or_else(bad)?,
    };
    if addr.ip().is_unspecified() {
        let uri: tokio_tungstenite::tungstenite::http::Uri = server_url
            .parse()
            .map_err(|_| RelayLinkError::BadInfo(format!("bad server URL {server_url}")))?;
        let host = uri.host().ok_or_else(|| RelayLinkError::BadInfo(format!("no host in {server_url}")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let resolved = tokio::net::lookup_host((host, addr.port())).await.map_err(io_error)?.next();
        addr = resolved.ok_or_else(|| RelayLinkError::BadInfo(format!("cannot resolve {host}")))?;
    }
    Ok(Some(addr))
}

/// The `/media` URL: `ws` itself when it is a whole URL (a cluster node
/// names its own, as the call's relay may be on another node than the
/// client's), else the path on the signaling server's scheme, host and port.
fn websocket_url(info: &MediaInfo, server_url: &str) -> Result<String, RelayLinkError> {
    if info.ws.starts_with("ws://") || info.ws.starts_with("wss://") {
        return Ok(info.ws.clone());
    }
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        server_url.parse().map_err(|_| RelayLinkError::BadInfo(format!("bad server URL {server_url}")))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(RelayLinkError::BadInfo(format!("server URL {server_url} lacks a scheme or host")));
    };
    if !info.ws.starts_with('/') {
        return Err(RelayLinkError::BadInfo(format!("ws path {:?} does not start with /", info.ws)));
    }
    Ok(format!("{scheme}://{authority}{}", info.ws))
}

/// Binds a socket connected to `target` and sends bind requests until the
/// relay's challenge has been answered and the route bound, or `timeout` passes.
async fn bind_udp(target: SocketAddr, keys: &LegKeys, timeout: Duration) -> std::io::Result<UdpSocket> {
    let local: SocketAddr =
        if target.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(target).await?;
    let token: [u8; TOKEN_BYTES] = rand::random();
    let bind = keys.bind(token);
    let bound = async {
        let mut buf = vec![0u8; RECEIVE_BYTES];
        let mut every = tokio::time::interval(PROBE_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => { let _ = socket.send(&bind).await; }
                got = socket.recv(&mut buf) => match got.ok().and_then(|n| UdpControl::parse(&buf[..n])) {
                    Some(UdpControl::Challenge { leg, token, cookie }) if leg == keys.id => {
                        let _ = socket.send(&keys.answer(token, cookie)).await;
                    }
                    Some(UdpControl::Bound(answered)) if answered == token => return,
                    _ => {}
                },
            }
        }
    };
    tokio::time::timeout(timeout, bound)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the relay did not bind the route"))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(relay: Option<&str>) -> MediaInfo {
        MediaInfo {
            relay: relay.map(Into::into),
            ws: "/media".into(),
            credential: relay::encode_credential(&[1; 16]),
        }
    }

    #[tokio::test]
    async fn addresses_come_from_the_media_info_and_the_server_url() {
        let url = "ws://127.0.0.1:7000/";
        assert_eq!(
            udp_target(&info(Some("udp://127.0.0.1:9")), url).await,
            Ok(Some("127.0.0.1:9".parse().unwrap()))
        );
        assert_eq!(
            udp_target(&info(Some("udp://0.0.0.0:9")), url).await,
            Ok(Some("127.0.0.1:9".parse().unwrap()))
        );
        assert_eq!(udp_target(&info(None), url).await, Ok(None));
        assert!(matches!(
            udp_target(&info(Some("tcp://1.2.3.4:5")), url).await,
            Err(RelayLinkError::BadInfo(_))
        ));
        assert_eq!(
            websocket_url(&info(None), "wss://example.org:8443/").unwrap(),
            "wss://example.org:8443/media"
        );
        assert!(websocket_url(&info(None), "not a url").is_err());
        let elsewhere = MediaInfo { ws: "ws://10.0.0.2:7878/media".into(), ..info(None) };
        assert_eq!(websocket_url(&elsewhere, "ws://10.0.0.1:7878/").unwrap(), "ws://10.0.0.2:7878/media");
    }

    #[tokio::test]
    async fn a_bad_credential_is_refused_before_any_packet() {
        let bad = MediaInfo { credential: "short".into(), ..info(None) };
        let e = RelayLink::connect(&bad, "ws://127.0.0.1:1/").await.err().expect("refused");
        assert!(matches!(e, RelayLinkError::BadInfo(_)), "{e}");
    }
}
