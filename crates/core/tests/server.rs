//! Integration tests of the signaling server against the protocol v1 contract
//! (`docs/protocol.md`): a real server on 127.0.0.1:0 (or the real binary)
//! and real WebSocket clients.
//!
//! One test binary on purpose: debug test binaries of this stack are large.
//! The modules live in `crates/core/tests/server/`; the inline `server` module below
//! maps them there (a crate root's own `mod x;` would look in `tests/`).

#[path = "shared/fuzz_strategies.rs"]
mod fuzz_strategies;
#[path = "shared/redis.rs"]
mod redis_server;
#[path = "shared/servers.rs"]
mod servers;

mod server {
    mod bench;
    mod boundary;
    mod cli;
    mod client;
    mod cluster;
    mod envelope;
    mod exhaustion;
    mod fuzz;
    mod handshake;
    mod identifiers;
    mod invitation;
    mod limits;
    mod metrics;
    mod packaging;
    mod peer_limits;
    mod presence;
    mod race;
    mod redis_tls;
    mod relay;
    mod relay_consent;
    mod safe_defaults;
    mod session;
    mod timers;
    mod tls;
    mod token_expiry;
    mod web;
}
