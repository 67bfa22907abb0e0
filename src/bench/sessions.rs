//! `softphone bench sessions`: the server's resident memory per idle,
//! logged-in session. Connections are spread over 127.0.0.1, 127.0.0.2, ...
//! because one source address runs out of ports near 28,000 connections.

use super::conn::{self, Tokens};
use super::{AnyError, ChildServer, Target, resident_bytes};
use clap::Args;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Connections opened from one loopback source address before moving to the next.
const PER_SOURCE_ADDRESS: usize = 20_000;
/// Logins in flight at once.
const BATCH: usize = 500;

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Idle sessions to log in.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Process id of the server given with `--server` (its memory is read from /proc).
    #[arg(long)]
    pub pid: Option<u32>,
}

#[derive(Debug, serde::Serialize)]
struct SessionStats {
    sessions: usize,
    rss_before_bytes: u64,
    rss_after_bytes: u64,
    bytes_per_session: u64,
}

pub async fn run(args: SessionsArgs) -> Result<(), AnyError> {
    // This process holds one descriptor per session too.
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let headroom = 64;
    let count = if args.count as u64 + headroom > soft {
        let fit = soft.saturating_sub(headroom) as usize;
        eprintln!("open-file limit is {soft}: measuring {fit} sessions instead of {}", args.count);
        fit
    } else {
        args.count
    };
    let child;
    let (url, pid) = match (&args.target.server, args.pid) {
        (Some(url), Some(pid)) => (url.clone(), pid),
        (Some(_), None) => return Err("--server needs --pid to read the server's memory".into()),
        (None, _) => {
            let cap = (count + 1000).to_string();
            child = ChildServer::start(&["--max-connections", &cap]).await?;
            (child.url.clone(), child.pid().ok_or("child server has no pid")?)
        }
    };
    let tokens = Tokens::from_file(args.target.secret_file.as_deref())?;
    // A first login warms up the server (runtime, allocator arenas) before the baseline.
    let warm = conn::connect_login(&url, "bench-warm", &tokens, None).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = resident_bytes(pid)?;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut held = Vec::with_capacity(count);
    let mut next = 0;
    while next < count {
        let batch: Vec<_> = (next..(next + BATCH).min(count))
            .map(|i| {
                let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / PER_SOURCE_ADDRESS) as u8));
                let (url, tokens, peer) = (url.clone(), tokens.clone(), format!("idle-{tag}-{i}"));
                tokio::spawn(async move { conn::connect_login(&url, &peer, &tokens, Some(source)).await })
            })
            .collect();
        for task in batch {
            held.push(task.await??);
        }
        next = held.len();
        eprint!("\r{next} of {count} sessions logged in");
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_bytes(pid)?;
    let stats = SessionStats {
        sessions: count,
        rss_before_bytes: before,
        rss_after_bytes: after,
        bytes_per_session: after.saturating_sub(before) / count.max(1) as u64,
    };
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!(
            "{} idle sessions: server RSS {:.1} MiB -> {:.1} MiB, {} bytes ({:.2} KiB) per session",
            stats.sessions,
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            stats.bytes_per_session,
            stats.bytes_per_session as f64 / 1024.0
        );
    }
    drop((held, warm));
    Ok(())
}
