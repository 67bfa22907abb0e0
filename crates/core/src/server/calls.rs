//! One call as the hub keeps it: its parties, its phase and its timers,
//! and what is remembered of it once it has ended. Pure data and arithmetic
//! on deadlines; where calls are kept is the [`store`](super::store)'s
//! business, and the hub applies the outcomes.

use crate::protocol::{LiveCall, LiveState, Role};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// A point in time a call's deadlines are counted in: the monotonic
/// [`Instant`] of a single node, or the wall-clock milliseconds that the
/// nodes of a cluster share ([`UnixMs`]).
pub(super) trait Moment: Copy + Ord + std::ops::Add<Duration, Output = Self> {
    /// How long after `earlier` this is; zero if it is not after it.
    fn since(self, earlier: Self) -> Duration;
}

impl Moment for Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Milliseconds since the Unix epoch: the time the nodes of a cluster
/// agree on (their clocks are synchronised, as NTP keeps them).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct UnixMs(pub u64);

impl std::ops::Add<Duration> for UnixMs {
    type Output = UnixMs;
    fn add(self, d: Duration) -> UnixMs {
        UnixMs(self.0.saturating_add(d.as_millis() as u64))
    }
}

impl Moment for UnixMs {
    fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Where a live call stands.
#[derive(Clone, Serialize, Deserialize)]
pub(super) enum Phase<T = Instant> {
    /// Ringing, until `expires`.
    Ringing {
        expires: T,
        /// Whether a callee session has sent `received`.
        received: bool,
        /// The ack timeout, which runs only while the callee has a session.
        ack: Ack<T>,
    },
    /// Accepted at the instant given; live until hung up.
    Accepted { at: T },
}

/// The state of the ack timeout.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(super) enum Ack<T = Instant> {
    /// No callee session has seen the invitation yet.
    NotStarted,
    /// Running; fires at the instant given.
    Running(T),
    /// The callee lost its last session with this much time left.
    Paused(Duration),
    /// `received` came; the timer is over.
    Done,
}

/// One live call; `T` is the time its deadlines are counted in.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Call<T = Instant> {
    pub id: Arc<str>,
    pub caller: Arc<str>,
    pub callee: Arc<str>,
    pub content: String,
    pub channel_id: String,
    /// The caller's `media_key`, handed to the callee with the invitation.
    pub media_key: Option<String>,
    /// The caller's v1.2 `media_commit`, handed to the callee with the
    /// invitation (absent in records written before v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_commit: Option<String>,
    /// When the invite came.
    pub invited: T,
    pub phase: Phase<T>,
    /// Whether any callee session has been handed the invitation.
    pub callee_seen: bool,
    /// Since when the caller has had no session.
    pub caller_lost: Option<T>,
    /// Since when the callee has had no session (since the invite, if it had none then).
    pub callee_lost: Option<T>,
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

/// The fields of an `invite` a call keeps.
pub(super) struct Invite {
    pub call_id: String,
    pub callee: String,
    pub content: String,
    pub channel_id: String,
    /// The caller's public key for the media session, passed on opaquely.
    pub media_key: Option<String>,
    /// The caller's commitment to its key (v1.2), passed on opaquely.
    pub media_commit: Option<String>,
}

impl<T: Moment> Call<T> {
    /// The call `invite` asks for, from `caller` to `callee` (the invite's
    /// callee, as the hub keeps the name), ringing from `now` for `ttl`; its
    /// callee has no session yet (see [`Call::reach`]).
    pub fn ringing(invite: Invite, caller: Arc<str>, callee: Arc<str>, now: T, ttl: Duration) -> Call<T> {
        Call {
            id: invite.call_id.into(),
            caller,
            callee,
            content: invite.content,
            channel_id: invite.channel_id,
            media_key: invite.media_key,
            media_commit: invite.media_commit,
            invited: now,
            phase: Phase::Ringing { expires: now + ttl, received: false, ack: Ack::NotStarted },
            callee_seen: false,
            caller_lost: None,
            callee_lost: Some(now),
        }
    }

    /// A callee session is handed the invitation at `now`: the callee has
    /// seen the call, and its ack timeout runs.
    pub fn reach(&mut self, now: T, ack_timeout: Duration) {
        self.callee_seen = true;
        self.callee_lost = None;
        self.run_ack(now, ack_timeout);
    }

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
    pub fn next_deadline(&self, grace: Duration) -> Option<(T, Lapse)> {
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
    pub fn pause_ack(&mut self, now: T) {
        if let Phase::Ringing { ack, .. } = &mut self.phase
            && let Ack::Running(at) = *ack
        {
            *ack = Ack::Paused(at.since(now));
        }
    }

    /// Starts or resumes the ack timeout: a callee session now has the invitation.
    pub fn run_ack(&mut self, now: T, timeout: Duration) {
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
#[derive(Serialize, Deserialize)]
pub(super) struct Ended {
    pub caller: Arc<str>,
    pub callee: Arc<str>,
    /// Whether it was accepted before it ended (then a cancel is `already_accepted`).
    pub accepted: bool,
}

/// A call from alice ringing at bob (offline), for the tests of the call
/// table and its stores.
#[cfg(test)]
pub(super) fn test_call<T: Moment>(now: T) -> Call<T> {
    let invite = Invite {
        call_id: "c1".into(),
        callee: "bob".into(),
        content: String::new(),
        channel_id: String::new(),
        media_key: None,
        media_commit: None,
    };
    Call::ringing(invite, "alice".into(), "bob".into(), now, Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_call as call;

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
}
