//! A call as the cluster keeps it in Redis (`sp:c:ID`, JSON), and the
//! change to it a decision asks for: the compare-and-set that
//! [`scripts`](super::scripts)'s `commit` applies, with the events it causes.

use crate::server::calls::{Call, Ended, Phase, UnixMs};
use crate::server::expiry::Notice;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A live call in Redis: the same [`Call`] a single node keeps, its times
/// in wall-clock milliseconds, and which node's relay carries its media.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub call: Call<UnixMs>,
    /// The node whose relay holds the call's media state once accepted:
    /// whoever ends the call tells that node to close it.
    #[serde(default)]
    pub relay: Option<Arc<str>>,
}

/// A record as read, with the exact text it was read as: the value the
/// compare-and-set compares against.
pub(super) struct Read {
    pub record: Record,
    pub raw: String,
}

impl Read {
    pub fn parse(raw: String) -> Option<Read> {
        match serde_json::from_str(&raw) {
            Ok(record) => Some(Read { record, raw }),
            Err(e) => {
                // Written only by nodes of this version: a bad one is a bug
                // or a foreign writer; the call is treated as gone.
                tracing::error!("unreadable call record in Redis: {e}");
                None
            }
        }
    }
}

/// What a transition does to the call's key.
pub(super) enum Change {
    /// The call stays live with these contents.
    Update(Record),
    /// The callee's accept: as `Update`, and the call now counts against
    /// the callee's cap (refused at the cap).
    Accept(Record),
    /// The call ends; what is remembered of it for the late answers.
    End(Record),
}

/// Only when a peer is (or is not) online does the change apply: a peer's
/// offline mark must not land after it came back on another node.
#[derive(Clone)]
pub(super) struct Guard {
    pub peer: Arc<str>,
    pub online: bool,
}

/// One compare-and-set of a call, with the events it sends.
pub(super) struct Transition {
    /// The call id.
    pub id: Arc<str>,
    /// The record's text as read.
    pub expected: String,
    pub change: Change,
    pub guard: Option<Guard>,
    /// Events for the parties' sessions; a field `node/session` in `except` is skipped.
    pub notices: Vec<(Notice, Option<String>)>,
}

/// How a commit came out.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Committed {
    Done,
    /// The call changed since it was read: read again and decide again.
    Stale,
    /// The presence guard did not hold.
    Guarded,
    /// The callee already has all the live calls it may.
    CalleeAtCap,
}

impl Transition {
    /// The `commit` script's arguments for this transition.
    pub fn args(&self, grace: Duration, remember: Duration, max_calls: usize) -> Vec<String> {
        let (mode, record) = match &self.change {
            Change::Update(r) => ("update", r),
            Change::Accept(r) => ("accept", r),
            Change::End(r) => ("end", r),
        };
        let call = &record.call;
        let payload = match &self.change {
            Change::End(_) => {
                let accepted = matches!(call.phase, Phase::Accepted { .. });
                let ended = Ended { caller: call.caller.clone(), callee: call.callee.clone(), accepted };
                serde_json::to_string(&ended).expect("plain data encodes")
            }
            _ => serde_json::to_string(record).expect("plain data encodes"),
        };
        let deadline = call.next_deadline(grace).map(|(at, _)| at.0.to_string()).unwrap_or_default();
        let (guard_peer, guard_online) = match &self.guard {
            Some(g) => (g.peer.to_string(), if g.online { "1" } else { "0" }),
            None => (String::new(), "0"),
        };
        let relay = match &self.change {
            Change::End(r) => r.relay.as_deref().unwrap_or_default().to_owned(),
            _ => String::new(),
        };
        let mut args = vec![
            self.id.to_string(),
            self.expected.clone(),
            mode.to_owned(),
            payload,
            deadline,
            remember.as_millis().to_string(),
            max_calls.to_string(),
            call.caller.to_string(),
            call.callee.to_string(),
            guard_peer,
            guard_online.to_owned(),
            relay,
        ];
        for (notice, except) in &self.notices {
            args.push(notice.to.to_string());
            args.push(except.clone().unwrap_or_default());
            args.push(if notice.seen { "1" } else { "0" }.to_owned());
            args.push(notice.text.as_str().to_owned());
        }
        args
    }
}

/// What the `commit` script answered.
pub(super) fn committed(code: i64) -> Committed {
    match code {
        1 => Committed::Done,
        2 => Committed::Guarded,
        3 => Committed::CalleeAtCap,
        _ => Committed::Stale,
    }
}
