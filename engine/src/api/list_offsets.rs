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
use crate::partition::Partition;
use crate::shard::Shard;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use sluice_storage::{PartitionLog, StorageError};
use std::collections::HashMap;
use std::rc::Rc;

/// Kafka's `ListOffsetsRequest.LATEST_TIMESTAMP`.
pub const LATEST_TIMESTAMP: i64 = -1;
/// Kafka's `ListOffsetsRequest.EARLIEST_TIMESTAMP`.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// Kafka's `ListOffsetsRequest.MAX_TIMESTAMP` (v7+).
pub const MAX_TIMESTAMP: i64 = -3;
/// Kafka's `ListOffsetsRequest.EARLIEST_LOCAL_TIMESTAMP` (v8+).
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// Kafka's `ListOffsetsRequest.LATEST_TIERED_TIMESTAMP` (v9+).
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// `replica_id` of an ordinary consumer (`ListOffsetsRequest.CONSUMER_REPLICA_ID`).
const CONSUMER_REPLICA_ID: i32 = -1;
/// `isolation_level` READ_COMMITTED.
const READ_COMMITTED: i8 = 1;
/// "No leader epoch given" in requests.
const NO_EPOCH: i32 = -1;

/// What a partition's lookup found: Kafka's `TimestampAndOffset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundOffset {
    /// The record's timestamp; -1 for the special earliest / latest lookups.
    pub timestamp: i64,
    /// The offset; -1 when nothing was found.
    pub offset: i64,
    /// The leader epoch of the offset; -1 when unknown.
    pub leader_epoch: i32,
}

impl FoundOffset {
    /// Nothing found (Kafka's `UNKNOWN_TIMESTAMP` / `UNKNOWN_OFFSET`).
    pub const NONE: FoundOffset = FoundOffset {
        timestamp: -1,
        offset: -1,
        leader_epoch: -1,
    };
}

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

/// The epoch of the leader that wrote `offset`, from the leader-epoch cache (Kafka's
/// `LeaderEpochFileCache.epochForOffset`): the latest epoch starting at or before it.
pub fn epoch_for_offset(epochs: &[(i32, i64)], offset: i64) -> i32 {
    epochs
        .iter()
        .rev()
        .find(|(_, start)| *start <= offset)
        .map(|(e, _)| *e)
        .unwrap_or(-1)
}

/// Resolves one partition's `timestamp` against `log`.
///
/// `current_epoch` is the partition's leader epoch (reported for LATEST); `last_fetchable` is
/// the highest offset the requester may see (high watermark, last stable offset or log end
/// offset): a record found at or beyond it is reported as not found, as Kafka does.
/// `timestamp` must have passed [`timestamp_supported`].
pub fn resolve_offset(
    log: &PartitionLog,
    timestamp: i64,
    current_epoch: i32,
    last_fetchable: i64,
) -> Result<FoundOffset, StorageError> {
    let epochs = log.leader_epochs().entries();
    let log_start = log.log_start_offset();
    let found = match timestamp {
        LATEST_TIMESTAMP => {
            return Ok(FoundOffset {
                timestamp: -1,
                offset: last_fetchable,
                leader_epoch: current_epoch,
            });
        }
        // Kafka reports the first cached epoch when it starts at or before the log start (its
        // cache is truncated to the log start); the epoch covering the log start is the same
        // and stays right if our cache still holds older entries. -1 when none covers it.
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
            return Ok(FoundOffset {
                timestamp: -1,
                offset: log_start,
                leader_epoch: epoch_for_offset(epochs, log_start),
            });
        }
        LATEST_TIERED_TIMESTAMP => return Ok(FoundOffset::NONE),
        MAX_TIMESTAMP => log.max_timestamp()?,
        t => log.offset_for_timestamp(t)?,
    };
    Ok(match found {
        Some((offset, ts)) if offset < last_fetchable => FoundOffset {
            timestamp: ts,
            offset,
            leader_epoch: epoch_for_offset(epochs, offset),
        },
        _ => FoundOffset::NONE,
    })
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
            let result = resolve_offset(
                &partition.log.borrow(),
                p.timestamp,
                current_epoch,
                last_fetchable,
            );
            match result {
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
        (false, _) => p.log.borrow().log_end_offset(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use sluice_storage::wire::{BatchOptions, RecordBatchBuilder};
    use sluice_storage::LogConfig;

    /// One v2 batch with one record per timestamp.
    pub(crate) fn batch(timestamps: &[i64]) -> Bytes {
        let mut builder = RecordBatchBuilder::new();
        for &ts in timestamps {
            builder.push(ts, None, Some(b"value"), &[]);
        }
        builder.finish(&BatchOptions::default()).unwrap()
    }

    const NOW: i64 = 1_700_000_000_000;

    /// A log with offsets 0-2 (epoch 0, ts NOW+10..12) and 3-4 (epoch 2, ts NOW+50, NOW+20).
    fn sample_log(dir: &std::path::Path) -> PartitionLog {
        let (mut log, _) =
            PartitionLog::open(dir, "t", 0, LogConfig::default(), 0, 0, NOW).unwrap();
        log.append(&batch(&[NOW + 10, NOW + 11, NOW + 12]), 0, NOW)
            .unwrap();
        log.append(&batch(&[NOW + 50, NOW + 20]), 2, NOW).unwrap();
        log
    }

    #[test]
    fn special_timestamps_follow_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let log = sample_log(dir.path());
        let hw = log.log_end_offset();
        assert_eq!(hw, 5);
        assert_eq!(
            resolve_offset(&log, LATEST_TIMESTAMP, 2, hw).unwrap(),
            FoundOffset {
                timestamp: -1,
                offset: 5,
                leader_epoch: 2
            }
        );
        assert_eq!(
            resolve_offset(&log, EARLIEST_TIMESTAMP, 2, hw).unwrap(),
            FoundOffset {
                timestamp: -1,
                offset: 0,
                leader_epoch: 0
            }
        );
        assert_eq!(
            resolve_offset(&log, EARLIEST_LOCAL_TIMESTAMP, 2, hw).unwrap(),
            FoundOffset {
                timestamp: -1,
                offset: 0,
                leader_epoch: 0
            }
        );
        assert_eq!(
            resolve_offset(&log, LATEST_TIERED_TIMESTAMP, 2, hw).unwrap(),
            FoundOffset::NONE
        );
        assert_eq!(
            resolve_offset(&log, MAX_TIMESTAMP, 2, hw).unwrap(),
            FoundOffset {
                timestamp: NOW + 50,
                offset: 3,
                leader_epoch: 2
            }
        );
    }

    #[test]
    fn timestamp_lookup_finds_first_record_at_or_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = sample_log(dir.path());
        let hw = log.log_end_offset();
        assert_eq!(
            resolve_offset(&log, 0, 2, hw).unwrap(),
            FoundOffset {
                timestamp: NOW + 10,
                offset: 0,
                leader_epoch: 0
            }
        );
        assert_eq!(
            resolve_offset(&log, NOW + 11, 2, hw).unwrap(),
            FoundOffset {
                timestamp: NOW + 11,
                offset: 1,
                leader_epoch: 0
            }
        );
        assert_eq!(resolve_offset(&log, NOW + 13, 2, hw).unwrap().offset, 3);
        assert_eq!(
            resolve_offset(&log, NOW + 51, 2, hw).unwrap(),
            FoundOffset::NONE
        );
        // Not yet fetchable (beyond the last fetchable offset): not found.
        assert_eq!(
            resolve_offset(&log, NOW + 13, 2, 3).unwrap(),
            FoundOffset::NONE
        );
    }

    #[test]
    fn empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) =
            PartitionLog::open(dir.path(), "t", 0, LogConfig::default(), 0, 0, NOW).unwrap();
        assert_eq!(
            resolve_offset(&log, EARLIEST_TIMESTAMP, 0, 0).unwrap(),
            FoundOffset {
                timestamp: -1,
                offset: 0,
                leader_epoch: -1
            }
        );
        assert_eq!(
            resolve_offset(&log, LATEST_TIMESTAMP, 0, 0).unwrap(),
            FoundOffset {
                timestamp: -1,
                offset: 0,
                leader_epoch: 0
            }
        );
        assert_eq!(
            resolve_offset(&log, MAX_TIMESTAMP, 0, 0).unwrap(),
            FoundOffset::NONE
        );
        assert_eq!(resolve_offset(&log, 5, 0, 0).unwrap(), FoundOffset::NONE);
    }

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
        assert_eq!(epoch_for_offset(&[(0, 0), (2, 3)], 2), 0);
        assert_eq!(epoch_for_offset(&[(0, 0), (2, 3)], 3), 2);
        assert_eq!(epoch_for_offset(&[(1, 5)], 2), -1);
    }
}
