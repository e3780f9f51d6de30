//! Replica byte-identity: a partition's replicas, read straight from their segment files
//! (`<log.dirs>/<topic>-<partition>/*.log`), must hold byte-identical batches up to the high
//! watermark. Followers append the leader's batches unchanged (offsets, leader epochs, producer
//! ids, CRCs), so any difference below the high watermark is a replica that diverged: a tail
//! not truncated after a leader change, a batch re-encoded, a record lost or doubled.
//!
//! The comparison walks batches by their length field ([`crate::common::scan_batches`]), not
//! segment files, since each replica rolls its segments on its own schedule.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::common::scan_batches;

/// One record batch of a replica's log, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogBatch {
    /// The batch's base offset.
    pub base_offset: i64,
    /// One past its last offset.
    pub next_offset: i64,
    /// The batch exactly as stored (12-byte prefix included).
    pub bytes: Vec<u8>,
}

/// A replica's log: every complete batch of every segment, in offset order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaLog {
    /// The batches.
    pub batches: Vec<LogBatch>,
}

impl ReplicaLog {
    /// One past the last offset the replica holds (its log end offset), `None` when empty.
    pub fn end(&self) -> Option<i64> {
        self.batches.last().map(|b| b.next_offset)
    }

    /// The batches that start below `offset`: a log cut just after the batch holding
    /// `offset - 1`.
    pub fn below(&self, offset: i64) -> &[LogBatch] {
        let n = self.batches.partition_point(|b| b.base_offset < offset);
        &self.batches[..n]
    }
}

/// The complete batches in one segment file's bytes (trailing preallocated zeroes and a torn
/// last batch are left out).
pub fn segment_batches(data: &[u8]) -> Vec<LogBatch> {
    scan_batches(data)
        .into_iter()
        .map(|b| LogBatch {
            base_offset: b.base_offset,
            next_offset: b.next_offset(),
            bytes: data[b.pos as usize..b.end() as usize].to_vec(),
        })
        .collect()
}

/// The segment files (`*.log`) of a partition directory, in offset order (their names are the
/// zero-padded base offsets).
fn segment_paths(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "log") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads the log of the replica whose partition directory is `dir`.
pub fn read_replica_log(dir: &Path) -> io::Result<ReplicaLog> {
    let mut batches = Vec::new();
    for path in segment_paths(dir)? {
        batches.extend(segment_batches(&std::fs::read(&path)?));
    }
    Ok(ReplicaLog { batches })
}

/// How a replica's log differs from the leader's below the high watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// The leader's own log ends at `leader_end`, below the high watermark.
    LeaderShort {
        /// The leader's log end offset.
        leader_end: Option<i64>,
    },
    /// The replica's log ends at `replica_end`, before the leader's batch ending at `needed`.
    ReplicaShort {
        /// The replica's log end offset.
        replica_end: Option<i64>,
        /// The offset the replica must reach (the end of the batch holding HW - 1).
        needed: i64,
    },
    /// The batches at `offset` differ: other boundaries, or other bytes from `first_byte` on.
    Differs {
        /// The leader's batch's base offset.
        offset: i64,
        /// The replica's batch's base offset.
        replica_offset: i64,
        /// The sizes of the leader's and the replica's batch.
        sizes: (usize, usize),
        /// The first byte position (within the batch) that differs.
        first_byte: usize,
    },
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Divergence::LeaderShort { leader_end } => {
                write!(f, "the leader's log ends at {leader_end:?}, below the HW")
            }
            Divergence::ReplicaShort {
                replica_end,
                needed,
            } => write!(
                f,
                "the replica ends at {replica_end:?}, the HW needs {needed}"
            ),
            Divergence::Differs {
                offset,
                replica_offset,
                sizes,
                first_byte,
            } => write!(
                f,
                "leader batch at {offset} ({} bytes) differs from the replica's batch at \
                 {replica_offset} ({} bytes) from byte {first_byte}",
                sizes.0, sizes.1
            ),
        }
    }
}

/// Compares a replica's log with the leader's up to the batch holding `high_watermark - 1`,
/// from the later of the two log starts (retention may have removed older segments on one of
/// them). `None` when they are byte-identical there.
pub fn compare_to_leader(
    leader: &ReplicaLog,
    replica: &ReplicaLog,
    high_watermark: i64,
) -> Option<Divergence> {
    let l = leader.below(high_watermark);
    let r = replica.below(high_watermark);
    let needed = l.last().map_or(0, |b| b.next_offset);
    if high_watermark > 0 && needed < high_watermark {
        return Some(Divergence::LeaderShort {
            leader_end: leader.end(),
        });
    }
    let start = match (l.first(), r.first()) {
        (None, _) => return None,
        (Some(_), None) => {
            return Some(Divergence::ReplicaShort {
                replica_end: replica.end(),
                needed,
            })
        }
        (Some(a), Some(b)) => a.base_offset.max(b.base_offset),
    };
    let l = &l[l.partition_point(|b| b.base_offset < start)..];
    let r = &r[r.partition_point(|b| b.base_offset < start)..];
    for (a, b) in l.iter().zip(r) {
        if a != b {
            let first_byte = a
                .bytes
                .iter()
                .zip(&b.bytes)
                .position(|(x, y)| x != y)
                .unwrap_or(a.bytes.len().min(b.bytes.len()));
            return Some(Divergence::Differs {
                offset: a.base_offset,
                replica_offset: b.base_offset,
                sizes: (a.bytes.len(), b.bytes.len()),
                first_byte,
            });
        }
    }
    (r.len() < l.len()).then_some(Divergence::ReplicaShort {
        replica_end: r.last().map(|b| b.next_offset),
        needed,
    })
}

/// The batches of `before` (a replica's log read earlier, e.g. while it was paused) that the
/// final leader log does not hold byte-identically at the same base offset: the divergent tail
/// the replica had to truncate when it rejoined.
pub fn divergent_batches(before: &ReplicaLog, final_leader: &ReplicaLog) -> usize {
    before
        .batches
        .iter()
        .filter(|b| {
            final_leader
                .batches
                .binary_search_by_key(&b.base_offset, |f| f.base_offset)
                .map_or(true, |i| final_leader.batches[i] != **b)
        })
        .count()
}
