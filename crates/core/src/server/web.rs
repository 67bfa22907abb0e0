//! The browser phone, served by the signaling server on its own port: a
//! plain HTTP `GET`/`HEAD` gets the page's files (built into the binary from
//! `web/dist/`, see `docs/web.md`); a WebSocket upgrade is handed on,
//! untouched, to the handshake the listener has always done.
//!
//! The listener calls [`route`] with the fresh (or TLS) stream. It reads the
//! request head under the handshake deadline, then either answers it here
//! (one response, then the connection closes) or returns the stream wrapped
//! in a [`Replay`] that gives the bytes already read back to tungstenite.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

/// A request head longer than this is refused (431): the page's requests
/// are a few hundred bytes, a WebSocket upgrade well under 1 KiB.
const MAX_HEAD: usize = 16 * 1024;
/// Headers read from one request; more is a 431 too.
const MAX_HEADERS: usize = 64;

/// One file of the page, as built by `npm run build` into `web/dist/`.
struct Asset {
    /// The URL path it is served on.
    path: &'static str,
    /// The file itself.
    body: &'static [u8],
    /// The same, gzip-compressed by the build, for clients that accept it.
    gzip: Option<&'static [u8]>,
    /// Its `Content-Type`.
    content_type: &'static str,
}

macro_rules! dist {
    ($file:literal) => {
        // web/ is at the workspace root, two levels above this crate.
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/dist/", $file))
    };
}

/// Every file of `web/dist/` (crates/core/tests/server/web.rs checks the list is whole).
static ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        body: dist!("index.html"),
        gzip: Some(dist!("index.html.gz")),
        content_type: "text/html; charset=utf-8",
    },
    Asset {
        path: "/app.js",
        body: dist!("app.js"),
        gzip: Some(dist!("app.js.gz")),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/app.css",
        body: dist!("app.css"),
        gzip: Some(dist!("app.css.gz")),
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        path: "/worklet.js",
        body: dist!("worklet.js"),
        gzip: None,
        content_type: "text/javascript; charset=utf-8",
    },
    Asset { path: "/icon.svg", body: dist!("icon.svg"), gzip: None, content_type: "image/svg+xml" },
];

/// The names of the files built into the binary, as they are in `web/dist/`
/// (for the test that keeps the list and the folder in step).
pub fn built_in_files() -> Vec<String> {
    let mut names = Vec::new();
    for asset in ASSETS {
        let name = if asset.path == "/" { "index.html" } else { &asset.path[1..] };
        names.push(name.to_owned());
        if asset.gzip.is_some() {
            names.push(format!("{name}.gz"));
        }
    }
    names
}

/// The strong validator of each asset: a hash of its content, computed once.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        use sha2::Digest;
        ASSETS
            .iter()
            .map(|a| {
                let digest = sha2::Sha256::digest(a.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    &tags[index]
}

/// A stream whose first reads give back `head`, the bytes [`route`] read
/// to decide, then read on from `inner`; writes go straight to `inner`.
pub(super) struct Replay<S> {
    /// What was read to decide, not yet handed on; emptied once replayed.
    head: Vec<u8>,
    /// How much of `head` has been handed on.
    replayed: usize,
    /// The connection itself.
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.replayed < this.head.len() {
            let n = buf.remaining().min(this.head.len() - this.replayed);
            buf.put_slice(&this.head[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.head.len() {
                // Frees the buffer: a session lives for hours, its head is done with.
                this.head = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a request head asks for, as far as this module cares.
struct Head {
    /// `GET`, `HEAD`, ...
    method: String,
    /// The path, without its query string.
    path: String,
    /// An `Upgrade: websocket` request: the listener's business.
    upgrade: bool,
    /// `If-None-Match`, verbatim.
    if_none_match: Option<String>,
    /// `Accept-Encoding` names gzip.
    gzip: bool,
    /// `Host`, when it is a plain host[:port] (it goes into the CSP).
    host: Option<String>,
}

/// Reads the request head of `stream` by `deadline`. An upgrade comes back
/// as a [`Replay`] for the WebSocket handshake; anything else is answered
/// here and `None` returned (so is a connection that fails or times out).
/// `admitted` is false past the connection cap: a page request gets 503.
pub(super) async fn route<S>(mut stream: S, admitted: bool, deadline: Instant) -> Option<Replay<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let parsed = loop {
        match parse(&buf) {
            Ok(Some(head)) => break Ok(head),
            Ok(None) if buf.len() < MAX_HEAD => {}
            Ok(None) => break Err(Status::HeadTooLarge),
            Err(()) => break Err(Status::BadRequest),
        }
        // Straight into the heap buffer: a buffer on the stack would be held
        // in every connection's task for its whole life.
        buf.reserve(1024);
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(_)) => {}
        }
    };
    let answer = match parsed {
        Ok(head) if head.upgrade => return Some(Replay { head: buf, replayed: 0, inner: stream }),
        Ok(_) if !admitted => HttpResponse::status(Status::Unavailable),
        Ok(head) => response_to(&head),
        Err(status) => HttpResponse::status(status),
    };
    let write = async {
        stream.write_all(&answer.bytes).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout_at(deadline, write).await;
    None
}

/// The head in `buf`, `None` while it is incomplete, `Err` when it is not HTTP.
fn parse(buf: &[u8]) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(_)) => {}
        Err(_) => return Err(()),
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_owned)
    };
    let upgrade = header("upgrade").is_some_and(|v| v.to_ascii_lowercase().contains("websocket"));
    let gzip = header("accept-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
    let host = header("host").filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    let target = request.path.unwrap_or("/");
    Ok(Some(Head {
        method: request.method.unwrap_or("").to_owned(),
        path: target.split(['?', '#']).next().unwrap_or("/").to_owned(),
        upgrade,
        if_none_match: header("if-none-match"),
        gzip,
        host,
    }))
}

/// The answers that carry no file.
#[derive(Clone, Copy)]
enum Status {
    NotModified,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::NotModified => "304 Not Modified",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// A whole response, head and body.
struct HttpResponse {
    bytes: Vec<u8>,
}

impl HttpResponse {
    /// A short text response for `status`.
    fn status(status: Status) -> HttpResponse {
        let body = format!("{}\n", status.line());
        let mut head = format!(
            "HTTP/1.1 {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
             X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n",
            status.line(),
            body.len()
        );
        if let Status::MethodNotAllowed = status {
            head.push_str("Allow: GET, HEAD\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        HttpResponse { bytes }
    }
}

/// The response to a request that is not an upgrade.
fn response_to(head: &Head) -> HttpResponse {
    if head.method != "GET" && head.method != "HEAD" {
        return HttpResponse::status(Status::MethodNotAllowed);
    }
    let path = if head.path == "/index.html" { "/" } else { head.path.as_str() };
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        return HttpResponse::status(Status::NotFound);
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let matches = head
        .if_none_match
        .as_deref()
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let (body, encoding) = match asset.gzip {
        Some(gz) if head.gzip => (gz, "Content-Encoding: gzip\r\n"),
        _ => (asset.body, ""),
    };
    let status = if matches { Status::NotModified.line() } else { "200 OK" };
    let length = if matches { String::new() } else { format!("Content-Length: {}\r\n", body.len()) };
    let type_line =
        if matches { String::new() } else { format!("Content-Type: {}\r\n{encoding}", asset.content_type) };
    let response_head = format!(
        "HTTP/1.1 {status}\r\n{type_line}{length}ETag: {tag}\r\nCache-Control: no-cache\r\n\
         Vary: Accept-Encoding\r\nContent-Security-Policy: {}\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\nCross-Origin-Opener-Policy: same-origin\r\n\
         Permissions-Policy: microphone=(self), camera=(), geolocation=()\r\nConnection: close\r\n\r\n",
        content_security_policy(head.host.as_deref())
    );
    let mut bytes = response_head.into_bytes();
    if !matches && head.method == "GET" {
        bytes.extend_from_slice(body);
    }
    HttpResponse { bytes }
}

/// The page's policy: its own files only, no inline script or style, and
/// WebSockets back to the host it came from (`'self'` alone does not cover
/// `ws:` in every browser).
fn content_security_policy(host: Option<&str>) -> String {
    let sockets = host.map(|h| format!(" ws://{h} wss://{h}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{sockets}; worker-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}
