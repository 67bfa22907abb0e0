//! Real-time scheduling for the threads that carry a call's sound: cpal's
//! callbacks and the voice threads that feed them. On a loaded machine a
//! thread at normal priority waits behind compilers and browsers: the
//! microphone's frames come in bursts and the speaker runs dry (docs/media.md,
//! "The echo rig under load"). Browsers and sound servers ask for the same:
//! first `SCHED_RR` from the kernel (root, `CAP_SYS_NICE`, or an
//! `RLIMIT_RTPRIO` such as the `audio` group's), else from RealtimeKit
//! over D-Bus, as Firefox and Chromium do on a desktop. The audio threads
//! never wait for D-Bus: they hand their thread id to one broker thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};
use thread_priority::unix::{
    RealtimeThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
};
use thread_priority::{ThreadPriority, ThreadPriorityValue};

/// The real-time priority asked for (1-99): Firefox's, within what
/// RealtimeKit allows by default (20).
const PRIORITY: u8 = 10;
/// RealtimeKit's well-known name, which is also its interface's.
const KIT: &str = "org.freedesktop.RealtimeKit1";
const KIT_PATH: &str = "/org/freedesktop/RealtimeKit1";
/// How long one request to RealtimeKit may take, connecting included.
const KIT_DEADLINE: Duration = Duration::from_secs(2);
/// Requests waiting for the broker: a call opens four audio threads.
const KIT_QUEUE: usize = 8;

thread_local! {
    /// Whether this thread has asked already (once, whatever came of it).
    static ASKED: Cell<bool> = const { Cell::new(false) };
}

/// The outcome is logged once per process: every audio thread gets the same.
static LOGGED: Once = Once::new();
/// Whether an audio thread was made real-time: the speaker's queue can
/// then do without its margin (speaker_queue.rs).
static GRANTED: AtomicBool = AtomicBool::new(false);
/// The broker's inbox: thread ids to promote, with why the kernel said no.
static BROKER: OnceLock<Option<SyncSender<(u64, String)>>> = OnceLock::new();

/// Asks real-time scheduling for the calling thread, once per thread.
/// Cheap after the first call, so the audio paths call it every time.
pub(super) fn promote_current_thread() {
    if ASKED.with(|asked| asked.replace(true)) {
        return;
    }
    match promote_directly() {
        Ok(()) => granted_by(Ok("SCHED_RR")),
        Err(refused) => ask_realtime_kit(nix::unistd::gettid().as_raw() as u64, refused),
    }
}

/// Whether the audio threads run at real-time priority (as far as known:
/// RealtimeKit's answer comes a moment after the first frame).
pub(super) fn granted() -> bool {
    GRANTED.load(Ordering::Relaxed)
}

/// Notes and logs the outcome of a request.
fn granted_by(outcome: Result<&'static str, String>) {
    if outcome.is_ok() {
        GRANTED.store(true, Ordering::Relaxed);
    }
    log_once(outcome);
}

fn log_once(outcome: Result<&'static str, String>) {
    LOGGED.call_once(|| match outcome {
        Ok(how) => tracing::info!("audio threads: real-time priority {PRIORITY} ({how})"),
        Err(why) => {
            tracing::warn!("audio threads: normal priority ({why}); under load the sound may break up")
        }
    });
}

/// `SCHED_RR` at [`PRIORITY`] from the kernel, where this process may.
fn promote_directly() -> Result<(), String> {
    let priority = ThreadPriorityValue::try_from(PRIORITY).map_err(|e| e.to_string())?;
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin);
    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(priority), policy)
        .map_err(|e| format!("the kernel refused SCHED_RR: {e:?}"))
}

/// Hands thread `tid` to the broker (started on first use).
fn ask_realtime_kit(tid: u64, refused: String) {
    let broker = BROKER.get_or_init(|| {
        let (requests, inbox) = sync_channel(KIT_QUEUE);
        let spawned =
            std::thread::Builder::new().name("realtime-kit".into()).spawn(move || run_broker(inbox));
        spawned.ok().map(|_| requests)
    });
    let handed = broker.as_ref().is_some_and(|requests| requests.try_send((tid, refused.clone())).is_ok());
    if !handed {
        log_once(Err(format!("{refused}; RealtimeKit not asked")));
    }
}

/// The broker: one system-bus connection, opened on the first request.
fn run_broker(inbox: Receiver<(u64, String)>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return log_once(Err(format!("no runtime for D-Bus: {e}"))),
    };
    let mut kit = None;
    while let Ok((tid, refused)) = inbox.recv() {
        let outcome = runtime.block_on(async {
            match tokio::time::timeout(KIT_DEADLINE, promote_by_kit(&mut kit, tid)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer in {KIT_DEADLINE:?}")),
            }
        });
        granted_by(outcome.map(|()| "RealtimeKit").map_err(|kit| format!("{refused}; RealtimeKit: {kit}")));
    }
}

/// Asks RealtimeKit to make thread `tid` of this process real-time,
/// connecting on the first request.
async fn promote_by_kit(kit: &mut Option<zbus::Proxy<'static>>, tid: u64) -> Result<(), String> {
    let proxy = match kit {
        Some(proxy) => proxy,
        None => kit.insert(connect_to_kit().await?),
    };
    let most: i32 = proxy.get_property("MaxRealtimePriority").await.map_err(|e| e.to_string())?;
    let priority = u32::from(PRIORITY).min(u32::try_from(most).unwrap_or(0));
    proxy.call_method("MakeThreadRealtime", &(tid, priority)).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// RealtimeKit on the system bus, with this process's `RLIMIT_RTTIME`
/// set as it requires.
async fn connect_to_kit() -> Result<zbus::Proxy<'static>, String> {
    let text = |e: zbus::Error| e.to_string();
    let bus = zbus::Connection::system().await.map_err(text)?;
    // RealtimeKit answers Properties.Get only, not the GetAll that a
    // caching proxy sends first.
    let proxy = zbus::proxy::Builder::<zbus::Proxy<'static>>::new(&bus)
        .destination(KIT)
        .and_then(|builder| builder.path(KIT_PATH))
        .and_then(|builder| builder.interface(KIT))
        .map_err(text)?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .map_err(text)?;
    // RealtimeKit serves only a process that caps how long a real-time
    // thread may run without sleeping: a runaway is then stopped by the
    // kernel instead of freezing the desktop.
    let most: i64 = proxy.get_property("RTTimeUSecMax").await.map_err(text)?;
    let most = u64::try_from(most).map_err(|_| format!("RTTimeUSecMax {most}"))?;
    setrlimit(Resource::RLIMIT_RTTIME, most, most).map_err(|e| format!("RLIMIT_RTTIME: {e}"))?;
    Ok(proxy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SCHED_RR` in the kernel's numbering.
    const SCHED_RR: u32 = 2;

    /// The calling thread's scheduling policy and real-time priority, as
    /// the kernel reports them (`/proc/thread-self/stat`, fields 41 and 40).
    fn scheduling() -> (u32, u32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // Fields after the command's closing parenthesis start at field 3.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        (fields[41 - 3].parse().unwrap(), fields[40 - 3].parse().unwrap())
    }

    #[test]
    fn a_thread_that_may_is_round_robin_at_ten_and_one_that_may_not_is_unchanged() {
        let (outcome, scheduling) = std::thread::spawn(|| (promote_directly(), scheduling())).join().unwrap();
        match outcome {
            Ok(()) => assert_eq!(scheduling, (SCHED_RR, u32::from(PRIORITY))),
            // Without the privilege (a user outside the `audio` group).
            Err(why) => {
                assert!(why.contains("refused"), "{why}");
                assert_eq!(scheduling, (0, 0));
            }
        }
    }

    #[test]
    fn realtime_kit_makes_the_thread_round_robin_or_says_why_not() {
        // Where a system bus answers with RealtimeKit (a desktop), the
        // thread is promoted; elsewhere (CI has no system bus) the error
        // names what failed and the thread is unchanged.
        let (outcome, scheduling) = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let tid = nix::unistd::gettid().as_raw() as u64;
            let outcome = runtime
                .block_on(async { tokio::time::timeout(KIT_DEADLINE, promote_by_kit(&mut None, tid)).await });
            (outcome, scheduling())
        })
        .join()
        .unwrap();
        eprintln!("RealtimeKit: {outcome:?}; the thread's policy and priority after: {scheduling:?}");
        match outcome {
            Ok(Ok(())) => assert_eq!(scheduling, (SCHED_RR, u32::from(PRIORITY))),
            Ok(Err(why)) => assert_eq!(scheduling, (0, 0), "{why}"),
            Err(_) => panic!("no answer from the system bus within {KIT_DEADLINE:?}"),
        }
    }
}
