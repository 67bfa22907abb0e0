//! The app's start from the `softphone` command line: its flags (with no
//! subcommand), the token and media session they name, and a window that
//! cannot open said in one line. The subcommands are `softphone_core::cli`'s.

use crate::config::MediaConfig;
use clap::Args;
use softphone_core::command::AnyError;
use std::path::PathBuf;

/// The desktop app's flags (no subcommand).
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Signaling server (ws:// or wss://), or the nodes of a cluster as a
    /// comma list (`ws://a:7878/,ws://b:7878/`, tried in turn); remembered.
    /// Without one, the app uses ws://127.0.0.1:7878/ and hosts a server
    /// there if none answers.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Signs in at start as this peer.
    #[arg(long, value_name = "ID")]
    pub peer_id: Option<String>,
    /// File holding the login token (surrounding white space is trimmed),
    /// read again whenever the server says the token is expiring.
    #[arg(long, value_name = "FILE", conflicts_with = "token_command")]
    pub token_file: Option<PathBuf>,
    /// A command (split like a shell's words, run without a shell) that
    /// prints a login token; run at start and whenever the server says the
    /// token is expiring.
    #[arg(long, value_name = "COMMAND")]
    pub token_command: Option<String>,
    /// This device's label.
    #[arg(long, value_name = "LABEL")]
    pub device: Option<String>,
    /// Runs this program for each accepted call, stopped at hang-up; words
    /// split on spaces; {channel}, {peer}, {role} and {call_id} are replaced.
    #[arg(long, value_name = "COMMAND", conflicts_with = "media_url")]
    pub media_command: Option<String>,
    /// Opens this URL for each accepted call, e.g. https://meet.example.org/{channel}.
    #[arg(long, value_name = "TEMPLATE")]
    pub media_url: Option<String>,
    /// Writes every SDK event, reply and UI change to FILE as JSON lines
    /// (appended), a timeline to attach to a bug report.
    #[arg(long, value_name = "FILE")]
    pub log_events: Option<PathBuf>,
    /// Also trusts the certificate authorities in this PEM file for wss://
    /// servers (a private deployment's own CA).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Why the app cannot start here, in one line.
const NO_DISPLAY: &str =
    "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); `softphone server` needs none";

/// Whether a window system is reachable by its environment (X11 or Wayland).
fn has_display() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    !cfg!(target_os = "linux") || set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// `softphone` with no subcommand: the window, signed in and set up as
/// the flags say.
pub fn run(args: AppArgs) -> Result<(), AnyError> {
    if !has_display() {
        return Err(NO_DISPLAY.into());
    }
    let token_source = match (&args.token_file, &args.token_command) {
        (Some(path), _) => Some(softphone_core::token::source::TokenSource::File(path.clone())),
        (None, Some(command)) => Some(softphone_core::token::source::TokenSource::Command(command.clone())),
        (None, None) => None,
    };
    let token = match &token_source {
        Some(source) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            Some(runtime.block_on(source.fetch(args.peer_id.as_deref().unwrap_or_default()))?)
        }
        None => None,
    };
    let media = match (&args.media_command, &args.media_url) {
        (Some(command), _) => {
            Some(MediaConfig::from_command_line(command).ok_or("--media-command needs a program")?)
        }
        (None, Some(template)) => Some(MediaConfig::Url { template: template.clone() }),
        (None, None) => None,
    };
    let options = crate::Options {
        server_url: args.server,
        peer_id: args.peer_id,
        token,
        device: args.device,
        media,
        log_events: args.log_events,
        ca_file: args.ca_file,
        token_source,
        ..crate::Options::default()
    };
    match run_window(options) {
        Ok(()) => Ok(()),
        Err(why) => {
            Err(format!("cannot open the window ({why}); `softphone server` needs no display").into())
        }
    }
}

/// Runs the app's window. iced panics when it cannot reach the window
/// system (a `DISPLAY` with no server behind it): that one panic becomes an
/// error, said in one line; any other panic stays a panic.
fn run_window(options: crate::Options) -> Result<(), String> {
    const NO_EVENT_LOOP: &str = "Create event loop";
    let message = |payload: &(dyn std::any::Any + Send)| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let default_hook = std::sync::Arc::new(std::panic::take_hook());
    let hook = default_hook.clone();
    std::panic::set_hook(Box::new(move |info| {
        if !message(info.payload()).starts_with(NO_EVENT_LOOP) {
            hook(info);
        }
    }));
    let outcome = std::panic::catch_unwind(|| crate::run(options));
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| default_hook(info)));
    match outcome {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(payload) if message(payload.as_ref()).starts_with(NO_EVENT_LOOP) => {
            let why = message(payload.as_ref());
            Err(why.rsplit_once("error: ").map_or(why.clone(), |(_, e)| e.trim_end_matches(" })").to_owned()))
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
