//! [`PartitionLog`]: the log of one partition replica, in `<log_dir>/<topic>-<partition>/`.
//!
//! Appends validate every batch of a request first (nothing is written if one is invalid), check
//! idempotent-producer sequences, assign offsets by patching each batch's header, roll segments,
//! and write each batch with one vectored `pwrite`. Flushing is split in three steps so that the
//! engine can group-commit and run the `fdatasync`s off its executor. A follower's side (appends
//! of its leader's batches as they are, truncation) is in [`follower`].

mod compaction;
mod follower;
mod open;
mod read;
mod retention;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::{
    patched_prefix, validate_records, BatchError, BatchHeader, TimestampType, ValidationConfig,
    HEADER_SIZE,
};
use crate::error::{IoContext, StorageError};
use crate::file_cache::LogFileCache;
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::{ProducerError, ProducerStage, ProducerStateTable};
use crate::segment::{LogOpener, Segment};

pub use compaction::SegmentSwap;
pub use follower::{FollowerAppendError, LogTruncation};
pub use open::RecoveryReport;
pub use read::{FileSlice, ReadError};
pub use retention::{LogStartOffsetError, RetentionLimits, SegmentDeletion, SegmentDeletionReason};

/// Per-topic log settings, named after Kafka's topic configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this.
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes between two offset-index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`: fsync once this many messages are unflushed.
    pub flush_messages: u64,
    /// `flush.ms`: fsync once a message has waited this long.
    pub flush_ms: i64,
    /// Batch validation settings (`max.message.bytes`, `message.timestamp.*`).
    pub validation: ValidationConfig,
}

impl Default for LogConfig {
    /// Kafka's defaults (1 GiB segments rolled weekly, index entry every 4 KiB, flushing left
    /// to the OS).
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX as u64,
            flush_ms: i64::MAX,
            validation: ValidationConfig::default(),
        }
    }
}

/// Outcome of an append, as the Produce response needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended (or of the original, for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// The LogAppendTime given to the batches, -1 for CreateTime topics.
    pub log_append_time_ms: i64,
    /// First offset of the log.
    pub log_start_offset: i64,
    /// The batch duplicated a recent one of its producer and was not written again.
    pub duplicate: bool,
    /// Records written (0 for a duplicate).
    pub records_appended: u64,
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A batch failed validation.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A batch does not continue its producer's sequence.
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrderSequence {
        /// Expected first sequence.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// A batch comes from a fenced (older) producer epoch.
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        /// The producer.
        producer_id: i64,
        /// Epoch known to the log.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// The request's batches together exceed `segment.bytes`.
    #[error("record list of {size} bytes exceeds segment.bytes ({max})")]
    RecordListTooLarge {
        /// Bytes in the request.
        size: u64,
        /// `segment.bytes`.
        max: u64,
    },
    /// Writing failed; the log directory should be taken offline.
    #[error("I/O error while appending: {0}")]
    Io(#[from] io::Error),
    /// A truncation of the log (a follower cutting its divergent tail) is not durable yet;
    /// nothing may be appended until it is (the caller retries shortly).
    #[error("a truncation of the log is still being made durable")]
    TruncationPending,
}

impl From<ProducerError> for AppendError {
    fn from(e: ProducerError) -> Self {
        match e {
            ProducerError::InvalidProducerEpoch {
                producer_id,
                current,
                got,
            } => AppendError::InvalidProducerEpoch {
                producer_id,
                current,
                got,
            },
            ProducerError::OutOfOrderSequence { expected, got } => {
                AppendError::OutOfOrderSequence { expected, got }
            }
        }
    }
}

/// Keeps the path and message of a [`StorageError`] in an `io::Error`.
fn storage_to_io(e: StorageError) -> io::Error {
    let kind = match &e {
        StorageError::Io { source, .. } => source.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

/// Files to `fdatasync` for a flush, taken by [`PartitionLog::begin_flush`]. It is `Send`, so
/// the engine may sync on a blocking thread, then report with [`PartitionLog::complete_flush`].
#[derive(Debug)]
pub struct PendingFlush {
    files: Vec<LogOpener>,
    /// Indexes of the rolled segments among `files` (a roll does not sync them).
    indexes: Vec<PathBuf>,
    upto: i64,
    /// The log's truncation count when the flush began: a truncation meanwhile makes `upto`
    /// meaningless.
    truncations: u64,
}

impl PendingFlush {
    /// `fdatasync`s every file, opening through the shard's cache those it closed meanwhile (an
    /// `EMFILE` then fails this flush, and the next one tries again), and the rolled segments'
    /// indexes (one that is gone was deleted or replaced by the cleaner, which syncs its own).
    pub fn sync(&self) -> io::Result<()> {
        crate::blocking::debug_assert_blocking_allowed("a log fdatasync");
        self.files
            .iter()
            .try_for_each(|f| f.open().and_then(|file| file.sync_data()))?;
        self.indexes
            .iter()
            .try_for_each(|path| match std::fs::File::open(path) {
                Ok(file) => file.sync_data(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            })
    }

    /// The offset below which everything is durable once `sync` succeeds.
    pub fn upto(&self) -> i64 {
        self.upto
    }
}

/// The log of one partition replica.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    topic: String,
    partition: i32,
    config: LogConfig,
    /// Segments before the active one, by base offset; their files are released to `files`.
    sealed: BTreeMap<i64, Segment>,
    /// The shard's cache of sealed segments' log files.
    files: LogFileCache,
    active: Segment,
    /// First offset readers may see: at or after the first segment's base offset, beyond it
    /// after DeleteRecords (Kafka's `logStartOffset`).
    log_start_offset: i64,
    log_end_offset: i64,
    recovery_point: i64,
    /// When the oldest unflushed message was appended.
    unflushed_since: Option<i64>,
    /// When the first message after the latest `begin_flush` was appended.
    appended_since_flush_began: Option<i64>,
    producers: ProducerStateTable,
    epochs: LeaderEpochCache,
    /// Truncations so far ([`follower`]), and how many of them were made durable
    /// ([`PartitionLog::complete_truncation`]); nothing is appended while one is not.
    truncations: u64,
    synced_truncations: u64,
}

impl PartitionLog {
    /// Appends a produce request's records (see the module docs). `leader_epoch` is written into
    /// every batch and recorded in the leader-epoch cache when it is new.
    pub fn append(
        &mut self,
        records: &Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let batches = validate_records(records, &self.config.validation, now_ms)?;
        let size: u64 = batches.iter().map(|b| b.bytes.len() as u64).sum();
        if size > self.config.segment_bytes {
            return Err(AppendError::RecordListTooLarge {
                size,
                max: self.config.segment_bytes,
            });
        }
        let mut stage = ProducerStage::default();
        let mut next = self.log_end_offset;
        let mut base_offsets = Vec::with_capacity(batches.len());
        for batch in &batches {
            if batch.header.producer_id >= 0 {
                if let Some(dup) =
                    self.producers
                        .check_and_stage(&mut stage, &batch.header, next)?
                {
                    if batches.len() > 1 {
                        return Err(BatchError::InvalidRecord(
                            "a batch already appended was resent with other batches".into(),
                        )
                        .into());
                    }
                    return Ok(AppendInfo {
                        base_offset: dup.base_offset,
                        last_offset: dup.last_offset,
                        log_append_time_ms: -1,
                        log_start_offset: self.log_start_offset(),
                        duplicate: true,
                        records_appended: 0,
                    });
                }
            }
            base_offsets.push(next);
            next += i64::from(batch.header.last_offset_delta) + 1;
        }
        let log_append_time = (self.config.validation.timestamp_type
            == TimestampType::LogAppendTime)
            .then_some(now_ms);
        self.assign_epoch_start(leader_epoch, self.log_end_offset)?;
        let first_offset = self.log_end_offset;
        for (batch, &base) in batches.iter().zip(&base_offsets) {
            debug_assert_eq!(base, self.log_end_offset, "offsets are consecutive");
            let prefix = patched_prefix(batch, base, leader_epoch, log_append_time);
            let header = BatchHeader::parse(&prefix)?;
            self.write_batch(&header, &prefix, &batch.bytes[HEADER_SIZE..], now_ms)?;
        }
        self.producers.commit(stage);
        self.note_appended(now_ms);
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: self.log_end_offset - 1,
            log_append_time_ms: log_append_time.unwrap_or(-1),
            log_start_offset: self.log_start_offset(),
            duplicate: false,
            records_appended: (self.log_end_offset - first_offset) as u64,
        })
    }

    /// Records that leader `epoch` wrote from `start_offset` on, when it is newer than the
    /// latest epoch of the cache (epochs below 0 mean none).
    fn assign_epoch_start(&mut self, epoch: i32, start_offset: i64) -> io::Result<()> {
        if epoch >= 0
            && self
                .epochs
                .latest_epoch()
                .is_none_or(|latest| epoch > latest)
        {
            self.epochs
                .assign(epoch, start_offset)
                .map_err(storage_to_io)?;
        }
        Ok(())
    }

    /// Writes one batch at the end of the log, as it is to be stored (`prefix`, its header,
    /// then `records`), first rolling to a new segment when the batch does not belong in the
    /// active one. Leader and follower appends both write through here, so that a follower's
    /// segments and indexes are laid out as its leader's are.
    fn write_batch(
        &mut self,
        header: &BatchHeader,
        prefix: &[u8; HEADER_SIZE],
        records: &[u8],
        now_ms: i64,
    ) -> io::Result<()> {
        debug_assert!(
            header.base_offset >= self.log_end_offset,
            "offsets strictly increase: batch at {} below the log end offset {}",
            header.base_offset,
            self.log_end_offset
        );
        debug_assert_eq!(
            self.truncations, self.synced_truncations,
            "a truncation must be made durable (LogTruncation::sync, then complete_truncation) \
             before the log is appended to"
        );
        if self.should_roll(header.total_size() as u64, header.last_offset(), now_ms) {
            self.roll_at(header.base_offset, now_ms)?;
        }
        self.active
            .append(header, prefix, records, self.config.index_interval_bytes)?;
        self.log_end_offset = header.next_offset();
        self.debug_assert_invariants();
        Ok(())
    }

    /// Starts the flush clocks (`flush.ms`) at the first append since the last flush.
    fn note_appended(&mut self, now_ms: i64) {
        self.unflushed_since.get_or_insert(now_ms);
        self.appended_since_flush_began.get_or_insert(now_ms);
    }

    /// Whether a batch of `size` bytes ending at `last_offset` must go to a new segment. Only a
    /// non-empty active segment is rolled, unless the batch's offsets do not fit its indexes
    /// (after a gap left by compaction, on a follower).
    fn should_roll(&self, size: u64, last_offset: i64, now_ms: i64) -> bool {
        let active = &self.active;
        if last_offset - active.base_offset() > i64::from(u32::MAX) {
            return true;
        }
        if active.size() == 0 {
            return false;
        }
        active.size() + size > self.config.segment_bytes
            || now_ms - active.created_at_ms() > self.config.segment_ms
            || active.size() + size > u64::from(u32::MAX)
    }

    /// Starts a new active segment at the log end.
    fn roll(&mut self, now_ms: i64) -> io::Result<()> {
        self.roll_at(self.log_end_offset, now_ms)
    }

    /// Starts a new active segment at `base_offset`, or at the log end if that is later (as
    /// Kafka's roll: a follower's next batch may start beyond the log end, after a gap left by
    /// compaction on its leader). The log end offset moves to the new segment's base.
    fn roll_at(&mut self, base_offset: i64, now_ms: i64) -> io::Result<()> {
        let base_offset = base_offset.max(self.log_end_offset);
        let new = Segment::create(&self.dir, base_offset, now_ms).map_err(storage_to_io)?;
        let mut old = std::mem::replace(&mut self.active, new);
        // No sync here, on the shard's thread: the flush that moves the recovery point past
        // the old segment syncs its log and indexes (`begin_flush`).
        old.complete_indexes()?;
        debug_assert!(old.next_offset() <= self.active.base_offset());
        old.release_files(&self.files);
        self.sealed.insert(old.base_offset(), old);
        self.log_end_offset = base_offset;
        Ok(())
    }

    /// Checks the log's invariants (in builds with debug assertions): the log start offset is
    /// at or below the log end offset, which is where the active segment ends; the recovery
    /// point is at or below the log end; segments do not overlap; no leader epoch starts beyond
    /// the log end.
    fn debug_assert_invariants(&self) {
        debug_assert!(
            self.log_start_offset <= self.log_end_offset,
            "log start offset {} above the log end offset {}",
            self.log_start_offset,
            self.log_end_offset
        );
        debug_assert_eq!(
            self.log_end_offset,
            self.active.next_offset(),
            "the log ends where its active segment does"
        );
        debug_assert!(
            self.recovery_point <= self.log_end_offset,
            "recovery point {} above the log end offset {}",
            self.recovery_point,
            self.log_end_offset
        );
        debug_assert!(
            self.sealed
                .values()
                .next_back()
                .is_none_or(|last| last.next_offset() <= self.active.base_offset()),
            "the last sealed segment overlaps the active one"
        );
        debug_assert!(
            self.epochs
                .entries()
                .last()
                .is_none_or(|&(_, start)| start <= self.log_end_offset),
            "a leader epoch starts beyond the log end offset {}",
            self.log_end_offset
        );
    }

    /// Starts a new active segment at the log end now, unless the active segment is empty
    /// (tests use it to lay out segments).
    #[cfg(test)]
    pub(crate) fn roll_now(&mut self, now_ms: i64) -> io::Result<()> {
        if self.active.size() == 0 {
            return Ok(());
        }
        self.roll(now_ms)
    }

    /// Deletes the sealed segments that hold only offsets below `offset`, oldest first, so the
    /// log stays contiguous even if this is interrupted. The active segment is never deleted.
    /// The log start offset moves up to the base offset of the first remaining segment. Returns
    /// the bytes removed.
    #[cfg(test)]
    pub(crate) fn delete_segments_before(&mut self, offset: i64) -> Result<u64, StorageError> {
        let mut removed = 0;
        while let Some(entry) = self.sealed.first_entry() {
            if entry.get().next_offset() > offset {
                break;
            }
            let segment = entry.remove();
            removed += segment.size();
            segment.delete()?;
            self.advance_log_start_to_first_segment()?;
        }
        debug_assert!(self.log_start_offset <= self.log_end_offset);
        Ok(removed)
    }

    /// Raises the log start offset to the first segment's base offset after segments were
    /// removed (Kafka's `incrementStartOffset` on segment deletion; it never goes back).
    fn advance_log_start_to_first_segment(&mut self) -> Result<(), StorageError> {
        self.raise_log_start_offset(self.first_segment_base_offset())
    }

    /// Moves the log start offset up to `offset` (never back) and forgets the leader epochs
    /// wholly below it.
    fn raise_log_start_offset(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = offset;
        self.epochs.truncate_from_start(offset)
    }

    /// Messages appended since the recovery point.
    pub fn unflushed_messages(&self) -> u64 {
        (self.log_end_offset - self.recovery_point).max(0) as u64
    }

    /// How long the oldest unflushed message has waited (0 when everything is flushed): what
    /// `flush.ms` bounds.
    pub fn ms_since_last_flush(&self, now_ms: i64) -> i64 {
        self.unflushed_since.map_or(0, |t| (now_ms - t).max(0))
    }

    /// Whether `flush.messages` or `flush.ms` asks for a flush now.
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        let unflushed = self.unflushed_messages();
        unflushed > 0
            && (unflushed >= self.config.flush_messages
                || self.ms_since_last_flush(now_ms) >= self.config.flush_ms)
    }

    /// Takes the files holding unflushed data, or `None` if everything is flushed.
    pub fn begin_flush(&mut self) -> Option<PendingFlush> {
        if self.recovery_point >= self.log_end_offset {
            return None;
        }
        let recovery_point = self.recovery_point;
        let files = self
            .sealed
            .values()
            .chain(std::iter::once(&self.active))
            .filter(|s| s.next_offset() > recovery_point)
            .map(Segment::log_opener)
            .collect();
        let indexes = self
            .sealed
            .values()
            .filter(|s| s.next_offset() > recovery_point)
            .flat_map(Segment::index_paths)
            .collect();
        self.appended_since_flush_began = None;
        Some(PendingFlush {
            files,
            indexes,
            upto: self.log_end_offset,
            truncations: self.truncations,
        })
    }

    /// Records that `flushed` was synced: the recovery point advances to what it covered. A
    /// flush that began before a truncation moves nothing: what it synced may be gone, and what
    /// was appended since the truncation was not necessarily synced; the next flush syncs it.
    pub fn complete_flush(&mut self, flushed: &PendingFlush) {
        if flushed.truncations != self.truncations {
            return;
        }
        debug_assert!(flushed.upto <= self.log_end_offset);
        self.recovery_point = self.recovery_point.max(flushed.upto);
        self.unflushed_since = if self.recovery_point >= self.log_end_offset {
            None
        } else {
            self.appended_since_flush_began.or(self.unflushed_since)
        };
    }

    /// Whether a truncation is not durable yet (its [`LogTruncation`] not synced and
    /// completed): appends are refused until it is.
    pub fn truncation_pending(&self) -> bool {
        self.truncations != self.synced_truncations
    }

    /// Flushes everything now, on the calling thread (shutdown, tests), a truncation not yet
    /// made durable included.
    pub fn flush_now(&mut self) -> io::Result<()> {
        if self.truncations != self.synced_truncations {
            self.sync_truncation_now()?;
        }
        if let Some(pending) = self.begin_flush() {
            pending.sync()?;
            self.complete_flush(&pending);
        }
        Ok(())
    }

    /// Offset below which everything is on disk (what the recovery-point checkpoint stores).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// First offset of the log (Kafka's log start offset, the low watermark): reads below it
    /// are out of range. It is the first segment's base offset unless DeleteRecords moved it
    /// into that segment.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// Base offset of the oldest segment (the log start offset may lie beyond it).
    pub fn first_segment_base_offset(&self) -> i64 {
        self.sealed
            .values()
            .next()
            .unwrap_or(&self.active)
            .base_offset()
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Bytes in all segment files.
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// The cache the log's sealed segments open their files through.
    pub fn file_cache(&self) -> &LogFileCache {
        &self.files
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The leader-epoch cache (OffsetForLeaderEpoch answers from it).
    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    /// OffsetForLeaderEpoch for this log: (largest epoch <= `epoch`, its end offset).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    /// The idempotent-producer state.
    pub fn producer_state(&self) -> &ProducerStateTable {
        &self.producers
    }

    /// The settings the log runs with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the settings (a topic config change applied live). They take effect from the
    /// next append, roll check and flush check; existing segments are left as they are.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// All segments in offset order.
    fn segments(&self) -> impl DoubleEndedIterator<Item = &Segment> {
        self.sealed.values().chain(std::iter::once(&self.active))
    }

    /// Flushes the log and completes the indexes; the log is closed when this returns.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.flush_now().at(&self.dir)?;
        self.active.seal().at(self.active.log_path())
    }

    /// Deletes the partition: renames its directory to Kafka's
    /// `<topic>-<partition>.<32 hex>-delete`, then removes it.
    pub fn delete(self) -> Result<(), StorageError> {
        let PartitionLog {
            dir,
            topic,
            partition,
            sealed,
            active,
            ..
        } = self;
        drop((sealed, active));
        let parent = dir.parent().unwrap_or(Path::new("."));
        let doomed = parent.join(format!("{topic}-{partition}.{}-delete", unique_hex()));
        std::fs::rename(&dir, &doomed).at(&dir)?;
        std::fs::remove_dir_all(&doomed).at(&doomed)
    }
}

/// 32 hex digits that differ between calls (random seeds of the std hasher, and the clock).
fn unique_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(nanos ^ salt);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

#[cfg(test)]
mod file_budget_tests;
#[cfg(test)]
mod follower_tests;
#[cfg(test)]
mod tests;
