//! Settling the call table after a new login: the `calls` list of the
//! login reply says which calls are still live, and every call the client
//! believed live ends, stays, or moves on accordingly, so nothing rings
//! forever after a dropped connection.

use super::Table;
use crate::protocol::{LiveCall, LiveState, Role};
use crate::sdk::event::{CancelReason, Event, FailureReason, HangupReason};
use crate::sdk::invitation::{CallPhase, LocalInvitationState as L, RemoteInvitationState as R, lock};

impl Table {
    /// After a new login: settles every call this client believed live
    /// against the server's list. A call absent from it has ended while we
    /// were away and ends here too, so nothing rings forever; requests that
    /// were in flight when the connection dropped are settled by what the
    /// server says now.
    pub fn reconcile(&mut self, calls: &[LiveCall], out: &mut Vec<Event>) {
        // What the server says of a call in which we hold `role`, if it is live.
        let on =
            |id: &str, role: Role| calls.iter().find(|c| c.call_id == id && c.role == role).map(|c| c.state);
        let mut ids: Vec<String> = self.local.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let entry = self.local[&id].clone();
            let mut e = lock(&entry);
            // An invite issued since this login has not gone out yet: not ours to settle.
            let sent_meanwhile = e.sending && e.sent_in_login == self.login_number();
            let believed_live = matches!(e.state, L::SentToRemote | L::ReceivedByRemote)
                || (e.state == L::Idle && e.sending && !sent_meanwhile)
                || matches!(e.call, CallPhase::Live { .. });
            if !believed_live {
                continue;
            }
            e.sending = false;
            e.canceling = false;
            match on(&id, Role::Caller) {
                Some(LiveState::Ringing) => {
                    if e.state == L::Idle {
                        e.state = L::SentToRemote;
                    }
                }
                Some(LiveState::Accepted) => {
                    e.call = CallPhase::Live { hanging_up: false };
                    if e.state != L::AcceptedByRemote {
                        e.state = L::AcceptedByRemote;
                        out.push(Event::LocalInvitationAccepted {
                            call_id: id.clone(),
                            response: String::new(),
                            device: String::new(),
                        });
                    }
                }
                None if matches!(e.call, CallPhase::Live { .. }) => {
                    drop(e);
                    self.end_call(&id, HangupReason::EndedWhileDisconnected, String::new(), out);
                }
                None => {
                    e.state = L::Failure;
                    drop(e);
                    self.retire(&id);
                    out.push(Event::LocalInvitationFailure {
                        call_id: id,
                        reason: FailureReason::EndedWhileDisconnected,
                    });
                }
            }
        }
        let mut ids: Vec<String> = self.remote.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let entry = self.remote[&id].clone();
            let mut e = lock(&entry);
            let believed_live = matches!(e.state, R::InvitationReceived | R::AcceptSentToLocal)
                || matches!(e.call, CallPhase::Live { .. });
            if !believed_live {
                continue;
            }
            e.refusing = false;
            match (on(&id, Role::Callee), e.state) {
                (Some(LiveState::Ringing), R::AcceptSentToLocal) => e.state = R::InvitationReceived,
                (Some(LiveState::Ringing), _) => {}
                (Some(LiveState::Accepted), R::AcceptSentToLocal) => {
                    e.state = R::Accepted;
                    e.call = CallPhase::Live { hanging_up: false };
                    out.push(Event::RemoteInvitationAccepted { call_id: id });
                }
                (Some(LiveState::Accepted), R::InvitationReceived) => {
                    // Accepted, but not by us: another device of ours answered.
                    e.state = R::Canceled;
                    drop(e);
                    self.retire(&id);
                    out.push(Event::RemoteInvitationCanceled {
                        call_id: id,
                        reason: CancelReason::AnsweredElsewhere,
                    });
                }
                (Some(LiveState::Accepted), _) => e.call = CallPhase::Live { hanging_up: false },
                (None, _) if matches!(e.call, CallPhase::Live { .. }) => {
                    drop(e);
                    self.end_call(&id, HangupReason::EndedWhileDisconnected, String::new(), out);
                }
                (None, _) => {
                    e.state = R::Failure;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::table::tests::invitation;

    #[test]
    fn an_invite_issued_after_the_login_is_left_to_its_reply() {
        let mut t = Table::new("alice".into());
        t.logged_in();
        let mut out = Vec::new();
        // Sent in the first login, its reply lost with the connection.
        let (old, o) = t.create_local("bob").unwrap();
        t.begin_send(&old, &o).unwrap();
        t.connected = false;
        // The second login: an invite issued right after it is still queued when reconcile runs.
        t.logged_in();
        let (fresh, f) = t.create_local("carol").unwrap();
        let (_, pending) = t.begin_send(&fresh, &f).unwrap();
        t.reconcile(&[], &mut out);
        assert_eq!(lock(&o).state, L::Failure);
        {
            let fresh = lock(&f);
            assert_eq!((fresh.state, fresh.sending), (L::Idle, true));
        }
        assert_eq!(out.len(), 1, "{out:?}");
        t.on_ok(&pending, None, &mut out);
        assert_eq!(lock(&f).state, L::SentToRemote);
    }

    #[test]
    fn reconcile_ends_what_the_server_no_longer_has_and_keeps_the_rest() {
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
        t.connected = false;
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
        t.reconcile(&calls, &mut out);
        assert_eq!(lock(&g).state, L::Failure);
        assert_eq!(lock(&k).state, L::SentToRemote);
        assert_eq!(lock(&t.remote("r1").unwrap()).state, R::Failure);
        assert_eq!(lock(&t.remote("r2").unwrap()).state, R::Accepted);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out.contains(&Event::RemoteInvitationAccepted { call_id: "r2".into() }));
    }
}
