//! Tests of the descriptor budget of a log: sealed segments hold no file, their log files are
//! opened through a bounded cache, and reads, flushes and reopening keep to it.

use std::os::unix::fs::FileExt;
use std::path::Path;

use kafka_protocol::records::Compression as Codec;

use super::*;
use crate::test_util::{encode_batch, NO_PRODUCER};

const NOW: i64 = 1_700_000_000_000;

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        ..LogConfig::default()
    }
}

/// Descriptors of this process open on files under `dir`.
fn fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Reads the whole log from the start, one batch at a time; returns the base offsets seen.
fn read_all(log: &PartitionLog) -> Vec<i64> {
    let mut offsets = Vec::new();
    let mut next = log.log_start_offset();
    while let Some(slice) = log.read(next, 1, true, i64::MAX).unwrap() {
        let mut prefix = [0u8; HEADER_SIZE];
        slice
            .file
            .read_exact_at(&mut prefix, slice.position)
            .unwrap();
        let header = BatchHeader::parse(&prefix).unwrap();
        offsets.push(header.base_offset);
        next = header.next_offset();
    }
    offsets
}

#[test]
fn sealed_segments_are_read_through_a_bounded_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LogFileCache::new(2);
    let (mut log, _) =
        PartitionLog::open_with_file_cache(dir.path(), "t", 0, small(), 0, 0, NOW, cache.clone())
            .unwrap();
    let bases: Vec<i64> = (0..80)
        .map(|i| {
            let bytes = encode_batch(3, NOW + i, Codec::None, NO_PRODUCER);
            log.append(&bytes, 0, NOW).unwrap().base_offset
        })
        .collect();
    let segments = log.segment_count();
    assert!(segments >= 10, "{segments} segments");
    assert!(log.sealed.values().all(|s| !s.is_pinned()
        && !s.offset_index().is_file_open()
        && !s.time_index().is_file_open()));
    let partition_dir = log.dir().to_path_buf();
    // The active segment's three files, and the cache's (the last sealed segments handed their
    // log files over when they were rolled).
    assert_eq!(cache.open_files(), 2);
    assert_eq!(fds_under(&partition_dir), 3 + 2);
    // A flush reopens the unflushed sealed segments' files through the cache.
    log.flush_now().unwrap();
    assert_eq!(log.recovery_point(), log.log_end_offset());
    assert_eq!(fds_under(&partition_dir), 3 + 2);

    assert_eq!(read_all(&log), bases);
    assert!(cache.open_files() <= 2);
    assert_eq!(fds_under(&partition_dir), 3 + cache.open_files());

    // A slice being sent keeps its file when the cache evicts it.
    let held = log.read(0, 1, true, i64::MAX).unwrap().unwrap();
    assert_eq!(read_all(&log)[1..], bases[1..]);
    let mut prefix = [0u8; HEADER_SIZE];
    held.file.read_exact_at(&mut prefix, held.position).unwrap();
    assert_eq!(BatchHeader::parse(&prefix).unwrap().base_offset, 0);
    drop(held);
    assert!(fds_under(&partition_dir) <= 3 + 2);

    // Timestamp lookups open old segments through the cache too: batch i's records have the
    // timestamps NOW + i, + i + 1, + i + 2, so NOW + 5 is first the last record of batch 3.
    assert_eq!(
        log.offset_for_timestamp(NOW + 5).unwrap(),
        Some((bases[3] + 2, NOW + 5))
    );
    log.close().unwrap();
    assert_eq!(fds_under(&partition_dir), 0);
    assert_eq!(cache.open_files(), 0, "dropped segments leave the cache");

    // Reopening releases each flushed segment as soon as it is loaded.
    let end = bases.last().unwrap() + 3;
    let (log, report) =
        PartitionLog::open_with_file_cache(dir.path(), "t", 0, small(), end, 0, NOW, cache.clone())
            .unwrap();
    assert!(report.truncated_at_offset.is_none());
    assert!(fds_under(&partition_dir) <= 3 + 2);
    assert_eq!(read_all(&log), bases);
    assert!(fds_under(&partition_dir) <= 3 + 2);
}

#[test]
fn reopening_an_unflushed_log_flushes_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LogFileCache::new(4);
    let (mut log, _) =
        PartitionLog::open_with_file_cache(dir.path(), "t", 0, small(), 0, 0, NOW, cache.clone())
            .unwrap();
    for i in 0..40 {
        let bytes = encode_batch(3, NOW + i, Codec::None, NO_PRODUCER);
        log.append(&bytes, 0, NOW).unwrap();
    }
    let partition_dir = log.dir().to_path_buf();
    let half = log.log_end_offset() / 2;
    drop(log);
    let (mut log, _) =
        PartitionLog::open_with_file_cache(dir.path(), "t", 0, small(), half, 0, NOW, cache)
            .unwrap();
    assert!(log.sealed.values().all(|s| !s.is_pinned()));
    assert!(fds_under(&partition_dir) <= 3 + 4);
    assert_eq!(log.recovery_point(), half);
    log.flush_now().unwrap();
    assert_eq!(log.recovery_point(), log.log_end_offset());
    assert!(fds_under(&partition_dir) <= 3 + 4);
    assert_eq!(read_all(&log).len(), 40);
}
