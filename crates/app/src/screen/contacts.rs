//! The contacts screen: the people we call, each with a light saying
//! whether they are online (the app subscribes to their presence), a Call
//! button, and a form to add one. Keyboard: Up and Down pick a contact,
//! Enter calls it, Delete removes it; in the form, Enter adds.

use crate::config::Contact;
use crate::theme;
use iced::widget::{button, column, container, row, scrollable, text, text_input};
use iced::{Element, Fill};
use softphone_core::protocol::{MAX_ID_BYTES, is_valid_id};
use std::collections::BTreeMap;

/// The id of the add form's peer-id field (tests type into it).
pub const NEW_PEER_FIELD: &str = "contact-peer";

/// The screen's own state; the contacts themselves live in the config.
#[derive(Debug, Clone, Default)]
pub struct Contacts {
    /// The peer id typed into the add form.
    pub new_peer: String,
    /// The name typed into the add form.
    pub new_name: String,
    /// The contact picked with the arrow keys.
    pub selected: Option<usize>,
    /// What is wrong with the add form.
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    NewPeer(String),
    NewName(String),
    Add,
    Remove(String),
    Call(String),
    /// Up (-1) or Down (+1) in the list.
    Move(i32),
    /// Enter: calls the selected contact.
    CallSelected,
    /// Delete: removes the selected contact.
    RemoveSelected,
}

/// What the screen asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Add(Contact),
    Remove(String),
    Call(String),
}

impl Contacts {
    /// `list` is the contact list as it is now.
    pub fn update(&mut self, message: Message, list: &[Contact]) -> Option<Event> {
        match message {
            Message::NewPeer(v) => self.new_peer = v,
            Message::NewName(v) => self.new_name = v,
            Message::Add => {
                let peer_id = self.new_peer.trim();
                if !is_valid_id(peer_id) {
                    self.error = Some("Type the peer id of the contact (no spaces).".into());
                    return None;
                }
                if list.iter().any(|c| c.peer_id == peer_id) {
                    self.error = Some(format!("{peer_id} is already a contact."));
                    return None;
                }
                if self.new_name.trim().len() > MAX_ID_BYTES {
                    self.error = Some(format!("A name is at most {MAX_ID_BYTES} bytes."));
                    return None;
                }
                let contact = Contact { peer_id: peer_id.to_owned(), name: self.new_name.trim().to_owned() };
                *self = Contacts { selected: Some(list.len()), ..Contacts::default() };
                return Some(Event::Add(contact));
            }
            Message::Remove(peer) => return Some(Event::Remove(peer)),
            Message::Call(peer) => return Some(Event::Call(peer)),
            Message::Move(step) => {
                if !list.is_empty() {
                    let last = list.len() as i32 - 1;
                    let next = self.selected.map_or(if step > 0 { 0 } else { last }, |i| i as i32 + step);
                    self.selected = Some(next.clamp(0, last) as usize);
                }
            }
            Message::CallSelected => {
                return self.selected.and_then(|i| list.get(i)).map(|c| Event::Call(c.peer_id.clone()));
            }
            Message::RemoveSelected => {
                let contact = self.selected.and_then(|i| list.get(i))?;
                let event = Event::Remove(contact.peer_id.clone());
                self.selected = self.selected.filter(|i| i + 1 < list.len());
                return Some(event);
            }
        }
        None
    }

    pub fn view<'a>(
        &'a self,
        list: &'a [Contact],
        presence: &BTreeMap<String, bool>,
    ) -> Element<'a, Message> {
        let mut rows = column![].spacing(6);
        if list.is_empty() {
            rows = rows.push(text("No contacts yet: add someone below.").size(theme::SMALL));
        }
        for (index, contact) in list.iter().enumerate() {
            let (light, state) = match presence.get(&contact.peer_id) {
                Some(true) => (theme::Light::Good, "online"),
                Some(false) => (theme::Light::Bad, "offline"),
                None => (theme::Light::Waiting, "unknown"),
            };
            let mut who = column![text(contact.label())];
            if contact.label() != contact.peer_id {
                who = who.push(text(contact.peer_id.as_str()).size(12));
            }
            let line = row![
                theme::light(light),
                who.width(Fill),
                text(state).size(12),
                button(text("Call").size(theme::SMALL))
                    .style(button::success)
                    .on_press(Message::Call(contact.peer_id.clone())),
                button(text("Remove").size(theme::SMALL))
                    .style(button::text)
                    .on_press(Message::Remove(contact.peer_id.clone())),
            ]
            .spacing(10)
            .align_y(iced::Center);
            let selected = self.selected == Some(index);
            rows = rows.push(container(line).padding([4, 8]).style(move |t| theme::list_row(t, selected)));
        }
        let form = column![
            text("Add a contact").size(theme::SMALL),
            row![
                text_input("peer id", &self.new_peer)
                    .id(NEW_PEER_FIELD)
                    .on_input(Message::NewPeer)
                    .on_submit(Message::Add)
                    .padding(8),
                text_input("name (optional)", &self.new_name)
                    .on_input(Message::NewName)
                    .on_submit(Message::Add)
                    .padding(8),
                button(text("Add")).style(button::primary).padding([8, 16]).on_press(Message::Add),
            ]
            .spacing(8)
            .align_y(iced::Center),
        ]
        .spacing(4);
        let mut body = column![
            text("Contacts").size(theme::HEADLINE),
            scrollable(rows).height(iced::Length::Fill),
            form,
        ]
        .spacing(theme::SPACING);
        if let Some(error) = &self.error {
            body = body.push(text(error.as_str()).style(text::danger));
        }
        body = body.push(text("Up/Down pick, Enter calls, Delete removes").size(12));
        container(body).width(theme::CARD_WIDTH).padding(theme::PADDING).style(theme::card).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<Contact> {
        ["bob", "carol"].map(|p| Contact { peer_id: p.into(), name: String::new() }).to_vec()
    }

    #[test]
    fn add_checks_the_peer_id_and_duplicates() {
        let mut screen = Contacts { new_peer: "bad id".into(), ..Contacts::default() };
        assert_eq!(screen.update(Message::Add, &list()), None);
        screen.update(Message::NewPeer("bob".into()), &list());
        assert_eq!(screen.update(Message::Add, &list()), None);
        assert!(screen.error.as_deref().unwrap().contains("already"));
        screen.update(Message::NewPeer(" dave ".into()), &list());
        screen.update(Message::NewName("Dave".into()), &list());
        assert_eq!(
            screen.update(Message::Add, &list()),
            Some(Event::Add(Contact { peer_id: "dave".into(), name: "Dave".into() }))
        );
        assert!(screen.new_peer.is_empty() && screen.error.is_none());
    }

    #[test]
    fn arrows_pick_and_enter_calls() {
        let mut screen = Contacts::default();
        assert_eq!(screen.update(Message::CallSelected, &list()), None);
        screen.update(Message::Move(1), &list());
        screen.update(Message::Move(1), &list());
        screen.update(Message::Move(1), &list());
        assert_eq!(screen.update(Message::CallSelected, &list()), Some(Event::Call("carol".into())));
        screen.update(Message::Move(-1), &list());
        assert_eq!(screen.update(Message::RemoveSelected, &list()), Some(Event::Remove("bob".into())));
    }
}
