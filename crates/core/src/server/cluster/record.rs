//! A call as the cluster keeps it in Redis (`sp:c:ID`, JSON), and the
//! change to it a decision asks for: the compare-and-set that
//! [`scripts`](super::scripts)'s `commit` applies, with the events it causes.

use crate::server::calls::{Call, UnixMs};
use crate::server::rules::{self, Notices};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A live call as recorded in Redis: the same [`Call`] a single node
/// keeps, its times in wall-clock milliseconds, and which node's relay
/// carries its media.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct CallRecord {
    pub call: Call<UnixMs>,
    /// The node whose relay holds the call's media state once accepted:
    /// whoever ends the call tells that node to close it.
    #[serde(default)]
    pub relay: Option<Arc<str>>,
}

/// A record as read, with the exact text it was read as: the value the
/// compare-and-set compares against.
pub(super) struct Read {
    pub record: CallRecord,
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

/// How often a live call with no deadline of its own (accepted, both
/// parties online) is looked at: whether each party still has a session
/// somewhere. It repairs an offline mark that was never set (a node that
/// died between a session leaving and the marks of its calls), so no call
/// stays live forever.
pub(super) const AUDIT: Duration = Duration::from_secs(60);

/// When the sweeper must look at `call` next: its next deadline, or the
/// next audit.
pub(super) fn next_look(call: &Call<UnixMs>, grace: Duration, now: UnixMs) -> UnixMs {
    call.next_deadline(grace).map_or(now + AUDIT, |(at, _)| at)
}

/// What a transition does to the call's key.
pub(super) enum Change {
    /// The call stays live with these contents.
    Update(CallRecord),
    /// The callee's accept: as `Update`, and the call now counts against
    /// the callee's cap (refused at the cap).
    Accept(CallRecord),
    /// The call ends; what is remembered of it for the late answers.
    End(CallRecord),
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
    /// Events for the parties' sessions.
    pub notices: Notices,
    /// The asking session's field (`node/session`), skipped by the events
    /// the rule says it must not get.
    pub asker: Option<String>,
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
    /// `change` to the call as `read`, guarded by nothing, with `notices`
    /// (skipping the session whose field is `asker` where they say so).
    pub fn of(read: &Read, change: Change, notices: Notices, asker: Option<String>) -> Transition {
        Transition {
            id: read.record.call.id.clone(),
            expected: read.raw.clone(),
            change,
            guard: None,
            notices,
            asker,
        }
    }

    /// The end of the call as `read`, with `notices`.
    pub fn end(read: &Read, notices: Notices, asker: Option<String>) -> Transition {
        Transition::of(read, Change::End(read.record.clone()), notices, asker)
    }

    /// The call as `read` becomes `record`, only while `guard` holds; no events.
    pub fn guarded_update(read: &Read, record: CallRecord, guard: Guard) -> Transition {
        Transition {
            guard: Some(guard),
            ..Transition::of(read, Change::Update(record), Notices::default(), None)
        }
    }

    /// The `commit` script's arguments for this transition.
    pub fn args(&self, grace: Duration, remember: Duration, max_calls: usize) -> Vec<String> {
        let (mode, record) = match &self.change {
            Change::Update(r) => ("update", r),
            Change::Accept(r) => ("accept", r),
            Change::End(r) => ("end", r),
        };
        let call = &record.call;
        let payload = match &self.change {
            Change::End(_) => serde_json::to_string(&rules::remembered(call)).expect("plain data encodes"),
            _ => serde_json::to_string(record).expect("plain data encodes"),
        };
        let deadline = next_look(call, grace, super::now_ms()).0.to_string();
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
            if call.is_ringing() { "1" } else { "0" }.to_owned(),
        ];
        for notice in self.notices.iter() {
            args.push(notice.to.to_string());
            let except = if notice.skip_asker { self.asker.as_deref() } else { None };
            args.push(except.unwrap_or_default().to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::calls::{Ended, Phase};
    use crate::server::outbound::Outbound;
    use crate::server::rules::Notice;

    fn ringing(now: UnixMs) -> CallRecord {
        CallRecord { call: crate::server::calls::test_call(now), relay: Some("n2".into()) }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let record = ringing(UnixMs(1_764_000_000_000));
        let raw = serde_json::to_string(&record).unwrap();
        let read = Read::parse(raw.clone()).expect("parses");
        assert_eq!(
            serde_json::to_string(&read.record).unwrap(),
            raw,
            "the compare-and-set compares this text"
        );
        assert!(Read::parse("{\"call\":1}".into()).is_none(), "a record that is not one is no call");
    }

    #[test]
    fn the_commit_arguments_carry_the_deadline_the_guard_and_each_event() {
        let now = UnixMs(1_764_000_000_000);
        let record = ringing(now);
        let grace = Duration::from_secs(30);
        let notice = Notice {
            to: "alice".into(),
            text: Outbound::from("{\"type\":\"refused\"}".to_owned()),
            seen: true,
            skip_asker: true,
        };
        let transition = Transition {
            id: "c1".into(),
            expected: "old".into(),
            change: Change::End(record.clone()),
            guard: Some(Guard { peer: "bob".into(), online: false }),
            notices: Notices::one(notice),
            asker: Some("n1/7".into()),
        };
        let args = transition.args(grace, Duration::from_secs(60), 100);
        assert_eq!(args[..3], ["c1", "old", "end"]);
        let ended: Ended = serde_json::from_str(&args[3]).unwrap();
        assert!(!ended.accepted && &*ended.caller == "alice");
        // The callee's grace (from the invite) comes before the ring timeout.
        assert_eq!(args[4], (now.0 + 30_000).to_string());
        assert_eq!(args[5..13], ["60000", "100", "alice", "bob", "bob", "0", "n2", "1"]);
        assert_eq!(args[13..], ["alice", "n1/7", "1", "{\"type\":\"refused\"}"]);
        // An accepted call with nobody offline is due for its audit.
        let mut accepted = record;
        accepted.call.phase = Phase::Accepted { at: now };
        accepted.call.callee_lost = None;
        assert_eq!(next_look(&accepted.call, grace, now), now + AUDIT);
    }

    #[test]
    fn the_script_codes_read_as_outcomes() {
        assert_eq!(committed(1), Committed::Done);
        assert_eq!(committed(0), Committed::Stale);
        assert_eq!(committed(2), Committed::Guarded);
        assert_eq!(committed(3), Committed::CalleeAtCap);
    }
}
