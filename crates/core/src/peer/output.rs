//! What the headless peer prints: one JSON object a line for every event
//! (`{"event":...}`), every command's result (`{"command":...,"ok":...}`)
//! and every automatic action (`{"auto":...}`); or, with `--pretty`, the
//! same as `key=value` lines for a person.

use crate::sdk::{Error, Event};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One printed line: a few fields in a fixed order first (`event`, or
/// `command` and `ok`), then the rest in alphabetical order. (serde_json's
/// maps are sorted unless its `preserve_order` feature is on crate-wide, so
/// the head is written by hand.)
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    head: Vec<(&'static str, Value)>,
    fields: Map<String, Value>,
}

impl Serialize for Line {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.head.len() + self.fields.len()))?;
        for (key, value) in &self.head {
            map.serialize_entry(key, value)?;
        }
        for (key, value) in &self.fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Line {
    fn new(head: Vec<(&'static str, Value)>, fields: Value) -> Line {
        let fields = match fields {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        Line { head, fields }
    }

    /// A field's value, for the peer's own bookkeeping and tests.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.head.iter().find(|(k, _)| *k == key).map(|(_, v)| v).or_else(|| self.fields.get(key))
    }
}

/// An event as a line: `event` (its name), then its fields; the same
/// names and fields as the QA timeline's (`Event::name`, `Event::fields`).
pub fn event_line(event: &Event) -> Line {
    Line::new(vec![("event", json!(event.name()))], event.fields())
}

/// A command's success: `command`, `ok: true`, then `fields`.
pub fn success(command: &str, fields: Value) -> Line {
    Line::new(vec![("command", json!(command)), ("ok", json!(true))], fields)
}

/// A command's failure: `command`, `ok: false`, `error` (a stable code), `message`.
pub fn failure(command: &str, code: &str, message: &str) -> Line {
    Line::new(
        vec![("command", json!(command)), ("ok", json!(false))],
        json!({ "error": code, "message": message }),
    )
}

/// A command's failure from the SDK.
pub fn sdk_failure(command: &str, error: &Error) -> Line {
    failure(command, error.code(), &error.to_string())
}

/// What an automatic answer or hang-up did: `auto`, `ok`, then fields.
pub fn auto_line(kind: &str, call_id: &str, result: &Result<(), Error>) -> Line {
    let fields = match result {
        Ok(()) => json!({ "call_id": call_id }),
        Err(e) => json!({ "call_id": call_id, "error": e.code(), "message": e.to_string() }),
    };
    Line::new(vec![("auto", json!(kind)), ("ok", json!(result.is_ok()))], fields)
}

/// How renewing the login token went, after a `token_expiring`:
/// `auto: "renew_token"`, `ok`, and on failure `error`
/// (`token_not_renewed`) with the reason.
pub fn renew_line(result: &Result<(), String>) -> Line {
    let fields = match result {
        Ok(()) => json!({}),
        Err(why) => json!({ "error": "token_not_renewed", "message": why }),
    };
    Line::new(vec![("auto", json!("renew_token")), ("ok", json!(result.is_ok()))], fields)
}

/// What a call's built-in voice did (`--audio-in`/`--audio-out`):
/// `voice` (`started`, `stopped`, `failed`), `call_id`, then fields.
pub fn voice_line(kind: &str, call_id: &str, fields: Value) -> Line {
    Line::new(vec![("voice", json!(kind)), ("call_id", json!(call_id))], fields)
}

/// Where lines go; shared by the event pump and the script, one line at a time.
#[derive(Clone)]
pub struct Output {
    pretty: bool,
    /// For `--pretty`'s time stamps.
    started: Instant,
    /// Keeps lines whole when two tasks print at once.
    stdout: Arc<Mutex<std::io::Stdout>>,
}

impl Output {
    pub fn new(pretty: bool) -> Self {
        Output { pretty, started: Instant::now(), stdout: Arc::new(Mutex::new(std::io::stdout())) }
    }

    /// Prints one line and flushes, so a reader sees it at once.
    pub fn print(&self, line: &Line) {
        let line = if self.pretty {
            self.pretty_line(line)
        } else {
            serde_json::to_string(line).expect("JSON values always serialize")
        };
        let mut out = self.stdout.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// `+1.234s event accepted call_id=... response="..."`.
    fn pretty_line(&self, line: &Line) -> String {
        let mut text = format!("+{:.3}s", self.started.elapsed().as_secs_f64());
        let fields =
            line.head.iter().map(|(k, v)| (*k, v)).chain(line.fields.iter().map(|(k, v)| (k.as_str(), v)));
        for (i, (key, value)) in fields.enumerate() {
            let shown = match value {
                Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => s.clone(),
                other => other.to_string(),
            };
            if i == 0 {
                text.push_str(&format!(" {key} {shown}"));
            } else {
                text.push_str(&format!(" {key}={shown}"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_first_and_every_event_name_is_waitable() {
        let e = Event::HungUp {
            call_id: "c1".into(),
            reason: crate::sdk::HangupReason::Hangup,
            by: "bob".into(),
        };
        let text = serde_json::to_string(&event_line(&e)).unwrap();
        assert!(text.starts_with(r#"{"event":"hung_up""#), "{text}");
        assert!(Event::NAMES.contains(&e.name()));
        let ok = serde_json::to_string(&success("call", json!({ "call_id": "c1" }))).unwrap();
        assert!(ok.starts_with(r#"{"command":"call","ok":true"#), "{ok}");
    }
}
