//! `softphone bench`: the load generator for the signaling server.
//!
//! `setups` runs complete calls between pairs of connections (invite,
//! invitation, received, accept, accepted, hang-up, hung up) at a fixed
//! offered rate, or searches for the highest rate with under 1 % failed
//! calls; `sessions` logs in many idle sessions and reads the server's
//! resident memory from `/proc` (spread over the nodes of a cluster and
//! over worker processes of its own, past one process's open-file limit); `media` carries relayed calls' packets
//! through the media relay and reports loss, delay and the server's CPU.
//! All speak the protocol directly through
//! [`crate::protocol`], so the figures measure the server, not a client
//! library. With no `--server`, a server is started as a child process;
//! `setups` and `sessions` take the nodes of a cluster as a comma list
//! (`--server ws://a:7878/,ws://b:7878/`).
//! `storm` is the exception: it restarts a child server under many SDK
//! clients and times how long they take to come back.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod conn;
mod relay_load;
mod sessions;
mod setups;
mod storm;

pub(crate) use crate::command::AnyError;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Threads the load generator runs on (it shares the machine with the server it measures).
    #[arg(long, global = true, default_value_t = 2)]
    pub threads: usize,
    #[command(subcommand)]
    pub what: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Call setups per second and their latency.
    Setups(setups::SetupsArgs),
    /// Server memory per idle logged-in session.
    Sessions(sessions::SessionsArgs),
    /// Relayed media: packets per second, loss, relay delay, server CPU.
    Media(relay_load::MediaArgs),
    /// SDK clients coming back after a server restart.
    Storm(storm::StormArgs),
    /// One worker process of `sessions` (started by it, not by hand).
    #[command(hide = true)]
    SessionsWorker(sessions::WorkerArgs),
}

/// Options every benchmark shares.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The server to load (`ws://HOST:PORT/`), or the nodes of a cluster as
    /// a comma list (`setups`, `sessions`); without it one is started as a
    /// child process.
    #[arg(long)]
    pub server: Option<String>,
    /// The server's secret, to mint tokens for the bench's peers.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Target {
    /// The `--server` list: empty without `--server`.
    pub fn servers(&self) -> Result<Vec<String>, AnyError> {
        match &self.server {
            None => Ok(Vec::new()),
            Some(list) => split_servers(list),
        }
    }

    /// The one server of a benchmark that loads a single one.
    pub fn one_server(&self) -> Result<Option<String>, AnyError> {
        match &self.servers()?[..] {
            [] => Ok(None),
            [url] => Ok(Some(url.clone())),
            _ => Err("this benchmark loads one server: give --server a single URL".into()),
        }
    }
}

/// `ws://a:7878/,ws://b:7878/` as its URLs, in order; an empty list or an
/// entry that is not `ws://` or `wss://` is an error.
pub fn split_servers(list: &str) -> Result<Vec<String>, AnyError> {
    let urls: Vec<String> =
        list.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
    if urls.is_empty() {
        return Err("--server names no URL".into());
    }
    match urls.iter().find(|u| !(u.starts_with("ws://") || u.starts_with("wss://"))) {
        Some(bad) => Err(format!("--server: {bad:?} is not a ws:// or wss:// URL").into()),
        None => Ok(urls),
    }
}

/// Runs a benchmark to completion on a runtime of its own.
pub fn run(args: BenchArgs) -> Result<(), AnyError> {
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    // One thread keeps the generator's own wake-ups off the server's cores but
    // cannot keep to the schedule past a few thousand calls a second on this
    // machine; two (the default) can. `--threads` lets either be measured.
    let runtime = match args.threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?,
    };
    runtime.block_on(async move {
        match args.what {
            BenchCommand::Setups(a) => setups::run(a).await,
            BenchCommand::Sessions(a) => sessions::run(a).await,
            BenchCommand::Media(a) => relay_load::run(a).await,
            BenchCommand::Storm(a) => storm::run(a).await,
            BenchCommand::SessionsWorker(a) => sessions::run_worker(a).await,
        }
    })
}

/// A server started by the bench as a child process, stopped when dropped.
pub struct ChildServer {
    child: Child,
    /// Its `ws://` URL, as it printed it.
    pub url: String,
}

impl ChildServer {
    /// Starts `softphone server --listen 127.0.0.1:0` with `extra` flags and
    /// waits for its `listening on` line.
    pub async fn start(extra: &[&str]) -> Result<ChildServer, AnyError> {
        ChildServer::start_on("127.0.0.1:0", extra).await
    }

    /// Starts `softphone server --listen LISTEN` with `extra` flags (a
    /// restart names the port the last one had).
    pub async fn start_on(listen: &str, extra: &[&str]) -> Result<ChildServer, AnyError> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["server", "--listen", listen])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await??;
        let url = line.trim().strip_prefix("listening on ").ok_or("server did not start")?.to_owned();
        Ok(ChildServer { child, url: format!("{url}/") })
    }

    /// The child's process id, for reading its memory.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the child (as a crash would) and waits until it is gone.
    pub async fn kill(mut self) -> Result<(), AnyError> {
        self.child.kill().await?;
        Ok(())
    }
}

/// The resident memory of process `pid`, in bytes, from `/proc`.
pub fn resident_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS in /proc status"))?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_list_splits_on_commas_and_refuses_what_is_not_a_websocket_url() {
        assert_eq!(split_servers("ws://a:1/").unwrap(), ["ws://a:1/"]);
        assert_eq!(split_servers(" ws://a:1/ ,wss://b/,").unwrap(), ["ws://a:1/", "wss://b/"]);
        assert!(split_servers(" , ").is_err());
        assert!(split_servers("ws://a:1/,127.0.0.1:2").unwrap_err().to_string().contains("127.0.0.1:2"));
        let target = |s: &str| Target { server: Some(s.into()), secret_file: None, json: false };
        assert_eq!(target("ws://a:1/").one_server().unwrap().as_deref(), Some("ws://a:1/"));
        assert!(target("ws://a:1/,ws://b:2/").one_server().is_err());
    }
}
