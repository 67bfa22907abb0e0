//! Sets up the media bench's calls over real signaling: each call is a
//! caller and a callee on connections of their own, invite, invitation,
//! received, accept; the `media` objects of the accept's `ok` and of
//! `accepted` are what the relay links are made from.

use crate::bench::AnyError;
use crate::bench::conn::{self, Sink, Stream, Tokens, frame};
use crate::protocol::{MediaInfo, OkResult, Request, ServerMessage};
use futures_util::SinkExt;
use std::time::Duration;

/// How long one call may take to set up before the bench gives up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A signaling connection kept open (and read, so pings get their pongs) for the whole run.
pub(super) struct Held {
    /// Kept so the connection stays open.
    _sink: Sink,
    /// Reads (and drops) whatever the server sends until the run ends.
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn hold(sink: Sink, mut stream: Stream) -> Held {
    let reader =
        tokio::spawn(async move { while let Some(Ok(_)) = conn::next_message(&mut stream).await {} });
    Held { _sink: sink, reader }
}

/// One accepted call: its two connections and the two sides' `media`.
pub(super) struct SetUp {
    pub _held: [Held; 2],
    pub caller: MediaInfo,
    pub callee: MediaInfo,
}

/// Places call `i` and answers it.
pub(super) async fn call(url: &str, tokens: &Tokens, tag: &str, i: usize) -> Result<SetUp, AnyError> {
    tokio::time::timeout(SETUP_TIMEOUT, place(url, tokens, tag, i))
        .await
        .map_err(|_| format!("call {i} not set up within {SETUP_TIMEOUT:?}"))?
}

async fn place(url: &str, tokens: &Tokens, tag: &str, i: usize) -> Result<SetUp, AnyError> {
    let (caller_id, callee_id, call_id) =
        (format!("m{tag}-{i}a"), format!("m{tag}-{i}b"), format!("m{tag}-{i}"));
    let (mut caller_sink, mut caller_stream) = conn::connect_login(url, &caller_id, tokens, None).await?;
    let (mut callee_sink, mut callee_stream) = conn::connect_login(url, &callee_id, tokens, None).await?;
    let invite = Request::Invite {
        call_id: call_id.clone(),
        callee_id,
        content: String::new(),
        channel_id: String::new(),
        media_key: None,
        media_commit: None,
    };
    caller_sink.send(frame(Some(1), invite)).await?;
    loop {
        match next(&mut callee_stream).await? {
            ServerMessage::Invitation { call_id: c, .. } if c == call_id => break,
            _ => continue,
        }
    }
    callee_sink.feed(frame(None, Request::Received { call_id: call_id.clone() })).await?;
    let accept = Request::Accept { call_id: call_id.clone(), response: String::new(), media_key: None };
    callee_sink.send(frame(Some(2), accept)).await?;
    let callee = loop {
        match next(&mut callee_stream).await? {
            ServerMessage::Ok { result: OkResult::Media { media }, .. } => break media,
            ServerMessage::Ok { .. } => {
                return Err("the server runs no media relay (accept without media)".into());
            }
            ServerMessage::Error { code, message, .. } => {
                return Err(format!("accept: {code}: {message}").into());
            }
            _ => continue,
        }
    };
    let caller = loop {
        match next(&mut caller_stream).await? {
            ServerMessage::Accepted { media: Some(media), .. } => break media,
            ServerMessage::Accepted { media: None, .. } => return Err("accepted without media".into()),
            ServerMessage::Error { code, message, .. } => {
                return Err(format!("invite: {code}: {message}").into());
            }
            _ => continue,
        }
    };
    Ok(SetUp { _held: [hold(caller_sink, caller_stream), hold(callee_sink, callee_stream)], caller, callee })
}

async fn next(stream: &mut Stream) -> Result<ServerMessage, AnyError> {
    conn::next_message(stream).await.ok_or("the server closed a signaling connection")?
}
