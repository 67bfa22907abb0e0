//! A bare protocol connection for the load generator: connect, log in,
//! send requests, read server messages. No state machines, no reconnect.

use super::AnyError;
use crate::protocol::{ClientFrame, OkResult, Request, ServerMessage};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::net::IpAddr;
use std::path::Path;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Sink = SplitSink<Ws, Message>;
pub type Stream = SplitStream<Ws>;

/// Mints tokens for the bench's peers when the server has a secret.
#[derive(Clone, Default)]
pub struct Tokens {
    secret: Option<Vec<u8>>,
}

impl Tokens {
    pub fn from_file(path: Option<&Path>) -> Result<Tokens, AnyError> {
        let secret = path.map(crate::token::read_secret_file).transpose()?;
        Ok(Tokens { secret })
    }

    fn for_peer(&self, peer: &str) -> String {
        match &self.secret {
            Some(s) => crate::token::mint(s, peer, crate::clock::unix_secs() + 3600),
            None => String::new(),
        }
    }
}

/// Encodes a request as a text frame.
pub fn frame(req: Option<u64>, request: Request) -> Message {
    let frame = ClientFrame { req: req.map(Into::into), request };
    Message::Text(serde_json::to_string(&frame).expect("requests serialize").into())
}

/// Reads the next server message, skipping control frames.
pub async fn next_message(stream: &mut Stream) -> Option<Result<ServerMessage, AnyError>> {
    loop {
        match stream.next().await? {
            Ok(Message::Text(text)) => {
                return Some(
                    serde_json::from_str(&text).map_err(|e| format!("bad server message: {e}").into()),
                );
            }
            Ok(Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(e) => return Some(Err(e.into())),
        }
    }
}

/// Connects (from `local_ip` when given, to spread over loopback addresses)
/// and logs in as `peer`.
pub async fn connect_login(
    url: &str,
    peer: &str,
    tokens: &Tokens,
    local_ip: Option<IpAddr>,
) -> Result<(Sink, Stream), AnyError> {
    let ws = match local_ip {
        None => {
            let config = Some(crate::protocol::websocket_config());
            tokio_tungstenite::connect_async_with_config(url, config, true).await?.0
        }
        Some(ip) => {
            let authority = url.trim_start_matches("ws://").trim_end_matches('/');
            let addr: std::net::SocketAddr = authority.parse()?;
            let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            socket.bind((ip, 0).into())?;
            let tcp = socket.connect(addr).await?;
            let config = Some(crate::protocol::websocket_config());
            tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(tcp), config).await?.0
        }
    };
    let (mut sink, mut stream) = ws.split();
    let login =
        Request::Login { peer_id: peer.to_owned(), token: tokens.for_peer(peer), device: "bench".into() };
    sink.send(frame(Some(0), login)).await?;
    loop {
        match next_message(&mut stream).await.ok_or("closed during login")?? {
            ServerMessage::Ok { result: OkResult::Login { .. }, .. } => return Ok((sink, stream)),
            ServerMessage::Error { code, message, .. } => {
                return Err(format!("login refused: {code}: {message}").into());
            }
            _ => continue,
        }
    }
}
