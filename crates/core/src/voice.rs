//! Built-in voice for an accepted call, UI-free and sans-IO: the packet
//! format, end-to-end encryption, Opus, the jitter buffer, and audio
//! sources and sinks (devices, WAV files, tone, silence).
//!
//! Data flows one way each direction:
//! microphone -> Opus -> seal -> (transport) -> open -> jitter buffer ->
//! Opus -> speaker. The session is a state machine fed frames, packets and
//! the time; it owns no socket and reads no clock, so the relay transport,
//! the app and the headless peer drive it alike. docs/media.md describes
//! the pipeline, the packet format and the measured figures.

pub mod audio;
pub mod call;
pub mod codec;
pub mod crypto;
pub mod cue;
pub mod jitter;
pub mod level;
pub mod packet;
pub mod processing;
pub mod report;
pub mod safety;
pub mod session;

#[cfg(test)]
mod echo_rig_score;
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod processing_rig;

pub use call::{AudioEnds, CallLink, CallStats, Pacing, VoiceCall};
pub use processing::ProcessingConfig;
pub use session::{Quality, VoiceConfig, VoiceControl, VoiceReceiver, VoiceSender, VoiceSession};
