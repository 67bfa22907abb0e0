//! Accepts TCP connections, enforces the connection cap, performs the
//! WebSocket handshake and spawns one [`session`](super::session) per
//! connection; on shutdown stops accepting and waits for the sessions.

use super::ServerConfig;
use super::hub::Hub;
use super::relay::{self, Relay};
use super::session;
use crate::protocol::media::MEDIA_WS_PATH;
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
pub(super) async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    relay: Option<Arc<Relay>>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(config.max_connections));
    let hub = Hub::new(config, relay.clone());
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
                    let relay = relay.clone();
                    tokio::spawn(async move {
                        match handshake(stream, permit.is_some(), relay.is_some()).await {
                            Some((ws, Path::Signaling)) => {
                                tracing::debug!(%addr, "connection open");
                                session::run(ws, hub, stopping).await;
                            }
                            Some((ws, Path::Media)) => {
                                if let Some(relay) = relay {
                                    relay::serve_ws(ws, relay, stopping).await;
                                }
                            }
                            None => {}
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
    if let Some(relay) = relay {
        relay.shutdown().await;
    }
}

/// Which service a connection asked for at the handshake.
enum Path {
    /// `/`: protocol v1.
    Signaling,
    /// `/media`: the media relay's WebSocket fallback (additive).
    Media,
}

/// The WebSocket handshake on path `/`; refuses with 503 when over the cap.
// The callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn handshake(
    stream: TcpStream,
    admitted: bool,
    media: bool,
) -> Option<(tokio_tungstenite::WebSocketStream<TcpStream>, Path)> {
    let _ = stream.set_nodelay(true);
    let mut path = Path::Signaling;
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let refuse = |status: StatusCode, why: &str| {
            let mut r = ErrorResponse::new(Some(why.to_owned()));
            *r.status_mut() = status;
            r
        };
        if media && request.uri().path() == MEDIA_WS_PATH {
            path = Path::Media;
        } else if request.uri().path() != "/" {
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
    let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await;
    match accepted {
        Ok(Ok(ws)) => Some((ws, path)),
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
