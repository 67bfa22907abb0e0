//! Widgets of our own.
//!
//! [`Shortcuts`] turns Enter and Esc into messages. It is a widget rather
//! than a keyboard subscription so that key presses travel the same road as
//! clicks: through the view. That way the incoming-call dialog can own the
//! keyboard while it shows (a focused text field below it must not eat Esc
//! or Enter), and headless tests that press keys exercise the real path.

use iced::advanced::layout;
use iced::advanced::renderer;
use iced::advanced::widget::{Operation, Tree};
use iced::advanced::{Clipboard, Layout, Shell, Widget};
use iced::keyboard::{self, key};
use iced::{Element, Event, Length, Rectangle, Size, Vector, mouse, overlay};

/// Wraps `content`, publishing messages for Enter and Esc.
pub struct Shortcuts<'a, Message> {
    content: Element<'a, Message>,
    on_enter: Option<Message>,
    on_escape: Option<Message>,
    /// When set, Enter and Esc are handled before `content` sees them, and
    /// `content` never sees them: a modal dialog owns the keyboard.
    modal: bool,
}

/// Wraps `content` in [`Shortcuts`] with no keys bound yet.
pub fn shortcuts<'a, Message>(content: impl Into<Element<'a, Message>>) -> Shortcuts<'a, Message> {
    Shortcuts { content: content.into(), on_enter: None, on_escape: None, modal: false }
}

impl<'a, Message> Shortcuts<'a, Message> {
    /// Publishes `message` on Enter.
    pub fn on_enter(mut self, message: Option<Message>) -> Self {
        self.on_enter = message;
        self
    }

    /// Publishes `message` on Esc.
    pub fn on_escape(mut self, message: Option<Message>) -> Self {
        self.on_escape = message;
        self
    }

    /// Makes the bound keys take precedence over everything inside.
    pub fn modal(mut self, modal: bool) -> Self {
        self.modal = modal;
        self
    }

    /// The message bound to `event`, if it is a press of a bound key.
    fn bound(&self, event: &Event) -> Option<&Message> {
        let Event::Keyboard(keyboard::Event::KeyPressed { key: keyboard::Key::Named(named), repeat, .. }) =
            event
        else {
            return None;
        };
        if *repeat {
            return None;
        }
        match named {
            key::Named::Enter => self.on_enter.as_ref(),
            key::Named::Escape => self.on_escape.as_ref(),
            _ => None,
        }
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
        if !shell.is_event_captured()
            && let Some(message) = self.bound(event)
        {
            shell.publish(message.clone());
            shell.capture_event();
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
    fn clock_reads_like_a_phone() {
        assert_eq!(clock(Duration::from_millis(7_900)), "0:07");
        assert_eq!(clock(Duration::from_secs(754)), "12:34");
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
    }
}
