//! Reconciling the call table after a new login: the `calls` list of the
//! login reply says which calls are still live, and every call the client
//! believed live ends, stays, or moves on accordingly, so nothing rings
//! forever after a dropped connection.

use super::{Lifecycle, Table};
use crate::protocol::{LiveCall, LiveState, Role};
use crate::sdk::event::{CancelReason, Event, FailureReason, HangupReason};
use crate::sdk::invitation::{CallPhase, Delivery, LocalPhase, RemotePhase, lock};

impl Table {
    /// After a new login: reconciles every call this client believed live
    /// against the server's list. A call absent from it has ended while we
    /// were away and ends here too, so nothing rings forever; requests that
    /// were in flight when the connection dropped are reconciled by what the
    /// server says now.
    pub fn reconcile_after_login(&mut self, calls: &[LiveCall], out: &mut Vec<Event>) {
        // A logout on its way: the client is stopping, nothing to reconcile.
        let Lifecycle::Online { login } = self.lifecycle else { return };
        // What the server says of a call in which we hold `role`, if it is live.
        let on =
            |id: &str, role: Role| calls.iter().find(|c| c.call_id == id && c.role == role).map(|c| c.state);
        let mut ids: Vec<String> = self.local.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let on_server = on(&id, Role::Caller);
            self.reconcile_local(id, on_server, login, out);
        }
        let mut ids: Vec<String> = self.remote.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let on_server = on(&id, Role::Callee);
            self.reconcile_remote(id, on_server, login, out);
        }
    }

    /// One call we placed, which the server has as `on_server` (`None`: not live).
    fn reconcile_local(
        &mut self,
        id: String,
        on_server: Option<LiveState>,
        login: u64,
        out: &mut Vec<Event>,
    ) {
        let entry = self.local[&id].clone();
        let mut e = lock(&entry);
        let believed_live = match e.phase {
            // An invite issued during this login has not gone out yet: not ours to reconcile.
            LocalPhase::Ringing { delivery: Delivery::InFlight { login: sent_in }, .. } => sent_in != login,
            LocalPhase::Ringing { .. } => true,
            LocalPhase::Accepted(call) => call.is_live(),
            LocalPhase::Unsent | LocalPhase::Refused | LocalPhase::Canceled | LocalPhase::Failed => false,
        };
        if !believed_live {
            return;
        }
        // A cancel or hang-up in flight was lost with the connection; the server says where it stands.
        match (on_server, e.phase) {
            (Some(LiveState::Ringing), LocalPhase::Ringing { delivery, .. }) => {
                let delivery = match delivery {
                    Delivery::InFlight { .. } => Delivery::Sent,
                    delivered => delivered,
                };
                e.phase = LocalPhase::Ringing { delivery, canceling: false };
            }
            (Some(LiveState::Ringing), _) => {}
            (Some(LiveState::Accepted), LocalPhase::Accepted(_)) => {
                e.phase = LocalPhase::Accepted(CallPhase::Live)
            }
            (Some(LiveState::Accepted), _) => {
                e.phase = LocalPhase::Accepted(CallPhase::Live);
                out.push(Event::LocalInvitationAccepted {
                    call_id: id,
                    response: String::new(),
                    device: String::new(),
                });
            }
            (None, LocalPhase::Accepted(_)) => {
                drop(e);
                self.end_call(&id, HangupReason::EndedWhileDisconnected, String::new(), out);
            }
            (None, _) => {
                e.phase = LocalPhase::Failed;
                drop(e);
                self.retire(&id);
                out.push(Event::LocalInvitationFailure {
                    call_id: id,
                    reason: FailureReason::EndedWhileDisconnected,
                });
            }
        }
    }

    /// One call placed to us, which the server has as `on_server` (`None`: not live).
    fn reconcile_remote(
        &mut self,
        id: String,
        on_server: Option<LiveState>,
        login: u64,
        out: &mut Vec<Event>,
    ) {
        let entry = self.remote[&id].clone();
        let mut e = lock(&entry);
        // Rang only after this login's list was made: not ours to reconcile.
        if e.arrived_in == login {
            return;
        }
        if !(e.phase.is_ringing() || e.phase.call().is_some_and(CallPhase::is_live)) {
            return;
        }
        match (on_server, e.phase) {
            // An answer lost with the connection: it rings again.
            (Some(LiveState::Ringing), RemotePhase::Accepting | RemotePhase::Refusing) => {
                e.phase = RemotePhase::Ringing
            }
            (Some(LiveState::Ringing), _) => {}
            (Some(LiveState::Accepted), RemotePhase::Accepting) => {
                e.phase = RemotePhase::Accepted(CallPhase::Live);
                out.push(Event::RemoteInvitationAccepted { call_id: id });
            }
            (Some(LiveState::Accepted), RemotePhase::Ringing | RemotePhase::Refusing) => {
                // Accepted, but not by us: another device of ours answered.
                e.phase = RemotePhase::Canceled;
                drop(e);
                self.retire(&id);
                out.push(Event::RemoteInvitationCanceled {
                    call_id: id,
                    reason: CancelReason::AnsweredElsewhere,
                });
            }
            (Some(LiveState::Accepted), _) => e.phase = RemotePhase::Accepted(CallPhase::Live),
            (None, RemotePhase::Accepted(_)) => {
                drop(e);
                self.end_call(&id, HangupReason::EndedWhileDisconnected, String::new(), out);
            }
            (None, _) => {
                e.phase = RemotePhase::Failed;
                drop(e);
                self.retire(&id);
                out.push(Event::RemoteInvitationFailure {
                    call_id: id,
                    reason: FailureReason::EndedWhileDisconnected,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::invitation::{LocalInvitationState as L, RemoteInvitationState as R};
    use crate::sdk::table::tests::invitation;

    /// Under load the invitation of a call placed just after our login is
    /// read together with the login reply, and applied before the reconciling:
    /// the reply's `calls` list, older than it, must not fail it.
    #[test]
    fn an_invitation_that_arrived_after_the_login_reply_is_not_reconciled_against_it() {
        let mut t = Table::new("bob".into());
        t.logged_in();
        let mut out = Vec::new();
        t.on_event(invitation("before"), &mut out);
        t.connection_lost();
        t.logged_in();
        t.on_event(invitation("after"), &mut out);
        out.clear();
        t.reconcile_after_login(&[], &mut out);
        assert_eq!(lock(&t.remote("after").unwrap()).phase, RemotePhase::Ringing, "{out:?}");
        assert_eq!(lock(&t.remote("before").unwrap()).phase, RemotePhase::Failed);
        assert_eq!(out.len(), 1, "only the call from before the login ends: {out:?}");
    }

    #[test]
    fn an_invite_issued_after_the_login_is_left_to_its_reply() {
        let mut t = Table::new("alice".into());
        t.logged_in();
        let mut out = Vec::new();
        // Sent in the first login, its reply lost with the connection.
        let (old, o) = t.create_local("bob").unwrap();
        t.begin_send(&old, &o).unwrap();
        t.connection_lost();
        // The second login: an invite issued right after it is still queued when the reconciling runs.
        t.logged_in();
        let (fresh, f) = t.create_local("carol").unwrap();
        let (_, pending) = t.begin_send(&fresh, &f).unwrap();
        t.reconcile_after_login(&[], &mut out);
        assert_eq!(lock(&o).phase, LocalPhase::Failed);
        assert_eq!(
            lock(&f).phase,
            LocalPhase::Ringing { delivery: Delivery::InFlight { login: 2 }, canceling: false }
        );
        assert_eq!(lock(&f).phase.state(), L::Idle);
        assert_eq!(out.len(), 1, "{out:?}");
        t.on_ok(&pending, None, &mut out);
        assert_eq!(lock(&f).phase.state(), L::SentToRemote);
    }

    #[test]
    fn reconciling_ends_what_the_server_no_longer_has_and_keeps_the_rest() {
        let mut t = Table::new("alice".into());
        t.logged_in();
        let mut out = Vec::new();
        let (gone, g) = t.create_local("bob").unwrap();
        let (kept, k) = t.create_local("carol").unwrap();
        for (id, e) in [(&gone, &g), (&kept, &k)] {
            let (_, pending) = t.begin_send(id, e).unwrap();
            t.on_ok(&pending, None, &mut out);
        }
        t.on_event(invitation("r1"), &mut out);
        t.on_event(invitation("r2"), &mut out);
        let (_, pending) = t.begin_accept("r2", &t.remote("r2").unwrap()).unwrap();
        out.clear();
        t.connection_lost();
        let _ = pending; // the accept's reply was lost with the connection
        t.logged_in();
        let calls = vec![
            LiveCall {
                call_id: kept.to_string(),
                role: Role::Caller,
                state: LiveState::Ringing,
                peer_id: "carol".into(),
            },
            LiveCall {
                call_id: "r2".into(),
                role: Role::Callee,
                state: LiveState::Accepted,
                peer_id: "bob".into(),
            },
        ];
        t.reconcile_after_login(&calls, &mut out);
        assert_eq!(lock(&g).phase.state(), L::Failure);
        assert_eq!(lock(&k).phase.state(), L::SentToRemote);
        assert_eq!(lock(&t.remote("r1").unwrap()).phase.state(), R::Failure);
        assert_eq!(lock(&t.remote("r2").unwrap()).phase, RemotePhase::Accepted(CallPhase::Live));
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out.contains(&Event::RemoteInvitationAccepted { call_id: "r2".into() }));
    }
}
