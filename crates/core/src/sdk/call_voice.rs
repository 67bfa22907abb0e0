//! One call's built-in voice, from the SDK's handshake to its end: the one
//! voice setup the desktop app, the headless peer and the demo `echo`
//! share. It waits for the SDK to hand over the call keys and the relay
//! credential ([`Voice::ready`], no polling), starts the call driver
//! ([`VoiceCall`]) and runs it until the SDK says voice is over (a reveal
//! that does not match its commitment, the call's end) or the owner stops
//! it. Voice ending never hangs the call up: the user decides.
//!
//! Where it stands is a [`Stage`] on a watch channel: the app's call
//! screen reads it, the peer waits on it for its output lines.

use crate::relay_link::{LinkOptions, Transport};
use crate::sdk::{NoVoice, Voice, VoiceKeys};
use crate::voice::safety::SafetyCode;
use crate::voice::{AudioEnds, CallLink, CallStats, VoiceCall, VoiceConfig, VoiceControl};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Where one call's voice stands.
#[derive(Clone)]
pub enum Stage {
    /// Waiting for the keys (a v1.2 callee waits for the caller's reveal)
    /// or for the relay to answer.
    Connecting,
    /// Voice flows both ways.
    Running {
        /// The code both screens show, and whether it protects the call.
        safety: SafetyCode,
        /// How the relay is reached.
        transport: Transport,
        /// Mute, volume, levels and the quality line.
        control: VoiceControl,
    },
    /// No voice, or no more.
    Over {
        /// Why, in a sentence for people.
        why: String,
        /// Whether it ended because the call did (or its owner stopped
        /// it), rather than for a reason the user must hear about.
        quietly: bool,
    },
}

/// Why voice ended when the call did.
const CALL_ENDED: &str = "The call ended";
/// Why voice ended when its owner stopped it.
const STOPPED: &str = "Voice stopped";

/// Where the relay is, besides the credential the SDK hands over.
#[derive(Debug, Clone)]
pub struct RelayAt {
    /// The signaling server's URL (the WebSocket fallback's host).
    pub server_url: String,
    /// How to reach the relay; `Default` for real clients.
    pub options: LinkOptions,
}

/// A call's voice, running in the background from [`CallVoice::start`].
pub struct CallVoice {
    stage: watch::Receiver<Stage>,
    /// Asks the task to stop; `None` once asked.
    stop: Option<oneshot::Sender<()>>,
    /// The task; it returns the driver's figures if voice ran.
    task: Option<JoinHandle<Option<CallStats>>>,
}

impl CallVoice {
    /// Starts at once; voice begins when the SDK hands the keys over.
    /// Must be called within a tokio runtime.
    pub fn start(voice: Voice, relay: RelayAt, config: VoiceConfig, ends: AudioEnds) -> CallVoice {
        let (stage_tx, stage) = watch::channel(Stage::Connecting);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(drive(voice, relay, config, ends, stage_tx, stopped));
        CallVoice { stage, stop: Some(stop), task: Some(task) }
    }

    /// Where it stands now.
    pub fn stage(&self) -> Stage {
        self.stage.borrow().clone()
    }

    /// The stage, to wait on.
    pub fn watch(&self) -> watch::Receiver<Stage> {
        self.stage.clone()
    }

    /// Waits until voice runs or is over, and says which.
    pub async fn started(&mut self) -> Stage {
        let _ = self.stage.wait_for(|s| !matches!(s, Stage::Connecting)).await;
        self.stage()
    }

    /// Waits until voice is over, and says why.
    pub async fn over(&mut self) -> Stage {
        let _ = self.stage.wait_for(|s| matches!(s, Stage::Over { .. })).await;
        self.stage()
    }

    /// Asks the voice to stop, without waiting (the window's thread).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the voice and waits until it has (a WAV file is then
    /// complete); the driver's figures, if voice ran.
    pub async fn finish(mut self) -> Option<CallStats> {
        self.stop();
        self.task.take()?.await.ok().flatten()
    }

    /// Waits until the voice ends by itself (the call's end, a tampered
    /// reveal); the driver's figures, if voice ran.
    pub async fn run_to_end(mut self) -> Option<CallStats> {
        self.task.take()?.await.ok().flatten()
    }
}

impl Drop for CallVoice {
    fn drop(&mut self) {
        // A dropped handle stops its voice: nothing else could.
        self.stop();
    }
}

async fn drive(
    mut voice: Voice,
    relay: RelayAt,
    config: VoiceConfig,
    ends: AudioEnds,
    stage: watch::Sender<Stage>,
    mut stopped: oneshot::Receiver<()>,
) -> Option<CallStats> {
    let over = |why: String, quietly: bool| Stage::Over { why, quietly };
    let ready = tokio::select! {
        ready = voice.ready() => ready,
        _ = &mut stopped => Err(NoVoice(STOPPED.into())),
    };
    let VoiceKeys { keys, media } = match ready {
        Ok(ready) => ready,
        Err(NoVoice(why)) => {
            let quietly = why == STOPPED || why == "the call ended";
            stage.send_replace(over(why, quietly));
            return None;
        }
    };
    let safety = keys.safety();
    let link = CallLink { media, server_url: relay.server_url, options: relay.options };
    let call = tokio::select! {
        call = VoiceCall::start(keys, &link, config, ends) => call,
        _ = &mut stopped => {
            stage.send_replace(over(STOPPED.into(), true));
            return None;
        }
    };
    let call = match call {
        Ok(call) => call,
        Err(e) => {
            stage.send_replace(over(format!("Voice could not reach the relay: {e}"), false));
            return None;
        }
    };
    let (transport, control) = (call.transport(), call.control.clone());
    stage.send_replace(Stage::Running { safety, transport, control });
    let ended = tokio::select! {
        why = voice.ended() => match why {
            Some(why) => over(why, false),
            None => over(CALL_ENDED.into(), true),
        },
        _ = &mut stopped => over(STOPPED.into(), true),
    };
    let stats = call.stop().await;
    // An operator's (and the rig scripts') record of how the call sounded.
    let q = &stats.quality;
    tracing::info!(
        transport = ?stats.transport,
        sent = stats.packets_sent,
        received = stats.packets_received,
        dropped = stats.packets_dropped,
        loss_pct = q.loss_pct,
        jitter_ms = q.jitter_ms,
        buffer_ms = q.buffer_ms,
        headroom_ms = q.headroom_ms,
        dropped_for_delay = q.playout.dropped,
        shortened_for_delay = q.playout.shortened,
        inserted_for_delay = q.playout.inserted,
        speaker_underruns = q.speaker_underruns,
        microphone_overruns = q.microphone_overruns,
        audio_errors = ?stats.audio_errors,
        "voice call ended"
    );
    stage.send_replace(ended);
    Some(stats)
}
