//! The log's side of compaction: what may be cleaned now, a snapshot for a
//! [`CleaningJob`], and the swap of cleaned segments into the log (see [`crate::cleaner`]).

use std::path::PathBuf;

use super::PartitionLog;
use crate::cleaner::{
    CleanableRange, CleanedSegment, CleanerError, CleaningJob, CompactionConfig, JobInput,
    JobSettings, OffsetMap, SourceSegment, CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX,
};
use crate::error::{IoContext, StorageError};
use crate::segment::{restore_deleted, DeletedSegment, Segment};

/// A swap of cleaned segments done by [`PartitionLog::replace_with_cleaned`].
#[derive(Debug)]
pub struct SegmentSwap {
    /// The replaced segments, their files renamed `.deleted`: unlink them after
    /// `file.delete.delay.ms`.
    pub replaced: Vec<DeletedSegment>,
    /// The partition directory, to fsync so that the renames are durable.
    pub dir: PathBuf,
}

impl PartitionLog {
    /// What may be cleaned now (Kafka's `LogCleanerManager.cleanableOffsets` and
    /// `calculateCleanableBytes`). `checkpointed_dirty_offset` is the log's entry in the cleaner
    /// checkpoint (ignored when outside the log, as Kafka does); nothing at or beyond
    /// `stable_offset` (the high watermark) is cleaned.
    pub fn cleanable_range(
        &self,
        checkpointed_dirty_offset: Option<i64>,
        stable_offset: i64,
        config: &CompactionConfig,
        now_ms: i64,
    ) -> Result<CleanableRange, StorageError> {
        let log_start = self.log_start_offset;
        let first_dirty = checkpointed_dirty_offset
            .filter(|&o| o >= log_start && o <= self.log_end_offset)
            .unwrap_or(log_start);
        let mut uncleanable = self.active.base_offset().min(stable_offset);
        if config.min_compaction_lag_ms > 0 {
            let young_after = now_ms.saturating_sub(config.min_compaction_lag_ms);
            for segment in self.dirty_segments(first_dirty) {
                if segment.largest_timestamp()? > young_after {
                    uncleanable = uncleanable.min(segment.base_offset());
                    break;
                }
            }
        }
        let first_uncleanable = self
            .sealed
            .range(..=uncleanable)
            .next_back()
            .filter(|(_, s)| s.next_offset() > uncleanable)
            .map_or(self.active.base_offset().min(uncleanable), |(&base, _)| {
                base
            });
        let clean_bytes = self
            .sealed
            .values()
            .take_while(|s| s.base_offset() < first_dirty)
            .map(Segment::size)
            .sum();
        let cleanable_bytes = self
            .dirty_segments(first_dirty.min(first_uncleanable))
            .take_while(|s| s.base_offset() < first_uncleanable)
            .map(Segment::size)
            .sum();
        Ok(CleanableRange {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: first_uncleanable,
            clean_bytes,
            cleanable_bytes,
            max_compaction_delay_ms: self.max_compaction_delay(first_dirty, config, now_ms)?,
        })
    }

    /// The closed segments holding offsets at or after `offset`.
    fn dirty_segments(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        self.sealed
            .values()
            .filter(move |s| s.next_offset() > offset)
    }

    /// Kafka's `maxCompactionDelay`: how far past `max.compaction.lag.ms` the earliest first
    /// batch timestamp of the dirty closed segments is (0 if not past it).
    fn max_compaction_delay(
        &self,
        first_dirty: i64,
        config: &CompactionConfig,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        if config.max_compaction_lag_ms == i64::MAX {
            return Ok(0);
        }
        let mut earliest = i64::MAX;
        for segment in self.dirty_segments(first_dirty) {
            let first = segment
                .find_batch(segment.base_offset())
                .at(segment.log_path())?;
            if let Some((_, header)) = first.filter(|(_, h)| h.max_timestamp > 0) {
                earliest = earliest.min(header.max_timestamp);
            }
        }
        let clean_until = now_ms.saturating_sub(config.max_compaction_lag_ms.max(0));
        Ok(if earliest < clean_until {
            clean_until - earliest
        } else {
            0
        })
    }

    /// A job cleaning `range` of this log (see [`crate::cleaner`]). It reuses `map` (cleared).
    /// The job reads the closed segments below `range.first_uncleanable_offset` through their
    /// open files; the log may keep changing meanwhile.
    pub fn start_cleaning(
        &self,
        range: &CleanableRange,
        config: &CompactionConfig,
        map: OffsetMap,
        now_ms: i64,
    ) -> Result<CleaningJob, StorageError> {
        debug_assert!(range.first_uncleanable_offset <= self.active.base_offset());
        let sources: Vec<SourceSegment> = self
            .sealed
            .values()
            .take_while(|s| s.base_offset() < range.first_uncleanable_offset)
            .map(SourceSegment::of)
            .collect();
        let dirty_position = match self
            .sealed
            .range(..=range.first_dirty_offset)
            .next_back()
            .map(|(_, s)| s)
        {
            Some(segment) if segment.next_offset() > range.first_dirty_offset => segment
                .find_batch(range.first_dirty_offset)
                .at(segment.log_path())?
                .map_or(0, |(position, _)| position),
            _ => 0,
        };
        let settings = JobSettings {
            delete_retention_ms: config.delete_retention_ms,
            segment_bytes: self.config.segment_bytes,
            index_interval_bytes: self.config.index_interval_bytes,
            decompression_limit: self.config.validation.decompression_limit(),
        };
        let input = JobInput {
            dir: self.dir.clone(),
            sources,
            dirty_position,
            producer_last_offsets: self.producers.last_offsets().collect(),
            settings,
        };
        Ok(CleaningJob::new(input, range, map, now_ms))
    }

    /// Swaps a cleaned segment in for the segments it replaces (Kafka's `replaceSegments`): its
    /// files are renamed `.cleaned` → `.swap`, the replaced segments' files `.deleted`, then its
    /// files get their final names. If the replaced segments are no longer exactly the log's
    /// (retention or another rewrite deleted or replaced some since the cleaning began), the
    /// cleaned segment is discarded and [`CleanerError::LogChanged`] returned. Offsets, the log
    /// start offset and the log end offset do not change.
    pub fn replace_with_cleaned(
        &mut self,
        cleaned: CleanedSegment,
    ) -> Result<SegmentSwap, CleanerError> {
        let (base, end) = (cleaned.base_offset(), cleaned.end_offset());
        let current: Vec<&Segment> = self.sealed.range(base..end).map(|(_, s)| s).collect();
        let unchanged = current.len() == cleaned.sources.len()
            && current
                .iter()
                .zip(&cleaned.sources)
                .all(|(s, src)| src.is(s))
            && end <= self.active.base_offset();
        if !unchanged {
            cleaned.discard()?;
            return Err(CleanerError::LogChanged {
                base_offset: base,
                end_offset: end,
            });
        }
        let CleanedSegment {
            segment: mut replacement,
            sources,
        } = cleaned;
        debug_assert!(replacement.next_offset() <= end && end <= self.active.base_offset());
        if let Err(e) = replacement.change_file_suffixes(CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX) {
            let _ = replacement.delete();
            return Err(e.into());
        }
        let mut replaced = Vec::with_capacity(sources.len());
        for segment in self.sealed.range(base..end).map(|(_, s)| s) {
            match segment.rename_for_deletion() {
                Ok(deleted) => replaced.push(deleted),
                Err(e) => {
                    restore_deleted(&replaced);
                    let _ = replacement.delete();
                    return Err(e.into());
                }
            }
        }
        for source in &sources {
            self.sealed.remove(&source.base_offset);
        }
        if let Err(e) = replacement.change_file_suffixes(SWAP_FILE_SUFFIX, "") {
            // The data is in place under the `.swap` names; opening the log completes the
            // swap.
            tracing::warn!(
                "cannot give the cleaned segment {} its final name: {e}",
                replacement.log_path().display()
            );
        }
        debug_assert!(self
            .sealed
            .range(..base)
            .next_back()
            .is_none_or(|(_, s)| s.next_offset() <= base));
        // Sealed and fsynced by the cleaner: it needs no open file.
        replacement.release_files(&self.files);
        self.sealed.insert(base, replacement);
        debug_assert!(self.log_start_offset <= self.log_end_offset);
        Ok(SegmentSwap {
            replaced,
            dir: self.dir.clone(),
        })
    }
}
