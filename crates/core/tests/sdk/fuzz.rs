//! Property-based fuzzing (proptest) of the headless peer's script parser:
//! any line gives a command, nothing (blank or comment), or a one-line
//! error, never a panic; a command written back as a line parses to itself.
//! Inputs mix arbitrary text with lines made of the language's own words.

use crate::fuzz_strategies::{fixed, text};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use softphone_core::peer::script::{Command, parse_line};
use softphone_core::sdk::Event;
use std::time::Duration;

/// Quotes one word for the script's shell-like splitting.
fn quote(word: &str) -> String {
    shlex::try_quote(word).expect("generated words hold no NUL").into_owned()
}

/// `command`, written as a script line: options as `--name=VALUE` and
/// positionals after `--`, so any text survives (even `-x` or `#`).
fn render(command: &Command) -> String {
    let words = |words: &[String]| words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    let optional = |word: &Option<String>| word.as_deref().map(quote).unwrap_or_default();
    let response =
        |r: &Option<String>| r.as_deref().map(|r| format!(" --response={}", quote(r))).unwrap_or_default();
    match command {
        Command::Call { peer, channel, content } => {
            format!("call --channel={} --content={} -- {}", quote(channel), quote(content), quote(peer))
        }
        Command::Cancel { call } => format!("cancel -- {}", optional(call)),
        Command::Accept { call, response: r } => format!("accept{} -- {}", response(r), optional(call)),
        Command::Refuse { call, response: r } => format!("refuse{} -- {}", response(r), optional(call)),
        Command::Hangup { call } => format!("hangup -- {}", optional(call)),
        Command::Presence { peers } => format!("presence -- {}", words(peers)),
        Command::Subscribe { peers } => format!("subscribe -- {}", words(peers)),
        Command::Unsubscribe { peers } => format!("unsubscribe -- {}", words(peers)),
        Command::Wait { event, timeout } => {
            format!("wait --timeout={}ms -- {}", timeout.as_millis(), quote(event))
        }
        Command::Sleep { duration } => format!("sleep -- {}ms", duration.as_millis()),
        Command::Quit => "quit".to_owned(),
    }
}

/// Text without NUL (which no shell-like line can carry).
fn word() -> impl Strategy<Value = String> + Clone {
    text().prop_map(|t| t.replace('\0', ""))
}

/// Any command, with any text in it.
fn command() -> impl Strategy<Value = Command> {
    let call = || prop::option::of(word());
    let peers = || prop::collection::vec(word(), 1..4);
    let millis = || (0u64..100_000_000).prop_map(Duration::from_millis);
    prop_oneof![
        (word(), word(), word()).prop_map(|(peer, channel, content)| Command::Call {
            peer,
            channel,
            content
        }),
        call().prop_map(|call| Command::Cancel { call }),
        (call(), call()).prop_map(|(call, response)| Command::Accept { call, response }),
        (call(), call()).prop_map(|(call, response)| Command::Refuse { call, response }),
        call().prop_map(|call| Command::Hangup { call }),
        peers().prop_map(|peers| Command::Presence { peers }),
        peers().prop_map(|peers| Command::Subscribe { peers }),
        peers().prop_map(|peers| Command::Unsubscribe { peers }),
        (prop::sample::select(Event::NAMES), millis())
            .prop_map(|(event, timeout)| Command::Wait { event: event.to_owned(), timeout }),
        millis().prop_map(|duration| Command::Sleep { duration }),
        Just(Command::Quit),
    ]
}

/// Lines made of the language's words, flags, durations and quotes.
fn near_valid_line() -> impl Strategy<Value = String> {
    const WORDS: &[&str] = &[
        "call",
        "cancel",
        "accept",
        "refuse",
        "hangup",
        "presence",
        "subscribe",
        "unsubscribe",
        "wait",
        "sleep",
        "quit",
        "--channel",
        "--content",
        "--response",
        "--timeout",
        "--",
        "-",
        "=",
        "#",
        "'",
        "\"",
        "\\",
        "5s",
        "250ms",
        "1",
        "0s",
        "-1s",
        "99999999999999h",
        "accepted",
        "invitation_received",
        "bob",
        "c1",
    ];
    let piece = prop_oneof![3 => prop::sample::select(WORDS).prop_map(str::to_owned), 1 => text()];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.join(" "))
}

/// The parser's property.
fn parser_holds(line: &str) -> Result<(), TestCaseError> {
    match parse_line(line) {
        Ok(None) => {}
        Ok(Some(command)) => {
            let again = render(&command);
            prop_assert_eq!(parse_line(&again), Ok(Some(command)), "written back as {}", again);
        }
        Err(e) => prop_assert!(!e.is_empty() && !e.contains('\n'), "error {:?} for {:?}", e, line),
    }
    Ok(())
}

#[test]
fn fuzz_script_lines() {
    let input = prop_oneof![
        1 => any::<String>(),
        4 => near_valid_line(),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    TestRunner::new(fixed(3_000)).run(&input, |line| parser_holds(&line)).unwrap();
}

#[test]
fn fuzz_every_command_written_as_a_line_parses_to_itself() {
    TestRunner::new(fixed(2_000))
        .run(&command(), |command| {
            let line = render(&command);
            prop_assert_eq!(parse_line(&line), Ok(Some(command)), "{}", line);
            Ok(())
        })
        .unwrap();
}
