//! `softphone bench sessions`: the server's resident memory per idle,
//! logged-in session, on each node of a cluster when given several
//! (`--server URL1,URL2,URL3`, with `--pid` one process id per node), and
//! with `--redis URL` the growth of Redis's `used_memory` per session.
//!
//! One process may hold only so many descriptors (20,000 here, and it
//! cannot be raised), so the sessions are logged in by worker processes
//! this bench starts of itself (`bench sessions-worker`), each holding at
//! most `--per-worker`; and one source address runs out of ports near
//! 28,000 connections, so they are spread over 127.0.0.1, 127.0.0.2, ...
//! (see [`Plan`]). The workers hold their sessions until the figures are
//! read, then exit when their standard input closes.

use super::conn::{self, Tokens};
use super::{AnyError, ChildServer, Target, resident_bytes};
use clap::Args;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Duration;

mod memory;
mod worker;

pub use worker::{WorkerArgs, run_worker};

/// Connections opened from one loopback source address before moving to the next.
const PER_SOURCE_ADDRESS: usize = 20_000;
/// Descriptors a process keeps for itself besides its sessions.
const HEADROOM: u64 = 64;

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(flatten)]
    pub target: Target,
    /// Idle sessions to log in, spread over the nodes in turn.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Process ids of the servers given with `--server`, one per URL in
    /// the same order (their memory is read from /proc).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// The cluster's Redis (`redis://HOST:PORT/`): its `used_memory` is read
    /// before and after.
    #[arg(long)]
    pub redis: Option<String>,
    /// Sessions each worker process holds; by default as many as this
    /// process's open-file limit allows.
    #[arg(long)]
    pub per_worker: Option<usize>,
    /// Sessions connected from each loopback source address.
    #[arg(long, default_value_t = PER_SOURCE_ADDRESS)]
    pub per_source: usize,
    /// The sessions' peer ids are `idle-TAG-0`, `idle-TAG-1`, ...; random by
    /// default, so that two runs against one deployment do not collide.
    #[arg(long)]
    pub tag: Option<String>,
}

/// Which worker logs in which sessions, on which node, from which address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub count: usize,
    pub nodes: usize,
    pub per_worker: usize,
    pub per_source: usize,
}

impl Plan {
    /// A plan, or why it cannot be carried out.
    pub fn new(count: usize, nodes: usize, per_worker: usize, per_source: usize) -> Result<Plan, AnyError> {
        if nodes == 0 || per_worker == 0 || per_source == 0 {
            return Err("--server, --per-worker and --per-source need at least one".into());
        }
        // 127.0.0.1 to 127.0.0.254.
        if count.div_ceil(per_source) > 254 {
            return Err(format!(
                "{count} sessions at {per_source} per source address need over 254 addresses"
            )
            .into());
        }
        Ok(Plan { count, nodes, per_worker, per_source })
    }

    /// The sessions of each worker: consecutive ranges of at most `per_worker`.
    pub fn workers(&self) -> Vec<Range<usize>> {
        (0..self.count).step_by(self.per_worker).map(|s| s..(s + self.per_worker).min(self.count)).collect()
    }

    /// The node session `i` logs in on: the nodes in turn.
    pub fn node_of(&self, i: usize) -> usize {
        i % self.nodes
    }

    /// The address session `i` connects from.
    pub fn source_of(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 1 + (i / self.per_source) as u8)
    }

    /// How many sessions node `node` holds.
    pub fn sessions_on(&self, node: usize) -> usize {
        (0..self.count).filter(|&i| self.node_of(i) == node).count()
    }
}

#[derive(Debug, serde::Serialize)]
struct SessionStats {
    sessions: usize,
    /// Worker processes that held them.
    workers: usize,
    /// Totals over the nodes (one node: its own figures).
    rss_before_bytes: u64,
    rss_after_bytes: u64,
    bytes_per_session: u64,
    nodes: Vec<NodeStats>,
    redis: Option<memory::RedisStats>,
}

#[derive(Debug, serde::Serialize)]
struct NodeStats {
    url: String,
    pid: u32,
    sessions: usize,
    rss_before_bytes: u64,
    rss_after_bytes: u64,
    bytes_per_session: u64,
}

/// The nodes to load and their process ids; the child server is kept
/// alive here when the bench started one.
struct Nodes {
    urls: Vec<String>,
    pids: Vec<u32>,
    _child: Option<ChildServer>,
}

impl Nodes {
    /// The `--server` nodes with their `--pid`s, or a child server sized
    /// for `count` (clipped to what one process can hold).
    async fn from_args(args: &SessionsArgs, count: &mut usize) -> Result<Nodes, AnyError> {
        let urls = args.target.servers()?;
        if !urls.is_empty() {
            if args.pid.len() != urls.len() {
                return Err(format!(
                    "--pid needs one process id per --server URL ({} given for {} URLs)",
                    args.pid.len(),
                    urls.len()
                )
                .into());
            }
            return Ok(Nodes { urls, pids: args.pid.clone(), _child: None });
        }
        // One child server: it holds one descriptor per session, like any process here.
        let fit = open_file_limit()?.saturating_sub(HEADROOM) as usize;
        if *count > fit {
            eprintln!(
                "a single server holds at most {fit} sessions here: measuring {fit} instead of {count}"
            );
            *count = fit;
        }
        let cap = (*count + 1000).to_string();
        let child = ChildServer::start(&["--max-connections", &cap]).await?;
        let pid = child.pid().ok_or("child server has no pid")?;
        Ok(Nodes { urls: vec![child.url.clone()], pids: vec![pid], _child: Some(child) })
    }

    fn resident(&self) -> Result<Vec<u64>, AnyError> {
        Ok(self.pids.iter().map(|&pid| resident_bytes(pid)).collect::<Result<_, _>>()?)
    }
}

fn open_file_limit() -> Result<u64, AnyError> {
    Ok(rlimit::getrlimit(rlimit::Resource::NOFILE)?.0)
}

pub async fn run(args: SessionsArgs) -> Result<(), AnyError> {
    let mut count = args.count;
    let nodes = Nodes::from_args(&args, &mut count).await?;
    let fit = open_file_limit()?.saturating_sub(HEADROOM) as usize;
    let per_worker = args.per_worker.unwrap_or(fit);
    if per_worker > fit {
        return Err(
            format!("--per-worker {per_worker} is past this process's open-file limit ({fit})").into()
        );
    }
    let plan = Plan::new(count, nodes.urls.len(), per_worker, args.per_source)?;
    let tokens = Tokens::from_file(args.target.secret_file.as_deref())?;
    let tag = args.tag.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..8].to_owned());
    // A first login on each node warms it up (runtime, allocator arenas) before the baseline.
    let mut warm = Vec::new();
    for (k, url) in nodes.urls.iter().enumerate() {
        warm.push(conn::connect_login(url, &format!("bench-warm-{tag}-{k}"), &tokens, None).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = nodes.resident()?;
    let redis_before = match &args.redis {
        Some(url) => Some(memory::used_memory(url).await?),
        None => None,
    };
    let mut workers = Vec::new();
    for (n, range) in plan.workers().into_iter().enumerate() {
        eprintln!("worker {}: sessions {} to {}", n + 1, range.start, range.end - 1);
        workers.push(worker::Worker::start(&args, &nodes.urls, &tag, range).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = nodes.resident()?;
    let redis = match (&args.redis, redis_before) {
        (Some(url), Some(before)) => {
            Some(memory::RedisStats::new(before, memory::used_memory(url).await?, count))
        }
        _ => None,
    };
    let stats = report(&plan, &nodes, &rss_before, &rss_after, workers.len(), redis);
    drop(workers);
    drop(warm);
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        print_sentences(&stats);
    }
    Ok(())
}

/// The figures of each node and their totals.
fn report(
    plan: &Plan,
    nodes: &Nodes,
    before: &[u64],
    after: &[u64],
    workers: usize,
    redis: Option<memory::RedisStats>,
) -> SessionStats {
    let per = |grown: u64, sessions: usize| grown / sessions.max(1) as u64;
    let nodes: Vec<NodeStats> = (0..plan.nodes)
        .map(|k| NodeStats {
            url: nodes.urls[k].clone(),
            pid: nodes.pids[k],
            sessions: plan.sessions_on(k),
            rss_before_bytes: before[k],
            rss_after_bytes: after[k],
            bytes_per_session: per(after[k].saturating_sub(before[k]), plan.sessions_on(k)),
        })
        .collect();
    let (before, after): (u64, u64) = (before.iter().sum(), after.iter().sum());
    SessionStats {
        sessions: plan.count,
        workers,
        rss_before_bytes: before,
        rss_after_bytes: after,
        bytes_per_session: per(after.saturating_sub(before), plan.count),
        nodes,
        redis,
    }
}

fn print_sentences(stats: &SessionStats) {
    let mib = |b: u64| b as f64 / 1048576.0;
    for node in &stats.nodes {
        println!(
            "{} idle sessions on {} (pid {}): server RSS {:.1} MiB -> {:.1} MiB, {} bytes ({:.2} KiB) per session",
            node.sessions,
            node.url,
            node.pid,
            mib(node.rss_before_bytes),
            mib(node.rss_after_bytes),
            node.bytes_per_session,
            node.bytes_per_session as f64 / 1024.0
        );
    }
    if stats.nodes.len() > 1 {
        println!(
            "{} idle sessions over {} nodes from {} worker processes: {} bytes ({:.2} KiB) per session",
            stats.sessions,
            stats.nodes.len(),
            stats.workers,
            stats.bytes_per_session,
            stats.bytes_per_session as f64 / 1024.0
        );
    }
    if let Some(redis) = &stats.redis {
        println!(
            "Redis used_memory {:.1} MiB -> {:.1} MiB: {} bytes per session",
            mib(redis.used_memory_before_bytes),
            mib(redis.used_memory_after_bytes),
            redis.bytes_per_session
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_splits_the_sessions_over_workers_nodes_and_source_addresses() {
        let plan = Plan::new(50_000, 3, 19_936, 20_000).unwrap();
        assert_eq!(plan.workers(), [0..19_936, 19_936..39_872, 39_872..50_000]);
        assert_eq!((0..6).map(|i| plan.node_of(i)).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
        assert_eq!([plan.sessions_on(0), plan.sessions_on(1), plan.sessions_on(2)], [16_667, 16_667, 16_666]);
        assert_eq!(plan.source_of(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(plan.source_of(19_999), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(plan.source_of(20_000), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(plan.source_of(49_999), Ipv4Addr::new(127, 0, 0, 3));
        // One node and one worker: the single-server bench as it was.
        let one = Plan::new(100, 1, 19_936, 20_000).unwrap();
        assert_eq!((one.workers().len(), one.workers()[0].clone(), one.sessions_on(0)), (1, 0..100, 100));
        assert_eq!(Plan::new(0, 1, 10, 10).unwrap().workers(), Vec::<Range<usize>>::new());
    }

    #[test]
    fn a_plan_that_cannot_be_carried_out_is_refused() {
        assert!(Plan::new(10, 0, 10, 10).is_err());
        assert!(Plan::new(10, 1, 0, 10).is_err());
        assert!(Plan::new(255, 1, 10, 1).is_err(), "past 127.0.0.254");
        assert!(Plan::new(254, 1, 10, 1).is_ok());
    }
}
