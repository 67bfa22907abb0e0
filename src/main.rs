//! The `softphone` binary: the command line of `softphone_core::cli`, with
//! the desktop app (`softphone_app`) when built with the `desktop` feature.

use std::process::ExitCode;

#[cfg(feature = "desktop")]
fn main() -> ExitCode {
    softphone_core::cli::main_with_app(softphone_app::launch::run)
}

#[cfg(not(feature = "desktop"))]
fn main() -> ExitCode {
    softphone_core::cli::main()
}
