//! The connection: one task per client that connects, logs in, writes the
//! client's requests, reads replies and events, and when the connection
//! drops, retries with backoff, logs in again, renews presence
//! subscriptions and reconciles the call table with the server's list.
//!
//! It is the only producer of [`Event`]s, so they come out in the order
//! things happened. Requests in flight when a connection drops fail with
//! [`Error::ConnectionLost`]; requests made while not logged in fail with
//! [`Error::NotConnected`]; nothing waits for a connection to come back,
//! except a logout, which stops the worker in whatever phase it is.

use super::event::{ConnectionReason, ConnectionState, Event};
use super::table::{Lifecycle, Pending, Table};
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

/// What one client's handles and its worker both use.
pub(crate) struct ClientState {
    /// The call table; the client checks rules in it, the worker applies
    /// replies and events to it.
    table: Mutex<Table>,
    /// The connection's state and why, for `Client::connect` and friends
    /// to wait on (the table's lifecycle cannot be waited on).
    pub status: watch::Sender<(ConnectionState, ConnectionReason)>,
}

impl ClientState {
    pub fn new(peer_id: String) -> Self {
        let (status, _) =
            watch::channel((ConnectionState::Connecting { attempt: 0 }, ConnectionReason::Login));
        ClientState { table: Mutex::new(Table::new(peer_id)), status }
    }

    pub fn table(&self) -> MutexGuard<'_, Table> {
        // A panic under the lock cannot leave the table worth refusing service for.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The answer to a request: the `ok`'s result, or why not.
pub(crate) type ServerReply = Result<OkResult, Error>;

/// A request for the worker to send.
pub(crate) struct Command {
    /// What to send.
    pub request: Request,
    /// What the reply will be applied to.
    pub pending: Pending,
    /// Where the answer goes.
    pub reply: oneshot::Sender<ServerReply>,
}

/// Where the worker's loop stands; each step leads to the next.
enum Step {
    /// Connect and log in: attempt number `attempt` since the last login.
    Connect { attempt: u32, reason: ConnectionReason },
    /// Wait out the backoff before attempt number `attempt`.
    Wait { attempt: u32, reason: ConnectionReason },
    /// Stop for good, in this state.
    Stop(ConnectionState, ConnectionReason),
}

/// Why the worker stops while it is not logged in.
enum Halt {
    /// The app logged out.
    LoggedOut,
    /// Every client handle is gone.
    Stopped,
}

impl Halt {
    fn step(self) -> Step {
        match self {
            Halt::LoggedOut => Step::Stop(ConnectionState::Disconnected, ConnectionReason::LoggedOut),
            Halt::Stopped => Step::Stop(ConnectionState::Disconnected, ConnectionReason::Stopped),
        }
    }
}

/// How a logged-in session ended.
enum SessionEnd {
    /// The connection dropped; retry.
    Dropped(String),
    /// Logged out (the server confirmed, or refused, our logout), or every
    /// client handle is gone.
    Halt(Halt),
}

/// How an attempt to connect and log in failed.
enum AttemptError {
    /// Worth another try later.
    Retry(String),
    /// Not worth another try.
    Abort(ConnectionReason),
    /// Logged out, or every client handle is gone, meanwhile.
    Halt(Halt),
}

/// A request on the wire, waiting for its reply.
struct InFlight {
    /// What its reply will be applied to.
    pending: Pending,
    /// `None` for the worker's own requests (the renewing subscribe).
    reply: Option<oneshot::Sender<ServerReply>>,
}

pub(crate) struct Worker {
    /// Who logs in, and the timers.
    config: ClientConfig,
    /// The servers' URLs with their paths, checked at start; never empty.
    urls: Vec<String>,
    /// Which of them the next attempt goes to (modulo their number).
    next_url: usize,
    /// The call table and status, shared with the client's handles.
    state: Arc<ClientState>,
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
        urls: Vec<String>,
        state: Arc<ClientState>,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        Worker { config, urls, next_url: 0, state, commands, events, next_req: 0 }
    }

    fn emit(&self, events: Vec<Event>) {
        for event in events {
            let _ = self.events.send(event);
        }
    }

    fn set_state(&self, state: ConnectionState, reason: ConnectionReason) {
        tracing::debug!(peer = %self.config.peer_id, state = state.as_str(), %reason, "connection");
        if state.is_final() {
            self.state.table().stop();
        }
        self.state.status.send_replace((state.clone(), reason.clone()));
        let _ = self.events.send(Event::Connection { state, reason });
    }

    /// Connects, serves, and reconnects until stopped, logged out or refused.
    pub async fn run(mut self) {
        let mut step = Step::Connect { attempt: 0, reason: ConnectionReason::Login };
        loop {
            step = match step {
                Step::Connect { attempt, reason } => self.connect(attempt, reason).await,
                Step::Wait { attempt, reason } => self.wait(attempt, reason).await,
                Step::Stop(state, reason) => return self.set_state(state, reason),
            };
        }
    }

    /// One attempt, and the session it opens if it succeeds.
    async fn connect(&mut self, attempt: u32, reason: ConnectionReason) -> Step {
        self.set_state(ConnectionState::Connecting { attempt }, reason);
        match self.attempt().await {
            Ok((socket, session, calls)) => match self.session(socket, session, calls).await {
                // A logout lost with the connection still ends the client.
                SessionEnd::Dropped(_) if self.state.table().lifecycle() == Lifecycle::LoggingOut => {
                    Halt::LoggedOut.step()
                }
                SessionEnd::Dropped(why) => {
                    // The next server in turn: this one may be the node that went away.
                    self.next_url += 1;
                    Step::Wait { attempt: 1, reason: ConnectionReason::Interrupted(why) }
                }
                SessionEnd::Halt(halt) => halt.step(),
            },
            Err(AttemptError::Retry(why)) => {
                self.next_url += 1;
                Step::Wait { attempt: attempt + 1, reason: ConnectionReason::ConnectFailed(why) }
            }
            Err(AttemptError::Abort(why)) => Step::Stop(ConnectionState::Aborted, why),
            Err(AttemptError::Halt(halt)) => halt.step(),
        }
    }

    /// The backoff before attempt `attempt`, answering commands meanwhile.
    async fn wait(&mut self, attempt: u32, reason: ConnectionReason) -> Step {
        let delay = self.config.backoff.delay(attempt);
        self.set_state(ConnectionState::Reconnecting { attempt, next_try_in: delay }, reason);
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Step::Connect { attempt, reason: ConnectionReason::Retry },
                command = self.commands.recv() => {
                    if let Err(halt) = self.while_offline(command) {
                        return halt.step();
                    }
                }
            }
        }
    }

    /// A command while not logged in: a logout stops the worker at once
    /// (there is no session to end); anything else is refused.
    fn while_offline(&self, command: Option<Command>) -> Result<(), Halt> {
        let Some(command) = command else { return Err(Halt::Stopped) };
        if command.pending == Pending::Logout {
            let _ = command.reply.send(Ok(OkResult::Empty {}));
            return Err(Halt::LoggedOut);
        }
        self.state.table().on_failed(&command.pending);
        let _ = command.reply.send(Err(Error::NotConnected));
        Ok(())
    }

    /// One attempt: connect, then log in, within the connect timeout, while
    /// answering commands.
    async fn attempt(&mut self) -> Result<(Socket, String, Vec<LiveCall>), AttemptError> {
        let timeout = self.config.connect_timeout;
        // A token renewed on the last connection logs in from now on.
        if let Some(token) = self.state.table().take_renewed_token() {
            self.config.token = token;
        }
        let url = &self.urls[self.next_url % self.urls.len()];
        let connect = tokio::time::timeout(timeout, connect_and_login(url, &self.config));
        tokio::pin!(connect);
        loop {
            tokio::select! {
                result = &mut connect => {
                    return result.unwrap_or_else(|_| {
                        Err(AttemptError::Retry(format!("no login within {timeout:?}")))
                    });
                }
                command = self.commands.recv() => self.while_offline(command).map_err(AttemptError::Halt)?,
            }
        }
    }

    fn write_frame(&mut self, request: Request) -> (u64, Message) {
        self.next_req += 1;
        (self.next_req, encode(ClientFrame { req: Some(self.next_req.into()), request }))
    }

    /// Writes one frame within the request timeout: a server that stops
    /// reading must not hold the worker (and its idle check) forever.
    async fn send(&self, sink: &mut Sink, message: Message) -> Result<(), SessionEnd> {
        let deadline = self.config.request_timeout;
        match tokio::time::timeout(deadline, sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SessionEnd::Dropped(format!("write failed: {e}"))),
            Err(_) => Err(SessionEnd::Dropped(format!("a write did not complete within {deadline:?}"))),
        }
    }

    /// Serves one logged-in connection until it ends.
    async fn session(&mut self, socket: Socket, session: String, calls: Vec<LiveCall>) -> SessionEnd {
        let (mut sink, mut stream) = socket.split();
        let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
        self.state.table().logged_in();
        self.set_state(ConnectionState::Connected { session }, ConnectionReason::LoginSuccess);
        let end = match self.catch_up_after_login(calls, &mut sink, &mut stream, &mut in_flight).await {
            Ok(()) => self.serve(&mut sink, &mut stream, &mut in_flight).await,
            Err(end) => end,
        };
        self.state.table().connection_lost();
        for (_, flight) in in_flight.drain() {
            // The server may or may not have applied it: the phase stays as
            // it is until the next login's reconciling.
            if let Some(reply) = flight.reply {
                let _ = reply.send(Err(Error::ConnectionLost));
            }
        }
        if let SessionEnd::Halt(_) = end {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                let _ = sink.send(Message::Close(None)).await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
        end
    }

    /// Right after login: applies the events the server kept for us (they
    /// follow the login reply), so a call that ended while we were away
    /// ends with its real reason rather than a guess; then reconciles the
    /// table with the login's `calls` and renews the subscriptions.
    async fn catch_up_after_login(
        &mut self,
        calls: Vec<LiveCall>,
        sink: &mut Sink,
        stream: &mut Stream,
        in_flight: &mut HashMap<u64, InFlight>,
    ) -> Result<(), SessionEnd> {
        while let Some(Some(message)) = stream.next().now_or_never() {
            self.on_message(message, sink, in_flight).await?;
        }
        let mut out = Vec::new();
        let renew = {
            let mut table = self.state.table();
            table.reconcile_after_login(&calls, &mut out);
            table.resubscribe()
        };
        self.emit(out);
        if let Some((request, pending)) = renew {
            let (req, frame) = self.write_frame(request);
            in_flight.insert(req, InFlight { pending, reply: None });
            self.send(sink, frame).await?;
        }
        Ok(())
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
            let reveal_due = self.state.table().next_reveal_due();
            let reveal_overdue = async move {
                match reveal_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                _ = reveal_overdue => {
                    self.state.table().reveals_overdue(Instant::now());
                    Ok(())
                }
                command = self.commands.recv() => {
                    let Some(Command { request, pending, reply }) = command else {
                        return SessionEnd::Halt(Halt::Stopped);
                    };
                    let logout = pending == Pending::Logout;
                    let (req, frame) = self.write_frame(request);
                    in_flight.insert(req, InFlight { pending, reply: Some(reply) });
                    match self.send(sink, frame).await {
                        Ok(()) if logout => return self.await_logout(sink, stream, in_flight).await,
                        written => written,
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else {
                        return SessionEnd::Dropped("the connection closed".into());
                    };
                    last_heard = Instant::now();
                    self.on_message(message, sink, in_flight).await
                }
                _ = ping.tick() => self.send(sink, Message::Ping(Default::default())).await,
                _ = &mut idle => {
                    let deadline = last_heard + idle_timeout;
                    if deadline <= Instant::now() {
                        return SessionEnd::Dropped(format!("nothing heard for {idle_timeout:?}"));
                    }
                    idle.as_mut().reset(deadline);
                    Ok(())
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// After our logout went out: events and replies are still applied
    /// until its reply, but a server that never answers does not keep the
    /// client: within the request timeout it ends as logged out regardless.
    async fn await_logout(
        &mut self,
        sink: &mut Sink,
        stream: &mut Stream,
        in_flight: &mut HashMap<u64, InFlight>,
    ) -> SessionEnd {
        let deadline = self.config.request_timeout;
        let replied = async {
            while let Some(message) = stream.next().await {
                if let Err(end) = self.on_message(message, sink, in_flight).await {
                    return end;
                }
            }
            SessionEnd::Dropped("the connection closed".into())
        };
        let _ = tokio::time::timeout(deadline, replied).await;
        SessionEnd::Halt(Halt::LoggedOut)
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
        let flight = match &message {
            ServerMessage::Ok { req, .. } | ServerMessage::Error { req, .. } => {
                req.as_ref().and_then(|r| r.as_u64()).and_then(|r| in_flight.remove(&r))
            }
            _ => None,
        };
        match (message, flight) {
            (ServerMessage::Ok { result, .. }, Some(flight)) => self.on_ok(result, flight),
            (ServerMessage::Error { code, message, .. }, flight) => {
                self.on_error(ProtocolError::new(code, message), flight)
            }
            (ServerMessage::Ok { .. }, None) => Ok(()),
            (event, _) => {
                let mut out = Vec::new();
                let ack = self.state.table().on_event(event, &mut out);
                self.emit(out);
                match ack {
                    // The reveal is answered: sent as the SDK's own request.
                    Some(Request::MediaReveal { call_id, media_key }) => {
                        let pending = Pending::Reveal(call_id.clone());
                        let (req, frame) = self.write_frame(Request::MediaReveal { call_id, media_key });
                        in_flight.insert(req, InFlight { pending, reply: None });
                        self.send(sink, frame).await
                    }
                    // No `req`: the server does not answer a `received`.
                    Some(ack) => self.send(sink, encode(ClientFrame { req: None, request: ack })).await,
                    None => Ok(()),
                }
            }
        }
    }

    /// The `ok` to one of our requests; the session ends after a logout's.
    fn on_ok(&self, result: OkResult, flight: InFlight) -> Result<(), SessionEnd> {
        let online = match &result {
            OkResult::Presence { online } => Some(online),
            _ => None,
        };
        let mut out = Vec::new();
        {
            let mut table = self.state.table();
            if let Pending::Accept(call_id) = &flight.pending {
                table.on_accept_answered(call_id, &result, Instant::now());
            }
            table.on_ok(&flight.pending, online, &mut out);
        }
        self.emit(out);
        let logged_out = flight.pending == Pending::Logout;
        if let Some(reply) = flight.reply {
            let _ = reply.send(Ok(result));
        }
        if logged_out { Err(SessionEnd::Halt(Halt::LoggedOut)) } else { Ok(()) }
    }

    /// An `error`: the reply to one of our requests, or the server's own
    /// news. A refused logout still ends the session: the app asked to stop.
    fn on_error(&self, error: ProtocolError, flight: Option<InFlight>) -> Result<(), SessionEnd> {
        let Some(flight) = flight else {
            tracing::warn!("the server reported an error: {error}");
            return Ok(());
        };
        self.state.table().on_failed(&flight.pending);
        let logged_out = flight.pending == Pending::Logout;
        match flight.reply {
            Some(reply) => {
                let _ = reply.send(Err(Error::Server(error)));
            }
            None => tracing::warn!("the server refused the SDK's own request: {error}"),
        }
        if logged_out { Err(SessionEnd::Halt(Halt::LoggedOut)) } else { Ok(()) }
    }
}

/// A frame as the text message that carries it.
fn encode(frame: ClientFrame) -> Message {
    Message::Text(serde_json::to_string(&frame).expect("requests always serialize").into())
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
