//! One connection: reads frames, decodes and checks them, hands requests to
//! the hub ([`Backend`]), writes what the hub queues in this connection's outbox, and
//! keeps the connection alive (pings) or closes it (silence, shutdown, a
//! frame over 64 KiB or not UTF-8, logout, no login in time). Every write
//! has a deadline: a client that stops reading cannot hold its session.

use super::ServerConfig;
use super::backend::Backend;
use super::metrics::OpenConnection;
use super::outbound::{Kick, Outbound, SessionId};
use super::token_clock::{self, Tick, TokenClock};
use crate::protocol::{ErrorCode, OkResult, ProtocolError, Req, Request, ServerMessage, decode_request};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
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

/// How one write to the socket ended.
enum Written {
    Done,
    /// The socket failed: nothing more can be written.
    Failed,
    /// The client did not take the data within the write deadline.
    Stalled,
    /// The server began shutting down while the write waited.
    Stopping,
}

/// The per-connection state the request handler needs.
struct Connection {
    /// Where this connection's requests are decided: the single node or a cluster node.
    backend: Backend,
    /// This connection's own outbox, for replies the session writes itself.
    outbox: mpsc::Sender<Outbound>,
    /// Told by the hub when the outbox overflows.
    kick: Kick,
    /// Set by a successful login.
    session: Option<SessionId>,
    /// When the session's token runs out; `None` in open mode or before login.
    token: Option<TokenClock>,
    limiter: RateLimiter,
    /// Counts this connection in the metrics while it is open.
    _open: OpenConnection,
}

/// The socket, split, and the frames queued for it.
struct Wire<S> {
    /// Where frames go; every write to it is under `write_deadline`.
    sink: SplitSink<WebSocketStream<S>, Message>,
    /// Where the client's frames come from.
    stream: SplitStream<WebSocketStream<S>>,
    /// What the hub and the request handler queued for this connection.
    inbox: mpsc::Receiver<Outbound>,
    /// Told when the server begins shutting down.
    stopping: watch::Receiver<bool>,
    /// How long any write may wait for the client to read (the idle timeout).
    write_deadline: Duration,
}

fn close(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame { code, reason: reason.into() }
}

/// Serves one connection until it closes, the client goes silent or stops
/// reading, the server stops, or it does not log in in time.
///
/// Not an `async fn`: the stream is split and the session set up before the
/// future is made, so the future holds the halves only, not also the
/// unsplit stream an `async fn` would keep for its whole life (every
/// session's task is as large as this future).
pub(super) fn run<S>(
    ws: WebSocketStream<S>,
    backend: Backend,
    stopping: watch::Receiver<bool>,
) -> impl Future<Output = ()> + use<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = backend.config();
    let (sink, stream) = ws.split();
    let (outbox, inbox) = mpsc::channel(config.outbox_capacity);
    let wire = Wire { sink, stream, inbox, stopping, write_deadline: config.idle_timeout };
    let conn = Connection {
        limiter: RateLimiter::new(config.rate_per_second, config.rate_burst),
        _open: backend.metrics().connection_opened(),
        backend,
        outbox,
        kick: Arc::new(AtomicBool::new(false)),
        session: None,
        token: None,
    };
    serve_until_closed(wire, conn)
}

/// The session's life: its loop, then leaving the hub, then the goodbye.
async fn serve_until_closed<S>(mut wire: Wire<S>, mut conn: Connection)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Read through a handle of its own rather than cloned: a copy of the
    // configuration would sit in every session's task for its lifetime.
    let shared = conn.backend.clone();
    let closing = wire.serve(&mut conn, shared.config()).await;
    // Leave the hub first, so no more events are queued for a closing socket.
    if let Some(id) = conn.session.take() {
        conn.backend.disconnect(id).await;
    }
    if let Some(frame) = closing {
        wire.goodbye(frame).await;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    /// The session's loop; returns the close frame to say goodbye with, or
    /// `None` when the socket is already gone.
    async fn serve(&mut self, conn: &mut Connection, config: &ServerConfig) -> Option<CloseFrame> {
        let mut ping = tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        // Re-armed lazily: when it fires early (we heard from the client since), it moves.
        let idle = tokio::time::sleep_until(last_heard + config.idle_timeout);
        // Counted from the handshake; a pong or any other frame does not stop it.
        let login_by = tokio::time::sleep(config.login_timeout);
        tokio::pin!(idle, login_by);
        loop {
            // An overflowing outbox means queued events: the inbox branch wakes us to see this.
            if conn.kick.load(Ordering::Relaxed) {
                conn.backend.metrics().slow_reader_kicked();
                return Some(close(CloseCode::Policy, "too slow to read its events"));
            }
            let written = tokio::select! {
                biased;
                _ = self.stopping.changed() => return Some(close(CloseCode::Away, "server shutting down")),
                out = self.inbox.recv() => {
                    let out = out?;
                    self.write_queued(out).await
                }
                msg = self.stream.next() => match msg {
                    Some(Ok(msg)) => {
                        last_heard = Instant::now();
                        if let Next::Close(frame) = conn.on_message(msg, last_heard).await {
                            return Some(frame);
                        }
                        continue;
                    }
                    Some(Err(e)) => return read_error(e),
                    None => return None,
                },
                _ = ping.tick() => self.write_ping().await,
                tick = token_clock::tick(&mut conn.token) => match tick {
                    Tick::Warn(message) => {
                        conn.reply(message);
                        continue;
                    }
                    Tick::Expired(frame) => return Some(frame),
                },
                _ = &mut login_by, if conn.session.is_none() => {
                    return Some(close(CloseCode::Policy, "no login within the login timeout"));
                }
                _ = &mut idle => {
                    let deadline = last_heard + config.idle_timeout;
                    if deadline <= Instant::now() {
                        return Some(close(CloseCode::Normal, "idle timeout"));
                    }
                    idle.as_mut().reset(deadline);
                    continue;
                }
            };
            match written {
                Written::Done => {}
                Written::Failed => return None,
                Written::Stalled => {
                    conn.backend.metrics().slow_reader_kicked();
                    tracing::debug!("closing a connection that left a write unread for the idle timeout");
                    return Some(close(CloseCode::Policy, "too slow to read"));
                }
                Written::Stopping => return Some(close(CloseCode::Away, "server shutting down")),
            }
        }
    }

    /// Runs `write` under the write deadline, giving up early on shutdown.
    async fn within(
        write_deadline: Duration,
        stopping: &mut watch::Receiver<bool>,
        write: impl Future<Output = Result<(), WsError>>,
    ) -> Written {
        tokio::select! {
            written = tokio::time::timeout(write_deadline, write) => match written {
                Ok(Ok(())) => Written::Done,
                Ok(Err(_)) => Written::Failed,
                Err(_) => Written::Stalled,
            },
            _ = stopping.changed() => Written::Stopping,
        }
    }

    /// Writes `first` and whatever else is queued, under the write deadline.
    async fn write_queued(&mut self, first: Outbound) -> Written {
        let write = write_batch(&mut self.sink, &mut self.inbox, first);
        Self::within(self.write_deadline, &mut self.stopping, write).await
    }

    /// Pings the client, under the write deadline.
    async fn write_ping(&mut self) -> Written {
        let write = self.sink.send(Message::Ping(Default::default()));
        Self::within(self.write_deadline, &mut self.stopping, write).await
    }

    /// Flushes what is already queued (e.g. the reply to `logout`), then
    /// closes with `frame`: tried for at most [`CLOSE_WAIT`], and the
    /// client's answer awaited as long again; then the socket is dropped.
    async fn goodbye(mut self, frame: CloseFrame) {
        let Wire { sink, stream, inbox, .. } = &mut self;
        let sent = tokio::time::timeout(CLOSE_WAIT, async {
            while let Ok(text) = inbox.try_recv() {
                sink.feed(Message::Text(text)).await?;
            }
            sink.send(Message::Close(Some(frame))).await
        })
        .await;
        if matches!(sent, Ok(Ok(()))) {
            let _ =
                tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = stream.next().await {} })
                    .await;
        }
    }
}

/// What a read error means for the connection.
fn read_error(e: WsError) -> Option<CloseFrame> {
    match e {
        WsError::Capacity(e) => {
            tracing::debug!("closing with 1009: {e}");
            Some(close(CloseCode::Size, "message over 65536 bytes"))
        }
        // RFC 6455 8.1: a text frame that is not UTF-8 fails the connection with 1007.
        WsError::Utf8(e) => {
            tracing::debug!("closing with 1007: {e}");
            Some(close(CloseCode::Invalid, "text frame is not valid UTF-8"))
        }
        _ => None,
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

    async fn on_message(&mut self, msg: Message, now: Instant) -> Next {
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
            self.backend.metrics().frame_rate_limited();
            let req = decoded.map(|(req, _)| req).unwrap_or_else(|e| e.req);
            self.reply_error(req, ProtocolError::new(ErrorCode::RateLimited, "too many frames; slow down"));
            return Next::Continue;
        }
        match decoded {
            Err(e) => {
                self.reply_error(e.req, e.error);
                Next::Continue
            }
            Ok((req, request)) => self.on_request(req, request).await,
        }
    }

    async fn on_request(&mut self, req: Option<Req>, request: Request) -> Next {
        let Some(id) = self.session else {
            if !matches!(request, Request::Login { .. }) {
                self.reply_error(req, ProtocolError::new(ErrorCode::NotLoggedIn, "log in first"));
                return Next::Continue;
            }
            let logged_in = match request.validate() {
                Ok(()) => self.login(req.clone(), request).await,
                Err(e) => Err(e),
            };
            if let Err(e) = logged_in {
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
                self.backend.disconnect(id).await;
                self.session = None;
                self.reply(ServerMessage::Ok { req, result: OkResult::Empty {} });
                return Next::Close(close(CloseCode::Normal, "logged out"));
            }
            Request::RenewToken { token } => self.renew_token(req, &token),
            request => self.backend.handle(id, req, request).await,
        }
        Next::Continue
    }

    async fn login(&mut self, req: Option<Req>, request: Request) -> Result<(), ProtocolError> {
        let Request::Login { peer_id, token, device } = request else {
            unreachable!("login() is only called with a login request");
        };
        let expiry = match &self.backend.config().secret {
            Some(secret) => Some(token_clock::check(secret, &peer_id, &token)?),
            None => None,
        };
        let id = self.backend.login(&peer_id, &device, req, self.outbox.clone(), self.kick.clone()).await?;
        self.session = Some(id);
        self.token = expiry.map(|expiry| TokenClock::start(&peer_id, expiry));
        Ok(())
    }

    /// `renew_token` (v1.2): a valid token for this session's peer moves its
    /// expiry; a bad one is refused and changes nothing. Open mode: `ok`.
    fn renew_token(&mut self, req: Option<Req>, token: &str) {
        let renewed = match (&mut self.token, &self.backend.config().secret) {
            (Some(clock), Some(secret)) => clock.renew(secret, token),
            _ => Ok(()),
        };
        match renewed {
            Ok(()) => self.reply(ServerMessage::Ok { req, result: OkResult::Empty {} }),
            Err(e) => self.reply_error(req, e),
        }
    }
}
