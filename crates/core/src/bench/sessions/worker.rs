//! One worker process of `bench sessions`: `softphone bench
//! sessions-worker`, started by the bench itself. It logs in its range of
//! the plan's sessions (each on its node, from its source address), says
//! `ready` on standard output, and holds them until its standard input
//! closes (the bench is done, or gone).

use super::super::conn::{self, Tokens};
use super::super::{AnyError, split_servers};
use super::{Plan, SessionsArgs};
use clap::Args;
use std::io::Write;
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// Logins in flight at once.
const BATCH: usize = 500;
/// What a worker prints once all its sessions are logged in.
const READY: &str = "ready";

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The nodes, as the bench was given them.
    #[arg(long)]
    pub server: String,
    /// The first session of this worker's range.
    #[arg(long)]
    pub first: usize,
    /// One past its last.
    #[arg(long)]
    pub end: usize,
    /// The bench run's tag, in the peer ids (`idle-TAG-N`).
    #[arg(long)]
    pub tag: String,
    /// See `SessionsArgs::per_source`.
    #[arg(long)]
    pub per_source: usize,
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
}

/// A running worker process; dropping it kills it, closing its sessions.
/// (A worker whose bench dies sees its standard input close and exits.)
pub struct Worker {
    _child: Child,
}

impl Worker {
    /// Starts the worker for `range` and waits until it holds its sessions.
    pub async fn start(
        args: &SessionsArgs,
        urls: &[String],
        tag: &str,
        range: Range<usize>,
    ) -> Result<Worker, AnyError> {
        let mut command = Command::new(std::env::current_exe()?);
        // One thread: the worker only waits on sockets, and leaves the cores to the servers.
        command.args(["bench", "--threads", "1", "sessions-worker", "--server", &urls.join(",")]);
        command.args(["--first", &range.start.to_string(), "--end", &range.end.to_string(), "--tag", tag]);
        command.args(["--per-source", &args.per_source.to_string()]);
        if let Some(secret) = &args.target.secret_file {
            command.arg("--secret-file").arg(secret);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("worker has no stdout")?;
        let mut line = String::new();
        // Generous: logins run at a few thousand a second on a loaded machine.
        let patience = Duration::from_secs(60) + Duration::from_millis(20 * range.len() as u64);
        tokio::time::timeout(patience, BufReader::new(stdout).read_line(&mut line))
            .await
            .map_err(|_| format!("worker for sessions {range:?} not ready within {patience:?}"))??;
        if line.trim() != READY {
            return Err(format!("worker for sessions {range:?} failed (see its error above)").into());
        }
        Ok(Worker { _child: child })
    }
}

/// The worker's side: log in, say so, hold until standard input closes.
pub async fn run_worker(args: WorkerArgs) -> Result<(), AnyError> {
    let urls = split_servers(&args.server)?;
    let plan = Plan::new(args.end, urls.len(), args.end.max(1), args.per_source)?;
    let tokens = Tokens::from_file(args.secret_file.as_deref())?;
    let total = args.end.saturating_sub(args.first);
    let mut held = Vec::with_capacity(total);
    for batch in (args.first..args.end).collect::<Vec<_>>().chunks(BATCH) {
        let tasks: Vec<_> = batch
            .iter()
            .map(|&i| {
                let (url, tokens) = (urls[plan.node_of(i)].clone(), tokens.clone());
                let (peer, source) = (format!("idle-{}-{i}", args.tag), IpAddr::V4(plan.source_of(i)));
                tokio::spawn(async move { conn::connect_login(&url, &peer, &tokens, Some(source)).await })
            })
            .collect();
        for task in tasks {
            held.push(task.await??);
        }
        eprint!("\r{} of {total} sessions logged in", held.len());
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    println!("{READY}");
    std::io::stdout().flush()?;
    // Hold until the bench closes our standard input (or exits).
    let mut rest = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut rest).await;
    drop(held);
    Ok(())
}
