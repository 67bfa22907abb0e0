//! The app's calls, without any UI: the invitation ringing here, the one
//! waiting beside a call, and the call being placed or up, each one
//! [`Call`] with its facts.
//!
//! Everything that happens to a call is an [`Event`]: an SDK event, the
//! reply to one of our requests, or what the user asked for on a screen.
//! [`Calls::on_event`] changes the state and returns the [`Effect`]s the
//! app must carry out (send a request, record the call in the history,
//! show a sentence, ask for attention); it does nothing itself. The tone
//! to play and the media session to run are read off the state
//! ([`Calls::tone`], [`Calls::media`]), so no way of ending an invitation
//! can leave the ringtone playing.
//!
//! Every event about a call is checked against the call it names by call
//! id: an event about any other call is stale (the user already moved on)
//! and changes nothing.
//!
//! - [`call`]: the call values and their stages.
//! - [`policy`]: who may ring, and the words of a refusal.
//! - `ringing` and `placing`: what each event does to calls coming in and
//!   going out.

pub mod call;
mod placing;
pub mod policy;
mod ringing;

pub use call::{Active, Call, InCall, Incoming, Outgoing, OutgoingStage, RingStage};
pub use policy::Policy;

use crate::call_history::{HistoryEntry, Outcome};
use crate::media_hook::{CallFacts, MediaStatus};
use crate::ringtone::Tone;
use softphone_core::protocol::ErrorCode;
use softphone_core::sdk::{self, HangupReason};
use std::time::Instant;

/// Which of our requests about a call a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRequest {
    Invite,
    Cancel,
    Accept,
    Refuse,
    HangUp,
}

/// Something that happened to our calls.
#[derive(Debug, Clone)]
pub enum Event {
    /// An SDK event (events that are not about a call change nothing).
    Sdk(sdk::Event),
    /// The SDK's reply to one of our requests.
    Replied { call_id: String, request: CallRequest, result: Result<(), sdk::Error> },
    /// Our invitation to `peer` went out as `call_id`.
    Placed { call_id: String, peer: String, channel: String, content: String },
    /// Accept on the incoming-call dialog.
    Accept { call_id: String },
    /// Refuse on the incoming-call dialog.
    Refuse { call_id: String },
    /// "End call and answer" on the call-waiting prompt.
    AcceptWaiting { call_id: String },
    /// Decline on the call-waiting prompt.
    RefuseWaiting { call_id: String },
    /// Cancel on the outgoing-call screen.
    Cancel { call_id: String },
    /// Hang up on the call screen.
    HangUp { call_id: String },
    /// The session went (signed out, or lost for good): what it had ends
    /// here, and nothing can be sent about it any more.
    SessionEnded,
    /// The app is closing (window closed, SIGTERM, SIGINT): the calls end,
    /// and the other sides are told at once.
    Closing,
}

/// What the app must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this request; its reply comes back as [`Event::Replied`].
    Ask(Ask),
    /// Add the call to the history (an answered call: complete its row).
    Record(HistoryEntry),
    /// Write the call to the history as answered now, before it ends, so
    /// that a crash mid-call leaves it there.
    RecordAnswered(HistoryEntry),
    /// Add the call to the history unless it has a row already (an
    /// invitation sent anew after a reconnect is not a second call).
    RecordOnce(HistoryEntry),
    /// Show this sentence in the notice bar (`None`: clear it).
    Notice(Option<String>),
    /// A desktop notification, for when the window is not in front.
    Notify { summary: &'static str, body: String },
    /// Ask the window manager for the user's attention (`false`: stop).
    Attention(bool),
    /// Back to the home screen, ready to call this peer again.
    Redial(String),
}

/// A request about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Accept(String),
    /// Refuses with `response` ([`policy::BUSY`], [`policy::DND`] or nothing).
    Refuse {
        call_id: String,
        response: String,
    },
    Cancel(String),
    HangUp(String),
}

impl Ask {
    pub fn call_id(&self) -> &str {
        match self {
            Ask::Accept(id) | Ask::Cancel(id) | Ask::HangUp(id) => id,
            Ask::Refuse { call_id, .. } => call_id,
        }
    }

    /// Which request it is, as its reply is tagged.
    pub fn request(&self) -> CallRequest {
        match self {
            Ask::Accept(_) => CallRequest::Accept,
            Ask::Refuse { .. } => CallRequest::Refuse,
            Ask::Cancel(_) => CallRequest::Cancel,
            Ask::HangUp(_) => CallRequest::HangUp,
        }
    }
}

/// Every call the app knows of.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// The invitation ringing here: the incoming-call dialog.
    ringing: Option<Incoming>,
    /// A second invitation during a call (call waiting): a prompt beside
    /// the call, not over it.
    waiting: Option<Incoming>,
    /// The call we are placing, or the call that is up.
    active: Option<Active>,
}

impl Calls {
    /// Applies `event`; returns what the app must do about it.
    pub fn on_event(&mut self, event: Event, policy: &Policy, now: Instant) -> Vec<Effect> {
        let was_ringing = self.ringing.is_some();
        let mut effects = Vec::new();
        let out = &mut effects;
        match event {
            Event::Sdk(event) => self.on_sdk(event, policy, now, out),
            Event::Replied { call_id, request, result } => self.on_reply(call_id, request, result, now, out),
            Event::Placed { call_id, peer, channel, content } => {
                self.placed(call_id, peer, channel, content, now, out)
            }
            Event::Accept { call_id } => self.accept(&call_id, out),
            Event::Refuse { call_id } => self.refuse(&call_id, out),
            Event::AcceptWaiting { call_id } => self.accept_waiting(&call_id, now, out),
            Event::RefuseWaiting { call_id } => self.refuse_waiting(&call_id, out),
            Event::Cancel { call_id } => self.cancel(&call_id, out),
            Event::HangUp { call_id } => self.hang_up(&call_id, now, out),
            Event::SessionEnded => self.end_all("signed out", false, now, out),
            Event::Closing => self.end_all("the app was closed", true, now, out),
        }
        // A waiting call whose first call has ended rings like any other.
        if self.ringing.is_none() && !self.in_call() && self.waiting.is_some() {
            self.ringing = self.waiting.take();
            effects.push(Effect::Attention(true));
        }
        if was_ringing && self.ringing.is_none() {
            // The window manager may keep the urgency hint until told otherwise.
            effects.push(Effect::Attention(false));
        }
        effects
    }

    fn on_sdk(&mut self, event: sdk::Event, policy: &Policy, now: Instant, out: &mut Vec<Effect>) {
        use sdk::Event as E;
        match event {
            E::RemoteInvitationReceived { call_id, caller_id, content, channel_id, expires_in } => {
                let call = Call::new(
                    call_id,
                    caller_id,
                    channel_id,
                    content,
                    softphone_core::protocol::Role::Callee,
                    now,
                );
                self.invited(call, now + expires_in, policy, out)
            }
            E::RemoteInvitationAccepted { call_id } => self.answered(&call_id, now, out),
            E::RemoteInvitationRefused { call_id } => {
                self.take_ringing(&call_id);
            }
            E::RemoteInvitationCanceled { call_id, reason } => {
                self.invitation_canceled(&call_id, reason, out)
            }
            E::RemoteInvitationFailure { call_id, reason } => self.invitation_failed(&call_id, reason, out),
            E::LocalInvitationReceivedByPeer { call_id } => self.rings_there(&call_id),
            E::LocalInvitationAccepted { call_id, response, .. } => {
                self.accepted(&call_id, response, now, out)
            }
            E::LocalInvitationRefused { call_id, response } => self.refused(&call_id, &response, out),
            E::LocalInvitationCanceled { call_id } => {
                if self.outgoing(&call_id).is_some() {
                    self.end_outgoing(Outcome::Canceled, "", "Call canceled".into(), out);
                }
            }
            E::LocalInvitationFailure { call_id, reason } => self.failed(&call_id, reason, out),
            E::HungUp { call_id, reason, by } => self.hung_up(&call_id, reason, &by, policy, now, out),
            E::Connection { .. } | E::Presence { .. } | E::TokenExpiring { .. } => {}
        }
    }

    fn on_reply(
        &mut self,
        call_id: String,
        request: CallRequest,
        result: Result<(), sdk::Error>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let error = match result {
            Ok(()) if request == CallRequest::Accept => return self.answered(&call_id, now, out),
            Ok(()) => return,
            Err(error) => error,
        };
        tracing::info!(%call_id, ?request, "request failed: {error}");
        match request {
            CallRequest::Invite => self.invite_failed(&call_id, &error, out),
            CallRequest::Cancel => self.cancel_failed(&call_id, &error, out),
            CallRequest::Accept => self.accept_failed(&call_id, &error, out),
            CallRequest::Refuse | CallRequest::HangUp => {}
        }
    }

    /// The other side hung up, or we did and the server says so.
    fn hung_up(
        &mut self,
        call_id: &str,
        reason: HangupReason,
        by: &str,
        policy: &Policy,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let Some(call) = self.take_in_call(call_id) else { return };
        let peer = call.call.peer().to_owned();
        let sentence = match reason {
            HangupReason::Hangup if by == policy.me => format!("Call with {peer} ended"),
            HangupReason::Hangup => format!("{peer} hung up"),
            HangupReason::PeerOffline => format!("Lost the connection to {peer}; the call ended"),
            HangupReason::EndedWhileDisconnected => {
                format!("The call with {peer} ended while you were disconnected")
            }
            HangupReason::Other => format!("Call with {peer} ended"),
        };
        out.push(Effect::Record(call.record(now)));
        out.push(Effect::Notice(Some(sentence)));
        out.push(Effect::Redial(peer));
    }

    /// Hang up on the call screen.
    fn hang_up(&mut self, call_id: &str, now: Instant, out: &mut Vec<Effect>) {
        let Some(call) = self.take_in_call(call_id) else { return };
        let peer = call.call.peer().to_owned();
        out.push(Effect::Notice(Some(format!("Call with {peer} ended"))));
        out.push(Effect::Record(call.record(now)));
        out.push(Effect::Redial(peer));
        out.push(Effect::Ask(Ask::HangUp(call_id.to_owned())));
    }

    /// Ends every call: the one up (answered, until now), the one being
    /// placed (canceled), what rings (missed); `tell` also tells the other
    /// sides (the session is still there to do it): hung up, canceled,
    /// refused.
    fn end_all(&mut self, why: &str, tell: bool, now: Instant, out: &mut Vec<Effect>) {
        match self.active.take() {
            Some(Active::InCall(call)) => {
                out.push(Effect::Record(call.record(now)));
                if tell {
                    out.push(Effect::Ask(Ask::HangUp(call.call.call_id().to_owned())));
                }
            }
            Some(Active::Outgoing(call)) => {
                out.push(Effect::Record(call.call.record(Outcome::Canceled, why, 0)));
                if tell && call.stage != OutgoingStage::Canceling {
                    out.push(Effect::Ask(Ask::Cancel(call.call.call_id().to_owned())));
                }
            }
            None => {}
        }
        for ringing in [self.ringing.take(), self.waiting.take()].into_iter().flatten() {
            out.push(Effect::Record(ringing.call.record(Outcome::Missed, why, 0)));
            if tell {
                let call_id = ringing.call.facts.call_id;
                out.push(Effect::Ask(Ask::Refuse { call_id, response: String::new() }));
            }
        }
    }

    /// The incoming-call dialog, if one shows.
    pub fn ringing(&self) -> Option<&Incoming> {
        self.ringing.as_ref()
    }

    /// The call-waiting prompt, if a second call rings during a call.
    pub fn waiting(&self) -> Option<&Incoming> {
        self.waiting.as_ref()
    }

    /// The call being placed or up.
    pub fn active(&self) -> Option<&Active> {
        self.active.as_ref()
    }

    /// Whether a call is up.
    pub fn in_call(&self) -> bool {
        matches!(self.active, Some(Active::InCall(_)))
    }

    /// Whether a new call may be placed: nothing rings, nothing is under way.
    pub fn can_place(&self) -> bool {
        self.ringing.is_none() && self.active.is_none()
    }

    /// The ringtone while an invitation rings here, the call-waiting tone
    /// while a second call waits, the ringback while ours rings there (if
    /// wanted), else silence.
    pub fn tone(&self, policy: &Policy) -> Option<Tone> {
        if self.ringing.as_ref().is_some_and(|d| d.stage == RingStage::Ringing) {
            return Some(Tone::Ringtone);
        }
        if self.waiting.is_some() {
            return Some(Tone::CallWaiting);
        }
        match &self.active {
            Some(Active::Outgoing(call)) if call.stage == OutgoingStage::Ringing && policy.ringback => {
                Some(Tone::Ringback)
            }
            _ => None,
        }
    }

    /// The call whose media session should run: the one that is up.
    pub fn media(&self) -> Option<&CallFacts> {
        match &self.active {
            Some(Active::InCall(call)) => Some(&call.call.facts),
            _ => None,
        }
    }

    /// What the media session of the call up last said.
    pub fn set_media_status(&mut self, status: MediaStatus) {
        if let Some(Active::InCall(call)) = &mut self.active {
            call.media = status;
        }
    }

    /// Removes the call that is up if it is `call_id`.
    fn take_in_call(&mut self, call_id: &str) -> Option<InCall> {
        match self.active.take() {
            Some(Active::InCall(call)) if call.call.call_id() == call_id => Some(call),
            other => {
                self.active = other;
                None
            }
        }
    }
}

/// A sentence for a failed request.
pub fn describe_error(error: &sdk::Error) -> String {
    match error {
        sdk::Error::NotConnected => "not connected to the server right now".into(),
        sdk::Error::ConnectionLost => "the connection dropped".into(),
        sdk::Error::Timeout(_) => "the server did not answer in time".into(),
        sdk::Error::InvalidArgument(m) if m.contains("own peer_id") => "you cannot call yourself".into(),
        sdk::Error::Server(e) => match e.code {
            ErrorCode::TooManyCalls => "too many calls at once".into(),
            ErrorCode::RateLimited => "too many requests; try again in a moment".into(),
            ErrorCode::AlreadyEnded => "the call had already ended".into(),
            _ => e.message.clone(),
        },
        sdk::Error::AlreadyEnd(_) => "the call had already ended".into(),
        other => other.to_string(),
    }
}
