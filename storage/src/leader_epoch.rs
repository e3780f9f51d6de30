//! The leader-epoch cache of a partition, persisted as Kafka's `leader-epoch-checkpoint`
//! (version line `0`, count line, `epoch startOffset` lines), answering OffsetForLeaderEpoch.
//!
//! [`LeaderEpochCache::assign`], [`LeaderEpochCache::truncate_from_start`] and
//! [`LeaderEpochCache::truncate_from_end`] write the file at once, on the calling thread (once
//! per leader change, at DeleteRecords and when the log is opened); the `_deferred` variants
//! used by a follower's truncation hand the write to the caller as an [`EpochCheckpointWrite`]
//! instead, to run off the shard's thread.

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_versioned_lines, write_atomically};
use crate::error::{IoContext, StorageError};

/// Name of the file in the partition directory.
pub const FILE_NAME: &str = "leader-epoch-checkpoint";

/// A write of the `leader-epoch-checkpoint` file that a caller runs later, off the shard's
/// thread (it fsyncs). It is `Send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCheckpointWrite {
    path: PathBuf,
    contents: Vec<u8>,
}

impl EpochCheckpointWrite {
    /// Writes the file atomically and durably (temporary file, fsync, rename, directory
    /// fsync).
    pub fn write(&self) -> std::io::Result<()> {
        crate::blocking::debug_assert_blocking_allowed("a leader-epoch checkpoint write");
        write_atomically(&self.path, &self.contents)
    }
}

/// Leader epochs and the first offset each leader wrote, in increasing order of both.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Loads the cache of the partition directory `dir` (empty when the file is missing).
    pub fn load(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(FILE_NAME);
        let entries = read_versioned_lines(&path)?
            .into_iter()
            .map(|(line, text)| {
                let mut fields = text.split_whitespace();
                let parsed = match (fields.next(), fields.next(), fields.next()) {
                    (Some(e), Some(o), None) => e.parse().ok().zip(o.parse().ok()),
                    _ => None,
                };
                parsed.ok_or_else(|| StorageError::Malformed {
                    path: path.clone(),
                    line,
                    reason: format!("expected `epoch startOffset`, got {text:?}"),
                })
            })
            .collect::<Result<Vec<(i32, i64)>, _>>()?;
        let monotonic = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        if !monotonic {
            return Err(StorageError::Malformed {
                path,
                line: 3,
                reason: "epochs or start offsets decrease".into(),
            });
        }
        Ok(LeaderEpochCache { path, entries })
    }

    /// Writes the checkpoint now, on the calling thread (see the module docs).
    fn persist(&self) -> Result<(), StorageError> {
        write_atomically(&self.path, &self.checkpoint().contents).at(&self.path)
    }

    /// The checkpoint file's contents for the entries as they are now, to write later.
    pub(crate) fn checkpoint(&self) -> EpochCheckpointWrite {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, offset) in &self.entries {
            text.push_str(&format!("{epoch} {offset}\n"));
        }
        EpochCheckpointWrite {
            path: self.path.clone(),
            contents: text.into_bytes(),
        }
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.0)
    }

    /// All (epoch, start offset) entries.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Records that leader `epoch` starts writing at `start_offset`. An epoch not newer than the
    /// latest is ignored; entries that the new one supersedes (start offset >= `start_offset`)
    /// are dropped, as Kafka does.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), StorageError> {
        if self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        self.entries.retain(|&(_, start)| start < start_offset);
        self.entries.push((epoch, start_offset));
        debug_assert!(self
            .entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        self.persist()
    }

    /// Drops the epochs that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), StorageError> {
        match self.truncate_from_end_deferred(end_offset) {
            Some(_) => self.persist(),
            None => Ok(()),
        }
    }

    /// [`Self::truncate_from_end`], leaving the checkpoint file to the caller: the write it
    /// needs when an entry was dropped, to run off the shard's thread (Kafka too writes the
    /// checkpoint of a truncation asynchronously). Until it is written, the file may still hold
    /// the dropped entries; opening the log drops those beyond its end again.
    pub fn truncate_from_end_deferred(&mut self, end_offset: i64) -> Option<EpochCheckpointWrite> {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end_offset);
        (self.entries.len() != before).then(|| self.checkpoint())
    }

    /// Forgets every epoch (Kafka's `clearAndFlush`, when the log restarts empty at another
    /// offset), leaving the checkpoint write to the caller as
    /// [`Self::truncate_from_end_deferred`] does.
    pub fn clear_deferred(&mut self) -> Option<EpochCheckpointWrite> {
        self.truncate_from_end_deferred(i64::MIN)
    }

    /// Forgets what lies below the new log start offset `start_offset` (Kafka's
    /// `truncateFromStart`): epochs that start at or below it are dropped, except the latest of
    /// them, which now starts at `start_offset`. So an OffsetForLeaderEpoch answer never points
    /// below the log start offset.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), StorageError> {
        let covered = self
            .entries
            .iter()
            .take_while(|&&(_, start)| start <= start_offset)
            .count();
        if covered == 0 || (covered == 1 && self.entries[0].1 == start_offset) {
            return Ok(());
        }
        let (epoch, _) = self.entries[covered - 1];
        self.entries.drain(..covered);
        self.entries.insert(0, (epoch, start_offset));
        debug_assert!(self
            .entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        self.persist()
    }

    /// OffsetForLeaderEpoch: (largest epoch <= `requested`, end offset of that epoch). The latest
    /// epoch ends at `log_end_offset`; an earlier one where the next higher epoch starts; an
    /// epoch beyond the latest (or -1) yields (-1, -1).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested < 0 {
            return (-1, -1);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.iter().find(|e| e.0 > requested);
        let floor = self.entries.iter().rev().find(|e| e.0 <= requested);
        match (higher, floor) {
            (None, _) => (-1, -1),
            (Some(h), None) => (requested, h.1),
            (Some(h), Some(f)) => (f.0, h.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_from_start_keeps_the_epoch_that_covers_the_new_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        for (epoch, start) in [(0, 0), (1, 100), (2, 200)] {
            cache.assign(epoch, start).unwrap();
        }
        cache.truncate_from_start(50).unwrap();
        assert_eq!(cache.entries(), [(0, 50), (1, 100), (2, 200)]);
        cache.truncate_from_start(150).unwrap();
        assert_eq!(cache.entries(), [(1, 150), (2, 200)]);
        // Epoch 0 now ends where the log starts, not below it.
        assert_eq!(cache.end_offset_for(0, 300), (0, 150));
        cache.truncate_from_start(200).unwrap();
        assert_eq!(cache.entries(), [(2, 200)]);
        cache.truncate_from_start(120).unwrap();
        assert_eq!(cache.entries(), [(2, 200)]);
        let reloaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(reloaded.entries(), [(2, 200)]);
    }

    #[test]
    fn assign_persist_and_end_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(cache.end_offset_for(0, 10), (-1, -1));
        cache.assign(1, 0).unwrap();
        cache.assign(1, 5).unwrap();
        cache.assign(3, 10).unwrap();
        cache.assign(5, 20).unwrap();
        cache.assign(4, 25).unwrap();
        assert_eq!(cache.entries(), &[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            "0\n3\n1 0\n3 10\n5 20\n"
        );
        assert_eq!(cache.end_offset_for(5, 30), (5, 30));
        assert_eq!(cache.end_offset_for(6, 30), (-1, -1));
        assert_eq!(cache.end_offset_for(4, 30), (3, 20));
        assert_eq!(cache.end_offset_for(3, 30), (3, 20));
        assert_eq!(cache.end_offset_for(0, 30), (0, 0));
        assert_eq!(cache.end_offset_for(-1, 30), (-1, -1));
        let reloaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(reloaded.entries(), cache.entries());
        cache.truncate_from_end(15).unwrap();
        assert_eq!(
            LeaderEpochCache::load(dir.path()).unwrap().entries(),
            &[(1, 0), (3, 10)]
        );
    }

    #[test]
    fn malformed_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "0\n1\n3\n").unwrap();
        assert!(matches!(
            LeaderEpochCache::load(dir.path()),
            Err(StorageError::Malformed { line: 3, .. })
        ));
    }
}
