//! The dial screen: whom to call, on which channel, with what content.
//!
//! A fresh channel name is suggested for every call, so two calls never
//! share a media channel by accident.

use crate::theme;
use iced::widget::{button, column, container, row, text, text_input};
use iced::{Element, Fill};
use softphone_core::protocol::{MAX_CHANNEL_BYTES, MAX_TEXT_BYTES, is_valid_id};

/// The form.
#[derive(Debug, Clone)]
pub struct Dial {
    pub peer: String,
    pub channel: String,
    pub content: String,
    /// What is wrong with the form, after a Call that could not go.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Peer(String),
    Channel(String),
    Content(String),
    /// Fills the peer field with a suggested peer (the demo peers).
    Pick(String),
    NewChannel,
    Call,
    SignOut,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Call { peer: String, channel: String, content: String },
    SignOut,
}

impl Default for Dial {
    fn default() -> Self {
        Dial { peer: String::new(), channel: suggest_channel(), content: String::new(), error: None }
    }
}

/// A new channel name nobody else is likely to use.
pub fn suggest_channel() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("room-{}", &id[..8])
}

impl Dial {
    /// The form ready to call `peer` again (after a call ended).
    pub fn redial(peer: &str) -> Dial {
        Dial { peer: peer.to_owned(), ..Dial::default() }
    }

    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::Peer(v) => self.peer = v,
            Message::Channel(v) => self.channel = v,
            Message::Content(v) => self.content = v,
            Message::Pick(peer) => self.peer = peer,
            Message::NewChannel => self.channel = suggest_channel(),
            Message::SignOut => return Some(Event::SignOut),
            Message::Call => {
                let peer = self.peer.trim();
                if !is_valid_id(peer) {
                    self.error = Some("Type the peer id of the person to call.".into());
                    return None;
                }
                if self.channel.len() > MAX_CHANNEL_BYTES {
                    self.error = Some(format!("The channel name is at most {MAX_CHANNEL_BYTES} bytes."));
                    return None;
                }
                if self.content.len() > MAX_TEXT_BYTES {
                    self.error = Some(format!("The message is at most {MAX_TEXT_BYTES} bytes."));
                    return None;
                }
                self.error = None;
                return Some(Event::Call {
                    peer: peer.to_owned(),
                    channel: self.channel.trim().to_owned(),
                    content: self.content.clone(),
                });
            }
        }
        None
    }

    /// `me` is who we are signed in as; `suggestions` are peers worth a
    /// one-click button (the demo peers when they run here).
    pub fn view<'a>(&'a self, me: &'a str, suggestions: &'a [String]) -> Element<'a, Message> {
        let header = row![
            text(format!("Signed in as {me}")).width(Fill),
            button(text("Sign out").size(theme::SMALL)).style(button::text).on_press(Message::SignOut),
        ]
        .align_y(iced::Center);
        let label = |t: &'static str| text(t).size(theme::SMALL);
        let mut form = column![
            header,
            text("New call").size(theme::HEADLINE),
            column![
                label("Peer id"),
                text_input("peer id, e.g. echo", &self.peer)
                    .on_input(Message::Peer)
                    .on_submit(Message::Call)
                    .padding(8)
            ]
            .spacing(4),
        ]
        .spacing(theme::SPACING);
        if !suggestions.is_empty() {
            let mut picks = row![label("Try:")].spacing(8).align_y(iced::Center);
            for peer in suggestions {
                picks = picks.push(
                    button(text(peer.as_str()).size(theme::SMALL))
                        .style(button::secondary)
                        .on_press(Message::Pick(peer.clone())),
                );
            }
            form = form.push(picks);
        }
        form = form
            .push(
                column![
                    label("Channel"),
                    row![
                        text_input("room", &self.channel)
                            .on_input(Message::Channel)
                            .on_submit(Message::Call)
                            .padding(8),
                        button(text("New").size(theme::SMALL))
                            .style(button::secondary)
                            .on_press(Message::NewChannel),
                    ]
                    .spacing(8)
                    .align_y(iced::Center),
                ]
                .spacing(4),
            )
            .push(
                column![
                    label("Message (optional)"),
                    text_input("", &self.content)
                        .on_input(Message::Content)
                        .on_submit(Message::Call)
                        .padding(8)
                ]
                .spacing(4),
            );
        if let Some(error) = &self.error {
            form = form.push(text(error.as_str()).style(text::danger));
        }
        form =
            form.push(button(text("Call")).padding([8, 28]).style(button::success).on_press(Message::Call));
        container(form).width(theme::CARD_WIDTH).padding(theme::PADDING).style(theme::card).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_channel_is_suggested_each_time() {
        let a = Dial::default();
        let b = Dial::default();
        assert!(a.channel.starts_with("room-"));
        assert_ne!(a.channel, b.channel);
    }

    #[test]
    fn call_needs_a_valid_peer() {
        let mut dial = Dial::default();
        assert_eq!(dial.update(Message::Call), None);
        assert!(dial.error.is_some());
        dial.update(Message::Pick("echo".into()));
        let channel = dial.channel.clone();
        assert_eq!(
            dial.update(Message::Call),
            Some(Event::Call { peer: "echo".into(), channel, content: String::new() })
        );
    }
}
