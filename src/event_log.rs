//! The QA timeline (`--log-events FILE`): every SDK event, every reply to
//! the app's requests and every change of what the user sees, as JSON
//! lines with a Unix timestamp in microseconds, so a bug report can carry
//! exactly what happened and in which order.
//!
//! Each line is written and flushed at once: a timeline is most wanted
//! when the app crashed. Writing is best effort: a failed write is logged
//! once and the app goes on.

use crate::clock::unix_micros;
use crate::sdk::{ConnectionState, Event};
use serde_json::{Value, json};
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

    /// An SDK event of session `session`.
    pub fn sdk(&mut self, session: u64, event: &Event) {
        let mut fields = describe(event);
        fields["session"] = json!(session);
        self.write("sdk", fields);
    }
}

/// An SDK event as JSON: its name and its fields.
pub fn describe(event: &Event) -> Value {
    match event {
        Event::LocalInvitationReceivedByPeer { call_id } => {
            json!({ "event": "local_invitation_received_by_peer", "call_id": call_id })
        }
        Event::LocalInvitationAccepted { call_id, response, device } => json!({
            "event": "local_invitation_accepted", "call_id": call_id, "response": response, "device": device
        }),
        Event::LocalInvitationRefused { call_id, response } => {
            json!({ "event": "local_invitation_refused", "call_id": call_id, "response": response })
        }
        Event::LocalInvitationCanceled { call_id } => {
            json!({ "event": "local_invitation_canceled", "call_id": call_id })
        }
        Event::LocalInvitationFailure { call_id, reason } => {
            json!({ "event": "local_invitation_failure", "call_id": call_id, "reason": reason.as_str() })
        }
        Event::RemoteInvitationReceived { call_id, caller_id, content, channel_id, expires_in } => json!({
            "event": "remote_invitation_received", "call_id": call_id, "caller_id": caller_id,
            "content": content, "channel_id": channel_id, "expires_in_ms": expires_in.as_millis() as u64
        }),
        Event::RemoteInvitationAccepted { call_id } => {
            json!({ "event": "remote_invitation_accepted", "call_id": call_id })
        }
        Event::RemoteInvitationRefused { call_id } => {
            json!({ "event": "remote_invitation_refused", "call_id": call_id })
        }
        Event::RemoteInvitationCanceled { call_id, reason } => {
            json!({ "event": "remote_invitation_canceled", "call_id": call_id, "reason": reason.as_str() })
        }
        Event::RemoteInvitationFailure { call_id, reason } => {
            json!({ "event": "remote_invitation_failure", "call_id": call_id, "reason": reason.as_str() })
        }
        Event::HungUp { call_id, reason, by } => {
            json!({ "event": "hung_up", "call_id": call_id, "reason": reason.as_str(), "by": by })
        }
        Event::Presence { peer_id, online } => {
            json!({ "event": "presence", "peer_id": peer_id, "online": online })
        }
        Event::Connection { state, reason } => {
            let mut fields =
                json!({ "event": "connection", "state": state.as_str(), "reason": reason.to_string() });
            match state {
                ConnectionState::Connecting { attempt } => fields["attempt"] = json!(attempt),
                ConnectionState::Reconnecting { attempt, next_try_in } => {
                    fields["attempt"] = json!(attempt);
                    fields["next_try_in_ms"] = json!(next_try_in.as_millis() as u64);
                }
                ConnectionState::Connected { session } => fields["server_session"] = json!(session),
                ConnectionState::Disconnected | ConnectionState::Aborted => {}
            }
            fields
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::CancelReason;

    #[test]
    fn lines_are_json_with_time_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa/events.jsonl");
        let mut log = EventLog::open(&path).unwrap();
        log.sdk(
            3,
            &Event::RemoteInvitationCanceled { call_id: "c1".into(), reason: CancelReason::CallerCanceled },
        );
        log.write("ui", json!({ "screen": "dial" }));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["kind"], "sdk");
        assert_eq!(lines[0]["event"], "remote_invitation_canceled");
        assert_eq!(lines[0]["reason"], "caller_canceled");
        assert_eq!(lines[0]["session"], 3);
        assert!(lines[1]["t_us"].as_u64().unwrap() > 0);
        assert_eq!(lines[1]["screen"], "dial");
        assert!(text.starts_with("{\"t_us\":"), "time first: {text}");
        log.write("bare", json!({}));
        let last = std::fs::read_to_string(&path).unwrap().lines().last().unwrap().to_owned();
        assert_eq!(serde_json::from_str::<Value>(&last).unwrap()["kind"], "bare");
    }
}
