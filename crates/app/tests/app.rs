//! Tests of the desktop app: state transitions driven by SDK events,
//! headless clicks and key presses on the real views, and end-to-end runs
//! against a real in-process server; the files the app keeps; do-not-disturb,
//! call waiting, history, contacts, settings and the QA timeline. (The real
//! app under Xvfb calling a browser tab is the root's `tests/binary.rs`,
//! which has the binary.)

#[path = "app/support.rs"]
mod support;

#[path = "../../core/tests/shared/fuzz_strategies.rs"]
mod fuzz_strategies;
#[path = "../../core/tests/shared/servers.rs"]
mod servers;

#[path = "app/fuzz.rs"]
mod fuzz;

#[path = "app/transitions.rs"]
mod transitions;

#[path = "app/simulator.rs"]
mod simulator;

#[path = "app/end_to_end.rs"]
mod end_to_end;

#[path = "app/files.rs"]
mod files;

#[path = "app/features.rs"]
mod features;

#[path = "app/model.rs"]
mod model;

#[path = "app/shutdown.rs"]
mod shutdown;

#[path = "app/tokens.rs"]
mod tokens;
#[path = "app/voice.rs"]
mod voice;

#[path = "app/tray.rs"]
mod tray;
