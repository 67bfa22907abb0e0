//! Running the app: an iced daemon (it outlives its window, so the phone
//! stays up behind the tray icon) that opens its one window at start, and
//! again when the tray's Open or a ringing call wants it back.

use super::{App, Message, Options, Parts, layout, theme};
use iced::{Task, window};

/// Runs the app until it quits: closing its window hides it when a tray
/// host shows the tray icon, so the app is an iced daemon (it outlives its
/// window) that opens the window at start and again when a call rings.
pub fn run(options: Options) -> iced::Result {
    iced::daemon(
        move || {
            let (app, task) = App::new(options.clone(), Parts::real());
            (app, Task::batch([open_window(), task]))
        },
        App::update,
        view_window,
    )
    .title(|app: &App, _window| app.title())
    .subscription(App::subscription)
    .theme(|_: &App, _window| theme::theme())
    .default_font(iced::Font::with_name("Fira Sans"))
    .run()
}

/// The one window's view (a daemon's view is per window).
fn view_window(app: &App, _window: window::Id) -> iced::Element<'_, Message> {
    app.view()
}

/// Opens the app's window (at start, and to bring it back from the tray).
pub(crate) fn open_window() -> Task<Message> {
    window::open(window_settings()).1.map(|_| Message::Done)
}

/// The window: its size, icon and class; closing it is the app's to decide.
fn window_settings() -> window::Settings {
    window::Settings {
        size: iced::Size::new(layout::WINDOW.0, layout::WINDOW.1),
        min_size: Some(iced::Size::new(480.0, 600.0)),
        exit_on_close_request: false,
        icon: theme::window_icon(),
        platform_specific: window::settings::PlatformSpecific {
            application_id: "softphone".into(),
            ..Default::default()
        },
        ..window::Settings::default()
    }
}
