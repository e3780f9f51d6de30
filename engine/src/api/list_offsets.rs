//! ListOffsets (v1–v10): the offset for a timestamp, or for one of Kafka's special timestamps
//! (earliest, latest, max timestamp, earliest local, latest tiered), on the shard that leads
//! each partition.
//!
//! Follows Kafka 4.x (`ReplicaManager.fetchOffset`, `Partition.fetchOffsetForTimestamp`,
//! `UnifiedLog.fetchOffsetByTimestamp`):
//!
//! * a partition named more than once in one request gets INVALID_REQUEST for every entry;
//! * a special timestamp newer than the request version (-3 before v7, -4 before v8, -5 before
//!   v9) or an unknown negative one gets UNSUPPORTED_VERSION;
//! * `current_leader_epoch` (v4+) fences stale clients: FENCED_LEADER_EPOCH when it is older
//!   than the partition's epoch, UNKNOWN_LEADER_EPOCH when newer;
//! * LATEST answers the last fetchable offset — the high watermark for consumers (replica id
//!   -1), the last stable offset for READ_COMMITTED (equal to the high watermark until
//!   transactions exist), the log end offset for other replica ids — with the partition's
//!   current leader epoch;
//! * EARLIEST / EARLIEST_LOCAL answer the log start offset (no tiered storage: local = whole
//!   log), with the epoch of the leader-epoch cache that covers it;
//! * LATEST_TIERED answers offset -1 (no tiered storage);
//! * MAX_TIMESTAMP and timestamp lookups answer the record found (offset, its timestamp, the
//!   epoch of the batch that holds it), or -1 / -1 when there is none or when it is not yet
//!   fetchable.

use super::{decode, respond, HandlerResult};
use crate::partition::offsets::{
    EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIERED_TIMESTAMP, LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
};
use crate::partition::Partition;
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::HashMap;
use std::rc::Rc;

/// `replica_id` of an ordinary consumer (`ListOffsetsRequest.CONSUMER_REPLICA_ID`).
const CONSUMER_REPLICA_ID: i32 = -1;
/// `isolation_level` READ_COMMITTED.
const READ_COMMITTED: i8 = 1;
/// "No leader epoch given" in requests.
const NO_EPOCH: i32 = -1;

/// Whether a request of `version` may ask for `timestamp` (Kafka's
/// `timestampMinSupportedVersion`): non-negative timestamps always, the special ones from the
/// version that introduced them, unknown negative ones never.
pub fn timestamp_supported(timestamp: i64, version: i16) -> bool {
    match timestamp {
        t if t >= 0 => true,
        LATEST_TIMESTAMP | EARLIEST_TIMESTAMP => true,
        MAX_TIMESTAMP => version >= 7,
        EARLIEST_LOCAL_TIMESTAMP => version >= 8,
        LATEST_TIERED_TIMESTAMP => version >= 9,
        _ => false,
    }
}

/// Kafka's current-leader-epoch check: `None` when the request's epoch is absent (-1) or
/// matches, else FENCED_LEADER_EPOCH (client is behind) or UNKNOWN_LEADER_EPOCH (ahead).
pub fn leader_epoch_error(requested: i32, current: i32) -> Option<ResponseError> {
    if requested == NO_EPOCH || requested == current {
        None
    } else if requested < current {
        Some(ResponseError::FencedLeaderEpoch)
    } else {
        Some(ResponseError::UnknownLeaderEpoch)
    }
}

/// Answers ListOffsets.
pub async fn handle_list_offsets(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: ListOffsetsRequest = decode(req)?;
    let version = req.api_version;
    let image = shard.image();
    let read_committed = request.isolation_level == READ_COMMITTED;
    let consumer = request.replica_id.0 == CONSUMER_REPLICA_ID;

    let mut seen: HashMap<(&str, i32), usize> = HashMap::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            *seen
                .entry((topic.name.0.as_str(), p.partition_index))
                .or_default() += 1;
        }
    }

    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let error = |e: ResponseError| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(e.code())
            };
            if seen.get(&(name, p.partition_index)).copied().unwrap_or(0) > 1 {
                partitions.push(error(ResponseError::InvalidRequest));
                continue;
            }
            if !timestamp_supported(p.timestamp, version) {
                partitions.push(error(ResponseError::UnsupportedVersion));
                continue;
            }
            let Some(partition) = shard.partition(name, p.partition_index) else {
                partitions.push(error(shard.unserved_partition_error(
                    &image,
                    name,
                    p.partition_index,
                )));
                continue;
            };
            let current_epoch = partition.leader_epoch.get();
            if let Some(e) = leader_epoch_error(p.current_leader_epoch, current_epoch) {
                partitions.push(error(e));
                continue;
            }
            let last_fetchable = last_fetchable_offset(&partition, consumer, read_committed);
            match partition.offset_for_timestamp(p.timestamp, last_fetchable) {
                Ok(found) => {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(found.timestamp)
                        .with_offset(found.offset);
                    if version >= 4 {
                        out.leader_epoch = found.leader_epoch;
                    }
                    partitions.push(out);
                }
                Err(e) => {
                    tracing::warn!("ListOffsets on {}-{} failed: {e}", name, p.partition_index);
                    partitions.push(error(ResponseError::KafkaStorageError));
                }
            }
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    respond(req, &ListOffsetsResponse::default().with_topics(topics))
}

/// The highest offset the requester may see: Kafka's `lastFetchableOffset`.
fn last_fetchable_offset(p: &Partition, consumer: bool, read_committed: bool) -> i64 {
    match (consumer, read_committed) {
        // The last stable offset equals the high watermark until transactions exist.
        (true, true) => p.high_watermark(),
        (true, false) => p.high_watermark(),
        (false, _) => p.log_end_offset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_gate_special_timestamps() {
        assert!(
            timestamp_supported(-1, 1) && timestamp_supported(-2, 1) && timestamp_supported(0, 1)
        );
        assert!(!timestamp_supported(MAX_TIMESTAMP, 6) && timestamp_supported(MAX_TIMESTAMP, 7));
        assert!(
            !timestamp_supported(EARLIEST_LOCAL_TIMESTAMP, 7)
                && timestamp_supported(EARLIEST_LOCAL_TIMESTAMP, 8)
        );
        assert!(
            !timestamp_supported(LATEST_TIERED_TIMESTAMP, 8)
                && timestamp_supported(LATEST_TIERED_TIMESTAMP, 9)
        );
        assert!(!timestamp_supported(-6, 10) && !timestamp_supported(i64::MIN, 10));
    }

    #[test]
    fn leader_epoch_fencing() {
        assert_eq!(leader_epoch_error(-1, 3), None);
        assert_eq!(leader_epoch_error(3, 3), None);
        assert_eq!(
            leader_epoch_error(2, 3),
            Some(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            leader_epoch_error(4, 3),
            Some(ResponseError::UnknownLeaderEpoch)
        );
    }
}
