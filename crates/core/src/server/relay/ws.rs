//! The relay's WebSocket fallback: one connection on path `/media` carries
//! one participant's packets as binary frames, framed exactly as on UDP.
//! The connection closes when the client closes it, when it has presented
//! no live credential within the bind deadline (5 s by default), when it
//! has sent no packet for [`IDLE_TIMEOUT`] (pings and pongs are not
//! packets), when its call ends, or when the server shuts down. Each holds
//! one of the relay's `/media` slots, apart from the signaling connections'.

use super::table::{WsOut, WsRoute};
use super::{Relay, Source, Verdict};
use crate::protocol::relay::{CREDENTIAL_BYTES, KIND_DATA};
use futures_util::{Sink, SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
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

/// Serves one `/media` connection until it ends; `_slot` is its place
/// under the `/media` cap, given back when it ends.
pub(crate) async fn serve<S>(
    ws: WebSocketStream<S>,
    relay: Arc<Relay>,
    mut stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (out, mut queued) = mpsc::channel(QUEUE_PACKETS);
    let route = WsRoute { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), out };
    let (mut sink, mut stream) = ws.split();
    let mut last_heard = Instant::now();
    // Until a live credential is presented, the connection has only the bind deadline.
    let mut presented = false;
    let idle = tokio::time::sleep_until(last_heard + relay.media_bind_deadline.min(IDLE_TIMEOUT));
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
            msg = stream.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    let (live, answer) = on_packet(&relay, &data, &route);
                    if presented || live {
                        // Only packets of a live leg keep the connection open.
                        presented = true;
                        last_heard = Instant::now();
                    }
                    if let Some(answer) = answer
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
                // Ping, Pong: tungstenite answers pings itself; they are not activity.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            },
            _ = &mut idle => {
                if !presented {
                    break Some((CloseCode::Policy, "no live credential presented"));
                }
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

/// Applies one packet; returns whether it carried a live credential, and
/// the framed probe answer to write back, if any.
fn on_packet(relay: &Relay, packet: &[u8], route: &WsRoute) -> (bool, Option<Vec<u8>>) {
    let verdict = relay.judge(packet, Source::Ws(route));
    let live = !matches!(verdict, Verdict::Drop | Verdict::Malformed | Verdict::UnknownCredential);
    let answer = match verdict {
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
        Verdict::Answer(reply) => Some(reply.as_bytes().to_vec()),
        _ => None,
    };
    (live, answer)
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
