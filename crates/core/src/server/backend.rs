//! What the sessions hand their requests to: the single node's [`Hub`],
//! which decides in memory under one lock, or a cluster node's
//! [`ClusterHub`], which decides over Redis. Both follow the protocol to
//! the letter; the sessions cannot tell them apart.

use super::ServerConfig;
use super::cluster::ClusterHub;
use super::hub::Hub;
use super::metrics::Metrics;
use super::outbound::{Kick, Outbound, SessionId};
use crate::protocol::{ProtocolError, Req, Request};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Where a node's decisions are made. The cluster's futures are boxed:
/// their Redis round trips make them large, and unboxed they would be part
/// of every session's task, idle or not, single node or not.
#[derive(Clone)]
pub(crate) enum Backend {
    /// One node, everything in this process.
    Single(Arc<Hub>),
    /// A node of a cluster sharing Redis.
    Cluster(Arc<ClusterHub>),
}

impl Backend {
    pub fn config(&self) -> &ServerConfig {
        match self {
            Backend::Single(hub) => hub.config(),
            Backend::Cluster(hub) => hub.config(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        match self {
            Backend::Single(hub) => &hub.metrics,
            Backend::Cluster(hub) => &hub.metrics,
        }
    }

    /// Registers a logged-in session and replies to its `login`.
    pub async fn login(
        &self,
        peer: &str,
        device: &str,
        req: Option<Req>,
        outbox: mpsc::Sender<Outbound>,
        kick: Kick,
    ) -> Result<SessionId, ProtocolError> {
        match self {
            Backend::Single(hub) => hub.login(peer, device, req, outbox, kick),
            Backend::Cluster(hub) => Box::pin(hub.login(peer, device, req, outbox, kick)).await,
        }
    }

    /// Forgets a session (logout or closed socket).
    pub async fn disconnect(&self, id: SessionId) {
        match self {
            Backend::Single(hub) => hub.disconnect(id),
            Backend::Cluster(hub) => Box::pin(hub.disconnect(id)).await,
        }
    }

    /// Applies a request from a logged-in session and queues its reply.
    pub async fn handle(&self, id: SessionId, req: Option<Req>, request: Request) {
        match self {
            Backend::Single(hub) => hub.handle(id, req, request),
            Backend::Cluster(hub) => Box::pin(hub.handle(id, req, request)).await,
        }
    }
}
