//! SIGTERM and SIGINT close the app as its window's close button does:
//! the call that is up is hung up (the other side hears `hangup` at once,
//! not after the server's grace), a ringing one is refused, both go into
//! the history, and the app exits with status 0. A second signal while
//! closing exits at once.

use super::Message;
use futures_util::Stream;

/// A `CloseRequested` for every SIGTERM or SIGINT (Ctrl+C) the process gets.
pub fn close_requests() -> impl Stream<Item = Message> {
    futures_util::stream::unfold((), |()| async {
        softphone_core::command::shutdown_signal().await;
        tracing::info!("stop signal: closing the app");
        Some((Message::CloseRequested, ()))
    })
}
