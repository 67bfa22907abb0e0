//! The `softphone` binary: all the work is in the library.

fn main() -> std::process::ExitCode {
    softphone::cli::main()
}
