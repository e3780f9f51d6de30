//! The follower's view of one local replica's log: the trait the engine implements for each
//! partition this shard follows.
//!
//! The fetcher never sees storage types. It reads offsets and epochs, hands the leader's record
//! data over unchanged, and asks for truncations; everything about segments, indexes, producer
//! state, the leader-epoch cache and durability stays behind the engine's `Partition`.

use bytes::Bytes;

/// One local follower replica, as the fetcher drives it (Kafka's `Partition` / `UnifiedLog`
/// methods that `ReplicaFetcherThread` calls).
///
/// Every method is synchronous and short: the fetcher calls them between two awaits, on the
/// shard that owns the log, and never holds a borrow across an await.
pub trait FollowerLog {
    /// The first offset of the log (Kafka's log start offset).
    fn log_start_offset(&self) -> i64;

    /// The offset the next appended record gets (Kafka's log end offset, LEO). The fetcher
    /// always fetches from here.
    fn log_end_offset(&self) -> i64;

    /// The follower's high watermark, as last set by [`FollowerLog::set_high_watermark`] (or
    /// recovered from the high-watermark checkpoint). Truncating partitions whose log has no
    /// leader epochs fall back to it (Kafka's `truncateToHighWatermark`).
    fn high_watermark(&self) -> i64;

    /// The epoch of the latest entry of the log's leader-epoch cache, `None` when the cache is
    /// empty (a new or empty log).
    fn latest_epoch(&self) -> Option<i32>;

    /// The largest epoch <= `leader_epoch` that the log knows and the offset where it ends (the
    /// log end offset for the latest epoch), or `(-1, -1)` when the epoch is unknown: Kafka's
    /// `UnifiedLog.endOffsetForEpoch` (`LeaderEpochFileCache.endOffsetFor`). An epoch below the
    /// first known one answers `(leader_epoch, start offset of the first epoch)`, as Kafka does.
    fn end_offset_for_epoch(&self, leader_epoch: i32) -> (i32, i64);

    /// Appends the leader's record batches exactly as they are (offsets, leader epochs,
    /// producer ids and sequences kept), updating the leader-epoch cache from the batches'
    /// epochs (Kafka's `Partition.appendRecordsToFollowerOrFutureReplica`). `records` may end
    /// with a partial batch (the leader cut the response at a byte limit): the log appends
    /// the whole batches before it and ignores the rest. The first batch starts at
    /// [`FollowerLog::log_end_offset`].
    fn append_as_follower(&self, records: &Bytes) -> Result<FollowerAppend, FollowerLogError>;

    /// Removes every record at or above `offset` and the leader-epoch entries that start at
    /// or above it (Kafka's `Partition.truncateTo`). The fetcher calls it only with
    /// `log_start_offset() <= offset < log_end_offset()`.
    fn truncate_to(&self, offset: i64) -> Result<(), FollowerLogError>;

    /// Empties the log and restarts it at `offset`, which becomes both its start and its end
    /// (Kafka's `Partition.truncateFullyAndStartAt`): the leader has deleted everything this
    /// replica holds, or the truncation point lies below the local log start.
    fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), FollowerLogError>;

    /// Sets the follower's high watermark. The fetcher passes the leader's high watermark
    /// bounded to `[log_start_offset, log_end_offset]` (Kafka's `UnifiedLog.updateHighWatermark`
    /// on a follower); it may move backwards after a leader change. The engine wakes the
    /// fetches parked on the partition (fetch from follower) when it moves.
    fn set_high_watermark(&self, high_watermark: i64);

    /// Raises the log start offset to the leader's, when the leader's is higher (records
    /// deleted by retention or DeleteRecords on the leader): Kafka's
    /// `UnifiedLog.maybeIncrementLogStartOffset(.., LeaderOffsetIncremented)`. The fetcher
    /// calls it only with an offset at most the follower's high watermark.
    fn maybe_increment_log_start_offset(
        &self,
        leader_log_start_offset: i64,
    ) -> Result<(), FollowerLogError>;
}

/// What one [`FollowerLog::append_as_follower`] appended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowerAppend {
    /// Offset of the last record appended; `None` when the data held no whole batch.
    pub last_offset: Option<i64>,
    /// Bytes of whole batches appended (Kafka's `LogAppendInfo.validBytes`).
    pub appended_bytes: usize,
}

/// Why a [`FollowerLog`] operation failed. The two kinds get Kafka's two treatments.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FollowerLogError {
    /// The leader's data failed validation (bad CRC, bad framing, offsets that do not follow
    /// the log end): the partition is retried after `replica.fetch.backoff.ms`, as Kafka does
    /// for `CorruptRecordException` / `InvalidRecordException` (often a transient state of the
    /// leader's log).
    #[error("invalid records from the leader: {0}")]
    InvalidRecords(String),
    /// The log could not be changed (an I/O error, a full disk): the partition stops fetching
    /// until the engine hands it to the fetcher again, as Kafka marks it failed on a
    /// `KafkaStorageException`.
    #[error("storage error: {0}")]
    Storage(String),
}
