//! What every test binary shares: one way to start a real server, and one
//! set of waits. The waits guard against a hang only; no test asserts on
//! speed, so they are generous (the machines that run CI are shared).

use softphone_core::server::{ServerConfig, ServerHandle};
use std::time::Duration;

/// The longest any test waits for something that should happen: an event,
/// a reply, a close. Shorter than the server's default offline grace (30 s),
/// so a test can tell "at once" from "after the grace".
pub const WAIT: Duration = Duration::from_secs(20);

/// How long a test listens to conclude that nothing more is coming.
#[allow(dead_code)] // the app's tests expect no silence
pub const QUIET: Duration = Duration::from_millis(300);

/// A real server on 127.0.0.1 with a free port, in this process.
pub async fn start_server(config: ServerConfig) -> ServerHandle {
    softphone_core::server::spawn(config).await.expect("the server starts on 127.0.0.1:0")
}
