//! One segment of a partition log: `<20-digit base offset>.log` with its `.index` and
//! `.timeindex`.

use std::fs::{File, OpenOptions};
use std::io;
use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::error::{IoContext, StorageError};
use crate::file_cache::{next_segment_id, LogFileCache};
use crate::index::{OffsetIndex, TimeIndex};
use crate::scan::{scan_segment, ScanOutcome};

/// File name of a segment file: the base offset on 20 digits, then `.ext` (Kafka's naming).
pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Suffix added to the files of a segment scheduled for deletion (Kafka's
/// `LogFileUtils.DELETED_FILE_SUFFIX`); such files are unlinked after `file.delete.delay.ms`,
/// or when the log is next opened.
pub const DELETED_FILE_SUFFIX: &str = ".deleted";

/// `path` with [`DELETED_FILE_SUFFIX`] appended.
fn deleted_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(DELETED_FILE_SUFFIX);
    PathBuf::from(name)
}

/// A segment taken out of its log whose files were renamed with [`DELETED_FILE_SUFFIX`]; they
/// wait for [`DeletedSegment::remove_files`] (Kafka's asynchronous segment deletion). It holds
/// only paths, so it may be sent to a blocking thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSegment {
    base_offset: i64,
    next_offset: i64,
    size: u64,
    files: Vec<PathBuf>,
}

impl DeletedSegment {
    /// First offset the segment held.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset after the segment's last batch.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes in its log file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The renamed files (`<base>.log.deleted`, and the indexes that existed).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Unlinks the renamed files (each truncated first, see [`remove_file_releasing_blocks`]);
    /// files already gone are skipped.
    pub fn remove_files(&self) -> Result<(), StorageError> {
        self.files
            .iter()
            .try_for_each(|path| remove_file_releasing_blocks(path).at(path))
    }
}

/// Gives the files of `segments`, renamed `.deleted` by an operation that then failed, their
/// names back (newest segment last renamed, first restored), so that the log on disk is as it
/// was. A file that cannot be renamed back is logged: it is lost when the log is next opened.
pub(crate) fn restore_deleted(segments: &[DeletedSegment]) {
    for path in segments.iter().rev().flat_map(|s| s.files.iter().rev()) {
        let name = path.as_os_str().to_string_lossy();
        if let Some(original) = name.strip_suffix(DELETED_FILE_SUFFIX) {
            if let Err(e) = std::fs::rename(path, original) {
                tracing::error!(
                    "cannot restore {} after a failed operation: {e}; it is lost when the log is reopened",
                    path.display()
                );
            }
        }
    }
}

/// Removes `path`, treating a missing file as removed.
fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

/// Removes the file `path` after truncating it to zero, so that its blocks are freed by the
/// calling thread even if another handle keeps it open (the last close of an unlinked file is
/// where its blocks would be freed otherwise, and that can be slow: ext4 mounted `-o discard`
/// discards synchronously). A missing file counts as removed.
pub fn remove_file_releasing_blocks(path: &Path) -> io::Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => file.set_len(0)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// When the sparse indexes get an entry, following Kafka's `LogSegment.append`: once more than
/// `index_interval_bytes` have been appended since the last entry, the next batch gets one.
#[derive(Debug, Clone, Copy)]
struct IndexCadence {
    bytes_since_last_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

/// Index entries due for one batch: (last offset, position) and (max timestamp, its offset).
type DueEntries = ((i64, u64), (i64, i64));

impl IndexCadence {
    fn new() -> Self {
        IndexCadence {
            bytes_since_last_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
        }
    }

    /// Accounts for a batch's max timestamp: the segment's max timestamp is that of the first
    /// batch that reached it.
    fn observe_timestamp(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp || self.offset_of_max_timestamp < 0 {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
    }

    /// Accounts for a batch written at `position`; returns the index entries it earns.
    fn on_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
        interval: u32,
    ) -> Option<DueEntries> {
        self.observe_timestamp(header);
        let due = (self.bytes_since_last_entry > u64::from(interval)).then(|| {
            self.bytes_since_last_entry = 0;
            (
                (header.last_offset(), position),
                (self.max_timestamp, self.offset_of_max_timestamp),
            )
        });
        self.bytes_since_last_entry += header.total_size() as u64;
        due
    }
}

/// What opening a segment found.
#[derive(Debug)]
pub(crate) struct OpenedSegment {
    pub segment: Segment,
    pub scan: ScanOutcome,
    pub batches: u64,
    pub original_size: u64,
}

/// How a segment reaches its log file.
#[derive(Debug)]
enum LogHandle {
    /// The segment holds its file open for reading and writing: the active segment (and a
    /// segment being written by the cleaner).
    Pinned(Arc<File>),
    /// A sealed segment: its file is opened on demand through the shard's cache.
    Cached(CachedLog),
}

/// A sealed segment's place in a [`LogFileCache`]; dropping it closes the cached file.
#[derive(Debug)]
struct CachedLog {
    cache: LogFileCache,
    id: u64,
}

impl Drop for CachedLog {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

/// A way to open a segment's log file later, away from the segment (the cleaner reads sources
/// on a blocking thread): the segment's own handle, or its entry in the shard's cache.
#[derive(Debug, Clone)]
pub enum LogOpener {
    /// The file, held open by its segment.
    Open(Arc<File>),
    /// Segment `id`'s file at `path`, through `cache`.
    Cached {
        /// The shard's cache.
        cache: LogFileCache,
        /// The segment's id.
        id: u64,
        /// The log file's path.
        path: PathBuf,
    },
}

impl LogOpener {
    /// The open log file (see [`Segment::log_file`]).
    pub fn open(&self) -> io::Result<Arc<File>> {
        match self {
            LogOpener::Open(file) => Ok(Arc::clone(file)),
            LogOpener::Cached { cache, id, path } => cache.get_or_open(*id, path),
        }
    }
}

/// A segment: a log file of record batches starting at `base_offset`, and its sparse indexes.
///
/// The active segment keeps its three files open. Once sealed, [`Segment::release_files`]
/// closes its indexes (lookups use their entries in memory) and hands its log file to the
/// shard's [`LogFileCache`], which closes it when it is least recently used; it is opened
/// again on demand.
#[derive(Debug)]
pub struct Segment {
    /// Identifies the segment for the life of the process (renames keep it).
    id: u64,
    base_offset: i64,
    log_path: PathBuf,
    log: LogHandle,
    size: u64,
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    cadence: IndexCadence,
    created_at_ms: i64,
}

impl Segment {
    /// Creates a new empty segment in `dir` (replacing stale files of the same name).
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> Result<Segment, StorageError> {
        Segment::create_with_suffix(dir, base_offset, now_ms, "")
    }

    /// Creates a new empty segment whose three file names end with `suffix` (Kafka's
    /// `LogSegment.open` with a file suffix: the cleaner writes `<base>.log.cleaned`, …).
    pub(crate) fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        suffix: &str,
    ) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, "log") + suffix);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .at(&log_path)?;
        let index_path = dir.join(file_name(base_offset, "index") + suffix);
        let time_path = dir.join(file_name(base_offset, "timeindex") + suffix);
        Ok(Segment {
            id: next_segment_id(),
            base_offset,
            log: LogHandle::Pinned(Arc::new(log)),
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::create(&index_path, base_offset).at(&index_path)?,
            time_index: TimeIndex::create(&time_path, base_offset).at(&time_path)?,
            cadence: IndexCadence::new(),
            created_at_ms: now_ms,
            log_path,
        })
    }

    /// Opens an existing segment and scans it (verifying CRCs if `verify_crc`), calling
    /// `on_batch` for every valid batch. The file is cut at the first bad batch. The indexes are
    /// rebuilt from the scan when the segment was verified or cut, or when their files are
    /// missing or invalid; otherwise the files are kept.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        index_interval_bytes: u32,
        verify_crc: bool,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> Result<OpenedSegment, StorageError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        let original_size = log.metadata().at(&log_path)?.len();
        let mut cadence = IndexCadence::new();
        let mut offset_entries = Vec::new();
        let mut time_entries: Vec<(i64, i64)> = Vec::new();
        let mut next_offset = base_offset;
        let mut first_timestamp = None;
        let mut batches = 0u64;
        let scan = scan_segment(&log, original_size, base_offset, verify_crc, |pos, h| {
            if let Some((offset_entry, time_entry)) = cadence.on_batch(h, pos, index_interval_bytes)
            {
                offset_entries.push(offset_entry);
                if time_entries.last().is_none_or(|l| l.0 < time_entry.0) {
                    time_entries.push(time_entry);
                }
            }
            first_timestamp.get_or_insert(h.max_timestamp);
            next_offset = h.next_offset();
            batches += 1;
            on_batch(h);
        })
        .at(&log_path)?;
        if scan.problem.is_some() {
            log.set_len(scan.valid_len).at(&log_path)?;
        }
        let index_path = dir.join(file_name(base_offset, "index"));
        let time_path = dir.join(file_name(base_offset, "timeindex"));
        let rebuild = verify_crc || scan.problem.is_some();
        let loaded = if rebuild {
            None
        } else {
            let offsets =
                OffsetIndex::load(&index_path, base_offset, scan.valid_len).at(&index_path)?;
            let times = TimeIndex::load(&time_path, base_offset).at(&time_path)?;
            offsets.zip(times)
        };
        let (offset_index, time_index) = match loaded {
            Some(pair) => pair,
            None => {
                let mut offsets = OffsetIndex::create(&index_path, base_offset).at(&index_path)?;
                offsets.replace_all(&offset_entries).at(&index_path)?;
                let mut times = TimeIndex::create(&time_path, base_offset).at(&time_path)?;
                times.replace_all(&time_entries).at(&time_path)?;
                (offsets, times)
            }
        };
        let segment = Segment {
            id: next_segment_id(),
            base_offset,
            log: LogHandle::Pinned(Arc::new(log)),
            size: scan.valid_len,
            next_offset,
            offset_index,
            time_index,
            cadence,
            created_at_ms: first_timestamp.map_or(now_ms, |ts: i64| ts.min(now_ms)),
            log_path,
        };
        Ok(OpenedSegment {
            segment,
            scan,
            batches,
            original_size,
        })
    }

    /// Appends a batch whose first 61 bytes are `prefix` (already patched with its offsets) and
    /// whose records are `records`, with one vectored `pwrite` at the end of the file.
    /// `header` describes the batch as written.
    pub fn append(
        &mut self,
        header: &BatchHeader,
        prefix: &[u8; HEADER_SIZE],
        records: &[u8],
        index_interval_bytes: u32,
    ) -> io::Result<()> {
        debug_assert!(
            header.base_offset >= self.next_offset,
            "offsets must increase"
        );
        debug_assert_eq!(header.total_size(), HEADER_SIZE + records.len());
        let position = self.size;
        let Some(log) = self.pinned_log_file() else {
            debug_assert!(false, "appends go to the active segment, which is pinned");
            return Err(io::Error::other(format!(
                "{}: append to a sealed segment",
                self.log_path.display()
            )));
        };
        write_all_vectored_at(log, [prefix, records], position)?;
        if let Some((offset_entry, time_entry)) =
            self.cadence
                .on_batch(header, position, index_interval_bytes)
        {
            self.offset_index.append(offset_entry.0, offset_entry.1)?;
            self.time_index.maybe_append(time_entry.0, time_entry.1)?;
        }
        self.size += header.total_size() as u64;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Adds the final time-index entry for the segment's max timestamp (Kafka does this when a
    /// segment stops being active) and syncs both indexes.
    pub fn seal(&mut self) -> io::Result<()> {
        self.complete_indexes()?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Adds the final time-index entry, as [`Self::seal`], without syncing: a rolled segment's
    /// indexes are synced later, off the shard's thread, by the flush that moves the recovery
    /// point past the segment ([`Self::index_paths`]).
    pub fn complete_indexes(&mut self) -> io::Result<()> {
        if let Some((ts, offset)) = self.max_timestamp() {
            self.time_index.maybe_append(ts, offset)?;
        }
        Ok(())
    }

    /// The paths of the segment's offset and time indexes.
    pub fn index_paths(&self) -> [PathBuf; 2] {
        [
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ]
    }

    /// Releases the files of a sealed segment (after [`Segment::seal`], or once loaded): its
    /// indexes close theirs and answer from memory, and its log file goes to `cache`, through
    /// which it is read (and flushed) from now on, opened again whenever the cache closed it.
    pub fn release_files(&mut self, cache: &LogFileCache) {
        self.offset_index.close_file();
        self.time_index.close_file();
        let cached = LogHandle::Cached(CachedLog {
            cache: cache.clone(),
            id: self.id,
        });
        if let LogHandle::Pinned(file) = std::mem::replace(&mut self.log, cached) {
            cache.adopt(self.id, file);
        }
    }

    /// Whether the segment holds its log file open itself (not released to a cache).
    pub fn is_pinned(&self) -> bool {
        matches!(self.log, LogHandle::Pinned(_))
    }

    /// Makes a sealed segment writable again, as the log's active segment after a truncation:
    /// it opens its log file for reading and writing and holds it, leaving the shard's cache
    /// (readers keep the handles they hold). Its indexes open their files at their next write.
    /// Nothing to do for a pinned segment.
    pub(crate) fn pin(&mut self) -> Result<(), StorageError> {
        if self.is_pinned() {
            return Ok(());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.log_path)
            .at(&self.log_path)?;
        self.log = LogHandle::Pinned(Arc::new(file));
        Ok(())
    }

    /// Removes every batch whose last offset is >= `offset` (Kafka's `LogSegment.truncateTo`):
    /// the indexes lose their entries for those batches, the log file is cut where the first
    /// of them starts, and the segment's max timestamp is found again among the batches kept,
    /// by reading the headers from the batch of the last time-index entry kept on (the whole
    /// segment when there is none). The next index entry is due after `index.interval.bytes`
    /// more bytes, as in Kafka. A segment left empty restarts its `segment.ms` clock at
    /// `now_ms`. Returns the bytes removed. Only the active (pinned) segment is truncated.
    pub(crate) fn truncate_to(&mut self, offset: i64, now_ms: i64) -> io::Result<u64> {
        let Some(log) = self.pinned_log_file().cloned() else {
            debug_assert!(
                false,
                "only the active segment, which is pinned, is truncated"
            );
            return Err(io::Error::other(format!(
                "{}: truncation of a sealed segment",
                self.log_path.display()
            )));
        };
        self.offset_index.truncate_to(offset)?;
        self.time_index.truncate_to(offset)?;
        let scan_from = match self.time_index.last_entry() {
            Some((_, offset_of_max_timestamp)) => {
                self.offset_index.lookup(offset_of_max_timestamp).1
            }
            None => 0,
        };
        let mut cadence = IndexCadence::new();
        let mut next_offset = None;
        let mut cut = self.size;
        let mut position = scan_from;
        let mut buf = [0u8; HEADER_SIZE];
        while position + HEADER_SIZE as u64 <= self.size {
            log.read_exact_at(&mut buf, position)?;
            let header = BatchHeader::parse(&buf).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} at position {position}: {e}", self.log_path.display()),
                )
            })?;
            if header.last_offset() >= offset {
                cut = position;
                break;
            }
            cadence.observe_timestamp(&header);
            next_offset = Some(header.next_offset());
            position += header.total_size() as u64;
        }
        debug_assert!(
            scan_from == 0 || next_offset.is_some(),
            "the batch of the last time-index entry kept is kept"
        );
        if cut < self.size {
            log.set_len(cut)?;
        }
        let removed = self.size - cut;
        self.size = cut;
        self.next_offset = next_offset.unwrap_or(self.base_offset);
        self.cadence = cadence;
        if cut == 0 {
            self.created_at_ms = now_ms;
        }
        debug_assert!(self.next_offset <= offset.max(self.base_offset));
        Ok(removed)
    }

    /// Calls `on_batch` with the header of every batch of the segment, in order, reading the
    /// file in large chunks (the producer state is rebuilt from them after a truncation).
    pub(crate) fn for_each_batch_header(
        &self,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> io::Result<()> {
        let file = self.log_file()?;
        let scan = scan_segment(&file, self.size, self.base_offset, false, |_, h| {
            on_batch(h)
        })?;
        match scan.problem {
            None => Ok(()),
            Some(problem) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} at position {}: {}",
                    self.log_path.display(),
                    problem.position,
                    problem.reason
                ),
            )),
        }
    }

    /// The first batch (position, header) whose last offset is >= `offset`, found from the
    /// offset index; `None` when every batch ends before it.
    pub fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let (_, position) = self.offset_index.lookup(offset);
        self.scan_headers(position, |h| h.last_offset() >= offset)
    }

    /// The first batch whose max timestamp is >= `timestamp` and that holds offsets at or after
    /// `starting_offset`, found from the time index (as Kafka's
    /// `LogSegment.findOffsetByTimestamp`, which starts at the log start offset).
    pub fn find_batch_by_timestamp(
        &self,
        timestamp: i64,
        starting_offset: i64,
    ) -> io::Result<Option<(u64, BatchHeader)>> {
        let (_, offset) = self.time_index.lookup(timestamp);
        let (_, position) = self.offset_index.lookup(offset.max(starting_offset));
        self.scan_headers(position, |h| {
            h.max_timestamp >= timestamp && h.last_offset() >= starting_offset
        })
    }

    /// Position of the first batch whose base offset is >= `offset`, or the segment size.
    pub fn position_of(&self, offset: i64) -> io::Result<u64> {
        let (_, position) = self.offset_index.lookup(offset);
        Ok(self
            .scan_headers(position, |h| h.base_offset >= offset)?
            .map_or(self.size, |(pos, _)| pos))
    }

    /// Reads batch headers from `position` on until `pred` holds.
    fn scan_headers(
        &self,
        mut position: u64,
        pred: impl Fn(&BatchHeader) -> bool,
    ) -> io::Result<Option<(u64, BatchHeader)>> {
        let mut buf = [0u8; HEADER_SIZE];
        if position + HEADER_SIZE as u64 > self.size {
            return Ok(None);
        }
        let log = self.log_file()?;
        while position + HEADER_SIZE as u64 <= self.size {
            log.read_exact_at(&mut buf, position)?;
            let header = BatchHeader::parse(&buf).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} at position {position}: {e}", self.log_path.display()),
                )
            })?;
            if pred(&header) {
                return Ok(Some((position, header)));
            }
            position += header.total_size() as u64;
        }
        Ok(None)
    }

    /// Reads the whole batch at `position`.
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; header.total_size()];
        self.log_file()?.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Paths of the segment's three files: log, offset index, time index.
    fn file_paths(&self) -> [PathBuf; 3] {
        [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ]
    }

    /// Renames the segment's three files from names ending with `old_suffix` to names ending
    /// with `new_suffix` (Kafka's `LogSegment.changeFileSuffixes`); open handles stay valid.
    /// The indexes are renamed before the log file, so that a log file with the new suffix
    /// implies indexes with it too (they may be rebuilt if missing).
    pub(crate) fn change_file_suffixes(
        &mut self,
        old_suffix: &str,
        new_suffix: &str,
    ) -> Result<(), StorageError> {
        let renamed = |path: &Path| -> PathBuf {
            let name = path.as_os_str().to_string_lossy();
            let stem = name.strip_suffix(old_suffix).unwrap_or(&name);
            PathBuf::from(format!("{stem}{new_suffix}"))
        };
        let index_path = renamed(self.offset_index.path());
        self.offset_index.rename_to(&index_path).at(&index_path)?;
        let time_path = renamed(self.time_index.path());
        self.time_index.rename_to(&time_path).at(&time_path)?;
        let log_path = renamed(&self.log_path);
        std::fs::rename(&self.log_path, &log_path).at(&log_path)?;
        self.log_path = log_path;
        Ok(())
    }

    /// Removes the segment's three files.
    pub fn delete(self) -> Result<(), StorageError> {
        self.file_paths()
            .iter()
            .try_for_each(|path| remove_if_exists(path))
    }

    /// Renames the segment's files to `<name>.deleted` (Kafka's asynchronous deletion); the
    /// caller then drops the segment. Readers still holding the log file (a fetch being sent)
    /// keep reading it. An index file that does not exist is skipped. If a rename fails, the
    /// files renamed so far get their names back and the segment is left as it was.
    pub fn rename_for_deletion(&self) -> Result<DeletedSegment, StorageError> {
        let mut renamed: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(3);
        for path in self.file_paths() {
            let target = deleted_path(&path);
            match std::fs::rename(&path, &target) {
                Ok(()) => renamed.push((path, target)),
                Err(e) if e.kind() == io::ErrorKind::NotFound && path != self.log_path => {}
                Err(e) => {
                    for (original, target) in renamed.iter().rev() {
                        let _ = std::fs::rename(target, original);
                    }
                    return Err(e).at(&path);
                }
            }
        }
        Ok(DeletedSegment {
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size: self.size,
            files: renamed.into_iter().map(|(_, target)| target).collect(),
        })
    }

    /// First offset of the segment.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Offset after the segment's last batch (its base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes in the log file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The log file, shared so that the network layer can `sendfile` from it: the segment's
    /// own handle, or one from the shard's cache (opened now if needed, which fails with
    /// `EMFILE` when the process is out of descriptors). Holding the `Arc` keeps the descriptor
    /// open even if the cache evicts it meanwhile.
    pub fn log_file(&self) -> io::Result<Arc<File>> {
        match &self.log {
            LogHandle::Pinned(file) => Ok(Arc::clone(file)),
            LogHandle::Cached(cached) => cached.cache.get_or_open(cached.id, &self.log_path),
        }
    }

    /// What opens the log file later, without borrowing the segment.
    pub fn log_opener(&self) -> LogOpener {
        match &self.log {
            LogHandle::Pinned(file) => LogOpener::Open(Arc::clone(file)),
            LogHandle::Cached(cached) => LogOpener::Cached {
                cache: cached.cache.clone(),
                id: cached.id,
                path: self.log_path.clone(),
            },
        }
    }

    /// The segment's own read-write handle while it holds one (see [`Segment::is_pinned`]).
    fn pinned_log_file(&self) -> Option<&Arc<File>> {
        match &self.log {
            LogHandle::Pinned(file) => Some(file),
            LogHandle::Cached(_) => None,
        }
    }

    /// Identifies the segment for the life of the process (the cleaner checks with it that a
    /// segment it read is still in the log).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Largest timestamp in the segment and the last offset of the first batch that has it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        (self.cadence.offset_of_max_timestamp >= 0).then_some((
            self.cadence.max_timestamp,
            self.cadence.offset_of_max_timestamp,
        ))
    }

    /// Kafka's `LogSegment.largestTimestamp`, which `retention.ms` is measured against: the
    /// largest record timestamp, or the log file's last modification time when no batch has a
    /// timestamp (an empty segment, or timestamps of -1).
    pub fn largest_timestamp(&self) -> Result<i64, StorageError> {
        if let Some((timestamp, _)) = self.max_timestamp().filter(|(ts, _)| *ts >= 0) {
            return Ok(timestamp);
        }
        let modified = std::fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .at(&self.log_path)?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// When the segment was created (or its first batch's timestamp, once reopened): the start
    /// of the `segment.ms` clock.
    pub fn created_at_ms(&self) -> i64 {
        self.created_at_ms
    }

    /// The offset index.
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    /// The time index.
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }
}

/// Writes `parts` contiguously at `position` with `pwritev`, finishing a short write with
/// plain positioned writes.
fn write_all_vectored_at(file: &File, parts: [&[u8]; 2], position: u64) -> io::Result<()> {
    let offset = i64::try_from(position).map_err(io::Error::other)?;
    let written = loop {
        match nix::sys::uio::pwritev(
            file,
            &[IoSlice::new(parts[0]), IoSlice::new(parts[1])],
            offset,
        ) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut skip = written;
    let mut at = position + written as u64;
    for part in parts {
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        file.write_all_at(&part[skip..], at)?;
        at += (part.len() - skip) as u64;
        skip = 0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch_bytes, with_base_offset};

    fn append_raw(seg: &mut Segment, bytes: &[u8]) -> BatchHeader {
        let header = BatchHeader::parse(bytes).unwrap();
        let mut prefix = [0u8; HEADER_SIZE];
        prefix.copy_from_slice(&bytes[..HEADER_SIZE]);
        seg.append(&header, &prefix, &bytes[HEADER_SIZE..], 256)
            .unwrap();
        header
    }

    #[test]
    fn append_index_and_find() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 100, 5).unwrap();
        let mut positions = Vec::new();
        for i in 0..10 {
            positions.push(seg.size());
            append_raw(
                &mut seg,
                &with_base_offset(&batch_bytes(2, 1000 + i * 10), 100 + i * 2),
            );
        }
        assert_eq!(seg.next_offset(), 120);
        assert!(
            !seg.offset_index().is_empty(),
            "batches exceed the interval"
        );
        assert_eq!(seg.max_timestamp(), Some((1091, 119)));
        let (pos, h) = seg.find_batch(107).unwrap().unwrap();
        assert_eq!((pos, h.base_offset), (positions[3], 106));
        assert_eq!(seg.find_batch(120).unwrap(), None);
        let (pos, h) = seg.find_batch_by_timestamp(1035, 0).unwrap().unwrap();
        assert_eq!((pos, h.base_offset), (positions[4], 108));
        assert_eq!(seg.position_of(107).unwrap(), positions[4]);
        assert_eq!(seg.position_of(500).unwrap(), seg.size());
        let bytes = seg.read_batch(pos, &h).unwrap();
        assert_eq!(BatchHeader::parse(&bytes).unwrap(), h);
        seg.seal().unwrap();
        assert_eq!(seg.time_index().last_entry(), Some((1091, 119)));
        assert!(dir.path().join("00000000000000000100.log").exists());
        seg.delete().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn rename_for_deletion_then_remove_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 40, 5).unwrap();
        append_raw(&mut seg, &with_base_offset(&batch_bytes(3, 1000), 40));
        assert_eq!(seg.largest_timestamp().unwrap(), 1002);
        let deleted = seg.rename_for_deletion().unwrap();
        drop(seg);
        assert_eq!((deleted.base_offset(), deleted.next_offset()), (40, 43));
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "00000000000000000040.index.deleted",
                "00000000000000000040.log.deleted",
                "00000000000000000040.timeindex.deleted"
            ]
        );
        assert_eq!(deleted.files().len(), 3);
        deleted.remove_files().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        // Without any timestamp, retention goes by the log file's modification time.
        let empty = Segment::create(dir.path(), 0, 5).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((empty.largest_timestamp().unwrap() - now).abs() < 60_000);
        // A missing index file is skipped; a missing log file is an error.
        std::fs::remove_file(dir.path().join(file_name(0, "index"))).unwrap();
        assert_eq!(empty.rename_for_deletion().unwrap().files().len(), 2);
        assert!(empty.rename_for_deletion().is_err());
    }

    #[test]
    fn reopen_keeps_or_rebuilds_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 5).unwrap();
        for i in 0..6 {
            append_raw(&mut seg, &with_base_offset(&batch_bytes(3, 50 + i), i * 3));
        }
        seg.seal().unwrap();
        let entries = seg.offset_index().len();
        drop(seg);
        let mut count = 0;
        let opened = Segment::open(dir.path(), 0, 99, 256, false, |_| count += 1).unwrap();
        assert_eq!((opened.batches, count), (6, 6));
        assert_eq!(opened.segment.offset_index().len(), entries);
        assert_eq!(opened.segment.next_offset(), 18);
        assert_eq!(opened.segment.created_at_ms(), 52);
        std::fs::remove_file(dir.path().join(file_name(0, "index"))).unwrap();
        let opened = Segment::open(dir.path(), 0, 99, 256, true, |_| {}).unwrap();
        assert_eq!(opened.segment.offset_index().len(), entries);
        assert!(opened.scan.problem.is_none());
    }
}
