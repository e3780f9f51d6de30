//! OffsetCommit: a group member (or a standalone consumer, generation -1) commits offsets.
//!
//! The commit is a record in the group's `__consumer_offsets` partition; the response waits for
//! the same durability as an acks=all produce (the shard's group commit when
//! `sluice.fsync.acks.all` is on or the partition's flush policy is due).

use super::{decode, respond, HandlerResult};
use crate::group::offsets::{CommitRequest, OffsetToCommit};
use crate::shard::Shard;
use crate::time::now_ms;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError as E;
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers OffsetCommit.
pub async fn handle_offset_commit(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: OffsetCommitRequest = decode(req)?;
    let offsets: Vec<OffsetToCommit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| OffsetToCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let commit = CommitRequest {
        generation: request.generation_id_or_member_epoch,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        retention_ms: if (2..=4).contains(&req.api_version) {
            request.retention_time_ms
        } else {
            -1
        },
        offsets,
    };
    let (mut codes, written) = shard.groups.commit(shard, &request.group_id, commit);
    if let Some(partition) = written {
        let due = shard.config.fsync_acks_all || partition.needs_flush(now_ms());
        if due && shard.group_commit.sync(partition).await.is_err() {
            for code in codes.iter_mut().filter(|c| **c == 0) {
                *code = E::KafkaStorageError.code();
            }
        }
    }
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.next().unwrap_or(0);
                    shard.metrics.record_error(req.api_key as i16, code);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    respond(req, &OffsetCommitResponse::default().with_topics(topics))
}
