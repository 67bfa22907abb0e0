//! The QA timeline (`--log-events FILE`): every SDK event, every reply to
//! the app's requests and every change of what the user sees, as JSON
//! lines with a Unix timestamp in microseconds, so a bug report can carry
//! exactly what happened and in which order.
//!
//! Each line is written and flushed at once: a timeline is most wanted
//! when the app crashed. Writing is best effort: a failed write is logged
//! once and the app goes on.

use serde_json::{Value, json};
use softphone_core::clock::unix_micros;
use softphone_core::sdk::Event;
use std::io::Write;
use std::path::Path;

/// An open timeline file.
#[derive(Debug)]
pub struct EventLog {
    file: std::fs::File,
    /// A write failed already: said once in the log, not again.
    failed: bool,
}

impl EventLog {
    /// Opens `path` for appending (created if missing).
    pub fn open(path: &Path) -> std::io::Result<EventLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(EventLog { file, failed: false })
    }

    /// Writes one line: `kind`, the time, and `fields`.
    pub fn write(&mut self, kind: &str, fields: Value) {
        // Time and kind first, whatever order the map keeps the fields in:
        // a person reads these lines too.
        let mut line = format!("{{\"t_us\":{},\"kind\":{}", unix_micros(), Value::from(kind));
        match fields {
            Value::Object(fields) if !fields.is_empty() => {
                let rest = Value::Object(fields).to_string();
                line.push(',');
                line.push_str(&rest[1..]);
            }
            _ => line.push('}'),
        }
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        if let Err(e) = self.file.write_all(&bytes).and_then(|()| self.file.flush())
            && !std::mem::replace(&mut self.failed, true)
        {
            tracing::warn!("cannot write the event log: {e}");
        }
    }

    /// An SDK event of the app's sign-in session number `session`
    /// (`app_session`: the event's own `session` is the server's id of a
    /// new connection).
    pub fn sdk(&mut self, session: u64, event: &Event) {
        let mut fields = describe(event);
        fields["app_session"] = json!(session);
        self.write("sdk", fields);
    }
}

/// An SDK event as JSON: `event` (its name) and its fields, the same
/// names and fields the headless peer prints.
pub fn describe(event: &Event) -> Value {
    let mut fields = event.fields();
    fields["event"] = json!(event.name());
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use softphone_core::sdk::CancelReason;

    #[test]
    fn lines_are_json_with_time_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa/events.jsonl");
        let mut log = EventLog::open(&path).unwrap();
        let canceled =
            Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled };
        log.sdk(3, &canceled);
        log.write("ui", json!({ "screen": "dial" }));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["kind"], "sdk");
        assert_eq!(lines[0]["event"], "invitation_canceled");
        assert_eq!(lines[0]["reason"], "caller_canceled");
        assert_eq!(lines[0]["app_session"], 3);
        // Past the timeline's own keys, the line is the event as the headless peer prints it.
        let mut event = lines[0].clone();
        for key in ["t_us", "kind", "app_session"] {
            event.as_object_mut().unwrap().remove(key);
        }
        let mut printed = canceled.fields();
        printed["event"] = json!(canceled.name());
        assert_eq!(event, printed);
        assert!(lines[1]["t_us"].as_u64().unwrap() > 0);
        assert_eq!(lines[1]["screen"], "dial");
        assert!(text.starts_with("{\"t_us\":"), "time first: {text}");
        log.write("bare", json!({}));
        let last = std::fs::read_to_string(&path).unwrap().lines().last().unwrap().to_owned();
        assert_eq!(serde_json::from_str::<Value>(&last).unwrap()["kind"], "bare");
    }
}
