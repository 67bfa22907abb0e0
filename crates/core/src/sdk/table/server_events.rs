//! What a server event does to the call table: an `invitation` adds a
//! ringing remote invitation; the answers, cancels, failures and hang-ups
//! move the call they name on, when it is in a phase they fit. Events about
//! calls this client does not know, or that no longer fit, are dropped.

use super::{Lifecycle, Table};
use crate::protocol::{MediaInfo, Request, ServerMessage};
use crate::sdk::event::{Event, FailureReason};
use crate::sdk::invitation::{CallPhase, Delivery, LocalPhase, RemoteEntry, RemotePhase, lock};
use crate::sdk::voice_handshake::MediaSlots;
use std::sync::{Arc, Mutex};
use std::time::Duration;

impl Table {
    /// Applies a server event. Returns what to send back: the `received`
    /// acknowledgement of an `invitation`, or the key reveal that follows
    /// our call's `accepted` (v1.2).
    pub fn on_event(&mut self, message: ServerMessage, out: &mut Vec<Event>) -> Option<Request> {
        match message {
            ServerMessage::Invitation {
                call_id,
                caller_id,
                content,
                channel_id,
                expires_in_ms,
                media_key,
                media_commit,
            } => {
                let entry = RemoteEntry {
                    caller_id,
                    content,
                    channel_id,
                    response: String::new(),
                    phase: RemotePhase::Ringing,
                    media: MediaSlots::offered(media_key, media_commit),
                    arrived_in: match self.lifecycle {
                        Lifecycle::Online { login } => login,
                        _ => 0,
                    },
                };
                return Some(self.on_invitation(call_id, entry, Duration::from_millis(expires_in_ms), out));
            }
            ServerMessage::ReceivedByPeer { call_id } => {
                let mut e = lock(self.local.get(&call_id)?);
                if let LocalPhase::Ringing { delivery: Delivery::Sent, canceling } = e.phase {
                    e.phase = LocalPhase::Ringing { delivery: Delivery::Received, canceling };
                    out.push(Event::LocalInvitationReceivedByPeer { call_id });
                }
            }
            ServerMessage::Accepted { call_id, response, device, media_key, media } => {
                return self.on_accepted(call_id, response, device, (media_key, media), out);
            }
            ServerMessage::MediaReveal { call_id, media_key } => {
                lock(self.remote.get(&call_id)?).media.on_reveal(&call_id, &media_key);
            }
            ServerMessage::Refused { call_id, response } => {
                let entry = self.local.get(&call_id).cloned()?;
                let mut e = lock(&entry);
                if is_delivered(e.phase) {
                    e.phase = LocalPhase::Refused;
                    e.response = response.clone();
                    drop(e);
                    self.retire(&call_id);
                    out.push(Event::LocalInvitationRefused { call_id, response });
                }
            }
            ServerMessage::Canceled { call_id, reason } => {
                let entry = self.remote.get(&call_id).cloned()?;
                let mut e = lock(&entry);
                if e.phase.is_ringing() {
                    e.phase = RemotePhase::Canceled;
                    drop(e);
                    self.retire(&call_id);
                    out.push(Event::RemoteInvitationCanceled { call_id, reason: reason.into() });
                }
            }
            ServerMessage::Failure { call_id, reason } => self.fail(&call_id, reason.into(), out),
            ServerMessage::HungUp { call_id, reason, by } => self.end_call(&call_id, reason.into(), by, out),
            ServerMessage::Presence { peer_id, online } => {
                if let Some(known) = self.subscriptions.get_mut(&peer_id) {
                    *known = Some(online);
                    out.push(Event::Presence { peer_id, online });
                }
            }
            ServerMessage::TokenExpiring { expires_in_ms } => {
                out.push(Event::TokenExpiring { expires_in: Duration::from_millis(expires_in_ms) });
            }
            ServerMessage::Ok { .. } | ServerMessage::Error { .. } => {}
        }
        None
    }

    /// Our call was accepted: it goes live, and with v1.2 the key reveal
    /// to send back. `media`: the callee's key and our relay credential.
    fn on_accepted(
        &mut self,
        call_id: String,
        response: String,
        device: String,
        media: (Option<String>, Option<MediaInfo>),
        out: &mut Vec<Event>,
    ) -> Option<Request> {
        let mut e = lock(self.local.get(&call_id)?);
        if !is_delivered(e.phase) {
            return None;
        }
        e.phase = LocalPhase::Accepted(CallPhase::Live);
        e.response = response.clone();
        (e.media.theirs, e.media.relay) = media;
        let reveal = e.media.on_accepted(&call_id);
        out.push(Event::LocalInvitationAccepted { call_id: call_id.clone(), response, device });
        // v1.2: our key, now that the callee has chosen its own.
        reveal.map(|media_key| Request::MediaReveal { call_id, media_key })
    }

    /// Every copy of an invitation is acknowledged (the server re-sends it
    /// on each login); a call is announced only once.
    fn on_invitation(
        &mut self,
        call_id: String,
        entry: RemoteEntry,
        expires_in: Duration,
        out: &mut Vec<Event>,
    ) -> Request {
        let ack = Request::Received { call_id: call_id.clone() };
        if !self.remote.contains_key(&call_id) && !self.local.contains_key(&call_id) {
            out.push(Event::RemoteInvitationReceived {
                call_id: call_id.clone(),
                caller_id: entry.caller_id.clone(),
                content: entry.content.clone(),
                channel_id: entry.channel_id.clone(),
                expires_in,
            });
            self.remote.insert(call_id, Arc::new(Mutex::new(entry)));
        }
        ack
    }

    /// Fails a ringing invitation, on whichever side we are. An invite
    /// whose reply was lost with the connection is still in flight, and
    /// fails too.
    fn fail(&mut self, call_id: &str, reason: FailureReason, out: &mut Vec<Event>) {
        if let Some(entry) = self.local.get(call_id).cloned() {
            let mut e = lock(&entry);
            if let LocalPhase::Ringing { .. } = e.phase {
                e.phase = LocalPhase::Failed;
                drop(e);
                self.retire(call_id);
                out.push(Event::LocalInvitationFailure { call_id: call_id.to_owned(), reason });
            }
        } else if let Some(entry) = self.remote.get(call_id).cloned() {
            let mut e = lock(&entry);
            if e.phase.is_ringing() {
                e.phase = RemotePhase::Failed;
                drop(e);
                self.retire(call_id);
                out.push(Event::RemoteInvitationFailure { call_id: call_id.to_owned(), reason });
            }
        }
    }
}

/// The server has the invite (its `ok` came) and nobody answered yet.
fn is_delivered(phase: LocalPhase) -> bool {
    matches!(phase, LocalPhase::Ringing { delivery: Delivery::Sent | Delivery::Received, .. })
}
