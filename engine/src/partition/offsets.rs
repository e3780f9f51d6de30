//! ListOffsets lookups on a partition (Kafka's `Partition.fetchOffsetForTimestamp` and
//! `UnifiedLog.fetchOffsetByTimestamp`): the offset for a timestamp, or for one of Kafka's
//! special timestamps (earliest, latest, max timestamp, earliest local, latest tiered). The
//! request-level rules (versions, fencing, duplicates) stay in [`crate::api::list_offsets`].

use super::Partition;
use sluice_storage::{PartitionLog, StorageError};

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

impl Partition {
    /// Resolves `timestamp` (a record timestamp or one of the special ones above; its request
    /// version must allow it) on this partition. `last_fetchable` is the highest offset the
    /// requester may see (high watermark, last stable offset or log end offset): a record found
    /// at or beyond it is reported as not found, as Kafka does. LATEST answers `last_fetchable`
    /// with the current leader epoch.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
        last_fetchable: i64,
    ) -> Result<FoundOffset, StorageError> {
        resolve_offset(
            &self.log.borrow(),
            timestamp,
            self.leader_epoch.get(),
            last_fetchable,
        )
    }
}

/// [`Partition::offset_for_timestamp`] on `log`, with the partition's current leader epoch.
fn resolve_offset(
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
    fn epoch_of_an_offset() {
        assert_eq!(epoch_for_offset(&[(0, 0), (2, 3)], 2), 0);
        assert_eq!(epoch_for_offset(&[(0, 0), (2, 3)], 3), 2);
        assert_eq!(epoch_for_offset(&[(1, 5)], 2), -1);
    }
}
