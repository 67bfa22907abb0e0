//! Who may ring, as the call model needs to know it, and the words of a
//! refusal. A leaf: the model and the screens read it; it reads neither.

/// The response that tells a caller we are on another call.
pub const BUSY: &str = "busy";

/// The response that tells a caller we take no calls now.
pub const DND: &str = "dnd";

/// The history's detail of a call refused in do-not-disturb (and the sign
/// that its "missed call" notification is not wanted).
pub const DND_DETAIL: &str = "do not disturb";

/// The settings the call model decides by, read from the config at each
/// event so that a saved change applies to the next call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Refuse every invitation with [`DND`], without a sound.
    pub do_not_disturb: bool,
    /// Let a second call wait beside the call in progress instead of
    /// refusing it [`BUSY`].
    pub call_waiting: bool,
    /// Play the ringback tone while our call rings at the other side.
    pub ringback: bool,
    /// Our own peer id: "you hung up" and "they hung up" read differently.
    pub me: String,
}
