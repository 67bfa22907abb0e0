//! The app's seam to the SDK: what it asks of the signaling layer.
//!
//! [`Phone`] is the handful of requests the screens need, each returning the
//! SDK's [`Reply`] future; [`sdk::Client`] implements it, and tests put a
//! recording phone in its place. A [`Connector`] makes a phone from the
//! sign-in form; the real one starts an SDK client whose events the app
//! turns into messages (see [`events`]).

use super::relay_voice::RelayVoice;
use futures_util::FutureExt;
use softphone_core::sdk::{self, Client, Error, Events, Reply};
use std::sync::Arc;

/// The requests the app makes; every one answers with the SDK's reply.
pub trait Phone: Send + Sync {
    /// Places a call; the call id is known at once, the reply comes when
    /// the server has the invitation.
    fn invite(&self, peer: &str, channel: &str, content: &str) -> Result<(String, Reply<()>), Error>;
    fn cancel(&self, call_id: &str) -> Reply<()>;
    fn accept(&self, call_id: &str) -> Reply<()>;
    /// Refuses with `response` (`busy` when another call is up).
    fn refuse(&self, call_id: &str, response: &str) -> Reply<()>;
    fn hang_up(&self, call_id: &str) -> Reply<()>;
    fn logout(&self) -> Reply<()>;
    /// Hands the server a fresh login token (after `token_expiring`).
    fn renew_token(&self, token: &str) -> Reply<()>;
    /// Watches `peers`: who is online now, then `Presence` events.
    fn subscribe_presence(&self, peers: &[String]) -> Reply<sdk::Presence>;
    /// Stops watching `peers`.
    fn unsubscribe_presence(&self, peers: &[String]) -> Reply<()>;
}

/// Makes a phone for a sign-in: the phone, and the event stream that the
/// app listens to (tests feed events by hand and return `None`).
pub type Connector = Box<dyn Fn(sdk::ClientConfig) -> Result<(Arc<dyn Phone>, Option<Events>), Error>>;

/// The real connector: an SDK client that connects in the background,
/// asking for voice with every invite and accept (registered in `voice`).
/// Needs a tokio runtime, which iced's tokio executor provides.
pub fn sdk_connector(voice: Arc<RelayVoice>) -> Connector {
    Box::new(move |config| {
        let server_url = config.url.clone();
        let (client, events) = Client::start(config)?;
        let phone = VoicePhone { client, voice: voice.clone(), server_url };
        Ok((Arc::new(phone) as Arc<dyn Phone>, Some(events)))
    })
}

/// The SDK client, asking for built-in voice with each invite and accept.
struct VoicePhone {
    client: Client,
    voice: Arc<RelayVoice>,
    /// The signaling URL: the host of the relay's WebSocket fallback.
    server_url: String,
}

impl Phone for VoicePhone {
    fn invite(&self, peer: &str, channel: &str, content: &str) -> Result<(String, Reply<()>), Error> {
        let invitation = self.client.create_local_invitation(peer)?;
        invitation.set_channel_id(channel)?;
        invitation.set_content(content)?;
        invitation.offer_voice()?;
        self.voice.offered(invitation.call_id(), &self.client, &self.server_url);
        Ok((invitation.call_id().to_owned(), invitation.send()))
    }

    fn accept(&self, call_id: &str) -> Reply<()> {
        let Some(invitation) = self.client.remote_invitation(call_id) else {
            return failed(unknown_call(call_id));
        };
        self.voice.offered(call_id, &self.client, &self.server_url);
        invitation.accept_with_voice()
    }

    fn cancel(&self, call_id: &str) -> Reply<()> {
        Phone::cancel(&self.client, call_id)
    }
    fn refuse(&self, call_id: &str, response: &str) -> Reply<()> {
        Phone::refuse(&self.client, call_id, response)
    }
    fn hang_up(&self, call_id: &str) -> Reply<()> {
        Phone::hang_up(&self.client, call_id)
    }
    fn logout(&self) -> Reply<()> {
        Phone::logout(&self.client)
    }
    fn renew_token(&self, token: &str) -> Reply<()> {
        self.client.renew_token(token)
    }
    fn subscribe_presence(&self, peers: &[String]) -> Reply<sdk::Presence> {
        Phone::subscribe_presence(&self.client, peers)
    }
    fn unsubscribe_presence(&self, peers: &[String]) -> Reply<()> {
        Phone::unsubscribe_presence(&self.client, peers)
    }
}

/// A reply that is already an error.
fn failed(error: Error) -> Reply<()> {
    futures_util::future::ready(Err(error)).boxed()
}

fn unknown_call(call_id: &str) -> Error {
    Error::AlreadyEnd(format!("call {call_id} is no longer known"))
}

impl Phone for Client {
    fn invite(&self, peer: &str, channel: &str, content: &str) -> Result<(String, Reply<()>), Error> {
        let invitation = self.create_local_invitation(peer)?;
        invitation.set_channel_id(channel)?;
        invitation.set_content(content)?;
        Ok((invitation.call_id().to_owned(), invitation.send()))
    }

    fn cancel(&self, call_id: &str) -> Reply<()> {
        match self.local_invitation(call_id) {
            Some(invitation) => invitation.cancel(),
            None => failed(unknown_call(call_id)),
        }
    }

    fn accept(&self, call_id: &str) -> Reply<()> {
        match self.remote_invitation(call_id) {
            Some(invitation) => invitation.accept(),
            None => failed(unknown_call(call_id)),
        }
    }

    fn refuse(&self, call_id: &str, response: &str) -> Reply<()> {
        match self.remote_invitation(call_id) {
            Some(invitation) => match invitation.set_response(response) {
                Ok(()) => invitation.refuse(),
                Err(e) => failed(e),
            },
            None => failed(unknown_call(call_id)),
        }
    }

    fn hang_up(&self, call_id: &str) -> Reply<()> {
        Client::hang_up(self, call_id)
    }

    fn logout(&self) -> Reply<()> {
        Client::logout(self)
    }

    fn renew_token(&self, token: &str) -> Reply<()> {
        Client::renew_token(self, token)
    }

    fn subscribe_presence(&self, peers: &[String]) -> Reply<sdk::Presence> {
        Client::subscribe_presence(self, peers)
    }

    fn unsubscribe_presence(&self, peers: &[String]) -> Reply<()> {
        Client::unsubscribe_presence(self, peers)
    }
}

/// The iced adapter for the SDK's event stream: every event becomes a
/// message tagged with the session it belongs to, so events of a session
/// that has been signed out are told apart and dropped. The task is
/// abortable; the handle aborts it when dropped.
pub fn events<Message: Send + 'static>(
    events: Events,
    session: u64,
    to_message: fn(u64, sdk::Event) -> Message,
) -> (iced::Task<Message>, iced::task::Handle) {
    let (task, handle) = iced::Task::run(events, move |event| to_message(session, event)).abortable();
    (task, handle.abort_on_drop())
}
