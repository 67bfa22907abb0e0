//! Events from the other nodes: each node subscribes to its own channel
//! (`sp:n:NODE`), where the scripts publish what is for its sessions.
//! Messages are short text with a one-letter kind:
//! `c` + `SESSION,SESSION,...` + `\n` + call id + `\n` + the call's record
//! (empty once it ended) + `\n` + the encoded event, for those sessions (the
//! record lets this node decide the next step of the call without reading
//! it first, see `requests.rs`);
//! `p` + `1`/`0` + peer, a peer came online or went offline, for its watchers here;
//! `r` + call id, a call this node's relay carries has ended.
//! A message published while the node is not subscribed (its connection
//! to Redis is coming back) waits in the node's backlog (`sp:bl:NODE`),
//! handed on as soon as it subscribes again. Beyond that pub/sub is at most
//! once: what a lost message costs, and how it is repaired, is in
//! `docs/scale-out.md`.

use super::ClusterHub;
use crate::protocol::ServerMessage;
use crate::server::outbound::{Outbound, encode};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long to wait between tries to reach Redis again.
const RECONNECT: Duration = Duration::from_millis(250);

/// The subscriber task: listens on this node's channel for as long as the
/// node runs, subscribing again whenever the connection comes back.
pub(super) async fn listen(hub: Arc<ClusterHub>, url: String) {
    let (pushes, mut received) = mpsc::unbounded_channel();
    let ca = hub.config.cluster.as_ref().and_then(|c| c.redis_ca.clone());
    let manager = match subscriber(&url, ca.as_deref(), pushes) {
        Ok(manager) => manager,
        Err(e) => {
            tracing::error!("cannot listen for the cluster's events: {e}");
            return;
        }
    };
    let channel = format!("sp:n:{}", hub.node);
    loop {
        // Subscribe (again); until Redis answers, try every RECONNECT.
        while manager.clone().subscribe(&channel).await.is_err() {
            tokio::time::sleep(RECONNECT).await;
        }
        hub.drain_backlog().await;
        hub.startup.send_modify(|s| s.listening = true);
        loop {
            let Some(push) = received.recv().await else { return };
            match push.kind {
                PushKind::Message => hub.dispatch(push),
                PushKind::Disconnection => break,
                _ => {}
            }
        }
        hub.startup.send_modify(|s| s.listening = false);
    }
}

/// A connection for pushes only (RESP3), reconnecting when asked to.
fn subscriber(
    url: &str,
    ca: Option<&[u8]>,
    pushes: mpsc::UnboundedSender<PushInfo>,
) -> redis::RedisResult<ConnectionManager> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info()?;
    let settings = info.redis_settings().clone().set_protocol(redis::ProtocolVersion::RESP3);
    let client = super::redis_client(info.set_redis_settings(settings), ca)?;
    let config = ConnectionManagerConfig::new()
        .set_push_sender(pushes)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
}

impl ClusterHub {
    /// Hands one pushed message on this node's channel on.
    fn dispatch(&self, push: PushInfo) {
        let Some(Value::BulkString(payload)) = push.data.get(1) else { return };
        let Ok(text) = std::str::from_utf8(payload) else { return };
        self.deliver_message(text);
    }

    /// Hands on what was published for this node while it was not
    /// listening (`sp:bl:NODE`), oldest first, before anything published
    /// since it subscribed (those wait in the push queue meanwhile). A
    /// backlog that cannot be read now stays for the next subscription.
    async fn drain_backlog(&self) {
        let key = format!("sp:bl:{}", self.node);
        let mut redis = self.redis.clone();
        let mut take = redis::pipe();
        take.atomic().lrange(&key, 0, -1).del(&key).ignore();
        let Ok((backlog,)) = self.redis::<(Vec<String>,)>(take.query_async(&mut redis)).await else { return };
        if !backlog.is_empty() {
            tracing::info!(node = %self.node, messages = backlog.len(), "delivering what was published while not listening");
        }
        for message in &backlog {
            self.deliver_message(message);
        }
    }

    /// Hands one message for this node to the sessions it is for.
    fn deliver_message(&self, text: &str) {
        match text.split_at_checked(1) {
            Some(("c", rest)) => {
                let mut parts = rest.splitn(4, '\n');
                let (Some(sessions), Some(call_id), Some(record), Some(event)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return;
                };
                self.known_now(call_id, record);
                let event = Outbound::from(event.to_owned());
                for id in sessions.split(',').filter_map(|s| s.parse().ok()) {
                    self.send_local(id, &event);
                }
            }
            Some(("p", rest)) => {
                let Some((online, peer)) = rest.split_at_checked(1) else { return };
                let local = self.local();
                if local.peers.is_watched(peer) {
                    let event = ServerMessage::Presence { peer_id: peer.to_owned(), online: online == "1" };
                    local.peers.send_to_watchers(peer, &encode(&event));
                }
            }
            Some(("r", call_id)) => {
                if let Some(relay) = &self.relay {
                    relay.close(call_id);
                }
            }
            _ => tracing::debug!("unknown message on this node's channel"),
        }
    }
}
