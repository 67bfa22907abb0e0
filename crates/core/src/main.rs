//! `softphone-headless`: the `softphone` command line without the desktop
//! app, so that this crate's tests run `softphone server`, `softphone peer`
//! and the rest as child processes without building the app. The shipped
//! binary is the root package's `softphone`.

fn main() -> std::process::ExitCode {
    softphone_core::cli::main()
}
