//! The connection: one task per client that connects, logs in, writes the
//! client's requests, reads replies and events, and when the connection
//! drops, retries with backoff, logs in again, renews presence
//! subscriptions and reconciles the call table with the server's list.
//!
//! It is the only producer of [`Event`]s, so they come out in the order
//! things happened. Requests in flight when a connection drops fail with
//! [`Error::ConnectionLost`]; requests made while not logged in fail with
//! [`Error::NotConnected`]; nothing waits for a connection to come back.

use super::event::{ConnectionReason, ConnectionState, Event};
use super::table::{Pending, Table};
use super::{ClientConfig, Error};
use crate::protocol::{ClientFrame, ErrorCode, LiveCall, OkResult, ProtocolError, Request, ServerMessage};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for the server's close after our logout or close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// What the client and the worker share.
pub(crate) struct Shared {
    /// The call table; the client checks rules in it, the worker applies
    /// replies and events to it.
    table: Mutex<Table>,
    /// The connection's state and why, for `Client::connect` and friends.
    pub status: watch::Sender<(ConnectionState, ConnectionReason)>,
}

impl Shared {
    pub fn new(peer_id: String) -> Self {
        let (status, _) =
            watch::channel((ConnectionState::Connecting { attempt: 0 }, ConnectionReason::Login));
        Shared { table: Mutex::new(Table::new(peer_id)), status }
    }

    pub fn table(&self) -> MutexGuard<'_, Table> {
        // A panic under the lock cannot leave the table worth refusing service for.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The answer to a request: the `ok`'s result, or why not.
pub(crate) type Answer = Result<OkResult, Error>;

/// A request for the worker to send.
pub(crate) struct Command {
    /// What to send.
    pub request: Request,
    /// What the reply will be applied to.
    pub pending: Pending,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Answer>,
}

/// How a logged-in session ended.
enum SessionEnd {
    /// The connection dropped; retry.
    Dropped(String),
    /// Our logout was confirmed.
    LoggedOut,
    /// Every client handle is gone.
    Stopped,
}

/// How an attempt to connect and log in failed.
enum AttemptError {
    /// Worth another try later.
    Retry(String),
    /// Not worth another try.
    Abort(ConnectionReason),
    /// Every client handle is gone.
    Stopped,
}

/// A request on the wire, waiting for its reply.
struct InFlight {
    /// What its reply will be applied to.
    pending: Pending,
    /// `None` for the worker's own requests (the renewing subscribe).
    reply: Option<oneshot::Sender<Answer>>,
}

pub(crate) struct Worker {
    /// Who logs in, and the timers.
    config: ClientConfig,
    /// The URL with its path, checked at start.
    url: String,
    shared: Arc<Shared>,
    /// Requests from the client; closed when every handle is gone.
    commands: mpsc::UnboundedReceiver<Command>,
    /// Where events go; the worker is their only producer.
    events: mpsc::UnboundedSender<Event>,
    /// The last `req` used; never reused while the worker lives.
    next_req: u64,
}

impl Worker {
    pub fn new(
        config: ClientConfig,
        url: String,
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Worker { config, url, shared, commands, events, next_req: 0 }
    }

    fn emit(&self, events: Vec<Event>) {
        for event in events {
            let _ = self.events.send(event);
        }
    }

    fn set_state(&self, state: ConnectionState, reason: ConnectionReason) {
        tracing::debug!(peer = %self.config.peer_id, state = state.as_str(), %reason, "connection");
        if state.is_final() {
            self.shared.table().stopped = true;
        }
        self.shared.status.send_replace((state.clone(), reason.clone()));
        let _ = self.events.send(Event::Connection { state, reason });
    }

    /// Connects, serves, and reconnects until stopped, logged out or refused.
    pub async fn run(mut self) {
        let mut attempt = 0;
        let mut reason = ConnectionReason::Login;
        loop {
            self.set_state(ConnectionState::Connecting { attempt }, reason);
            reason = match self.attempt().await {
                Ok((socket, session, calls)) => match self.session(socket, session, calls).await {
                    SessionEnd::Dropped(why) => {
                        attempt = 0;
                        ConnectionReason::Interrupted(why)
                    }
                    SessionEnd::LoggedOut => {
                        return self.set_state(ConnectionState::Disconnected, ConnectionReason::LoggedOut);
                    }
                    SessionEnd::Stopped => {
                        return self.set_state(ConnectionState::Disconnected, ConnectionReason::Stopped);
                    }
                },
                Err(AttemptError::Retry(why)) => ConnectionReason::ConnectFailed(why),
                Err(AttemptError::Abort(why)) => return self.set_state(ConnectionState::Aborted, why),
                Err(AttemptError::Stopped) => {
                    return self.set_state(ConnectionState::Disconnected, ConnectionReason::Stopped);
                }
            };
            attempt += 1;
            let delay = self.config.backoff.delay(attempt);
            self.set_state(ConnectionState::Reconnecting { attempt, next_try_in: delay }, reason);
            if !self.refuse_commands_for(delay).await {
                return self.set_state(ConnectionState::Disconnected, ConnectionReason::Stopped);
            }
            reason = ConnectionReason::Retry;
        }
    }

    /// Answers commands with `NotConnected` for `delay`; `false` if every
    /// client handle went away meanwhile.
    async fn refuse_commands_for(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                command = self.commands.recv() => match command {
                    Some(command) => self.refuse(command),
                    None => return false,
                },
            }
        }
    }

    /// A command that cannot go out: undo its state change and say why.
    fn refuse(&self, command: Command) {
        self.shared.table().on_failed(&command.pending);
        let _ = command.reply.send(Err(Error::NotConnected));
    }

    /// One attempt: connect, then log in, within the connect timeout, while
    /// refusing commands.
    async fn attempt(&mut self) -> Result<(Socket, String, Vec<LiveCall>), AttemptError> {
        let timeout = self.config.connect_timeout;
        let connect = tokio::time::timeout(timeout, connect_and_login(&self.url, &self.config));
        tokio::pin!(connect);
        loop {
            tokio::select! {
                result = &mut connect => {
                    return result.unwrap_or_else(|_| {
                        Err(AttemptError::Retry(format!("no login within {timeout:?}")))
                    });
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.refuse(command),
                    None => return Err(AttemptError::Stopped),
                },
            }
        }
    }

    fn write_frame(&mut self, request: Request) -> (u64, Message) {
        self.next_req += 1;
        let frame = ClientFrame { req: Some(self.next_req.into()), request };
        let text = serde_json::to_string(&frame).expect("requests always serialize");
        (self.next_req, Message::Text(text.into()))
    }

    /// Serves one logged-in connection until it ends.
    async fn session(&mut self, socket: Socket, session: String, calls: Vec<LiveCall>) -> SessionEnd {
        let (mut sink, mut stream) = socket.split();
        let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
        self.shared.table().logged_in();
        self.set_state(ConnectionState::Connected { session }, ConnectionReason::LoginSuccess);

        // Events the server kept for us follow the login reply; apply those
        // already here before reconciling, so a call that ended while we were
        // away ends with its real reason rather than a guess.
        let mut end = None;
        while let Some(Some(message)) = stream.next().now_or_never() {
            if let Err(e) = self.on_message(message, &mut sink, &mut in_flight).await {
                end = Some(e);
                break;
            }
        }
        if end.is_none() {
            let mut out = Vec::new();
            let renew = {
                let mut table = self.shared.table();
                table.reconcile(&calls, &mut out);
                table.resubscribe()
            };
            self.emit(out);
            if let Some((request, pending)) = renew {
                let (req, frame) = self.write_frame(request);
                in_flight.insert(req, InFlight { pending, reply: None });
                if let Err(e) = sink.send(frame).await {
                    end = Some(SessionEnd::Dropped(format!("write failed: {e}")));
                }
            }
        }

        let end = match end {
            Some(end) => end,
            None => self.serve(&mut sink, &mut stream, &mut in_flight).await,
        };

        self.shared.table().connected = false;
        for (_, flight) in in_flight.drain() {
            // The server may or may not have applied it: the state stays as
            // it is until the next login's reconcile settles it.
            if let Some(reply) = flight.reply {
                let _ = reply.send(Err(Error::ConnectionLost));
            }
        }
        if !matches!(end, SessionEnd::Dropped(_)) {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                let _ = sink.send(Message::Close(None)).await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
        end
    }

    /// The loop of a logged-in connection: requests out, replies and events
    /// in, pings, and the idle check.
    async fn serve(
        &mut self,
        sink: &mut Sink,
        stream: &mut Stream,
        in_flight: &mut HashMap<u64, InFlight>,
    ) -> SessionEnd {
        let ping_every = self.config.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle_timeout = self.config.idle_timeout;
        let mut last_heard = Instant::now();
        let idle = tokio::time::sleep_until(last_heard + idle_timeout);
        tokio::pin!(idle);
        loop {
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(Command { request, pending, reply }) = command else {
                        return SessionEnd::Stopped;
                    };
                    let (req, frame) = self.write_frame(request);
                    in_flight.insert(req, InFlight { pending, reply: Some(reply) });
                    if let Err(e) = sink.send(frame).await {
                        return SessionEnd::Dropped(format!("write failed: {e}"));
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else {
                        return SessionEnd::Dropped("the connection closed".into());
                    };
                    last_heard = Instant::now();
                    if let Err(end) = self.on_message(message, sink, in_flight).await {
                        return end;
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = sink.send(Message::Ping(Default::default())).await {
                        return SessionEnd::Dropped(format!("write failed: {e}"));
                    }
                }
                _ = &mut idle => {
                    let deadline = last_heard + idle_timeout;
                    if deadline > Instant::now() {
                        idle.as_mut().reset(deadline);
                    } else {
                        return SessionEnd::Dropped(format!("nothing heard for {idle_timeout:?}"));
                    }
                }
            }
        }
    }

    /// Applies one frame from the server; `Err` when the session is over.
    async fn on_message(
        &mut self,
        message: Result<Message, WsError>,
        sink: &mut Sink,
        in_flight: &mut HashMap<u64, InFlight>,
    ) -> Result<(), SessionEnd> {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                let why = match frame {
                    Some(f) => format!("closed by the server ({}: {})", u16::from(f.code), f.reason),
                    None => "closed by the server".into(),
                };
                return Err(SessionEnd::Dropped(why));
            }
            // tungstenite answers pings itself; anything heard keeps us alive.
            Ok(_) => return Ok(()),
            Err(e) => return Err(SessionEnd::Dropped(format!("read failed: {e}"))),
        };
        let message: ServerMessage = match serde_json::from_str(&text) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!("ignoring a frame the SDK cannot read ({e}): {text}");
                return Ok(());
            }
        };
        let mut out = Vec::new();
        let mut logged_out = false;
        let ack = match message {
            ServerMessage::Ok { req, result } => {
                if let Some(flight) = req.and_then(|r| r.as_u64()).and_then(|r| in_flight.remove(&r)) {
                    let online = match &result {
                        OkResult::Presence { online } => Some(online),
                        _ => None,
                    };
                    self.shared.table().on_ok(&flight.pending, online, &mut out);
                    logged_out = flight.pending == Pending::Logout;
                    self.emit(std::mem::take(&mut out));
                    if let Some(reply) = flight.reply {
                        let _ = reply.send(Ok(result));
                    }
                }
                None
            }
            ServerMessage::Error { req, code, message } => {
                let error = ProtocolError::new(code, message);
                match req.and_then(|r| r.as_u64()).and_then(|r| in_flight.remove(&r)) {
                    Some(flight) => {
                        self.shared.table().on_failed(&flight.pending);
                        match flight.reply {
                            Some(reply) => {
                                let _ = reply.send(Err(Error::Server(error)));
                            }
                            None => tracing::warn!("the server refused the SDK's own request: {error}"),
                        }
                    }
                    None => tracing::warn!("the server reported an error: {error}"),
                }
                None
            }
            event => self.shared.table().on_event(event, &mut out),
        };
        self.emit(out);
        if let Some(ack) = ack {
            // No `req`: the server does not answer a `received`.
            let frame = ClientFrame { req: None, request: ack };
            let text = serde_json::to_string(&frame).expect("requests always serialize");
            if let Err(e) = sink.send(Message::Text(text.into())).await {
                return Err(SessionEnd::Dropped(format!("write failed: {e}")));
            }
        }
        if logged_out {
            return Err(SessionEnd::LoggedOut);
        }
        Ok(())
    }
}

type Sink = futures_util::stream::SplitSink<Socket, Message>;
type Stream = futures_util::stream::SplitStream<Socket>;

/// Opens the WebSocket and logs in; returns the session id and the live calls.
async fn connect_and_login(
    url: &str,
    config: &ClientConfig,
) -> Result<(Socket, String, Vec<LiveCall>), AttemptError> {
    let connector = config
        .tls_connector()
        .map_err(|e| AttemptError::Abort(ConnectionReason::BadAddress(e.to_string())))?;
    let connect = tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector);
    let (mut socket, _) = connect.await.map_err(|e| match e {
        WsError::Http(response) if response.status().is_client_error() => {
            AttemptError::Abort(ConnectionReason::BadAddress(format!(
                "the server answered the handshake with HTTP {}",
                response.status()
            )))
        }
        WsError::Url(e) => AttemptError::Abort(ConnectionReason::BadAddress(e.to_string())),
        e => AttemptError::Retry(e.to_string()),
    })?;
    let login = ClientFrame {
        req: Some(0.into()),
        request: Request::Login {
            peer_id: config.peer_id.clone(),
            token: config.token.clone(),
            device: config.device.clone(),
        },
    };
    let text = serde_json::to_string(&login).expect("requests always serialize");
    socket.send(Message::Text(text.into())).await.map_err(|e| AttemptError::Retry(e.to_string()))?;
    loop {
        let message = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                return Err(AttemptError::Retry("the server closed the connection during login".into()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(AttemptError::Retry(e.to_string())),
        };
        match serde_json::from_str::<ServerMessage>(&message) {
            Ok(ServerMessage::Ok { result: OkResult::Login { session, calls }, .. }) => {
                return Ok((socket, session, calls));
            }
            Ok(ServerMessage::Error { code, message, .. }) => {
                let error = ProtocolError::new(code, message);
                return Err(match code {
                    // Refused for good: retrying with the same credentials cannot help.
                    ErrorCode::InvalidToken
                    | ErrorCode::TokenExpired
                    | ErrorCode::InvalidArgument
                    | ErrorCode::BadRequest
                    | ErrorCode::AlreadyLoggedIn => {
                        AttemptError::Abort(ConnectionReason::LoginRefused(error))
                    }
                    _ => AttemptError::Retry(format!("login failed: {error}")),
                });
            }
            Ok(other) => tracing::debug!("ignoring {other:?} before the login reply"),
            Err(e) => tracing::warn!("ignoring a frame the SDK cannot read ({e}): {message}"),
        }
    }
}
