//! The store that keeps calls in this process, for a single node (the only
//! kind of server so far, and the default once a shared store exists): live
//! calls by id, the [`Deadlines`] index kept in step with every change, and
//! ended calls remembered for a while.

use super::CallStore;
use crate::server::calls::{Call, Ended, Lapse};
use crate::server::deadlines::Deadlines;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// Live and remembered calls, in this process: the single-node store.
pub(in crate::server) struct MemoryStore {
    /// Calls ringing or accepted, by id. Private: every change goes through
    /// [`CallStore::update`] and friends, which keep `deadlines` in step.
    live: HashMap<Arc<str>, Call>,
    /// The next deadline of each live call that has one.
    deadlines: Deadlines<Arc<str>>,
    /// Ended calls, remembered until their entry in `forget_order` comes up.
    ended: HashMap<Arc<str>, Ended>,
    /// Ended calls in the order they may be forgotten.
    forget_order: VecDeque<(Instant, Arc<str>)>,
    /// The offline grace, which a participant's deadline is counted from.
    grace: Duration,
}

impl MemoryStore {
    pub fn new(grace: Duration) -> Self {
        MemoryStore {
            live: HashMap::new(),
            deadlines: Deadlines::default(),
            ended: HashMap::new(),
            forget_order: VecDeque::new(),
            grace,
        }
    }
}

impl CallStore for MemoryStore {
    /// Whether `id` names a live or remembered call.
    fn exists(&self, id: &str) -> bool {
        self.live.contains_key(id) || self.ended.contains_key(id)
    }

    /// The live call `id`.
    fn get(&self, id: &str) -> Option<&Call> {
        self.live.get(id)
    }

    /// Adds a new live call and indexes its deadline.
    fn insert(&mut self, call: Call) {
        self.deadlines.set(&call.id, call.next_deadline(self.grace).map(|(at, _)| at));
        self.live.insert(call.id.clone(), call);
    }

    /// Changes the live call `id` with `change` and re-indexes its deadline;
    /// `None` if there is no such call.
    fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Call) -> R) -> Option<R> {
        let call = self.live.get_mut(id)?;
        let result = change(call);
        self.deadlines.set(&call.id, call.next_deadline(self.grace).map(|(at, _)| at));
        Some(result)
    }

    /// Takes the live call `id` out of the table and the index.
    fn remove(&mut self, id: &str) -> Option<Call> {
        let call = self.live.remove(id)?;
        self.deadlines.set(&call.id, None);
        Some(call)
    }

    /// The deadline of `id` that has passed by `now`, if one has.
    fn lapse(&self, id: &str, now: Instant) -> Option<Lapse> {
        crate::server::rules::lapsed(self.live.get(id)?, self.grace, now)
    }

    /// The live calls with a deadline at or before `now`, earliest first.
    fn due(&self, now: Instant) -> Vec<Arc<str>> {
        self.deadlines.due(now)
    }

    /// The earliest deadline of any live call.
    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.earliest()
    }

    /// When the oldest remembered call may be forgotten.
    fn ended(&self, id: &str) -> Option<&Ended> {
        self.ended.get(id)
    }

    fn next_forget(&self) -> Option<Instant> {
        self.forget_order.front().map(|(at, _)| *at)
    }

    /// Moves a call to the remembered ones until `forget_at`.
    fn remember(&mut self, call: &Call, forget_at: Instant) {
        self.ended.insert(call.id.clone(), crate::server::rules::remembered(call));
        self.forget_order.push_back((forget_at, call.id.clone()));
    }

    /// Forgets ended calls whose time is up.
    fn forget_lapsed(&mut self, now: Instant) {
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
    use crate::server::calls::Phase;
    use crate::server::calls::test_call as call;

    #[test]
    fn the_table_keeps_the_deadline_index_in_step() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(30);
        let mut calls = MemoryStore::new(grace);
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
