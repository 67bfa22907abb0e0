//! The window: its title, what it listens to, and how the screen is laid
//! out around the current screen: the tabs, the notice, the missed calls
//! on the home screen, the call-waiting prompt, the status bar, the
//! incoming-call dialog over everything, and the keys of each screen.

use super::embedded::Embedded;
use super::history::ago;
use super::link::{Link, Status};
use super::screen::status_bar;
use super::{
    App, Message, Screen, Tab, contacts, dial, history, in_call, incoming, outgoing, settings, sign_in,
    theme, widget,
};
use iced::keyboard::key::Named;
use iced::widget::{button, center, column, container, opaque, row, space, stack, text};
use iced::{Element, Event, Fill, Subscription, window};
use softphone_core::clock::unix_millis;
use std::time::Duration;

/// The window's size when it opens (tests render at the same size).
pub const WINDOW: (f32, f32) = (600.0, 720.0);

/// How many missed calls the home screen lists (the history has them all).
const MISSED_SHOWN: usize = 3;
/// How often the settings screen lists the microphones and speakers again
/// while it is open: a headset plugged in or out shows up within this.
const DEVICE_REFRESH: Duration = Duration::from_secs(3);

impl App {
    /// The window title: what is happening, then the app's name.
    pub fn title(&self) -> String {
        let what = match (self.calls.ringing(), self.screen()) {
            (Some(dialog), _) => Some(format!("Incoming call from {}", dialog.call.peer())),
            (None, Screen::InCall(call)) => match self.calls.waiting() {
                Some(waiting) => Some(format!("{} is waiting", waiting.call.peer())),
                None => Some(format!("In call with {}", call.call.peer())),
            },
            (None, Screen::Outgoing(call)) => Some(format!("Calling {}", call.call.peer())),
            (None, Screen::SignIn(_)) => None,
            (None, _) => self.link.session().map(|s| {
                let missed = self.history.unseen_missed().count();
                let me = &s.credentials.peer_id;
                if missed > 0 { format!("({missed}) {me}") } else { me.clone() }
            }),
        };
        match what {
            Some(what) => format!("{what} \u{2014} softphone"),
            None => "softphone".to_owned(),
        }
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let closing = window::close_requests().map(Message::WindowCloseRequested);
        let signals = Subscription::run(super::signals::close_requests);
        let focus = iced::event::listen_with(|event, _status, _window| match event {
            Event::Window(window::Event::Focused) => Some(Message::Focused(true)),
            Event::Window(window::Event::Unfocused) => Some(Message::Focused(false)),
            _ => None,
        });
        let needs_clock = self.calls.ringing().is_some()
            || self.calls.waiting().is_some()
            || self.preview.is_some()
            || self.calls.active().is_some()
            || matches!(self.link, Link::Up { status: Status::Reconnecting { .. }, .. });
        let mut subscriptions = vec![closing, signals, focus];
        if matches!(self.screen(), Screen::Settings(_)) {
            subscriptions.push(iced::time::every(DEVICE_REFRESH).map(|_| Message::RefreshDevices));
        }
        // Meters move ten times a second while there is sound to show.
        if self.outputs.voice().is_some() || self.outputs.mic_test().is_some() {
            subscriptions.push(iced::time::every(Duration::from_millis(100)).map(Message::Tick));
        } else if needs_clock {
            subscriptions.push(iced::time::every(Duration::from_secs(1)).map(Message::Tick));
        }
        Subscription::batch(subscriptions)
    }

    pub fn view(&self) -> Element<'_, Message> {
        let screen = match self.screen() {
            Screen::SignIn(form) => form.view().map(Message::SignIn),
            Screen::Dial(form) => {
                let me = self.link.session().map_or("", |s| s.credentials.peer_id.as_str());
                form.view(me, self.suggestions()).map(Message::Dial)
            }
            Screen::Contacts(screen) => {
                screen.view(&self.config.contacts, &self.presence).map(Message::Contacts)
            }
            Screen::History(screen) => screen.view(&self.history, unix_millis()).map(Message::History),
            Screen::Settings(form) => form.view(self.mic_test_level()).map(Message::Settings),
            Screen::Outgoing(call) => outgoing::view(call, self.now).map(Message::Outgoing),
            Screen::InCall(call) => in_call::view(call, self.outputs.voice(), self.now).map(Message::InCall),
        };
        let mut page = column![].height(Fill);
        if let Some(tabs) = self.tabs() {
            page = page.push(tabs);
        }
        page = page.push(notice_slot(self.notice.as_deref()));
        if let Some(missed) = self.missed_panel() {
            page = page.push(container(missed).padding([4, 12]).center_x(Fill));
        }
        if let Some(waiting) = self.calls.waiting() {
            let prompt = incoming::waiting_view(waiting, self.now).map(Message::Waiting);
            page = page.push(container(prompt).padding([8, 12]).center_x(Fill));
        }
        let note = self.embedded.as_ref().map(Embedded::note);
        page = page
            .push(center(screen).padding([12.0, theme::PADDING]))
            .push(status_bar::view(&self.link, self.now, note));
        let page: Element<'_, Message> = page.into();
        let keys = match self.calls.ringing() {
            Some(dialog) => {
                let dialog = incoming::view(dialog, self.now).map(Message::Incoming);
                let layer = opaque(center(dialog).style(theme::backdrop));
                return widget::shortcuts(stack![page, layer])
                    .on_enter(Some(Message::Incoming(incoming::Message::Accept)))
                    .on_escape(Some(Message::Incoming(incoming::Message::Refuse)))
                    .modal(true)
                    .into();
            }
            None => widget::shortcuts(page),
        };
        self.screen_keys(keys).into()
    }

    /// The keys of the screen on show (no dialog over it).
    fn screen_keys<'a>(&self, keys: widget::Shortcuts<'a, Message>) -> widget::Shortcuts<'a, Message> {
        let keys = match self.screen() {
            Screen::SignIn(_) => keys
                .on_enter(Some(Message::SignIn(sign_in::Message::Submit)))
                .on_ctrl('4', Message::Go(Tab::Settings)),
            Screen::Dial(_) => keys.on_enter(Some(Message::Dial(dial::Message::Call))),
            Screen::Contacts(_) => keys
                .on_key(Named::ArrowUp, Some(Message::Contacts(contacts::Message::Move(-1))))
                .on_key(Named::ArrowDown, Some(Message::Contacts(contacts::Message::Move(1))))
                .on_key(Named::Delete, Some(Message::Contacts(contacts::Message::RemoveSelected)))
                .on_enter(Some(Message::Contacts(contacts::Message::CallSelected)))
                .on_escape(Some(Message::Go(Tab::Dial))),
            Screen::History(_) => keys
                .on_key(Named::ArrowUp, Some(Message::History(history::Message::Move(-1))))
                .on_key(Named::ArrowDown, Some(Message::History(history::Message::Move(1))))
                .on_enter(Some(Message::History(history::Message::CallSelected)))
                .on_escape(Some(Message::Go(Tab::Dial))),
            Screen::Settings(_) => keys
                .on_enter(Some(Message::Settings(settings::Message::Save)))
                .on_escape(Some(Message::Settings(settings::Message::Cancel))),
            Screen::Outgoing(_) => keys.on_escape(Some(Message::Outgoing(outgoing::Message::Cancel))),
            // Over a call, the keys answer or decline the waiting call; a
            // call itself is never ended by a stray key.
            Screen::InCall(_) if self.calls.waiting().is_some() => keys
                .on_enter(Some(Message::Waiting(incoming::Message::Accept)))
                .on_escape(Some(Message::Waiting(incoming::Message::Refuse)))
                .on_char('m', Message::InCall(in_call::Message::ToggleMute)),
            Screen::InCall(_) => keys.on_char('m', Message::InCall(in_call::Message::ToggleMute)),
        };
        if self.is_idle() && self.link.session().is_some() {
            keys.on_ctrl('1', Message::Go(Tab::Dial))
                .on_ctrl('2', Message::Go(Tab::Contacts))
                .on_ctrl('3', Message::Go(Tab::History))
                .on_ctrl('4', Message::Go(Tab::Settings))
        } else {
            keys
        }
    }

    /// The tabs along the top, on the idle screens of a signed-in app;
    /// History shows how many missed calls are unseen.
    fn tabs(&self) -> Option<Element<'_, Message>> {
        if !self.is_idle() || self.link.session().is_none() {
            return None;
        }
        let current = match self.screen() {
            Screen::Contacts(_) => Tab::Contacts,
            Screen::History(_) => Tab::History,
            Screen::Settings(_) => Tab::Settings,
            _ => Tab::Dial,
        };
        let missed = self.history.unseen_missed().count();
        let tab = |tab: Tab, label: &'static str| {
            let mut content = row![text(label)].spacing(6).align_y(iced::Center);
            if tab == Tab::History && missed > 0 {
                content = content
                    .push(container(text(missed.to_string()).size(12)).padding([0, 6]).style(theme::badge));
            }
            let style = if tab == current { button::primary } else { button::text };
            button(content).style(style).padding([6, 14]).on_press(Message::Go(tab))
        };
        let bar = row![
            tab(Tab::Dial, "Home"),
            tab(Tab::Contacts, "Contacts"),
            tab(Tab::History, "History"),
            tab(Tab::Settings, "Settings"),
            space().width(Fill),
            text("Ctrl+1..4").size(12),
        ]
        .spacing(4)
        .align_y(iced::Center);
        Some(container(bar).padding([8, 12]).width(Fill).into())
    }

    /// The unseen missed calls, on the home screen: who, when, Call back.
    fn missed_panel(&self) -> Option<Element<'_, Message>> {
        if !matches!(self.screen(), Screen::Dial(_)) {
            return None;
        }
        let missed: Vec<_> = self.history.unseen_missed().collect();
        if missed.is_empty() {
            return None;
        }
        let headline = match missed.len() {
            1 => "1 missed call".to_owned(),
            n => format!("{n} missed calls"),
        };
        let now_ms = unix_millis();
        let mut panel = column![
            row![
                text(headline).size(18).style(text::danger).width(Fill),
                button(text("Show all").size(theme::SMALL))
                    .style(button::text)
                    .on_press(Message::Go(Tab::History)),
            ]
            .align_y(iced::Center)
        ]
        .spacing(4);
        for record in missed.iter().take(MISSED_SHOWN) {
            let mut when = ago(record.started_at_ms, now_ms);
            if !record.detail.is_empty() {
                when = format!("{when} ({})", record.detail);
            }
            panel = panel.push(
                row![
                    text(record.peer.as_str()).width(Fill),
                    text(when).size(12),
                    button(text("Call back").size(theme::SMALL))
                        .style(button::success)
                        .on_press(Message::CallBack(record.peer.clone())),
                ]
                .spacing(10)
                .align_y(iced::Center),
            );
        }
        if missed.len() > MISSED_SHOWN {
            panel = panel.push(text(format!("and {} more", missed.len() - MISSED_SHOWN)).size(12));
        }
        Some(container(panel).width(theme::CARD_WIDTH).padding([10, 16]).style(theme::attention).into())
    }

    /// Peers worth a button on the dial screen: the demo peers, when the
    /// default server (which runs them) is in use.
    fn suggestions(&self) -> &'static [String] {
        static DEMO: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| ["echo", "busy", "noanswer"].map(String::from).to_vec());
        match self.link.session() {
            Some(session) if session.credentials.servers.is_default() => &DEMO,
            _ => &[],
        }
    }
}

/// The height kept for the notice bar, shown or not, so that the screen
/// under it does not move when a notice comes or goes: the bar's paddings
/// (8 + 6 above and below) around its Dismiss button (14 px text, 1.3 line
/// height, 5 px padding above and below), rounded up. A notice of more
/// than one line still takes the room it needs.
const NOTICE_SLOT: f32 = 57.0;

/// The notice bar in its slot: how the last call ended, or a setting that
/// was reset.
fn notice_slot(notice: Option<&str>) -> Element<'_, Message> {
    let room = space().width(Fill).height(NOTICE_SLOT);
    match notice {
        Some(notice) => stack![room, notice_bar(notice)].into(),
        None => room.into(),
    }
}

fn notice_bar(notice: &str) -> Element<'_, Message> {
    let bar = row![
        text(notice).width(Fill),
        button(text("Dismiss").size(theme::SMALL)).style(button::text).on_press(Message::DismissNotice),
    ]
    .align_y(iced::Center);
    container(container(bar).padding([6, 12]).style(theme::notice)).padding([8, 12]).into()
}
