//! The call rules of sessions coming and going: what a login does to a
//! peer's calls (the grace ends, a ringing call is handed over) and what
//! its last session leaving does (the grace starts).

use super::super::calls::{Call, Moment};
use super::super::outbound::Outbound;
use super::invitation;
use crate::protocol::LiveCall;
use std::time::Duration;

/// How one of a peer's calls looks to a session of it that just logged in.
#[derive(Debug)]
pub(in crate::server) struct Arrival {
    /// The call as the login reply lists it.
    pub live: Option<LiveCall>,
    /// The invitation to hand the session, for a call ringing at it.
    pub invitation: Option<Outbound>,
    /// How long after the invite the callee was first reached, if it is now.
    pub first_reached: Option<Duration>,
}

/// A session of `peer` logs in (its first, if it `came_online`): the
/// peer's offline grace in `call` ends, and a call ringing at it is handed
/// over, starting (or resuming) its ack timeout.
pub(in crate::server) fn arrive<T: Moment>(
    call: &mut Call<T>,
    peer: &str,
    came_online: bool,
    now: T,
    ack_timeout: Duration,
) -> Arrival {
    if came_online {
        if *call.caller == *peer {
            call.caller_lost = None;
        } else {
            call.callee_lost = None;
        }
    }
    let ringing_here = call.is_ringing() && *call.callee == *peer;
    let mut first_reached = None;
    if ringing_here {
        if !call.callee_seen {
            first_reached = Some(now.since(call.invited));
        }
        call.callee_seen = true;
        call.run_ack(now, ack_timeout);
    }
    Arrival {
        live: call.as_live(peer),
        invitation: ringing_here.then(|| invitation(call, now)),
        first_reached,
    }
}

/// `peer` has had no session since `at`: its offline grace in `call` starts
/// (the caller's always, the callee's once it has seen the invitation, which
/// pauses the ack timeout). Marked once: a repeated mark keeps the first
/// time. Whether the call changed.
pub(in crate::server) fn went_offline<T: Moment>(call: &mut Call<T>, peer: &str, at: T) -> bool {
    if *call.caller == *peer && call.caller_lost.is_none() {
        call.caller_lost = Some(at);
    } else if *call.callee == *peer && call.callee_seen && call.callee_lost.is_none() {
        call.callee_lost = Some(at);
        call.pause_ack(at);
    } else {
        return false;
    }
    true
}

/// `call` marks `peer` offline while it has a session (the mark's node died
/// between the login and the call's update): the mark goes, and for the
/// callee the ack timeout runs again.
pub(in crate::server) fn found_online<T: Moment>(
    call: &mut Call<T>,
    peer: &str,
    now: T,
    ack_timeout: Duration,
) {
    if *call.caller == *peer {
        call.caller_lost = None;
    } else {
        call.callee_lost = None;
        call.run_ack(now, ack_timeout);
    }
}
