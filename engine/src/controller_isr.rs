//! The controller's side of AlterPartition: a partition leader's ISR change, validated as
//! Kafka's `ReplicationControlManager.alterPartition` does and applied to the next state.

use crate::metadata::{broker_of_node, ClusterState};
use kafka_protocol::ResponseError;
use tracing::info;

/// One AlterPartition request, as the leader sent it.
pub struct IsrChange<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition index.
    pub partition: i32,
    /// The leader's node id.
    pub leader: i32,
    /// The leader epoch the change was made in.
    pub leader_epoch: i32,
    /// The partition epoch the change builds on.
    pub partition_epoch: i32,
    /// The new ISR: node ids with the broker epochs their fetches carried (-1: not known).
    pub new_isr: &'a [(i32, i64)],
}

/// Validates `change` against `state` and applies it (the new ISR, the partition epoch
/// bumped). Kafka's errors: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER (the sender
/// does not lead the partition, or knows a newer leader epoch than the controller),
/// FENCED_LEADER_EPOCH (an older leader epoch), INVALID_UPDATE_VERSION (an older partition
/// epoch), INVALID_REQUEST (an ISR without its leader, or with duplicates), and
/// INELIGIBLE_REPLICA (a member that is not a replica, or whose broker is fenced, or
/// registered with another epoch).
pub fn alter_partition(
    state: &mut ClusterState,
    change: &IsrChange<'_>,
) -> Result<(), (ResponseError, String)> {
    let live = |node: i32| state.is_live_node(node);
    let registered_epoch = |node: i32| state.brokers.get(&broker_of_node(node)).map(|b| b.epoch);
    let checks: Vec<(i32, bool, Option<u64>)> = change
        .new_isr
        .iter()
        .map(|&(node, _)| (node, live(node), registered_epoch(node)))
        .collect();
    let Some(p) = state
        .topics
        .get_mut(change.topic)
        .and_then(|t| t.partitions.get_mut(usize::try_from(change.partition).ok()?))
    else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("{}-{} does not exist", change.topic, change.partition),
        ));
    };
    let name = format!("{}-{}", change.topic, change.partition);
    if change.leader != p.leader || change.leader_epoch > p.leader_epoch {
        return Err((
            ResponseError::NotLeaderOrFollower,
            format!("node {} does not lead {name} (the leader is {})", change.leader, p.leader),
        ));
    }
    if change.leader_epoch < p.leader_epoch {
        return Err((
            ResponseError::FencedLeaderEpoch,
            format!(
                "leader epoch {} of {name} is older than {}",
                change.leader_epoch, p.leader_epoch
            ),
        ));
    }
    if change.partition_epoch != p.partition_epoch {
        return Err((
            ResponseError::InvalidUpdateVersion,
            format!(
                "partition epoch {} of {name} is not the current {}",
                change.partition_epoch, p.partition_epoch
            ),
        ));
    }
    let mut isr: Vec<i32> = Vec::with_capacity(change.new_isr.len());
    for &(node, is_live, epoch) in &checks {
        let sent_epoch = change
            .new_isr
            .iter()
            .find(|(n, _)| *n == node)
            .map_or(-1, |(_, e)| *e);
        if isr.contains(&node) {
            return Err((
                ResponseError::InvalidRequest,
                format!("the new ISR of {name} lists node {node} twice"),
            ));
        }
        let eligible = p.replicas.contains(&node)
            && (node == p.leader || is_live)
            && (sent_epoch < 0 || epoch.is_some_and(|e| i64::try_from(e).ok() == Some(sent_epoch)));
        if !eligible {
            return Err((
                ResponseError::IneligibleReplica,
                format!("node {node} cannot join the ISR of {name}"),
            ));
        }
        isr.push(node);
    }
    if !isr.contains(&p.leader) {
        return Err((
            ResponseError::InvalidRequest,
            format!("the new ISR of {name} leaves out its leader {}", p.leader),
        ));
    }
    info!(partition = %name, old = ?p.isr, new = ?isr, "ISR changed");
    p.isr = isr;
    p.partition_epoch += 1;
    Ok(())
}
