//! OffsetCommit: a group member (or a standalone consumer, generation -1) commits offsets.
//!
//! The commit is a record in the group's `__consumer_offsets` partition; the response waits for
//! the same durability as an acks=all produce: the shard's group commit when
//! `sluice.fsync.acks.all` is on or the partition's flush policy is due, and the partition's
//! in-sync replicas (its high watermark covers the commit).

use super::{decode, respond, HandlerResult};
use crate::group::offsets::{CommitRequest, OffsetToCommit};
use crate::partition::Partition;
use crate::shard::Shard;
use crate::time::now_ms;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError as E;
use sluice_net::RawRequest;
use sluice_replication::leader::AckError;
use std::rc::Rc;
use std::time::Duration;

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
        let written_end = partition.log_end_offset();
        let due = shard.config.fsync_acks_all || partition.needs_flush(now_ms());
        let failure = if due && shard.group_commit.sync(partition.clone()).await.is_err() {
            Some(E::KafkaStorageError.code())
        } else {
            wait_for_replicas(&partition, written_end).await.err()
        };
        if let Some(failure) = failure {
            for code in codes.iter_mut().filter(|c| **c == 0) {
                *code = failure;
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

/// Kafka's `offsets.commit.timeout.ms` default: how long a commit waits for the offsets
/// partition's in-sync replicas before it fails.
const OFFSETS_COMMIT_TIMEOUT: Duration = Duration::from_millis(5000);

/// Waits until the offsets partition's high watermark covers the commit's records (they end
/// just below `written_end`), as Kafka's coordinator appends with acks=all. Kafka's errors: a
/// coordinator that lost leadership answers NOT_COORDINATOR, one whose replicas did not catch
/// up in time COORDINATOR_NOT_AVAILABLE; clients retry both.
async fn wait_for_replicas(partition: &Partition, written_end: i64) -> Result<(), i16> {
    let wait = partition
        .wait_for_replicas(written_end)
        .map_err(|_| E::NotCoordinator.code())?;
    futures_lite::future::or(
        async {
            wait.await.map_err(|e| match e {
                AckError::NotLeaderOrFollower => E::NotCoordinator.code(),
                AckError::NotEnoughReplicasAfterAppend => E::CoordinatorNotAvailable.code(),
            })
        },
        async {
            glommio::timer::sleep(OFFSETS_COMMIT_TIMEOUT).await;
            Err(E::CoordinatorNotAvailable.code())
        },
    )
    .await
}
