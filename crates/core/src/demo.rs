//! Demo peers: clients on the SDK whose behaviour shows every outcome of a
//! call, hosted in-process by `softphone server --demo-peers` (and later by
//! the desktop app):
//!
//! - `echo` answers after about two rings, says back what it hears a
//!   second later ([`echo`], end-to-end encrypted like any participant),
//!   and hangs up after 30 s;
//! - `busy` refuses with the response `busy`;
//! - `noanswer` never answers, so the server's timeouts show.
//!
//! The unattended answering they use, [`Answering`], is also what
//! `softphone peer --auto` uses.

use crate::sdk::{self, Client, ClientConfig, Event, RemoteInvitation};
use std::sync::Arc;

pub mod echo;
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};

/// How long a token minted for a demo peer lasts: the demo peers live as
/// long as the process that hosts them, and must log in again after any
/// reconnect with the same token.
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What an unattended peer does with an incoming invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AutoMode {
    Accept,
    Refuse,
    /// Let it ring until the caller gives up or it expires.
    Ignore,
}

/// An answering policy: how and when to answer, and when to hang up.
#[derive(Debug, Clone)]
pub struct Answering {
    /// Accept, refuse, or let it ring.
    pub mode: AutoMode,
    /// How long to let it ring before answering.
    pub after: Duration,
    /// The response sent with accept or refuse.
    pub response: String,
    /// Hang up an accepted call (either side's) after this long.
    pub hang_up_after: Option<Duration>,
    /// Accepts this way instead of a plain accept (with a media key, and
    /// starting the call's voice); `None` for a plain accept.
    pub accept_with: Option<AcceptWith>,
}

/// An accept that does more than accept (see [`Answering::accept_with`]).
#[derive(Clone)]
pub struct AcceptWith(
    pub Arc<dyn Fn(RemoteInvitation) -> BoxFuture<'static, Result<(), sdk::Error>> + Send + Sync>,
);

impl std::fmt::Debug for AcceptWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptWith(..)")
    }
}

/// Something the policy did.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// `accept`, `refuse` or `hangup`.
    pub kind: &'static str,
    /// The call it was about.
    pub call_id: String,
    /// How the request went.
    pub result: Result<(), sdk::Error>,
}

impl Answering {
    /// What the policy does about `event`: a future that waits, acts, and
    /// reports; it resolves to `None` when the call was over before it was
    /// time to act.
    pub fn react(&self, client: &Client, event: &Event) -> Option<BoxFuture<'static, Option<Action>>> {
        let client = client.clone();
        match event {
            Event::RemoteInvitationReceived { call_id, .. } if self.mode != AutoMode::Ignore => {
                let (call_id, policy) = (call_id.clone(), self.clone());
                Some(
                    async move {
                        tokio::time::sleep(policy.after).await;
                        let invitation = client.remote_invitation(&call_id)?;
                        // Answered or ended meanwhile: nothing to do.
                        invitation.set_response(policy.response.clone()).ok()?;
                        let (kind, reply) = match policy.mode {
                            AutoMode::Accept => match &policy.accept_with {
                                Some(accept) => ("accept", (accept.0)(invitation)),
                                None => ("accept", invitation.accept()),
                            },
                            _ => ("refuse", invitation.refuse()),
                        };
                        Some(Action { kind, call_id, result: reply.await })
                    }
                    .boxed(),
                )
            }
            Event::LocalInvitationAccepted { call_id, .. } | Event::RemoteInvitationAccepted { call_id } => {
                let (call_id, after) = (call_id.clone(), self.hang_up_after?);
                Some(
                    async move {
                        tokio::time::sleep(after).await;
                        let live = client.local_invitation(&call_id).is_some_and(|i| i.is_call_live())
                            || client.remote_invitation(&call_id).is_some_and(|i| i.is_call_live());
                        if !live {
                            return None;
                        }
                        Some(Action { kind: "hangup", result: client.hang_up(&call_id).await, call_id })
                    }
                    .boxed(),
                )
            }
            _ => None,
        }
    }
}

/// The demo peers' timers; the defaults are what a person calling them sees.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long `echo` lets a call ring before accepting (about two rings).
    pub echo_answer_after: Duration,
    /// How long `echo` stays in an accepted call before hanging up.
    pub echo_hang_up_after: Duration,
    /// How long `busy` lets a call ring before refusing.
    pub busy_refuse_after: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            echo_answer_after: Duration::from_secs(4),
            echo_hang_up_after: Duration::from_secs(30),
            busy_refuse_after: Duration::from_secs(1),
        }
    }
}

/// The demo peers' ids and policies.
pub fn peers(timing: &Timing) -> [(&'static str, Answering); 3] {
    [
        (
            "echo",
            Answering {
                mode: AutoMode::Accept,
                after: timing.echo_answer_after,
                response: "echo".into(),
                hang_up_after: Some(timing.echo_hang_up_after),
                accept_with: None,
            },
        ),
        (
            "busy",
            Answering {
                mode: AutoMode::Refuse,
                after: timing.busy_refuse_after,
                response: "busy".into(),
                hang_up_after: None,
                accept_with: None,
            },
        ),
        (
            "noanswer",
            Answering {
                mode: AutoMode::Ignore,
                after: Duration::ZERO,
                response: String::new(),
                hang_up_after: None,
                accept_with: None,
            },
        ),
    ]
}

/// The running demo peers. Dropping the handle stops them.
pub struct DemoPeers {
    /// One client per demo peer, to wait for and to log out.
    clients: Vec<Client>,
    /// One task per peer, reading its events and acting on them.
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the demo peers against the server at `url`. With the server's
/// `secret` they mint their own tokens; without it the server must be in
/// open mode. Returns at once; they connect (and reconnect) on their own.
pub fn spawn(url: &str, secret: Option<Vec<u8>>, timing: Timing) -> Result<DemoPeers, sdk::Error> {
    let mut demo = DemoPeers { clients: Vec::new(), tasks: Vec::new() };
    for (peer, mut policy) in peers(&timing) {
        if peer == "echo" {
            policy.accept_with = Some(echo::accept_with(url.to_owned()));
        }
        let mut config = ClientConfig::new(url, peer);
        config.device = "demo".into();
        if let Some(secret) = &secret {
            let expiry = crate::clock::unix_secs() + DEMO_TOKEN_TTL.as_secs();
            config.token = crate::token::mint(secret, peer, expiry);
        }
        let (client, events) = Client::start(config)?;
        demo.tasks.push(tokio::spawn(serve(client.clone(), events, policy)));
        demo.clients.push(client);
    }
    Ok(demo)
}

/// The URL a server listening on `addr` is reached at from this machine
/// (an unspecified address such as 0.0.0.0 means loopback).
pub fn local_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("ws://{addr}/")
}

impl DemoPeers {
    /// Waits until every demo peer is logged in.
    pub async fn ready(&self) -> Result<(), sdk::Error> {
        for client in &self.clients {
            client.wait_connected().await?;
        }
        Ok(())
    }

    /// Logs every demo peer out and waits for them to stop.
    pub async fn shutdown(mut self) {
        for client in &self.clients {
            let _ = client.logout().await;
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for DemoPeers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One demo peer: applies its policy to each event until its client stops.
async fn serve(client: Client, mut events: sdk::Events, policy: Answering) {
    // Actions in flight die with this task.
    let mut actions = JoinSet::new();
    while let Some(event) = events.next().await {
        if let Some(action) = policy.react(&client, &event) {
            let peer = client.peer_id().to_owned();
            actions.spawn(async move {
                if let Some(Action { kind, call_id, result }) = action.await {
                    match result {
                        Ok(()) => tracing::info!(peer, kind, call_id, "demo peer acted"),
                        Err(e) => tracing::info!(peer, kind, call_id, "demo peer could not act: {e}"),
                    }
                }
            });
        }
        while actions.try_join_next().is_some() {}
    }
}
