//! Who is connected: the sessions of each peer and their outboxes, the
//! queue of events kept for a peer while it has no session, and presence
//! subscriptions. No decisions about calls are made here; the hub asks.

use super::outbound::{Kick, Outbound, SessionId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One logged-in connection.
pub(super) struct SessionEntry {
    /// The peer it belongs to.
    pub peer: Arc<str>,
    /// Its device label, reported to the caller on accept.
    pub device: Arc<str>,
    /// Frames for the connection's task to write.
    outbox: mpsc::Sender<Outbound>,
    /// Told when the outbox is full: the client is not reading, drop it.
    kick: Kick,
    /// Peers this session watches for presence.
    subscriptions: HashSet<Arc<str>>,
}

impl SessionEntry {
    /// Queues `text`; a session that is not reading its events is dropped.
    fn push(&self, text: &Utf8Bytes) {
        if self.outbox.try_send(text.clone()).is_err() {
            self.kick.store(true, Ordering::Relaxed);
        }
    }
}

/// A peer that is online, takes part in a call, or has events kept for it.
#[derive(Default)]
pub(super) struct Peer {
    /// Its sessions; online while there is at least one.
    pub sessions: Vec<SessionId>,
    /// When its last session closed; `None` while online or never seen.
    pub offline_since: Option<Instant>,
    /// Events for calls it has seen, kept while it has no session.
    queue: Vec<Utf8Bytes>,
    /// Ids of the live calls it placed or accepted: what counts toward its
    /// cap on live calls.
    pub charged: HashSet<Arc<str>>,
    /// Ids of the calls ringing at it: these count against their callers
    /// only, so nobody can lock a peer out by ringing it.
    pub ringing: HashSet<Arc<str>>,
}

impl Peer {
    /// The ids of every live call it takes part in.
    pub fn calls(&self) -> Vec<Arc<str>> {
        self.charged.iter().chain(&self.ringing).cloned().collect()
    }
}

/// A login beyond the sessions one peer may have at once.
#[derive(Debug)]
pub(super) struct TooManySessions;

/// Every session and peer, and the presence index.
pub(super) struct Peers {
    sessions: HashMap<SessionId, SessionEntry>,
    peers: HashMap<Arc<str>, Peer>,
    /// For each watched peer, the sessions subscribed to it.
    watchers: HashMap<Arc<str>, HashSet<SessionId>>,
    /// Offline peers whose kept events lapse at the given time, oldest first.
    lapsing: VecDeque<(Instant, Arc<str>)>,
    next_id: SessionId,
    /// How long events are kept for a peer without a session.
    grace: Duration,
    /// How many sessions one peer may have at once.
    max_sessions: usize,
}

impl Peers {
    pub fn new(grace: Duration, max_sessions: usize) -> Self {
        Peers {
            sessions: HashMap::new(),
            peers: HashMap::new(),
            watchers: HashMap::new(),
            lapsing: VecDeque::new(),
            next_id: 1,
            grace,
            max_sessions,
        }
    }

    /// The interned id of `peer`, creating its entry if needed.
    pub fn intern(&mut self, peer: &str) -> Arc<str> {
        if let Some((key, _)) = self.peers.get_key_value(peer) {
            return key.clone();
        }
        let key: Arc<str> = peer.into();
        self.peers.insert(key.clone(), Peer::default());
        key
    }

    pub fn get(&self, peer: &str) -> Option<&Peer> {
        self.peers.get(peer)
    }

    pub fn get_mut(&mut self, peer: &str) -> Option<&mut Peer> {
        self.peers.get_mut(peer)
    }

    pub fn session(&self, id: SessionId) -> Option<&SessionEntry> {
        self.sessions.get(&id)
    }

    pub fn is_online(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|p| !p.sessions.is_empty())
    }

    /// How many live calls count toward `peer`'s cap (placed or accepted).
    pub fn charged_count(&self, peer: &str) -> usize {
        self.peers.get(peer).map_or(0, |p| p.charged.len())
    }

    /// Registers a new session; returns its id and whether the peer just came
    /// online, or changes nothing if the peer has all the sessions it may have.
    pub fn add_session(
        &mut self,
        peer: &str,
        device: &str,
        outbox: mpsc::Sender<Outbound>,
        kick: Kick,
    ) -> Result<(SessionId, bool), TooManySessions> {
        if self
            .peers
            .get(peer)
            .is_some_and(|p| super::rules::session_cap_reached(p.sessions.len(), self.max_sessions))
        {
            return Err(TooManySessions);
        }
        let id = self.next_id;
        self.next_id += 1;
        let peer = self.intern(peer);
        let entry = self.peers.get_mut(&peer).expect("interned above");
        let came_online = entry.sessions.is_empty();
        entry.sessions.push(id);
        self.sessions.insert(
            id,
            SessionEntry { peer, device: device.into(), outbox, kick, subscriptions: HashSet::new() },
        );
        Ok((id, came_online))
    }

    /// Forgets a session and its subscriptions; returns its peer and whether
    /// that peer just went offline.
    pub fn remove_session(&mut self, id: SessionId, now: Instant) -> Option<(Arc<str>, bool)> {
        let entry = self.sessions.remove(&id)?;
        for watched in &entry.subscriptions {
            self.unwatch(watched, id);
        }
        let peer = self.peers.get_mut(&entry.peer)?;
        peer.sessions.retain(|s| *s != id);
        let went_offline = peer.sessions.is_empty();
        if went_offline {
            peer.offline_since = Some(now);
            peer.queue.clear();
            self.lapsing.push_back((now + self.grace, entry.peer.clone()));
        }
        Some((entry.peer, went_offline))
    }

    /// Queues `text` for one session; a session that is not reading is dropped.
    pub fn send(&self, id: SessionId, text: &Utf8Bytes) {
        if let Some(session) = self.sessions.get(&id) {
            session.push(text);
        }
    }

    /// Sends `text` to every session of `peer` but `except`. A peer with no
    /// session keeps it for its next one, within the grace, if it has `seen`
    /// the call the event is about.
    pub fn send_to_peer(&mut self, peer: &str, text: &Utf8Bytes, except: Option<SessionId>, seen: bool) {
        let Some(entry) = self.peers.get_mut(peer) else { return };
        if entry.sessions.is_empty() {
            if seen && entry.offline_since.is_some() {
                entry.queue.push(text.clone());
            }
            return;
        }
        for &id in &entry.sessions {
            if Some(id) != except
                && let Some(session) = self.sessions.get(&id)
            {
                session.push(text);
            }
        }
    }

    /// The events kept for `peer`, if its grace has not run out.
    pub fn take_queue(&mut self, peer: &str, now: Instant) -> Vec<Utf8Bytes> {
        let grace = self.grace;
        let Some(entry) = self.peers.get_mut(peer) else { return Vec::new() };
        let queue = std::mem::take(&mut entry.queue);
        match entry.offline_since.take() {
            Some(since) if now < since + grace => queue,
            _ => Vec::new(),
        }
    }

    /// Drops `peer`'s entry if nothing refers to it any more.
    pub fn forget_if_idle(&mut self, peer: &str, now: Instant) {
        let grace = self.grace;
        if let Some(entry) = self.peers.get(peer) {
            let kept =
                entry.offline_since.is_some_and(|since| now < since + grace) && !entry.queue.is_empty();
            if entry.sessions.is_empty() && entry.charged.is_empty() && entry.ringing.is_empty() && !kept {
                self.peers.remove(peer);
            }
        }
    }

    /// When the next offline peer's kept events lapse.
    pub fn next_lapse(&self) -> Option<Instant> {
        self.lapsing.front().map(|(at, _)| *at)
    }

    /// Drops the kept events and entries of peers whose grace has run out.
    pub fn forget_lapsed(&mut self, now: Instant) {
        while let Some((at, _)) = self.lapsing.front() {
            if *at > now {
                break;
            }
            let (_, peer) = self.lapsing.pop_front().expect("front exists");
            if let Some(entry) = self.peers.get_mut(&peer)
                && entry.sessions.is_empty()
                && entry.offline_since.is_some_and(|s| s + self.grace <= now)
            {
                entry.queue = Vec::new();
            }
            self.forget_if_idle(&peer, now);
        }
    }

    /// Subscribes `id` to `peers`, all or nothing; `false` if that would
    /// take it past `limit` subscriptions.
    pub fn subscribe(&mut self, id: SessionId, peers: &[String], limit: usize) -> bool {
        let Some(session) = self.sessions.get_mut(&id) else { return false };
        let new: HashSet<&str> =
            peers.iter().map(String::as_str).filter(|p| !session.subscriptions.contains(*p)).collect();
        if session.subscriptions.len() + new.len() > limit {
            return false;
        }
        for peer in new {
            let key: Arc<str> = match self.watchers.get_key_value(peer) {
                Some((key, _)) => key.clone(),
                None => peer.into(),
            };
            session.subscriptions.insert(key.clone());
            self.watchers.entry(key).or_default().insert(id);
        }
        true
    }

    /// Ends `id`'s subscriptions to `peers` (those it has).
    pub fn unsubscribe(&mut self, id: SessionId, peers: &[String]) {
        let Some(session) = self.sessions.get_mut(&id) else { return };
        let mut gone = Vec::new();
        for peer in peers {
            if let Some(key) = session.subscriptions.take(peer.as_str()) {
                gone.push(key);
            }
        }
        for key in gone {
            self.unwatch(&key, id);
        }
    }

    fn unwatch(&mut self, watched: &str, id: SessionId) {
        if let Some(set) = self.watchers.get_mut(watched) {
            set.remove(&id);
            if set.is_empty() {
                self.watchers.remove(watched);
            }
        }
    }

    /// Sends `text` (a `presence` event about `peer`) to its watchers.
    pub fn send_to_watchers(&self, peer: &str, text: &Utf8Bytes) {
        if let Some(set) = self.watchers.get(peer) {
            for &id in set {
                self.send(id, text);
            }
        }
    }

    /// Every session's id.
    pub fn session_ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.keys().copied()
    }

    /// The peers session `id` watches.
    pub fn subscriptions(&self, id: SessionId) -> Vec<Arc<str>> {
        self.sessions.get(&id).map(|s| s.subscriptions.iter().cloned().collect()).unwrap_or_default()
    }

    /// Whether anyone watches `peer`, to skip encoding events nobody reads.
    pub fn is_watched(&self, peer: &str) -> bool {
        self.watchers.contains_key(peer)
    }
}
