//! The app's look: one theme, a few sizes and the container styles the
//! screens share, so every screen looks like part of the same phone.

use iced::widget::{container, space};
use iced::{Background, Border, Color, Element, Theme, border};

/// The theme of every window.
pub fn theme() -> Theme {
    Theme::Dark
}

/// Space between the rows of a screen.
pub const SPACING: f32 = 12.0;
/// Padding inside cards and around screens.
pub const PADDING: f32 = 24.0;
/// Size of a screen's headline ("Calling bob").
pub const HEADLINE: f32 = 28.0;
/// Size of secondary lines (channel, content).
pub const SMALL: f32 = 14.0;
/// Width of forms and cards.
pub const CARD_WIDTH: f32 = 420.0;
/// Width of the incoming-call dialog: narrower than the card it covers.
pub const DIALOG_WIDTH: f32 = 380.0;

/// A raised panel: the forms and the call screens sit on it.
pub fn card(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.background.weak.color)),
        text_color: Some(palette.background.weak.text),
        // A border rather than a shadow: tiny-skia leaves a shadow's old
        // pixels behind when a card shrinks.
        border: Border { color: palette.background.strong.color, width: 1.0, radius: 12.0.into() },
        ..container::Style::default()
    }
}

/// `body` on a card of the usual width, centred: the call screens.
pub fn centered_card<'a, M: 'a>(body: impl Into<Element<'a, M>>) -> Element<'a, M> {
    container(body).width(CARD_WIDTH).padding(PADDING).center_x(CARD_WIDTH).style(card).into()
}

/// The incoming-call dialog: a card with an accent border, so it stands out
/// from the screen it covers.
pub fn dialog(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        border: Border { color: palette.success.base.color, width: 2.0, radius: 14.0.into() },
        ..card(theme)
    }
}

/// Dims whatever lies under a dialog.
pub fn backdrop(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(Color::from_rgba(0.0, 0.0, 0.0, 0.6))),
        ..container::Style::default()
    }
}

/// The connection bar along the bottom of the window.
pub fn status_bar(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.background.strong.color)),
        text_color: Some(palette.background.strong.text),
        ..container::Style::default()
    }
}

/// A one-line notice: how the last call ended, a setting that was reset.
pub fn notice(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.primary.weak.color)),
        text_color: Some(palette.primary.weak.text),
        border: border::rounded(8),
        ..container::Style::default()
    }
}

/// A row of a list (contacts, history); `selected` is the one the arrow
/// keys picked.
pub fn list_row(theme: &Theme, selected: bool) -> container::Style {
    let palette = theme.extended_palette();
    let (background, border) = if selected {
        (palette.background.strong.color, palette.primary.base.color)
    } else {
        (palette.background.base.color, palette.background.strong.color)
    };
    container::Style {
        background: Some(Background::Color(background)),
        border: Border { color: border, width: 1.0, radius: 8.0.into() },
        ..container::Style::default()
    }
}

/// A small pill: "new" on an unseen missed call, the count on a tab.
pub fn badge(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(palette.danger.base.color)),
        text_color: Some(palette.danger.base.text),
        border: border::rounded(8),
        ..container::Style::default()
    }
}

/// The missed-calls panel on the home screen and the call-waiting prompt:
/// a card with a warm border, so it reads as "needs you".
pub fn attention(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        border: Border { color: palette.danger.base.color, width: 1.0, radius: 10.0.into() },
        ..card(theme)
    }
}

/// The app's icon (`assets/icons/softphone.png`), for the window.
const ICON_PNG: &[u8] = include_bytes!("../../../assets/icons/softphone.png");

/// The window icon, decoded from the embedded PNG; `None` (logged) if it
/// cannot be, which only a broken build would do.
pub fn window_icon() -> Option<iced::window::Icon> {
    let (pixels, width, height) = icon_rgba()?;
    iced::window::icon::from_rgba(pixels, width, height)
        .map_err(|e| tracing::warn!("cannot use the window icon: {e}"))
        .ok()
}

/// The app's icon as 8-bit RGBA pixels, its width and height: the window's
/// icon and the tray's.
pub fn icon_rgba() -> Option<(Vec<u8>, u32, u32)> {
    let decoded = (|| {
        let decoder = png::Decoder::new(std::io::Cursor::new(ICON_PNG));
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        let mut pixels = vec![0; reader.output_buffer_size().ok_or("icon too large")?];
        let info = reader.next_frame(&mut pixels).map_err(|e| e.to_string())?;
        if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
            return Err(format!("icon is {:?} {:?}, not 8-bit RGBA", info.color_type, info.bit_depth));
        }
        pixels.truncate(info.buffer_size());
        Ok((pixels, info.width, info.height))
    })();
    decoded.map_err(|e| tracing::warn!("cannot decode the app icon: {e}")).ok()
}

/// The colour of a status light.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Light {
    Good,
    Waiting,
    Bad,
}

/// A small round status light (drawn, not a glyph: no font has to have it).
pub fn light<'a, Message: 'a>(state: Light) -> Element<'a, Message> {
    container(space())
        .width(10)
        .height(10)
        .style(move |theme: &Theme| {
            let palette = theme.extended_palette();
            let color = match state {
                Light::Good => palette.success.base.color,
                Light::Waiting => palette.warning.base.color,
                Light::Bad => palette.danger.base.color,
            };
            container::Style {
                background: Some(Background::Color(color)),
                border: border::rounded(5),
                ..container::Style::default()
            }
        })
        .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_window_icon_decodes() {
        assert!(super::window_icon().is_some());
    }
}
