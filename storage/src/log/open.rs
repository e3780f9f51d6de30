//! Opening a partition log: loading its segments and recovering the unflushed tail.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{LogConfig, PartitionLog};
use crate::error::{IoContext, StorageError};
use crate::file_cache::LogFileCache;
use crate::leader_epoch::LeaderEpochCache;
use crate::producer_state::ProducerStateTable;
use crate::segment::{file_name, Segment, DELETED_FILE_SUFFIX};

/// What opening a log found and repaired; the engine logs it (see its `Display`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The partition directory.
    pub dir: PathBuf,
    /// Bytes cut from the log (torn or corrupt tail, and deleted later segments).
    pub truncated_bytes: u64,
    /// First offset lost: the log was cut there (`None` when nothing was cut).
    pub truncated_at_offset: Option<i64>,
    /// Last offset of the bad batch, when its header was readable.
    pub last_lost_offset: Option<i64>,
    /// Why the log was cut.
    pub reason: Option<String>,
    /// Segments after the cut, deleted.
    pub deleted_segments: usize,
    /// Log end offset after recovery.
    pub log_end_offset: i64,
    /// Batches read while opening.
    pub scanned_batches: u64,
    /// Files of deleted segments (`*.deleted`) left by an earlier run, removed.
    pub removed_deleted_files: usize,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log {}: ", self.dir.display())?;
        match self.truncated_at_offset {
            None => write!(f, "clean")?,
            Some(at) => {
                write!(f, "truncated {} bytes at offset {at}", self.truncated_bytes)?;
                if let Some(last) = self.last_lost_offset {
                    write!(f, " (offsets {at}..={last} at least were lost)")?;
                }
                if let Some(reason) = &self.reason {
                    write!(f, " because of {reason}")?;
                }
                if self.deleted_segments > 0 {
                    write!(f, ", deleted {} later segment(s)", self.deleted_segments)?;
                }
            }
        }
        write!(
            f,
            "; {} batches scanned, log end offset {}",
            self.scanned_batches, self.log_end_offset
        )?;
        if self.removed_deleted_files > 0 {
            write!(
                f,
                "; removed {} leftover {DELETED_FILE_SUFFIX} files",
                self.removed_deleted_files
            )?;
        }
        Ok(())
    }
}

/// Base offsets of the `.log` files in `dir`, sorted.
fn segment_bases(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(base) = stem.parse::<i64>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Removes the files of segments deleted by an earlier run (`*.deleted`, Kafka's
/// `removeTempFilesAndCollectSwapFiles`); returns how many there were.
fn remove_deleted_files(dir: &Path) -> Result<usize, StorageError> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let deleted = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(DELETED_FILE_SUFFIX));
        if deleted {
            std::fs::remove_file(&path).at(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Sealed-segment files a log opened with [`PartitionLog::open`] keeps open (tests and tools;
/// the broker gives each shard one cache, see [`PartitionLog::open_with_file_cache`]).
const STANDALONE_FILE_CACHE: usize = 16;

/// Removes a segment's files, returning the log file's size.
fn remove_segment_files(dir: &Path, base: i64) -> Result<u64, StorageError> {
    let log = dir.join(file_name(base, "log"));
    let size = std::fs::metadata(&log).at(&log)?.len();
    for ext in ["log", "index", "timeindex"] {
        let path = dir.join(file_name(base, ext));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&path),
            _ => {}
        }
    }
    Ok(size)
}

impl PartitionLog {
    /// Opens (or creates) the log of `topic`-`partition` under `log_dir`.
    ///
    /// `recovery_point` and `log_start_offset` come from the shard's checkpoints (0 when
    /// absent). The log start offset becomes the larger of the checkpointed one and the first
    /// segment's base offset; as in Kafka, if the log ends before the checkpointed log start
    /// offset (its tail was lost), every segment is deleted and the log restarts empty there,
    /// and a new log starts there too. Files of segments deleted earlier (`*.deleted`) are
    /// removed, and a swap of cleaned segments interrupted by a crash is completed (or undone
    /// if it had not begun; see [`crate::cleaner`]).
    ///
    /// Every segment from the one holding `recovery_point` on is verified batch by batch
    /// (CRC32C, offsets); at the first torn or corrupt batch the segment is cut and later
    /// segments are deleted, and the indexes of verified segments are rebuilt. Earlier segments
    /// keep their index files when valid. The producer state is rebuilt from the batch headers
    /// of every segment, so opening reads the whole log once (sequentially, in large chunks).
    ///
    /// The log gets its own small cache of sealed segments' files.
    pub fn open(
        log_dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        now_ms: i64,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        Self::open_with_file_cache(
            log_dir,
            topic,
            partition,
            config,
            recovery_point,
            log_start_offset,
            now_ms,
            LogFileCache::new(STANDALONE_FILE_CACHE),
        )
    }

    /// [`PartitionLog::open`], with the sealed segments' log files opened through `files` (the
    /// shard's cache). Each segment but the last is released as soon as the next one is
    /// loaded, so opening a log holds the files of two segments at most, besides the cache.
    #[allow(clippy::too_many_arguments)]
    pub fn open_with_file_cache(
        log_dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
        now_ms: i64,
        files: LogFileCache,
    ) -> Result<(PartitionLog, RecoveryReport), StorageError> {
        let dir = log_dir.join(format!("{topic}-{partition}"));
        std::fs::create_dir_all(&dir).at(&dir)?;
        crate::cleaner::recover_interrupted_cleaning(&dir)?;
        let mut report = RecoveryReport {
            dir: dir.clone(),
            removed_deleted_files: remove_deleted_files(&dir)?,
            ..RecoveryReport::default()
        };
        let bases = segment_bases(&dir)?;
        let mut producers = ProducerStateTable::new();
        let mut segments: BTreeMap<i64, Segment> = BTreeMap::new();
        let mut verifying = false;
        for (i, &base) in bases.iter().enumerate() {
            let previous_end = segments.values().next_back().map(Segment::next_offset);
            if previous_end.is_some_and(|end| base < end) {
                report.reason = Some(format!("segment {base} overlaps the previous one"));
                report.truncated_at_offset.get_or_insert(base);
                for &later in &bases[i..] {
                    report.truncated_bytes += remove_segment_files(&dir, later)?;
                    report.deleted_segments += 1;
                }
                break;
            }
            if let Some(previous) = segments.values_mut().next_back() {
                previous.release_files(&files);
            }
            verifying |= bases.get(i + 1).is_none_or(|&next| next > recovery_point);
            let opened = Segment::open(
                &dir,
                base,
                now_ms,
                config.index_interval_bytes,
                verifying,
                |h| producers.replay(h),
            )?;
            report.scanned_batches += opened.batches;
            let problem = opened.scan.problem.clone();
            let segment = opened.segment;
            let cut_at = segment.next_offset();
            segments.insert(base, segment);
            if let Some(problem) = problem {
                report.truncated_bytes += opened.original_size - opened.scan.valid_len;
                report.truncated_at_offset = Some(cut_at);
                report.last_lost_offset = problem.header.map(|h| h.last_offset());
                report.reason = Some(format!(
                    "{} at position {} of {}",
                    problem.reason,
                    problem.position,
                    file_name(base, "log")
                ));
                for &later in &bases[i + 1..] {
                    report.truncated_bytes += remove_segment_files(&dir, later)?;
                    report.deleted_segments += 1;
                }
                break;
            }
        }
        let log_start_checkpoint = log_start_offset.max(0);
        let log_end = segments.values().next_back().map(Segment::next_offset);
        if log_end.is_some_and(|end| end < log_start_checkpoint) {
            report.reason = Some(format!(
                "the log ends before its checkpointed log start offset {log_start_checkpoint}"
            ));
            report.truncated_at_offset = segments.keys().next().copied();
            for (base, segment) in std::mem::take(&mut segments) {
                report.truncated_bytes += segment.size();
                report.deleted_segments += 1;
                segment.delete()?;
                debug_assert!(base < log_start_checkpoint);
            }
            producers = ProducerStateTable::new();
        }
        let active = match segments.pop_last() {
            Some((_, segment)) => segment,
            None => Segment::create(&dir, log_start_checkpoint, now_ms)?,
        };
        debug_assert!(active.is_pinned(), "the last segment is never released");
        let log_end_offset = active.next_offset();
        let first_base = segments.values().next().unwrap_or(&active).base_offset();
        let log_start_offset = log_start_checkpoint.max(first_base);
        debug_assert!(log_start_offset <= log_end_offset);
        let recovery_point = recovery_point.clamp(log_start_offset, log_end_offset);
        let mut epochs = LeaderEpochCache::load(&dir)?;
        epochs.truncate_from_end(log_end_offset)?;
        epochs.truncate_from_start(log_start_offset)?;
        report.log_end_offset = log_end_offset;
        let log = PartitionLog {
            dir,
            topic: topic.to_string(),
            partition,
            config,
            sealed: segments,
            files,
            active,
            log_start_offset,
            log_end_offset,
            recovery_point,
            unflushed_since: (recovery_point < log_end_offset).then_some(now_ms),
            appended_since_flush_began: None,
            producers,
            epochs,
            truncations: 0,
            synced_truncations: 0,
        };
        log.debug_assert_invariants();
        Ok((log, report))
    }
}
