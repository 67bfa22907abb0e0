//! The media relay: forwards opaque packets between the two participants of
//! an accepted call, over UDP or, for clients that cannot use UDP, binary
//! frames on the WebSocket path `/media`. A participant may send only with
//! the credential the hub handed it at accept; everything else (no or a
//! forged credential, a third party, a callee device that did not answer, a
//! call that has ended, a packet too large, a flood) is dropped and counted.
//! On UDP the credential itself never travels: a route is an address that
//! answered the relay's challenge with a proof keyed by it, checked again
//! every few seconds (consent), so the relay cannot be aimed at anyone.
//! The hub opens a call's legs when it is accepted and closes them when it
//! ends; shutdown closes them all. Packet framing: [`crate::protocol::relay`];
//! prose: `docs/relay.md`.

use crate::protocol::relay::{self, MEDIA_WS_PATH, MediaInfo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

mod consent;
mod table;
mod udp;
mod ws;

pub(crate) use table::Verdict;
use table::{Source, Table};
pub(crate) use ws::serve as serve_ws;

/// Where the relay's UDP socket listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaListen {
    /// No relay: accepts carry no `media`, `/media` is not served.
    Off,
    /// The WebSocket listener's address, port number and all (the default).
    SamePort,
    /// An address of its own (`--media-listen`); port 0 picks a free one.
    At(SocketAddr),
}

/// The relay's UDP socket could not be bound: the port is taken, the
/// address is not this host's, or the signaling listener has no address.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind the media relay on {} ({}): {source}", self.addr_text(), self.origin())]
pub struct RelayBindError {
    /// Where the relay was told to listen, so the message can name the flag behind it.
    pub listen: MediaListen,
    /// The address tried; `None` when the signaling listener's own was unknown.
    pub addr: Option<SocketAddr>,
    /// What the operating system said.
    #[source]
    pub source: std::io::Error,
}

impl RelayBindError {
    fn addr_text(&self) -> String {
        self.addr.map_or_else(|| "the signaling port".to_owned(), |a| format!("udp://{a}"))
    }

    fn origin(&self) -> &'static str {
        match self.listen {
            MediaListen::At(_) => "--media-listen",
            MediaListen::SamePort | MediaListen::Off => "the signaling port number, the default",
        }
    }

    /// What an operator can do about it, naming the flags.
    pub fn remedy(&self) -> &'static str {
        match self.listen {
            MediaListen::At(_) => {
                "choose another --media-listen ADDR, or --no-media to run without the relay"
            }
            MediaListen::SamePort | MediaListen::Off => {
                "give the relay an address of its own with --media-listen ADDR, or --no-media to run without it"
            }
        }
    }
}

/// Limits on what one participant may send into the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    /// Packets per second, sustained (voice needs 50).
    pub packets_per_second: u32,
    /// Packets at once above the sustained rate.
    pub burst: u32,
    /// Largest packet, header included; larger ones are dropped.
    pub max_packet_bytes: usize,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits { packets_per_second: 100, burst: 200, max_packet_bytes: 1_400 }
    }
}

/// How the server runs its media relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Where UDP listens, or `Off`.
    pub listen: MediaListen,
    /// Per-participant limits.
    pub limits: RelayLimits,
    /// How often every UDP route is sent a consent check (a challenge).
    pub consent_every: Duration,
    /// A UDP route that has answered no challenge for this long is dropped
    /// (RFC 7675's 30 s): the relay stops sending to it.
    pub consent_timeout: Duration,
    /// `/media` connections at once (`--max-media-connections`), apart
    /// from the signaling connections' cap, so they never take a login's slot.
    pub max_media_connections: usize,
    /// A `/media` connection that has not presented a live credential this
    /// long after its handshake is closed.
    pub media_bind_deadline: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: MediaListen::SamePort,
            limits: RelayLimits::default(),
            consent_every: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            max_media_connections: 4_096,
            media_bind_deadline: Duration::from_secs(5),
        }
    }
}

/// What the relay has done since it started, and what it holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Packets passed on to the other participant.
    pub forwarded: u64,
    /// Probes answered (each also binds the sender's address or WebSocket).
    pub probes_answered: u64,
    /// Packets that are not relay packets at all.
    pub malformed: u64,
    /// Packets with a credential of no live call leg: forged, a third
    /// party's, a non-answering device's, or from a call that has ended.
    pub unknown_credential: u64,
    /// Packets over the size limit.
    pub oversize: u64,
    /// Packets over the participant's rate limit.
    pub rate_limited: u64,
    /// Packets for a participant that has no route (not bound yet, or its
    /// UDP route stopped answering consent checks).
    pub no_route: u64,
    /// UDP data from an address that is not its leg's route (a spoofed
    /// source, or a client whose address moved and has not answered a
    /// challenge from there yet): never forwarded, never a route.
    pub not_route: u64,
    /// UDP answers whose cookie (address, window) or proof is wrong.
    pub bad_proof: u64,
    /// UDP challenges sent, after bind requests and as consent checks.
    pub challenges_sent: u64,
    /// UDP routes dropped because they stopped answering consent checks.
    pub consent_lost: u64,
    /// Packets that could not be written (socket error, WebSocket queue full).
    pub send_failed: u64,
    /// Calls the relay holds legs for right now.
    pub live_calls: u64,
}

impl RelayStats {
    /// Every packet dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.unknown_credential
            + self.oversize
            + self.rate_limited
            + self.no_route
            + self.not_route
            + self.bad_proof
            + self.send_failed
    }
}

/// The counters behind [`RelayStats`] (each field as documented there),
/// bumped without the table's lock.
#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    probes_answered: AtomicU64,
    malformed: AtomicU64,
    unknown_credential: AtomicU64,
    oversize: AtomicU64,
    rate_limited: AtomicU64,
    no_route: AtomicU64,
    not_route: AtomicU64,
    bad_proof: AtomicU64,
    challenges_sent: AtomicU64,
    consent_lost: AtomicU64,
    send_failed: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One server's relay: the leg table, its counters and its UDP task.
pub struct Relay {
    /// The call legs and the UDP socket, behind one short-held lock.
    table: Mutex<Table>,
    /// What happened to the packets so far.
    counters: Counters,
    /// The size limit is checked before the lock is taken.
    limits: RelayLimits,
    /// `udp://HOST:PORT` as announced in `media`.
    announced: String,
    /// The UDP receive loops and the consent checker, stopped at shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Slots for `/media` connections (`max_media_connections`).
    media_slots: Arc<Semaphore>,
    /// How long a `/media` connection may go without a live credential.
    media_bind_deadline: Duration,
}

impl Relay {
    /// Binds the relay's UDP socket as `config` says (next to `ws_addr` for
    /// `SamePort`) and starts its receive loop; `None` for `Off`.
    pub(crate) fn bind(
        config: &RelayConfig,
        ws_addr: SocketAddr,
    ) -> Result<Option<Arc<Relay>>, RelayBindError> {
        let addr = match config.listen {
            MediaListen::Off => return Ok(None),
            MediaListen::SamePort => ws_addr,
            MediaListen::At(addr) => addr,
        };
        let failed = |source| RelayBindError { listen: config.listen, addr: Some(addr), source };
        let socket = Arc::new(udp::bind(addr).map_err(failed)?);
        let local = socket.local_addr().map_err(failed)?;
        let relay = Arc::new(Relay {
            table: Mutex::new(Table::new(socket.clone(), config.limits)),
            counters: Counters::default(),
            limits: config.limits,
            announced: format!("udp://{local}"),
            tasks: Mutex::new(Vec::new()),
            media_slots: Arc::new(Semaphore::new(media_cap(config.max_media_connections))),
            media_bind_deadline: config.media_bind_deadline,
        });
        let mut tasks: Vec<_> = (0..udp::loops())
            .map(|_| tokio::spawn(udp::receive_forever(relay.clone(), socket.clone())))
            .collect();
        let consent = consent::Timers { every: config.consent_every, timeout: config.consent_timeout };
        tasks.push(tokio::spawn(consent::check_forever(relay.clone(), socket.clone(), consent)));
        *relay.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        tracing::info!("media relay on udp://{local} and ws {MEDIA_WS_PATH}");
        Ok(Some(relay))
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the two legs of an accepted call: the caller's and the
    /// answering callee's way in, in that order.
    pub(crate) fn open(&self, call_id: &Arc<str>) -> (MediaInfo, MediaInfo) {
        let (caller, callee) = self.lock().open(call_id);
        let info = |credential| MediaInfo {
            relay: Some(self.announced.clone()),
            ws: MEDIA_WS_PATH.to_owned(),
            credential: relay::encode_credential(&credential),
        };
        (info(caller), info(callee))
    }

    /// Forgets a call's legs: its credentials stop working at once and its
    /// `/media` connections are told to close.
    pub(crate) fn close(&self, call_id: &str) {
        self.lock().close(call_id);
    }

    /// The calls opened before `before`, each with the serial of its opening,
    /// for an audit against the calls' state elsewhere (a cluster's Redis).
    pub(crate) fn opened_before(&self, before: std::time::Instant) -> Vec<(Arc<str>, u64)> {
        self.lock().opened_before(before)
    }

    /// Closes `call_id` if it is still the opening with `serial` (not one
    /// made since, for a new call of the same id).
    pub(crate) fn close_opening(&self, call_id: &str, serial: u64) {
        self.lock().close_opening(call_id, serial);
    }

    /// A slot for a `/media` connection, or `None` at the cap.
    pub(crate) fn media_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.media_slots.clone().try_acquire_owned().ok()
    }

    /// Stops the UDP loops and forgets every call, releasing the socket.
    pub(crate) async fn shutdown(&self) {
        self.lock().close_all();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RelayStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelayStats {
            forwarded: get(&c.forwarded),
            probes_answered: get(&c.probes_answered),
            malformed: get(&c.malformed),
            unknown_credential: get(&c.unknown_credential),
            oversize: get(&c.oversize),
            rate_limited: get(&c.rate_limited),
            no_route: get(&c.no_route),
            not_route: get(&c.not_route),
            bad_proof: get(&c.bad_proof),
            challenges_sent: get(&c.challenges_sent),
            consent_lost: get(&c.consent_lost),
            send_failed: get(&c.send_failed),
            live_calls: self.lock().live_calls() as u64,
        }
    }

    /// `udp://HOST:PORT` of the relay's socket.
    pub fn udp_url(&self) -> &str {
        &self.announced
    }

    /// Decides about one packet from `source`, counting what is dropped.
    fn judge(&self, packet: &[u8], source: Source<'_>) -> Verdict {
        if packet.len() > self.limits.max_packet_bytes {
            bump(&self.counters.oversize);
            return Verdict::Drop;
        }
        let verdict = self.lock().judge(packet, source, std::time::Instant::now());
        let c = &self.counters;
        match verdict {
            Verdict::Malformed => bump(&c.malformed),
            Verdict::UnknownCredential => bump(&c.unknown_credential),
            Verdict::RateLimited => bump(&c.rate_limited),
            Verdict::NoRoute => bump(&c.no_route),
            Verdict::NotRoute => bump(&c.not_route),
            Verdict::BadProof => bump(&c.bad_proof),
            Verdict::Challenge(_) => bump(&c.challenges_sent),
            Verdict::SendFailed => bump(&c.send_failed),
            Verdict::ForwardedWs => bump(&c.forwarded),
            Verdict::Answer(_) => bump(&c.probes_answered),
            Verdict::ForwardUdp(..) | Verdict::Drop => {}
        }
        verdict
    }

    /// Counts the outcome of a UDP send the caller made for a `ForwardUdp` or `Answer` verdict.
    fn sent(&self, result: std::io::Result<usize>) {
        match result {
            Ok(_) => {}
            Err(_) => bump(&self.counters.send_failed),
        }
    }

    fn forwarded(&self) {
        bump(&self.counters.forwarded);
    }

    /// The UDP socket, for forwarding a packet that came over a WebSocket.
    fn udp(&self) -> Option<Arc<UdpSocket>> {
        self.lock().udp()
    }
}

/// The `/media` cap the process can honour: `wanted`, lowered (logged) to a
/// quarter of the open-file limit, so that media connections can take at
/// most that share of the descriptors signaling connections also need.
fn media_cap(wanted: usize) -> usize {
    #[cfg(unix)]
    if let Ok((open_files, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let share = ((open_files / 4) as usize).max(1);
        if share < wanted {
            tracing::warn!(
                "--max-media-connections lowered to {share} (was {wanted}): a quarter of the open-file limit {open_files}"
            );
            return share;
        }
    }
    wanted
}
