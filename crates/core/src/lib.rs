//! softphone-core: the signaling server of a call-invitation softphone and
//! everything that is not its desktop app (the SDK, voice, the tools).
//!
//! The model is the call invitation of the Agora RTM SDK: a caller sends or
//! cancels an invitation, a callee accepts or refuses it, and after accept
//! the channel name goes to a media session.
//!
//! # Layout
//!
//! What runs where, one room a module. This crate is the operator's build
//! (`cargo build -p softphone --no-default-features`) and links no GUI or
//! sound library:
//!
//! - [`protocol`]: the wire messages of protocol v1, their limits and error
//!   codes, and the decoding of a client's frame; `protocol::relay`, the
//!   additive `media*` fields and the relay's framing (WebSocket `/media`,
//!   UDP in `protocol::relay::udp`); [`protocol::Role`] is the one caller or
//!   callee type, voice's key agreement included. Shared by the server and
//!   every client; no I/O.
//! - [`server`]: the signaling server (`softphone server`): listener (TLS,
//!   the connection cap, origins), sessions, the call rules (one pure
//!   core), the backend that applies them (the single node's hub over a
//!   call store with one deadline index, or a cluster node over Redis),
//!   who is connected, the media relay, metrics.
//! - [`token`]: minting and checking login tokens (`softphone token`);
//!   [`token::source`]: where a client's token comes from and how the peer
//!   and the app renew it when the server says it is expiring.
//! - [`relay_link`]: the client's side of the media relay: UDP, else
//!   WebSocket `/media`; opaque payloads both ways.
//! - [`sdk`]: the client SDK: Agora RTM's call invitation over protocol v1,
//!   with reconnect, and the voice handshake (`sdk::voice_handshake`; the
//!   v1.1 keys by hand in `sdk::manual_voice_keys`); [`sdk::call_voice`]:
//!   one call's built-in voice from the handshake to its end, the one
//!   voice setup the app, the headless peer and `echo` share.
//! - [`voice`]: built-in voice, UI-free: packets, end-to-end encryption
//!   and the safety code, Opus, echo and noise processing, the jitter
//!   buffer, a sans-IO session, audio sources and sinks, and the call
//!   driver over the relay.
//! - [`peer`]: the headless peer (`softphone peer`): scripts in, JSON lines out.
//! - [`demo`]: the demo peers `echo`, `busy` and `noanswer`, on the SDK.
//! - [`bench`](mod@bench): the load generator (`softphone bench
//!   setups|sessions|storm|media`; the relay load of `media` is in
//!   `bench::relay_load`).
//! - [`clock`]: the wall clock in seconds, milliseconds, microseconds.
//! - [`command`]: what the subcommands share: their error type, duration
//!   flags, the stop signal.
//! - [`cli`]: the command line of the `softphone` binary, a thin layer over
//!   the modules above; the desktop app hands in its flags and start
//!   ([`cli::main_with_app`]). `src/main.rs` is `softphone-headless`, that
//!   command line without the app, which this crate's tests run.
//!
//! The workspace around it: `crates/app` (`softphone_app`), the desktop
//! app (iced, rodio, cpal, the tray; its call model, screens, sounds and
//! files), built on this crate; the root package `softphone`, the binary,
//! with the app under its `desktop` feature (the default); `web/`, the
//! browser phone (TypeScript SDK, voice, page), served by the server
//! (`server::web`). This crate's tests are `tests/server.rs` and
//! `tests/sdk.rs` (what they share with the app's tests in `tests/shared/`);
//! the Debian packaging is in the root `Cargo.toml`
//! (`[package.metadata.deb]`) and `resources/debian/`; the README's
//! "Layout" has the whole tree.

pub mod bench;
pub mod cli;
pub mod clock;
pub mod command;
pub mod demo;
pub mod peer;
pub mod protocol;
pub mod relay_link;
pub mod sdk;
pub mod server;
pub mod token;
pub mod voice;
