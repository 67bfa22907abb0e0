//! The call table: live calls with their timers (each call's next deadline
//! in the [`Deadlines`] index), and ended calls remembered for a while so
//! late actions get `already_ended` and reused ids get `duplicate_call_id`.
//! Pure data and arithmetic on deadlines; the hub applies the outcomes.

use super::deadlines::Deadlines;
use crate::protocol::{LiveCall, LiveState, Role};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// Where a live call stands.
pub(super) enum Phase {
    /// Ringing, until `expires`.
    Ringing {
        expires: Instant,
        /// Whether a callee session has sent `received`.
        received: bool,
        /// The ack timeout, which runs only while the callee has a session.
        ack: Ack,
    },
    /// Accepted at the instant given; live until hung up.
    Accepted { at: Instant },
}

/// The state of the ack timeout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Ack {
    /// No callee session has seen the invitation yet.
    NotStarted,
    /// Running; fires at the instant given.
    Running(Instant),
    /// The callee lost its last session with this much time left.
    Paused(Duration),
    /// `received` came; the timer is over.
    Done,
}

/// One live call.
pub(super) struct Call {
    pub id: Arc<str>,
    pub caller: Arc<str>,
    pub callee: Arc<str>,
    pub content: String,
    pub channel_id: String,
    /// The caller's `media_key`, handed to the callee with the invitation.
    pub media_key: Option<String>,
    /// When the invite came.
    pub invited: Instant,
    pub phase: Phase,
    /// Whether any callee session has been handed the invitation.
    pub callee_seen: bool,
    /// Since when the caller has had no session.
    pub caller_lost: Option<Instant>,
    /// Since when the callee has had no session (since the invite, if it had none then).
    pub callee_lost: Option<Instant>,
}

/// A deadline of a live call that has passed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Lapse {
    /// The callee stayed without a session past the offline grace.
    CalleeLost,
    /// The caller stayed without a session past the offline grace.
    CallerLost,
    /// The reached callee did not acknowledge in time.
    AckTimeout,
    /// Nobody answered within the invite ttl.
    Expired,
}

impl Call {
    pub fn is_ringing(&self) -> bool {
        matches!(self.phase, Phase::Ringing { .. })
    }

    pub fn role_of(&self, peer: &str) -> Option<Role> {
        if *self.caller == *peer {
            Some(Role::Caller)
        } else if *self.callee == *peer {
            Some(Role::Callee)
        } else {
            None
        }
    }

    /// The earliest pending deadline and what happens then; `grace` is the
    /// offline grace.
    pub fn next_deadline(&self, grace: Duration) -> Option<(Instant, Lapse)> {
        let mut due = [
            self.callee_lost.map(|t| (t + grace, Lapse::CalleeLost)),
            self.caller_lost.map(|t| (t + grace, Lapse::CallerLost)),
            None,
            None,
        ];
        if let Phase::Ringing { expires, ack, .. } = &self.phase {
            if let Ack::Running(at) = ack {
                due[2] = Some((*at, Lapse::AckTimeout));
            }
            due[3] = Some((*expires, Lapse::Expired));
        }
        due.into_iter().flatten().min_by_key(|(at, _)| *at)
    }

    /// Stops the ack timeout while the callee has no session.
    pub fn pause_ack(&mut self, now: Instant) {
        if let Phase::Ringing { ack, .. } = &mut self.phase
            && let Ack::Running(at) = *ack
        {
            *ack = Ack::Paused(at.saturating_duration_since(now));
        }
    }

    /// Starts or resumes the ack timeout: a callee session now has the invitation.
    pub fn run_ack(&mut self, now: Instant, timeout: Duration) {
        if let Phase::Ringing { ack, .. } = &mut self.phase {
            match *ack {
                Ack::NotStarted => *ack = Ack::Running(now + timeout),
                Ack::Paused(left) => *ack = Ack::Running(now + left),
                Ack::Running(_) | Ack::Done => {}
            }
        }
    }

    /// This call as the login reply lists it for `peer`.
    pub fn as_live(&self, peer: &str) -> Option<LiveCall> {
        let role = self.role_of(peer)?;
        Some(LiveCall {
            call_id: self.id.to_string(),
            role,
            state: if self.is_ringing() { LiveState::Ringing } else { LiveState::Accepted },
            peer_id: match role {
                Role::Caller => self.callee.to_string(),
                Role::Callee => self.caller.to_string(),
            },
        })
    }
}

/// What is remembered of an ended call.
pub(super) struct Ended {
    pub caller: Arc<str>,
    pub callee: Arc<str>,
    /// Whether it was accepted before it ended (then a cancel is `already_accepted`).
    pub accepted: bool,
}

/// Live and remembered calls.
pub(super) struct Calls {
    /// Calls ringing or accepted, by id. Private: every change goes through
    /// [`Calls::update`] and friends, which keep `deadlines` in step.
    live: HashMap<Arc<str>, Call>,
    /// The next deadline of each live call that has one.
    deadlines: Deadlines<Arc<str>>,
    /// Ended calls, remembered until their entry in `forget_order` comes up.
    pub ended: HashMap<Arc<str>, Ended>,
    /// Ended calls in the order they may be forgotten.
    forget_order: VecDeque<(Instant, Arc<str>)>,
    /// The offline grace, which a participant's deadline is counted from.
    grace: Duration,
}

impl Calls {
    pub fn new(grace: Duration) -> Self {
        Calls {
            live: HashMap::new(),
            deadlines: Deadlines::default(),
            ended: HashMap::new(),
            forget_order: VecDeque::new(),
            grace,
        }
    }

    /// Whether `id` names a live or remembered call.
    pub fn exists(&self, id: &str) -> bool {
        self.live.contains_key(id) || self.ended.contains_key(id)
    }

    /// The live call `id`.
    pub fn get(&self, id: &str) -> Option<&Call> {
        self.live.get(id)
    }

    /// Adds a new live call and indexes its deadline.
    pub fn insert(&mut self, call: Call) {
        self.deadlines.set(&call.id, call.next_deadline(self.grace).map(|(at, _)| at));
        self.live.insert(call.id.clone(), call);
    }

    /// Changes the live call `id` with `change` and re-indexes its deadline;
    /// `None` if there is no such call.
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Call) -> R) -> Option<R> {
        let call = self.live.get_mut(id)?;
        let result = change(call);
        self.deadlines.set(&call.id, call.next_deadline(self.grace).map(|(at, _)| at));
        Some(result)
    }

    /// Takes the live call `id` out of the table and the index.
    pub fn remove(&mut self, id: &str) -> Option<Call> {
        let call = self.live.remove(id)?;
        self.deadlines.set(&call.id, None);
        Some(call)
    }

    /// The deadline of `id` that has passed by `now`, if one has.
    pub fn lapse(&self, id: &str, now: Instant) -> Option<Lapse> {
        let (at, lapse) = self.live.get(id)?.next_deadline(self.grace)?;
        (at <= now).then_some(lapse)
    }

    /// The live calls with a deadline at or before `now`, earliest first.
    pub fn due(&self, now: Instant) -> Vec<Arc<str>> {
        self.deadlines.due(now)
    }

    /// The earliest deadline of any live call.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.earliest()
    }

    /// When the oldest remembered call may be forgotten.
    pub fn next_forget(&self) -> Option<Instant> {
        self.forget_order.front().map(|(at, _)| *at)
    }

    /// Moves a call to the remembered ones until `forget_at`.
    pub fn remember(&mut self, call: &Call, forget_at: Instant) {
        let accepted = matches!(call.phase, Phase::Accepted { .. });
        self.ended.insert(
            call.id.clone(),
            Ended { caller: call.caller.clone(), callee: call.callee.clone(), accepted },
        );
        self.forget_order.push_back((forget_at, call.id.clone()));
    }

    /// Forgets ended calls whose time is up.
    pub fn forget_lapsed(&mut self, now: Instant) {
        while let Some((at, _)) = self.forget_order.front() {
            if *at > now {
                break;
            }
            let (_, id) = self.forget_order.pop_front().expect("front exists");
            self.ended.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(now: Instant) -> Call {
        Call {
            id: "c1".into(),
            caller: "alice".into(),
            callee: "bob".into(),
            content: String::new(),
            channel_id: String::new(),
            media_key: None,
            invited: now,
            phase: Phase::Ringing {
                expires: now + Duration::from_secs(60),
                received: false,
                ack: Ack::NotStarted,
            },
            callee_seen: false,
            caller_lost: None,
            callee_lost: Some(now),
        }
    }

    #[test]
    fn earliest_deadline_wins_and_ack_pauses() {
        let config = crate::server::ServerConfig::default();
        let grace = config.offline_grace;
        let t0 = Instant::now();
        let mut c = call(t0);
        assert_eq!(c.next_deadline(grace), Some((t0 + Duration::from_secs(30), Lapse::CalleeLost)));
        c.callee_lost = None;
        c.run_ack(t0 + Duration::from_secs(5), config.ack_timeout);
        assert_eq!(c.next_deadline(grace), Some((t0 + Duration::from_secs(35), Lapse::AckTimeout)));
        c.pause_ack(t0 + Duration::from_secs(15));
        assert!(
            matches!(c.phase, Phase::Ringing { ack: Ack::Paused(d), .. } if d == Duration::from_secs(20))
        );
        assert_eq!(c.next_deadline(grace), Some((t0 + Duration::from_secs(60), Lapse::Expired)));
        c.run_ack(t0 + Duration::from_secs(50), config.ack_timeout);
        assert_eq!(c.next_deadline(grace), Some((t0 + Duration::from_secs(60), Lapse::Expired)));
        c.phase = Phase::Accepted { at: t0 };
        assert_eq!(c.next_deadline(grace), None);
        c.caller_lost = Some(t0);
        assert_eq!(c.next_deadline(grace), Some((t0 + Duration::from_secs(30), Lapse::CallerLost)));
    }

    #[test]
    fn the_table_keeps_the_deadline_index_in_step() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(30);
        let mut calls = Calls::new(grace);
        calls.insert(call(t0));
        // The callee has no session: its grace runs out first.
        assert_eq!(calls.next_deadline(), Some(t0 + grace));
        assert_eq!(calls.lapse("c1", t0 + grace), Some(Lapse::CalleeLost));
        assert_eq!(calls.lapse("c1", t0 + grace - Duration::from_millis(1)), None);
        calls.update("c1", |c| c.callee_lost = None);
        assert_eq!(calls.next_deadline(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(calls.due(t0 + Duration::from_secs(60)), vec![Arc::<str>::from("c1")]);
        calls.update("c1", |c| c.phase = Phase::Accepted { at: t0 });
        assert_eq!(calls.next_deadline(), None);
        calls.update("c1", |c| c.caller_lost = Some(t0));
        assert_eq!(calls.next_deadline(), Some(t0 + grace));
        assert!(calls.remove("c1").is_some());
        assert_eq!(calls.next_deadline(), None);
        assert!(calls.update("c1", |_| ()).is_none());
    }
}
