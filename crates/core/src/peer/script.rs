//! The headless peer's command language: one command a line, split like a
//! shell line (quotes, `#` comments) and parsed by clap, so every command
//! gets the same kind of flags and error messages as the command line.

use crate::command::parse_duration;
use crate::sdk::Event;
use clap::{Parser, Subcommand};
use std::time::Duration;

/// One line of a script, as clap sees it.
#[derive(Debug, Parser)]
#[command(no_binary_name = true, disable_help_flag = true, disable_help_subcommand = true)]
struct Line {
    #[command(subcommand)]
    command: Command,
}

/// A command of the script. `CALL` defaults to the most recent relevant call.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Places a call: create, set content and channel, send.
    Call {
        peer: String,
        #[arg(long, default_value = "")]
        channel: String,
        #[arg(long, default_value = "")]
        content: String,
    },
    /// Cancels an outgoing call (default: the last one placed).
    Cancel { call: Option<String> },
    /// Accepts an incoming call (default: the last one received).
    Accept {
        call: Option<String>,
        #[arg(long)]
        response: Option<String>,
    },
    /// Refuses an incoming call (default: the last one received).
    Refuse {
        call: Option<String>,
        #[arg(long)]
        response: Option<String>,
    },
    /// Hangs up an accepted call (default: the last one accepted).
    Hangup { call: Option<String> },
    /// Asks whether peers are online.
    Presence {
        #[arg(required = true)]
        peers: Vec<String>,
    },
    /// Subscribes to peers' presence (then `presence` events follow).
    Subscribe {
        #[arg(required = true)]
        peers: Vec<String>,
    },
    /// Ends presence subscriptions.
    Unsubscribe {
        #[arg(required = true)]
        peers: Vec<String>,
    },
    /// Waits for an event by name (one not yet taken by an earlier wait).
    Wait {
        #[arg(value_parser = parse_event_name)]
        event: String,
        #[arg(long, default_value = "5s", value_parser = parse_script_duration)]
        timeout: Duration,
    },
    /// Pauses the script (events still print and auto-answers still run).
    Sleep {
        #[arg(value_parser = parse_script_duration)]
        duration: Duration,
    },
    /// Logs out and exits.
    Quit,
}

impl Command {
    /// The command's name, as its result line reports it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Call { .. } => "call",
            Command::Cancel { .. } => "cancel",
            Command::Accept { .. } => "accept",
            Command::Refuse { .. } => "refuse",
            Command::Hangup { .. } => "hangup",
            Command::Presence { .. } => "presence",
            Command::Subscribe { .. } => "subscribe",
            Command::Unsubscribe { .. } => "unsubscribe",
            Command::Wait { .. } => "wait",
            Command::Sleep { .. } => "sleep",
            Command::Quit => "quit",
        }
    }
}

/// A script's duration: a bare number of seconds (`1`, `0.5`), as a
/// person writes `sleep 1` in a shell, or a unit like the command line's
/// (`250ms`, `2s`, `1m`).
fn parse_script_duration(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text} is not a number of seconds from 0 up (write e.g. 1, 0.5 or 250ms)")),
        Err(_) => parse_duration(text),
    }
}

fn parse_event_name(name: &str) -> Result<String, String> {
    if Event::NAMES.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!("unknown event; one of: {}", Event::NAMES.join(", ")))
    }
}

/// Parses one line: `Ok(None)` for a blank or comment line; `Err` with a
/// one-line message for anything else that is not a command.
pub fn parse_line(line: &str) -> Result<Option<Command>, String> {
    let words = shlex::split(line).ok_or("unbalanced quotes or a trailing backslash")?;
    if words.is_empty() {
        return Ok(None);
    }
    Line::try_parse_from(&words).map(|l| Some(l.command)).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid command").trim_start_matches("error: ");
        first.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_with_its_defaults() {
        assert_eq!(parse_line("  # a comment").unwrap(), None);
        assert_eq!(parse_line("").unwrap(), None);
        assert_eq!(
            parse_line(r#"call bob --channel room-1 --content "hello there" # trailing"#).unwrap(),
            Some(Command::Call {
                peer: "bob".into(),
                channel: "room-1".into(),
                content: "hello there".into()
            })
        );
        assert_eq!(parse_line("cancel").unwrap(), Some(Command::Cancel { call: None }));
        assert_eq!(
            parse_line("accept c1 --response hi").unwrap(),
            Some(Command::Accept { call: Some("c1".into()), response: Some("hi".into()) })
        );
        assert_eq!(
            parse_line("wait accepted").unwrap(),
            Some(Command::Wait { event: "accepted".into(), timeout: Duration::from_secs(5) })
        );
        assert_eq!(
            parse_line("sleep 250ms").unwrap(),
            Some(Command::Sleep { duration: Duration::from_millis(250) })
        );
        assert_eq!(parse_line("quit").unwrap(), Some(Command::Quit));
    }

    #[test]
    fn a_bare_number_is_seconds() {
        for (text, ms) in [("1", 1000), ("0.5", 500), ("2.25", 2250), ("0", 0), ("1s", 1000), ("250ms", 250)]
        {
            assert_eq!(
                parse_line(&format!("sleep {text}")).unwrap(),
                Some(Command::Sleep { duration: Duration::from_millis(ms) }),
                "{text}"
            );
        }
        assert_eq!(
            parse_line("wait accepted --timeout 3").unwrap(),
            Some(Command::Wait { event: "accepted".into(), timeout: Duration::from_secs(3) })
        );
        for bad in ["sleep -1", "sleep NaN", "sleep inf", "sleep 1e30", "sleep 1x"] {
            let e = parse_line(bad).unwrap_err();
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_lines_get_one_line_errors() {
        for bad in
            ["dance", "call", "wait nothing", "sleep soon", "presence", "call bob --nope", "call \"bob"]
        {
            let e = parse_line(bad).unwrap_err();
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
    }
}
