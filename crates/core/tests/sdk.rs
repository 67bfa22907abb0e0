//! The SDK against a real server: every state and local error of both
//! invitation types, presence, reconnects; then the headless peer binary end
//! to end, the demo peers, and a small reconnect storm. One test binary on
//! purpose (debug test binaries are large); the modules live in `crates/core/tests/sdk/`.

#[path = "sdk/support.rs"]
mod support;

#[path = "shared/fuzz_strategies.rs"]
mod fuzz_strategies;
#[path = "shared/servers.rs"]
mod servers;
#[path = "shared/voice_calls.rs"]
mod voice_calls;

#[path = "sdk/demo.rs"]
mod demo;
#[path = "sdk/fuzz.rs"]
mod fuzz;
#[path = "sdk/handshake.rs"]
mod handshake;
#[path = "sdk/local.rs"]
mod local;
#[path = "sdk/media_bench.rs"]
mod media_bench;
#[path = "sdk/mitm.rs"]
mod mitm;
#[path = "sdk/peer.rs"]
mod peer;
#[path = "sdk/reconnect.rs"]
mod reconnect;
#[path = "sdk/remote.rs"]
mod remote;
#[path = "sdk/storm.rs"]
mod storm;
#[path = "sdk/tokens.rs"]
mod tokens;
#[path = "sdk/voice.rs"]
mod voice;
#[path = "sdk/voice_driver.rs"]
mod voice_driver;
#[path = "sdk/voice_processing.rs"]
mod voice_processing;
#[path = "sdk/web_voice.rs"]
mod web_voice;
