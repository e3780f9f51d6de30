//! The partition's upkeep: flushes for the group commit and shutdown, the values the shard's
//! checkpoints store, retention and DeleteRecords, and the log cleaner's steps. Each method
//! borrows the log only for its own synchronous duration.

use super::Partition;
use sluice_storage::{
    CleanableRange, CleanedSegment, CleanerError, CleaningJob, CompactionConfig,
    LogStartOffsetError, OffsetMap, PendingFlush, RetentionLimits, SegmentDeletion, SegmentSwap,
    StorageError,
};
use std::io;
use std::path::PathBuf;

impl Partition {
    /// Whether `flush.messages` or `flush.ms` asks for a flush now: the caller then waits for
    /// the shard's group commit.
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        self.log.borrow().needs_flush(now_ms)
    }

    /// Takes the files holding unflushed data for a group-commit round, or `None` if
    /// everything is flushed. The caller syncs them off the shard's thread, then calls
    /// [`Partition::complete_flush`].
    pub fn begin_flush(&self) -> Option<PendingFlush> {
        self.log.borrow_mut().begin_flush()
    }

    /// Records that `flushed` (from [`Partition::begin_flush`]) was synced: the recovery point
    /// advances to what it covered.
    pub fn complete_flush(&self, flushed: &PendingFlush) {
        self.log.borrow_mut().complete_flush(flushed);
    }

    /// Flushes everything now, on the calling thread (at shutdown).
    pub fn flush(&self) -> io::Result<()> {
        self.log.borrow_mut().flush_now()
    }

    /// The offset below which everything is on disk (what the recovery point checkpoint
    /// stores).
    pub fn recovery_point(&self) -> i64 {
        self.log.borrow().recovery_point()
    }

    /// The log start offset when it lies beyond the first segment's base offset (DeleteRecords
    /// moved it), `None` otherwise: as in Kafka, only those go to the log start offset
    /// checkpoint, since the others are restored from the segments.
    pub fn checkpointed_log_start_offset(&self) -> Option<i64> {
        let log = self.log.borrow();
        (log.log_start_offset() > log.first_segment_base_offset()).then(|| log.log_start_offset())
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.log.borrow().size_bytes()
    }

    /// The partition's directory.
    pub fn dir(&self) -> PathBuf {
        self.log.borrow().dir().to_path_buf()
    }

    /// DeleteRecords on the leader (Kafka's `Partition.deleteRecordsOnLeader`): moves the log
    /// start offset up to `offset`, which must lie in [0, high watermark]; it never moves back.
    /// Returns whether it moved. The segments wholly below it stay until
    /// [`Partition::delete_segments_below_log_start`].
    pub fn delete_records_before(&self, offset: i64) -> Result<bool, LogStartOffsetError> {
        let high_watermark = self.high_watermark();
        self.log
            .borrow_mut()
            .maybe_increment_log_start_offset(offset, high_watermark)
    }

    /// Deletes the oldest segments whose offsets all lie below the log start offset (Kafka's
    /// `deleteLogStartOffsetBreachedSegments`); their files are renamed `.deleted` for the
    /// caller to remove later.
    pub fn delete_segments_below_log_start(&self) -> Result<Vec<SegmentDeletion>, StorageError> {
        let high_watermark = self.high_watermark();
        self.log
            .borrow_mut()
            .delete_log_start_offset_breached_segments(high_watermark)
    }

    /// Retention (Kafka's `UnifiedLog.deleteOldSegments`): with `cleanup.policy` containing
    /// `delete`, the segments below the log start offset and those beyond `retention.bytes` or
    /// `retention.ms`; otherwise only the segments below the log start offset. Only segments
    /// wholly below the high watermark go; their files are renamed `.deleted` for the caller to
    /// remove later.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<Vec<SegmentDeletion>, StorageError> {
        let (limits, delete_policy) = {
            let config = self.config.borrow();
            let limits = RetentionLimits {
                retention_ms: config.retention_ms,
                retention_bytes: config.retention_bytes,
            };
            (limits, config.cleanup_policy.delete)
        };
        let high_watermark = self.high_watermark();
        let mut log = self.log.borrow_mut();
        if delete_policy {
            log.delete_retention_breached_segments(limits, high_watermark, now_ms)
        } else {
            log.delete_log_start_offset_breached_segments(high_watermark)
        }
    }

    /// What compaction may clean now, below the high watermark (see
    /// [`sluice_storage::PartitionLog::cleanable_range`]); `checkpointed_dirty_offset` is the
    /// partition's entry in the cleaner checkpoint.
    pub fn cleanable_range(
        &self,
        checkpointed_dirty_offset: Option<i64>,
        config: &CompactionConfig,
        now_ms: i64,
    ) -> Result<CleanableRange, StorageError> {
        let high_watermark = self.high_watermark();
        self.log
            .borrow()
            .cleanable_range(checkpointed_dirty_offset, high_watermark, config, now_ms)
    }

    /// A cleaning job for `range`, reusing `map` (see
    /// [`sluice_storage::PartitionLog::start_cleaning`]); the job runs off the shard's thread
    /// while the partition keeps taking appends.
    pub fn start_cleaning(
        &self,
        range: &CleanableRange,
        config: &CompactionConfig,
        map: OffsetMap,
        now_ms: i64,
    ) -> Result<CleaningJob, StorageError> {
        self.log.borrow().start_cleaning(range, config, map, now_ms)
    }

    /// Swaps a cleaned segment in for the segments it replaces, or discards it when the log
    /// changed meanwhile (see [`sluice_storage::PartitionLog::replace_with_cleaned`]).
    pub fn replace_with_cleaned(
        &self,
        cleaned: CleanedSegment,
    ) -> Result<SegmentSwap, CleanerError> {
        self.log.borrow_mut().replace_with_cleaned(cleaned)
    }
}
