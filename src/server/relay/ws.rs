//! The relay's WebSocket fallback: one connection on path `/media` carries
//! one participant's packets as binary frames, framed exactly as on UDP.
//! The connection closes when the client closes it, when it has been silent
//! for [`IDLE_TIMEOUT`], when its call ends, or when the server shuts down.

use super::table::{WsOut, WsRoute};
use super::{Relay, Source, Verdict};
use crate::protocol::media::{CREDENTIAL_BYTES, FromRelay, KIND_DATA};
use futures_util::{Sink, SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A `/media` connection silent this long is closed (voice sends 50 packets a second).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Every write on a `/media` connection finishes within this, or the connection is dropped.
const WRITE_DEADLINE: Duration = Duration::from_secs(2);
/// Packets queued for one slow connection; more are dropped and counted.
const QUEUE_PACKETS: usize = 256;

/// Ids that tell `/media` connections apart in the leg table.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Serves one `/media` connection until it ends.
pub(crate) async fn serve<S>(ws: WebSocketStream<S>, relay: Arc<Relay>, mut stopping: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (out, mut queued) = mpsc::channel(QUEUE_PACKETS);
    let route = WsRoute { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), out };
    let (mut sink, mut stream) = ws.split();
    let mut last_heard = Instant::now();
    let idle = tokio::time::sleep_until(last_heard + IDLE_TIMEOUT);
    tokio::pin!(idle);
    let closing = loop {
        tokio::select! {
            biased;
            _ = stopping.changed() => break Some((CloseCode::Away, "server shutting down")),
            out = queued.recv() => match out {
                Some(WsOut::Packet(packet)) => {
                    if write(&mut sink, Message::Binary(packet.into())).await.is_err() {
                        break None;
                    }
                }
                Some(WsOut::CallEnded) | None => break Some((CloseCode::Normal, "call ended")),
            },
            msg = stream.next() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Binary(data))) => {
                        if let Some(answer) = on_packet(&relay, &data, &route)
                            && write(&mut sink, Message::Binary(answer.into())).await.is_err()
                        {
                            break None;
                        }
                    }
                    // The fallback carries packets only; text is not a packet.
                    Some(Ok(Message::Text(text))) => {
                        let _ = on_packet(&relay, text.as_bytes(), &route);
                    }
                    Some(Ok(Message::Close(_))) => break Some((CloseCode::Normal, "")),
                    Some(Ok(_)) => {} // Ping, Pong: tungstenite answers pings itself.
                    Some(Err(_)) | None => break None,
                }
            }
            _ = &mut idle => {
                let deadline = last_heard + IDLE_TIMEOUT;
                if deadline > Instant::now() {
                    idle.as_mut().reset(deadline);
                } else {
                    break Some((CloseCode::Normal, "idle timeout"));
                }
            }
        }
    };
    if let Some((code, reason)) = closing {
        let _ = write(&mut sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
    }
}

/// Applies one packet; returns the framed probe answer to write back, if any.
fn on_packet(relay: &Relay, packet: &[u8], route: &WsRoute) -> Option<Vec<u8>> {
    match relay.judge(packet, Source::Ws(route)) {
        Verdict::ForwardUdp(to) => {
            let mut forwarded = packet[CREDENTIAL_BYTES..].to_vec();
            forwarded[0] = KIND_DATA;
            match relay.udp() {
                Some(udp) => {
                    let sent = udp.try_send_to(&forwarded, to);
                    if sent.is_ok() {
                        relay.forwarded();
                    }
                    relay.sent(sent);
                }
                None => relay.sent(Err(std::io::ErrorKind::NotConnected.into())),
            }
            None
        }
        Verdict::Answer(token) => {
            let mut answer = Vec::new();
            FromRelay::ProbeAnswer(token).encode_into(&mut answer);
            Some(answer)
        }
        _ => None,
    }
}

/// Writes one frame within the deadline.
async fn write<S>(sink: &mut S, message: Message) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    match tokio::time::timeout(WRITE_DEADLINE, sink.send(message)).await {
        Ok(result) => result,
        Err(_) => Err(WsError::Io(std::io::ErrorKind::TimedOut.into())),
    }
}
