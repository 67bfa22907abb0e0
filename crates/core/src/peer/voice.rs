//! The headless peer's built-in voice (`--audio-in`, `--audio-out`): it
//! offers voice with every call it places and accepts with it, and in an
//! accepted call sends the input file as its microphone (silence when it
//! runs out, or without `--audio-in`) and writes what it hears to the
//! output file, 48 kHz mono 16-bit, from the moment voice starts to hang-up.
//! The output is a valid WAV while it grows and is completed when the call
//! ends or the peer stops (SIGINT, SIGTERM, `quit`).
//!
//! The handshake and the voice itself are the shared [`CallVoice`]; this
//! module opens the files and prints what happens: `started` (with the
//! safety code and whether it protects the call), `failed` (with why),
//! `stopped` (with the figures).

use super::output::{Line, Output, voice_line};
use crate::relay_link::{LinkOptions, Transport};
use crate::sdk::call_voice::{CallVoice, RelayAt, Stage};
use crate::sdk::{self, Client, Event, LocalInvitation, RemoteInvitation, Voice};
use crate::voice::audio::wav::{WavSink, WavSource};
use crate::voice::audio::{AudioError, AudioSink, AudioSource, Discard, Silence};
use crate::voice::safety::UNPROTECTED_NOTE;
use crate::voice::{AudioEnds, ProcessingConfig, VoiceConfig};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// The server the relay is reached through, and how.
    relay: RelayAt,
    /// Where a voice that ends by itself (a tampered reveal) is reported.
    out: Output,
    /// The running calls.
    calls: tokio::sync::Mutex<HashMap<String, CallVoice>>,
}

impl PeerVoice {
    /// Voice for the peer logged in with `client` to `server_url`: the
    /// relay's WebSocket fallback verifies `wss://` as the client does.
    pub fn new(files: VoiceFiles, server_url: String, client: &Client, out: Output) -> PeerVoice {
        let options = LinkOptions { tls: client.tls_connector(), ..LinkOptions::default() };
        PeerVoice { files, relay: RelayAt { server_url, options }, out, calls: Default::default() }
    }

    /// Asks for voice with a call about to be placed.
    pub fn offer(&self, invitation: &LocalInvitation) -> Result<(), sdk::Error> {
        invitation.offer_voice()
    }

    /// Accepts with voice and starts it; the line says how it went.
    pub async fn accept(self: &Arc<Self>, invitation: &RemoteInvitation) -> Result<Option<Line>, sdk::Error> {
        invitation.accept_with_voice().await?;
        Ok(Some(self.start(invitation.call_id(), invitation.voice()).await))
    }

    /// Starts the voice when a call we placed is accepted, stops it when a
    /// call ends; the line says what happened.
    pub async fn on_event(self: &Arc<Self>, client: &Client, event: &Event) -> Option<Line> {
        match event {
            Event::LocalInvitationAccepted { call_id, .. } => {
                let voice = client.local_invitation(call_id)?.voice();
                Some(self.start(call_id, voice).await)
            }
            Event::HungUp { call_id, .. } => self.stop(call_id).await,
            _ => None,
        }
    }

    async fn start(self: &Arc<Self>, call_id: &str, voice: Option<Voice>) -> Line {
        let failed = |message: String| voice_line("failed", call_id, json!({ "message": message }));
        let Some(voice) = voice else { return failed("no voice was offered for this call".into()) };
        let (source, sink) = match self.open_files() {
            Ok(audio) => audio,
            Err(e) => return failed(e.to_string()),
        };
        let relay = self.relay.clone();
        let ends = AudioEnds { processing: self.files.processing, ..AudioEnds::clocked(source, sink) };
        let mut call = CallVoice::start(voice, relay, VoiceConfig::default(), ends);
        let line = match call.started().await {
            Stage::Running { safety, transport, .. } => {
                let mut fields = json!({
                    "safety_code": safety.digits,
                    "protected": safety.protected,
                    "transport": transport_name(transport),
                });
                if !safety.protected {
                    fields["note"] = json!(UNPROTECTED_NOTE);
                }
                voice_line("started", call_id, fields)
            }
            Stage::Over { why, .. } => return failed(why),
            Stage::Connecting => unreachable!("started() waits past connecting"),
        };
        self.watch_for_tampering(call_id, &call);
        self.calls.lock().await.insert(call_id.to_owned(), call);
        line
    }

    /// Reports a voice that ends for a reason of its own (the caller's
    /// reveal did not match), while the call goes on.
    fn watch_for_tampering(&self, call_id: &str, call: &CallVoice) {
        let mut stage = call.watch();
        let (out, call_id) = (self.out.clone(), call_id.to_owned());
        tokio::spawn(async move {
            let _ = stage.wait_for(|s| matches!(s, Stage::Over { .. })).await;
            if let Stage::Over { why, quietly: false } = stage.borrow().clone() {
                out.print(&voice_line("failed", &call_id, json!({ "message": why })));
            }
        });
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
        let stats = call.finish().await?;
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
