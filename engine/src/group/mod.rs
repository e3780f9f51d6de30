//! Consumer groups: the classic group coordinator of one shard.
//!
//! Group `g` belongs to `__consumer_offsets` partition
//! `abs(javaStringHashCode(g)) % offsets.topic.num.partitions` ([`partition_for`]); the shard
//! leading that partition coordinates it, so a group's members, rebalances and committed offsets
//! never leave one core. Group metadata and commits are records in that partition, in Kafka's
//! key/value formats ([`records`]), replayed when the shard starts or the partition is placed on it ([`GroupCoordinator::load`]).
//!
//! * [`state`]: one group's data: members, generation, offsets.
//! * [`rebalance`]: the JoinGroup / SyncGroup / Heartbeat / LeaveGroup state machine and timers.
//! * [`coordinator`]: the shard's groups, ownership and loading, persistence, the API entry points.
//! * [`offsets`]: OffsetCommit / OffsetFetch / OffsetDelete and offset expiry.
//! * [`store`]: writing records and replaying them.

pub mod coordinator;
pub mod offsets;
pub mod rebalance;
pub mod records;
pub mod state;
pub mod store;

pub use coordinator::GroupCoordinator;

use crate::config::{BrokerConfig, TopicConfigs};
use crate::metadata::{ClusterState, PartitionState, TopicState};
use crate::partition_caps::PartitionBudget;
use std::collections::BTreeMap;

/// The internal topic holding group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The `__consumer_offsets` partition of `group`: Kafka's
/// `Utils.abs(groupId.hashCode) % partitions`, with Java's `String.hashCode` over UTF-16 units.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// The `__consumer_offsets` topic of a cluster: `offsets.topic.num.partitions` partitions of
/// `offsets.topic.replication.factor` replicas, placed over the live brokers of `state` as any
/// topic's (see [`PartitionBudget::place`]), compacted, with
/// `offsets.topic.segment.bytes` segments (Kafka's topic configs for it).
pub fn offsets_topic(config: &BrokerConfig, state: &ClusterState) -> Result<TopicState, String> {
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("compression.type".to_string(), "producer".to_string()),
        (
            "segment.bytes".to_string(),
            config.offsets_topic_segment_bytes.to_string(),
        ),
    ]);
    let count = u64::try_from(config.offsets_topic_num_partitions.max(1)).unwrap_or(1);
    let placed = PartitionBudget::new(state, config)
        .place(
            OFFSETS_TOPIC,
            count,
            config.offsets_topic_replication_factor,
        )
        .map_err(|(_, why)| why)?;
    Ok(TopicState {
        id: uuid::Uuid::new_v4(),
        partitions: placed
            .into_iter()
            .filter_map(|replicas| PartitionState::new(replicas, |n| state.is_live_node(n)))
            .collect(),
        configs: TopicConfigs::new(configs).map_err(|e| e.to_string())?,
        internal: true,
    })
}

#[cfg(test)]
mod tests {
    use super::partition_for;

    #[test]
    fn partitions_match_kafkas_hashing() {
        // Expected values: Math.abs(id.hashCode()) % 50, as Java computes them.
        for (id, partition) in [
            ("", 0),
            ("test", 48),
            ("group-a", 47),
            ("my-group", 12), // negative hash: Math.abs, not a bit mask
            ("console-consumer-12345", 6),
            ("grüppe-😀", 14), // UTF-16 code units, surrogate pair included
        ] {
            assert_eq!(partition_for(id, 50), partition, "group {id:?}");
        }
    }
}
