//! `softphone bench storm`: a reconnect storm. N real SDK clients (the
//! default [`ClientConfig`], so the default backoff and its jitter) log in
//! to a child server; the server is killed, as a crash would, and started
//! again on the same port; the bench times how long until every client is
//! logged in again, and counts what happened on the way: attempts the
//! server refused (an HTTP 5xx, a refused login), attempts that found no
//! server or timed out, and clients that gave up (`Aborted`).

use super::{AnyError, ChildServer};
use crate::command::parse_duration;
use crate::sdk::{Client, ClientConfig, ConnectionReason, ConnectionState, Event};
use clap::Args;
use std::io::Write;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Logins in flight at once while the clients first connect.
const BATCH: usize = 500;

#[derive(Debug, Args)]
pub struct StormArgs {
    /// SDK clients to connect (each holds a descriptor here and one in the server).
    #[arg(long, default_value_t = 15_000)]
    pub clients: usize,
    /// How long the server stays down between the kill and the new start.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub down_for: Duration,
    /// How long to wait for every client to be back before reporting those that are not.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub patience: Duration,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

/// What the storm did, as reported.
#[derive(Debug, Default, serde::Serialize)]
struct StormStats {
    clients: usize,
    /// From the first connect to the last client's first login.
    first_logins_ms: u64,
    /// From the kill to the new server's `listening` line.
    restart_ms: u64,
    /// Clients logged in again within the patience.
    back: usize,
    /// From the new server's `listening` line to the last client back.
    all_back_ms: Option<u64>,
    /// The same, for the median and the 99th percentile client.
    p50_back_ms: Option<u64>,
    p99_back_ms: Option<u64>,
    /// Connection attempts after the kill, all clients together.
    attempts: u64,
    /// Attempts the server turned away (an HTTP 5xx, a refused login).
    refused_by_server: u64,
    /// Attempts that found nothing listening (while it was down).
    no_server: u64,
    /// Attempts with no login within the connect timeout.
    timed_out: u64,
    /// Attempts that failed otherwise.
    other_failures: u64,
    /// Clients that stopped retrying (`Aborted`).
    gave_up: u64,
}

/// How one failed attempt failed, from the SDK's reason.
fn classify(why: &str, stats: &mut StormStats) {
    let lower = why.to_ascii_lowercase();
    if lower.contains("connection refused") {
        stats.no_server += 1;
    } else if lower.contains("http error: 5") || lower.starts_with("login failed") {
        stats.refused_by_server += 1;
    } else if lower.starts_with("no login within") {
        stats.timed_out += 1;
    } else {
        stats.other_failures += 1;
        tracing::debug!("attempt failed: {why}");
    }
}

pub async fn run(args: StormArgs) -> Result<(), AnyError> {
    let count = args.clients;
    let cap = (count + 1000).to_string();
    let server = ChildServer::start(&["--max-connections", &cap]).await?;
    let listen = server.url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    let url = server.url.clone();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Instant, Event)>();
    let mut stats = StormStats { clients: count, ..StormStats::default() };

    let started = Instant::now();
    let mut clients = Vec::with_capacity(count);
    while clients.len() < count {
        let from = clients.len();
        let batch: Vec<_> = (from..(from + BATCH).min(count))
            .map(|i| {
                let config = ClientConfig::new(url.clone(), format!("storm-{tag}-{i}"));
                tokio::spawn(Client::connect(config))
            })
            .collect();
        for task in batch {
            let (client, mut events) = task.await??;
            let (tx, i) = (tx.clone(), clients.len());
            // Only connection events matter here; each is stamped when it comes out.
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if matches!(event, Event::Connection { .. })
                        && tx.send((i, Instant::now(), event)).is_err()
                    {
                        break;
                    }
                }
            });
            clients.push(client);
        }
        eprint!("\r{} of {count} clients logged in", clients.len());
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    stats.first_logins_ms = started.elapsed().as_millis() as u64;

    let killed = Instant::now();
    server.kill().await?;
    tokio::time::sleep(args.down_for).await;
    let server = ChildServer::start_on(&listen, &["--max-connections", &cap]).await?;
    let up = Instant::now();
    stats.restart_ms = (up - killed).as_millis() as u64;
    eprintln!("server restarted on {listen}; waiting for the clients");

    let backs = watch_comeback(&mut rx, count, up + args.patience, &mut stats).await;
    stats.back = backs.len();
    let mut after_up: Vec<u64> =
        backs.iter().map(|at| at.saturating_duration_since(up).as_millis() as u64).collect();
    after_up.sort_unstable();
    let at = |q: f64| after_up.get(((after_up.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
    if stats.back == count {
        stats.all_back_ms = after_up.last().copied();
    }
    (stats.p50_back_ms, stats.p99_back_ms) = (at(0.5), at(0.99));
    report(&stats, args.json)?;
    drop((clients, server));
    Ok(())
}

/// Reads connection events until every client has logged in a second time
/// (or the deadline); returns when each of those that did came back.
async fn watch_comeback(
    rx: &mut mpsc::UnboundedReceiver<(usize, Instant, Event)>,
    count: usize,
    deadline: Instant,
    stats: &mut StormStats,
) -> Vec<Instant> {
    // Logins seen per client: the first is the initial one, the second the comeback.
    let mut logins = vec![0u32; count];
    let mut backs = Vec::with_capacity(count);
    while backs.len() < count {
        let Ok(Some((i, at, Event::Connection { state, reason }))) =
            tokio::time::timeout_at(deadline, rx.recv()).await
        else {
            break;
        };
        match state {
            ConnectionState::Connected { .. } => {
                logins[i] += 1;
                if logins[i] == 2 {
                    backs.push(at);
                }
            }
            ConnectionState::Connecting { .. } if logins[i] == 1 => stats.attempts += 1,
            ConnectionState::Aborted => stats.gave_up += 1,
            _ => {}
        }
        if let ConnectionReason::ConnectFailed(why) = &reason
            && logins[i] == 1
        {
            classify(why, stats);
        }
    }
    backs
}

fn report(stats: &StormStats, json: bool) -> Result<(), AnyError> {
    if json {
        println!("{}", serde_json::to_string_pretty(stats)?);
        return Ok(());
    }
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    println!(
        "{} clients (first logins in {} ms); server killed and listening again after {} ms; \
         {} back, all back {} after it listened (median {}, p99 {}); \
         {} attempts: {} refused by the server, {} found no server, {} timed out, {} other; {} gave up",
        stats.clients,
        stats.first_logins_ms,
        stats.restart_ms,
        stats.back,
        ms(stats.all_back_ms),
        ms(stats.p50_back_ms),
        ms(stats.p99_back_ms),
        stats.attempts,
        stats.refused_by_server,
        stats.no_server,
        stats.timed_out,
        stats.other_failures,
        stats.gave_up
    );
    Ok(())
}
