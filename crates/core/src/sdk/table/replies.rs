//! What the server's answer to one of our requests does to the call table:
//! `ok` completes the phase the request began, an error (or a request that
//! never went out) puts the phase back as it was before the call.

use super::{Pending, Table};
use crate::sdk::event::{Event, HangupReason};
use crate::sdk::invitation::{CallPhase, Delivery, LocalPhase, RemotePhase, lock};
use std::collections::BTreeMap;

impl Table {
    /// The server said `ok` to `pending`; `online` is its presence map, if any.
    pub fn on_ok(
        &mut self,
        pending: &Pending,
        online: Option<&BTreeMap<String, bool>>,
        out: &mut Vec<Event>,
    ) {
        match pending {
            Pending::Invite(id) => {
                if let Some(entry) = self.local.get(id) {
                    let mut e = lock(entry);
                    if let LocalPhase::Ringing { delivery: Delivery::InFlight { .. }, canceling } = e.phase {
                        e.phase = LocalPhase::Ringing { delivery: Delivery::Sent, canceling };
                    }
                }
            }
            Pending::Cancel(id) => {
                let Some(entry) = self.local.get(id).cloned() else { return };
                let mut e = lock(&entry);
                if let LocalPhase::Ringing { .. } = e.phase {
                    e.phase = LocalPhase::Canceled;
                    drop(e);
                    out.push(Event::LocalInvitationCanceled { call_id: id.clone() });
                    self.retire(id);
                }
            }
            Pending::Accept(id) => {
                let Some(entry) = self.remote.get(id) else { return };
                let mut e = lock(entry);
                if e.phase == RemotePhase::Accepting {
                    e.phase = RemotePhase::Accepted(CallPhase::Live);
                    out.push(Event::RemoteInvitationAccepted { call_id: id.clone() });
                }
            }
            Pending::Refuse(id) => {
                let Some(entry) = self.remote.get(id).cloned() else { return };
                let mut e = lock(&entry);
                if e.phase == RemotePhase::Refusing {
                    e.phase = RemotePhase::Refused;
                    drop(e);
                    out.push(Event::RemoteInvitationRefused { call_id: id.clone() });
                    self.retire(id);
                }
            }
            Pending::Hangup(id) => self.end_call(id, HangupReason::Hangup, self.me.clone(), out),
            Pending::Subscribe(peers) => {
                for peer in peers {
                    let online = online.and_then(|m| m.get(peer)).copied();
                    self.subscriptions.insert(peer.clone(), online);
                }
            }
            Pending::Resubscribe => self.on_renewed(online, out),
            Pending::RenewToken(token) => self.renewed_token = Some(token.clone()),
            Pending::Query | Pending::Unsubscribe | Pending::Logout | Pending::Reveal(_) => {}
        }
    }

    /// The renewed subscriptions' answer: only real changes are reported.
    fn on_renewed(&mut self, online: Option<&BTreeMap<String, bool>>, out: &mut Vec<Event>) {
        for (peer, now) in online.into_iter().flatten() {
            if let Some(known) = self.subscriptions.get_mut(peer)
                && *known != Some(*now)
            {
                *known = Some(*now);
                out.push(Event::Presence { peer_id: peer.clone(), online: *now });
            }
        }
    }

    /// `pending` was refused by the server, or never went out: undo what
    /// `begin_*` did, so the invitation is as it was before the call.
    pub fn on_failed(&mut self, pending: &Pending) {
        match pending {
            Pending::Invite(id) => {
                if let Some(entry) = self.local.get(id) {
                    let mut e = lock(entry);
                    if let LocalPhase::Ringing { delivery: Delivery::InFlight { .. }, .. } = e.phase {
                        e.phase = LocalPhase::Unsent;
                    }
                }
            }
            Pending::Cancel(id) => {
                if let Some(entry) = self.local.get(id) {
                    let mut e = lock(entry);
                    if let LocalPhase::Ringing { delivery, canceling: true } = e.phase {
                        e.phase = LocalPhase::Ringing { delivery, canceling: false };
                    }
                }
            }
            Pending::Accept(id) | Pending::Refuse(id) => {
                if let Some(entry) = self.remote.get(id) {
                    let mut e = lock(entry);
                    if matches!(e.phase, RemotePhase::Accepting | RemotePhase::Refusing) {
                        e.phase = RemotePhase::Ringing;
                    }
                }
            }
            Pending::Hangup(id) => {
                self.step_call(id, |call| (call == CallPhase::HangingUp).then_some(CallPhase::Live));
            }
            Pending::Query
            | Pending::Subscribe(_)
            | Pending::Unsubscribe
            | Pending::Resubscribe
            | Pending::Logout
            | Pending::RenewToken(_)
            | Pending::Reveal(_) => {}
        }
    }
}
