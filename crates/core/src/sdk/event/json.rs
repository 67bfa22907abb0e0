//! Every [`Event`] as JSON, under one set of names: the headless peer
//! prints these (`{"event":NAME,...}`) and `wait`s on the names, and the
//! app's QA timeline writes the same objects, so the two always agree.
//! The names are the headless peer's documented ones (`docs/sdk.md`):
//! short, and those of the protocol's messages where there is one.

use super::{ConnectionState, Event};
use serde_json::{Value, json};

impl Event {
    /// Every name [`Event::name`] gives, in a fixed order.
    pub const NAMES: &'static [&'static str] = &[
        "received_by_peer",
        "accepted",
        "refused",
        "canceled",
        "failure",
        "invitation_received",
        "invitation_accepted",
        "invitation_refused",
        "invitation_canceled",
        "invitation_failure",
        "hung_up",
        "presence",
        "connecting",
        "connected",
        "reconnecting",
        "disconnected",
        "aborted",
        "token_expiring",
    ];

    /// The event's stable name: the caller's side plain (`accepted`), the
    /// callee's prefixed (`invitation_accepted`), a connection event by its
    /// new state (`reconnecting`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::LocalInvitationReceivedByPeer { .. } => "received_by_peer",
            Event::LocalInvitationAccepted { .. } => "accepted",
            Event::LocalInvitationRefused { .. } => "refused",
            Event::LocalInvitationCanceled { .. } => "canceled",
            Event::LocalInvitationFailure { .. } => "failure",
            Event::RemoteInvitationReceived { .. } => "invitation_received",
            Event::RemoteInvitationAccepted { .. } => "invitation_accepted",
            Event::RemoteInvitationRefused { .. } => "invitation_refused",
            Event::RemoteInvitationCanceled { .. } => "invitation_canceled",
            Event::RemoteInvitationFailure { .. } => "invitation_failure",
            Event::HungUp { .. } => "hung_up",
            Event::Presence { .. } => "presence",
            Event::Connection { state, .. } => state.as_str(),
            Event::TokenExpiring { .. } => "token_expiring",
        }
    }

    /// The event's fields as a JSON object, without its name.
    pub fn fields(&self) -> Value {
        match self {
            Event::LocalInvitationReceivedByPeer { call_id }
            | Event::LocalInvitationCanceled { call_id }
            | Event::RemoteInvitationAccepted { call_id }
            | Event::RemoteInvitationRefused { call_id } => json!({ "call_id": call_id }),
            Event::LocalInvitationAccepted { call_id, response, device } => {
                json!({ "call_id": call_id, "response": response, "device": device })
            }
            Event::LocalInvitationRefused { call_id, response } => {
                json!({ "call_id": call_id, "response": response })
            }
            Event::LocalInvitationFailure { call_id, reason }
            | Event::RemoteInvitationFailure { call_id, reason } => {
                json!({ "call_id": call_id, "reason": reason.as_str() })
            }
            Event::RemoteInvitationReceived { call_id, caller_id, content, channel_id, expires_in } => {
                json!({
                    "call_id": call_id,
                    "caller": caller_id,
                    "content": content,
                    "channel_id": channel_id,
                    "expires_in_ms": expires_in.as_millis() as u64,
                })
            }
            Event::RemoteInvitationCanceled { call_id, reason } => {
                json!({ "call_id": call_id, "reason": reason.as_str() })
            }
            Event::HungUp { call_id, reason, by } => {
                json!({ "call_id": call_id, "reason": reason.as_str(), "by": by })
            }
            Event::Presence { peer_id, online } => json!({ "peer": peer_id, "online": online }),
            Event::Connection { state, reason } => {
                let mut fields = json!({ "reason": reason.to_string() });
                match state {
                    ConnectionState::Connecting { attempt } => fields["attempt"] = json!(attempt),
                    ConnectionState::Connected { session } => fields["session"] = json!(session),
                    ConnectionState::Reconnecting { attempt, next_try_in } => {
                        fields["attempt"] = json!(attempt);
                        fields["next_try_in_ms"] = json!(next_try_in.as_millis() as u64);
                    }
                    ConnectionState::Disconnected | ConnectionState::Aborted => {}
                }
                fields
            }
            Event::TokenExpiring { expires_in } => json!({ "expires_in_ms": expires_in.as_millis() as u64 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::{CancelReason, ConnectionReason, FailureReason, HangupReason};
    use std::time::Duration;

    #[test]
    fn every_event_has_a_listed_name_and_an_object_of_fields() {
        let events = [
            Event::LocalInvitationReceivedByPeer { call_id: "c".into() },
            Event::LocalInvitationAccepted { call_id: "c".into(), response: "r".into(), device: "d".into() },
            Event::LocalInvitationRefused { call_id: "c".into(), response: "busy".into() },
            Event::LocalInvitationCanceled { call_id: "c".into() },
            Event::LocalInvitationFailure { call_id: "c".into(), reason: FailureReason::Expired },
            Event::RemoteInvitationReceived {
                call_id: "c".into(),
                caller_id: "bob".into(),
                content: String::new(),
                channel_id: "room".into(),
                expires_in: Duration::from_secs(1),
            },
            Event::RemoteInvitationAccepted { call_id: "c".into() },
            Event::RemoteInvitationRefused { call_id: "c".into() },
            Event::RemoteInvitationCanceled { call_id: "c".into(), reason: CancelReason::CallerCanceled },
            Event::RemoteInvitationFailure { call_id: "c".into(), reason: FailureReason::CallerOffline },
            Event::HungUp { call_id: "c".into(), reason: HangupReason::Hangup, by: "bob".into() },
            Event::Presence { peer_id: "bob".into(), online: true },
            Event::Connection {
                state: ConnectionState::Connecting { attempt: 0 },
                reason: ConnectionReason::Login,
            },
            Event::Connection {
                state: ConnectionState::Connected { session: "s1".into() },
                reason: ConnectionReason::LoginSuccess,
            },
            Event::Connection {
                state: ConnectionState::Reconnecting { attempt: 1, next_try_in: Duration::from_millis(250) },
                reason: ConnectionReason::Retry,
            },
            Event::Connection { state: ConnectionState::Disconnected, reason: ConnectionReason::LoggedOut },
            Event::Connection { state: ConnectionState::Aborted, reason: ConnectionReason::Stopped },
            Event::TokenExpiring { expires_in: Duration::from_secs(30) },
        ];
        let names: Vec<&str> = events.iter().map(Event::name).collect();
        assert_eq!(names, Event::NAMES, "one event of each name, in the listed order");
        for event in &events {
            let fields = event.fields();
            assert!(fields.is_object() && fields.get("event").is_none(), "{event:?}: {fields}");
            if let Some(call_id) = event.call_id() {
                assert_eq!(fields["call_id"], call_id);
            }
        }
        assert_eq!(events[5].fields()["caller"], "bob");
        assert_eq!(events[11].fields()["peer"], "bob");
        assert_eq!(events[13].fields()["session"], "s1");
        assert_eq!(events[14].fields()["next_try_in_ms"], 250);
        assert_eq!(events[17].fields()["expires_in_ms"], 30_000);
    }
}
