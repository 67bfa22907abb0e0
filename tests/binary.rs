//! The `softphone` binary as a child process, where no display is needed:
//! without one it says so in one line and exits with status 1. And the
//! default log filter: our events, and only the warnings of libraries. And
//! the real app under Xvfb calling a browser tab (`web_tab`).

use std::process::Command;

/// The desktop app calling a browser tab under Xvfb.
#[path = "binary/web_tab.rs"]
mod web_tab;

/// Runs the app's binary with `display` (`None`: no display variables at
/// all) and its files in a temp folder; returns its status and stderr lines.
fn run_app_with(display: Option<&str>) -> (Option<i32>, Vec<String>) {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_softphone"));
    command
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("RUST_BACKTRACE", "1");
    if let Some(display) = display {
        command.env("DISPLAY", display);
    }
    let output = command.output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).lines().map(str::to_owned).collect();
    (output.status.code(), stderr)
}

#[test]
fn without_a_display_the_app_says_so_in_one_line_and_exits_1() {
    let (status, stderr) = run_app_with(None);
    assert_eq!(status, Some(1), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(stderr[0].contains("no display") && stderr[0].contains("softphone server"), "{stderr:?}");
}

#[test]
fn a_display_nobody_serves_is_one_line_too_not_a_panic() {
    // No X server answers on display 7341 (nor is there a socket for it).
    let (status, stderr) = run_app_with(Some(":7341"));
    assert_eq!(status, Some(1), "{stderr:?}");
    assert_eq!(stderr.len(), 1, "{stderr:?}");
    assert!(stderr[0].starts_with("softphone: cannot open the window"), "{stderr:?}");
    assert!(stderr[0].contains("softphone server"), "{stderr:?}");
}

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_default_log_filter_keeps_our_events_and_library_warnings_only() {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(softphone_core::cli::DEFAULT_LOG_FILTER))
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "iced_winit::window", "window attributes: icon bytes [0, 1, 2]");
        tracing::debug!(target: "softphone_app::model", "a detail of ours");
        tracing::info!(target: "softphone_app::model", "incoming call from bob");
        tracing::warn!(target: "wgpu_core", "a library warning");
    });
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("incoming call from bob") && lines[1].contains("a library warning"), "{text}");
}
