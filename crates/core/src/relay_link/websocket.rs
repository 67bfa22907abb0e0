//! The link's WebSocket fallback: a connection of its own to `/media`,
//! bound to the leg by a probe the relay must answer, then packets as
//! binary frames.

use super::{RelayLinkError, WRITE_DEADLINE, WS_CONNECT_TIMEOUT, io_error};
use crate::protocol::relay::{Credential, FromRelay, PROBE_TOKEN_BYTES, ToRelay};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The writing half of the `/media` connection.
pub(super) struct WsSender {
    sink: SplitSink<Ws, Message>,
}

/// The reading half of the `/media` connection.
pub(super) struct WsReceiver {
    stream: SplitStream<Ws>,
}

/// Connects to `url` (a `wss://` one verified by `tls`, or the public
/// roots) and binds the connection to `credential`'s leg.
pub(super) async fn connect(
    url: &str,
    credential: Credential,
    tls: Option<Connector>,
) -> Result<(WsSender, WsReceiver), RelayLinkError> {
    // rustls needs a process-wide crypto provider before the first wss:// connect.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let unreachable = |e: String| RelayLinkError::Unreachable(format!("{url}: {e}"));
    let token: [u8; PROBE_TOKEN_BYTES] = rand::random();
    let bound = async {
        let config = Some(crate::protocol::websocket_config());
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(url, config, true, tls)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (sink, stream) = ws.split();
        let (mut sender, mut receiver) = (WsSender { sink }, WsReceiver { stream });
        sender.send(ToRelay::Probe { credential, token }.encode()).await?;
        loop {
            let packet = receiver.recv().await?;
            if FromRelay::parse(&packet) == Some(FromRelay::ProbeAnswer(token)) {
                return Ok((sender, receiver));
            }
        }
    };
    match tokio::time::timeout(WS_CONNECT_TIMEOUT, bound).await {
        Ok(Ok(halves)) => Ok(halves),
        Ok(Err(RelayLinkError::Closed)) => Err(unreachable("closed before answering the probe".into())),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            Err(unreachable(format!("no probe answer within {WS_CONNECT_TIMEOUT:?} (credential refused?)")))
        }
    }
}

impl WsSender {
    /// Writes one framed packet within the write deadline.
    pub async fn send(&mut self, packet: Vec<u8>) -> Result<(), RelayLinkError> {
        match tokio::time::timeout(WRITE_DEADLINE, self.sink.send(Message::Binary(packet.into()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_error(e)),
            Err(_) => Err(RelayLinkError::Io(format!("a write took longer than {WRITE_DEADLINE:?}"))),
        }
    }
}

impl WsReceiver {
    /// The next binary frame's bytes.
    pub async fn recv(&mut self) -> Result<Vec<u8>, RelayLinkError> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Binary(bytes))) => return Ok(bytes.to_vec()),
                Some(Ok(Message::Close(_))) | None => return Err(RelayLinkError::Closed),
                Some(Ok(_)) => {} // Ping, Pong, text: not packets.
                Some(Err(e)) => return Err(io_error(e)),
            }
        }
    }
}
