//! The tray icon, and what closing the window does.
//!
//! With a tray host on the desktop (a `org.kde.StatusNotifierWatcher` on
//! the session bus: KDE, GNOME with the AppIndicator extension, most
//! panels), closing the window leaves the app running (an iced daemon:
//! the window is closed, and opened anew when wanted; Wayland cannot hide
//! a window): the phone stays signed in, the
//! tray icon shows who we are signed in as, the call under way and the
//! missed calls, and its menu opens the window again or quits. An
//! invitation ringing while the window is hidden brings it back, with the
//! dialog, the ringtone and the notification. Without a host (no desktop
//! environment, Xvfb, CI) closing the window quits as it always did; the
//! tray says so once in the log when it finds no host.
//!
//! Like the notifier, the tray is an adapter ([`TrayIcon`]): the app
//! derives a [`TrayView`] from the call model, the session and the
//! history after every update and hands it over when it changed; the
//! tray's menu comes back as [`TrayAction`]s. [`KsniTray`] is the real
//! one (a StatusNotifierItem over D-Bus through `ksni`); tests use one
//! that records.

mod item;

pub use item::KsniTray;

use super::link::{Link, Status};
use super::model::{Active, Calls};
use super::{App, Message};
use iced::{Task, window};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

/// What the tray shows: the phone's state in one line, and the missed calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrayView {
    pub status: TrayStatus,
    /// Missed calls not seen yet in the history.
    pub missed: usize,
}

/// The phone's state as the tray says it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrayStatus {
    /// Not signed in.
    #[default]
    Offline,
    /// Signing in, or the connection dropped and is being retried, as this peer.
    Connecting(String),
    /// Signed in as this peer, no call.
    SignedIn(String),
    /// This peer is calling us.
    Ringing(String),
    /// We are calling this peer.
    Calling(String),
    /// In a call with this peer.
    InCall(String),
}

impl TrayView {
    /// The view of the app's state: a call first (ringing, then the one
    /// placed or up), else the session.
    pub fn of(link: &Link, calls: &Calls, missed: usize) -> TrayView {
        let status = if let Some(dialog) = calls.ringing() {
            TrayStatus::Ringing(dialog.call.peer().to_owned())
        } else {
            match (calls.active(), link) {
                (Some(Active::InCall(call)), _) => TrayStatus::InCall(call.call.peer().to_owned()),
                (Some(Active::Outgoing(call)), _) => TrayStatus::Calling(call.call.peer().to_owned()),
                (None, Link::SignedOut { .. }) => TrayStatus::Offline,
                (None, Link::Up { session, status: Status::Connected }) => {
                    TrayStatus::SignedIn(session.credentials.peer_id.clone())
                }
                (None, Link::Up { session, .. }) => {
                    TrayStatus::Connecting(session.credentials.peer_id.clone())
                }
            }
        };
        TrayView { status, missed }
    }

    /// The status line: the tooltip's text and the menu's first line.
    pub fn status_line(&self) -> String {
        match &self.status {
            TrayStatus::Offline => "Offline".to_owned(),
            TrayStatus::Connecting(me) => format!("Connecting as {me}…"),
            TrayStatus::SignedIn(me) => format!("Signed in as {me}"),
            TrayStatus::Ringing(peer) => format!("Incoming call from {peer}"),
            TrayStatus::Calling(peer) => format!("Calling {peer}…"),
            TrayStatus::InCall(peer) => format!("In a call with {peer}"),
        }
    }

    /// "2 missed calls", or nothing when there are none.
    pub fn missed_line(&self) -> Option<String> {
        match self.missed {
            0 => None,
            1 => Some("1 missed call".to_owned()),
            n => Some(format!("{n} missed calls")),
        }
    }

    /// Whether the tray asks for attention: a call rings, or one was missed.
    pub fn needs_attention(&self) -> bool {
        matches!(self.status, TrayStatus::Ringing(_)) || self.missed > 0
    }
}

/// What the tray's menu (or a click on the icon) asks of the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    /// Show the window (a click on the icon, or Open).
    Open,
    /// Quit the app: calls end, the session signs out.
    Quit,
}

/// Whether a tray host shows our icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayHost {
    /// Still asking the session bus.
    Unknown,
    /// A StatusNotifierWatcher took our item: the icon shows.
    Present,
    /// No session bus, or no watcher on it: nothing would show the icon.
    Absent,
}

/// The tray icon as the app drives it.
pub trait TrayIcon: Send {
    /// Starts looking for a tray host; the menu's choices go to `actions`.
    fn start(&mut self, actions: UnboundedSender<TrayAction>);
    /// Whether a host shows the icon now.
    fn host(&self) -> TrayHost;
    /// Shows `view` (called only when it changed).
    fn show(&mut self, view: &TrayView);
}

/// No tray: closing the window quits.
#[derive(Debug, Default)]
pub struct NoTray;

impl TrayIcon for NoTray {
    fn start(&mut self, _actions: UnboundedSender<TrayAction>) {}
    fn host(&self) -> TrayHost {
        TrayHost::Absent
    }
    fn show(&mut self, _view: &TrayView) {}
}

/// What the window's close button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Hide the window; the phone stays signed in behind the tray icon.
    Hide,
    /// Quit, as without a tray.
    Quit,
}

/// Hide behind the tray only when a host shows the icon: a hidden window
/// with no icon could never be opened again.
pub fn on_close(host: TrayHost) -> CloseAction {
    match host {
        TrayHost::Present => CloseAction::Hide,
        TrayHost::Unknown | TrayHost::Absent => CloseAction::Quit,
    }
}

/// The tray's menu choices as app messages, for as long as the app runs.
pub fn start(tray: &mut dyn TrayIcon) -> Task<Message> {
    let (actions, mut receiver) = unbounded_channel();
    tray.start(actions);
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    Task::run(stream, Message::Tray)
}

impl App {
    /// The window's close button: hide behind the tray icon when a host
    /// shows it, else quit as without a tray.
    /// The window is closed (not merely hidden: Wayland cannot hide a
    /// window), and opened anew when it is wanted: the state is the app's.
    pub(super) fn on_window_close(&mut self, window: window::Id) -> Task<Message> {
        match on_close(self.tray.host()) {
            CloseAction::Hide => {
                tracing::info!("window closed: the phone stays signed in behind the tray icon");
                self.window_hidden = true;
                // Hidden is not in front: calls and missed calls notify.
                self.focused = false;
                window::close(window)
            }
            CloseAction::Quit => self.quit(),
        }
    }

    /// Open or Quit in the tray's menu.
    pub(super) fn on_tray(&mut self, action: TrayAction) -> Task<Message> {
        match action {
            TrayAction::Open => self.show_window(),
            TrayAction::Quit => self.quit(),
        }
    }

    /// Brings the hidden window back, in front.
    fn show_window(&mut self) -> Task<Message> {
        if !self.window_hidden {
            return window::latest().and_then(window::gain_focus);
        }
        self.window_hidden = false;
        super::open_window()
    }

    /// After every update: the tray shows the state, and an invitation
    /// ringing while the window is hidden brings the window back (the
    /// task that does, if it must).
    pub(super) fn drive_window(&mut self) -> Option<Task<Message>> {
        if self.quitting {
            return None;
        }
        let view = TrayView::of(&self.link, &self.calls, self.history.unseen_missed().count());
        if self.tray_view.as_ref() != Some(&view) {
            self.tray.show(&view);
            self.tray_view = Some(view);
        }
        if self.window_hidden && self.calls.ringing().is_some() {
            tracing::info!("incoming call: showing the window");
            return Some(self.show_window());
        }
        None
    }

    /// Whether the window is hidden behind the tray icon.
    pub fn window_hidden(&self) -> bool {
        self.window_hidden
    }

    /// What the tray icon shows.
    pub fn tray_view(&self) -> Option<&TrayView> {
        self.tray_view.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lines_say_the_state_and_the_missed_calls() {
        let view = |status, missed| TrayView { status, missed };
        assert_eq!(view(TrayStatus::Offline, 0).status_line(), "Offline");
        assert_eq!(view(TrayStatus::SignedIn("alice".into()), 0).status_line(), "Signed in as alice");
        assert_eq!(view(TrayStatus::InCall("bob".into()), 0).status_line(), "In a call with bob");
        assert_eq!(view(TrayStatus::Ringing("bob".into()), 0).status_line(), "Incoming call from bob");
        assert_eq!(view(TrayStatus::Offline, 0).missed_line(), None);
        assert_eq!(view(TrayStatus::Offline, 1).missed_line().as_deref(), Some("1 missed call"));
        assert_eq!(view(TrayStatus::Offline, 3).missed_line().as_deref(), Some("3 missed calls"));
        assert!(!view(TrayStatus::SignedIn("a".into()), 0).needs_attention());
        assert!(view(TrayStatus::Ringing("b".into()), 0).needs_attention());
        assert!(view(TrayStatus::SignedIn("a".into()), 2).needs_attention());
    }

    #[test]
    fn closing_hides_only_when_a_host_shows_the_icon() {
        assert_eq!(on_close(TrayHost::Present), CloseAction::Hide);
        assert_eq!(on_close(TrayHost::Absent), CloseAction::Quit);
        assert_eq!(on_close(TrayHost::Unknown), CloseAction::Quit);
        assert_eq!(on_close(NoTray.host()), CloseAction::Quit);
    }
}
