//! The `softphone` command line: parses arguments with clap and calls into
//! the library. Nothing here decides anything about calls.

use crate::app;
use crate::command::{AnyError, parse_duration, shutdown_signal};
use crate::config::MediaConfig;
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
#[command(name = "softphone", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub app: AppArgs,
}

/// The desktop app's flags (no subcommand).
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Signaling server (ws:// or wss://); remembered. Without one, the app
    /// uses ws://127.0.0.1:7878/ and hosts a server there if none answers.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Signs in at start as this peer.
    #[arg(long, value_name = "ID")]
    pub peer_id: Option<String>,
    /// File holding the login token (surrounding white space is trimmed).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// This device's label.
    #[arg(long, value_name = "LABEL")]
    pub device: Option<String>,
    /// Runs this program for each accepted call, stopped at hang-up; words
    /// split on spaces; {channel}, {peer}, {role} and {call_id} are replaced.
    #[arg(long, value_name = "COMMAND", conflicts_with = "media_url")]
    pub media_command: Option<String>,
    /// Opens this URL for each accepted call, e.g. https://meet.example.org/{channel}.
    #[arg(long, value_name = "TEMPLATE")]
    pub media_url: Option<String>,
    /// Writes every SDK event, reply and UI change to FILE as JSON lines
    /// (appended), a timeline to attach to a bug report.
    #[arg(long, value_name = "FILE")]
    pub log_events: Option<PathBuf>,
}

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
    /// Without it the server runs in open mode and accepts any token.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// How long a call may ring unanswered.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub invite_ttl: Duration,
    /// How long a reached callee has to acknowledge an invitation.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ack_timeout: Duration,
    /// How long a participant may stay without a session before its calls end.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub offline_grace: Duration,
    /// How often each connection is pinged.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// How long a connection may stay silent before it is closed.
    #[arg(long, default_value = "45s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Connections served at once; more are refused with HTTP 503.
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    pub max_connections: usize,
    /// Live calls one peer may take part in.
    #[arg(long, default_value_t = ServerConfig::default().max_calls_per_peer)]
    pub max_calls_per_peer: usize,
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
    #[arg(long)]
    pub demo_peers: bool,
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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
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
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn run_server(args: ServerArgs) -> Result<(), AnyError> {
    let secret = match &args.secret_file {
        Some(path) => Some(
            token::read_secret_file(path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let config = ServerConfig {
        invite_ttl: args.invite_ttl,
        ack_timeout: args.ack_timeout,
        offline_grace: args.offline_grace,
        ping_interval: args.ping_interval,
        idle_timeout: args.idle_timeout,
        secret,
        max_connections: args.max_connections,
        max_calls_per_peer: args.max_calls_per_peer,
        rate_per_second: args.rate_limit,
        rate_burst: args.rate_burst,
        metrics_listener: args.metrics_listen.as_deref().map(bind_metrics).transpose()?,
        ..ServerConfig::default()
    };
    // Each connection holds a descriptor; the usual soft limit (1024) is far below the cap.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if (n as usize) < config.max_connections => {
            tracing::warn!("open-file limit is {n}: fewer than --max-connections can be served")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout();
        writeln!(out, "listening on ws://{addr}")?;
        if let Some(metrics) = &config.metrics_listener {
            writeln!(out, "metrics listening on http://{}/metrics", metrics.local_addr())?;
        }
        out.flush()?;
        let url = crate::demo::local_url(addr);
        let _demo = args
            .demo_peers
            .then(|| crate::demo::spawn(&url, config.secret.clone(), Default::default()))
            .transpose()?;
        server::run(listener, config, shutdown_signal()).await;
        tracing::info!("server stopped");
        Ok::<(), AnyError>(())
    })?;
    // Sessions still closing must not hold the process past the protocol's 5 s.
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}

fn bind_metrics(addr: &str) -> Result<server::MetricsListener, AnyError> {
    Ok(server::MetricsListener::bind(addr)
        .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?)
}

fn run_app(args: AppArgs) -> Result<(), AnyError> {
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let media = match (&args.media_command, &args.media_url) {
        (Some(command), _) => {
            Some(MediaConfig::from_command_line(command).ok_or("--media-command needs a program")?)
        }
        (None, Some(template)) => Some(MediaConfig::Url { template: template.clone() }),
        (None, None) => None,
    };
    let options = app::Options {
        server_url: args.server,
        peer_id: args.peer_id,
        token,
        device: args.device,
        media,
        log_events: args.log_events,
        ..app::Options::default()
    };
    app::run(options)?;
    Ok(())
}

fn print_token(args: TokenArgs) -> Result<(), AnyError> {
    let secret = token::read_secret_file(&args.secret_file)
        .map_err(|e| format!("cannot read secret file {}: {e}", args.secret_file.display()))?;
    if !crate::protocol::is_valid_id(&args.peer) {
        return Err("--peer must be 1 to 64 bytes of printable ASCII".into());
    }
    let expiry = crate::clock::unix_secs() + args.ttl.as_secs();
    println!("{}", token::mint(&secret, &args.peer, expiry));
    Ok(())
}
