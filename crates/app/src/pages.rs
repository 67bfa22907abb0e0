//! The idle screens and moving between them: the sign-in form, the tabs
//! (home, contacts, history, settings), Esc back home, and what those
//! screens ask for: calls, contact changes with their presence
//! subscriptions, and saved settings.

use super::contacts::{self, Contacts};
use super::dial::{self, Dial};
use super::history::{self, HistoryScreen};
use super::model::{self, describe_error};
use super::settings::{self, Settings};
use super::sign_in::{self, SignIn};
use super::{App, CallRequest, Message, Page, Screen, Tab};
use crate::config::AppConfig;
use iced::Task;
use std::time::Duration;

/// How long the settings screen's ringtone preview plays.
pub const PREVIEW: Duration = Duration::from_secs(6);

impl App {
    /// Whether the screen is one the tabs switch between (no call on it).
    pub(super) fn is_idle(&self) -> bool {
        self.screen().is_idle()
    }

    pub(super) fn on_sign_in(&mut self, message: sign_in::Message) -> Task<Message> {
        let Page::SignIn(form) = &mut self.page else { return Task::none() };
        match form.update(message) {
            Some(sign_in::Event::SignIn(credentials)) => self.sign_in(credentials),
            Some(sign_in::Event::OpenSettings) => self.go(Tab::Settings),
            None => Task::none(),
        }
    }

    pub(super) fn on_dial(&mut self, message: dial::Message) -> Task<Message> {
        if self.calls.active().is_some() {
            return Task::none();
        }
        let Page::Dial(form) = &mut self.page else { return Task::none() };
        match form.update(message) {
            Some(dial::Event::Call { peer, channel, content }) => self.call(peer, channel, content),
            Some(dial::Event::SignOut) => self.sign_out(),
            None => Task::none(),
        }
    }

    /// Switches to `tab`. Signed out, only the settings (and back to the
    /// sign-in form) are there; during a call, nothing.
    pub(super) fn go(&mut self, tab: Tab) -> Task<Message> {
        let signed_in = self.link.session().is_some();
        let allowed = match self.screen() {
            Screen::SignIn(form) => tab == Tab::Settings && !form.busy,
            Screen::Settings(_) if !signed_in => tab == Tab::Dial || tab == Tab::Settings,
            screen => screen.is_idle() && signed_in,
        };
        if !allowed || self.calls.ringing().is_some() {
            return Task::none();
        }
        self.preview = None;
        self.page = match tab {
            Tab::Dial if !signed_in => Page::SignIn(SignIn::from_config(&self.config)),
            Tab::Dial => match &self.page {
                Page::Dial(form) => Page::Dial(form.clone()),
                _ => Page::Dial(Dial::default()),
            },
            Tab::Contacts => Page::Contacts(Contacts::default()),
            Tab::History => {
                let fresh = self.history.unseen_missed().count();
                if let Err(e) = self.history.mark_seen() {
                    tracing::warn!("{e}");
                }
                Page::History(HistoryScreen { selected: None, fresh })
            }
            Tab::Settings => Page::Settings(
                Settings::from_config(&self.config).with_devices(self.outputs.devices().list()),
            ),
        };
        Task::none()
    }

    /// Places a call (from the dial screen, a contact or a history row).
    fn call(&mut self, peer: String, channel: String, content: String) -> Task<Message> {
        if !self.calls.can_place() {
            return Task::none();
        }
        let Some(session) = self.link.session() else { return Task::none() };
        match session.phone.invite(&peer, &channel, &content) {
            Ok((call_id, reply)) => {
                let id = call_id.clone();
                let sent = Task::perform(reply, move |result| Message::Replied {
                    call_id: id,
                    request: CallRequest::Invite,
                    result,
                });
                let placed = self.drive(model::Event::Placed { call_id, peer, channel, content });
                Task::batch([placed, sent])
            }
            Err(e) => {
                match &mut self.page {
                    Page::Dial(form) => form.error = Some(describe_error(&e)),
                    _ => self.notice = Some(format!("Could not call {peer}: {}", describe_error(&e))),
                }
                Task::none()
            }
        }
    }

    /// Calls `peer` on a fresh channel (a contact, a history row, a missed call).
    pub(super) fn call_back(&mut self, peer: String) -> Task<Message> {
        if !self.is_idle() {
            return Task::none();
        }
        self.call(peer, dial::suggest_channel(), String::new())
    }

    pub(super) fn on_contacts(&mut self, message: contacts::Message) -> Task<Message> {
        let Screen::Contacts(_) = self.screen() else { return Task::none() };
        let Page::Contacts(screen) = &mut self.page else { return Task::none() };
        match screen.update(message, &self.config.contacts) {
            Some(contacts::Event::Add(contact)) => {
                let peer = contact.peer_id.clone();
                self.config.contacts.push(contact);
                self.save_config();
                self.watch_presence(vec![peer])
            }
            Some(contacts::Event::Remove(peer)) => {
                self.config.contacts.retain(|c| c.peer_id != peer);
                self.save_config();
                self.presence.remove(&peer);
                let Some(session) = self.link.session() else { return Task::none() };
                Task::perform(session.phone.unsubscribe_presence(&[peer]), |_| Message::Done)
            }
            Some(contacts::Event::Call(peer)) => self.call_back(peer),
            None => Task::none(),
        }
    }

    pub(super) fn on_history(&mut self, message: history::Message) -> Task<Message> {
        let Screen::History(_) = self.screen() else { return Task::none() };
        let Page::History(screen) = &mut self.page else { return Task::none() };
        match screen.update(message, &self.history) {
            Some(history::Event::Call(peer)) => self.call_back(peer),
            None => Task::none(),
        }
    }

    pub(super) fn on_settings(&mut self, message: settings::Message) -> Task<Message> {
        let Screen::Settings(_) = self.screen() else { return Task::none() };
        let Page::Settings(form) = &mut self.page else { return Task::none() };
        match form.update(message, &self.config) {
            Some(settings::Event::Save(config)) => {
                self.apply_settings(*config);
                self.go(Tab::Dial)
            }
            Some(settings::Event::Cancel) => self.go(Tab::Dial),
            Some(settings::Event::Preview(sound)) => {
                self.preview = Some((self.now + PREVIEW, sound));
                Task::none()
            }
            Some(settings::Event::StopPreview) => {
                self.preview = None;
                Task::none()
            }
            Some(settings::Event::MicTest(input)) => {
                let failed = self.outputs.start_mic_test(&input).err();
                if let Page::Settings(form) = &mut self.page {
                    form.error = failed;
                }
                Task::none()
            }
            Some(settings::Event::StopMicTest) => {
                self.outputs.stop_mic_test();
                Task::none()
            }
            None => Task::none(),
        }
    }

    /// Puts saved settings in force and writes them.
    fn apply_settings(&mut self, config: AppConfig) {
        let identity =
            |c: &AppConfig| (c.servers.clone(), c.peer_id.clone(), c.token.clone(), c.device.clone());
        let identity_changed = identity(&config) != identity(&self.config);
        let media =
            |c: &AppConfig| (c.media.clone(), c.audio_input.clone(), c.audio_output.clone(), c.processing());
        if media(&config) != media(&self.config) {
            self.outputs.media_config_changed(&config);
        }
        let autostart_failed = if config.start_at_login != self.config.start_at_login {
            super::autostart::set(&self.paths, config.start_at_login).err()
        } else {
            None
        };
        self.config = config;
        self.save_config();
        self.notice = Some(if let Some(e) = autostart_failed {
            tracing::warn!("{e}");
            format!("Settings saved, but {e}")
        } else if identity_changed && self.link.session().is_some() {
            "Settings saved. The server and identity apply the next time you sign in.".into()
        } else {
            "Settings saved.".into()
        });
    }

    /// Lists the sound card's devices again, off the UI thread (ALSA's
    /// enumeration can take a while); the settings screen takes the list.
    pub(super) fn refresh_devices(&mut self) -> Task<Message> {
        if !matches!(self.page, Page::Settings(_)) {
            return Task::none();
        }
        let devices = self.outputs.devices().clone();
        Task::perform(
            async move { tokio::task::spawn_blocking(move || devices.list()).await.unwrap_or_default() },
            Message::DevicesListed,
        )
    }

    /// Writes the config; a failure is said, and the settings stay in force.
    pub(super) fn save_config(&mut self) {
        if let Err(e) = self.config.save(&self.paths) {
            let path = self.paths.config_file();
            tracing::warn!("cannot save the settings to {}: {e}", path.display());
            self.notice = Some(format!("Could not save the settings to {}: {e}", path.display()));
        }
    }

    /// Subscribes to the presence of `peers`; the reply fills in who is online.
    pub(super) fn watch_presence(&self, peers: Vec<String>) -> Task<Message> {
        let Some(session) = self.link.session() else { return Task::none() };
        if peers.is_empty() {
            return Task::none();
        }
        let number = session.number;
        Task::perform(session.phone.subscribe_presence(&peers), move |result| {
            Message::PresenceReplied(number, result)
        })
    }
}
