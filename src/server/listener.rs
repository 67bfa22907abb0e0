//! Accepts TCP connections, enforces the connection cap, performs the
//! WebSocket handshake and spawns one [`session`](super::session) per
//! connection; on shutdown stops accepting and waits for the sessions.

use super::ServerConfig;
use super::hub::Hub;
use super::session;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// How long a client may take to complete the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for sessions to say goodbye (the protocol allows 5 s in all).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(4);

/// Accepts until `shutdown` completes, then drains.
pub(super) async fn serve(listener: TcpListener, config: ServerConfig, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let hub = Hub::new(config);
    let _metrics =
        super::metrics::serve_endpoint(hub.config().metrics_listener.as_ref(), hub.metrics.clone());
    let sweeper = tokio::spawn(Hub::sweep_forever(hub.clone()));
    // Every session holds a clone of `done`; when all are dropped, `drained` ends.
    let (done, mut drained) = mpsc::channel::<()>(1);
    let (stop, stopping) = watch::channel(false);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let permit = limit.clone().try_acquire_owned().ok();
                    let hub = hub.clone();
                    let stopping = stopping.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        if permit.is_none() { hub.metrics.handshake_refused(); }
                        if let Some(ws) = handshake(stream, permit.is_some()).await {
                            let _open = hub.metrics.connection_opened();
                            tracing::debug!(%addr, "connection open");
                            session::run(ws, hub, stopping).await;
                        }
                        drop((permit, done));
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::info!("shutting down: closing every session with 1001");
    drop(listener);
    let _ = stop.send(true);
    drop(done);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained.recv()).await;
    sweeper.abort();
}

/// The WebSocket handshake on path `/`; refuses with 503 when over the cap.
// The callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn handshake(
    stream: TcpStream,
    admitted: bool,
) -> Option<tokio_tungstenite::WebSocketStream<TcpStream>> {
    let _ = stream.set_nodelay(true);
    let check = move |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let refuse = |status: StatusCode, why: &str| {
            let mut r = ErrorResponse::new(Some(why.to_owned()));
            *r.status_mut() = status;
            r
        };
        if request.uri().path() != "/" {
            return Err(refuse(StatusCode::NOT_FOUND, "the protocol is served on path /"));
        }
        if !admitted {
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "too many connections"));
        }
        Ok(response)
    };
    let accept = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        check,
        Some(crate::protocol::websocket_config()),
    );
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(ws)) => Some(ws),
        Ok(Err(e)) => {
            tracing::debug!("handshake refused or failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("handshake timed out");
            None
        }
    }
}
