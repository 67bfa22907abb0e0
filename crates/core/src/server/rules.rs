//! The call rules of the protocol, decided once for both kinds of server.
//!
//! A pure decision core, in the spirit of a sans-IO state machine: each
//! rule is given the call as its store holds it (or its absence), the
//! request or the deadline, the counts it depends on and the time, and
//! returns the change to the call with the events it causes ([`Notice`]),
//! or the protocol error. Nothing here locks, reads, writes or sends.
//!
//! The single node ([`Hub`](super::hub::Hub)) applies a decision to memory
//! under its one lock. A cluster node ([`ClusterHub`](super::cluster::ClusterHub))
//! decides from the record it remembers or reads and commits the result to
//! Redis with a compare-and-set; its Lua scripts keep atomicity and
//! indexes, and check only what the decision was made from (the record
//! still as read, a cap still not reached), never which rule applies.
//!
//! Every error sentence of a call rule is written here and nowhere else.
//! A request is one function of the same shape: `media_reveal` (v1.2;
//! only the caller, only once accepted, passed on to the callee's
//! sessions), for example, takes the live call or `None` and returns the
//! one [`Notice`] for the callee or [`Refused`] ([`reveal`]); a single node
//! sends the notice under its lock, a cluster node commits it as an update
//! that leaves the record as read (so it goes out only if the call is still
//! accepted). Deadlines are in `rules/deadlines.rs`, logins and departures
//! in `rules/arrivals.rs`.

use super::calls::{Ack, Call, Ended, Moment, Phase};
use super::outbound::{Outbound, encode};
use crate::protocol::{
    CancelReason, ErrorCode, FailureReason, HangupReason, MAX_RINGING_PER_CALLEE, MAX_SUBSCRIPTIONS,
    MediaInfo, ProtocolError, Role, ServerMessage,
};
use std::sync::Arc;
use std::time::Duration;

mod arrivals;
mod deadlines;
#[cfg(test)]
mod tests;

pub(super) use arrivals::{arrive, found_online, went_offline};
pub(super) use deadlines::{end_by, lapsed};

/// An event for every session of a peer, decided with a call's change.
#[derive(Debug)]
pub(super) struct Notice {
    /// The peer whose sessions get it.
    pub to: Arc<str>,
    pub text: Outbound,
    /// Whether the peer has seen the call: only then is the event kept for
    /// it while it has no session.
    pub seen: bool,
    /// Whether the session that asked is skipped (it has its reply).
    pub skip_asker: bool,
}

impl Notice {
    fn to(peer: &Arc<str>, text: &Outbound, seen: bool) -> Notice {
        Notice { to: peer.clone(), text: text.clone(), seen, skip_asker: false }
    }

    fn but_asker(self) -> Notice {
        Notice { skip_asker: true, ..self }
    }
}

/// The events of one decision: at most one for each party, kept inline so
/// that deciding allocates nothing for them.
#[derive(Debug, Default)]
pub(super) struct Notices([Option<Notice>; 2]);

impl Notices {
    pub fn one(notice: Notice) -> Notices {
        Notices([Some(notice), None])
    }

    pub fn two(first: Notice, second: Notice) -> Notices {
        Notices([Some(first), Some(second)])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Notice> {
        self.0.iter().flatten()
    }
}

impl IntoIterator for Notices {
    type Item = Notice;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Notice>, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter().flatten()
    }
}

/// How a call ended, for the log and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Canceled,
    Refused,
    Failed(FailureReason),
    HungUp(HangupReason),
}

impl Outcome {
    /// The outcome as the log and the metrics name it, for a call in `phase`
    /// (a ringing call hung up, which never happens, is named hung up).
    pub fn name<T>(self, phase: &Phase<T>) -> &'static str {
        match self {
            Outcome::HungUp(_) if matches!(phase, Phase::Ringing { .. }) => "hung_up",
            Outcome::Canceled => "canceled",
            Outcome::Refused => "refused",
            Outcome::Failed(FailureReason::PeerOffline) => "peer_offline",
            Outcome::Failed(FailureReason::CallerOffline) => "caller_offline",
            Outcome::Failed(FailureReason::PeerNoResponse) => "peer_no_response",
            Outcome::Failed(_) => "expired",
            Outcome::HungUp(HangupReason::Hangup) => "hung_up",
            Outcome::HungUp(_) => "lost",
        }
    }
}

/// A decision that ends a live call.
#[derive(Debug)]
pub(super) struct Ending {
    pub outcome: Outcome,
    pub notices: Notices,
    /// The peer that must still have no session for the end to hold: an
    /// offline grace ends a call only if its peer did not come back.
    pub while_offline: Option<Arc<str>>,
}

/// Why a request about a call is refused.
#[derive(Debug)]
pub(super) enum Refused {
    /// With this error.
    Now(ProtocolError),
    /// The call is not live for the asker in the role the request needs:
    /// the error depends on what is remembered of the ended call, which a
    /// store reads only then ([`Refused::given`]).
    NotLive(Asked),
}

/// What a request refused for a call that is not live asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Asked {
    /// Something only a live call's party in this role may do.
    As(Role),
    /// A hang-up, which either party of an accepted call may do.
    Hangup,
    /// A `media_reveal` (v1.2), which only the caller of an accepted call sends.
    Reveal,
}

impl Refused {
    /// The error, given what is remembered of the ended call `call_id`
    /// (needed only for [`Refused::NotLive`]).
    pub fn given(self, ended: Option<&Ended>, call_id: &str, peer: &str) -> ProtocolError {
        match self {
            Refused::Now(e) => e,
            Refused::NotLive(asked) => not_live(asked, ended, call_id, peer),
        }
    }
}

pub(super) fn err(code: ErrorCode, message: String) -> ProtocolError {
    ProtocolError::new(code, message)
}

/// A peer at its cap on live calls (inviting, or accepting as the callee).
pub(super) fn too_many_calls(max: usize) -> ProtocolError {
    err(ErrorCode::TooManyCalls, format!("you already take part in {max} live calls"))
}

/// Whether a peer with `sessions` already may not log in once more (`max`:
/// the cap). A store that checks it atomically (Redis) is handed `max`.
pub(super) fn session_cap_reached(sessions: usize, max: usize) -> bool {
    sessions >= max
}

/// A login beyond the sessions a peer may have.
pub(super) fn too_many_sessions(peer: &str, max: usize) -> ProtocolError {
    err(ErrorCode::TooManySessions, format!("{peer} already has {max} sessions"))
}

/// A subscription beyond the peers a session may watch.
pub(super) fn too_many_subscriptions() -> ProtocolError {
    err(ErrorCode::TooManySubscriptions, format!("a session may watch at most {MAX_SUBSCRIPTIONS} peers"))
}

/// The error for a request about `call_id`, which is not live for `peer`
/// as `asked`, from what is remembered of it (`ended`).
pub(super) fn not_live(asked: Asked, ended: Option<&Ended>, call_id: &str, peer: &str) -> ProtocolError {
    let role = match asked {
        Asked::As(role) => role,
        Asked::Reveal => {
            return match ended {
                Some(e) if *e.caller == *peer => {
                    err(ErrorCode::AlreadyEnded, format!("call {call_id} has ended"))
                }
                _ => no_call_to_reveal_in(call_id),
            };
        }
        Asked::Hangup => {
            return match ended {
                Some(e) if e.accepted && (*e.caller == *peer || *e.callee == *peer) => {
                    err(ErrorCode::AlreadyEnded, format!("call {call_id} was already hung up"))
                }
                _ => no_accepted_call(call_id),
            };
        }
    };
    let mine = |e: &Ended| match role {
        Role::Caller => *e.caller == *peer,
        Role::Callee => *e.callee == *peer,
    };
    match ended {
        Some(e) if mine(e) && role == Role::Caller && e.accepted => was_accepted(call_id),
        Some(e) if mine(e) => err(ErrorCode::AlreadyEnded, format!("call {call_id} has ended")),
        _ => {
            let role = if role == Role::Caller { "caller" } else { "callee" };
            err(ErrorCode::NotFound, format!("no call {call_id} in which you are the {role}"))
        }
    }
}

fn was_accepted(call_id: &str) -> ProtocolError {
    err(ErrorCode::AlreadyAccepted, format!("call {call_id} was accepted"))
}

fn no_call_to_reveal_in(call_id: &str) -> ProtocolError {
    err(ErrorCode::NotFound, format!("no accepted call {call_id} in which you are the caller"))
}

fn no_accepted_call(call_id: &str) -> ProtocolError {
    err(ErrorCode::NotFound, format!("no accepted call {call_id} of yours"))
}

/// The live call, if `peer` is its party in `role`; else refused as not live.
pub(super) fn live_for<'c, T: Moment>(
    call: Option<&'c Call<T>>,
    peer: &str,
    role: Role,
) -> Result<&'c Call<T>, Refused> {
    match call {
        Some(call) if call.role_of(peer) == Some(role) => Ok(call),
        _ => Err(Refused::NotLive(Asked::As(role))),
    }
}

/// Milliseconds in `d`, rounded up: time left that is not zero never reads 0.
fn millis_up(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000) as u64
}

/// The `invitation` event for a ringing call, with the time it has left.
/// Every decision first ends the calls whose deadline has passed, so a call
/// still ringing has time left, and the invitation says at least 1 ms.
pub(super) fn invitation<T: Moment>(call: &Call<T>, now: T) -> Outbound {
    let left = match call.phase {
        Phase::Ringing { expires, .. } => expires.since(now),
        Phase::Accepted { .. } => Duration::ZERO,
    };
    encode(&ServerMessage::Invitation {
        call_id: call.id.to_string(),
        caller_id: call.caller.to_string(),
        content: call.content.clone(),
        channel_id: call.channel_id.clone(),
        expires_in_ms: millis_up(left),
        media_key: call.media_key.clone(),
        media_commit: call.media_commit.clone(),
    })
}

/// Ended calls are remembered for the invite ttl, but never less than this,
/// so late answers get `already_ended` even with a ttl of milliseconds.
const MIN_REMEMBERED: Duration = Duration::from_secs(10);

/// How long an ended call is remembered: the late requests about it are
/// judged on that ([`not_live`]), and its id may not be used again till then.
pub(super) fn remembered_for(invite_ttl: Duration) -> Duration {
    invite_ttl.max(MIN_REMEMBERED)
}

/// What is remembered of `call` once it ends: enough to judge the late
/// requests about it ([`not_live`]).
pub(super) fn remembered<T>(call: &Call<T>) -> Ended {
    let accepted = matches!(call.phase, Phase::Accepted { .. });
    Ended { caller: call.caller.clone(), callee: call.callee.clone(), accepted }
}

// ---- invite ----

/// Nobody calls themself.
pub(super) fn may_call(caller: &str, callee: &str) -> Result<(), ProtocolError> {
    if callee == caller {
        return Err(ProtocolError::invalid_argument("callee_id must not be your own peer_id"));
    }
    Ok(())
}

/// What the store holds that a new call depends on.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Admission {
    /// Whether the call id names a live or a remembered call.
    pub id_taken: bool,
    /// The caller's live calls (those it is charged for).
    pub caller_calls: usize,
    /// The caller's calls ringing at this callee.
    pub ringing_at_callee: usize,
}

/// Whether a new call `call_id` to `callee` may be made: its id is unused,
/// the caller is below its cap on live calls (`max`), and below the cap on
/// its calls ringing at one callee. The callee's own calls do not count.
/// A store that checks these atomically (Redis) is handed `max` and
/// [`MAX_RINGING_PER_CALLEE`] and comes here for the error.
pub(super) fn admit(call_id: &str, callee: &str, seen: Admission, max: usize) -> Result<(), ProtocolError> {
    if seen.id_taken {
        return Err(err(ErrorCode::DuplicateCallId, format!("call id {call_id} is already in use")));
    }
    if seen.caller_calls >= max {
        return Err(too_many_calls(max));
    }
    if seen.ringing_at_callee >= MAX_RINGING_PER_CALLEE {
        return Err(err(
            ErrorCode::TooManyCalls,
            format!("at most {MAX_RINGING_PER_CALLEE} of your calls may ring at {callee} at once"),
        ));
    }
    Ok(())
}

/// A new call's callee has a session: it is handed the invitation now,
/// which starts its ack timeout. The invitation, for the callee's sessions.
pub(super) fn reach<T: Moment>(call: &mut Call<T>, now: T, ack_timeout: Duration) -> Notice {
    call.reach(now, ack_timeout);
    Notice::to(&call.callee, &invitation(call, now), true)
}

// ---- cancel, received, accept, refuse, hang-up ----

/// The caller cancels its call: only while it rings. The callee's sessions
/// are told (kept for it only if it has seen the call).
pub(super) fn cancel<T: Moment>(call: Option<&Call<T>>, peer: &str) -> Result<Ending, Refused> {
    let call = live_for(call, peer, Role::Caller)?;
    if !call.is_ringing() {
        return Err(Refused::Now(was_accepted(&call.id)));
    }
    let canceled = encode(&ServerMessage::Canceled {
        call_id: call.id.to_string(),
        reason: CancelReason::CallerCanceled,
    });
    Ok(Ending {
        outcome: Outcome::Canceled,
        notices: Notices::one(Notice::to(&call.callee, &canceled, call.callee_seen)),
        while_offline: None,
    })
}

/// A callee session acknowledges the invitation: the first time, the ack
/// timeout is over and the caller is told; otherwise (received already,
/// answered, not the callee's) nothing happens and nothing is said.
pub(super) fn received<T: Moment>(call: &mut Call<T>, peer: &str) -> Option<Notice> {
    if *call.callee != *peer {
        return None;
    }
    match &mut call.phase {
        Phase::Ringing { received, ack, .. } if !*received => {
            *received = true;
            *ack = Ack::Done;
        }
        _ => return None,
    }
    let told = encode(&ServerMessage::ReceivedByPeer { call_id: call.id.to_string() });
    Some(Notice::to(&call.caller, &told, true))
}

/// The callee may answer (accept or refuse) its call only while it rings.
pub(super) fn answerable<'c, T: Moment>(
    call: Option<&'c Call<T>>,
    peer: &str,
) -> Result<&'c Call<T>, Refused> {
    let call = live_for(call, peer, Role::Callee)?;
    if !call.is_ringing() {
        let call_id = &call.id;
        return Err(Refused::Now(err(
            ErrorCode::AlreadyEnded,
            format!("call {call_id} was already answered"),
        )));
    }
    Ok(call)
}

/// An accepted call counts against its callee's cap on live calls too: a
/// callee with `callee_calls` of them already may not accept another.
/// A store that checks this atomically (Redis) is handed `max` and comes
/// here for the error.
pub(super) fn within_callee_cap(callee_calls: usize, max: usize) -> Result<(), ProtocolError> {
    if callee_calls >= max {
        return Err(too_many_calls(max));
    }
    Ok(())
}

/// What the caller's `accepted` event carries.
pub(super) struct Acceptance {
    pub response: String,
    /// The callee's public key for the media session, passed on opaquely.
    pub media_key: Option<String>,
    /// The device of the session that answered.
    pub device: String,
    /// The caller's way into the media relay, if the server runs one.
    pub media: Option<MediaInfo>,
}

/// The callee accepts its ringing call (checked with [`answerable`] and
/// [`within_callee_cap`]): the call is accepted from `now`, the caller is
/// told, and the callee's other sessions stop ringing.
pub(super) fn accept<T: Moment>(call: &mut Call<T>, acceptance: Acceptance, now: T) -> Notices {
    call.phase = Phase::Accepted { at: now };
    let accepted = ServerMessage::Accepted {
        call_id: call.id.to_string(),
        response: acceptance.response,
        device: acceptance.device,
        media_key: acceptance.media_key,
        media: acceptance.media,
    };
    answered(call, &accepted, CancelReason::AnsweredElsewhere)
}

/// The callee refuses its call: it ends, the caller is told, and the
/// callee's other sessions stop ringing.
pub(super) fn refuse<T: Moment>(
    call: Option<&Call<T>>,
    peer: &str,
    response: &str,
) -> Result<Ending, Refused> {
    let call = answerable(call, peer)?;
    let refused = ServerMessage::Refused { call_id: call.id.to_string(), response: response.to_owned() };
    let notices = answered(call, &refused, CancelReason::RefusedElsewhere);
    Ok(Ending { outcome: Outcome::Refused, notices, while_offline: None })
}

/// The events of an answer: `to_caller` for the caller's sessions,
/// `canceled` with `elsewhere` for the callee's other sessions.
fn answered<T: Moment>(call: &Call<T>, to_caller: &ServerMessage, elsewhere: CancelReason) -> Notices {
    let canceled = ServerMessage::Canceled { call_id: call.id.to_string(), reason: elsewhere };
    Notices::two(
        Notice::to(&call.caller, &encode(to_caller), true),
        Notice::to(&call.callee, &encode(&canceled), true).but_asker(),
    )
}

/// Either party hangs up an accepted call: it ends, and every other session
/// of both parties is told who hung up.
pub(super) fn hangup<T: Moment>(call: Option<&Call<T>>, peer: &str) -> Result<Ending, Refused> {
    let call = match call {
        Some(call) if call.role_of(peer).is_some() => call,
        Some(call) => return Err(Refused::Now(no_accepted_call(&call.id))),
        None => return Err(Refused::NotLive(Asked::Hangup)),
    };
    if call.is_ringing() {
        return Err(Refused::Now(no_accepted_call(&call.id)));
    }
    let hung_up = encode(&ServerMessage::HungUp {
        call_id: call.id.to_string(),
        reason: HangupReason::Hangup,
        by: peer.to_owned(),
    });
    Ok(Ending {
        outcome: Outcome::HungUp(HangupReason::Hangup),
        notices: Notices::two(
            Notice::to(&call.caller, &hung_up, true).but_asker(),
            Notice::to(&call.callee, &hung_up, true).but_asker(),
        ),
        while_offline: None,
    })
}

/// The caller of an accepted call reveals its media key (v1.2): it goes to
/// every session of the callee (those that did not answer ignore it) and
/// changes nothing; the server never checks it against the commitment.
pub(super) fn reveal<T: Moment>(
    call: Option<&Call<T>>,
    peer: &str,
    media_key: String,
) -> Result<Notice, Refused> {
    let call = call.ok_or(Refused::NotLive(Asked::Reveal))?;
    if *call.caller != *peer || call.is_ringing() {
        return Err(Refused::Now(no_call_to_reveal_in(&call.id)));
    }
    let reveal = encode(&ServerMessage::MediaReveal { call_id: call.id.to_string(), media_key });
    Ok(Notice::to(&call.callee, &reveal, true))
}
