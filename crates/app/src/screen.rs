//! The screens. Each one reads what it shows (its own form, or a call of
//! the model) and turns clicks and keys into an `Event` for the app; none
//! reaches up.
//!
//! [`Page`] is the screen the user moves between with the tabs (and the
//! sign-in form); while a call is being placed or is up, its screen shows
//! instead. [`Screen`] is what is on show: the page, or the call's screen.

pub mod contacts;
pub mod dial;
pub mod history;
pub mod in_call;
pub mod incoming;
pub mod outgoing;
pub mod settings;
pub mod sign_in;
pub mod status_bar;

use crate::model::{Active, InCall, Outgoing};
use contacts::Contacts;
use dial::Dial;
use history::HistoryScreen;
use settings::Settings;
use sign_in::SignIn;

/// The screen under the calls: the sign-in form, or one of the tabs.
#[derive(Debug, Clone)]
pub enum Page {
    SignIn(SignIn),
    /// The home screen: the dial form, and the missed calls not seen yet.
    Dial(Dial),
    Contacts(Contacts),
    History(HistoryScreen),
    Settings(Settings),
}

/// What the window shows under the incoming-call dialog.
#[derive(Debug, Clone, Copy)]
pub enum Screen<'a> {
    SignIn(&'a SignIn),
    Dial(&'a Dial),
    Contacts(&'a Contacts),
    History(&'a HistoryScreen),
    Settings(&'a Settings),
    Outgoing(&'a Outgoing),
    InCall(&'a InCall),
}

impl<'a> Screen<'a> {
    /// The call's screen if there is a call under way, else `page`.
    pub fn of(page: &'a Page, active: Option<&'a Active>) -> Screen<'a> {
        match (active, page) {
            (Some(Active::Outgoing(call)), _) => Screen::Outgoing(call),
            (Some(Active::InCall(call)), _) => Screen::InCall(call),
            (None, Page::SignIn(form)) => Screen::SignIn(form),
            (None, Page::Dial(form)) => Screen::Dial(form),
            (None, Page::Contacts(screen)) => Screen::Contacts(screen),
            (None, Page::History(screen)) => Screen::History(screen),
            (None, Page::Settings(form)) => Screen::Settings(form),
        }
    }

    /// Its name in the QA timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::SignIn(_) => "sign_in",
            Screen::Dial(_) => "dial",
            Screen::Contacts(_) => "contacts",
            Screen::History(_) => "history",
            Screen::Settings(_) => "settings",
            Screen::Outgoing(_) => "outgoing",
            Screen::InCall(_) => "in_call",
        }
    }

    /// Whether it is one the tabs switch between (no call on it).
    pub fn is_idle(&self) -> bool {
        matches!(self, Screen::Dial(_) | Screen::Contacts(_) | Screen::History(_) | Screen::Settings(_))
    }
}
