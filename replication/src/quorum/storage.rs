//! The durable Raft state of one node, in `__cluster_metadata-0`.
//!
//! Two files, both made of CRC-checked records `[u32 len][u32 crc32c][tag][protobuf]`:
//! * `raft.log`: append-only. Entry records and hard-state records in the order they happened;
//!   replaying it rebuilds the log (an entry whose index is already present replaces it and
//!   everything after it, as Raft's conflict rule did when it was written) and the last hard
//!   state. A torn tail (a crash mid-append) is cut off at start.
//! * `snapshot`: the latest snapshot, replaced atomically (tmp file, fsync, rename, fsync dir).
//!   After each new snapshot `raft.log` is rewritten the same way with only the entries after it.
//!
//! Appends are fsynced before Raft may acknowledge them or send the votes they record; a
//! hard state whose only change is the commit index is written without its own fsync (Raft
//! recovers the commit index from the leader) and rides on the next one.

use super::{raft_id, QuorumConfig, QuorumError};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const LOG_FILE: &str = "raft.log";
const SNAPSHOT_FILE: &str = "snapshot";
/// The largest record accepted when reading: a larger length is a torn or corrupt header.
const MAX_RECORD: usize = 256 << 20;
const HEADER: usize = 8;

const TAG_ENTRY: u8 = 1;
const TAG_HARD_STATE: u8 = 2;
const TAG_SNAPSHOT: u8 = 3;

/// One node's Raft log, hard state and snapshot: in memory for raft-rs, on disk for restarts.
pub(crate) struct DiskStorage {
    dir: PathBuf,
    log: File,
    /// The entries after the snapshot, contiguous from `snapshot index + 1`.
    entries: Vec<Entry>,
    hard_state: HardState,
    conf_state: ConfState,
    /// The latest snapshot (index 0 and no data when there is none).
    snapshot: Snapshot,
}

/// Appends one record for `message` under `tag` to `out`.
fn encode_record(
    out: &mut Vec<u8>,
    tag: u8,
    message: &impl protobuf::Message,
) -> Result<(), QuorumError> {
    let body = message
        .write_to_bytes()
        .map_err(|e| QuorumError::io("encoding a quorum record", std::io::Error::other(e)))?;
    let mut payload = Vec::with_capacity(body.len() + 1);
    payload.push(tag);
    payload.extend_from_slice(&body);
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len as usize <= MAX_RECORD)
        .ok_or_else(|| {
            QuorumError::io(
                "encoding a quorum record",
                std::io::Error::other("record too large"),
            )
        })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The intact records at the start of `bytes` as (tag, protobuf body), and how many bytes
/// they span: reading stops at the first incomplete, oversized or CRC-failing record.
fn decode_records(bytes: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(pos + HEADER..pos + HEADER + len) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        records.push((payload[0], &payload[1..]));
        pos += HEADER + len;
    }
    (records, pos)
}

/// Writes `bytes` to `dir/name` atomically: a tmp file, fsync, rename, fsync of the directory.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), QuorumError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let io = |what: &str, e| QuorumError::io(format!("{what} {}", target.display()), e);
    let mut file = File::create(&tmp).map_err(|e| io("creating a tmp file for", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    std::fs::rename(&tmp, &target).map_err(|e| io("renaming into", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing the directory of", e))
}

fn corrupt(path: &Path, why: impl Into<String>) -> QuorumError {
    QuorumError::Corrupt {
        path: path.display().to_string(),
        why: why.into(),
    }
}

impl DiskStorage {
    /// Opens (or creates) the state in `dir`: loads the snapshot, replays `raft.log` and cuts
    /// off its torn tail. The voters come from the configuration (the membership is static).
    pub(crate) fn open(dir: &Path, config: &QuorumConfig) -> Result<Self, QuorumError> {
        let mut voters: Vec<u64> = config.voters.iter().map(|v| raft_id(v.id)).collect();
        if voters.is_empty() {
            voters.push(raft_id(config.node_id));
        }
        let conf_state = ConfState::from((voters, Vec::new()));
        let snapshot = Self::load_snapshot(dir)?;
        let snapshot_index = snapshot.get_metadata().index;
        let log_path = dir.join(LOG_FILE);
        let bytes = match std::fs::read(&log_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(QuorumError::io(
                    format!("reading {}", log_path.display()),
                    e,
                ))
            }
        };
        let (records, valid) = decode_records(&bytes);
        let mut entries: Vec<Entry> = Vec::new();
        let mut hard_state = HardState::default();
        for (tag, body) in records {
            match tag {
                TAG_ENTRY => {
                    let entry = Entry::parse_from_bytes(body)
                        .map_err(|e| corrupt(&log_path, e.to_string()))?;
                    if entry.index <= snapshot_index {
                        continue;
                    }
                    let next = snapshot_index + entries.len() as u64 + 1;
                    if entry.index > next {
                        return Err(corrupt(
                            &log_path,
                            format!("entry {} follows a gap at {next}", entry.index),
                        ));
                    }
                    entries.truncate((entry.index - snapshot_index - 1) as usize);
                    entries.push(entry);
                }
                TAG_HARD_STATE => {
                    hard_state = HardState::parse_from_bytes(body)
                        .map_err(|e| corrupt(&log_path, e.to_string()))?;
                }
                other => return Err(corrupt(&log_path, format!("unknown record tag {other}"))),
            }
        }
        if let Some(first) = entries.first() {
            if first.index != snapshot_index + 1 {
                return Err(corrupt(
                    &log_path,
                    format!(
                        "log starts at {} after snapshot {snapshot_index}",
                        first.index
                    ),
                ));
            }
        }
        let last_index = snapshot_index + entries.len() as u64;
        hard_state.term = hard_state.term.max(snapshot.get_metadata().term);
        hard_state.commit = hard_state.commit.max(snapshot_index).min(last_index);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| QuorumError::io(format!("opening {}", log_path.display()), e))?;
        if valid < bytes.len() {
            tracing::warn!(path = %log_path.display(), valid, len = bytes.len(), "cutting off the torn tail of the quorum log");
            log.set_len(valid as u64)
                .and_then(|()| log.sync_all())
                .map_err(|e| QuorumError::io(format!("truncating {}", log_path.display()), e))?;
        }
        Ok(DiskStorage {
            dir: dir.to_path_buf(),
            log,
            entries,
            hard_state,
            conf_state,
            snapshot,
        })
    }

    fn load_snapshot(dir: &Path) -> Result<Snapshot, QuorumError> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Snapshot::default()),
            Err(e) => return Err(QuorumError::io(format!("reading {}", path.display()), e)),
        };
        // The file is replaced atomically, so anything but one intact record is corruption.
        match decode_records(&bytes) {
            (records, valid)
                if valid == bytes.len() && records.len() == 1 && records[0].0 == TAG_SNAPSHOT =>
            {
                Snapshot::parse_from_bytes(records[0].1).map_err(|e| corrupt(&path, e.to_string()))
            }
            _ => Err(corrupt(&path, "not one intact snapshot record")),
        }
    }

    /// The last persisted hard state (term, vote, commit).
    #[cfg(test)]
    pub(crate) fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The latest snapshot (index 0 when there is none).
    pub(crate) fn current_snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The index of the last entry (the snapshot's index when the log behind it is empty).
    pub(crate) fn last(&self) -> u64 {
        self.snapshot.get_metadata().index + self.entries.len() as u64
    }

    /// The index of the first entry still in the log.
    pub(crate) fn first(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    /// The entries in `[low, high)`, cut to about `max_bytes` (at least one).
    pub(crate) fn slice(&self, low: u64, high: u64, max_bytes: u64) -> Vec<Entry> {
        let first = self.first();
        let low = low.max(first);
        let high = high.min(self.last() + 1);
        if low >= high {
            return Vec::new();
        }
        let mut entries = self.entries[(low - first) as usize..(high - first) as usize].to_vec();
        raft::util::limit_size(&mut entries, Some(max_bytes));
        entries
    }

    /// Appends `entries` (replacing any conflicting suffix) and records `hard_state`, then
    /// fsyncs unless the only change is the commit index.
    pub(crate) fn persist(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), QuorumError> {
        let mut buf = Vec::new();
        let snapshot_index = self.snapshot.get_metadata().index;
        for entry in entries {
            debug_assert!(
                entry.index > snapshot_index,
                "raft never appends behind the snapshot"
            );
            debug_assert!(entry.index <= self.last() + 1, "raft appends without gaps");
            self.entries
                .truncate((entry.index - snapshot_index - 1) as usize);
            self.entries.push(entry.clone());
            encode_record(&mut buf, TAG_ENTRY, entry)?;
        }
        let mut must_sync = !entries.is_empty();
        if let Some(hard_state) = hard_state {
            must_sync |=
                hard_state.term != self.hard_state.term || hard_state.vote != self.hard_state.vote;
            self.hard_state = hard_state.clone();
            encode_record(&mut buf, TAG_HARD_STATE, hard_state)?;
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.log.write_all(&buf).map_err(|e| {
            QuorumError::io(
                format!("appending to {}", self.dir.join(LOG_FILE).display()),
                e,
            )
        })?;
        if must_sync {
            self.log.sync_data().map_err(|e| {
                QuorumError::io(format!("syncing {}", self.dir.join(LOG_FILE).display()), e)
            })?;
        }
        Ok(())
    }

    /// Records a new commit index (no fsync of its own: see the module doc).
    pub(crate) fn set_commit(&mut self, commit: u64) -> Result<(), QuorumError> {
        if commit == self.hard_state.commit {
            return Ok(());
        }
        let mut hard_state = self.hard_state.clone();
        hard_state.commit = commit;
        self.persist(&[], Some(&hard_state))
    }

    /// Replaces the whole state with a snapshot received from the leader.
    pub(crate) fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<(), QuorumError> {
        let meta = snapshot.get_metadata();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.entries.clear();
        self.snapshot = snapshot;
        self.save_snapshot_and_compact()
    }

    /// Stores the engine's state as of `index` (which must be committed and in the log or the
    /// current snapshot) and drops the entries up to it. Returns false when `index` is not
    /// after the current snapshot, which is then kept.
    pub(crate) fn take_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<bool, QuorumError> {
        if index <= self.snapshot.get_metadata().index {
            return Ok(false);
        }
        debug_assert!(
            index <= self.hard_state.commit,
            "only committed state is snapshotted"
        );
        let term = self.term(index)?;
        let mut snapshot = Snapshot::default();
        snapshot.data = data.into();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.conf_state.clone());
        let first = self.first();
        self.entries.drain(..(index + 1 - first) as usize);
        self.snapshot = snapshot;
        self.save_snapshot_and_compact()?;
        Ok(true)
    }

    /// Persists the snapshot, then rewrites `raft.log` with the hard state and the entries after
    /// it. A crash in between leaves the old log, whose entries behind the snapshot are skipped.
    fn save_snapshot_and_compact(&mut self) -> Result<(), QuorumError> {
        let mut buf = Vec::new();
        encode_record(&mut buf, TAG_SNAPSHOT, &self.snapshot)?;
        replace_file(&self.dir, SNAPSHOT_FILE, &buf)?;
        let mut log = Vec::new();
        encode_record(&mut log, TAG_HARD_STATE, &self.hard_state)?;
        for entry in &self.entries {
            encode_record(&mut log, TAG_ENTRY, entry)?;
        }
        replace_file(&self.dir, LOG_FILE, &log)?;
        let path = self.dir.join(LOG_FILE);
        self.log = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| QuorumError::io(format!("reopening {}", path.display()), e))?;
        Ok(())
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let first = self.first();
        let mut entries = self.entries[(low - first) as usize..(high - first) as usize].to_vec();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let meta = self.snapshot.get_metadata();
        if idx == meta.index {
            return Ok(meta.term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        if self.snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        let mut entry = Entry::default();
        entry.index = index;
        entry.term = term;
        entry.data = data.to_vec().into();
        entry
    }

    fn config(dir: &Path) -> QuorumConfig {
        QuorumConfig::single_node(1, dir.to_path_buf())
    }

    #[test]
    fn replays_entries_hard_state_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        let mut hs = HardState::default();
        hs.term = 2;
        hs.vote = 2;
        storage
            .persist(
                &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
                Some(&hs),
            )
            .unwrap();
        storage.persist(&[entry(2, 2, b"B")], None).unwrap();
        storage.set_commit(2).unwrap();
        drop(storage);
        let storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        assert_eq!(storage.last(), 2);
        assert_eq!(storage.term(2).unwrap(), 2);
        assert_eq!(storage.hard_state().vote, 2);
        assert_eq!(storage.hard_state().commit, 2);
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        storage
            .persist(&[entry(1, 1, b"a"), entry(2, 1, b"b")], None)
            .unwrap();
        drop(storage);
        let path = dir.path().join(LOG_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        assert_eq!(storage.last(), 1, "the torn second entry is gone");
        storage.persist(&[entry(2, 1, b"again")], None).unwrap();
        drop(storage);
        let storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        assert_eq!(storage.slice(2, 3, u64::MAX)[0].data.as_ref(), b"again");
    }

    #[test]
    fn a_snapshot_compacts_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        storage
            .persist(
                &[entry(1, 1, b"a"), entry(2, 1, b"b"), entry(3, 1, b"c")],
                None,
            )
            .unwrap();
        storage.set_commit(3).unwrap();
        assert!(storage.take_snapshot(2, b"state@2".to_vec()).unwrap());
        assert!(!storage.take_snapshot(1, b"older".to_vec()).unwrap());
        drop(storage);
        let storage = DiskStorage::open(dir.path(), &config(dir.path())).unwrap();
        assert_eq!(storage.first(), 3);
        assert_eq!(storage.last(), 3);
        assert_eq!(storage.current_snapshot().data.as_ref(), b"state@2");
        assert_eq!(storage.term(2).unwrap(), 1);
        assert!(matches!(
            storage.term(1),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
    }
}
