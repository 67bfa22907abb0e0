//! The idle screens and moving between them: the tabs (home, contacts,
//! history, settings), Esc back home, and what the contacts, history and
//! settings screens ask for: calls, contact changes with their presence
//! subscriptions, and saved settings.

use super::contacts::{self, Contacts};
use super::dial::{self, Dial};
use super::history::{self, HistoryScreen};
use super::settings::{self, Settings};
use super::sign_in::SignIn;
use super::{App, Message, Screen, Tab};
use crate::config::AppConfig;
use crate::media;
use iced::Task;
use std::time::Duration;

/// How long the settings screen's ringtone preview plays.
pub const PREVIEW: Duration = Duration::from_secs(6);

impl App {
    /// Whether the screen is one the tabs switch between (no call on it).
    pub(super) fn is_idle(&self) -> bool {
        matches!(
            self.screen,
            Screen::Dial(_) | Screen::Contacts(_) | Screen::History(_) | Screen::Settings(_)
        )
    }

    /// Switches to `tab`. Signed out, only the settings (and back to the
    /// sign-in form) are there; during a call, nothing.
    pub(super) fn go(&mut self, tab: Tab) -> Task<Message> {
        let signed_in = self.session.is_some();
        let allowed = match &self.screen {
            Screen::SignIn(form) => tab == Tab::Settings && !form.busy,
            Screen::Settings(_) if !signed_in => tab == Tab::Dial || tab == Tab::Settings,
            _ => self.is_idle() && signed_in,
        };
        if !allowed || self.incoming.is_some() {
            return Task::none();
        }
        self.preview = None;
        self.screen = match tab {
            Tab::Dial if !signed_in => Screen::SignIn(SignIn::from_config(&self.config)),
            Tab::Dial => match &self.screen {
                Screen::Dial(form) => Screen::Dial(form.clone()),
                _ => Screen::Dial(Dial::default()),
            },
            Tab::Contacts => Screen::Contacts(Contacts::default()),
            Tab::History => {
                let fresh = self.history.unseen_missed().count();
                if let Err(e) = self.history.mark_seen() {
                    tracing::warn!("{e}");
                }
                Screen::History(HistoryScreen { selected: None, fresh })
            }
            Tab::Settings => Screen::Settings(Settings::from_config(&self.config)),
        };
        Task::none()
    }

    /// Calls `peer` on a fresh channel (a contact, a history row, a missed call).
    pub(super) fn call_back(&mut self, peer: String) -> Task<Message> {
        if !self.is_idle() {
            return Task::none();
        }
        self.call(peer, dial::suggest_channel(), String::new())
    }

    pub(super) fn on_contacts(&mut self, message: contacts::Message) -> Task<Message> {
        let Screen::Contacts(screen) = &mut self.screen else { return Task::none() };
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
                let Some(session) = &self.session else { return Task::none() };
                Task::perform(session.phone.unsubscribe_presence(&[peer]), |_| Message::Done)
            }
            Some(contacts::Event::Call(peer)) => self.call_back(peer),
            None => Task::none(),
        }
    }

    pub(super) fn on_history(&mut self, message: history::Message) -> Task<Message> {
        let Screen::History(screen) = &mut self.screen else { return Task::none() };
        match screen.update(message, &self.history) {
            Some(history::Event::Call(peer)) => self.call_back(peer),
            None => Task::none(),
        }
    }

    pub(super) fn on_settings(&mut self, message: settings::Message) -> Task<Message> {
        let Screen::Settings(form) = &mut self.screen else { return Task::none() };
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
            None => Task::none(),
        }
    }

    /// Puts saved settings in force and writes them.
    fn apply_settings(&mut self, config: AppConfig) {
        let identity =
            |c: &AppConfig| (c.server_url.clone(), c.peer_id.clone(), c.token.clone(), c.device.clone());
        let identity_changed = identity(&config) != identity(&self.config);
        if self.media_hook_from_config && config.media != self.config.media {
            self.media_hook = media::hook_for(&config.media);
        }
        self.config = config;
        self.save_config();
        self.notice = Some(if identity_changed && self.session.is_some() {
            "Settings saved. The server and identity apply the next time you sign in.".into()
        } else {
            "Settings saved.".into()
        });
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
        let Some(session) = &self.session else { return Task::none() };
        if peers.is_empty() {
            return Task::none();
        }
        let number = session.number;
        Task::perform(session.phone.subscribe_presence(&peers), move |result| {
            Message::PresenceReplied(number, result)
        })
    }
}
