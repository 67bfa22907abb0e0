//! The deadline index: for each live call, the instant its next timer runs
//! out, kept in one ordered set, so one task per hub sleeps until the
//! earliest (as mini-redis purges expired keys) instead of one task and one
//! wake-up per call.
//!
//! The index only orders keys by time. What a deadline means is decided on
//! the call itself when it comes due ([`State::catch_up`]), from the call's
//! own state: an entry looked at late, or twice, decides nothing by itself.
//! That is the shape a shared sorted set swept by several nodes needs.
//!
//! [`State::catch_up`]: super::state::State::catch_up

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use tokio::time::Instant;

/// Keys ordered by their deadline; at most one deadline per key.
pub(super) struct Deadlines<K> {
    /// `(deadline, key)`, earliest first: what the timer task sleeps on.
    order: BTreeSet<(Instant, K)>,
    /// Each key's entry in `order`, to move or drop it without a search.
    of: HashMap<K, Instant>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines { order: BTreeSet::new(), of: HashMap::new() }
    }
}

impl<K: Ord + Hash + Clone> Deadlines<K> {
    /// Sets `key`'s deadline to `at`, or drops it for `None`.
    pub fn set(&mut self, key: &K, at: Option<Instant>) {
        let old = match at {
            Some(at) => self.of.insert(key.clone(), at),
            None => self.of.remove(key),
        };
        if old == at {
            return;
        }
        if let Some(old) = old {
            self.order.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.order.insert((at, key.clone()));
        }
    }

    /// The earliest deadline, if any.
    pub fn earliest(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// The keys whose deadline is at or before `now`, earliest first.
    pub fn due(&self, now: Instant) -> Vec<K> {
        self.order.iter().take_while(|(at, _)| *at <= now).map(|(_, key)| key.clone()).collect()
    }

    /// How many keys have a deadline.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.order.len(), self.of.len());
        self.of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_come_due_in_deadline_order_and_move_or_go_when_set_again() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut index = Deadlines::default();
        index.set(&"b", Some(t0 + s(20)));
        index.set(&"a", Some(t0 + s(10)));
        index.set(&"c", Some(t0 + s(10)));
        assert_eq!(index.earliest(), Some(t0 + s(10)));
        assert_eq!(index.due(t0 + s(9)), Vec::<&str>::new());
        assert_eq!(index.due(t0 + s(10)), vec!["a", "c"]);
        // Moving a key replaces its entry; setting the same instant again changes nothing.
        index.set(&"a", Some(t0 + s(30)));
        index.set(&"b", Some(t0 + s(20)));
        assert_eq!(index.len(), 3);
        assert_eq!(index.due(t0 + s(25)), vec!["c", "b"]);
        index.set(&"c", None);
        index.set(&"c", None);
        assert_eq!(index.len(), 2);
        assert_eq!(index.earliest(), Some(t0 + s(20)));
        index.set(&"b", None);
        index.set(&"a", None);
        assert_eq!(index.earliest(), None);
        assert_eq!(index.len(), 0);
    }
}
