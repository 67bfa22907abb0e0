//! The sign-in screen: server, peer id, optional token, device label.
//!
//! It only collects and checks the fields; signing in is the parent's job,
//! asked for with [`Event::SignIn`].

use crate::config::{AppConfig, DEFAULT_SERVER_URL, ServerList};
use crate::theme;
use iced::widget::{button, column, container, row, space, text, text_input};
use iced::{Element, Fill};
use softphone_core::protocol::{MAX_ID_BYTES, is_valid_id};

/// What the user typed.
#[derive(Debug, Clone, Default)]
pub struct SignIn {
    /// The servers as a comma list (the nodes of a cluster); empty means
    /// the default server (hosted in-process when needed).
    pub server_url: String,
    pub peer_id: String,
    pub token: String,
    pub device: String,
    /// Why the last attempt failed, or what is wrong with a field.
    pub error: Option<String>,
    /// A sign-in is under way: the button waits.
    pub busy: bool,
}

/// What the parent is asked to do with a checked form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Empty means [`DEFAULT_SERVER_URL`].
    pub servers: ServerList,
    pub peer_id: String,
    pub token: String,
    pub device: String,
}

#[derive(Debug, Clone)]
pub enum Message {
    ServerUrl(String),
    PeerId(String),
    Token(String),
    Device(String),
    Submit,
    /// Opens the settings (sound, do-not-disturb...) before signing in.
    Settings,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SignIn(Credentials),
    OpenSettings,
}

impl SignIn {
    /// The form filled from the remembered config.
    pub fn from_config(config: &AppConfig) -> SignIn {
        SignIn {
            server_url: config.servers.to_text(),
            peer_id: config.peer_id.clone(),
            token: config.token.clone(),
            device: config.device.clone(),
            error: None,
            busy: false,
        }
    }

    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::ServerUrl(v) => self.server_url = v,
            Message::PeerId(v) => self.peer_id = v,
            Message::Token(v) => self.token = v,
            Message::Device(v) => self.device = v,
            Message::Settings => return (!self.busy).then_some(Event::OpenSettings),
            Message::Submit => {
                if self.busy {
                    return None;
                }
                match self.check() {
                    Ok(credentials) => {
                        self.error = None;
                        return Some(Event::SignIn(credentials));
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
        None
    }

    /// The fields as credentials, or a sentence saying what to fix.
    fn check(&self) -> Result<Credentials, String> {
        let peer_id = self.peer_id.trim();
        if !is_valid_id(peer_id) {
            return Err("Your peer id must be 1 to 64 letters, digits or symbols, without spaces.".into());
        }
        let servers = ServerList::from_text(&self.server_url);
        servers.check()?;
        let device = self.device.trim();
        if device.len() > MAX_ID_BYTES {
            return Err(format!("The device label is at most {MAX_ID_BYTES} bytes."));
        }
        Ok(Credentials {
            servers,
            peer_id: peer_id.to_owned(),
            token: self.token.trim().to_owned(),
            device: device.to_owned(),
        })
    }

    pub fn view(&self) -> Element<'_, Message> {
        let field = |label: &'static str, input: text_input::TextInput<'static, Message>| {
            column![text(label).size(theme::SMALL), input.on_submit(Message::Submit).padding(8)].spacing(4)
        };
        let server_hint = format!("{DEFAULT_SERVER_URL} (default)");
        let mut sign_in = button(text("Sign in")).padding([8, 20]).style(button::primary);
        if !self.busy {
            sign_in = sign_in.on_press(Message::Submit);
        }
        let mut form = column![
            text("Sign in").size(theme::HEADLINE),
            field("Peer id", text_input("alice", &self.peer_id).on_input(Message::PeerId)),
            field("Server", text_input(&server_hint, &self.server_url).on_input(Message::ServerUrl)),
            text(
                "Empty: the default server, hosted by this app when none runs there. \
                 Several nodes of one cluster: separate them with commas."
            )
            .size(12),
            field(
                "Token (optional)",
                text_input("none needed on an open server", &self.token)
                    .secure(true)
                    .on_input(Message::Token)
            ),
            field("Device label", text_input("laptop", &self.device).on_input(Message::Device)),
        ]
        .spacing(theme::SPACING);
        if let Some(error) = &self.error {
            form = form.push(text(error.clone()).style(text::danger));
        }
        let settings =
            button(text("Settings").size(theme::SMALL)).style(button::text).on_press(Message::Settings);
        let action = if self.busy { Element::from(text("Signing in...")) } else { Element::from(sign_in) };
        form = form.push(row![action, space().width(Fill), settings].align_y(iced::Center));
        container(form).width(theme::CARD_WIDTH).padding(theme::PADDING).style(theme::card).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_checks_the_peer_id() {
        let mut form = SignIn { peer_id: "has space".into(), ..SignIn::default() };
        assert_eq!(form.update(Message::Submit), None);
        assert!(form.error.is_some());
        form.update(Message::PeerId(" alice ".into()));
        let Some(Event::SignIn(c)) = form.update(Message::Submit) else { panic!() };
        assert_eq!(c.peer_id, "alice");
        assert!(c.servers.is_default());
        assert!(form.error.is_none());
    }

    #[test]
    fn server_must_be_a_websocket_url() {
        let mut form = SignIn { peer_id: "a".into(), server_url: "http://x".into(), ..SignIn::default() };
        assert_eq!(form.update(Message::Submit), None);
        // Several nodes: each is checked, and they go on as a list.
        form.update(Message::ServerUrl("ws://a:1/, http://b".into()));
        assert_eq!(form.update(Message::Submit), None);
        assert!(form.error.as_deref().is_some_and(|e| e.contains("http://b")), "{:?}", form.error);
        form.update(Message::ServerUrl("ws://a:1/, ws://b:2/".into()));
        let Some(Event::SignIn(c)) = form.update(Message::Submit) else { panic!("{:?}", form.error) };
        assert_eq!(c.servers.urls(), ["ws://a:1/", "ws://b:2/"]);
    }
}
