//! Accepts TCP connections, enforces the connection cap (lowered at start
//! to what the process can open), performs the TLS and WebSocket handshakes
//! under the handshake deadline and spawns one [`session`](super::session)
//! per connection; on shutdown stops accepting and waits for the sessions.

use super::ServerConfig;
use super::backend::Backend;
use super::cluster::ClusterHub;
use super::hub::Hub;
use super::origin::OriginPolicy;
use super::relay::{self, Relay};
use super::session;
use crate::protocol::relay::MEDIA_WS_PATH;
use futures_util::future::{BoxFuture, Either};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// How long shutdown waits for sessions to say goodbye (the protocol allows 5 s in all).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(4);
/// Descriptors kept back from the connection cap: the process's own files
/// (listener, runtime, log, secret and certificate files) and the sockets
/// of connections past the cap, which are accepted only to be told 503.
const RESERVED_DESCRIPTORS: u64 = 64;

/// How long a cluster node waits at start to hear its channel before it
/// serves anyway (refusing logins until it does).
const CLUSTER_PATIENCE: Duration = Duration::from_secs(3);

/// What a connection needs besides its socket.
#[derive(Clone)]
struct Context {
    /// Where this connection's requests are decided: the single node or a cluster node.
    backend: Backend,
    /// Told when the server begins shutting down.
    stopping: watch::Receiver<bool>,
    /// Held by every connection task; shutdown waits until all are gone.
    _done: mpsc::Sender<()>,
    /// Present when the server speaks `wss://`.
    tls: Option<TlsAcceptor>,
    /// The media relay, whose WebSocket fallback is served on `/media`.
    relay: Option<Arc<Relay>>,
    /// Which browser pages may open a socket (`Origin`), checked at every handshake.
    origins: Arc<OriginPolicy>,
}

/// Accepts until `shutdown` completes, then drains.
pub(super) async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    relay: Option<Arc<Relay>>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(connection_cap(config.max_connections)));
    let tls = config.tls.clone().map(TlsAcceptor::from);
    let origins = Arc::new(OriginPolicy::new(tls.is_some(), config.allowed_origins.clone()));
    let Some(hub) = decider(config, relay.clone(), listener.local_addr().ok()).await else { return };
    let _metrics =
        super::metrics::serve_endpoint(hub.config().metrics_listener.as_ref(), hub.metrics().clone());
    let sweeper = match &hub {
        Backend::Single(single) => Some(tokio::spawn(Hub::sweep_forever(single.clone()))),
        Backend::Cluster(_) => None,
    };
    // Every session holds a clone of `done`; when all are dropped, `drained` ends.
    let (done, mut drained) = mpsc::channel::<()>(1);
    let (stop, stopping) = watch::channel(false);
    let context = Context { backend: hub.clone(), stopping, _done: done, tls, relay: relay.clone(), origins };

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let permit = limit.clone().try_acquire_owned().ok();
                    tokio::spawn(connection(stream, addr, permit, context.clone()));
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
    drop(context);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained.recv()).await;
    if let Some(sweeper) = sweeper {
        sweeper.abort();
    }
    if let Backend::Cluster(cluster) = &hub {
        cluster.shutdown().await;
    }
    if let Some(relay) = relay {
        relay.shutdown().await;
    }
}

/// The hub `config` asks for: a cluster node's when it names a cluster,
/// else the single node's. `None` (logged) if the cluster's URL is unusable.
async fn decider(
    config: ServerConfig,
    relay: Option<Arc<Relay>>,
    listening: Option<SocketAddr>,
) -> Option<Backend> {
    if config.cluster.is_none() {
        return Some(Backend::Single(Hub::new(config, relay)));
    }
    let metrics = Arc::new(super::metrics::Metrics::new());
    match ClusterHub::start(config, relay, metrics, listening) {
        Ok(hub) => {
            hub.ready(CLUSTER_PATIENCE).await;
            Some(Backend::Cluster(hub))
        }
        Err(e) => {
            tracing::error!("cannot join the cluster: {e}");
            None
        }
    }
}

/// Which service a connection asked for at the handshake.
enum Path {
    /// `/`: protocol v1.
    Signaling,
    /// `/media`: the media relay's WebSocket fallback (additive), with its
    /// slot under the relay's own cap (`--max-media-connections`).
    Media(OwnedSemaphorePermit),
}

/// The connection cap the process can honour: `wanted`, lowered to the
/// open-file limit less [`RESERVED_DESCRIPTORS`], so that past the cap
/// there are descriptors left to answer 503 with. Logged either way.
fn connection_cap(wanted: usize) -> usize {
    #[cfg(unix)]
    if let Ok((open_files, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let can = open_files.saturating_sub(RESERVED_DESCRIPTORS).max(1);
        if (can as usize) < wanted {
            tracing::warn!(
                "connection cap lowered to {can} (was {wanted}): the open-file limit is \
                 {open_files}, less {RESERVED_DESCRIPTORS} kept for the process's own files"
            );
            return can as usize;
        }
    }
    tracing::info!("connection cap {wanted}");
    wanted
}

/// One connection from its TCP accept to its end: handshakes under the
/// handshake deadline, then its session. `permit` is `None` past the cap.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    mut permit: Option<OwnedSemaphorePermit>,
    cx: Context,
) {
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + cx.backend.config().handshake_timeout;
    let admitted = permit.is_some();
    if !admitted {
        cx.backend.metrics().handshake_refused();
    }
    match &cx.tls {
        None => {
            // A plain HTTP request is the browser phone's (web.rs); an upgrade goes on.
            if let Some(stream) = super::web::route(stream, admitted, deadline).await
                && let Some((ws, path)) = handshake(stream, admitted, &cx, deadline).await
            {
                tracing::debug!(%addr, "connection open");
                serve_path(ws, path, &mut permit, &cx).await;
            }
        }
        // Boxed: a TLS connection's state (rustls's buffers, the TLS stream
        // in every future of the handshake) is several KiB, and unboxed every
        // connection's task would be that large, plain ones too.
        Some(acceptor) => {
            Box::pin(tls_connection(acceptor, stream, addr, (admitted, &mut permit), deadline, &cx)).await
        }
    }
    drop((permit, cx));
}

/// A `wss://` connection: the TLS handshake, then as a plain one.
async fn tls_connection(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    (admitted, permit): (bool, &mut Option<OwnedSemaphorePermit>),
    deadline: Instant,
    cx: &Context,
) {
    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            if let Some(tls) = super::web::route(tls, admitted, deadline).await
                && let Some((ws, path)) = handshake(tls, admitted, cx, deadline).await
            {
                tracing::debug!(%addr, "connection open (TLS)");
                serve_path(ws, path, permit, cx).await;
            }
        }
        // Plain ws:// on a wss:// port ends here: rustls answers with an alert.
        Ok(Err(e)) => tracing::info!(%addr, "TLS handshake failed, connection dropped: {e}"),
        Err(_) => tracing::debug!(%addr, "TLS handshake timed out, connection dropped"),
    }
}

/// What the handshake asked for: a signaling session or a relay link. A
/// relay link gives back its signaling slot (`permit`): it holds a `/media` one.
///
/// Not an `async fn`, so that the stream is handed on before the future is
/// made and the connection's task does not also keep the stream it was
/// given (every connection's task is as large as this future).
fn serve_path<S>(
    ws: WebSocketStream<S>,
    path: Path,
    permit: &mut Option<OwnedSemaphorePermit>,
    cx: &Context,
) -> Either<impl Future<Output = ()> + use<S>, BoxFuture<'static, ()>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match (path, &cx.relay) {
        (Path::Signaling, _) => Either::Left(session::run(ws, cx.backend.clone(), cx.stopping.clone())),
        // Boxed, so that a signaling session's task is not sized for it.
        (Path::Media(slot), Some(relay)) => {
            drop(permit.take());
            Either::Right(Box::pin(relay::serve_ws(ws, relay.clone(), cx.stopping.clone(), slot)))
        }
        // Boxing nothing allocates nothing.
        (Path::Media(_), None) => Either::Right(Box::pin(std::future::ready(()))),
    }
}

/// The WebSocket handshake on path `/` (or `/media` when the relay is on),
/// by `deadline`; refuses with 503 when over the cap (signaling's, or for
/// `/media` the relay's own), with 403 a browser page of an origin not allowed.
// The callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn handshake<S>(
    stream: S,
    admitted: bool,
    cx: &Context,
    deadline: Instant,
) -> Option<(WebSocketStream<S>, Path)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let media = cx.relay.as_deref();
    let mut path = Path::Signaling;
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let refuse = |status: StatusCode, why: &str| {
            let mut r = ErrorResponse::new(Some(why.to_owned()));
            *r.status_mut() = status;
            r
        };
        // Before any path: a page of another origin may not reach `/media` either.
        if let Err(origin) = cx.origins.check(request) {
            tracing::info!(origin, "handshake refused: origin not allowed (see --allow-origin)");
            return Err(refuse(StatusCode::FORBIDDEN, "origin not allowed"));
        }
        if let Some(relay) = media
            && request.uri().path() == MEDIA_WS_PATH
        {
            // Media connections have a cap of their own: they never take a login's slot.
            let slot = relay.media_slot();
            let slot =
                slot.ok_or_else(|| refuse(StatusCode::SERVICE_UNAVAILABLE, "too many media connections"))?;
            path = Path::Media(slot);
            return Ok(response);
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
    match tokio::time::timeout_at(deadline, accept).await {
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
