//! Where calls are kept, behind the operations the hub decides with. The
//! decisions (`state.rs`, `requests.rs`, `expiry.rs`) see calls only
//! through [`CallStore`]; [`MemoryStore`] keeps them in this process.
//!
//! The operations are shaped for a shared store too (issue 12: Redis, for
//! several nodes): each change to a call is one [`CallStore::update`] or
//! [`CallStore::remove`] on that call, which a shared store would make one
//! compare-and-set on the call's key; deadlines are an ordered index any
//! node may sweep ([`CallStore::due`]), and whether a deadline has passed
//! is judged from the call itself ([`CallStore::lapse`]), so one swept by
//! two nodes, or late, ends the call once and only if due.

use super::calls::{Call, Ended, Lapse};
use std::sync::Arc;
use tokio::time::Instant;

mod memory;

pub(super) use memory::MemoryStore;

/// Live calls, their deadlines, and the calls remembered after they ended.
pub(super) trait CallStore {
    /// Whether `id` names a live or remembered call.
    fn exists(&self, id: &str) -> bool;

    /// The live call `id`.
    fn get(&self, id: &str) -> Option<&Call>;

    /// Adds a new live call and indexes its deadline.
    fn insert(&mut self, call: Call);

    /// Changes the live call `id` with `change` and re-indexes its deadline;
    /// `None` if there is no such call.
    fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Call) -> R) -> Option<R>;

    /// Takes the live call `id` out, with its deadline.
    fn remove(&mut self, id: &str) -> Option<Call>;

    /// The deadline of `id` that has passed by `now`, if one has.
    fn lapse(&self, id: &str, now: Instant) -> Option<Lapse>;

    /// The live calls with a deadline at or before `now`, earliest first.
    fn due(&self, now: Instant) -> Vec<Arc<str>>;

    /// The earliest deadline of any live call.
    fn next_deadline(&self) -> Option<Instant>;

    /// Remembers an ended call until `forget_at`.
    fn remember(&mut self, call: &Call, forget_at: Instant);

    /// What is remembered of the ended call `id`.
    fn ended(&self, id: &str) -> Option<&Ended>;

    /// When the oldest remembered call may be forgotten.
    fn next_forget(&self) -> Option<Instant>;

    /// Forgets the ended calls whose time is up.
    fn forget_lapsed(&mut self, now: Instant);
}
