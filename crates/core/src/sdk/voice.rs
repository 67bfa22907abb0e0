//! Built-in voice keys, handshake included (protocol v1.2): the app asks
//! for voice when it places a call ([`LocalInvitation::offer_voice`]) or
//! answers one ([`RemoteInvitation::accept_with_voice`]); the SDK makes the
//! key, commits to it, reveals it or checks the reveal, and hands over the
//! call keys with the relay credential through a [`Voice`] handle: a
//! future that resolves when voice may start or why it may not, and a
//! status to watch for the end of voice (a tampered reveal, the call's
//! end), so nobody polls.

use super::invitation::{LocalPhase, RemoteInvitationState, lock};
pub use super::voice_handshake::VoiceStatus;
use super::{Client, Error, LocalInvitation, RemoteInvitation, Reply};
use crate::protocol::MediaInfo;
use crate::voice::crypto::CallKeys;
use futures_util::FutureExt;
use tokio::sync::watch;

/// What a call's voice needs from signaling, handed over once.
pub struct VoiceKeys {
    /// Both direction keys and the safety code.
    pub keys: CallKeys,
    /// Our way into the relay.
    pub media: MediaInfo,
}

/// Why a call has no voice: a sentence for people (the call itself may go on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoVoice(pub String);

/// One call's voice as the SDK's handshake sees it.
pub struct Voice {
    /// The status the call table publishes.
    status: watch::Receiver<VoiceStatus>,
    /// Takes the agreed keys and the relay credential out of the entry.
    take: Box<dyn FnMut() -> Option<(CallKeys, MediaInfo)> + Send>,
}

impl Voice {
    /// Waits until voice may start and takes its keys (once: a second
    /// call fails), or says why there is no voice.
    pub async fn ready(&mut self) -> Result<VoiceKeys, NoVoice> {
        let status = self
            .status
            .wait_for(|s| *s != VoiceStatus::Waiting)
            .await
            .map(|s| s.clone())
            .unwrap_or(VoiceStatus::Ended);
        match status {
            VoiceStatus::Ready { .. } => match (self.take)() {
                Some((keys, media)) => Ok(VoiceKeys { keys, media }),
                None => Err(NoVoice("this call's voice keys were handed over already".into())),
            },
            VoiceStatus::Failed(why) => Err(NoVoice(why)),
            VoiceStatus::Waiting | VoiceStatus::Ended => Err(NoVoice("the call ended".into())),
        }
    }

    /// Where it stands now.
    pub fn status(&self) -> VoiceStatus {
        self.status.borrow().clone()
    }

    /// Waits until voice is over, after it started: the reason (a
    /// tampered reveal), or `None` when the call simply ended.
    pub async fn ended(&mut self) -> Option<String> {
        let status = self
            .status
            .wait_for(|s| matches!(s, VoiceStatus::Failed(_) | VoiceStatus::Ended))
            .await
            .map(|s| s.clone())
            .unwrap_or(VoiceStatus::Ended);
        match status {
            VoiceStatus::Failed(why) => Some(why),
            _ => None,
        }
    }
}

impl LocalInvitation {
    /// Asks for built-in voice: the SDK makes this call's key and sends
    /// its commitment with the invite. Only before it is sent (ALREADY_SENT after).
    pub fn offer_voice(&self) -> Result<(), Error> {
        let mut entry = lock(&self.entry);
        if !matches!(entry.phase, LocalPhase::Unsent) {
            return Err(Error::AlreadySent("the invitation has been sent; it can no longer change".into()));
        }
        entry.media.ours = None;
        entry.media.commit_to_new_key(&self.call_id);
        Ok(())
    }

    /// The call's voice, if [`offer_voice`](Self::offer_voice) asked for it.
    pub fn voice(&self) -> Option<Voice> {
        let status = lock(&self.entry).media.watch()?;
        let entry = self.entry.clone();
        Some(Voice { status, take: Box::new(move || lock(&entry).media.take_keys()) })
    }
}

impl RemoteInvitation {
    /// Accepts with built-in voice: the SDK makes this call's key and sends
    /// it with the accept, then checks the caller's reveal. The same errors
    /// as a plain accept; the voice comes through [`voice`](Self::voice).
    pub fn accept_with_voice(&self) -> Reply<()> {
        self.client.accept_with_voice(self)
    }

    /// The call's voice, if it was accepted with [`accept_with_voice`](Self::accept_with_voice).
    pub fn voice(&self) -> Option<Voice> {
        let status = lock(&self.entry).media.watch()?;
        let entry = self.entry.clone();
        Some(Voice { status, take: Box::new(move || lock(&entry).media.take_keys()) })
    }
}

impl Client {
    /// [`RemoteInvitation::accept_with_voice`].
    pub fn accept_with_voice(&self, invitation: &RemoteInvitation) -> Reply<()> {
        {
            let mut entry = lock(&invitation.entry);
            // Only a ringing invitation takes a key; the accept below
            // refuses the others with the usual error.
            if entry.phase.state() == RemoteInvitationState::InvitationReceived {
                entry.media.answer_with_new_key();
            }
        }
        self.accept_remote_invitation_raw(invitation).map(|reply| reply.map(|_| ())).boxed()
    }
}
