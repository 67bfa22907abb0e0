//! A small protocol v1 client for the tests, over tokio-tungstenite, and the
//! helpers the test modules share (starting a server, checking messages).
//!
//! Every wait has a deadline and panics with a clear message when it passes,
//! so a missing event fails the test instead of hanging it.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use softphone_core::server::{ServerConfig, ServerHandle};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The WebSocket stream a client speaks over.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub use crate::servers::{QUIET, WAIT, start_server};

/// Starts a server with the protocol's defaults.
pub async fn start_default() -> ServerHandle {
    start_server(ServerConfig::default()).await
}

/// Panics unless every field of `expected` (an object) is in `actual` with
/// the same value; other fields of `actual` are allowed (extensions are).
pub fn check(actual: &Value, expected: Value) {
    let want = expected.as_object().expect("check takes an object");
    let Some(got) = actual.as_object() else {
        panic!("expected an object like {expected}, got {actual}");
    };
    for (k, v) in want {
        if got.get(k) != Some(v) {
            panic!("field {k:?}: expected {v}, got {}\n  expected ⊆ {expected}\n  actual    {actual}", {
                got.get(k).map(|x| x.to_string()).unwrap_or_else(|| "nothing".into())
            });
        }
    }
}

/// Like [`check`], and the message must be an event: no `req`.
pub fn check_event(actual: &Value, expected: Value) {
    check(actual, expected);
    assert!(actual.get("req").is_none(), "an event carries no req: {actual}");
}

/// Panics unless `reply` is an `error` with `code`.
pub fn check_error(reply: &Value, code: &str) {
    check(reply, json!({"type": "error", "code": code}));
    assert!(reply.get("message").is_some_and(Value::is_string), "an error carries a message string: {reply}");
}

/// The `type` of a message, or "" when it has none.
pub fn ty(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A string of exactly `n` bytes.
pub fn bytes(n: usize) -> String {
    "x".repeat(n)
}

/// How reading ended when no text message came.
#[derive(Debug)]
pub enum End {
    /// The deadline passed.
    Timeout,
    /// The server sent a Close frame (its code, if any).
    Closed(Option<u16>),
    /// The stream ended or failed without a Close frame.
    #[allow(dead_code)] // shown through Debug in panic messages
    Eof(String),
}

/// One test client: a WebSocket connection plus the messages already read
/// but not yet consumed (events that came before the reply being waited for).
pub struct Client {
    ws: Ws,
    pending: VecDeque<Value>,
    next_req: i64,
    /// A label for panic messages (the peer id once logged in).
    pub name: String,
}

impl Client {
    /// Connects to `url`, or fails as the WebSocket handshake does.
    pub async fn try_connect(url: &str) -> Result<Client, tungstenite::Error> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .unwrap_or_else(|_| panic!("connecting to {url} took longer than {WAIT:?}"))?;
        Ok(Client { ws, pending: VecDeque::new(), next_req: 1000, name: "(not logged in)".into() })
    }

    /// Connects to `url`.
    pub async fn connect(url: &str) -> Client {
        Client::try_connect(url).await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
    }

    /// Connects and logs in as `peer` (open mode: no token), asserting `ok`.
    pub async fn login(url: &str, peer: &str) -> Client {
        Client::login_device(url, peer, "").await.0
    }

    /// Connects and logs in as `peer` from `device`; returns the `ok` reply too.
    pub async fn login_device(url: &str, peer: &str, device: &str) -> (Client, Value) {
        let mut c = Client::connect(url).await;
        let reply = c.ok(json!({"type": "login", "peer_id": peer, "device": device})).await;
        c.name = format!("{peer}/{device}");
        (c, reply)
    }

    /// Sends a JSON message as one text frame.
    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.send_message(Message::text(text.into())).await;
    }

    /// Sends any WebSocket message.
    pub async fn send_message(&mut self, m: Message) {
        let name = self.name.clone();
        tokio::time::timeout(WAIT, self.ws.send(m))
            .await
            .unwrap_or_else(|_| panic!("{name}: sending took longer than {WAIT:?}"))
            .unwrap_or_else(|e| panic!("{name}: send failed: {e}"));
    }

    /// A fresh request id.
    pub fn fresh_req(&mut self) -> i64 {
        self.next_req += 1;
        self.next_req
    }

    /// Reads the next text message from the socket (not the pending queue),
    /// skipping control frames, until `deadline`.
    async fn read_text(&mut self, deadline: Instant) -> Result<Value, End> {
        loop {
            match timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(End::Timeout),
                Ok(None) => return Err(End::Eof("end of stream".into())),
                Ok(Some(Err(e))) => return Err(End::Eof(e.to_string())),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Ok(serde_json::from_str(t.as_str()).unwrap_or_else(|e| {
                        panic!("{}: the server sent a text frame that is not JSON ({e}): {t}", self.name)
                    }));
                }
                Ok(Some(Ok(Message::Close(f)))) => return Err(End::Closed(f.map(|f| u16::from(f.code)))),
                Ok(Some(Ok(Message::Binary(b)))) => {
                    panic!("{}: the server sent a binary frame ({} bytes)", self.name, b.len())
                }
                Ok(Some(Ok(_))) => {} // Ping, Pong, raw frames: tungstenite answers pings itself.
            }
        }
    }

    /// The next message (pending first), waiting up to [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        if let Some(v) = self.pending.pop_front() {
            return v;
        }
        match self.read_text(Instant::now() + WAIT).await {
            Ok(v) => v,
            Err(End::Timeout) => panic!("{}: no message within {WAIT:?}", self.name),
            Err(e) => panic!("{}: connection ended while waiting for a message: {e:?}", self.name),
        }
    }

    /// Skips messages until one of type `t` comes, and returns it.
    pub async fn recv_until(&mut self, t: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = match self.pending.pop_front() {
                Some(v) => v,
                None => match self.read_text(deadline).await {
                    Ok(v) => v,
                    Err(e) => panic!("{}: no {t:?} message: {e:?}", self.name),
                },
            };
            if ty(&v) == t {
                return v;
            }
        }
    }

    /// Asserts that no text message comes within `d` (Ping/Pong ignored).
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Some(v) = self.pending.front() {
            panic!("{}: expected silence, but {v} was already received", self.name);
        }
        match self.read_text(Instant::now() + d).await {
            Err(End::Timeout) => {}
            Ok(v) => panic!("{}: expected silence for {d:?}, got {v}", self.name),
            Err(e) => panic!("{}: expected silence for {d:?}, but the connection ended: {e:?}", self.name),
        }
    }

    /// Sends `v` with a fresh `req` (unless it has one) and returns the req.
    pub async fn send_req(&mut self, mut v: Value) -> i64 {
        let req = match v.get("req").and_then(Value::as_i64) {
            Some(r) => r,
            None => {
                let r = self.fresh_req();
                v["req"] = json!(r);
                r
            }
        };
        self.send(v).await;
        req
    }

    /// Waits for the reply carrying `req`; messages read before it stay
    /// pending, in order, for [`Client::recv`].
    pub async fn reply(&mut self, req: i64) -> Value {
        if let Some(i) = self.pending.iter().position(|m| m.get("req") == Some(&json!(req))) {
            return self.pending.remove(i).expect("index is in range");
        }
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_text(deadline).await {
                Ok(v) if v.get("req") == Some(&json!(req)) => return v,
                Ok(v) => self.pending.push_back(v),
                Err(e) => {
                    panic!("{}: no reply to req {req}: {e:?}; other messages: {:?}", self.name, self.pending)
                }
            }
        }
    }

    /// Sends a request and returns its reply (events that came first stay pending).
    pub async fn request(&mut self, v: Value) -> Value {
        let req = self.send_req(v).await;
        self.reply(req).await
    }

    /// Sends a request and asserts the reply is `ok`.
    pub async fn ok(&mut self, v: Value) -> Value {
        let sent = v.to_string();
        let reply = self.request(v).await;
        assert_eq!(ty(&reply), "ok", "{}: {sent} should get ok, got {reply}", self.name);
        reply
    }

    /// Sends a request and asserts the reply is an `error` with `code`.
    pub async fn error(&mut self, v: Value, code: &str) -> Value {
        let sent = v.to_string();
        let reply = self.request(v).await;
        assert!(
            ty(&reply) == "error" && reply["code"] == code,
            "{}: {sent} should get error {code}, got {reply}",
            self.name
        );
        check_error(&reply, code);
        reply
    }

    /// Reads until the server closes; returns the close code (`None` when
    /// the connection ended without a Close frame). Text messages read on
    /// the way are kept pending.
    pub async fn expect_close(&mut self) -> Option<u16> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.read_text(deadline).await {
                Ok(v) => self.pending.push_back(v),
                Err(End::Closed(code)) => return code,
                Err(End::Eof(_)) => return None,
                Err(End::Timeout) => panic!("{}: the server did not close within {WAIT:?}", self.name),
            }
        }
    }

    /// The next WebSocket message of any kind within `d`, or `None`.
    pub async fn next_message(&mut self, d: Duration) -> Option<Message> {
        match tokio::time::timeout(d, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            _ => None,
        }
    }

    /// Messages read but not yet consumed.
    pub fn pending(&self) -> &VecDeque<Value> {
        &self.pending
    }

    /// Closes the connection with a Close handshake and waits for the end.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.ws.close(None)).await;
        let deadline = Instant::now() + WAIT;
        while let Ok(Some(Ok(_))) = timeout_at(deadline, self.ws.next()).await {}
    }
}

/// A TCP connection that has done the WebSocket handshake by hand and then
/// does nothing: it never answers pings nor reads unless asked to.
pub struct RawSocket {
    pub stream: TcpStream,
}

impl RawSocket {
    /// Connects to `addr` and completes the opening handshake (HTTP 101).
    pub async fn handshake(addr: std::net::SocketAddr) -> RawSocket {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write the upgrade request");
        // Read the response head byte by byte so no frame after it is consumed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
                .await
                .expect("the handshake response within the wait")
                .expect("read the handshake response");
            assert_eq!(n, 1, "connection closed during the handshake: {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "expected 101 Switching Protocols, got {head}");
        RawSocket { stream }
    }

    /// Reads server frames (without answering) until the server closes the
    /// connection: a Close frame or end of stream. Returns the opcodes seen.
    /// Panics if that does not happen by `deadline`.
    pub async fn wait_closed(&mut self, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut buf = Vec::new();
        let mut opcodes = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // Parse whole frames in buf (server frames are not masked).
            while buf.len() >= 2 {
                let opcode = buf[0] & 0x0f;
                let (len, header) = match buf[1] & 0x7f {
                    126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                    127 if buf.len() >= 10 => {
                        (u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")) as usize, 10)
                    }
                    126 | 127 => break,
                    n => (n as usize, 2),
                };
                if buf.len() < header + len {
                    break;
                }
                opcodes.push(opcode);
                buf.drain(..header + len);
                if opcode == 0x8 {
                    return opcodes;
                }
            }
            match timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => panic!("the server did not close a silent connection within {within:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return opcodes,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// `caller` invites `callee` with `call_id`, asserting ok.
pub async fn invite(caller: &mut Client, call_id: &str, callee: &str) {
    caller.ok(json!({"type": "invite", "call_id": call_id, "callee_id": callee})).await;
}

/// Asserts the next message of `c` is the invitation `call_id` from `caller`.
pub async fn expect_invitation(c: &mut Client, call_id: &str, caller: &str) -> Value {
    let inv = c.recv().await;
    check_event(&inv, json!({"type": "invitation", "call_id": call_id, "caller_id": caller}));
    inv
}
