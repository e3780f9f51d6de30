//! Log compaction (`cleanup.policy=compact`), following Kafka's `LogCleaner`.
//!
//! # The sections of a compacted log
//!
//! The cleaner checkpoint (`cleaner-offset-checkpoint`, one per shard, Kafka's format) holds
//! each log's first uncleaned offset. Below it lies the *clean* section, where each key appears
//! at most once; from it up to the first uncleanable offset lies the *dirty* section. The first
//! uncleanable offset is the base offset of the first segment that may not be cleaned yet: the
//! active segment, the segment holding the high watermark, or the first segment whose largest
//! timestamp is younger than `min.compaction.lag.ms` ([`PartitionLog::cleanable_range`]).
//!
//! A log is worth cleaning when its dirty bytes are more than `min.cleanable.dirty.ratio` of its
//! closed segments' bytes, or when its oldest dirty batch is older than `max.compaction.lag.ms`
//! ([`CleanableRange::is_cleanable`]).
//!
//! # A cleaning
//!
//! A [`CleaningJob`] (made by [`PartitionLog::start_cleaning`]) works on a snapshot of the
//! log's closed segments and touches the log itself only to swap results in. It holds only
//! file handles and paths, so it can run on a blocking thread, a bounded slice of I/O per
//! [`CleaningJob::step`]:
//!
//! 1. It reads the dirty section into an [`OffsetMap`] (key → latest offset), until the map is
//!    full (`log.cleaner.dedupe.buffer.size`); the map then covers the log up to its *end*.
//! 2. It rewrites every closed segment from the first one up to the map's end, in groups of
//!    consecutive segments whose sizes add up to at most `segment.bytes` (Kafka's
//!    `groupSegmentsBySize`), each group into one new segment: `<base>.log.cleaned` with its
//!    `.index.cleaned` and `.timeindex.cleaned`, fsynced. Which records stay is decided batch by
//!    batch (see `filter`): the latest record of each key, tombstones until their delete
//!    horizon, control batches, producers' last batches; offsets, codecs and timestamps are
//!    preserved. A group with a single segment in which nothing changed is not rewritten.
//! 3. Each cleaned group is handed back ([`CleaningStep::Cleaned`]) to be swapped into the log
//!    on the log's own thread with [`PartitionLog::replace_with_cleaned`], which first checks
//!    that the group's segments are still the log's (retention or another rewrite may have
//!    deleted them meanwhile; the cleaning is then abandoned).
//! 4. The log's new first dirty offset is the map's end ([`CleaningSummary::next_dirty_offset`]),
//!    for the caller to checkpoint.
//!
//! # The swap, and crashes
//!
//! As in Kafka's `replaceSegments`: the cleaned files are renamed `.cleaned` → `.swap`, the
//! replaced segments' files are renamed `.deleted`, then the `.swap` files get their final
//! names. The whole swap runs without interruption on the log's thread, so no other change of
//! the log interleaves with it; the file system journals the renames of one directory in order,
//! so after a crash the directory holds a prefix of them. Opening a log
//! ([`PartitionLog::open`]) then deletes `*.cleaned` files (the swap never began) and completes
//! any `<base>.log.swap` (it began): the segments whose base offsets lie in the swap segment's
//! range are removed and the `.swap` files renamed. The log start offset never changes: the
//! first group starts at the first segment's base offset.
//!
//! [`PartitionLog::cleanable_range`]: crate::PartitionLog::cleanable_range
//! [`PartitionLog::start_cleaning`]: crate::PartitionLog::start_cleaning
//! [`PartitionLog::replace_with_cleaned`]: crate::PartitionLog::replace_with_cleaned
//! [`PartitionLog::open`]: crate::PartitionLog::open

mod filter;
mod offset_map;
mod records;
mod recovery;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::error::{IoContext, StorageError};
use crate::segment::Segment;
use filter::{filter_batch, FilterContext, FilteredBatch};

pub use offset_map::OffsetMap;
pub(crate) use recovery::recover_interrupted_cleaning;

/// Name of the per-shard file holding each compacted log's first dirty offset (Kafka's).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Suffix of the files of a segment being written by the cleaner (Kafka's `.cleaned`).
pub(crate) const CLEANED_FILE_SUFFIX: &str = ".cleaned";
/// Suffix of the files of a cleaned segment being swapped in (Kafka's `.swap`).
pub(crate) const SWAP_FILE_SUFFIX: &str = ".swap";
/// Bytes read from a segment file at a time.
const READ_CHUNK: usize = 256 * 1024;

/// A topic's compaction settings (Kafka's topic config names), read at each cleaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// `delete.retention.ms`: how long a tombstone stays after its first cleaning.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the log cleanable
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: the dirty ratio above which the log is cleaned.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for CompactionConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CompactionConfig {
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

/// The cleanable part of a log now (Kafka's `LogToClean`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanableRange {
    /// First offset not yet cleaned.
    pub first_dirty_offset: i64,
    /// Base offset of the first segment that may not be cleaned now.
    pub first_uncleanable_offset: i64,
    /// Bytes of the closed segments below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the segments from the first dirty offset to the first uncleanable one.
    pub cleanable_bytes: u64,
    /// How long past `max.compaction.lag.ms` the oldest dirty batch is (0: not past it).
    pub max_compaction_delay_ms: i64,
}

impl CleanableRange {
    /// Dirty bytes over the bytes of the closed segments (0 for an empty log).
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.cleanable_bytes;
        if total == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / total as f64
        }
    }

    /// Whether `max.compaction.lag.ms` forces a cleaning now.
    pub fn needs_compaction_now(&self) -> bool {
        self.max_compaction_delay_ms > 0
    }

    /// Kafka's condition for cleaning a log: it is not empty, and either its dirty ratio is
    /// above `min_cleanable_dirty_ratio` or `max.compaction.lag.ms` forces a cleaning of its
    /// dirty bytes.
    pub fn is_cleanable(&self, min_cleanable_dirty_ratio: f64) -> bool {
        self.clean_bytes + self.cleanable_bytes > 0
            && ((self.needs_compaction_now() && self.cleanable_bytes > 0)
                || self.dirty_ratio() > min_cleanable_dirty_ratio)
    }
}

/// Why a cleaning failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanerError {
    /// Reading or writing a file failed, or a batch could not be decoded.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The segments a cleaned group replaces are no longer the log's (retention or another
    /// rewrite deleted or replaced them while the group was being cleaned). The cleaned files
    /// were removed and the log was left as it is.
    #[error("the segments at offsets {base_offset}..{end_offset} changed while they were being cleaned; cleaning abandoned")]
    LogChanged {
        /// Base offset of the group's first segment.
        base_offset: i64,
        /// Offset after the group's last segment.
        end_offset: i64,
    },
}

/// A closed segment of the log as the cleaner saw it: enough to read it, and to check at swap
/// time that it is still the same segment.
#[derive(Debug, Clone)]
pub(crate) struct SourceSegment {
    /// First offset of the segment.
    pub base_offset: i64,
    /// Offset after its last batch.
    pub next_offset: i64,
    /// Bytes in its log file.
    pub size: u64,
    /// Its log file.
    pub file: Arc<File>,
    /// The log file's path (for messages).
    pub path: PathBuf,
}

impl SourceSegment {
    /// Describes `segment`.
    pub(crate) fn of(segment: &Segment) -> SourceSegment {
        SourceSegment {
            base_offset: segment.base_offset(),
            next_offset: segment.next_offset(),
            size: segment.size(),
            file: Arc::clone(segment.log_file()),
            path: segment.log_path().to_path_buf(),
        }
    }

    /// Whether `segment` is this very segment, unchanged.
    pub(crate) fn is(&self, segment: &Segment) -> bool {
        Arc::ptr_eq(&self.file, segment.log_file())
            && self.base_offset == segment.base_offset()
            && self.size == segment.size()
    }
}

/// A group of segments cleaned into one new segment, waiting to be swapped into its log with
/// [`PartitionLog::replace_with_cleaned`](crate::PartitionLog::replace_with_cleaned) (or
/// dropped with [`CleanedSegment::discard`]).
#[derive(Debug)]
pub struct CleanedSegment {
    /// The new segment, its files named `*.cleaned`, sealed and fsynced.
    pub(crate) segment: Segment,
    /// The segments it replaces, in offset order.
    pub(crate) sources: Vec<SourceSegment>,
}

impl CleanedSegment {
    /// Base offset of the new segment (that of the first segment it replaces).
    pub fn base_offset(&self) -> i64 {
        self.segment.base_offset()
    }

    /// Offset after the last segment it replaces.
    pub fn end_offset(&self) -> i64 {
        self.sources
            .last()
            .map_or(self.base_offset(), |s| s.next_offset)
    }

    /// Bytes of the new segment.
    pub fn size(&self) -> u64 {
        self.segment.size()
    }

    /// Bytes of the segments it replaces.
    pub fn replaced_bytes(&self) -> u64 {
        self.sources.iter().map(|s| s.size).sum()
    }

    /// Number of segments it replaces.
    pub fn replaced_segments(&self) -> usize {
        self.sources.len()
    }

    /// Removes the new segment's files, leaving the log as it is.
    pub fn discard(self) -> Result<(), StorageError> {
        self.segment.delete()
    }
}

/// What a finished cleaning did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleaningSummary {
    /// The first dirty offset it started from.
    pub first_dirty_offset: i64,
    /// The log's first dirty offset now: the end of what the offset map covered. Checkpoint it.
    pub next_dirty_offset: i64,
    /// Bytes read from segment files.
    pub bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub bytes_written: u64,
    /// Keys put in the offset map.
    pub keys_mapped: u64,
    /// Records removed from the log.
    pub records_removed: u64,
    /// Segments rewritten.
    pub segments_rewritten: u64,
    /// The earliest delete horizon of the tombstones still in the rewritten segments: once it
    /// has passed, a cleaning would remove some.
    pub earliest_delete_horizon: Option<i64>,
}

/// What [`CleaningJob::step`] did.
#[derive(Debug)]
pub enum CleaningStep {
    /// Some work was done; call `step` again.
    Progress,
    /// A group of segments was cleaned: swap it into the log, then call `step` again.
    Cleaned(CleanedSegment),
    /// The cleaning is over.
    Finished(CleaningSummary),
}

/// The result of one [`CleaningJob::step`] with the I/O it cost (for the rate limit).
#[derive(Debug)]
pub struct StepReport {
    /// What happened.
    pub step: CleaningStep,
    /// Bytes read from segment files during the step.
    pub bytes_read: u64,
    /// Bytes written to cleaned segment files during the step.
    pub bytes_written: u64,
}

/// Reads a segment file batch by batch, in large chunks.
#[derive(Debug)]
struct BatchReader {
    file: Arc<File>,
    path: PathBuf,
    /// Position of the next batch.
    position: u64,
    /// End of the segment's valid data.
    end: u64,
    buffer: Bytes,
    buffer_start: u64,
    /// Bytes read from the file since the last `take_bytes_read`.
    bytes_read: u64,
}

impl BatchReader {
    fn new(source: &SourceSegment, position: u64) -> BatchReader {
        BatchReader {
            file: Arc::clone(&source.file),
            path: source.path.clone(),
            position,
            end: source.size,
            buffer: Bytes::new(),
            buffer_start: position,
            bytes_read: 0,
        }
    }

    /// Makes `need` bytes at the current position available in the buffer.
    fn fill(&mut self, need: usize) -> Result<(), StorageError> {
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        if self.position >= self.buffer_start && self.position + need as u64 <= buffer_end {
            return Ok(());
        }
        let len = (self.end - self.position).min(need.max(READ_CHUNK) as u64) as usize;
        let mut chunk = vec![0u8; len];
        self.file
            .read_exact_at(&mut chunk, self.position)
            .at(&self.path)?;
        self.bytes_read += len as u64;
        self.buffer = Bytes::from(chunk);
        self.buffer_start = self.position;
        Ok(())
    }

    /// The next batch (header and whole bytes), `None` at the end of the segment.
    fn next_batch(&mut self) -> Result<Option<(BatchHeader, Bytes)>, StorageError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let (path, position) = (self.path.clone(), self.position);
        let decode_error = |reason: String| StorageError::Decode {
            path: path.clone(),
            position,
            reason,
        };
        if self.end - self.position < HEADER_SIZE as u64 {
            return Err(decode_error("a torn batch header ends the segment".into()));
        }
        self.fill(HEADER_SIZE)?;
        let at = (self.position - self.buffer_start) as usize;
        let header = BatchHeader::parse(&self.buffer[at..at + HEADER_SIZE])
            .map_err(|e| decode_error(e.to_string()))?;
        let size = header.total_size();
        if self.position + size as u64 > self.end {
            return Err(decode_error(format!(
                "a batch of {size} bytes overruns the segment"
            )));
        }
        self.fill(size)?;
        let at = (self.position - self.buffer_start) as usize;
        let bytes = self.buffer.slice(at..at + size);
        self.position += size as u64;
        Ok(Some((header, bytes)))
    }

    /// Bytes read from the file since the last call.
    fn take_bytes_read(&mut self) -> u64 {
        std::mem::take(&mut self.bytes_read)
    }
}

/// Writes one group of segments into a new segment.
#[derive(Debug)]
struct GroupWriter {
    /// Indexes of the group's segments in the job's sources.
    group: Range<usize>,
    /// The source being read.
    source: usize,
    reader: BatchReader,
    output: Segment,
    /// Whether some batch was removed or rewritten.
    changed: bool,
}

/// Where a job is.
#[derive(Debug)]
enum Phase {
    /// Reading the dirty section into the offset map: the source being read and its reader.
    Mapping { source: usize, reader: BatchReader },
    /// Rewriting groups of segments: those left, and the one being written.
    Rewriting {
        groups: VecDeque<Range<usize>>,
        current: Option<Box<GroupWriter>>,
    },
    /// Done.
    Finished,
}

/// Settings of a job, from the log's config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobSettings {
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
    /// `segment.bytes`: the largest group of segments rewritten into one.
    pub segment_bytes: u64,
    /// `index.interval.bytes` of the rewritten segments.
    pub index_interval_bytes: u32,
    /// The most bytes a batch's records may take decompressed (the topic's
    /// [`decompression_limit`](crate::decompress::decompression_limit)); a batch beyond it is
    /// neither mapped nor cleaned, but kept as it is.
    pub decompression_limit: usize,
}

/// What a job takes from its log when it starts (on the log's thread).
#[derive(Debug)]
pub(crate) struct JobInput {
    /// The partition directory.
    pub dir: PathBuf,
    /// The log's closed segments below the first uncleanable offset, in offset order.
    pub sources: Vec<SourceSegment>,
    /// Position of the batch holding the first dirty offset, in its segment.
    pub dirty_position: u64,
    /// Last offset of the last batch of each producer.
    pub producer_last_offsets: HashMap<i64, i64>,
    /// Settings from the log's config.
    pub settings: JobSettings,
}

/// One cleaning of one log (see the module docs). It is `Send`: it holds file handles, paths
/// and the offset map, never the log.
#[derive(Debug)]
pub struct CleaningJob {
    dir: PathBuf,
    /// The log's closed segments below the first uncleanable offset, in offset order.
    sources: Vec<SourceSegment>,
    first_dirty_offset: i64,
    first_uncleanable_offset: i64,
    map: OffsetMap,
    /// Offsets below this are covered by the map (or were cleaned before).
    map_end: i64,
    /// Last offset of the last batch of each producer: those batches stay, even emptied.
    producer_last_offsets: HashMap<i64, i64>,
    settings: JobSettings,
    now_ms: i64,
    phase: Phase,
    summary: CleaningSummary,
}

impl CleaningJob {
    /// A job cleaning `range` of the log described by `input`; `map` is cleared and reused.
    pub(crate) fn new(
        input: JobInput,
        range: &CleanableRange,
        map: OffsetMap,
        now_ms: i64,
    ) -> CleaningJob {
        let JobInput {
            dir,
            sources,
            dirty_position,
            producer_last_offsets,
            settings,
        } = input;
        let mut map = map;
        map.clear();
        let first_dirty = range.first_dirty_offset;
        let first_dirty_source = sources.iter().position(|s| s.next_offset > first_dirty);
        let phase = match first_dirty_source {
            Some(source) if first_dirty < range.first_uncleanable_offset => Phase::Mapping {
                source,
                reader: BatchReader::new(&sources[source], dirty_position),
            },
            _ => Phase::Rewriting {
                groups: VecDeque::new(),
                current: None,
            },
        };
        let mut job = CleaningJob {
            dir,
            sources,
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: range.first_uncleanable_offset,
            map,
            map_end: first_dirty.min(range.first_uncleanable_offset),
            producer_last_offsets,
            settings,
            now_ms,
            phase,
            summary: CleaningSummary {
                first_dirty_offset: first_dirty,
                ..CleaningSummary::default()
            },
        };
        if matches!(job.phase, Phase::Rewriting { .. }) {
            job.phase = job.rewriting_phase();
        }
        job
    }

    /// The rewriting phase over the sources below the map's end, grouped by size.
    fn rewriting_phase(&self) -> Phase {
        let mut groups = VecDeque::new();
        let mut start = 0;
        let mut bytes = 0u64;
        let eligible = self
            .sources
            .iter()
            .take_while(|s| s.base_offset < self.map_end)
            .count();
        for (i, source) in self.sources[..eligible].iter().enumerate() {
            let span = source.next_offset - self.sources[start].base_offset;
            let fits =
                bytes + source.size <= self.settings.segment_bytes && span <= i64::from(i32::MAX);
            if i > start && !fits {
                groups.push_back(start..i);
                start = i;
                bytes = 0;
            }
            bytes += source.size;
        }
        if eligible > start {
            groups.push_back(start..eligible);
        }
        Phase::Rewriting {
            groups,
            current: None,
        }
    }

    /// Works until about `budget_bytes` were read from segment files (a whole chunk at least),
    /// a group of segments is cleaned, or the cleaning is over.
    pub fn step(&mut self, budget_bytes: u64) -> Result<StepReport, CleanerError> {
        let mut report = StepReport {
            step: CleaningStep::Progress,
            bytes_read: 0,
            bytes_written: 0,
        };
        let result = self.work(budget_bytes.max(1), &mut report);
        self.summary.bytes_read += report.bytes_read;
        if let CleaningStep::Finished(summary) = &mut report.step {
            summary.bytes_read = self.summary.bytes_read;
        }
        result.map(|()| report)
    }

    /// The body of [`CleaningJob::step`]: sets `report.step` and counts the bytes in `report`.
    fn work(&mut self, budget_bytes: u64, report: &mut StepReport) -> Result<(), CleanerError> {
        loop {
            let phase = std::mem::replace(&mut self.phase, Phase::Finished);
            self.phase = match phase {
                Phase::Mapping { source, reader } => {
                    self.map_some(source, reader, budget_bytes, report)?
                }
                Phase::Rewriting { groups, current } => {
                    match self.rewrite_some(groups, current, budget_bytes, report)? {
                        (phase, Some(cleaned)) => {
                            self.phase = phase;
                            report.step = CleaningStep::Cleaned(cleaned);
                            return Ok(());
                        }
                        (phase, None) => phase,
                    }
                }
                Phase::Finished => {
                    self.summary.next_dirty_offset = self.first_dirty_offset.max(self.map_end);
                    report.step = CleaningStep::Finished(self.summary.clone());
                    return Ok(());
                }
            };
            if report.bytes_read >= budget_bytes {
                return Ok(());
            }
        }
    }

    /// Reads dirty batches into the map until the budget is spent, the map is full or the
    /// dirty section ends; returns the next phase.
    fn map_some(
        &mut self,
        mut source: usize,
        mut reader: BatchReader,
        budget_bytes: u64,
        report: &mut StepReport,
    ) -> Result<Phase, CleanerError> {
        let mut full = false;
        while !full && report.bytes_read < budget_bytes {
            let batch = reader.next_batch()?;
            report.bytes_read += reader.take_bytes_read();
            let Some((header, bytes)) = batch else {
                source += 1;
                match self.sources.get(source) {
                    Some(next) if next.base_offset < self.first_uncleanable_offset => {
                        reader = BatchReader::new(next, 0);
                        continue;
                    }
                    _ => break,
                }
            };
            if header.is_control() || header.last_offset() < self.first_dirty_offset {
                continue;
            }
            full = self.map_batch(&reader.path, reader.position, &header, &bytes)?;
        }
        let done = full
            || self
                .sources
                .get(source)
                .is_none_or(|s| s.base_offset >= self.first_uncleanable_offset);
        if !done {
            return Ok(Phase::Mapping { source, reader });
        }
        if !full {
            self.map_end = self.first_uncleanable_offset;
        }
        self.summary.keys_mapped = self.map.len() as u64;
        Ok(self.rewriting_phase())
    }

    /// Puts the keys of one dirty batch in the map; returns true when the map filled up (the
    /// map's end is then the first offset it could not take).
    fn map_batch(
        &mut self,
        path: &Path,
        end_position: u64,
        header: &BatchHeader,
        bytes: &Bytes,
    ) -> Result<bool, CleanerError> {
        let decode_error = |reason: String| StorageError::Decode {
            path: path.to_path_buf(),
            position: end_position - bytes.len() as u64,
            reason,
        };
        let plain = match records::decompress(
            header.compression(),
            bytes.slice(HEADER_SIZE..),
            self.settings.decompression_limit,
        ) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::warn!(
                    "{}: the keys of the batch at offset {} are not mapped (the batch is kept): {e}",
                    path.display(),
                    header.base_offset
                );
                return Ok(false);
            }
        };
        let parsed = records::parse_records(&plain, header.records_count).map_err(decode_error)?;
        for record in parsed {
            let offset = header.base_offset + i64::from(record.offset_delta);
            let Some(key) = record.key else { continue };
            if offset < self.first_dirty_offset {
                continue;
            }
            if !self.map.put(&plain[key], offset) {
                self.map_end = offset;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rewrites batches of the current group (starting the next group if none is under way)
    /// until the budget is spent or the group is done. Returns the next phase and, when a group
    /// was finished and changed, its cleaned segment.
    fn rewrite_some(
        &mut self,
        mut groups: VecDeque<Range<usize>>,
        current: Option<Box<GroupWriter>>,
        budget_bytes: u64,
        report: &mut StepReport,
    ) -> Result<(Phase, Option<CleanedSegment>), CleanerError> {
        let mut writer = match current {
            Some(writer) => writer,
            None => match groups.pop_front() {
                Some(group) => Box::new(self.start_group(group)?),
                None => return Ok((Phase::Finished, None)),
            },
        };
        match self.write_some(&mut writer, budget_bytes, report) {
            Ok(true) => {}
            Ok(false) => {
                let phase = Phase::Rewriting {
                    groups,
                    current: Some(writer),
                };
                return Ok((phase, None));
            }
            Err(e) => {
                discard_output(writer.output);
                return Err(e);
            }
        }
        let cleaned = self.finish_group(*writer)?;
        let phase = Phase::Rewriting {
            groups,
            current: None,
        };
        Ok((phase, cleaned))
    }

    /// Opens the output of a group.
    fn start_group(&self, group: Range<usize>) -> Result<GroupWriter, CleanerError> {
        let first = &self.sources[group.start];
        let output = Segment::create_with_suffix(
            &self.dir,
            first.base_offset,
            self.now_ms,
            CLEANED_FILE_SUFFIX,
        )?;
        Ok(GroupWriter {
            reader: BatchReader::new(first, 0),
            source: group.start,
            group,
            output,
            changed: false,
        })
    }

    /// Cleans batches into the group's output until the budget is spent (false) or every
    /// segment of the group was read (true).
    fn write_some(
        &mut self,
        writer: &mut GroupWriter,
        budget_bytes: u64,
        report: &mut StepReport,
    ) -> Result<bool, CleanerError> {
        while report.bytes_read < budget_bytes {
            let batch = writer.reader.next_batch()?;
            report.bytes_read += writer.reader.take_bytes_read();
            let Some((header, bytes)) = batch else {
                writer.source += 1;
                if writer.source >= writer.group.end {
                    return Ok(true);
                }
                writer.reader = BatchReader::new(&self.sources[writer.source], 0);
                continue;
            };
            let retain_empty = header.producer_id >= 0
                && self.producer_last_offsets.get(&header.producer_id)
                    == Some(&header.last_offset());
            let position = writer.reader.position - bytes.len() as u64;
            let ctx = FilterContext {
                map: &self.map,
                map_end: self.map_end,
                now_ms: self.now_ms,
                delete_retention_ms: self.settings.delete_retention_ms,
                decompression_limit: self.settings.decompression_limit,
                path: &writer.reader.path,
            };
            let outcome = filter_batch(&bytes, &header, retain_empty, &ctx).map_err(|reason| {
                StorageError::Decode {
                    path: writer.reader.path.clone(),
                    position,
                    reason,
                }
            })?;
            self.summary.records_removed += outcome.records_removed;
            if let Some(horizon) = outcome.retained_delete_horizon {
                let earliest = self.summary.earliest_delete_horizon.get_or_insert(horizon);
                *earliest = (*earliest).min(horizon);
            }
            let written = match outcome.batch {
                FilteredBatch::Unchanged => Some((header, bytes)),
                FilteredBatch::Rewritten(bytes) => {
                    writer.changed = true;
                    let header = BatchHeader::parse(&bytes).map_err(|e| StorageError::Decode {
                        path: writer.reader.path.clone(),
                        position,
                        reason: format!("cleaned batch: {e}"),
                    })?;
                    Some((header, bytes))
                }
                FilteredBatch::Removed => {
                    writer.changed = true;
                    None
                }
            };
            if let Some((header, bytes)) = written {
                debug_assert!(
                    header.base_offset >= writer.output.next_offset(),
                    "offsets strictly increase in the cleaned segment"
                );
                debug_assert!(
                    header.last_offset() < self.first_uncleanable_offset,
                    "the cleaned section never reaches the uncleanable segments"
                );
                let mut prefix = [0u8; HEADER_SIZE];
                prefix.copy_from_slice(&bytes[..HEADER_SIZE]);
                writer
                    .output
                    .append(
                        &header,
                        &prefix,
                        &bytes[HEADER_SIZE..],
                        self.settings.index_interval_bytes,
                    )
                    .at(writer.output.log_path())?;
                report.bytes_written += bytes.len() as u64;
                self.summary.bytes_written += bytes.len() as u64;
            }
        }
        Ok(false)
    }

    /// Completes a group's output: seals and fsyncs it, gives it the replaced segments' last
    /// modification time, and returns it — or drops it when it is a single segment that did
    /// not change.
    fn finish_group(
        &mut self,
        writer: GroupWriter,
    ) -> Result<Option<CleanedSegment>, CleanerError> {
        let GroupWriter {
            group,
            mut output,
            changed,
            ..
        } = writer;
        if !changed && group.len() == 1 {
            output.delete()?;
            return Ok(None);
        }
        let sources = self.sources[group].to_vec();
        let sealed = seal_output(&mut output, &sources);
        if let Err(e) = sealed {
            discard_output(output);
            return Err(e.into());
        }
        self.summary.segments_rewritten += sources.len() as u64;
        Ok(Some(CleanedSegment {
            segment: output,
            sources,
        }))
    }

    /// Gives the job's offset map back for the next job, and deletes the files of a group
    /// being written, if any (when a cleaning is abandoned).
    pub fn into_map(self) -> OffsetMap {
        if let Phase::Rewriting {
            current: Some(writer),
            ..
        } = self.phase
        {
            discard_output(writer.output);
        }
        self.map
    }
}

/// Seals a cleaned segment, fsyncs it and gives it the last replaced segment's modification
/// time (as Kafka's cleaner does), so that time-based retention sees the same age.
fn seal_output(output: &mut Segment, sources: &[SourceSegment]) -> Result<(), StorageError> {
    let path = output.log_path().to_path_buf();
    output.seal().at(&path)?;
    output.log_file().sync_data().at(&path)?;
    if let Some(last) = sources.last() {
        let modified = last
            .file
            .metadata()
            .and_then(|m| m.modified())
            .at(&last.path)?;
        output.log_file().set_modified(modified).at(&path)?;
    }
    Ok(())
}

/// Deletes the files of an output that will not be used; a failure is only logged (the files
/// are removed when the log is next opened).
fn discard_output(output: Segment) {
    let path = output.log_path().to_path_buf();
    if let Err(e) = output.delete() {
        tracing::warn!(
            "cannot remove the abandoned cleaned segment {}: {e}",
            path.display()
        );
    }
}
