//! The client SDK: Agora RTM's call invitation in Rust terms, over protocol
//! v1 (`docs/sdk.md` puts each Agora call beside its counterpart here).
//!
//! A [`Client`] connects to a `ws://` or `wss://` server, logs in, and keeps
//! logging in again when the connection drops. The caller makes a
//! [`LocalInvitation`] with [`Client::create_local_invitation`], sets its
//! content and channel, sends it and may cancel it; the callee gets a
//! [`RemoteInvitation`] and accepts or refuses it; either side hangs up an
//! accepted call. Everything that happens comes out, in order, as one
//! [`Event`] enum on the [`Events`] stream.
//!
//! Requests return a [`Reply`]: a `'static` future resolving to the server's
//! `ok` or an [`Error`]. A call that breaks an invitation's state rules
//! fails before anything is sent, and the reply is ready at once.
//!
//! Inside: `worker` (the connection task: reconnect loop, the only producer
//! of events), `table` (the call table, the rules of each phase, the
//! client's own lifecycle, and the reconciling after a new login),
//! `invitation` (the handles, their phases and the Agora states derived
//! from them), `event`, `error` and `config` (what comes out, what fails,
//! what goes in).

use crate::protocol::{OkResult, Request};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::Connector;

pub mod call_voice;
mod config;
mod error;
mod event;
mod invitation;
mod manual_voice_keys;
mod table;
mod voice;
mod voice_handshake;
mod worker;

pub use config::{Backoff, ClientConfig};
pub use error::Error;
pub use event::{
    CancelReason, ConnectionReason, ConnectionState, Event, Events, FailureReason, HangupReason,
};
pub use invitation::{LocalInvitation, LocalInvitationState, RemoteInvitation, RemoteInvitationState};
pub use manual_voice_keys::MediaKey;
pub use voice::{NoVoice, Voice, VoiceKeys, VoiceStatus};
pub use voice_handshake::{NEVER_REVEALED, REVEAL_WAIT, TAMPERED};

use table::Pending;
use worker::{ClientState, Command, ServerReply, Worker};

/// The result of a request: ready at once for local errors, otherwise when
/// the server replies, the connection drops, or the request times out.
pub type Reply<T> = BoxFuture<'static, Result<T, Error>>;

/// Which peers are online, by peer id.
pub type Presence = BTreeMap<String, bool>;

/// A logged-in (or logging-in) client. Cheap to clone; the connection stops
/// when the last clone, and the last invitation handle, is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// Shared with the worker: the call table and the connection status.
    state: Arc<ClientState>,
    /// Requests for the worker; closing it stops the worker.
    commands: mpsc::UnboundedSender<Command>,
    /// Who we logged in as.
    peer_id: String,
    /// How long a reply future waits for the server.
    request_timeout: Duration,
    /// How `wss://` is verified (the `ca_file`), kept for the voice relay's
    /// WebSocket fallback to the same server.
    tls: Option<Connector>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("peer_id", &self.inner.peer_id).finish_non_exhaustive()
    }
}

impl Client {
    /// Starts a client in the background and returns at once; the events
    /// say how connecting goes, and it retries until it is logged in (or
    /// refused for good). Must be called within a tokio runtime.
    pub fn start(config: ClientConfig) -> Result<(Client, Events), Error> {
        let (urls, tls) = config.validate()?;
        // rustls 0.23 needs a process-wide crypto provider before the first
        // wss:// connect; the first caller installs ring, later ones no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = Arc::new(ClientState::new(config.peer_id.clone()));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let client = Client {
            inner: Arc::new(Inner {
                state: state.clone(),
                commands,
                peer_id: config.peer_id.clone(),
                request_timeout: config.request_timeout,
                tls,
            }),
        };
        tokio::spawn(Worker::new(config, urls, state, command_rx, event_tx).run());
        Ok((client, Events::new(event_rx)))
    }

    /// Starts a client and waits for its first login. If the first attempt
    /// fails, the client is stopped and the error says why
    /// ([`Error::Connect`], or [`Error::LoginRefused`]).
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), Error> {
        let (client, events) = Client::start(config)?;
        client.first_login().await?;
        Ok((client, events))
    }

    /// Waits until the first attempt to log in has succeeded or failed.
    async fn first_login(&self) -> Result<(), Error> {
        let mut status = self.inner.state.status.subscribe();
        let outcome = status
            .wait_for(|(state, _)| !matches!(state, ConnectionState::Connecting { .. }))
            .await
            .map(|s| s.clone());
        match outcome {
            Ok((ConnectionState::Connected { .. }, _)) => Ok(()),
            Ok((_, ConnectionReason::LoginRefused(e))) => Err(Error::LoginRefused(e)),
            Ok((_, reason)) => Err(Error::Connect(reason.to_string())),
            Err(_) => Err(Error::Stopped),
        }
    }

    /// Waits until the client is logged in; fails if it stops for good first.
    pub async fn wait_connected(&self) -> Result<(), Error> {
        let mut status = self.inner.state.status.subscribe();
        let outcome = status
            .wait_for(|(state, _)| matches!(state, ConnectionState::Connected { .. }) || state.is_final())
            .await
            .map(|s| s.clone());
        match outcome {
            Ok((ConnectionState::Connected { .. }, _)) => Ok(()),
            Ok((_, ConnectionReason::LoginRefused(e))) => Err(Error::LoginRefused(e)),
            _ => Err(Error::Stopped),
        }
    }

    /// How this client verifies a `wss://` server (with its `ca_file`,
    /// that file's certificates too; `None`: the public roots). The relay's
    /// WebSocket fallback goes to the same server, so it needs the same
    /// ([`LinkOptions::tls`](crate::relay_link::LinkOptions::tls)).
    pub fn tls_connector(&self) -> Option<Connector> {
        self.inner.tls.clone()
    }

    /// Our own peer id.
    pub fn peer_id(&self) -> &str {
        &self.inner.peer_id
    }

    /// The connection's current state.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.state.status.borrow().0.clone()
    }

    /// Agora createLocalInvitation: an `Idle` invitation to `callee_id` with
    /// a fresh call id. Nothing is sent until [`send_local_invitation`](Self::send_local_invitation).
    pub fn create_local_invitation(&self, callee_id: &str) -> Result<LocalInvitation, Error> {
        let (call_id, entry) = self.inner.state.table().create_local(callee_id)?;
        Ok(LocalInvitation { call_id, entry, client: self.clone() })
    }

    /// The local invitation with this call id, if the client still holds it.
    pub fn local_invitation(&self, call_id: &str) -> Option<LocalInvitation> {
        let entry = self.inner.state.table().local(call_id)?;
        Some(LocalInvitation { call_id: call_id.into(), entry, client: self.clone() })
    }

    /// The remote invitation with this call id, if the client still holds it.
    pub fn remote_invitation(&self, call_id: &str) -> Option<RemoteInvitation> {
        let entry = self.inner.state.table().remote(call_id)?;
        Some(RemoteInvitation { call_id: call_id.into(), entry, client: self.clone() })
    }

    fn owns(&self, other: &Client) -> Result<(), Error> {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            Ok(())
        } else {
            Err(Error::InvalidArgument("the invitation belongs to another client".into()))
        }
    }

    /// Agora sendLocalInvitation. `Ok` once the server has it
    /// (`SENT_TO_REMOTE`); ALREADY_SENT if it was sent before.
    pub fn send_local_invitation(&self, invitation: &LocalInvitation) -> Reply<()> {
        let begun = self
            .owns(&invitation.client)
            .and_then(|()| self.submit(|table| table.begin_send(&invitation.call_id, &invitation.entry)));
        empty(self.finish(begun))
    }

    /// Agora cancelLocalInvitation. NOT_STARTED before send, ALREADY_ACCEPT
    /// after accept, ALREADY_END after any other outcome.
    pub fn cancel_local_invitation(&self, invitation: &LocalInvitation) -> Reply<()> {
        let begun = self
            .owns(&invitation.client)
            .and_then(|()| self.submit(|table| table.begin_cancel(&invitation.call_id, &invitation.entry)));
        empty(self.finish(begun))
    }

    /// Agora acceptRemoteInvitation, with the invitation's response (see
    /// [`RemoteInvitation::set_response`]). ALREADY_ACCEPT twice,
    /// ALREADY_END once it has ended.
    pub fn accept_remote_invitation(&self, invitation: &RemoteInvitation) -> Reply<()> {
        empty(self.accept_remote_invitation_raw(invitation))
    }

    /// The accept, replying with the server's whole `ok` (its `media`, if any).
    fn accept_remote_invitation_raw(&self, invitation: &RemoteInvitation) -> Reply<OkResult> {
        let begun = self
            .owns(&invitation.client)
            .and_then(|()| self.submit(|table| table.begin_accept(&invitation.call_id, &invitation.entry)));
        self.finish(begun)
    }

    /// Agora refuseRemoteInvitation, with the invitation's response.
    pub fn refuse_remote_invitation(&self, invitation: &RemoteInvitation) -> Reply<()> {
        let begun = self
            .owns(&invitation.client)
            .and_then(|()| self.submit(|table| table.begin_refuse(&invitation.call_id, &invitation.entry)));
        empty(self.finish(begun))
    }

    /// Hangs up an accepted call (beyond Agora), whichever side placed it.
    /// NOT_STARTED before accept, ALREADY_END once ended.
    pub fn hang_up(&self, call_id: &str) -> Reply<()> {
        empty(self.finish(self.submit(|table| table.begin_hangup(call_id))))
    }

    /// Agora queryPeersOnlineStatus.
    pub fn query_presence<S: AsRef<str>>(&self, peer_ids: &[S]) -> Reply<Presence> {
        let request = Request::QueryPresence { peer_ids: owned(peer_ids) };
        presence(self.finish(self.submit(|table| table.begin_presence(request))))
    }

    /// Agora subscribePeersOnlineStatus: replies with their status now, then
    /// `Presence` events on every change. Renewed after every reconnect.
    pub fn subscribe_presence<S: AsRef<str>>(&self, peer_ids: &[S]) -> Reply<Presence> {
        let request = Request::SubscribePresence { peer_ids: owned(peer_ids) };
        presence(self.finish(self.submit(|table| table.begin_presence(request))))
    }

    /// Agora unsubscribePeersOnlineStatus.
    pub fn unsubscribe_presence<S: AsRef<str>>(&self, peer_ids: &[S]) -> Reply<()> {
        let request = Request::UnsubscribePresence { peer_ids: owned(peer_ids) };
        empty(self.finish(self.submit(|table| table.begin_presence(request))))
    }

    /// Agora renewToken (protocol v1.2): hands the server a fresh token for
    /// this peer before the current one expires (see
    /// [`Event::TokenExpiring`]); on `ok` the session goes on under the new
    /// expiry and later logins use it. A token the server refuses is
    /// [`Error::Server`]-like (`invalid_token`, `token_expired`) and changes
    /// nothing. Online only.
    pub fn renew_token(&self, token: &str) -> Reply<()> {
        let token = token.trim().to_owned();
        empty(self.finish(self.submit(|table| table.begin_renew_token(token))))
    }

    /// Agora logout, in any phase: logged in, the server ends the session;
    /// connecting or waiting to reconnect, the client just stops. Either
    /// way the stream then ends with `Disconnected` (`LoggedOut`) and the
    /// client does not reconnect.
    pub fn logout(&self) -> Reply<()> {
        empty(self.finish(self.submit(|table| table.begin_logout())))
    }

    /// Checks the rules and queues the request, both under the table's
    /// lock, so the order of state changes is the order on the wire.
    fn submit(
        &self,
        begin: impl FnOnce(&mut table::Table) -> Result<(Request, Pending), Error>,
    ) -> Result<oneshot::Receiver<ServerReply>, Error> {
        let mut table = self.inner.state.table();
        let (request, pending) = begin(&mut table)?;
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(command)) =
            self.inner.commands.send(Command { request, pending, reply })
        {
            table.on_failed(&command.pending);
            return Err(Error::Stopped);
        }
        Ok(answer)
    }

    /// Turns a queued request into its reply future.
    fn finish(&self, begun: Result<oneshot::Receiver<ServerReply>, Error>) -> Reply<OkResult> {
        let timeout = self.inner.request_timeout;
        match begun {
            Err(e) => futures_util::future::ready(Err(e)).boxed(),
            Ok(answer) => async move {
                match tokio::time::timeout(timeout, answer).await {
                    Ok(Ok(answer)) => answer,
                    Ok(Err(_)) => Err(Error::Stopped),
                    Err(_) => Err(Error::Timeout(timeout)),
                }
            }
            .boxed(),
        }
    }
}

fn owned<S: AsRef<str>>(peer_ids: &[S]) -> Vec<String> {
    peer_ids.iter().map(|p| p.as_ref().to_owned()).collect()
}

fn empty(reply: Reply<OkResult>) -> Reply<()> {
    reply.map(|r| r.map(|_| ())).boxed()
}

fn presence(reply: Reply<OkResult>) -> Reply<Presence> {
    reply
        .map(|r| {
            r.map(|ok| match ok {
                OkResult::Presence { online } => online,
                _ => Presence::new(),
            })
        })
        .boxed()
}
