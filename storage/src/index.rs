//! Sparse offset (`.index`) and time (`.timeindex`) indexes in Kafka's on-disk format.
//!
//! Entries live in memory (a `Vec`, binary searched) and are appended to their file as they are
//! added. Loading ignores a torn trailing partial entry and refuses non-monotonic files (the
//! caller then rebuilds the index from the log). Lookups never touch the file, so the index of
//! a sealed segment closes it ([`OffsetIndex::close_file`]); a later write opens it again.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Size of an offset index entry: relative offset u32, position u32.
const OFFSET_ENTRY: usize = 8;
/// Size of a time index entry: timestamp i64, relative offset u32.
const TIME_ENTRY: usize = 12;

/// An index file of fixed-size big-endian entries; its descriptor is open only while needed.
#[derive(Debug)]
struct EntryFile {
    path: PathBuf,
    file: Option<File>,
}

/// Opens the index file at `path` for reading and writing, creating it if missing.
fn open_rw(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
}

impl EntryFile {
    fn open(path: &Path, truncate: bool) -> io::Result<Self> {
        Ok(EntryFile {
            path: path.to_path_buf(),
            file: Some(open_rw(path, truncate)?),
        })
    }

    /// The open file, opened again if it was closed.
    fn handle(&mut self) -> io::Result<&File> {
        match &mut self.file {
            Some(file) => Ok(file),
            slot => Ok(slot.insert(open_rw(&self.path, false)?)),
        }
    }

    /// Reads every whole entry; a torn partial entry at the end is cut from the file.
    fn read_entries(&mut self, entry_size: usize) -> io::Result<Vec<u8>> {
        let file = self.handle()?;
        let len = file.metadata()?.len();
        let len = usize::try_from(len).map_err(|_| io::Error::other("index file too large"))?;
        let whole = len - len % entry_size;
        let mut buf = vec![0u8; whole];
        file.read_exact_at(&mut buf, 0)?;
        if whole != len {
            file.set_len(whole as u64)?;
        }
        Ok(buf)
    }

    /// `fdatasync`s the file if it is open (a file closed at a segment roll is synced by path
    /// with the log's next flush, [`crate::PendingFlush`]).
    fn sync(&self) -> io::Result<()> {
        crate::blocking::debug_assert_blocking_allowed("an index fdatasync");
        self.file.as_ref().map_or(Ok(()), File::sync_data)
    }

    /// Closes the descriptor; the next write opens the file again.
    fn close(&mut self) {
        self.file = None;
    }

    /// Renames the file to `path`; the open handle stays valid.
    fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, path)?;
        self.path = path.to_path_buf();
        Ok(())
    }

    fn write_at_entry(&mut self, bytes: &[u8], index: usize, entry_size: usize) -> io::Result<()> {
        self.handle()?
            .write_all_at(bytes, (index * entry_size) as u64)
    }

    fn set_entries(&mut self, count: usize, entry_size: usize) -> io::Result<()> {
        self.handle()?.set_len((count * entry_size) as u64)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The offset index of one segment: maps offsets to byte positions in its `.log` file.
#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    file: EntryFile,
    /// (relative offset, position), strictly increasing in both.
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Creates an empty index at `path`, replacing any existing file.
    pub fn create(path: &Path, base_offset: i64) -> io::Result<Self> {
        Ok(OffsetIndex {
            base_offset,
            file: EntryFile::open(path, true)?,
            entries: Vec::new(),
        })
    }

    /// Loads the index at `path`. Returns `Ok(None)` when the file is missing or its entries are
    /// not strictly increasing, or point beyond `log_size`: the caller must rebuild it.
    pub fn load(path: &Path, base_offset: i64, log_size: u64) -> io::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let mut file = EntryFile::open(path, false)?;
        let raw = file.read_entries(OFFSET_ENTRY)?;
        let entries: Vec<(u32, u32)> = raw
            .chunks_exact(OFFSET_ENTRY)
            .map(|e| (u32_at(e, 0), u32_at(e, 4)))
            .collect();
        let monotonic = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let in_bounds = entries.iter().all(|e| u64::from(e.1) < log_size);
        if !monotonic || !in_bounds {
            return Ok(None);
        }
        Ok(Some(OffsetIndex {
            base_offset,
            file,
            entries,
        }))
    }

    /// Appends an entry for the batch at `position` whose last offset is `offset`.
    pub fn append(&mut self, offset: i64, position: u64) -> io::Result<()> {
        let entry = self.to_entry(offset, position)?;
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|l| l.0 < entry.0 && l.1 < entry.1),
            "offset index entries must strictly increase"
        );
        let mut bytes = [0u8; OFFSET_ENTRY];
        bytes[..4].copy_from_slice(&entry.0.to_be_bytes());
        bytes[4..].copy_from_slice(&entry.1.to_be_bytes());
        self.file
            .write_at_entry(&bytes, self.entries.len(), OFFSET_ENTRY)?;
        self.entries.push(entry);
        Ok(())
    }

    fn to_entry(&self, offset: i64, position: u64) -> io::Result<(u32, u32)> {
        let relative = u32::try_from(offset - self.base_offset);
        let position = u32::try_from(position);
        match (relative, position) {
            (Ok(r), Ok(p)) => Ok((r, p)),
            _ => Err(io::Error::other(format!(
                "offset {offset} / position {position:?} does not fit the index of segment {}",
                self.base_offset
            ))),
        }
    }

    /// Replaces every entry (and the file's contents) with `entries` of (offset, position),
    /// written with one call: used when an index is rebuilt from the log.
    pub fn replace_all(&mut self, entries: &[(i64, u64)]) -> io::Result<()> {
        let mut converted = Vec::with_capacity(entries.len());
        let mut bytes = Vec::with_capacity(entries.len() * OFFSET_ENTRY);
        for &(offset, position) in entries {
            let entry = self.to_entry(offset, position)?;
            debug_assert!(converted.last().is_none_or(|l: &(u32, u32)| l.0 < entry.0));
            bytes.extend_from_slice(&entry.0.to_be_bytes());
            bytes.extend_from_slice(&entry.1.to_be_bytes());
            converted.push(entry);
        }
        self.file.set_entries(0, OFFSET_ENTRY)?;
        self.file.write_at_entry(&bytes, 0, OFFSET_ENTRY)?;
        self.entries = converted;
        Ok(())
    }

    /// The entry with the greatest offset <= `offset`, as (offset, position); the segment start
    /// `(base_offset, 0)` when there is none.
    pub fn lookup(&self, offset: i64) -> (i64, u64) {
        let idx = self
            .entries
            .partition_point(|e| self.base_offset + i64::from(e.0) <= offset);
        match idx.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(&(rel, pos)) => (self.base_offset + i64::from(rel), u64::from(pos)),
            None => (self.base_offset, 0),
        }
    }

    /// Removes the entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let keep = self
            .entries
            .partition_point(|e| self.base_offset + i64::from(e.0) < offset);
        self.entries.truncate(keep);
        self.file.set_entries(keep, OFFSET_ENTRY)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `fdatasync`s the index file (nothing to do when its descriptor is closed).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }

    /// Closes the file's descriptor, after a [`Self::sync`]: lookups use the entries in
    /// memory, and a later write opens the file again.
    pub fn close_file(&mut self) {
        self.file.close();
    }

    /// Whether the file's descriptor is open.
    pub fn is_file_open(&self) -> bool {
        self.file.file.is_some()
    }

    /// Path of the index file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Renames the index file to `path` (the cleaner's suffix changes).
    pub(crate) fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        self.file.rename_to(path)
    }
}

/// The time index of one segment: maps timestamps to the offset of the batch that raised the
/// segment's max timestamp to that value.
#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    file: EntryFile,
    /// (timestamp, relative offset): timestamps strictly increase, offsets never decrease.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Creates an empty time index at `path`, replacing any existing file.
    pub fn create(path: &Path, base_offset: i64) -> io::Result<Self> {
        Ok(TimeIndex {
            base_offset,
            file: EntryFile::open(path, true)?,
            entries: Vec::new(),
        })
    }

    /// Loads the time index at `path`; `Ok(None)` when missing or not monotonic (rebuild it).
    pub fn load(path: &Path, base_offset: i64) -> io::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let mut file = EntryFile::open(path, false)?;
        let raw = file.read_entries(TIME_ENTRY)?;
        let entries: Vec<(i64, u32)> = raw
            .chunks_exact(TIME_ENTRY)
            .map(|e| {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&e[..8]);
                (i64::from_be_bytes(ts), u32_at(e, 8))
            })
            .collect();
        if !entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        {
            return Ok(None);
        }
        Ok(Some(TimeIndex {
            base_offset,
            file,
            entries,
        }))
    }

    fn to_entry(&self, timestamp: i64, offset: i64) -> io::Result<(i64, u32)> {
        let relative = u32::try_from(offset - self.base_offset).map_err(|_| {
            io::Error::other(format!(
                "offset {offset} does not fit the time index of segment {}",
                self.base_offset
            ))
        })?;
        Ok((timestamp, relative))
    }

    /// Appends (timestamp, offset) if `timestamp` is greater than the last entry's (Kafka's
    /// `maybeAppend`); returns whether an entry was added.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> io::Result<bool> {
        if self.entries.last().is_some_and(|l| l.0 >= timestamp) {
            return Ok(false);
        }
        let entry = self.to_entry(timestamp, offset)?;
        debug_assert!(self.entries.last().is_none_or(|l| l.1 <= entry.1));
        let mut bytes = [0u8; TIME_ENTRY];
        bytes[..8].copy_from_slice(&entry.0.to_be_bytes());
        bytes[8..].copy_from_slice(&entry.1.to_be_bytes());
        self.file
            .write_at_entry(&bytes, self.entries.len(), TIME_ENTRY)?;
        self.entries.push(entry);
        Ok(true)
    }

    /// Replaces every entry with `entries` of (timestamp, offset), written with one call.
    pub fn replace_all(&mut self, entries: &[(i64, i64)]) -> io::Result<()> {
        let mut converted = Vec::with_capacity(entries.len());
        let mut bytes = Vec::with_capacity(entries.len() * TIME_ENTRY);
        for &(timestamp, offset) in entries {
            let entry = self.to_entry(timestamp, offset)?;
            debug_assert!(converted.last().is_none_or(|l: &(i64, u32)| l.0 < entry.0));
            bytes.extend_from_slice(&entry.0.to_be_bytes());
            bytes.extend_from_slice(&entry.1.to_be_bytes());
            converted.push(entry);
        }
        self.file.set_entries(0, TIME_ENTRY)?;
        self.file.write_at_entry(&bytes, 0, TIME_ENTRY)?;
        self.entries = converted;
        Ok(())
    }

    /// The entry with the greatest timestamp <= `timestamp`, as (timestamp, offset);
    /// `(-1, base_offset)` when there is none.
    pub fn lookup(&self, timestamp: i64) -> (i64, i64) {
        let idx = self.entries.partition_point(|e| e.0 <= timestamp);
        match idx.checked_sub(1).and_then(|i| self.entries.get(i)) {
            Some(&(ts, rel)) => (ts, self.base_offset + i64::from(rel)),
            None => (-1, self.base_offset),
        }
    }

    /// The last entry as (timestamp, offset), if any.
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(ts, rel)| (ts, self.base_offset + i64::from(rel)))
    }

    /// Removes the entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let keep = self
            .entries
            .partition_point(|e| self.base_offset + i64::from(e.1) < offset);
        self.entries.truncate(keep);
        self.file.set_entries(keep, TIME_ENTRY)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `fdatasync`s the index file (nothing to do when its descriptor is closed).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync()
    }

    /// Closes the file's descriptor, after a [`Self::sync`]: lookups use the entries in
    /// memory, and a later write opens the file again.
    pub fn close_file(&mut self) {
        self.file.close();
    }

    /// Whether the file's descriptor is open.
    pub fn is_file_open(&self) -> bool {
        self.file.file.is_some()
    }

    /// Path of the index file.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Renames the index file to `path` (the cleaner's suffix changes).
    pub(crate) fn rename_to(&mut self, path: &Path) -> io::Result<()> {
        self.file.rename_to(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_append_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::create(&path, 100).unwrap();
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(110, 4000).unwrap();
        idx.append(120, 8000).unwrap();
        idx.append(130, 12000).unwrap();
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4000));
        assert_eq!(idx.lookup(125), (120, 8000));
        assert_eq!(idx.lookup(1000), (130, 12000));
        drop(idx);
        let mut loaded = OffsetIndex::load(&path, 100, 20000).unwrap().unwrap();
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded.lookup(125), (120, 8000));
        loaded.truncate_to(120).unwrap();
        assert_eq!(loaded.lookup(125), (110, 4000));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
        assert!(
            OffsetIndex::load(&path, 100, 4000).unwrap().is_none(),
            "beyond log"
        );
    }

    #[test]
    fn offset_index_torn_and_non_monotonic_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::create(&path, 0).unwrap();
        idx.append(5, 100).unwrap();
        idx.append(9, 200).unwrap();
        drop(idx);
        let f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all_at(&[1, 2, 3], 16).unwrap();
        let loaded = OffsetIndex::load(&path, 0, 1000).unwrap().unwrap();
        assert_eq!(loaded.len(), 2, "torn tail ignored");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        f.write_all_at(&[0u8; 8], 16).unwrap();
        assert!(OffsetIndex::load(&path, 0, 1000).unwrap().is_none());
        let mut rebuilt = OffsetIndex::create(&path, 0).unwrap();
        rebuilt.replace_all(&[(3, 50), (7, 90)]).unwrap();
        let loaded = OffsetIndex::load(&path, 0, 1000).unwrap().unwrap();
        assert_eq!(loaded.lookup(8), (7, 90));
        assert!(OffsetIndex::load(&dir.path().join("missing.index"), 0, 1)
            .unwrap()
            .is_none());
    }

    #[test]
    fn time_index_lookup_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::create(&path, 10).unwrap();
        assert_eq!(idx.lookup(5), (-1, 10));
        assert!(idx.maybe_append(1000, 12).unwrap());
        assert!(!idx.maybe_append(1000, 14).unwrap(), "timestamp must grow");
        assert!(idx.maybe_append(2000, 20).unwrap());
        assert_eq!(idx.lookup(999), (-1, 10));
        assert_eq!(idx.lookup(1500), (1000, 12));
        assert_eq!(idx.lookup(5000), (2000, 20));
        drop(idx);
        let mut loaded = TimeIndex::load(&path, 10).unwrap().unwrap();
        assert_eq!(loaded.last_entry(), Some((2000, 20)));
        loaded.truncate_to(20).unwrap();
        assert_eq!(loaded.last_entry(), Some((1000, 12)));
        loaded.replace_all(&[(5, 10), (7, 11)]).unwrap();
        assert_eq!(TimeIndex::load(&path, 10).unwrap().unwrap().len(), 2);
    }
}
