//! `softphone bench media`: N concurrent relayed calls, each direction
//! sending `--rate` packets a second of `--payload` bytes through the
//! server's media relay for `--duration`. Calls are set up over real
//! signaling ([`setup`]) and carried by the client's real [`RelayLink`]s
//! (one UDP socket per participant, as phones have). Reports packets
//! relayed per second, loss, the relay delay (send to receive, both in this
//! process, so one clock) at p50/p99/max, and the CPU of the server and of
//! the generator from `/proc/PID/stat`. With `--legs-per-socket K` (Linux)
//! K legs share a socket of the generator ([`shared`]), which then costs
//! the machine less.

use super::conn::Tokens;
use super::{AnyError, ChildServer, Target};
use crate::protocol::MediaInfo;
use crate::relay_link::{RelayLink, RelayReceiver, RelaySender, Transport};
use clap::Args;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

mod setup;
#[cfg(target_os = "linux")]
mod shared;

/// Calls set up (and links made) at once.
const BATCH: usize = 100;
/// Sender tasks the legs are spread over.
const SENDER_TASKS: usize = 4;
/// How long receivers keep reading after the last packet was sent.
const DRAIN: Duration = Duration::from_secs(1);
/// Clock ticks per second in `/proc/PID/stat` (USER_HZ, 100 on every Linux ABI in use).
const TICKS_PER_SECOND: f64 = 100.0;
/// Bytes at the start of each payload: leg, sequence number, send time.
const STAMP_BYTES: usize = 16;

#[derive(Debug, Args)]
pub struct MediaArgs {
    #[command(flatten)]
    pub target: Target,
    /// Concurrent relayed calls.
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// How long to send.
    #[arg(long, default_value = "20s", value_parser = crate::command::parse_duration)]
    pub duration: Duration,
    /// Packets per second in each direction of each call (20 ms Opus frames: 50).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Payload bytes per packet (a sealed 24 kbit/s Opus frame is about 100).
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Process id of the server given with `--server` (its CPU is read from /proc).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Legs that share one UDP socket of the generator. 1 (the default) gives
    /// each leg a real `RelayLink` of its own, as phones have; more (Linux
    /// only) reads a batch of datagrams per system call and runs one receiver
    /// per socket, so the generator leaves more of the machine to the relay.
    /// The relay's work per packet is the same either way.
    #[arg(long, default_value_t = 1)]
    pub legs_per_socket: usize,
}

/// How the generator's legs reach the relay.
enum Legs {
    /// A `RelayLink` per leg, each with a UDP socket of its own.
    Links(Vec<RelayLink>),
    /// Legs sharing sockets (`--legs-per-socket`).
    #[cfg(target_os = "linux")]
    Shared(shared::SharedLegs),
}

/// One leg's way out, whichever kind of legs.
enum LegSender {
    Link(RelaySender),
    #[cfg(target_os = "linux")]
    Shared(shared::SharedSender),
}

impl LegSender {
    /// Sends one payload; whether it went.
    async fn send(&mut self, payload: &[u8]) -> bool {
        match self {
            LegSender::Link(link) => link.send(payload).await.is_ok(),
            #[cfg(target_os = "linux")]
            LegSender::Shared(shared) => shared.send(payload).await.is_ok(),
        }
    }
}

/// The bench's result, as printed (`--json` prints these names); delays in
/// milliseconds, CPU in percent of one core, `udp_legs` the legs that did
/// not fall back to WebSocket.
#[derive(Debug, serde::Serialize)]
struct MediaStats {
    calls: usize,
    duration_s: f64,
    sent: u64,
    received: u64,
    relayed_per_second: f64,
    loss_percent: f64,
    delay_p50_ms: f64,
    delay_p99_ms: f64,
    delay_max_ms: f64,
    server_cpu_percent: Option<f64>,
    generator_cpu_percent: Option<f64>,
    udp_legs: usize,
}

pub async fn run(args: MediaArgs) -> Result<(), AnyError> {
    if args.rate == 0 || args.rate > 1000 || args.payload < STAMP_BYTES || args.legs_per_socket == 0 {
        return Err(format!(
            "--rate must be 1 to 1000, --payload at least {STAMP_BYTES}, --legs-per-socket at least 1"
        )
        .into());
    }
    let child;
    let (url, pid) = match args.target.one_server()? {
        Some(url) => (url, args.pid),
        None => {
            let cap = (2 * args.calls + 1000).to_string();
            child = ChildServer::start(&["--max-connections", &cap]).await?;
            (child.url.clone(), child.pid())
        }
    };
    let tokens = Tokens::from_file(args.target.secret_file.as_deref())?;
    let (held, infos) = set_up(&url, &tokens, args.calls).await?;
    let (legs, udp_legs) = connect(infos, &url, args.legs_per_socket).await?;
    eprintln!(
        "{} calls set up, {udp_legs} of {} legs on UDP; sending for {:?}",
        args.calls,
        2 * args.calls,
        args.duration
    );
    let cpu_before = (pid.map(cpu_ticks), cpu_ticks(std::process::id()));
    let started = Instant::now();
    let (received, delays) = traffic(legs, &args).await;
    let wall = started.elapsed().as_secs_f64();
    let cpu = |before: Option<std::io::Result<u64>>, pid: Option<u32>| -> Option<f64> {
        let (Some(Ok(before)), Some(Ok(after))) = (before, pid.map(cpu_ticks)) else { return None };
        Some(100.0 * (after - before) as f64 / TICKS_PER_SECOND / wall)
    };
    let sent = received.sent;
    let stats = MediaStats {
        calls: args.calls,
        duration_s: args.duration.as_secs_f64(),
        sent,
        received: received.count,
        relayed_per_second: received.count as f64 / args.duration.as_secs_f64(),
        loss_percent: 100.0 * sent.saturating_sub(received.count) as f64 / sent.max(1) as f64,
        delay_p50_ms: delays.value_at_quantile(0.50) as f64 / 1000.0,
        delay_p99_ms: delays.value_at_quantile(0.99) as f64 / 1000.0,
        delay_max_ms: delays.max() as f64 / 1000.0,
        server_cpu_percent: cpu(cpu_before.0, pid),
        generator_cpu_percent: cpu(Some(cpu_before.1), Some(std::process::id())),
        udp_legs,
    };
    drop(held);
    print(&stats, args.target.json)
}

fn print(stats: &MediaStats, json: bool) -> Result<(), AnyError> {
    if json {
        println!("{}", serde_json::to_string_pretty(stats)?);
        return Ok(());
    }
    let percent = |p: Option<f64>| p.map(|p| format!("{p:.0} %")).unwrap_or_else(|| "unknown".into());
    println!(
        "{} calls for {:.0} s: {} packets sent, {} relayed ({:.0}/s), loss {:.3} %\n\
         relay delay p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms\n\
         CPU (100 % = one core): server {}, generator {}",
        stats.calls,
        stats.duration_s,
        stats.sent,
        stats.received,
        stats.relayed_per_second,
        stats.loss_percent,
        stats.delay_p50_ms,
        stats.delay_p99_ms,
        stats.delay_max_ms,
        percent(stats.server_cpu_percent),
        percent(stats.generator_cpu_percent),
    );
    Ok(())
}

/// Sets up `calls` calls; returns them (held open) and the `media` of
/// each leg (caller of call i at 2i, its callee at 2i + 1).
async fn set_up(
    url: &str,
    tokens: &Tokens,
    calls: usize,
) -> Result<(Vec<setup::SetUp>, Vec<MediaInfo>), AnyError> {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut held = Vec::with_capacity(calls);
    let mut infos = Vec::with_capacity(2 * calls);
    for start in (0..calls).step_by(BATCH) {
        let batch: Vec<_> = (start..(start + BATCH).min(calls))
            .map(|i| {
                let (url, tokens, tag) = (url.to_owned(), tokens.clone(), tag.to_owned());
                tokio::spawn(async move { setup::call(&url, &tokens, &tag, i).await })
            })
            .collect();
        for task in batch {
            let call = task.await??;
            infos.extend([call.caller.clone(), call.callee.clone()]);
            held.push(call);
        }
        eprint!("\r{} of {calls} calls set up", held.len());
    }
    eprintln!();
    Ok((held, infos))
}

/// Makes each leg's way to the relay: a `RelayLink` each (connected
/// `BATCH` at a time), or shared sockets; and counts the legs on UDP.
async fn connect(infos: Vec<MediaInfo>, url: &str, per_socket: usize) -> Result<(Legs, usize), AnyError> {
    if per_socket > 1 {
        #[cfg(target_os = "linux")]
        return Ok((Legs::Shared(shared::bind(&infos, per_socket).await?), infos.len()));
        #[cfg(not(target_os = "linux"))]
        return Err("--legs-per-socket above 1 needs Linux (recvmmsg)".into());
    }
    let mut links = Vec::with_capacity(infos.len());
    for chunk in infos.chunks(2 * BATCH) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|info| {
                let (info, url) = (info.clone(), url.to_owned());
                tokio::spawn(async move { RelayLink::connect(&info, &url).await })
            })
            .collect();
        for task in tasks {
            links.push(task.await??);
        }
    }
    let udp = links.iter().filter(|l| l.transport() == Transport::Udp).count();
    Ok((Legs::Links(links), udp))
}

/// What the receivers got, and what the senders sent.
struct Received {
    /// Packets the senders wrote.
    sent: u64,
    /// Packets the receivers read.
    count: u64,
}

/// Runs the traffic: senders for `args.duration`, receivers until the drain ends.
async fn traffic(legs: Legs, args: &MediaArgs) -> (Received, Histogram<u64>) {
    let epoch = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut groups: Vec<Vec<(usize, LegSender)>> = (0..SENDER_TASKS).map(|_| Vec::new()).collect();
    let mut receivers = Vec::new();
    match legs {
        Legs::Links(links) => {
            for (leg, link) in links.into_iter().enumerate() {
                let (sender, receiver) = link.split();
                groups[leg % SENDER_TASKS].push((leg, LegSender::Link(sender)));
                receivers.push(tokio::spawn(receive(receiver, epoch, stopped.clone())));
            }
        }
        #[cfg(target_os = "linux")]
        Legs::Shared(shared) => {
            for (leg, sender) in shared.senders.into_iter().enumerate() {
                groups[leg % SENDER_TASKS].push((leg, LegSender::Shared(sender)));
            }
            for socket in shared.sockets {
                let keys = shared.keys.clone();
                receivers.push(tokio::spawn(shared::receive(socket, keys, epoch, stopped.clone())));
            }
        }
    }
    let until = epoch + args.duration;
    let senders: Vec<_> = groups
        .into_iter()
        .map(|group| tokio::spawn(send(group, args.rate, args.payload, epoch, until, sent.clone())))
        .collect();
    for s in senders {
        let _ = s.await;
    }
    tokio::time::sleep(DRAIN).await;
    let _ = stop.send(true);
    let mut count = 0;
    let mut delays = new_histogram();
    for r in receivers {
        if let Ok((n, h)) = r.await {
            count += n;
            let _ = delays.add(&h);
        }
    }
    (Received { sent: sent.load(Ordering::Relaxed), count }, delays)
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 60 s, 2 significant digits: small enough for one per leg.
    Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid bounds")
}

/// Sends for each leg of `group` every `1/rate` s, the legs spread over the period.
async fn send(
    group: Vec<(usize, LegSender)>,
    rate: u32,
    payload_bytes: usize,
    epoch: Instant,
    until: Instant,
    sent: Arc<AtomicU64>,
) {
    let slots = (1000 / rate).max(1) as usize;
    // One list per millisecond of the period, so each tick touches only its own legs.
    let mut by_slot: Vec<Vec<(usize, LegSender)>> = (0..slots).map(|_| Vec::new()).collect();
    for (i, leg) in group.into_iter().enumerate() {
        by_slot[i % slots].push(leg);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    // A late tick is caught up at once: the rate holds, and the stamp is taken at sending.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut payload = vec![0u8; payload_bytes];
    let mut seq = 0u32;
    let mut k = 0usize;
    while Instant::now() < until {
        tick.tick().await;
        let slot = k % slots;
        k += 1;
        seq = seq.wrapping_add(u32::from(slot == 0));
        let mut n = 0;
        for (leg, sender) in by_slot[slot].iter_mut() {
            payload[..4].copy_from_slice(&(*leg as u32).to_be_bytes());
            payload[4..8].copy_from_slice(&seq.to_be_bytes());
            let now = epoch.elapsed().as_nanos() as u64;
            payload[8..STAMP_BYTES].copy_from_slice(&now.to_be_bytes());
            if sender.send(&payload).await {
                n += 1;
            }
        }
        sent.fetch_add(n, Ordering::Relaxed);
    }
}

/// Receives one leg's packets until stopped; returns how many and their delays.
async fn receive(
    mut receiver: RelayReceiver,
    epoch: Instant,
    mut stopped: watch::Receiver<bool>,
) -> (u64, Histogram<u64>) {
    let mut delays = new_histogram();
    let mut count = 0;
    loop {
        tokio::select! {
            got = receiver.recv() => match got {
                Ok(payload) if payload.len() >= STAMP_BYTES => {
                    let stamp = u64::from_be_bytes(payload[8..STAMP_BYTES].try_into().expect("8 bytes"));
                    let now = epoch.elapsed().as_nanos() as u64;
                    let _ = delays.record((now.saturating_sub(stamp) / 1000).max(1));
                    count += 1;
                }
                Ok(_) => {}
                Err(_) => break,
            },
            _ = stopped.changed() => break,
        }
    }
    (count, delays)
}

/// User plus system CPU time of process `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after its `)` are plain.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the line; counted from field 3 (state) at 0, 11 and 12.
    match (field(11), field(12)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(std::io::Error::other("unexpected /proc stat format")),
    }
}
