//! The wall clock, in the units the project writes down: seconds for token
//! expiries, milliseconds for call times in the history, microseconds for
//! log lines compared across processes. One place, so every file agrees.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    // A clock set before 1970 is a broken machine, not a reason to panic.
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Seconds since the Unix epoch, now.
pub fn unix_secs() -> u64 {
    since_epoch().as_secs()
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_millis() -> u64 {
    since_epoch().as_millis() as u64
}

/// Microseconds since the Unix epoch, now.
pub fn unix_micros() -> u64 {
    since_epoch().as_micros() as u64
}
