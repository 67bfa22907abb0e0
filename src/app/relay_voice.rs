//! Built-in voice through the server's relay: the join of the app's
//! [`VoiceStarter`] with the call driver [`VoiceCall`]. Our ephemeral
//! X25519 key is made when we invite or accept and kept here by call id
//! (the phone registers it); when the call is up, [`RelayVoice::start`]
//! agrees the call keys with the other side's key and starts the driver in
//! the background, so the window never waits for the relay.

use super::voice::{VoiceLine, VoiceStarter};
use crate::media::{CallFacts, MediaError, MediaStatus};
use crate::protocol::Role as CallRole;
use crate::relay_link::Transport;
use crate::sdk::Client;
use crate::voice::call::{AudioEnds, CallLink, VoiceCall};
use crate::voice::crypto::{LocalKey, Role};
use crate::voice::{VoiceConfig, VoiceControl};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Our key of a call, and the client that knows the call's media facts.
struct Offer {
    key: LocalKey,
    client: Client,
    server_url: String,
}

/// The keys we offered, by call id; the app's voice starter.
#[derive(Default)]
pub struct RelayVoice {
    offers: Mutex<HashMap<String, Offer>>,
}

impl RelayVoice {
    /// Keeps `key`, offered for `call_id` on `client`'s server at `server_url`.
    pub fn offered(&self, call_id: &str, key: LocalKey, client: &Client, server_url: &str) {
        let offer = Offer { key, client: client.clone(), server_url: server_url.to_owned() };
        self.offers.lock().unwrap_or_else(|p| p.into_inner()).insert(call_id.to_owned(), offer);
    }
}

/// How many 20 ms waits for the relay credential (2 s).
const RELAY_WAIT_TRIES: u32 = 100;

/// Where a call's media facts are: its invitation on the client.
struct MediaFacts {
    client: Client,
    call_id: String,
    role: CallRole,
}

impl MediaFacts {
    fn their_key(&self) -> Option<crate::sdk::MediaKey> {
        match self.role {
            CallRole::Caller => self.client.local_invitation(&self.call_id)?.remote_media_key(),
            CallRole::Callee => self.client.remote_invitation(&self.call_id)?.remote_media_key(),
        }
    }

    fn relay(&self) -> Option<crate::protocol::MediaInfo> {
        match self.role {
            CallRole::Caller => self.client.local_invitation(&self.call_id)?.relay(),
            CallRole::Callee => self.client.remote_invitation(&self.call_id)?.relay(),
        }
    }
}

/// How far the background start got.
enum Started {
    Connecting,
    Running(VoiceCall),
    Failed(String),
}

/// The line the call screen reads while the driver starts and runs.
struct RelayLine {
    safety_code: String,
    state: Arc<Mutex<Started>>,
}

impl VoiceStarter for RelayVoice {
    fn start(&self, call: &CallFacts, ends: AudioEnds) -> Result<Box<dyn VoiceLine>, MediaError> {
        let offer = self.offers.lock().unwrap_or_else(|p| p.into_inner()).remove(&call.call_id);
        let Some(Offer { key, client, server_url }) = offer else {
            return Err(MediaError("No voice key for this call".into()));
        };
        let role = match call.role {
            CallRole::Caller => Role::Caller,
            CallRole::Callee => Role::Callee,
        };
        let facts = MediaFacts { client, call_id: call.call_id.clone(), role: call.role };
        let Some(theirs) = facts.their_key() else {
            return Err(MediaError("The other side sent no voice key".into()));
        };
        let keys = key.agree(&theirs, role, &call.call_id).map_err(|e| MediaError(e.to_string()))?;
        let safety_code = keys.safety_code.clone();
        let state = Arc::new(Mutex::new(Started::Connecting));
        let started = state.clone();
        tokio::spawn(async move {
            // The callee's credential comes with its accept's reply, which
            // may be read just after the call is up: wait a moment for it.
            let mut media = facts.relay();
            for _ in 0..RELAY_WAIT_TRIES {
                if media.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                media = facts.relay();
            }
            let Some(media) = media else {
                *started.lock().unwrap_or_else(|p| p.into_inner()) =
                    Started::Failed("The server runs no media relay".into());
                return;
            };
            let link = CallLink { media, server_url, options: Default::default() };
            let result = VoiceCall::start(keys, &link, VoiceConfig::default(), ends).await;
            let mut state = started.lock().unwrap_or_else(|p| p.into_inner());
            *state = match result {
                // Hung up while connecting: the line was stopped already.
                Ok(call) if matches!(*state, Started::Failed(_)) => {
                    tokio::spawn(call.stop());
                    return;
                }
                Ok(call) => Started::Running(call),
                Err(e) => Started::Failed(format!("Voice could not reach the relay: {e}")),
            };
        });
        Ok(Box::new(RelayLine { safety_code, state }))
    }
}

impl VoiceLine for RelayLine {
    fn control(&self) -> Option<VoiceControl> {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            Started::Running(call) => Some(call.control.clone()),
            _ => None,
        }
    }

    fn safety_code(&self) -> String {
        self.safety_code.clone()
    }

    fn status(&mut self) -> MediaStatus {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            Started::Connecting => MediaStatus::Running("Connecting voice...".into()),
            Started::Running(call) => {
                let how = match call.transport() {
                    Transport::Udp => "UDP",
                    Transport::WebSocket => "WebSocket",
                };
                MediaStatus::Running(format!("Voice through the relay ({how})"))
            }
            Started::Failed(why) => MediaStatus::Ended(why.clone()),
        }
    }

    fn stop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Started::Running(call) =
            std::mem::replace(&mut *state, Started::Failed("Voice stopped".into()))
        {
            tokio::spawn(call.stop());
        }
    }
}
