//! softphone: a call-invitation softphone and the signaling server behind it.
//!
//! The model is the call invitation of the Agora RTM SDK: a caller sends or
//! cancels an invitation, a callee accepts or refuses it, and after accept
//! the channel name goes to a media session.
//!
//! # Layout
//!
//! Always built (the operator's build, `--no-default-features`):
//!
//! - [`protocol`]: the wire messages of protocol v1, their limits and error
//!   codes, and the decoding of a client's frame; shared by the server and
//!   every client; no I/O.
//! - [`server`]: the signaling server (`softphone server`): listener (TLS,
//!   the connection cap), sessions, the hub where call outcomes are decided
//!   over a call store with one deadline index, who is connected, the media
//!   relay, metrics.
//! - [`relay_link`]: the client's side of the media relay: UDP, else
//!   WebSocket `/media`; opaque payloads both ways.
//! - [`token`]: minting and checking login tokens (`softphone token`).
//! - [`sdk`]: the client SDK: Agora RTM's call invitation over protocol v1,
//!   with reconnect; the headless peer, the demo peers and the app are
//!   built on it.
//! - [`call_voice`]: one call's built-in voice from the SDK's key
//!   handshake to its end, shared by the app, the headless peer and `echo`.
//! - [`peer`]: the headless peer (`softphone peer`): scripts in, JSON lines out.
//! - [`demo`]: the demo peers `echo`, `busy` and `noanswer`, on the SDK.
//! - [`bench`](mod@bench): the load generator (`softphone bench
//!   setups|sessions|storm|media`).
//! - [`event_log`]: the QA timeline of `--log-events FILE` (JSON lines of
//!   SDK events).
//! - [`voice`]: built-in voice, UI-free: packets, end-to-end encryption,
//!   Opus, the jitter buffer, a sans-IO session, audio sources and sinks,
//!   and the call driver over the relay.
//! - [`token_source`]: where a login token comes from and how the peer
//!   and the app renew it when the server says it is expiring.
//! - [`clock`]: the wall clock in seconds, milliseconds, microseconds.
//! - [`command`]: what the subcommands share: their error type, duration
//!   flags, the stop signal.
//! - [`cli`]: the command line of the `softphone` binary, a thin layer over
//!   the modules above.
//!
//! With the `desktop` feature (on by default), the desktop app and what
//! only it uses (iced, rodio, notify-rust, open, directories, png):
//!
//! - [`app`]: the desktop softphone (iced): a UI-free call model driven by
//!   the SDK's events (`app::model`), the effects it asks for, the screens
//!   (`app::screen`), sounds, voice and media sessions derived from it.
//! - [`config`], [`paths`]: the app's settings and where its files live;
//!   tolerant loading, atomic writes.
//! - [`history`]: the call history (JSON lines, appended atomically) and
//!   which missed calls are still unseen.
//! - [`notify`]: desktop notifications, when the desktop has them.
//! - [`ringtone`]: the ringtone and ringback tone (rodio, or silence).
//! - [`media`]: what an accepted call starts (built-in voice, nothing, a
//!   program, a URL).
//!
//! Outside `src/`: the tests (`tests/server.rs`, `tests/sdk.rs`,
//! `tests/app.rs`, the last needing `desktop`), the Debian packaging
//! (`[package.metadata.deb]` in `Cargo.toml`, the systemd unit and
//! maintainer scripts in `resources/debian/`), the desktop entry
//! (`resources/softphone.desktop`), icons and sounds (`assets/`) and CI
//! (`.ci/run`).

// The Layout above links the desktop's modules, which a build without the
// `desktop` feature does not have; the links are right in the default docs.
#![cfg_attr(not(feature = "desktop"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "desktop")]
pub mod app;
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
