//! The follower's side of a partition log, after Kafka's `UnifiedLog.appendAsFollower`,
//! `truncateTo` and `truncateFullyAndStartAt`: a follower stores its leader's batches byte for
//! byte, and cuts its divergent tail after a leader change.
//!
//! # Appending
//!
//! [`PartitionLog::append_as_follower`] takes the records a leader's Fetch response carried for
//! the partition. Its whole batches are validated as Kafka's follower does
//! ([`validate_replicated_records`]: size, magic 2, CRC32C; a truncated last batch is left
//! out), and their offsets checked: the first batch may not start below the log end offset,
//! and each batch starts after the previous one ends. A gap is accepted: compaction on the
//! leader removes whole batches, so a fetch from an offset it removed answers with a later
//! batch. The batches are then written unchanged (offsets, leader epochs, timestamps, producer
//! ids) through the leader's write path, so segments roll and indexes fill the same way. Each
//! batch's leader epoch enters the leader-epoch cache at the batch's base offset when it is
//! newer than the latest, and the producer state replays each batch without checks (a follower
//! neither refuses nor deduplicates what its leader accepted).
//!
//! # Truncating
//!
//! [`PartitionLog::truncate_to`] drops every batch that ends at or after an offset (whole
//! segments from the newest down, then the tail of the segment left last), and
//! [`PartitionLog::truncate_fully_and_start_at`] empties the log and restarts it at an offset.
//! Segments that go whole are renamed `.deleted`, newest first: a crash midway leaves a log
//! that ends early but has no hole, which recovery opens as it is (a torn cut is cut again at
//! the first bad batch). The leader-epoch cache loses the epochs beyond the new end, the
//! producer state is brought back to it (the producers that lost every batch are read again
//! from the log, backwards, until their state is known), and the log start offset and the
//! recovery point never stay above it.
//!
//! # Durability: what the caller must do after a truncation
//!
//! A truncation is not durable when it returns, and it makes no blocking call on the shard's
//! thread (no fsync; the leader-epoch checkpoint is not rewritten yet). It returns a
//! [`LogTruncation`], and before the log is appended to again (builds with debug assertions
//! check it), the caller must:
//!
//! 1. run [`LogTruncation::sync`] off the shard's thread (the file worker or the blocking
//!    pool): it fdatasyncs the cut active segment and its indexes, writes the leader-epoch
//!    checkpoint and fsyncs the partition directory;
//! 2. call [`PartitionLog::complete_truncation`];
//! 3. write the shard's `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`
//!    (off the shard's thread): the recovery point and the log start offset may have moved
//!    down, and a stale recovery point above the new log end would let unverified data
//!    written after the truncation pass recovery, while a stale log start offset above it
//!    would make the next open discard the whole log.
//!
//! Then, as for retention, the files of [`LogTruncation::deleted`] are unlinked with
//! [`DeletedSegment::remove_files`] after `file.delete.delay.ms` (or at the next open).

use std::fs::File;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;

use super::{AppendInfo, PartitionLog};
use crate::batch::{validate_replicated_records, BatchError, HEADER_SIZE};
use crate::error::{IoContext, StorageError};
use crate::leader_epoch::EpochCheckpointWrite;
use crate::producer_state::ProducerTailScan;
use crate::segment::{restore_deleted, DeletedSegment, LogOpener, Segment};

/// Why a follower append was refused or failed. Nothing is written when it is refused.
#[derive(Debug, thiserror::Error)]
pub enum FollowerAppendError {
    /// A whole batch failed validation (Kafka's CORRUPT_MESSAGE, or magic below 2).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The first batch starts below the log end offset: the records overlap the log (Kafka's
    /// `UnexpectedAppendOffsetException`). Kafka's follower recovers from one case: when the
    /// log is empty (log end offset = log start offset) and the first batch holds the log end
    /// offset (the leader's log start offset lies inside that batch, after DeleteRecords), it
    /// restarts the log at the batch's base offset with
    /// [`PartitionLog::truncate_fully_and_start_at`] and appends again.
    #[error(
        "unexpected offset in a follower append: first offset {first_offset} (last \
         {last_offset}) is below the log end offset {log_end_offset}"
    )]
    UnexpectedAppendOffset {
        /// Base offset of the first batch.
        first_offset: i64,
        /// Last offset of the last batch.
        last_offset: i64,
        /// The log end offset.
        log_end_offset: i64,
    },
    /// A batch does not start after the previous one ends (Kafka's
    /// `OffsetsOutOfOrderException`).
    #[error(
        "out of order offsets in a follower append: a batch at offset {base_offset} follows \
         one ending at {previous_last_offset}"
    )]
    OffsetsOutOfOrder {
        /// Last offset of the previous batch.
        previous_last_offset: i64,
        /// Base offset of the batch that follows it.
        base_offset: i64,
    },
    /// Writing failed; the log directory should be taken offline.
    #[error("I/O error while appending as a follower: {0}")]
    Io(#[from] io::Error),
}

/// A truncation of a log ([`PartitionLog::truncate_to`],
/// [`PartitionLog::truncate_fully_and_start_at`]): what it removed, and the blocking work that
/// makes it durable (see the module docs for what the caller must do). It is `Send`.
#[derive(Debug)]
pub struct LogTruncation {
    /// The log end offset after the truncation.
    pub log_end_offset: i64,
    /// Bytes removed from segment files.
    pub bytes_removed: u64,
    /// Segments removed whole; their files were renamed `.deleted`, to unlink after
    /// `file.delete.delay.ms`.
    pub deleted: Vec<DeletedSegment>,
    /// The active segment's log file after the truncation (cut, or new).
    active_log: LogOpener,
    /// Its offset and time indexes.
    active_indexes: [PathBuf; 2],
    /// The partition directory (renames and new files).
    dir: PathBuf,
    /// The leader-epoch checkpoint to write, if the truncation changed the epochs.
    epochs: Option<EpochCheckpointWrite>,
    /// Which truncation of the log this is (1 for the first).
    generation: u64,
}

impl LogTruncation {
    /// Makes the truncation durable: fdatasyncs the active segment's log file and indexes
    /// (their new sizes), writes the leader-epoch checkpoint, and fsyncs the partition
    /// directory (the renamed and created files). Blocking: run it off the shard's thread.
    pub fn sync(&self) -> io::Result<()> {
        crate::blocking::debug_assert_blocking_allowed("a truncation's fdatasync");
        self.active_log.open()?.sync_data()?;
        for path in &self.active_indexes {
            match File::open(path) {
                Ok(file) => file.sync_data()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(epochs) = &self.epochs {
            epochs.write()?;
        }
        File::open(&self.dir)?.sync_all()
    }
}

impl PartitionLog {
    /// Appends the records of a leader's Fetch response as a follower (see the module docs):
    /// whole batches, written unchanged; a truncated last batch is left out (and fetched again
    /// from the new log end offset). The answer's `base_offset` is the first batch's base
    /// offset and `last_offset` the new log end offset minus one (both the log end offset
    /// and one below when no whole batch came); `records_appended` counts the batches'
    /// records.
    pub fn append_as_follower(
        &mut self,
        records: &Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, FollowerAppendError> {
        let batches = validate_replicated_records(records)?;
        let mut previous_last_offset = None;
        for batch in &batches {
            let base_offset = batch.header.base_offset;
            if let Some(previous_last_offset) = previous_last_offset {
                if base_offset <= previous_last_offset {
                    return Err(FollowerAppendError::OffsetsOutOfOrder {
                        previous_last_offset,
                        base_offset,
                    });
                }
            }
            previous_last_offset = Some(batch.header.last_offset());
        }
        let first_offset = batches
            .first()
            .map_or(self.log_end_offset, |b| b.header.base_offset);
        if first_offset < self.log_end_offset {
            return Err(FollowerAppendError::UnexpectedAppendOffset {
                first_offset,
                last_offset: previous_last_offset.unwrap_or(first_offset),
                log_end_offset: self.log_end_offset,
            });
        }
        if !batches.is_empty() {
            self.note_appended(now_ms);
        }
        let mut records_appended = 0u64;
        for batch in &batches {
            let header = &batch.header;
            self.assign_epoch_start(header.partition_leader_epoch, header.base_offset)?;
            let mut prefix = [0u8; HEADER_SIZE];
            prefix.copy_from_slice(&batch.bytes[..HEADER_SIZE]);
            self.write_batch(header, &prefix, &batch.bytes[HEADER_SIZE..], now_ms)?;
            self.producers.replay(header);
            records_appended += u64::try_from(header.records_count).unwrap_or(0);
        }
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: self.log_end_offset - 1,
            log_append_time_ms: -1,
            log_start_offset: self.log_start_offset,
            duplicate: false,
            records_appended,
        })
    }

    /// Drops every batch that ends at or after `offset` (Kafka's `UnifiedLog.truncateTo`):
    /// segments that start at or beyond it go whole, and the last one that starts below it
    /// becomes the active segment, cut before the first such batch (a batch holding `offset`
    /// goes whole: the log end offset is then its base offset, below `offset`). So the log is
    /// laid out as a follower's that fetched only up to there. The leader-epoch cache (Kafka's
    /// `truncateFromEnd`), producer state, log start offset and recovery point follow the new
    /// log end. When `offset` is at or beyond the log end offset, only the leader epochs
    /// starting at the log end are dropped (a leader that assigned an epoch but appended
    /// nothing); when it is at or below the first segment's base offset, the log restarts
    /// empty there ([`Self::truncate_fully_and_start_at`]).
    ///
    /// Returns `None` when nothing changed; otherwise the caller must make the truncation
    /// durable before the next append (see the module docs).
    pub fn truncate_to(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<Option<LogTruncation>, StorageError> {
        if offset < 0 {
            return Err(StorageError::InvalidOffset {
                operation: "truncate_to",
                offset,
            });
        }
        if offset >= self.log_end_offset {
            let epochs = self.epochs.truncate_from_end_deferred(self.log_end_offset);
            return Ok(epochs.map(|epochs| self.record_truncation(Vec::new(), 0, Some(epochs))));
        }
        if offset <= self.first_segment_base_offset() {
            return self.truncate_fully_and_start_at(offset, now_ms).map(Some);
        }
        let keep_base = if self.active.base_offset() < offset {
            self.active.base_offset()
        } else {
            let Some((&base, keep)) = self.sealed.range_mut(..offset).next_back() else {
                return Err(StorageError::InvalidOffset {
                    operation: "truncate_to (no segment starts below it)",
                    offset,
                });
            };
            keep.pin()?;
            base
        };
        let doomed = (self.active.base_offset() >= offset)
            .then_some(&self.active)
            .into_iter()
            .chain(self.sealed.range(offset..).rev().map(|(_, s)| s));
        let deleted = rename_newest_first(doomed)?;
        drop(self.sealed.split_off(&offset));
        if keep_base != self.active.base_offset() {
            if let Some(keep) = self.sealed.remove(&keep_base) {
                self.active = keep;
            }
        }
        debug_assert_eq!(self.active.base_offset(), keep_base);
        self.log_end_offset = self.active.next_offset();
        let cut = self
            .active
            .truncate_to(offset, now_ms)
            .at(self.active.log_path());
        self.log_end_offset = self.active.next_offset();
        let mut truncation = self.settle_after_truncation(deleted)?;
        truncation.bytes_removed += cut?;
        Ok(Some(truncation))
    }

    /// Empties the log and restarts it at `offset` (Kafka's `truncateFullyAndStartAt`): when
    /// the leader's log starts beyond this log's end, or the log must restart below its first
    /// segment. Every segment goes (renamed `.deleted`, newest first), a new empty one starts
    /// at `offset`, which becomes the log start offset, log end offset and recovery point; the
    /// leader epochs and the producer state are forgotten. If a rename or the new segment
    /// fails, the renamed files get their names back and the log is left as it was. The
    /// caller must make the truncation durable before the next append (see the module docs).
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<LogTruncation, StorageError> {
        if offset < 0 {
            return Err(StorageError::InvalidOffset {
                operation: "truncate_fully_and_start_at",
                offset,
            });
        }
        let everything = std::iter::once(&self.active).chain(self.sealed.values().rev());
        let deleted = rename_newest_first(everything)?;
        let active = match Segment::create(&self.dir, offset, now_ms) {
            Ok(segment) => segment,
            Err(e) => {
                restore_deleted(&deleted);
                return Err(e);
            }
        };
        let bytes_removed = deleted.iter().map(DeletedSegment::size).sum();
        self.sealed.clear();
        self.active = active;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        self.unflushed_since = None;
        self.appended_since_flush_began = None;
        self.producers.clear();
        let epochs = self.epochs.clear_deferred();
        let truncation = self.record_truncation(deleted, bytes_removed, epochs);
        self.debug_assert_invariants();
        Ok(truncation)
    }

    /// Records that `truncation` was made durable ([`LogTruncation::sync`] succeeded): the log
    /// may be appended to again once every truncation so far is.
    pub fn complete_truncation(&mut self, truncation: &LogTruncation) {
        debug_assert!(truncation.generation <= self.truncations);
        self.synced_truncations = self.synced_truncations.max(truncation.generation);
    }

    /// The latest leader epoch of the log's leader-epoch cache, if any (a follower asks its
    /// leader for that epoch's end offset with OffsetForLeaderEpoch).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Makes the truncations so far durable on the calling thread (see [`LogTruncation::sync`];
    /// for [`Self::flush_now`], at shutdown).
    pub(super) fn sync_truncation_now(&mut self) -> io::Result<()> {
        self.active.log_file()?.sync_data()?;
        self.active.offset_index().sync()?;
        self.active.time_index().sync()?;
        self.epochs.checkpoint().write()?;
        File::open(&self.dir)?.sync_all()?;
        self.synced_truncations = self.truncations;
        Ok(())
    }

    /// Brings the leader epochs, producer state, log start offset and recovery point to the
    /// new log end offset after segments were cut or deleted, and records the truncation.
    fn settle_after_truncation(
        &mut self,
        deleted: Vec<DeletedSegment>,
    ) -> Result<LogTruncation, StorageError> {
        let end = self.log_end_offset;
        let epochs = self.epochs.truncate_from_end_deferred(end);
        self.log_start_offset = self.log_start_offset.min(end);
        self.recovery_point = self.recovery_point.min(end);
        if self.recovery_point >= end {
            self.unflushed_since = None;
            self.appended_since_flush_began = None;
        }
        let bytes_removed = deleted.iter().map(DeletedSegment::size).sum();
        let truncation = self.record_truncation(deleted, bytes_removed, epochs);
        let emptied = self.producers.truncate_from(end);
        self.rebuild_producers(emptied)?;
        self.debug_assert_invariants();
        Ok(truncation)
    }

    /// Counts a truncation (appends wait for it to be made durable) and describes it.
    fn record_truncation(
        &mut self,
        deleted: Vec<DeletedSegment>,
        bytes_removed: u64,
        epochs: Option<EpochCheckpointWrite>,
    ) -> LogTruncation {
        self.truncations += 1;
        LogTruncation {
            log_end_offset: self.log_end_offset,
            bytes_removed,
            deleted,
            active_log: self.active.log_opener(),
            active_indexes: self.active.index_paths(),
            dir: self.dir.clone(),
            epochs,
            generation: self.truncations,
        }
    }

    /// Reads the state of `producer_ids` (producers that lost every batch they had in the
    /// state to a truncation) back from the log, newest segment first, until it is known.
    fn rebuild_producers(&mut self, producer_ids: Vec<i64>) -> Result<(), StorageError> {
        if producer_ids.is_empty() {
            return Ok(());
        }
        let mut scan = ProducerTailScan::new(producer_ids);
        for segment in self.segments().rev() {
            if scan.is_done() {
                break;
            }
            let mut headers = Vec::new();
            segment
                .for_each_batch_header(|h| {
                    if scan.wants(h.producer_id) {
                        headers.push(*h);
                    }
                })
                .at(segment.log_path())?;
            scan.feed_older_segment(&headers);
        }
        scan.finish(&mut self.producers);
        Ok(())
    }
}

/// Renames the files of `segments`, given newest first, to `.deleted` in that order (so that a
/// crash midway leaves the log without a hole). If a rename fails, the files renamed so far
/// get their names back and the error is returned.
fn rename_newest_first<'a>(
    segments: impl Iterator<Item = &'a Segment>,
) -> Result<Vec<DeletedSegment>, StorageError> {
    let mut deleted: Vec<DeletedSegment> = Vec::new();
    for segment in segments {
        debug_assert!(deleted
            .last()
            .is_none_or(|newer| segment.next_offset() <= newer.base_offset()));
        match segment.rename_for_deletion() {
            Ok(renamed) => deleted.push(renamed),
            Err(e) => {
                restore_deleted(&deleted);
                return Err(e);
            }
        }
    }
    Ok(deleted)
}
