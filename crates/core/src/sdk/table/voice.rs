//! The call table's part in the media handshake (v1.2): the callee's
//! answered accept starts the wait for the caller's reveal, the worker
//! wakes when the first wait is over, and a call that ends ends its voice.
//! The steps themselves are in `voice_handshake.rs`.

use super::Table;
use crate::protocol::OkResult;
use crate::sdk::invitation::lock;
use tokio::time::Instant;

impl Table {
    /// Our accept of `call_id` was answered with `result`: the relay
    /// credential, if any; a v1.2 caller's reveal is awaited from `now`.
    pub fn on_accept_answered(&mut self, call_id: &str, result: &OkResult, now: Instant) {
        let Some(entry) = self.remote.get(call_id) else { return };
        let relay = match result {
            OkResult::Media { media } => Some(media.clone()),
            _ => None,
        };
        let mut e = lock(entry);
        e.media.on_answered(call_id, relay, now);
        if let Some(by) = e.media.handshake.as_ref().and_then(|h| h.reveal_by) {
            self.reveals_due.insert((by, call_id.to_owned()));
        }
    }

    /// When the worker must next look at an awaited reveal.
    pub fn next_reveal_due(&self) -> Option<Instant> {
        self.reveals_due.first().map(|(at, _)| *at)
    }

    /// Every awaited reveal whose time is over by `now` fails its voice.
    pub fn reveals_overdue(&mut self, now: Instant) {
        while let Some((at, call_id)) = self.reveals_due.first().cloned() {
            if at > now {
                break;
            }
            self.reveals_due.pop_first();
            if let Some(entry) = self.remote.get(&call_id) {
                lock(entry).media.on_reveal_overdue(now);
            }
        }
    }

    /// The call `call_id` is over: so is its voice.
    pub(super) fn voice_over(&mut self, call_id: &str) {
        if let Some(entry) = self.local.get(call_id) {
            lock(entry).media.on_call_over();
        }
        if let Some(entry) = self.remote.get(call_id) {
            lock(entry).media.on_call_over();
        }
        self.reveals_due.retain(|(_, id)| id != call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{MediaInfo, Request, ServerMessage};
    use crate::sdk::voice_handshake::{NEVER_REVEALED, REVEAL_WAIT, TAMPERED, VoiceStatus};
    use crate::voice::crypto::{LocalKey, encode_public_key};
    use crate::voice::safety::commitment;

    fn table() -> Table {
        let mut t = Table::new("alice".into());
        t.logged_in();
        t
    }

    fn relay() -> MediaInfo {
        MediaInfo { relay: None, ws: "/media".into(), credential: "AAAAAAAAAAAAAAAAAAAAAA".into() }
    }

    fn status(t: &Table, call_id: &str) -> VoiceStatus {
        match t.remote.get(call_id) {
            Some(e) => lock(e).media.watch().unwrap().borrow().clone(),
            None => lock(&t.local[call_id]).media.watch().unwrap().borrow().clone(),
        }
    }

    /// A ringing invitation from bob carrying `media_key` or `media_commit`,
    /// accepted with voice and answered with a relay credential.
    fn accepted_callee(key: Option<String>, commit: Option<String>) -> (Table, Instant) {
        let mut t = table();
        let mut out = Vec::new();
        let invitation = ServerMessage::Invitation {
            call_id: "c".into(),
            caller_id: "bob".into(),
            content: String::new(),
            channel_id: String::new(),
            expires_in_ms: 1000,
            media_key: key,
            media_commit: commit,
        };
        t.on_event(invitation, &mut out);
        let entry = t.remote("c").unwrap();
        lock(&entry).media.answer_with_new_key();
        let (request, pending) = t.begin_accept("c", &entry).unwrap();
        assert!(
            matches!(request, Request::Accept { media_key: Some(_), .. }),
            "our key goes with the accept"
        );
        let now = Instant::now();
        t.on_accept_answered("c", &OkResult::Media { media: relay() }, now);
        t.on_ok(&pending, None, &mut out);
        (t, now)
    }

    fn reveal(t: &mut Table, key: &[u8; 32]) {
        let event = ServerMessage::MediaReveal { call_id: "c".into(), media_key: encode_public_key(key) };
        assert_eq!(t.on_event(event, &mut Vec::new()), None, "a reveal is not answered");
    }

    #[test]
    fn the_caller_commits_then_reveals_once_accepted() {
        let mut t = table();
        let (id, entry) = t.create_local("bob").unwrap();
        lock(&entry).media.commit_to_new_key(&id);
        let (invite, pending) = t.begin_send(&id, &entry).unwrap();
        let Request::Invite { media_key: None, media_commit: Some(commit), .. } = invite else {
            panic!("a v1.2 invite commits and sends no key: {invite:?}")
        };
        t.on_ok(&pending, None, &mut Vec::new());
        let callee = LocalKey::generate().public();
        let accepted = ServerMessage::Accepted {
            call_id: id.to_string(),
            response: String::new(),
            device: String::new(),
            media_key: Some(encode_public_key(&callee)),
            media: Some(relay()),
        };
        let Some(Request::MediaReveal { call_id, media_key }) = t.on_event(accepted, &mut Vec::new()) else {
            panic!("accepted is answered with the reveal")
        };
        assert_eq!(call_id, *id);
        let revealed = crate::voice::crypto::decode_public_key(&media_key).unwrap();
        assert_eq!(encode_public_key(&commitment(&revealed, &id)), commit, "the reveal opens the commitment");
        assert!(matches!(status(&t, &id), VoiceStatus::Ready { protected: true, .. }));
        assert!(lock(&entry).media.take_keys().is_some(), "the keys are handed over once");
        assert!(lock(&entry).media.take_keys().is_none());
    }

    #[test]
    fn an_accepted_without_the_callees_key_means_no_voice() {
        let mut t = table();
        let (id, entry) = t.create_local("bob").unwrap();
        lock(&entry).media.commit_to_new_key(&id);
        let (_, pending) = t.begin_send(&id, &entry).unwrap();
        t.on_ok(&pending, None, &mut Vec::new());
        let accepted = ServerMessage::Accepted {
            call_id: id.to_string(),
            response: String::new(),
            device: String::new(),
            media_key: None,
            media: Some(relay()),
        };
        assert_eq!(t.on_event(accepted, &mut Vec::new()), None, "nothing to reveal to");
        assert!(matches!(status(&t, &id), VoiceStatus::Failed(why) if why.contains("no voice key")));
    }

    #[test]
    fn the_callee_starts_voice_only_with_the_committed_key() {
        let caller = LocalKey::generate().public();
        let commit = encode_public_key(&commitment(&caller, "c"));
        let (mut t, _) = accepted_callee(None, Some(commit.clone()));
        assert_eq!(status(&t, "c"), VoiceStatus::Waiting, "no voice before the reveal");
        reveal(&mut t, &caller);
        assert!(matches!(status(&t, "c"), VoiceStatus::Ready { protected: true, .. }));
        reveal(&mut t, &caller);
        assert!(
            matches!(status(&t, "c"), VoiceStatus::Ready { .. }),
            "the same reveal again changes nothing"
        );
        reveal(&mut t, &LocalKey::generate().public());
        assert_eq!(status(&t, "c"), VoiceStatus::Failed(TAMPERED.into()), "a second key ends voice");

        let (mut t, _) = accepted_callee(None, Some(commit));
        reveal(&mut t, &LocalKey::generate().public());
        assert_eq!(
            status(&t, "c"),
            VoiceStatus::Failed(TAMPERED.into()),
            "a key that is not the committed one"
        );
        assert!(lock(&t.remote["c"]).media.take_keys().is_none(), "and no keys");
    }

    #[test]
    fn a_reveal_that_never_comes_fails_after_ten_seconds() {
        let caller = LocalKey::generate().public();
        let (mut t, accepted_at) = accepted_callee(None, Some(encode_public_key(&commitment(&caller, "c"))));
        assert_eq!(t.next_reveal_due(), Some(accepted_at + REVEAL_WAIT));
        t.reveals_overdue(accepted_at + REVEAL_WAIT - std::time::Duration::from_millis(1));
        assert_eq!(status(&t, "c"), VoiceStatus::Waiting);
        t.reveals_overdue(accepted_at + REVEAL_WAIT);
        assert_eq!(status(&t, "c"), VoiceStatus::Failed(NEVER_REVEALED.into()));
        assert_eq!(t.next_reveal_due(), None);
        reveal(&mut t, &caller);
        assert_eq!(status(&t, "c"), VoiceStatus::Failed(NEVER_REVEALED.into()), "too late");
    }

    #[test]
    fn a_v11_caller_gets_voice_flagged_as_unprotected() {
        let caller = LocalKey::generate().public();
        let (t, _) = accepted_callee(Some(encode_public_key(&caller)), None);
        assert!(matches!(status(&t, "c"), VoiceStatus::Ready { protected: false, .. }));
        let (t, _) = accepted_callee(None, None);
        assert!(matches!(status(&t, "c"), VoiceStatus::Failed(why) if why.contains("offered no voice")));
    }

    #[test]
    fn the_end_of_the_call_ends_its_voice() {
        let caller = LocalKey::generate().public();
        let (mut t, _) = accepted_callee(Some(encode_public_key(&caller)), None);
        let hung_up = ServerMessage::HungUp {
            call_id: "c".into(),
            reason: crate::protocol::HangupReason::Hangup,
            by: "bob".into(),
        };
        t.on_event(hung_up, &mut Vec::new());
        assert_eq!(status(&t, "c"), VoiceStatus::Ended);
        assert!(lock(&t.remote["c"]).media.take_keys().is_none(), "the keys are wiped");
    }
}
