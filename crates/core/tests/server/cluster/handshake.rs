//! Protocol v1.2's media handshake across nodes: the single-node rules of
//! `../handshake.rs`, with the caller on one node and the callee on another.

use super::Cluster;
use crate::server::handshake::{
    bad_commitments_change_nothing, reveals_reach_the_callee_and_bad_ones_are_refused,
};

#[tokio::test]
async fn bad_media_commitments_are_refused_on_a_cluster() {
    let cluster = Cluster::with_defaults(2).await;
    bad_commitments_change_nothing(&cluster.url(0), &cluster.url(1)).await;
}

#[tokio::test]
async fn media_reveal_crosses_nodes_to_every_callee_session() {
    let cluster = Cluster::with_defaults(2).await;
    reveals_reach_the_callee_and_bad_ones_are_refused(&cluster.url(0), &cluster.url(1)).await;
}
