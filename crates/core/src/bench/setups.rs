//! `softphone bench setups`: complete calls between pairs of connections.
//!
//! Open loop: calls start at fixed instants whatever the server does (no
//! caller ever waits for a reply before its next invite), so a server that
//! falls behind shows it in the latency tail instead of slowing the
//! generator down. Latency runs from the moment the invite is written; how
//! late the generator itself was against the schedule is reported apart
//! (`lag`), so a starved generator cannot pass for a slow server. The send
//! instant travels in the invitation's `content`, so the callee can time
//! delivery without sharing state with the caller. Each run gets fresh
//! connections, so one overloaded probe cannot spoil the next.
//!
//! Against the nodes of a cluster (`--server URL1,URL2`), each pair's
//! caller and callee log in on different nodes (see [`pair_urls`]), so
//! every call crosses between nodes.

use super::conn::{self, Sink, Stream, Tokens, frame};
use super::{AnyError, ChildServer, Target};
use crate::protocol::{Request, ServerMessage};
use clap::Args;
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Debug, Args)]
pub struct SetupsArgs {
    #[command(flatten)]
    pub target: Target,
    /// A call not set up and hung up this long after its invite has failed
    /// (`timeout`): a phone that takes longer has failed its user, and the
    /// rate search needs overload to show as failures within its probes.
    #[arg(long, default_value = "2s", value_parser = crate::command::parse_duration)]
    pub call_timeout: Duration,
    /// While searching, a probe whose p99 invite->accepted exceeds this fails too.
    /// 20 ms: on this project's 2-core machine, 3 s probes past 20 ms did
    /// not hold for 20 s (docs/performance.md).
    #[arg(long, default_value = "20ms", value_parser = crate::command::parse_duration)]
    pub max_p99: Duration,
    /// Caller/callee pairs, each peer on its own connection; each caller
    /// calls the callees in turn.
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// How long to offer load (the final run, when searching).
    #[arg(long, default_value = "20s", value_parser = crate::command::parse_duration)]
    pub duration: Duration,
    /// Calls offered per second; without it, the highest rate with under 1 % failures is searched for.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Length of each probe while searching.
    #[arg(long, default_value = "3s", value_parser = crate::command::parse_duration)]
    pub step: Duration,
}

/// Start this call now (it was scheduled for `scheduled`).
struct Start {
    call_id: String,
    /// The callee: each caller calls the callees in turn, as at most 3 of one
    /// caller's calls may ring at the same callee (protocol v1.1).
    callee: String,
    scheduled: Instant,
}

/// What the pairs tell the collector.
enum Report {
    /// The invite was written this long after its scheduled instant.
    Lag(Duration),
    /// A callee got an invitation this long after it was scheduled.
    Delivered(Duration),
    /// A call finished: accepted this long after scheduled, or failed for a reason.
    Done(Result<Duration, String>),
    /// A callee saw `hung_up`.
    HungUp,
}

/// The connections of all pairs for one run; closed when dropped.
struct Pool {
    callers: Vec<mpsc::UnboundedSender<Start>>,
    reports: mpsc::UnboundedReceiver<Report>,
    /// For the scheduler to report calls it could not hand to a lost caller.
    report: mpsc::UnboundedSender<Report>,
    /// Makes call ids unique on a shared server.
    tag: String,
    /// The pairs' tasks, aborted with the pool.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// See `SetupsArgs::call_timeout`.
    timeout: Duration,
    /// How many nodes the pairs are spread over (see [`callee_of`]).
    nodes: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// Where and how to connect, for each run's fresh pool.
struct Setup {
    /// The nodes; one for a single server.
    urls: Vec<String>,
    tokens: Tokens,
    pairs: usize,
    call_timeout: Duration,
}

impl Setup {
    /// One run at `rate` for `duration` on fresh connections; a pool that
    /// cannot connect counts every call as failed.
    async fn run_at(&self, rate: f64, duration: Duration) -> RunStats {
        match Pool::connect(&self.urls, self.pairs, &self.tokens, self.call_timeout).await {
            Ok(mut pool) => pool.run_at(rate, duration).await,
            Err(e) => {
                eprintln!("cannot connect the pairs: {e}");
                RunStats::all_failed(rate, duration, format!("connect: {e}"))
            }
        }
    }
}

/// The figures of one run at one offered rate.
#[derive(Debug, serde::Serialize)]
struct RunStats {
    offered_per_s: f64,
    achieved_per_s: f64,
    completed: u64,
    failed: u64,
    failures: BTreeMap<String, u64>,
    hung_up_seen: u64,
    invite_to_delivered_us: Percentiles,
    invite_to_accepted_us: Percentiles,
    /// How late the generator wrote invites against the schedule.
    schedule_lag_us: Percentiles,
}

#[derive(Debug, serde::Serialize)]
struct Percentiles {
    p50: u64,
    p90: u64,
    p99: u64,
    p99_9: u64,
    max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

impl RunStats {
    fn all_failed(rate: f64, duration: Duration, why: String) -> Self {
        let total = (rate * duration.as_secs_f64()).round() as u64;
        let empty = Histogram::<u64>::new(3).expect("valid");
        RunStats {
            offered_per_s: rate,
            achieved_per_s: 0.0,
            completed: 0,
            failed: total,
            failures: BTreeMap::from([(why, total)]),
            hung_up_seen: 0,
            invite_to_delivered_us: Percentiles::of(&empty),
            invite_to_accepted_us: Percentiles::of(&empty),
            schedule_lag_us: Percentiles::of(&empty),
        }
    }

    fn fail_ratio(&self) -> f64 {
        let total = self.completed + self.failed;
        if total == 0 { 1.0 } else { self.failed as f64 / total as f64 }
    }
}

pub async fn run(args: SetupsArgs) -> Result<(), AnyError> {
    let child;
    let mut urls = args.target.servers()?;
    if urls.is_empty() {
        // Limits opened wide: the bench measures speed, not the protection limits.
        let big = ["--rate-limit", "1000000", "--rate-burst", "1000000", "--max-calls-per-peer", "1000000"];
        child = ChildServer::start(&big).await?;
        urls.push(child.url.clone());
    }
    let tokens = Tokens::from_file(args.target.secret_file.as_deref())?;
    let setup = Setup { urls, tokens, pairs: args.pairs, call_timeout: args.call_timeout };
    let runs = match args.rate {
        Some(rate) => vec![setup.run_at(rate, args.duration).await],
        None => search(&setup, &args).await,
    };
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        print_table(&runs);
    }
    Ok(())
}

/// Raises the offered rate until a probe fails (≥ 1 % failed, under 95 %
/// of the offered rate completed, or p99 setup over `--max-p99`), narrows down, then runs the best rate for
/// the full duration. Returns every run, the final one last.
async fn search(pool: &Setup, args: &SetupsArgs) -> Vec<RunStats> {
    // A short probe of an overloaded server shows queues before it shows
    // failures: a p99 past `max_p99` means the rate cannot be held for long.
    let max_p99 = args.max_p99.as_micros() as u64;
    let passes = |r: &RunStats| {
        r.fail_ratio() < 0.01
            && r.achieved_per_s >= 0.95 * r.offered_per_s
            && r.invite_to_accepted_us.p99 <= max_p99
    };
    let mut runs = Vec::new();
    let (mut good, mut bad) = (0.0, None);
    let mut rate: f64 = 1000.0;
    while bad.is_none() && rate <= 200_000.0 {
        let r = pool.run_at(rate, args.step).await;
        if passes(&r) {
            good = rate
        } else {
            bad = Some(rate)
        }
        runs.push(r);
        rate *= 1.5;
    }
    if let Some(mut hi) = bad {
        for _ in 0..3 {
            let mid = ((good + hi) / 2.0 / 100.0).round() * 100.0;
            if mid <= good || mid >= hi {
                break;
            }
            let r = pool.run_at(mid, args.step).await;
            if passes(&r) {
                good = mid
            } else {
                hi = mid
            }
            runs.push(r);
        }
    }
    if good > 0.0 {
        runs.push(pool.run_at(good, args.duration).await);
    }
    runs
}

/// The nodes pair `pair` logs in on: its caller on `urls[pair % n]`, its
/// callee on the next node, `urls[(pair + 1) % n]` (the same one when
/// there is one).
fn pair_urls(urls: &[String], pair: usize) -> (&str, &str) {
    let n = urls.len();
    (&urls[pair % n], &urls[(pair + 1) % n])
}

/// The callee of call `call` (0, 1, ...): its caller is pair `call % pairs`,
/// which calls in turn the callees of the pairs in its own class modulo
/// `nodes`. Those callees all sit on the node after the caller's (see
/// [`pair_urls`]), so with several nodes every call crosses between two;
/// with one node this is each caller calling every callee in turn.
fn callee_of(call: usize, pairs: usize, nodes: usize) -> usize {
    let caller = call % pairs;
    let class = caller % nodes;
    let in_class = (pairs - class).div_ceil(nodes);
    class + nodes * ((caller / nodes + call / pairs) % in_class)
}

impl Pool {
    async fn connect(
        urls: &[String],
        pairs: usize,
        tokens: &Tokens,
        timeout: Duration,
    ) -> Result<Pool, AnyError> {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let epoch = Instant::now();
        let (report, reports) = mpsc::unbounded_channel();
        let mut callers = Vec::with_capacity(pairs);
        let mut tasks = Vec::with_capacity(2 * pairs);
        for i in 0..pairs {
            let (caller, callee) = (format!("bench-{tag}-a{i}"), format!("bench-{tag}-b{i}"));
            let (caller_url, callee_url) = pair_urls(urls, i);
            let (csink, cstream) = conn::connect_login(caller_url, &caller, tokens, None).await?;
            let (bsink, bstream) = conn::connect_login(callee_url, &callee, tokens, None).await?;
            let (start, starts) = mpsc::unbounded_channel();
            let caller = Caller { epoch, timeout, report: report.clone() };
            tasks.push(tokio::spawn(caller.run(csink, cstream, starts)));
            tasks.push(tokio::spawn(run_callee(bsink, bstream, epoch, report.clone())));
            callers.push(start);
        }
        Ok(Pool { callers, reports, report, tag, tasks, timeout, nodes: urls.len() })
    }

    /// Offers `rate` calls a second for `duration` and waits for all of them.
    async fn run_at(&mut self, rate: f64, duration: Duration) -> RunStats {
        let total = (rate * duration.as_secs_f64()).round() as u64;
        let t0 = Instant::now() + Duration::from_millis(20);
        let callers = self.callers.clone();
        let nodes = self.nodes;
        let prefix = self.tag.clone();
        let report = self.report.clone();
        tokio::spawn(async move {
            for k in 0..total {
                let scheduled = t0 + Duration::from_secs_f64(k as f64 / rate);
                tokio::time::sleep_until(scheduled).await;
                let call_id = format!("{prefix}-{k}");
                let (pairs, k) = (callers.len(), k as usize);
                let callee = format!("bench-{prefix}-b{}", callee_of(k, pairs, nodes));
                if callers[k % pairs].send(Start { call_id, callee, scheduled }).is_err() {
                    let _ = report.send(Report::Done(Err("connection lost".into())));
                }
            }
        });
        let new_hist = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        let (mut delivered, mut accepted, mut lag) = (new_hist(), new_hist(), new_hist());
        let (mut completed, mut failed, mut hung_up) = (0u64, 0u64, 0u64);
        let mut failures = BTreeMap::new();
        let deadline = t0 + duration + self.timeout + Duration::from_secs(2);
        let mut progress = tokio::time::interval(Duration::from_secs(1));
        while completed + failed < total {
            tokio::select! {
                report = self.reports.recv() => match report {
                    Some(Report::Lag(d)) => { let _ = lag.record(d.as_micros().max(1) as u64); }
                    Some(Report::Delivered(d)) => { let _ = delivered.record(d.as_micros().max(1) as u64); }
                    Some(Report::Done(Ok(d))) => { completed += 1; let _ = accepted.record(d.as_micros().max(1) as u64); }
                    Some(Report::Done(Err(reason))) => { failed += 1; *failures.entry(reason).or_insert(0) += 1; }
                    Some(Report::HungUp) => hung_up += 1,
                    None => break,
                },
                _ = progress.tick() => {
                    eprint!("\r{rate:>8.0}/s offered: {completed} completed, {failed} failed of {total}   ");
                    let _ = std::io::stderr().flush();
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let lost = total - completed - failed;
                    failed += lost;
                    *failures.entry("lost".into()).or_insert(0) += lost;
                    break;
                }
            }
        }
        eprintln!();
        let elapsed = duration.as_secs_f64();
        RunStats {
            offered_per_s: rate,
            achieved_per_s: completed as f64 / elapsed,
            completed,
            failed,
            failures,
            hung_up_seen: hung_up,
            invite_to_delivered_us: Percentiles::of(&delivered),
            invite_to_accepted_us: Percentiles::of(&accepted),
            schedule_lag_us: Percentiles::of(&lag),
        }
    }
}

/// One caller connection: invites on schedule, hangs up on `accepted`,
/// reports each call's end.
struct Caller {
    /// Origin of the send times written into `content`.
    epoch: Instant,
    /// See `SetupsArgs::call_timeout`.
    timeout: Duration,
    report: mpsc::UnboundedSender<Report>,
}

impl Caller {
    async fn run(self, mut sink: Sink, mut stream: Stream, mut starts: mpsc::UnboundedReceiver<Start>) {
        let Caller { epoch, timeout, report } = self;
        // Call id -> its scheduled start and, once accepted, its invite->accepted latency;
        // req -> call id (even: invite, odd: hangup).
        let mut live: HashMap<String, (Instant, Option<Duration>)> = HashMap::new();
        let mut reqs: HashMap<u64, String> = HashMap::new();
        let mut next_req = 2u64;
        let mut sweep = tokio::time::interval((timeout / 4).max(Duration::from_millis(50)));
        loop {
            tokio::select! {
                start = starts.recv() => {
                    let Some(Start { call_id, callee, scheduled }) = start else { break };
                    let sent = Instant::now();
                    let _ = report.send(Report::Lag(sent.saturating_duration_since(scheduled)));
                    let content = sent.duration_since(epoch).as_micros().to_string();
                    let invite = Request::Invite { call_id: call_id.clone(), callee_id: callee, content, channel_id: String::new(), media_key: None, media_commit: None };
                    reqs.insert(next_req, call_id.clone());
                    live.insert(call_id, (sent, None));
                    if sink.send(frame(Some(next_req), invite)).await.is_err() { break; }
                    next_req += 2;
                }
                msg = conn::next_message(&mut stream) => {
                    let Some(Ok(msg)) = msg else { break };
                    match msg {
                        ServerMessage::Accepted { call_id, .. } => {
                            let Some((sent, accepted)) = live.get_mut(&call_id) else { continue };
                            *accepted = Some(sent.elapsed());
                            reqs.insert(next_req + 1, call_id.clone());
                            if sink.send(frame(Some(next_req + 1), Request::Hangup { call_id })).await.is_err() { break; }
                            next_req += 2;
                        }
                        ServerMessage::Ok { req: Some(req), .. } => {
                            // The hang-up's ok completes the call.
                            let call_id = req.as_u64().and_then(|n| reqs.remove(&n));
                            if let (Some(call_id), Some(1)) = (call_id, req.as_u64().map(|n| n % 2))
                                && let Some((_, Some(latency))) = live.remove(&call_id)
                            {
                                let _ = report.send(Report::Done(Ok(latency)));
                            }
                        }
                        other => {
                            let failed = match other {
                                ServerMessage::Error { req, code, .. } => {
                                    req.and_then(|r| r.as_u64()).and_then(|n| reqs.remove(&n)).map(|c| (c, code.to_string()))
                                }
                                ServerMessage::Failure { call_id, reason } => Some((call_id, format!("{reason:?}"))),
                                ServerMessage::Refused { call_id, .. } => Some((call_id, "refused".into())),
                                _ => None,
                            };
                            if let Some((call_id, reason)) = failed
                                && live.remove(&call_id).is_some()
                            {
                                let _ = report.send(Report::Done(Err(reason)));
                            }
                        }
                    }
                }
                _ = sweep.tick() => {
                    let now = Instant::now();
                    live.retain(|_, (sent, _)| {
                        let keep = now.duration_since(*sent) < timeout;
                        if !keep { let _ = report.send(Report::Done(Err("timeout".into()))); }
                        keep
                    });
                }
            }
        }
        // The connection is gone: whatever was in flight failed.
        for _ in live.drain() {
            let _ = report.send(Report::Done(Err("connection lost".into())));
        }
    }
}

/// One callee connection: acknowledges and accepts every invitation at once.
async fn run_callee(
    mut sink: Sink,
    mut stream: Stream,
    epoch: Instant,
    report: mpsc::UnboundedSender<Report>,
) {
    let mut req = 1u64;
    while let Some(Ok(msg)) = conn::next_message(&mut stream).await {
        match msg {
            ServerMessage::Invitation { call_id, content, .. } => {
                if let Ok(us) = content.parse::<u64>() {
                    let sent = epoch + Duration::from_micros(us);
                    let _ = report.send(Report::Delivered(sent.elapsed()));
                }
                let received = frame(None, Request::Received { call_id: call_id.clone() });
                let accept =
                    frame(Some(req), Request::Accept { call_id, response: String::new(), media_key: None });
                req += 1;
                if sink.feed(received).await.is_err()
                    || sink.feed(accept).await.is_err()
                    || sink.flush().await.is_err()
                {
                    return;
                }
            }
            ServerMessage::HungUp { .. } => {
                let _ = report.send(Report::HungUp);
            }
            _ => {}
        }
    }
}

fn print_table(runs: &[RunStats]) {
    println!(
        "{:>9} {:>9} {:>9} {:>7} {:>6}  {:<38}  {:<38}  {:>10}  failures",
        "offered/s",
        "done/s",
        "completed",
        "failed",
        "fail%",
        "invite->delivered µs p50/p90/p99/p99.9/max",
        "invite->accepted µs p50/p90/p99/p99.9/max",
        "lag p99 µs"
    );
    let fmt = |p: &Percentiles| format!("{}/{}/{}/{}/{}", p.p50, p.p90, p.p99, p.p99_9, p.max);
    for r in runs {
        println!(
            "{:>9.0} {:>9.0} {:>9} {:>7} {:>6.2}  {:<38}  {:<38}  {:>10}  {:?}",
            r.offered_per_s,
            r.achieved_per_s,
            r.completed,
            r.failed,
            r.fail_ratio() * 100.0,
            fmt(&r.invite_to_delivered_us),
            fmt(&r.invite_to_accepted_us),
            r.schedule_lag_us.p99,
            r.failures
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pair_has_its_caller_on_one_node_and_its_callee_on_the_next() {
        let urls: Vec<String> = ["ws://a/", "ws://b/", "ws://c/"].map(String::from).to_vec();
        let pairs: Vec<_> = (0..4).map(|i| pair_urls(&urls, i)).collect();
        assert_eq!(
            pairs,
            [("ws://a/", "ws://b/"), ("ws://b/", "ws://c/"), ("ws://c/", "ws://a/"), ("ws://a/", "ws://b/")]
        );
        let one = vec!["ws://a/".to_owned()];
        assert_eq!(pair_urls(&one, 7), ("ws://a/", "ws://a/"), "one server: as before");
    }

    #[test]
    fn with_several_nodes_every_call_crosses_and_with_one_each_caller_calls_every_callee() {
        let urls: Vec<String> = ["ws://a/", "ws://b/", "ws://c/"].map(String::from).to_vec();
        for (nodes, pairs) in [(2, 50), (2, 7), (3, 50), (3, 4), (2, 1), (3, 2)] {
            let urls = &urls[..nodes];
            for call in 0..10 * pairs {
                let callee = callee_of(call, pairs, nodes);
                assert!(callee < pairs);
                let (caller_node, _) = pair_urls(urls, call % pairs);
                assert_ne!(
                    caller_node,
                    pair_urls(urls, callee).1,
                    "{nodes} nodes, {pairs} pairs, call {call}"
                );
            }
        }
        // One node: the formula of a single server, every callee in turn.
        for pairs in [1, 7, 50] {
            for call in 0..3 * pairs {
                assert_eq!(callee_of(call, pairs, 1), (call % pairs + call / pairs) % pairs);
            }
        }
        // Each caller of a class spreads its calls over the whole class.
        let seen: std::collections::BTreeSet<_> = (0..200).map(|k| callee_of(k * 50, 50, 2)).collect();
        assert_eq!(seen.len(), 25, "pair 0 calls the 25 even callees");
    }
}
