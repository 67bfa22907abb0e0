//! The desktop softphone: an Elm-style iced application.

pub mod dial;
pub mod in_call;
pub mod incoming;
pub mod outgoing;
pub mod sign_in;
pub mod theme;
pub mod widget;
