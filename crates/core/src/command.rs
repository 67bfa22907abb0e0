//! What every subcommand of the `softphone` binary shares (server, peer,
//! bench, token, demo): the error type they return, the duration syntax of
//! their flags and the signal that stops them. A leaf module, so `cli` and
//! the commands it dispatches to never import each other.

use std::time::Duration;

/// The error a command returns to `main`: printed, then exit status 1.
pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Parses a duration with a unit: `250ms`, `60s`, `24h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 250ms, 60s or 24h)"))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
