//! One connection: reads frames, decodes and checks them, hands requests to
//! the [`Hub`], writes what the hub queues in this connection's outbox, and
//! keeps the connection alive (pings) or closes it (silence, shutdown, a
//! frame over 64 KiB, logout).

use super::hub::{Hub, Kick, Outbound, SessionId};
use crate::protocol::{ErrorCode, OkResult, ProtocolError, Req, Request, ServerMessage, decode_request};
use crate::token::{self, TokenError};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long to wait for the client's answer to our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 64;

/// A token bucket: `burst` frames at once, refilled at `per_second`.
struct RateLimiter {
    /// Frames that may be sent right now.
    tokens: f64,
    /// Refill rate, frames per second.
    per_second: f64,
    /// Bucket size.
    burst: f64,
    /// When `tokens` was last brought up to date.
    refilled: Instant,
}

impl RateLimiter {
    fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            tokens: f64::from(burst),
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            refilled: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the read side decided about the connection.
enum Next {
    Continue,
    Close(CloseFrame),
}

/// The per-connection state the request handler needs.
struct Connection {
    hub: Arc<Hub>,
    /// This connection's own outbox, for replies the session writes itself.
    outbox: mpsc::Sender<Outbound>,
    /// Told by the hub when the outbox overflows.
    kick: Kick,
    /// Set by a successful login.
    session: Option<SessionId>,
    limiter: RateLimiter,
}

fn close(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame { code, reason: reason.into() }
}

/// Serves one connection until it closes, the client goes silent or the
/// server stops.
pub(super) async fn run(ws: WebSocketStream<TcpStream>, hub: Arc<Hub>, mut stopping: watch::Receiver<bool>) {
    let config = hub.config().clone();
    let (mut sink, mut stream) = ws.split();
    let (outbox, mut inbox) = mpsc::channel(config.outbox_capacity);
    let kick: Kick = Arc::new(AtomicBool::new(false));
    let mut conn = Connection {
        hub,
        outbox,
        kick: kick.clone(),
        session: None,
        limiter: RateLimiter::new(config.rate_per_second, config.rate_burst),
    };
    let mut ping = tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    // Re-armed lazily: when it fires early (we heard from the client since), it moves.
    let idle = tokio::time::sleep_until(last_heard + config.idle_timeout);
    tokio::pin!(idle);

    let closing: Option<CloseFrame> = loop {
        // An overflowing outbox means queued events: the inbox branch wakes us to see this.
        if kick.load(Ordering::Relaxed) {
            conn.hub.metrics.slow_reader_kicked();
            break Some(close(CloseCode::Policy, "too slow to read its events"));
        }
        tokio::select! {
            biased;
            _ = stopping.changed() => break Some(close(CloseCode::Away, "server shutting down")),
            out = inbox.recv() => {
                let Some(out) = out else { break None };
                // A client that stops reading must not hold the session forever.
                let written = tokio::time::timeout(config.idle_timeout, write_batch(&mut sink, &mut inbox, out));
                if !matches!(written.await, Ok(Ok(()))) {
                    break None;
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(msg)) => {
                    last_heard = Instant::now();
                    if let Next::Close(frame) = conn.on_message(msg, last_heard) {
                        break Some(frame);
                    }
                }
                Some(Err(WsError::Capacity(e))) => {
                    tracing::debug!("closing with 1009: {e}");
                    break Some(close(CloseCode::Size, "message over 65536 bytes"));
                }
                Some(Err(_)) | None => break None,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            _ = &mut idle => {
                let deadline = last_heard + config.idle_timeout;
                if deadline > Instant::now() {
                    idle.as_mut().reset(deadline);
                } else {
                    break Some(close(CloseCode::Normal, "idle timeout"));
                }
            }
        }
    };

    // Leave the hub first, so no more events are queued for a closing socket.
    if let Some(id) = conn.session.take() {
        conn.hub.disconnect(id);
    }
    if let Some(frame) = closing {
        // Flush what is already queued (e.g. the reply to `logout`), then close.
        while let Ok(text) = inbox.try_recv() {
            let _ = sink.feed(Message::Text(text)).await;
        }
        if sink.send(Message::Close(Some(frame))).await.is_ok() {
            let _ =
                tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = stream.next().await {} })
                    .await;
        }
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes once.
async fn write_batch<S>(
    sink: &mut S,
    inbox: &mut mpsc::Receiver<Outbound>,
    first: Outbound,
) -> Result<(), WsError>
where
    S: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    sink.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        match inbox.try_recv() {
            Ok(text) => sink.feed(Message::Text(text)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

impl Connection {
    /// Queues a message for this connection only.
    fn reply(&self, message: ServerMessage) {
        if self.outbox.try_send(message.to_json().into()).is_err() {
            self.kick.store(true, Ordering::Relaxed);
        }
    }

    fn reply_error(&self, req: Option<Req>, error: ProtocolError) {
        self.reply(error.into_message(req));
    }

    fn on_message(&mut self, msg: Message, now: Instant) -> Next {
        let text = match msg {
            Message::Text(text) => text,
            Message::Binary(_) => {
                if self.limiter.allow(now) {
                    self.reply_error(
                        None,
                        ProtocolError::new(
                            ErrorCode::BadRequest,
                            "binary frames are not accepted; send JSON text",
                        ),
                    );
                }
                return Next::Continue;
            }
            // tungstenite answers pings itself; hearing anything keeps us alive.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Next::Continue,
            Message::Close(_) => return Next::Close(close(CloseCode::Normal, "")),
        };
        let decoded = decode_request(&text);
        if !self.limiter.allow(now) {
            self.hub.metrics.frame_rate_limited();
            let req = decoded.map(|(req, _)| req).unwrap_or_else(|e| e.req);
            self.reply_error(req, ProtocolError::new(ErrorCode::RateLimited, "too many frames; slow down"));
            return Next::Continue;
        }
        match decoded {
            Err(e) => {
                self.reply_error(e.req, e.error);
                Next::Continue
            }
            Ok((req, request)) => self.on_request(req, request),
        }
    }

    fn on_request(&mut self, req: Option<Req>, request: Request) -> Next {
        let Some(id) = self.session else {
            if !matches!(request, Request::Login { .. }) {
                self.reply_error(req, ProtocolError::new(ErrorCode::NotLoggedIn, "log in first"));
                return Next::Continue;
            }
            if let Err(e) = request.validate().and_then(|()| self.login(req.clone(), request)) {
                self.reply_error(req, e);
            }
            return Next::Continue;
        };
        if let Err(e) = request.validate() {
            self.reply_error(req, e);
            return Next::Continue;
        }
        match request {
            Request::Login { .. } => self.reply_error(
                req,
                ProtocolError::new(ErrorCode::AlreadyLoggedIn, "this connection is already logged in"),
            ),
            Request::Logout => {
                self.hub.disconnect(id);
                self.session = None;
                self.reply(ServerMessage::Ok { req, result: OkResult::Empty {} });
                return Next::Close(close(CloseCode::Normal, "logged out"));
            }
            request => self.hub.handle(id, req, request),
        }
        Next::Continue
    }

    fn login(&mut self, req: Option<Req>, request: Request) -> Result<(), ProtocolError> {
        let Request::Login { peer_id, token, device } = request else {
            unreachable!("login() is only called with a login request");
        };
        if let Some(secret) = &self.hub.config().secret {
            token::verify(secret, &peer_id, &token, crate::clock::unix_secs()).map_err(|e| match e {
                TokenError::Invalid => ProtocolError::new(ErrorCode::InvalidToken, e.to_string()),
                TokenError::Expired => ProtocolError::new(ErrorCode::TokenExpired, e.to_string()),
            })?;
        }
        let id = self.hub.login(&peer_id, &device, req, self.outbox.clone(), self.kick.clone());
        self.session = Some(id);
        Ok(())
    }
}
