//! Widgets of our own.
//!
//! [`Shortcuts`] turns keys into messages (Enter, Esc, the arrows, Delete,
//! Ctrl+digit) and moves the focus between text fields with Tab and
//! Shift+Tab. It is a widget rather than a keyboard subscription so that
//! key presses travel the same road as clicks: through the view. That way
//! the incoming-call dialog can own the keyboard while it shows (a focused
//! text field below it must not eat Esc or Enter), and headless tests that
//! press keys exercise the real path.

use iced::advanced::layout;
use iced::advanced::renderer;
use iced::advanced::widget::operation::{Outcome, focusable};
use iced::advanced::widget::{Operation, Tree};
use iced::advanced::{Clipboard, Layout, Shell, Widget};
use iced::keyboard::{self, key};
use iced::{Element, Event, Length, Rectangle, Size, Vector, mouse, overlay};

/// Wraps `content`, publishing messages for bound keys.
pub struct Shortcuts<'a, Message> {
    content: Element<'a, Message>,
    /// Keys without Ctrl (Enter, Esc, arrows, Delete) and their messages.
    named: Vec<(key::Named, Message)>,
    /// Ctrl + a character (e.g. `1`) and their messages.
    control: Vec<(char, Message)>,
    /// A character without Ctrl (e.g. `m` for mute), either case.
    plain: Vec<(char, Message)>,
    /// When set, the bound keys are handled before `content` sees them, and
    /// `content` never sees them, and Tab moves no focus: a modal dialog owns the keyboard.
    modal: bool,
}

/// Wraps `content` in [`Shortcuts`] with no keys bound yet.
pub fn shortcuts<'a, Message>(content: impl Into<Element<'a, Message>>) -> Shortcuts<'a, Message> {
    Shortcuts {
        content: content.into(),
        named: Vec::new(),
        control: Vec::new(),
        plain: Vec::new(),
        modal: false,
    }
}

impl<'a, Message> Shortcuts<'a, Message> {
    /// Publishes `message` on Enter.
    pub fn on_enter(self, message: Option<Message>) -> Self {
        self.on_key(key::Named::Enter, message)
    }

    /// Publishes `message` on Esc.
    pub fn on_escape(self, message: Option<Message>) -> Self {
        self.on_key(key::Named::Escape, message)
    }

    /// Publishes `message` on `named` (without Ctrl).
    pub fn on_key(mut self, named: key::Named, message: Option<Message>) -> Self {
        if let Some(message) = message {
            self.named.push((named, message));
        }
        self
    }

    /// Publishes `message` on Ctrl + `character`.
    pub fn on_ctrl(mut self, character: char, message: Message) -> Self {
        self.control.push((character, message));
        self
    }

    /// Publishes `message` on `character` without Ctrl, in either case;
    /// only for screens without a text field.
    pub fn on_char(mut self, character: char, message: Message) -> Self {
        self.plain.push((character.to_ascii_lowercase(), message));
        self
    }

    /// Makes the bound keys take precedence over everything inside.
    pub fn modal(mut self, modal: bool) -> Self {
        self.modal = modal;
        self
    }

    /// The message bound to `event`, if it is a press of a bound key.
    fn bound(&self, event: &Event) -> Option<&Message> {
        let Event::Keyboard(keyboard::Event::KeyPressed { key, modifiers, repeat, .. }) = event else {
            return None;
        };
        // Arrows repeat while held (walking a list); Enter and Esc must not.
        let repeats = matches!(key, keyboard::Key::Named(key::Named::ArrowUp | key::Named::ArrowDown));
        if *repeat && !repeats {
            return None;
        }
        match key {
            keyboard::Key::Named(named) if !modifiers.command() => {
                self.named.iter().find(|(n, _)| n == named).map(|(_, m)| m)
            }
            keyboard::Key::Character(c) if modifiers.command() => {
                self.control.iter().find(|(ch, _)| c.as_str().starts_with(*ch)).map(|(_, m)| m)
            }
            keyboard::Key::Character(c) => {
                let c = c.as_str().to_ascii_lowercase();
                self.plain.iter().find(|(ch, _)| c.starts_with(*ch)).map(|(_, m)| m)
            }
            _ => None,
        }
    }

    /// Moves the focus to the next text field (the previous one with
    /// `backwards`), as iced's focus operations do, inside `content`.
    fn move_focus(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        renderer: &iced::Renderer,
        backwards: bool,
    ) {
        let mut operation: Box<dyn Operation> = if backwards {
            Box::new(focusable::focus_previous::<()>())
        } else {
            Box::new(focusable::focus_next::<()>())
        };
        loop {
            self.content.as_widget_mut().operate(&mut tree.children[0], layout, renderer, operation.as_mut());
            match operation.finish() {
                Outcome::Chain(next) => operation = next,
                Outcome::None | Outcome::Some(()) => break,
            }
        }
    }
}

/// Whether `event` is a press of Tab; `Some(true)` with Shift.
fn tab(event: &Event) -> Option<bool> {
    match event {
        Event::Keyboard(keyboard::Event::KeyPressed {
            key: keyboard::Key::Named(key::Named::Tab),
            modifiers,
            ..
        }) => Some(modifiers.shift()),
        _ => None,
    }
}

impl<Message: Clone> Widget<Message, iced::Theme, iced::Renderer> for Shortcuts<'_, Message> {
    fn size(&self) -> Size<Length> {
        self.content.as_widget().size()
    }

    fn children(&self) -> Vec<Tree> {
        vec![Tree::new(&self.content)]
    }

    fn diff(&self, tree: &mut Tree) {
        tree.diff_children(std::slice::from_ref(&self.content));
    }

    fn layout(
        &mut self,
        tree: &mut Tree,
        renderer: &iced::Renderer,
        limits: &layout::Limits,
    ) -> layout::Node {
        self.content.as_widget_mut().layout(&mut tree.children[0], renderer, limits)
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut iced::Renderer,
        theme: &iced::Theme,
        style: &renderer::Style,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
    ) {
        self.content.as_widget().draw(&tree.children[0], renderer, theme, style, layout, cursor, viewport);
    }

    fn operate(
        &mut self,
        tree: &mut Tree,
        layout: Layout<'_>,
        renderer: &iced::Renderer,
        operation: &mut dyn Operation,
    ) {
        self.content.as_widget_mut().operate(&mut tree.children[0], layout, renderer, operation);
    }

    fn update(
        &mut self,
        tree: &mut Tree,
        event: &Event,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        renderer: &iced::Renderer,
        clipboard: &mut dyn Clipboard,
        shell: &mut Shell<'_, Message>,
        viewport: &Rectangle,
    ) {
        if self.modal
            && let Some(message) = self.bound(event)
        {
            shell.publish(message.clone());
            shell.capture_event();
            return;
        }
        self.content.as_widget_mut().update(
            &mut tree.children[0],
            event,
            layout,
            cursor,
            renderer,
            clipboard,
            shell,
            viewport,
        );
        if shell.is_event_captured() {
            return;
        }
        if let Some(message) = self.bound(event) {
            shell.publish(message.clone());
            shell.capture_event();
        } else if let Some(backwards) = tab(event)
            && !self.modal
        {
            self.move_focus(tree, layout, renderer, backwards);
            shell.capture_event();
            shell.request_redraw();
        }
    }

    fn mouse_interaction(
        &self,
        tree: &Tree,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        viewport: &Rectangle,
        renderer: &iced::Renderer,
    ) -> mouse::Interaction {
        self.content.as_widget().mouse_interaction(&tree.children[0], layout, cursor, viewport, renderer)
    }

    fn overlay<'b>(
        &'b mut self,
        tree: &'b mut Tree,
        layout: Layout<'b>,
        renderer: &iced::Renderer,
        viewport: &Rectangle,
        translation: Vector,
    ) -> Option<overlay::Element<'b, Message, iced::Theme, iced::Renderer>> {
        self.content.as_widget_mut().overlay(&mut tree.children[0], layout, renderer, viewport, translation)
    }
}

impl<'a, Message: Clone + 'a> From<Shortcuts<'a, Message>> for Element<'a, Message> {
    fn from(shortcuts: Shortcuts<'a, Message>) -> Self {
        Element::new(shortcuts)
    }
}

/// A duration as a phone shows it: `0:07`, `12:34`, `1:02:03`.
pub fn clock(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

#[cfg(test)]
mod tests {
    use super::{clock, shortcuts};
    use iced::keyboard::{Key, key::Named};
    use iced::widget::{Id, text_input};
    use std::time::Duration;

    #[derive(Debug, Clone, PartialEq)]
    enum Msg {
        Typed(String),
        Escape,
    }

    /// Clicks into a text field wrapped in [`shortcuts`], presses Esc, and
    /// returns the messages.
    fn escape_from_a_focused_field(modal: bool) -> Vec<Msg> {
        // SAFETY: every test that sets it sets the same value.
        unsafe { std::env::set_var("ICED_TEST_BACKEND", "tiny-skia") };
        let field = text_input("", "abc").id("field").on_input(Msg::Typed);
        let view = shortcuts(field).on_escape(Some(Msg::Escape)).modal(modal);
        let mut ui = iced_test::simulator(view);
        ui.click(Id::new("field")).expect("the field");
        ui.tap_key(Key::Named(Named::Escape));
        ui.into_messages().collect()
    }

    #[test]
    fn a_focused_field_keeps_esc_unless_modal() {
        assert_eq!(escape_from_a_focused_field(false), vec![], "the field unfocuses and eats Esc");
        assert_eq!(escape_from_a_focused_field(true), vec![Msg::Escape], "a modal dialog owns Esc");
    }

    #[test]
    fn tab_moves_the_focus_to_the_next_field() {
        // SAFETY: every test that sets it sets the same value.
        unsafe { std::env::set_var("ICED_TEST_BACKEND", "tiny-skia") };
        let first = text_input("", "").id("first").on_input(|v| Msg::Typed(format!("1:{v}")));
        let second = text_input("", "").id("second").on_input(|v| Msg::Typed(format!("2:{v}")));
        let view = shortcuts(iced::widget::column![first, second]);
        let mut ui = iced_test::simulator(view);
        ui.click(Id::new("first")).expect("the first field");
        ui.tap_key(Key::Named(Named::Tab));
        ui.typewrite("x");
        let messages: Vec<Msg> = ui.into_messages().collect();
        assert_eq!(messages, vec![Msg::Typed("2:x".into())]);
    }

    #[test]
    fn clock_reads_like_a_phone() {
        assert_eq!(clock(Duration::from_millis(7_900)), "0:07");
        assert_eq!(clock(Duration::from_secs(754)), "12:34");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
