//! The metrics endpoint: a small HTTP/1.1 server (hyper) on a listener of
//! its own, answering `/metrics` (Prometheus text) and `/healthz`. It is
//! meant for an internal network: one request per connection, a deadline
//! on each connection and a cap on how many are served at once, so a
//! stranger reaching it can hold nothing for long.

use super::Metrics;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// How long one metrics connection may take, request and response, writes included.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long a request's head (request line and headers) may take to
/// arrive: a client that connects and sends nothing, or trickles a header,
/// is cut after this, long before the connection's own deadline.
const HEADER_READ_DEADLINE: Duration = Duration::from_secs(3);
/// Metrics connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;

/// The socket the metrics endpoint serves on. It is bound before the server
/// starts, so a bad `--metrics-listen` address fails at start and the real
/// port is known when port 0 was asked for.
#[derive(Clone, Debug)]
pub struct MetricsListener {
    /// Where it is bound.
    addr: SocketAddr,
    /// The bound socket, taken by the server that serves on it.
    socket: Arc<Mutex<Option<std::net::TcpListener>>>,
}

impl MetricsListener {
    /// Binds `addr` (`HOST:PORT`; port 0 picks a free one).
    pub fn bind(addr: &str) -> std::io::Result<MetricsListener> {
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(MetricsListener { addr: socket.local_addr()?, socket: Arc::new(Mutex::new(Some(socket))) })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The socket, once: a second server given the same config serves no metrics.
    fn take(&self) -> Option<std::net::TcpListener> {
        self.socket.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The endpoint's task; stopping the server drops it, which ends it.
pub(crate) struct Endpoint(JoinHandle<()>);

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts serving `metrics` on `listener`, if there is one.
pub(crate) fn serve_endpoint(listener: Option<&MetricsListener>, metrics: Arc<Metrics>) -> Option<Endpoint> {
    let listener = listener?;
    let Some(socket) = listener.take() else {
        tracing::warn!(addr = %listener.addr, "the metrics listener is already in use by another server");
        return None;
    };
    let socket = match tokio::net::TcpListener::from_std(socket) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(addr = %listener.addr, "cannot serve metrics: {e}");
            return None;
        }
    };
    Some(Endpoint(tokio::spawn(accept_forever(socket, metrics))))
}

async fn accept_forever(socket: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match socket.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::warn!("metrics accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap the connection is dropped unanswered: scrapers retry.
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_DEADLINE)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
                tracing::debug!("metrics connection cut at its deadline: {e}");
            }
            drop(slot);
        });
    }
}

/// The answer to one request.
fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path != "/metrics" && path != "/healthz" {
        return plain(StatusCode::NOT_FOUND, "not found: try /metrics or /healthz\n".into());
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into());
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if path == "/healthz" {
        return match metrics.health_at(std::time::Instant::now()) {
            Ok(()) => plain(StatusCode::OK, "ok\n".into()),
            Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        };
    }
    let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
    let content_type = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}
