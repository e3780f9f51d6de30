//! OffsetForLeaderEpoch (v2–v4): the end offset of a leader epoch, on the shard that leads each
//! partition. Consumers use it to detect log truncation after a leader change (KIP-320);
//! followers will use it to truncate (replication is a later issue).
//!
//! Follows Kafka 4.x (`Partition.lastOffsetForLeaderEpoch`, `UnifiedLog.endOffsetForEpoch`):
//! `current_leader_epoch` fences stale requesters (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH);
//! the answer is the largest epoch <= the requested one with the offset where it ended (the
//! log end offset for the latest epoch), or -1 / -1 when the epoch is unknown (beyond the
//! latest, or the cache is empty). `replica_id` (v3+) is not used yet: with no followers every
//! request is answered by the leader.

use super::list_offsets::leader_epoch_error;
use super::{decode, respond, HandlerResult};
use crate::shard::Shard;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers OffsetForLeaderEpoch.
pub async fn handle_offset_for_leader_epoch(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: OffsetForLeaderEpochRequest = decode(req)?;
    let image = shard.image();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.topic.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let out = EpochEndOffset::default().with_partition(p.partition);
                    let Some(partition) = shard.partition(name, p.partition) else {
                        let code = shard.unserved_partition_error(&image, name, p.partition);
                        return out.with_error_code(code.code());
                    };
                    if let Some(e) =
                        leader_epoch_error(p.current_leader_epoch, partition.leader_epoch.get())
                    {
                        return out.with_error_code(e.code());
                    }
                    let (epoch, end_offset) = partition.end_offset_for_epoch(p.leader_epoch);
                    out.with_leader_epoch(epoch).with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    respond(
        req,
        &OffsetForLeaderEpochResponse::default().with_topics(topics),
    )
}
