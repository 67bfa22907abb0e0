//! The embedded default: with no server configured the app uses
//! [`DEFAULT_SERVER_URL`](crate::config::DEFAULT_SERVER_URL), and when
//! nothing listens there it hosts the signaling server itself, in-process
//! on loopback, with the demo peers. A second instance on the same machine
//! finds the address taken and connects to the first: two phones that can
//! call each other.
//!
//! Binding first, rather than probing with a connect, settles a race of two
//! instances starting at once: exactly one of them gets the address.

use crate::demo::{self, DemoPeers};
use crate::server::{self, ServerHandle};
use std::net::SocketAddr;

/// The address the default URL names.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// A signaling server this process hosts.
pub struct Embedded {
    /// Keeps the server's stop handle for as long as the app runs.
    server: ServerHandle,
    /// The demo peers; dropping them stops them. `None` if they could not start.
    _demo: Option<DemoPeers>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("url", &self.url()).finish()
    }
}

impl Embedded {
    /// The URL clients use.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// What the status bar says about it.
    pub fn note(&self) -> String {
        format!("Hosting the signaling server on {} (demo peers: echo, busy, noanswer)", self.url())
    }
}

/// Hosts a server on `listen` if the address is free: `Ok(None)` when
/// something already listens there (another instance, most likely).
/// Must run within a tokio runtime.
pub fn host_if_free(listen: &str) -> std::io::Result<Option<Embedded>> {
    let addr: SocketAddr =
        listen.parse().map_err(|e| std::io::Error::other(format!("bad listen address {listen}: {e}")))?;
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // Lets a restarted app take the port back while old connections linger
    // in TIME_WAIT; it does not let two listeners share it.
    socket.set_reuseaddr(true)?;
    if let Err(e) = socket.bind(addr) {
        return if e.kind() == std::io::ErrorKind::AddrInUse { Ok(None) } else { Err(e) };
    }
    let listener = socket.listen(1024)?;
    let server = server::spawn_on(listener, server::ServerConfig::default());
    tracing::info!("no server was listening on {listen}: hosting one in-process on {}", server.url());
    let demo = match demo::spawn(&server.url(), None, demo::Timing::default()) {
        Ok(demo) => Some(demo),
        Err(e) => {
            tracing::warn!("cannot start the demo peers: {e}");
            None
        }
    };
    Ok(Some(Embedded { server, _demo: demo }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_second_host_finds_the_address_taken() {
        let first = host_if_free("127.0.0.1:0").unwrap().expect("port 0 is always free");
        let taken = first.url().trim_start_matches("ws://").trim_end_matches('/').to_owned();
        assert!(host_if_free(&taken).unwrap().is_none());
    }
}
