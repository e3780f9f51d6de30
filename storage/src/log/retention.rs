//! Moving the log start offset and deleting the oldest segments, as Kafka's
//! `UnifiedLog.deleteOldSegments` does: whole segments below the log start offset (after
//! DeleteRecords), then by `retention.bytes`, then by `retention.ms`.
//!
//! Deleted segments leave the log at once and their files are renamed to `<name>.deleted`; the
//! caller unlinks them later with [`DeletedSegment::remove_files`] (Kafka's
//! `file.delete.delay.ms`), and [`PartitionLog::open`] removes any it finds.

use std::fmt;

use super::PartitionLog;
use crate::error::{IoContext, StorageError};
use crate::segment::{DeletedSegment, Segment};

/// A topic's retention settings, read at each check so that config changes apply at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionLimits {
    /// `retention.ms`: delete segments whose largest timestamp is older than this (-1 = no
    /// time limit).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger than this (-1 =
    /// no size limit).
    pub retention_bytes: i64,
}

/// Why a segment was deleted; its `Display` is the reason the broker logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentDeletionReason {
    /// Every offset of the segment is below the log start offset (DeleteRecords moved it).
    LogStartOffset {
        /// The log start offset.
        log_start_offset: i64,
    },
    /// The log was larger than `retention.bytes` by at least the segment's size.
    RetentionBytes {
        /// `retention.bytes`.
        retention_bytes: i64,
        /// Size of the log before the segment was deleted.
        log_size: u64,
    },
    /// The segment's largest timestamp is older than `retention.ms`.
    RetentionMs {
        /// `retention.ms`.
        retention_ms: i64,
        /// The segment's largest timestamp (see [`Segment::largest_timestamp`]).
        largest_timestamp: i64,
    },
}

impl fmt::Display for SegmentDeletionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentDeletionReason::LogStartOffset { log_start_offset } => {
                write!(f, "below the log start offset {log_start_offset}")
            }
            SegmentDeletionReason::RetentionBytes {
                retention_bytes,
                log_size,
            } => write!(
                f,
                "retention.bytes {retention_bytes} breached (log size {log_size} bytes)"
            ),
            SegmentDeletionReason::RetentionMs {
                retention_ms,
                largest_timestamp,
            } => write!(
                f,
                "retention.ms {retention_ms} breached (largest timestamp {largest_timestamp})"
            ),
        }
    }
}

/// One deleted segment and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDeletion {
    /// Why it was deleted.
    pub reason: SegmentDeletionReason,
    /// Its renamed files, to unlink after `file.delete.delay.ms`.
    pub segment: DeletedSegment,
}

/// Why the log start offset could not be moved (DeleteRecords answers OFFSET_OUT_OF_RANGE).
#[derive(Debug, thiserror::Error)]
pub enum LogStartOffsetError {
    /// The new log start offset is negative or beyond the high watermark.
    #[error("cannot move the log start offset to {requested}: it must lie in [0, {high_watermark}] (the high watermark)")]
    OutOfRange {
        /// The offset asked for.
        requested: i64,
        /// The partition's high watermark.
        high_watermark: i64,
    },
    /// The leader-epoch checkpoint could not be rewritten for the new log start offset.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PartitionLog {
    /// Moves the log start offset up to `new_log_start_offset` (Kafka's
    /// `maybeIncrementLogStartOffset`, for DeleteRecords); it never moves back. Reads below it
    /// are then out of range; the segments wholly below it stay until
    /// [`PartitionLog::delete_log_start_offset_breached_segments`]. Returns whether it moved.
    pub fn maybe_increment_log_start_offset(
        &mut self,
        new_log_start_offset: i64,
        high_watermark: i64,
    ) -> Result<bool, LogStartOffsetError> {
        debug_assert!(high_watermark <= self.log_end_offset);
        if new_log_start_offset < 0 || new_log_start_offset > high_watermark {
            return Err(LogStartOffsetError::OutOfRange {
                requested: new_log_start_offset,
                high_watermark,
            });
        }
        if new_log_start_offset <= self.log_start_offset {
            return Ok(false);
        }
        self.raise_log_start_offset(new_log_start_offset)?;
        debug_assert!(self.log_start_offset <= high_watermark);
        Ok(true)
    }

    /// Deletes the oldest segments whose offsets all lie below the log start offset (Kafka's
    /// `deleteLogStartOffsetBreachedSegments`). The active segment is never deleted this way.
    pub fn delete_log_start_offset_breached_segments(
        &mut self,
        high_watermark: i64,
    ) -> Result<Vec<SegmentDeletion>, StorageError> {
        let log_start_offset = self.log_start_offset;
        // The active segment has no next segment, so it never qualifies: no roll is needed and
        // the clock is not used.
        self.delete_oldest_segments(high_watermark, 0, |_, next| {
            Ok(next
                .is_some_and(|n| n.base_offset() <= log_start_offset)
                .then_some(SegmentDeletionReason::LogStartOffset { log_start_offset }))
        })
    }

    /// Applies `cleanup.policy=delete` (Kafka's `deleteOldSegments`): deletes the segments below
    /// the log start offset, then the oldest segments while the log exceeds
    /// `retention.bytes` by at least their size, then the oldest segments whose largest
    /// timestamp is more than `retention.ms` before `now_ms`. Only whole segments go, oldest
    /// first, and only those entirely below `high_watermark`. As in Kafka, the active segment
    /// may go too when it qualifies: a new empty one is rolled first, so that the log always has
    /// one. The log start offset then moves to the first remaining segment.
    pub fn delete_retention_breached_segments(
        &mut self,
        limits: RetentionLimits,
        high_watermark: i64,
        now_ms: i64,
    ) -> Result<Vec<SegmentDeletion>, StorageError> {
        let mut deletions = self.delete_log_start_offset_breached_segments(high_watermark)?;
        let log_size = self.size_bytes();
        if limits.retention_bytes >= 0 && log_size >= limits.retention_bytes as u64 {
            let mut excess = log_size - limits.retention_bytes as u64;
            let reason = SegmentDeletionReason::RetentionBytes {
                retention_bytes: limits.retention_bytes,
                log_size,
            };
            deletions.extend(self.delete_oldest_segments(
                high_watermark,
                now_ms,
                |segment, _| {
                    Ok((excess >= segment.size()).then(|| {
                        excess -= segment.size();
                        reason
                    }))
                },
            )?);
        }
        if limits.retention_ms >= 0 {
            deletions.extend(self.delete_oldest_segments(
                high_watermark,
                now_ms,
                |segment, _| {
                    let largest_timestamp = segment.largest_timestamp()?;
                    Ok(
                        (now_ms.saturating_sub(largest_timestamp) > limits.retention_ms).then_some(
                            SegmentDeletionReason::RetentionMs {
                                retention_ms: limits.retention_ms,
                                largest_timestamp,
                            },
                        ),
                    )
                },
            )?);
        }
        Ok(deletions)
    }

    /// Deletes the longest run of oldest segments for which `should_delete(segment, next)`
    /// gives a reason (Kafka's `LocalLog.deletableSegments` and `UnifiedLog.deleteSegments`).
    /// A segment qualifies only if every offset in it is below `high_watermark`, and an empty
    /// active segment never does. If the active segment qualifies, a new one is rolled at the
    /// log end first. Each deleted segment's files are renamed to `.deleted`; a failed rename
    /// stops the deletion there (the segments renamed before it stay deleted, and their files
    /// are removed when the log is next opened).
    fn delete_oldest_segments(
        &mut self,
        high_watermark: i64,
        now_ms: i64,
        mut should_delete: impl FnMut(
            &Segment,
            Option<&Segment>,
        ) -> Result<Option<SegmentDeletionReason>, StorageError>,
    ) -> Result<Vec<SegmentDeletion>, StorageError> {
        let mut reasons = Vec::new();
        {
            let mut segments = self.segments().peekable();
            while let Some(segment) = segments.next() {
                let next = segments.peek().copied();
                let upper_bound = next.map_or(self.log_end_offset, Segment::base_offset);
                let last_and_empty = next.is_none() && segment.size() == 0;
                if last_and_empty || upper_bound > high_watermark {
                    break;
                }
                match should_delete(segment, next)? {
                    Some(reason) => reasons.push(reason),
                    None => break,
                }
            }
        }
        if reasons.len() > self.sealed.len() {
            self.roll(now_ms).at(&self.dir)?;
        }
        let mut deletions = Vec::with_capacity(reasons.len());
        for reason in reasons {
            let Some(entry) = self.sealed.first_entry() else {
                break;
            };
            let segment = entry.get().rename_for_deletion()?;
            entry.remove();
            self.advance_log_start_to_first_segment()?;
            deletions.push(SegmentDeletion { reason, segment });
        }
        debug_assert!(
            self.log_start_offset <= high_watermark && high_watermark <= self.log_end_offset,
            "log start {} <= high watermark {high_watermark} <= log end {}",
            self.log_start_offset,
            self.log_end_offset
        );
        Ok(deletions)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use kafka_protocol::records::Compression;

    use super::*;
    use crate::log::{LogConfig, ReadError, RecoveryReport};
    use crate::segment::file_name;
    use crate::segment::DELETED_FILE_SUFFIX;
    use crate::test_util::{encode_with_timestamps, NO_PRODUCER};

    const NOW: i64 = 1_700_000_000_000;
    /// Timestamps of the batches: batch `i` is `OLDEST + i * STEP` (one minute apart).
    const OLDEST: i64 = NOW - 100 * STEP;
    const STEP: i64 = 60_000;

    fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 256,
            ..LogConfig::default()
        }
    }

    fn open(dir: &Path, log_start_offset: i64) -> (PartitionLog, RecoveryReport) {
        PartitionLog::open(dir, "t", 0, small(), 0, log_start_offset, NOW).unwrap()
    }

    /// Appends `n` batches of 2 records, batch `i` stamped `OLDEST + i * STEP`.
    fn fill(log: &mut PartitionLog, n: i64) {
        for i in 0..n {
            let ts = OLDEST + i * STEP;
            let batch = encode_with_timestamps(&[ts, ts], Compression::None, NO_PRODUCER);
            log.append(&batch, 0, NOW).unwrap();
        }
    }

    /// (base offset, next offset, size) of every segment, oldest first.
    fn layout(log: &PartitionLog) -> Vec<(i64, i64, u64)> {
        log.segments()
            .map(|s| (s.base_offset(), s.next_offset(), s.size()))
            .collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("t-0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn deleted_files_of(base: i64) -> Vec<String> {
        ["index", "log", "timeindex"]
            .iter()
            .map(|ext| format!("{}{DELETED_FILE_SUFFIX}", file_name(base, ext)))
            .collect()
    }

    const UNLIMITED: RetentionLimits = RetentionLimits {
        retention_ms: -1,
        retention_bytes: -1,
    };

    #[test]
    fn log_start_offset_inside_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 20);
        let hw = log.log_end_offset();
        let segments = layout(&log);
        assert!(segments.len() >= 3, "{segments:?}");
        let (_, first_end, _) = segments[0];
        assert!(first_end >= 4);

        assert!(log.maybe_increment_log_start_offset(3, hw).unwrap());
        assert_eq!(log.log_start_offset(), 3);
        assert_eq!(
            log.leader_epochs().entries(),
            [(0, 3)],
            "the epoch cache starts at the log start offset"
        );
        assert_eq!(log.first_segment_base_offset(), 0);
        assert!(!log.maybe_increment_log_start_offset(2, hw).unwrap());
        assert_eq!(log.log_start_offset(), 3, "never moves back");
        for bad in [-2, hw + 1] {
            assert!(matches!(
                log.maybe_increment_log_start_offset(bad, hw),
                Err(LogStartOffsetError::OutOfRange { requested, high_watermark })
                    if requested == bad && high_watermark == hw
            ));
        }
        match log.read(2, 1 << 20, true, hw) {
            Err(ReadError::OffsetOutOfRange { log_start: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
        let slice = log.read(3, 1 << 20, true, hw).unwrap().unwrap();
        assert_eq!(slice.first_offset, 2, "the batch holding offset 3");
        assert_eq!(
            log.offset_for_timestamp(0).unwrap(),
            Some((3, OLDEST + STEP)),
            "timestamp lookups start at the log start offset"
        );
        assert!(log
            .delete_log_start_offset_breached_segments(hw)
            .unwrap()
            .is_empty());
        let batch = encode_with_timestamps(&[NOW], Compression::None, NO_PRODUCER);
        assert_eq!(log.append(&batch, 0, NOW).unwrap().log_start_offset, 3);

        // Into the third segment: the first two go, the third stays.
        let hw = log.log_end_offset();
        let (third_base, _, _) = segments[2];
        log.maybe_increment_log_start_offset(third_base + 1, hw)
            .unwrap();
        let deleted = log.delete_log_start_offset_breached_segments(hw).unwrap();
        let bases: Vec<i64> = deleted.iter().map(|d| d.segment.base_offset()).collect();
        assert_eq!(bases, vec![segments[0].0, segments[1].0]);
        assert!(deleted.iter().all(|d| d.reason
            == SegmentDeletionReason::LogStartOffset {
                log_start_offset: third_base + 1
            }));
        assert_eq!(log.first_segment_base_offset(), third_base);
        assert_eq!(log.log_start_offset(), third_base + 1);
        // Up to the high watermark: every sealed segment goes, the active one stays.
        log.maybe_increment_log_start_offset(hw, hw).unwrap();
        log.delete_log_start_offset_breached_segments(hw).unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_start_offset(), hw);
        assert!(log.read(hw, 100, true, hw).unwrap().is_none());
    }

    #[test]
    fn retention_bytes_deletes_whole_closed_segments_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 30);
        let hw = log.log_end_offset();
        let segments = layout(&log);
        assert!(segments.len() >= 4, "{segments:?}");
        let total = log.size_bytes();
        assert!(log
            .delete_retention_breached_segments(UNLIMITED, hw, NOW)
            .unwrap()
            .is_empty());

        // Kafka's rule: delete while (size - retention.bytes) - segment size >= 0. One byte
        // short of the first two segments' sizes deletes only the first.
        let two = segments[0].2 + segments[1].2;
        let limits = |bytes: u64| RetentionLimits {
            retention_ms: -1,
            retention_bytes: bytes as i64,
        };
        let deleted = log
            .delete_retention_breached_segments(limits(total - two + 1), hw, NOW)
            .unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(
            deleted[0].reason,
            SegmentDeletionReason::RetentionBytes {
                retention_bytes: (total - two + 1) as i64,
                log_size: total
            }
        );
        assert_eq!(log.log_start_offset(), segments[1].0);
        let deleted = log
            .delete_retention_breached_segments(limits(total - two), hw, NOW)
            .unwrap();
        assert_eq!(deleted.len(), 1, "the second segment now breaches alone");
        assert_eq!(deleted[0].segment.base_offset(), segments[1].0);
        assert_eq!(log.log_start_offset(), segments[2].0);
        assert_eq!(log.size_bytes(), total - two);
        assert_eq!(layout(&log), segments[2..]);

        let names = files(dir.path());
        for base in [segments[0].0, segments[1].0] {
            for name in deleted_files_of(base) {
                assert!(names.contains(&name), "{name} in {names:?}");
            }
            assert!(!names.contains(&file_name(base, "log")));
        }
        match log.read(segments[1].0, 100, true, hw) {
            Err(ReadError::OffsetOutOfRange { log_start, .. }) => {
                assert_eq!(log_start, segments[2].0)
            }
            other => panic!("{other:?}"),
        }

        // Not beyond the high watermark: segments ending above it stay.
        let deleted = log
            .delete_retention_breached_segments(limits(0), segments[3].0, NOW)
            .unwrap();
        assert_eq!(
            deleted.len(),
            1,
            "only the segment below the high watermark"
        );
        assert_eq!(log.log_start_offset(), segments[3].0);

        // retention.bytes=0 empties the log, the active segment included (rolled first).
        let deleted = log
            .delete_retention_breached_segments(limits(0), hw, NOW)
            .unwrap();
        assert_eq!(
            deleted.last().unwrap().segment.next_offset(),
            hw,
            "the former active segment went too"
        );
        assert_eq!(log.segment_count(), 1);
        assert_eq!((log.log_start_offset(), log.size_bytes()), (hw, 0));
        assert!(log
            .delete_retention_breached_segments(limits(0), hw, NOW)
            .unwrap()
            .is_empty());
        fill(&mut log, 1);
        assert_eq!(log.log_end_offset(), hw + 2, "offsets continue");
    }

    #[test]
    fn retention_ms_deletes_by_largest_timestamp_from_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 30);
        let hw = log.log_end_offset();
        let segments = layout(&log);
        assert!(segments.len() >= 4, "{segments:?}");
        // Batch i (offsets 2i, 2i+1) is stamped OLDEST + i * STEP, so a segment's largest
        // timestamp is that of its last batch.
        let largest = |(_, next, _): (i64, i64, u64)| OLDEST + (next / 2 - 1) * STEP;
        let limits = |ms: i64| RetentionLimits {
            retention_ms: ms,
            retention_bytes: -1,
        };
        // Everything older than the second segment's largest timestamp, exclusive.
        let retention_ms = NOW - largest(segments[1]);
        let deleted = log
            .delete_retention_breached_segments(limits(retention_ms), hw, NOW)
            .unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(
            deleted[0].reason,
            SegmentDeletionReason::RetentionMs {
                retention_ms,
                largest_timestamp: largest(segments[0])
            }
        );
        assert_eq!(log.log_start_offset(), segments[1].0);
        let deleted = log
            .delete_retention_breached_segments(limits(retention_ms - 1), hw, NOW)
            .unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(log.log_start_offset(), segments[2].0);
        assert_eq!(layout(&log), segments[2..]);

        // A newer segment stops the deletion even if later ones are old enough: the log
        // stays contiguous.
        let future = encode_with_timestamps(&[NOW + 1000], Compression::None, NO_PRODUCER);
        let future_offset = log.append(&future, 0, NOW).unwrap().base_offset;
        log.roll_now(NOW).unwrap();
        fill(&mut log, 3);
        let hw = log.log_end_offset();
        let before = layout(&log);
        let holder = before
            .iter()
            .position(|&(base, next, _)| base <= future_offset && future_offset < next)
            .unwrap();
        assert!(holder + 1 < before.len(), "old segments follow it");
        let deleted = log
            .delete_retention_breached_segments(limits(1), hw, NOW)
            .unwrap();
        assert_eq!(
            deleted.len(),
            holder,
            "up to the segment with the future timestamp"
        );
        assert_eq!(layout(&log), before[holder..]);

        // An expired active segment is rolled and deleted, as in Kafka.
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 2);
        assert_eq!(log.segment_count(), 1);
        let deleted = log
            .delete_retention_breached_segments(limits(STEP), 4, NOW)
            .unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(
            (
                log.segment_count(),
                log.log_start_offset(),
                log.log_end_offset()
            ),
            (1, 4, 4)
        );
    }

    #[test]
    fn deleted_files_wait_for_their_removal_or_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 30);
        let hw = log.log_end_offset();
        let segments = layout(&log);
        let limits = RetentionLimits {
            retention_ms: -1,
            retention_bytes: (log.size_bytes() - segments[0].2 - segments[1].2) as i64,
        };
        let deleted = log
            .delete_retention_breached_segments(limits, hw, NOW)
            .unwrap();
        assert_eq!(deleted.len(), 2);
        let paths: Vec<PathBuf> = deleted[0].segment.files().to_vec();
        assert_eq!(paths.len(), 3);
        assert!(paths.iter().all(|p| p.exists()));
        deleted[0].segment.remove_files().unwrap();
        assert!(paths.iter().all(|p| !p.exists()));
        deleted[0].segment.remove_files().unwrap();
        let leftover = deleted_files_of(segments[1].0);
        assert!(leftover.iter().all(|n| files(dir.path()).contains(n)));

        log.close().unwrap();
        let (log, report) = open(dir.path(), 0);
        assert_eq!(report.removed_deleted_files, 3, "{report}");
        assert!(files(dir.path())
            .iter()
            .all(|n| !n.ends_with(DELETED_FILE_SUFFIX)));
        assert_eq!(log.log_start_offset(), segments[2].0);
        assert_eq!(log.log_end_offset(), hw);
    }

    #[test]
    fn reopen_restores_the_checkpointed_log_start_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 30);
        let hw = log.log_end_offset();
        let segments = layout(&log);
        let inside = segments[1].0 + 1;
        log.maybe_increment_log_start_offset(inside, hw).unwrap();
        log.delete_log_start_offset_breached_segments(hw).unwrap();
        log.close().unwrap();

        let (log, _) = open(dir.path(), inside);
        assert_eq!(log.log_start_offset(), inside);
        assert!(log.read(inside - 1, 100, true, hw).is_err());
        log.close().unwrap();
        // Without the checkpoint, the first segment's base offset; a stale checkpoint below it
        // does not move it back.
        for checkpointed in [0, segments[0].0 + 1] {
            let (log, _) = open(dir.path(), checkpointed);
            assert_eq!(log.log_start_offset(), segments[1].0);
            log.close().unwrap();
        }
    }

    #[test]
    fn log_ending_before_its_checkpointed_start_restarts_there() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 0);
        fill(&mut log, 30);
        let end = log.log_end_offset();
        log.close().unwrap();
        let (mut log, report) = open(dir.path(), end + 40);
        assert_eq!(report.truncated_at_offset, Some(0), "{report}");
        assert!(report.deleted_segments >= 4);
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.size_bytes()
            ),
            (end + 40, end + 40, 0)
        );
        let batch = encode_with_timestamps(&[NOW], Compression::None, NO_PRODUCER);
        assert_eq!(log.append(&batch, 0, NOW).unwrap().base_offset, end + 40);

        let fresh = tempfile::tempdir().unwrap();
        let (log, _) = open(fresh.path(), 7);
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
    }
}
