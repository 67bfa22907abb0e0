//! The `softphone` command line: parses arguments with clap and calls into
//! the library. Nothing here decides anything about calls. The desktop
//! app's flags and start are the app's (crates/app, `softphone_app::launch`):
//! the binary hands them in as [`main_with_app`]'s type and function.

use crate::command::{AnyError, parse_duration, shutdown_signal};
use crate::server::{self, ServerConfig};
use crate::token;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// A call-invitation softphone and its signaling server. With no
/// subcommand, opens the desktop app.
#[derive(Debug, Parser)]
// The name and about are the shipped binary's, also in this crate's
// `softphone-headless` (which the tests run).
#[command(
    name = "softphone",
    bin_name = "softphone",
    version,
    about = "A call-invitation softphone (desktop app, SDK, tools) and the signaling server behind it",
    args_conflicts_with_subcommands = true
)]
pub struct Cli<App: Args> {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The desktop app's flags (no subcommand); [`NoApp`] in a build without it.
    #[command(flatten)]
    pub app: App,
}

/// The flags of a build without the desktop app: none.
#[derive(Debug, Args)]
pub struct NoApp {}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the signaling server (protocol v1 over WebSocket).
    Server(ServerArgs),
    /// Prints a login token for a peer, signed with the server's secret.
    Token(TokenArgs),
    /// Measures a server: call setups per second, memory per idle session.
    Bench(crate::bench::BenchArgs),
    /// A headless peer: places, answers and watches calls from a script.
    Peer(crate::peer::PeerArgs),
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free one (printed at start).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: String,
    /// File holding the token secret (surrounding white space is trimmed).
    /// Without it the server runs in open mode and accepts any token, which
    /// it does only on a loopback address unless `--open` is given.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Runs in open mode (no `--secret-file`: any token logs in as anyone)
    /// on an address that is not loopback too; without it that is refused.
    #[arg(long, conflicts_with = "secret_file")]
    pub open: bool,
    /// Lets web pages of this origin (`https://HOST[:PORT]`) open a
    /// WebSocket, besides the server's own pages; repeatable. Clients that
    /// send no `Origin` (the app, the SDK, the peer) need none; other
    /// origins are refused with HTTP 403.
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin)]
    pub allow_origin: Vec<server::origin::Origin>,
    /// How long a call may ring unanswered.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub invite_ttl: Duration,
    /// How long a reached callee has to acknowledge an invitation.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    pub ack_timeout: Duration,
    /// How long a participant may stay without a session before its calls end.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    pub offline_grace: Duration,
    /// How often each connection is pinged.
    #[arg(long, default_value = "15s", value_parser = parse_positive_duration)]
    pub ping_interval: Duration,
    /// How long a connection may stay silent, or leave queued data unread,
    /// before it is closed.
    #[arg(long, default_value = "45s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,
    /// How long a TCP connection has to complete the TLS and WebSocket
    /// handshakes before it is dropped.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub handshake_timeout: Duration,
    /// How long a connection has to log in after its handshake before it is
    /// closed with 1008.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub login_timeout: Duration,
    /// Serves wss:// with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connections served at once; more are refused with HTTP 503. Lowered
    /// at start to the open-file limit less 64 (logged).
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    pub max_connections: usize,
    /// Live calls one peer may have placed or accepted (calls ringing at a
    /// peer count against their callers).
    #[arg(long, default_value_t = ServerConfig::default().max_calls_per_peer)]
    pub max_calls_per_peer: usize,
    /// Sessions one peer may have at once; a login beyond gets `too_many_sessions`.
    #[arg(long, default_value_t = ServerConfig::default().max_sessions_per_peer,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_sessions_per_peer: usize,
    /// Frames per second one connection may send, sustained.
    #[arg(long, default_value_t = ServerConfig::default().rate_per_second)]
    pub rate_limit: u32,
    /// Frames one connection may send at once above the sustained rate.
    #[arg(long, default_value_t = ServerConfig::default().rate_burst)]
    pub rate_burst: u32,
    /// Serves Prometheus metrics at http://HOST:PORT/metrics and a health
    /// check at /healthz (printed at start; keep it off the internet).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
    /// Also host the demo peers `echo`, `busy` and `noanswer` (see README).
    /// Not with TLS: they connect over ws:// to the local port.
    #[arg(long, conflicts_with = "tls_cert")]
    pub demo_peers: bool,
    /// UDP address of the media relay; by default the same address and port
    /// number as `--listen` (docs/relay.md).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_media")]
    pub media_listen: Option<std::net::SocketAddr>,
    /// Runs without the media relay: accepts carry no `media`, `/media` is not served.
    #[arg(long)]
    pub no_media: bool,
    /// `/media` WebSocket connections (the relay's fallback) served at once,
    /// apart from --max-connections: more are refused with HTTP 503, and
    /// logins never are because of them. Lowered at start to a quarter of
    /// the open-file limit (logged).
    #[arg(long, default_value_t = server::RelayConfig::default().max_media_connections,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_media_connections: usize,
    /// Joins a cluster of nodes sharing this Redis (docs/scale-out.md);
    /// without it the server is a single node keeping everything in memory.
    #[arg(long, value_name = "redis://HOST:PORT/[DB]")]
    pub redis: Option<String>,
    /// This node's name in the cluster (letters, digits, `-`, `_`); a random
    /// one by default. Two running nodes must not share one.
    #[arg(long, requires = "redis", value_parser = parse_node_id)]
    pub node_id: Option<String>,
    /// PEM file of the certificate authority (or the certificate itself)
    /// a `rediss://` Redis presents, trusted instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "redis")]
    pub redis_ca_file: Option<PathBuf>,
    /// How long this node's heartbeat lives unrenewed before the other
    /// nodes treat its sessions as disconnected.
    #[arg(long, default_value = "5s", requires = "redis", value_parser = parse_positive_duration)]
    pub heartbeat_ttl: Duration,
}

/// `--allow-origin`: a web origin, checked at start.
fn parse_origin(text: &str) -> Result<server::origin::Origin, String> {
    server::origin::Origin::parse(text).map_err(|e| e.to_string())
}

/// Open mode lets anyone who reaches the port log in as anyone: without a
/// secret, only a loopback `--listen` is served unless `--open` says so.
fn check_open_mode(args: &ServerArgs) -> Result<(), StartError> {
    if args.secret_file.is_some() || args.open {
        return Ok(());
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = args
        .listen
        .to_socket_addrs()
        .map_err(|e| StartError(format!("cannot resolve --listen {}: {e}", args.listen)))?
        .collect();
    if !addrs.is_empty() && addrs.iter().all(|a| a.ip().to_canonical().is_loopback()) {
        return Ok(());
    }
    Err(StartError(format!(
        "refusing open mode on {}, which is not a loopback address: without --secret-file any \
         token logs in as anyone; give --secret-file (see `softphone token`), or --open to \
         serve open mode there on purpose",
        args.listen
    )))
}

/// A node id goes into Redis key and channel names: a short plain word.
fn parse_node_id(text: &str) -> Result<String, String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if text.is_empty() || text.len() > 64 || !text.chars().all(plain) {
        return Err("1 to 64 letters, digits, `-` or `_`".into());
    }
    Ok(text.to_owned())
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// File holding the server's secret.
    #[arg(long)]
    pub secret_file: PathBuf,
    /// The peer the token is for.
    #[arg(long)]
    pub peer: String,
    /// How long the token is valid.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,
}

/// A configuration the server cannot start with (a short secret, a bad
/// certificate): exit status 2, as for a bad flag, and nothing listens.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

/// Like the protocol's durations, but zero is refused: a timer of zero
/// cannot work (a ping every 0 s panics tokio's interval).
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be more than zero".into()),
        d => Ok(d),
    }
}

/// Entry point of a binary without the desktop app: `softphone` with no
/// subcommand says there is none.
pub fn main() -> ExitCode {
    main_with_app(|_: NoApp| Err(NoDesktop.into()))
}

/// Entry point of the binary: the subcommands here, and with no subcommand
/// `run_app` with the app's flags `App`.
pub fn main_with_app<App: Args>(run_app: impl FnOnce(App) -> Result<(), AnyError>) -> ExitCode {
    let cli = Cli::<App>::parse();
    // Kept to the end: dropping it flushes the server's log (for at most a second).
    let _log_flush = init_logging(matches!(cli.command, Some(Command::Server(_))));
    let result = match cli.command {
        Some(Command::Server(args)) => run_server(args),
        Some(Command::Token(args)) => print_token(args),
        Some(Command::Bench(args)) => crate::bench::run(args),
        Some(Command::Peer(args)) => crate::peer::run(args),
        None => run_app(cli.app),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("softphone: {e}");
            if e.is::<StartError>() || e.is::<NoDesktop>() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

/// What is logged unless `RUST_LOG` says otherwise: our own events (one
/// line each) and the warnings of the libraries we use, not their chatter
/// (iced's window setup logs its attributes, icon bytes included, at info).
pub const DEFAULT_LOG_FILTER: &str = "warn,softphone=info";

/// Logs to standard error, filtered by `RUST_LOG` (default
/// [`DEFAULT_LOG_FILTER`]). With `lossy`, through a batched writer that
/// drops lines when standard error is not read (a full pipe), so that
/// logging never stalls the server nor wakes a thread per line
/// ([`batched_log`](crate::command::batched_log)); the guard writes what is
/// left when dropped.
fn init_logging(lossy: bool) -> Option<crate::command::batched_log::FlushGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if !lossy {
        let _ = builder.with_writer(std::io::stderr).try_init();
        return None;
    }
    let (writer, guard) = crate::command::batched_log::batched(std::io::stderr());
    let _ = builder.with_writer(writer).try_init();
    Some(guard)
}

/// The server's configuration from its flags and the files they name;
/// every problem with them is a [`StartError`].
fn server_config(args: &ServerArgs) -> Result<ServerConfig, StartError> {
    check_open_mode(args)?;
    let secret = match &args.secret_file {
        Some(path) => Some(token::read_secret_file(path).map_err(|e| StartError(e.to_string()))?),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls::load(cert, key).map_err(|e| StartError(e.to_string()))?),
        _ => None,
    };
    let redis_ca = match &args.redis_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| StartError(format!("cannot read --redis-ca-file {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let config = ServerConfig {
        invite_ttl: args.invite_ttl,
        ack_timeout: args.ack_timeout,
        offline_grace: args.offline_grace,
        ping_interval: args.ping_interval,
        idle_timeout: args.idle_timeout,
        handshake_timeout: args.handshake_timeout,
        login_timeout: args.login_timeout,
        secret,
        tls,
        max_connections: args.max_connections,
        max_calls_per_peer: args.max_calls_per_peer,
        max_sessions_per_peer: args.max_sessions_per_peer,
        rate_per_second: args.rate_limit,
        rate_burst: args.rate_burst,
        media: server::RelayConfig {
            listen: media_listen(args),
            max_media_connections: args.max_media_connections,
            ..Default::default()
        },
        metrics_listener: args.metrics_listen.as_deref().map(bind_metrics).transpose()?,
        allowed_origins: args.allow_origin.clone(),
        cluster: args.redis.as_ref().map(|url| {
            let mut cluster = server::ClusterConfig::new(url.clone());
            cluster.redis_ca = redis_ca.clone();
            if let Some(id) = &args.node_id {
                cluster.node_id = id.clone();
            }
            cluster.heartbeat_ttl = args.heartbeat_ttl;
            cluster
        }),
        ..ServerConfig::default()
    };
    config.validate().map_err(|e| StartError(e.to_string()))?;
    if let Some(url) = &args.redis {
        // Only the URL is checked here: a Redis that is down at start is
        // waited for (the node answers `unavailable` until it is up).
        server::redis_client(url.as_str(), redis_ca.as_deref())
            .map_err(|e| StartError(format!("--redis {}: {e}", server::redacted_redis_url(url))))?;
    }
    Ok(config)
}

fn run_server(args: ServerArgs) -> Result<(), AnyError> {
    let config = server_config(&args)?;
    // Each connection holds a descriptor; the usual soft limit (1024) is far
    // below the cap. The server lowers its cap to what is left (and logs it).
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr()?;
        // Before the ready line: a relay asked for (or defaulted) that cannot
        // bind stops the start rather than leaving a server without media.
        let relay =
            server::bind_media(&config, &listener).map_err(|e| StartError(format!("{e}; {}", e.remedy())))?;
        // Before the ready line, so a SIGTERM right after it is handled.
        let stop = shutdown_signal();
        let mut out = std::io::stdout();
        let scheme = if config.tls.is_some() { "wss" } else { "ws" };
        writeln!(out, "listening on {scheme}://{addr}")?;
        if let Some(metrics) = &config.metrics_listener {
            writeln!(out, "metrics listening on http://{}/metrics", metrics.local_addr())?;
        }
        out.flush()?;
        let url = crate::demo::local_url(addr);
        let _demo = args
            .demo_peers
            .then(|| crate::demo::spawn(&url, config.secret.clone(), Default::default()))
            .transpose()?;
        server::run_with_media(listener, config, relay, stop).await;
        tracing::info!("server stopped");
        Ok::<(), AnyError>(())
    })?;
    // Sessions still closing must not hold the process past the protocol's 5 s.
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}

/// Binds `--metrics-listen` before the server starts: a bad address is a start error.
fn bind_metrics(addr: &str) -> Result<server::MetricsListener, StartError> {
    server::MetricsListener::bind(addr)
        .map_err(|e| StartError(format!("cannot listen on {addr} for metrics: {e}")))
}

/// Where `--media-listen` / `--no-media` put the media relay.
fn media_listen(args: &ServerArgs) -> server::MediaListen {
    match (args.no_media, args.media_listen) {
        (true, _) => server::MediaListen::Off,
        (false, Some(addr)) => server::MediaListen::At(addr),
        (false, None) => server::MediaListen::SamePort,
    }
}

/// `softphone` with no subcommand in a build without the `desktop`
/// feature: a usage error (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error(
    "this build has no desktop app (built without the `desktop` feature); \
     use a subcommand such as `softphone server` (see `softphone --help`)"
)]
pub struct NoDesktop;

fn print_token(args: TokenArgs) -> Result<(), AnyError> {
    let secret = token::read_secret_file(&args.secret_file).map_err(|e| StartError(e.to_string()))?;
    if !crate::protocol::is_valid_id(&args.peer) {
        return Err("--peer must be 1 to 64 bytes of printable ASCII".into());
    }
    let expiry = crate::clock::unix_secs() + args.ttl.as_secs();
    println!("{}", token::mint(&secret, &args.peer, expiry));
    Ok(())
}
