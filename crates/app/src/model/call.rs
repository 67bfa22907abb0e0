//! The calls the model holds, each one [`Call`] with its facts, in the
//! slot that says where it stands: ringing here ([`Incoming`]), being
//! placed ([`Outgoing`]) or up ([`InCall`]).

use crate::call_history::{Direction, HistoryEntry, Outcome};
use crate::media_hook::{CallFacts, MediaStatus};
use softphone_core::clock::unix_millis;
use softphone_core::protocol::Role;
use std::time::Instant;

/// One call, whichever way it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Who, where, which side we are, and (once accepted) the response:
    /// what the media session is started with.
    pub facts: CallFacts,
    /// When it was placed or arrived (the outgoing screen's clock).
    pub started: Instant,
    /// The same in Unix milliseconds: the history's start time.
    pub started_at_ms: u64,
}

impl Call {
    /// A call placed or arriving now.
    pub fn new(
        call_id: String,
        peer: String,
        channel: String,
        content: String,
        role: Role,
        now: Instant,
    ) -> Call {
        Call {
            facts: CallFacts { call_id, channel, peer, role, content, response: String::new() },
            started: now,
            started_at_ms: unix_millis(),
        }
    }

    pub fn call_id(&self) -> &str {
        &self.facts.call_id
    }

    /// The other party.
    pub fn peer(&self) -> &str {
        &self.facts.peer
    }

    /// Its row in the history: the one place a call becomes a record.
    pub fn record(&self, outcome: Outcome, detail: &str, duration_ms: u64) -> HistoryEntry {
        HistoryEntry {
            call_id: self.facts.call_id.clone(),
            direction: match self.facts.role {
                Role::Caller => Direction::Outgoing,
                Role::Callee => Direction::Incoming,
            },
            peer: self.facts.peer.clone(),
            channel: self.facts.channel.clone(),
            started_at_ms: self.started_at_ms,
            duration_ms,
            outcome,
            detail: detail.to_owned(),
        }
    }
}

/// An invitation ringing here (the dialog), or waiting beside a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub call: Call,
    /// When the server will give up on it.
    pub expires_at: Instant,
    pub stage: RingStage,
}

impl Incoming {
    /// Whole seconds until it stops ringing, rounded up.
    pub fn seconds_left(&self, now: Instant) -> u64 {
        self.expires_at.saturating_duration_since(now).as_millis().div_ceil(1000) as u64
    }
}

/// How far answering an invitation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingStage {
    /// Ringing: the ringtone plays.
    Ringing,
    /// Accept was pressed; waiting for the server to confirm.
    Accepting,
}

/// A call we placed that has not been answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub call: Call,
    pub stage: OutgoingStage,
}

impl Outgoing {
    /// The line under the peer's name.
    pub fn status(&self) -> &'static str {
        match self.stage {
            OutgoingStage::Calling => "Calling...",
            OutgoingStage::Ringing => "Ringing",
            OutgoingStage::Canceling => "Canceling...",
        }
    }
}

/// How far the invitation we sent got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingStage {
    /// Sent (or being sent); the callee's phone has not confirmed it yet.
    Calling,
    /// The callee's phone has it: it rings there, ringback plays here.
    Ringing,
    /// Cancel was pressed; waiting for the server to confirm.
    Canceling,
}

/// An accepted call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InCall {
    pub call: Call,
    /// When it was accepted: the call's clock and its duration.
    pub since: Instant,
    /// The media session's last reported status.
    pub media: MediaStatus,
}

impl InCall {
    /// A call just accepted; its media session is about to start.
    pub fn new(call: Call, now: Instant) -> InCall {
        InCall { call, since: now, media: MediaStatus::Running("Starting...".into()) }
    }

    /// Its history row as it ends now: answered, with how long it lasted.
    pub fn record(&self, now: Instant) -> HistoryEntry {
        let duration = now.saturating_duration_since(self.since).as_millis() as u64;
        self.call.record(Outcome::Answered, "", duration)
    }
}

/// The one call of ours that is not an invitation ringing here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    Outgoing(Outgoing),
    InCall(InCall),
}
