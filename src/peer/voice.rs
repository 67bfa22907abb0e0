//! The headless peer's built-in voice (`--audio-in`, `--audio-out`): it
//! offers a key with every call it places and accepts with one, and in an
//! accepted call sends the input file as its microphone (silence when it
//! runs out, or without `--audio-in`) and writes what it hears to the
//! output file, 48 kHz mono 16-bit, from accept to hang-up. The output is
//! a valid WAV while it grows and is completed when the call ends or the
//! peer stops (SIGINT, SIGTERM, `quit`).

use super::output::{Line, voice_line};
use crate::protocol::MediaInfo;
use crate::relay_link::{LinkOptions, Transport};
use crate::sdk::{self, Client, Event, LocalInvitation, MediaKey, RemoteInvitation};
use crate::voice::audio::wav::{WavSink, WavSource};
use crate::voice::audio::{AudioError, AudioSink, AudioSource, Discard, Silence};
use crate::voice::crypto::{CallKeys, LocalKey, Role};
use crate::voice::{AudioEnds, CallLink, ProcessingConfig, VoiceCall, VoiceConfig};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// A call's microphone and speaker.
type Audio = (Box<dyn AudioSource>, Box<dyn AudioSink>);

/// Where the voice comes from and goes to.
#[derive(Debug, Clone)]
pub struct VoiceFiles {
    /// Sent as the microphone; silence when absent.
    pub audio_in: Option<PathBuf>,
    /// What the peer hears; discarded when absent.
    pub audio_out: Option<PathBuf>,
    /// How the input is cleaned before Opus (`--audio-processing`).
    pub processing: ProcessingConfig,
}

/// The voice of every call of one peer.
pub struct PeerVoice {
    files: VoiceFiles,
    server_url: String,
    /// Our key for each call placed, until it is accepted.
    offered: Mutex<HashMap<String, LocalKey>>,
    /// The running calls.
    calls: tokio::sync::Mutex<HashMap<String, VoiceCall>>,
}

impl PeerVoice {
    pub fn new(files: VoiceFiles, server_url: String) -> PeerVoice {
        PeerVoice { files, server_url, offered: Mutex::default(), calls: Default::default() }
    }

    /// Offers a fresh key with a call about to be placed.
    pub fn offer(&self, invitation: &LocalInvitation) -> Result<(), sdk::Error> {
        let key = LocalKey::generate();
        invitation.set_media_key(&key.public())?;
        let mut offered = self.offered.lock().unwrap_or_else(|p| p.into_inner());
        offered.insert(invitation.call_id().to_owned(), key);
        Ok(())
    }

    /// Accepts with a fresh key and starts the voice; the line says how it went.
    pub async fn accept(&self, invitation: &RemoteInvitation) -> Result<Option<Line>, sdk::Error> {
        let key = LocalKey::generate();
        let media = invitation.accept_with_media(&key.public()).await?;
        let call_id = invitation.call_id().to_owned();
        Ok(Some(self.start(&call_id, key, invitation.remote_media_key(), media, Role::Callee).await))
    }

    /// Starts the voice when a call we placed is accepted, stops it when a
    /// call ends; the line says what happened.
    pub async fn on_event(&self, client: &Client, event: &Event) -> Option<Line> {
        match event {
            Event::LocalInvitationAccepted { call_id, .. } => {
                let key = self.offered.lock().unwrap_or_else(|p| p.into_inner()).remove(call_id)?;
                let invitation = client.local_invitation(call_id)?;
                let (theirs, media) = (invitation.remote_media_key(), invitation.relay());
                Some(self.start(call_id, key, theirs, media, Role::Caller).await)
            }
            Event::HungUp { call_id, .. } => self.stop(call_id).await,
            Event::LocalInvitationRefused { call_id, .. }
            | Event::LocalInvitationCanceled { call_id }
            | Event::LocalInvitationFailure { call_id, .. } => {
                self.offered.lock().unwrap_or_else(|p| p.into_inner()).remove(call_id);
                None
            }
            _ => None,
        }
    }

    async fn start(
        &self,
        call_id: &str,
        key: LocalKey,
        theirs: Option<MediaKey>,
        media: Option<MediaInfo>,
        role: Role,
    ) -> Line {
        let failed = |message: String| voice_line("failed", call_id, json!({ "message": message }));
        let (Some(theirs), Some(media)) = (theirs, media) else {
            return failed("the other side sent no media key, or the server runs no relay".into());
        };
        let keys: CallKeys = match key.agree(&theirs, role, call_id) {
            Ok(keys) => keys,
            Err(e) => return failed(e.to_string()),
        };
        let (source, sink) = match self.open_files() {
            Ok(audio) => audio,
            Err(e) => return failed(e.to_string()),
        };
        let link = CallLink { media, server_url: self.server_url.clone(), options: LinkOptions::default() };
        let ends = AudioEnds { processing: self.files.processing, ..AudioEnds::clocked(source, sink) };
        match VoiceCall::start(keys, &link, VoiceConfig::default(), ends).await {
            Ok(call) => {
                let line = voice_line(
                    "started",
                    call_id,
                    json!({ "safety_code": call.safety_code, "transport": transport_name(call.transport()) }),
                );
                self.calls.lock().await.insert(call_id.to_owned(), call);
                line
            }
            Err(e) => failed(e.to_string()),
        }
    }

    fn open_files(&self) -> Result<Audio, AudioError> {
        let source: Box<dyn AudioSource> = match &self.files.audio_in {
            Some(path) => Box::new(WavSource::open(path)?),
            None => Box::new(Silence),
        };
        let sink: Box<dyn AudioSink> = match &self.files.audio_out {
            Some(path) => Box::new(WavSink::create(path)?),
            None => Box::new(Discard),
        };
        Ok((source, sink))
    }

    async fn stop(&self, call_id: &str) -> Option<Line> {
        let call = self.calls.lock().await.remove(call_id)?;
        let stats = call.stop().await;
        Some(voice_line(
            "stopped",
            call_id,
            json!({
                "packets_sent": stats.packets_sent,
                "packets_received": stats.packets_received,
                "loss_pct": stats.quality.loss_pct,
            }),
        ))
    }

    /// Stops every call's voice (the peer is stopping), completing the files.
    pub async fn stop_all(&self) -> Vec<Line> {
        let ids: Vec<String> = self.calls.lock().await.keys().cloned().collect();
        let mut lines = Vec::new();
        for id in ids {
            lines.extend(self.stop(&id).await);
        }
        lines
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "udp",
        Transport::WebSocket => "websocket",
    }
}
