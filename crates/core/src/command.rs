//! What every subcommand of the `softphone` binary shares (server, peer,
//! bench, token, demo): the error type they return, the duration syntax of
//! their flags and the signal that stops them. A leaf module, so `cli` and
//! the commands it dispatches to never import each other. And the server's
//! log writer ([`batched_log`]).

pub mod batched_log;

use std::time::Duration;

/// The error a command returns to `main`: printed, then exit status 1.
pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Parses a duration with a unit: `250ms`, `60s`, `24h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 250ms, 60s or 24h)"))
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not at the first poll: a server calls it before it says it is
/// ready, so a SIGTERM sent right after the ready line still stops it
/// cleanly (its log written out) instead of killing it. Call it inside a
/// tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
