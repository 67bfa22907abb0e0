//! What the app derives from its state after every update: the tone to
//! play and the sound settings to play it with, the media session of the
//! call on screen, and (with `--log-events`) a line in the QA timeline
//! whenever what the user sees has changed.
//!
//! Deriving instead of switching things on and off at each event is what
//! makes "the ringtone plays while, and only while, an invitation rings"
//! hold whatever ended the invitation.

use super::{ActiveMedia, App, Message, Screen, incoming, outgoing};
use crate::clock::unix_micros;
use crate::media;
use crate::ringtone::{Sound, Tone};
use serde_json::{Value, json};

impl App {
    /// Brings sound, media and the timeline in line with the state.
    pub(super) fn reconcile(&mut self) {
        if let Screen::Settings(form) = &mut self.screen {
            form.previewing = self.preview.is_some();
        }
        let sound = self.wanted_sound();
        if sound != self.sound {
            self.ringer.configure(&sound);
            self.sound = sound;
        }
        let tone = self.wanted_tone();
        if tone != self.tone {
            self.ringer.set(tone);
            self.tone = tone;
            if let (Some(Tone::Ringtone), Some(dialog)) = (tone, &self.incoming) {
                tracing::info!(
                    target: "softphone::latency",
                    call_id = %dialog.call_id,
                    unix_us = unix_micros(),
                    "incoming call from {} shown, ringtone started",
                    dialog.caller
                );
            }
        }
        self.reconcile_media();
        self.log_ui();
    }

    /// The settings' sound, or the form's while it is being previewed.
    fn wanted_sound(&self) -> Sound {
        match (&self.preview, self.previewing()) {
            (Some((_, sound)), true) => sound.clone(),
            _ => Sound::from_config(&self.config),
        }
    }

    /// Whether the settings screen's preview plays: only there, and only
    /// while nothing rings.
    fn previewing(&self) -> bool {
        self.preview.is_some() && self.incoming.is_none() && matches!(self.screen, Screen::Settings(_))
    }

    /// The ringtone while an invitation rings here, the call-waiting tone
    /// while a second call waits, the ringback while ours rings there (if
    /// wanted), the preview on the settings screen, else silence.
    fn wanted_tone(&self) -> Option<Tone> {
        if self.quitting {
            return None;
        }
        if self.incoming.as_ref().is_some_and(|d| d.stage == incoming::Stage::Ringing) {
            return Some(Tone::Ringtone);
        }
        if self.waiting.is_some() {
            return Some(Tone::CallWaiting);
        }
        match &self.screen {
            Screen::Outgoing(call) if call.stage == outgoing::Stage::Ringing && self.config.ringback => {
                Some(Tone::Ringback)
            }
            Screen::Settings(_) if self.previewing() => Some(Tone::Ringtone),
            _ => None,
        }
    }

    fn reconcile_media(&mut self) {
        let on_screen = match &mut self.screen {
            Screen::InCall(call) if !self.quitting => Some(call),
            _ => None,
        };
        let wanted = on_screen.as_ref().map(|call| call.facts.call_id.clone());
        if self.media.as_ref().map(|m| &m.call_id) != wanted.as_ref() {
            if let Some(mut old) = self.media.take()
                && let Some(session) = &mut old.session
            {
                session.stop();
            }
            if let Some(call) = on_screen {
                let session = match self.media_hook.start(&call.facts) {
                    Ok(mut session) => {
                        call.media = session.poll();
                        Some(session)
                    }
                    Err(e) => {
                        call.media = media::MediaStatus::Ended(e.0);
                        None
                    }
                };
                self.media = Some(ActiveMedia { call_id: call.facts.call_id.clone(), session });
            }
        } else if let (Some(call), Some(ActiveMedia { session: Some(session), .. })) =
            (on_screen, &mut self.media)
        {
            call.media = session.poll();
        }
    }

    /// What the user sees, in the timeline's terms.
    fn ui_state(&self) -> Value {
        let ringing = |d: &incoming::Incoming| json!({ "call_id": d.call_id, "caller": d.caller, "stage": format!("{:?}", d.stage).to_lowercase() });
        let call = match &self.screen {
            Screen::Outgoing(c) => json!({ "call_id": c.call_id, "peer": c.peer, "stage": c.status() }),
            Screen::InCall(c) => json!({ "call_id": c.facts.call_id, "peer": c.facts.peer }),
            _ => Value::Null,
        };
        json!({
            "screen": self.screen.name(),
            "call": call,
            "dialog": self.incoming.as_ref().map(ringing),
            "waiting": self.waiting.as_ref().map(ringing),
            "tone": self.tone.map(|t| t.to_string()),
            "connection": self.connection.name(),
            "notice": self.notice,
            "unseen_missed": self.history.unseen_missed().count(),
        })
    }

    /// Writes the UI state to the timeline when it changed.
    fn log_ui(&mut self) {
        if self.event_log.is_none() {
            return;
        }
        let state = self.ui_state();
        if self.logged_ui.as_ref() != Some(&state) {
            if let Some(log) = &mut self.event_log {
                log.write("ui", state.clone());
            }
            self.logged_ui = Some(state);
        }
    }

    /// Writes an input or a reply to the timeline (SDK events are written
    /// where they are let in, after the stale ones are dropped).
    pub(super) fn log_message(&mut self, message: &Message) {
        let Some(log) = &mut self.event_log else { return };
        match message {
            Message::Replied { call_id, request, result } => log.write(
                "reply",
                json!({
                    "call_id": call_id,
                    "request": format!("{request:?}").to_lowercase(),
                    "result": match result { Ok(()) => "ok".to_owned(), Err(e) => e.to_string() },
                }),
            ),
            Message::Sdk(..) | Message::Tick(_) | Message::Done | Message::PresenceReplied(..) => {}
            message if is_typing(message) => {}
            message => log.write("input", json!({ "message": format!("{message:?}") })),
        }
    }
}

/// Whether `message` is a keystroke in a text field: not worth a line, and
/// it may be a token.
fn is_typing(message: &Message) -> bool {
    use super::{contacts, dial, settings, sign_in};
    matches!(
        message,
        Message::SignIn(
            sign_in::Message::ServerUrl(_)
                | sign_in::Message::PeerId(_)
                | sign_in::Message::Token(_)
                | sign_in::Message::Device(_)
        ) | Message::Dial(dial::Message::Peer(_) | dial::Message::Channel(_) | dial::Message::Content(_))
            | Message::Contacts(contacts::Message::NewPeer(_) | contacts::Message::NewName(_))
            | Message::Settings(
                settings::Message::ServerUrl(_)
                    | settings::Message::PeerId(_)
                    | settings::Message::Token(_)
                    | settings::Message::Device(_)
                    | settings::Message::Ringtone(_)
                    | settings::Message::MediaTemplate(_)
                    | settings::Message::Volume(_)
            )
    )
}
