//! Tests of the partition log: appends, reads, rolls, recovery, idempotence, timestamps.

use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use kafka_protocol::records::Compression as Codec;

use super::*;
use crate::batch::ValidationConfig;
use crate::segment::file_name;
use crate::test_util::{
    compress_with, encode_batch, encode_with_timestamps, with_records, NO_PRODUCER,
};

const NOW: i64 = 1_700_000_000_000;
const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig, recovery_point: i64) -> (PartitionLog, RecoveryReport) {
    PartitionLog::open(dir, "orders.v1", 3, config, recovery_point, 0, NOW).unwrap()
}

/// Whole batch headers inside a slice (a partial trailing batch is ignored).
fn batches_in(slice: &FileSlice) -> Vec<BatchHeader> {
    let mut buf = vec![0u8; slice.len as usize];
    slice.file.read_exact_at(&mut buf, slice.position).unwrap();
    let mut out = Vec::new();
    let mut rest = &buf[..];
    while let Ok(h) = BatchHeader::parse(rest) {
        if rest.len() < h.total_size() {
            break;
        }
        rest = &rest[h.total_size()..];
        out.push(h);
    }
    out
}

/// Appends `n` batches of 3 records cycling through the codecs; returns their base offsets.
fn fill(log: &mut PartitionLog, n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| {
            let bytes = encode_batch(3, NOW + i as i64, CODECS[i % CODECS.len()], NO_PRODUCER);
            let info = log.append(&bytes, 0, NOW).unwrap();
            assert_eq!(info.last_offset, info.base_offset + 2);
            info.base_offset
        })
        .collect()
}

#[test]
fn rolls_make_no_blocking_call_and_the_next_flush_syncs_the_rolled_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    // On a thread marked as a shard's, appends that roll segments must not sync.
    let mut log = std::thread::scope(|s| {
        s.spawn(move || {
            crate::blocking::forbid_blocking_file_calls();
            fill(&mut log, 40);
            log
        })
        .join()
        .unwrap()
    });
    assert!(log.segment_count() >= 4, "{} segments", log.segment_count());
    let pending = log.begin_flush().unwrap();
    assert_eq!(pending.indexes.len(), 2 * (log.segment_count() - 1));
    pending.sync().unwrap();
    log.complete_flush(&pending);
    assert_eq!(log.recovery_point(), log.log_end_offset());
    let pending_again = log.begin_flush();
    assert!(pending_again.is_none(), "everything is synced");
}

#[test]
fn append_and_read_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, report) = open(dir.path(), small(), 0);
    assert_eq!(
        (report.truncated_at_offset, report.log_end_offset),
        (None, 0)
    );
    let bases = fill(&mut log, 40);
    assert_eq!(bases, (0..40).map(|i| i * 3).collect::<Vec<_>>());
    assert!(log.segment_count() >= 4, "{} segments", log.segment_count());
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(log.log_start_offset(), 0);
    let mut expected_next = 0;
    let mut offset = 0;
    while offset < 120 {
        let slice = log.read(offset, 1 << 20, true, i64::MAX).unwrap().unwrap();
        assert!(slice.first_offset <= offset);
        let batches = batches_in(&slice);
        assert!(!batches.is_empty());
        assert_eq!(
            batches.iter().map(BatchHeader::total_size).sum::<usize>() as u64,
            slice.len
        );
        for h in &batches {
            assert!(h.base_offset >= expected_next || h.base_offset == slice.first_offset);
            assert_eq!(h.partition_leader_epoch, 0);
            expected_next = h.next_offset();
        }
        assert!(batches
            .windows(2)
            .all(|w| w[0].next_offset() == w[1].base_offset));
        offset = expected_next;
    }
    assert_eq!(expected_next, 120);
    let mid = log.read(40, 1 << 20, true, i64::MAX).unwrap().unwrap();
    assert_eq!(mid.first_offset, 39);
}

#[test]
fn read_respects_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default(), 0);
    fill(&mut log, 5);
    let first = log.read(0, u32::MAX, false, i64::MAX).unwrap().unwrap();
    let sizes: Vec<u64> = batches_in(&first)
        .iter()
        .map(|h| h.total_size() as u64)
        .collect();
    assert_eq!(sizes.len(), 5);

    let partial = log.read(0, 10, false, i64::MAX).unwrap().unwrap();
    assert_eq!(partial.len, 10, "a partial batch, as Kafka returns");
    let whole = log.read(0, 10, true, i64::MAX).unwrap().unwrap();
    assert_eq!(
        whole.len, sizes[0],
        "min_one_batch returns the first batch whole"
    );
    let two = log
        .read(4, (sizes[1] + sizes[2] + 5) as u32, true, i64::MAX)
        .unwrap()
        .unwrap();
    assert_eq!((two.first_offset, two.len), (3, sizes[1] + sizes[2] + 5));
    assert_eq!(batches_in(&two).len(), 2);

    let bounded = log.read(0, u32::MAX, true, 6).unwrap().unwrap();
    assert_eq!(
        bounded.len,
        sizes[0] + sizes[1],
        "stops at the high watermark"
    );
    assert!(log.read(6, u32::MAX, true, 6).unwrap().is_none());
    assert!(
        log.read(15, 100, true, i64::MAX).unwrap().is_none(),
        "at log end"
    );
    for bad in [-1, 16] {
        match log.read(bad, 100, true, i64::MAX) {
            Err(ReadError::OffsetOutOfRange {
                log_start: 0,
                log_end: 15,
            }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn invalid_requests_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    let good = encode_batch(2, NOW, Codec::None, NO_PRODUCER);
    let mut bad = good.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let mut request = good.to_vec();
    request.extend_from_slice(&bad);
    assert!(matches!(
        log.append(&Bytes::from(request), 0, NOW),
        Err(AppendError::Batch(BatchError::CorruptMessage(_)))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (0, 0));
    let big: Vec<u8> = (0..8)
        .flat_map(|_| encode_batch(3, NOW, Codec::None, NO_PRODUCER).to_vec())
        .collect();
    assert!(matches!(
        log.append(&Bytes::from(big), 0, NOW),
        Err(AppendError::RecordListTooLarge { max: 2048, .. })
    ));
}

#[test]
fn reopen_after_clean_close_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    fill(&mut log, 25);
    let producer = encode_batch(2, NOW, Codec::Lz4, (77, 1, 0));
    log.append(&producer, 4, NOW).unwrap();
    let state = (log.log_end_offset(), log.segment_count(), log.size_bytes());
    let reads: Vec<(u64, u64, i64)> = (0..state.0)
        .map(|o| {
            let s = log.read(o, 700, true, i64::MAX).unwrap().unwrap();
            (s.position, s.len, s.first_offset)
        })
        .collect();
    let index_entries: Vec<usize> = log.segments().map(|s| s.offset_index().len()).collect();
    let max_ts = log.max_timestamp().unwrap();
    log.close().unwrap();

    let (log, report) = open(dir.path(), small(), state.0);
    assert_eq!(report.truncated_at_offset, None, "{report}");
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(
        (log.log_end_offset(), log.segment_count(), log.size_bytes()),
        state
    );
    assert_eq!(log.recovery_point(), state.0);
    let again: Vec<(u64, u64, i64)> = (0..state.0)
        .map(|o| {
            let s = log.read(o, 700, true, i64::MAX).unwrap().unwrap();
            (s.position, s.len, s.first_offset)
        })
        .collect();
    assert_eq!(again, reads);
    assert_eq!(
        log.segments()
            .map(|s| s.offset_index().len())
            .collect::<Vec<_>>(),
        index_entries
    );
    assert_eq!(log.max_timestamp().unwrap(), max_ts);
    assert_eq!(
        log.producer_state().last_batch(77).map(|b| b.1.base_offset),
        Some(75)
    );
    assert_eq!(log.leader_epochs().entries(), &[(0, 0), (4, 75)]);
    assert_eq!(log.end_offset_for_epoch(2), (0, 75));
    assert_eq!(log.end_offset_for_epoch(4), (4, 77));
}

fn last_segment_path(dir: &Path, log: &PartitionLog) -> std::path::PathBuf {
    dir.join("orders.v1-3")
        .join(file_name(log.active.base_offset(), "log"))
}

#[test]
fn recovery_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    fill(&mut log, 20);
    let end = log.log_end_offset();
    let path = last_segment_path(dir.path(), &log);
    let last_batch_size = log.read(end - 1, 1, true, i64::MAX).unwrap().unwrap().len;
    log.close().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len - 10).unwrap();

    let (mut log, report) = open(dir.path(), small(), end);
    assert_eq!(report.truncated_at_offset, Some(end - 3), "{report}");
    assert_eq!(report.truncated_bytes, last_batch_size - 10);
    assert_eq!(report.last_lost_offset, Some(end - 1));
    assert_eq!(log.log_end_offset(), end - 3);
    assert!(report
        .to_string()
        .contains(&format!("at offset {}", end - 3)));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len - last_batch_size
    );
    let info = log
        .append(&encode_batch(1, NOW, Codec::None, NO_PRODUCER), 0, NOW)
        .unwrap();
    assert_eq!(info.base_offset, end - 3);
}

#[test]
fn recovery_cuts_at_a_crc_mismatch_and_deletes_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    fill(&mut log, 20);
    let end = log.log_end_offset();
    let last = log.read(end - 1, 1, true, i64::MAX).unwrap().unwrap();
    let path = last_segment_path(dir.path(), &log);
    log.close().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let at = last.position + last.len - 5;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x01], at).unwrap();

    let (log, report) = open(dir.path(), small(), 0);
    assert_eq!(report.truncated_at_offset, Some(end - 3), "{report}");
    assert_eq!(
        (report.truncated_bytes, report.deleted_segments),
        (last.len, 0)
    );
    assert!(report.reason.as_deref().unwrap_or("").contains("CRC"));
    assert_eq!(log.log_end_offset(), end - 3);
    assert_eq!(
        log.recovery_point(),
        0,
        "the recovered tail still needs a flush"
    );
    let segments = log.segment_count();
    log.close().unwrap();

    // Damage the first segment: everything after it goes.
    let first = dir.path().join("orders.v1-3").join(file_name(0, "log"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    file.write_all_at(&[0xff], 30).unwrap();
    let (log, report) = open(dir.path(), small(), 0);
    assert_eq!(report.truncated_at_offset, Some(0), "{report}");
    assert_eq!(report.deleted_segments, segments - 1);
    assert_eq!(
        (log.log_end_offset(), log.segment_count(), log.size_bytes()),
        (0, 1, 0)
    );
}

#[test]
fn timestamps_across_segments_with_compression() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    let mut records = Vec::new();
    for i in 0..24i64 {
        // Out-of-order timestamps inside each batch; batches 15 and 20 hold the maximum.
        let base = NOW + i * 100;
        let mut ts = vec![base + 20, base, base + 10];
        if i == 15 || i == 20 {
            ts[1] = NOW + 50_000;
            ts[2] = NOW + 50_000;
        }
        let bytes = encode_with_timestamps(&ts, CODECS[i as usize % CODECS.len()], NO_PRODUCER);
        let info = log.append(&bytes, 0, NOW).unwrap();
        records.extend(
            ts.iter()
                .enumerate()
                .map(|(k, &t)| (info.base_offset + k as i64, t)),
        );
    }
    assert!(log.segment_count() >= 3);
    for target in [
        NOW - 1,
        NOW,
        NOW + 5,
        NOW + 120,
        NOW + 1015,
        NOW + 2320,
        NOW + 49_999,
    ] {
        let expected = records.iter().find(|r| r.1 >= target).copied();
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected,
            "ts {target}"
        );
    }
    assert_eq!(log.offset_for_timestamp(NOW + 50_001).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), Some((46, NOW + 50_000)));
    log.close().unwrap();
    let (log, _) = open(dir.path(), small(), 0);
    assert_eq!(log.max_timestamp().unwrap(), Some((46, NOW + 50_000)));
    for target in [NOW + 1015, NOW + 1620, NOW + 2301] {
        let expected = records.iter().find(|r| r.1 >= target).copied();
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            expected,
            "ts {target}"
        );
    }
}

#[test]
fn timestamp_lookups_answer_for_a_bomb_batch_without_decompressing_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        validation: ValidationConfig {
            max_message_bytes: 64 * 1024,
            ..ValidationConfig::default()
        },
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config, 0);
    let limit = config.validation.decompression_limit();
    log.append(
        &encode_with_timestamps(&[NOW, NOW + 1], Codec::Lz4, NO_PRODUCER),
        0,
        NOW,
    )
    .unwrap();
    // Records that expand beyond the limit, stored as sent (the topic is not compacted).
    let header = encode_with_timestamps(&[NOW + 5, NOW + 9], Codec::Gzip, NO_PRODUCER);
    let bomb = with_records(&header, &compress_with(Codec::Gzip, &vec![0; limit + 1]));
    log.append(&bomb, 0, NOW).unwrap();
    log.append(
        &encode_with_timestamps(&[NOW + 20], Codec::Zstd, NO_PRODUCER),
        0,
        NOW,
    )
    .unwrap();
    assert_eq!(
        log.offset_for_timestamp(NOW + 1).unwrap(),
        Some((1, NOW + 1))
    );
    assert_eq!(
        log.offset_for_timestamp(NOW + 6).unwrap(),
        Some((2, NOW + 9)),
        "the bomb's first offset and max timestamp"
    );
    assert_eq!(
        log.offset_for_timestamp(NOW + 10).unwrap(),
        Some((4, NOW + 20))
    );
    assert_eq!(log.max_timestamp().unwrap(), Some((4, NOW + 20)));
}

#[test]
fn log_append_time_is_patched_with_a_valid_crc() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small();
    config.validation.timestamp_type = TimestampType::LogAppendTime;
    let (mut log, _) = open(dir.path(), config, 0);
    let bytes = encode_batch(4, NOW - 1_000_000, Codec::Zstd, NO_PRODUCER);
    let info = log.append(&bytes, 2, NOW + 7).unwrap();
    assert_eq!(info.log_append_time_ms, NOW + 7);
    let slice = log.read(0, u32::MAX, true, i64::MAX).unwrap().unwrap();
    let mut stored = vec![0u8; slice.len as usize];
    slice.file.read_exact_at(&mut stored, 0).unwrap();
    let batch = validate_records(&Bytes::from(stored), &config.validation, NOW).unwrap();
    let h = batch[0].header;
    assert_eq!(
        (h.timestamp_type(), h.max_timestamp),
        (TimestampType::LogAppendTime, NOW + 7)
    );
    assert_eq!(log.offset_for_timestamp(NOW).unwrap(), Some((0, NOW + 7)));
    assert_eq!(log.max_timestamp().unwrap(), Some((0, NOW + 7)));
}

#[test]
fn idempotent_producers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    let first = encode_batch(3, NOW, Codec::None, (5, 0, 0));
    assert_eq!(log.append(&first, 0, NOW).unwrap().base_offset, 0);
    let dup = log.append(&first, 0, NOW).unwrap();
    assert!(dup.duplicate);
    assert_eq!(
        (dup.base_offset, dup.last_offset, dup.records_appended),
        (0, 2, 0)
    );
    assert_eq!(log.log_end_offset(), 3);
    assert!(matches!(
        log.append(&encode_batch(1, NOW, Codec::None, (5, 0, 5)), 0, NOW),
        Err(AppendError::OutOfOrderSequence {
            expected: 3,
            got: 5
        })
    ));
    assert!(log
        .append(&encode_batch(2, NOW, Codec::Gzip, (5, 0, 3)), 0, NOW)
        .is_ok());
    assert!(matches!(
        log.append(&encode_batch(1, NOW, Codec::None, (5, 1, 7)), 0, NOW),
        Err(AppendError::OutOfOrderSequence {
            expected: 0,
            got: 7
        })
    ));
    let bumped = encode_batch(1, NOW, Codec::None, (5, 1, 0));
    assert_eq!(log.append(&bumped, 0, NOW).unwrap().base_offset, 5);
    assert!(matches!(
        log.append(&encode_batch(1, NOW, Codec::None, (5, 0, 5)), 0, NOW),
        Err(AppendError::InvalidProducerEpoch {
            current: 1,
            got: 0,
            ..
        })
    ));
    assert_eq!(
        log.append(&encode_batch(1, NOW, Codec::None, (6, 0, 40)), 0, NOW)
            .unwrap()
            .base_offset,
        6
    );
    log.close().unwrap();

    let (mut log, _) = open(dir.path(), small(), 0);
    let dup = log.append(&bumped, 0, NOW).unwrap();
    assert!(dup.duplicate, "producer state rebuilt from the log");
    assert_eq!(dup.base_offset, 5);
    assert!(matches!(
        log.append(&encode_batch(1, NOW, Codec::None, (5, 0, 5)), 0, NOW),
        Err(AppendError::InvalidProducerEpoch { .. })
    ));
    assert_eq!(
        log.append(&encode_batch(1, NOW, Codec::None, (6, 0, 41)), 0, NOW)
            .unwrap()
            .base_offset,
        7
    );
}

#[test]
fn flush_policy_and_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 6,
        flush_ms: 1000,
        ..small()
    };
    let (mut log, _) = open(dir.path(), config, 0);
    assert!(log.begin_flush().is_none());
    log.append(&encode_batch(3, NOW, Codec::None, NO_PRODUCER), 0, NOW)
        .unwrap();
    assert_eq!(log.unflushed_messages(), 3);
    assert!(!log.needs_flush(NOW + 10));
    assert_eq!(log.ms_since_last_flush(NOW + 10), 10);
    assert!(log.needs_flush(NOW + 1000), "flush.ms");
    log.append(&encode_batch(3, NOW, Codec::None, NO_PRODUCER), 0, NOW + 20)
        .unwrap();
    assert!(log.needs_flush(NOW + 20), "flush.messages");
    let pending = log.begin_flush().unwrap();
    log.append(&encode_batch(1, NOW, Codec::None, NO_PRODUCER), 0, NOW + 30)
        .unwrap();
    std::thread::spawn(move || pending.sync().map(|_| pending))
        .join()
        .unwrap()
        .map(|p| log.complete_flush(&p))
        .unwrap();
    assert_eq!((log.recovery_point(), log.unflushed_messages()), (6, 1));
    assert_eq!(log.ms_since_last_flush(NOW + 40), 10);
    log.flush_now().unwrap();
    assert_eq!(
        (log.recovery_point(), log.ms_since_last_flush(NOW + 99)),
        (7, 0)
    );
    assert!(!log.needs_flush(NOW + 1_000_000));
}

#[test]
fn delete_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    fill(&mut log, 8);
    log.delete().unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn deleting_old_segments_moves_the_log_start_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    let bases = fill(&mut log, 60);
    assert!(log.segment_count() >= 3, "the fill spans several segments");
    let end = log.log_end_offset();
    log.roll_now(NOW).unwrap();
    assert_eq!(log.log_start_offset(), 0);
    let before = log.size_bytes();
    let removed = log.delete_segments_before(end).unwrap();
    assert_eq!(
        removed, before,
        "every sealed segment ends at or below the roll point"
    );
    assert_eq!(
        log.segment_count(),
        1,
        "only the new, empty active segment is left"
    );
    assert_eq!(log.log_start_offset(), end);
    assert!(matches!(
        log.read(bases[0], 1024, true, i64::MAX),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    let more = fill(&mut log, 2);
    assert_eq!(more[0], end, "offsets continue after the deletion");
    log.close().unwrap();
    let (log, _) = open(dir.path(), small(), end);
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.log_end_offset(), end + 6);
}

#[test]
fn deleting_before_an_offset_inside_a_segment_keeps_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), small(), 0);
    let bases = fill(&mut log, 60);
    let cut = bases[40] + 1;
    log.delete_segments_before(cut).unwrap();
    assert!(
        log.log_start_offset() <= cut,
        "the segment holding the cut stays"
    );
    assert!(log.log_start_offset() > 0);
    assert!(log.read(cut, 1024, true, i64::MAX).unwrap().is_some());
    log.roll_now(NOW).unwrap();
    let count = log.segment_count();
    log.roll_now(NOW).unwrap();
    assert_eq!(
        log.segment_count(),
        count,
        "rolling an empty active segment is a no-op"
    );
}

#[test]
fn config_changes_apply_to_the_next_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), LogConfig::default(), 0);
    fill(&mut log, 10);
    assert_eq!(log.segment_count(), 1);
    log.set_config(small());
    assert_eq!(log.config(), &small());
    fill(&mut log, 20);
    assert!(log.segment_count() > 2, "{} segments", log.segment_count());
    let strict = LogConfig {
        validation: ValidationConfig {
            max_message_bytes: 100,
            ..ValidationConfig::default()
        },
        ..small()
    };
    log.set_config(strict);
    let end = log.log_end_offset();
    let too_large = encode_batch(3, NOW, Codec::None, NO_PRODUCER);
    assert!(matches!(
        log.append(&too_large, 0, NOW),
        Err(AppendError::Batch(BatchError::MessageTooLarge {
            max: 100,
            ..
        }))
    ));
    assert_eq!(log.log_end_offset(), end);
}
