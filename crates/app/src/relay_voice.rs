//! Built-in voice through the server's relay: the join of the app's
//! [`VoiceStarter`] with the shared [`CallVoice`]. The phone asks the SDK
//! for voice when it invites or accepts and registers the call here (which
//! client, which server); when the call is up, [`RelayVoice::start`] hands
//! the SDK's [`Voice`](softphone_core::sdk::Voice) to a [`CallVoice`], which waits
//! for the handshake and the relay in the background, so the window never
//! waits for the network.

use super::voice::{VoiceLine, VoiceStarter};
use crate::media_hook::{CallFacts, MediaError, MediaStatus};
use softphone_core::protocol::Role;
use softphone_core::relay_link::{LinkOptions, Transport};
use softphone_core::sdk::Client;
use softphone_core::sdk::call_voice::{CallVoice, RelayAt, Stage};
use softphone_core::voice::call::AudioEnds;
use softphone_core::voice::safety::UNPROTECTED_NOTE;
use softphone_core::voice::{VoiceConfig, VoiceControl};
use std::collections::HashMap;
use std::sync::Mutex;

/// The client that runs a call's handshake, and its server.
struct Offer {
    client: Client,
    server_url: String,
}

/// The calls we asked voice for, by call id; the app's voice starter.
#[derive(Default)]
pub struct RelayVoice {
    offers: Mutex<HashMap<String, Offer>>,
}

impl RelayVoice {
    /// Keeps `call_id`, whose voice `client` (on the server at
    /// `server_url`) was asked for.
    pub fn offered(&self, call_id: &str, client: &Client, server_url: &str) {
        let offer = Offer { client: client.clone(), server_url: server_url.to_owned() };
        self.offers.lock().unwrap_or_else(|p| p.into_inner()).insert(call_id.to_owned(), offer);
    }
}

/// The line the call screen reads while voice starts and runs.
struct RelayLine {
    call: CallVoice,
}

impl VoiceStarter for RelayVoice {
    fn start(&self, call: &CallFacts, ends: AudioEnds) -> Result<Box<dyn VoiceLine>, MediaError> {
        let offer = self.offers.lock().unwrap_or_else(|p| p.into_inner()).remove(&call.call_id);
        let Some(Offer { client, server_url }) = offer else {
            return Err(MediaError("No voice was asked for this call".into()));
        };
        let voice = match call.role {
            Role::Caller => client.local_invitation(&call.call_id).and_then(|i| i.voice()),
            Role::Callee => client.remote_invitation(&call.call_id).and_then(|i| i.voice()),
        };
        let Some(voice) = voice else {
            return Err(MediaError("No voice was asked for this call".into()));
        };
        // The fallback to the relay's WebSocket verifies wss:// as signaling does.
        let options = LinkOptions { tls: client.tls_connector(), ..LinkOptions::default() };
        let relay = RelayAt { server_url, options };
        Ok(Box::new(RelayLine { call: CallVoice::start(voice, relay, VoiceConfig::default(), ends) }))
    }
}

impl VoiceLine for RelayLine {
    fn control(&self) -> Option<VoiceControl> {
        match self.call.stage() {
            Stage::Running { control, .. } => Some(control),
            _ => None,
        }
    }

    fn safety_code(&self) -> String {
        match self.call.stage() {
            Stage::Running { safety, .. } => safety.digits,
            _ => String::new(),
        }
    }

    fn safety_note(&self) -> Option<String> {
        match self.call.stage() {
            Stage::Running { safety, .. } if !safety.protected => Some(capitalized(UNPROTECTED_NOTE)),
            _ => None,
        }
    }

    fn status(&mut self) -> MediaStatus {
        match self.call.stage() {
            Stage::Connecting => MediaStatus::Running("Connecting voice...".into()),
            Stage::Running { transport, .. } => {
                let how = match transport {
                    Transport::Udp => "UDP",
                    Transport::WebSocket => "WebSocket",
                };
                MediaStatus::Running(format!("Voice through the relay ({how})"))
            }
            Stage::Over { why, .. } => MediaStatus::Ended(capitalized(&why)),
        }
    }

    fn stop(&mut self) {
        self.call.stop();
    }
}

/// A sentence as the screen shows it.
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
