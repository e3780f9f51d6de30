//! Tests of the follower's side of the log: byte-for-byte replication of a leader, refused
//! appends, truncations (inside a segment, at a segment boundary, across segments, inside a
//! batch, below the first segment), durability bookkeeping and crashes midway.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::Compression as Codec;

use super::*;
use crate::batch::validate_replicated_records;
use crate::producer_state::BatchMetadata;
use crate::segment::DELETED_FILE_SUFFIX;
use crate::test_util::{encode_batch, NO_PRODUCER};

const NOW: i64 = 1_700_000_000_000;
const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];
/// Fetch sizes cycled through by [`replicate`]: most cut a batch at the end of the answer.
const FETCH_SIZES: [u32; 5] = [700, 1500, 333, 4096, 1000];
/// Batches [`lead`] appends by default: about a dozen segments of [`small`] size.
const BATCHES: usize = 60;

fn small() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn open_log(root: &Path, recovery_point: i64, log_start_offset: i64) -> PartitionLog {
    let (log, _) =
        PartitionLog::open(root, "t", 0, small(), recovery_point, log_start_offset, NOW).unwrap();
    log
}

fn partition_dir(root: &Path) -> PathBuf {
    root.join("t-0")
}

/// Appends batches `from..to` of a fixed workload as leader: 3 records each, codecs cycling;
/// leader epoch 0, then 3 from batch 20, then 5 from batch 40; batches alternate between
/// idempotent producer 7, idempotent producer 9 (whose producer epoch goes from 0 to 1 at batch
/// 31) and no producer. Batch `i` holds offsets `3i..3i+2`.
fn lead(leader: &mut PartitionLog, from: usize, to: usize) {
    for i in from..to {
        let producer = match i % 3 {
            0 => (7, 0, 3 * (i / 3) as i32),
            1 if i < 31 => (9, 0, 3 * (i / 3) as i32),
            1 => (9, 1, 3 * ((i - 31) / 3) as i32),
            _ => NO_PRODUCER,
        };
        let epoch = if i < 20 {
            0
        } else if i < 40 {
            3
        } else {
            5
        };
        let batch = encode_batch(3, NOW + i as i64, CODECS[i % CODECS.len()], producer);
        let info = leader.append(&batch, epoch, NOW).unwrap();
        assert_eq!(info.base_offset, 3 * i as i64);
    }
}

/// The bytes of a read.
fn slice_bytes(slice: &FileSlice) -> Bytes {
    let mut buf = vec![0u8; slice.len as usize];
    slice.file.read_exact_at(&mut buf, slice.position).unwrap();
    Bytes::from(buf)
}

/// Fetches from `leader` into `follower` as a replica fetcher does, from the follower's log
/// end offset up to `high_watermark`, with [`FETCH_SIZES`]. Returns how many answers ended
/// with a truncated batch.
fn replicate(leader: &PartitionLog, follower: &mut PartitionLog, high_watermark: i64) -> usize {
    let mut partial = 0;
    for size in FETCH_SIZES.iter().cycle() {
        let offset = follower.log_end_offset();
        let Some(slice) = leader.read(offset, *size, true, high_watermark).unwrap() else {
            break;
        };
        let bytes = slice_bytes(&slice);
        let whole: usize = validate_replicated_records(&bytes)
            .unwrap()
            .iter()
            .map(|b| b.bytes.len())
            .sum();
        if whole < bytes.len() {
            partial += 1;
        }
        let info = follower.append_as_follower(&bytes, NOW).unwrap();
        assert_eq!(info.base_offset, offset);
        assert!(info.last_offset >= offset, "every fetch makes progress");
        assert_eq!(info.last_offset, follower.log_end_offset() - 1);
    }
    partial
}

/// Contents of the partition directory's files whose names end with one of `suffixes`.
fn files(root: &Path, suffixes: &[&str]) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(partition_dir(root))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_string();
            suffixes
                .iter()
                .any(|s| name.ends_with(s))
                .then(|| (name, std::fs::read(&path).unwrap()))
        })
        .collect()
}

const LOG_FILES: [&str; 1] = [".log"];
const ALL_FILES: [&str; 4] = [".log", ".index", ".timeindex", "leader-epoch-checkpoint"];

/// Each producer's epoch and last batch, for the producers of the workload.
fn producers(log: &PartitionLog) -> Vec<Option<(i16, BatchMetadata)>> {
    [7, 9, 13]
        .iter()
        .map(|&pid| log.producer_state().last_batch(pid))
        .collect()
}

/// Every read of one batch from each offset, as (position, length, first offset).
fn reads(log: &PartitionLog) -> Vec<(u64, u64, i64)> {
    (log.log_start_offset()..log.log_end_offset())
        .map(|o| {
            let s = log.read(o, 1, true, i64::MAX).unwrap().unwrap();
            (s.position, s.len, s.first_offset)
        })
        .collect()
}

/// Makes `truncation` durable as the caller must.
fn settle(log: &mut PartitionLog, truncation: &LogTruncation) {
    truncation.sync().unwrap();
    log.complete_truncation(truncation);
}

/// A leader with the whole workload, and a follower that replicated all of it.
fn leader_and_follower(leader_root: &Path, follower_root: &Path) -> (PartitionLog, PartitionLog) {
    let mut leader = open_log(leader_root, 0, 0);
    lead(&mut leader, 0, BATCHES);
    let mut follower = open_log(follower_root, 0, 0);
    replicate(&leader, &mut follower, i64::MAX);
    (leader, follower)
}

#[test]
fn a_follower_replicates_its_leader_byte_for_byte() {
    let (leader_root, follower_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = open_log(leader_root.path(), 0, 0);
    lead(&mut leader, 0, BATCHES);
    assert!(leader.segment_count() >= 8, "{}", leader.segment_count());
    let mut follower = open_log(follower_root.path(), 0, 0);
    // Half, then the rest: a follower catches up in any number of fetches.
    let half = leader.log_end_offset() / 2;
    let mut partial = replicate(&leader, &mut follower, half);
    assert!(follower.log_end_offset() >= half);
    partial += replicate(&leader, &mut follower, i64::MAX);
    assert!(
        partial >= 3,
        "answers ending with a truncated batch: {partial}"
    );

    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.segment_count(), leader.segment_count());
    assert_eq!(
        files(follower_root.path(), &ALL_FILES),
        files(leader_root.path(), &ALL_FILES),
        "segments, indexes and leader epochs are the same bytes"
    );
    assert_eq!(
        follower.leader_epochs().entries(),
        [(0, 0), (3, 60), (5, 120)]
    );
    assert_eq!(follower.latest_epoch(), Some(5));
    assert_eq!(producers(&follower), producers(&leader));
    assert_eq!(reads(&follower), reads(&leader));
    assert_eq!(follower.end_offset_for_epoch(3), (3, 120));
    assert_eq!(
        follower.max_timestamp().unwrap(),
        leader.max_timestamp().unwrap()
    );

    // Reopened, the follower has the same state.
    follower.close().unwrap();
    let follower = open_log(follower_root.path(), 0, 0);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(producers(&follower), producers(&leader));
    assert_eq!(reads(&follower), reads(&leader));
    assert_eq!(
        follower.leader_epochs().entries(),
        leader.leader_epochs().entries()
    );
}

#[test]
fn refused_appends_change_nothing() {
    let (leader_root, follower_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = open_log(leader_root.path(), 0, 0);
    lead(&mut leader, 0, BATCHES);
    let mut follower = open_log(follower_root.path(), 0, 0);
    replicate(&leader, &mut follower, 90);
    let end = follower.log_end_offset();
    let before = files(follower_root.path(), &ALL_FILES);
    let next = slice_bytes(&leader.read(end, 2000, true, i64::MAX).unwrap().unwrap());
    let next_batches = validate_replicated_records(&next).unwrap();
    assert!(next_batches.len() >= 2);
    let (first, second) = (&next_batches[0].bytes, &next_batches[1].bytes);

    let mut bad_crc = next.to_vec();
    bad_crc[first.len() + 30] ^= 0x40;
    assert!(matches!(
        follower.append_as_follower(&Bytes::from(bad_crc), NOW),
        Err(FollowerAppendError::Batch(BatchError::CorruptMessage(m))) if m.contains("CRC")
    ));
    let mut magic1 = next.to_vec();
    magic1[16] = 1;
    assert!(matches!(
        follower.append_as_follower(&Bytes::from(magic1), NOW),
        Err(FollowerAppendError::Batch(BatchError::UnsupportedMagic(1)))
    ));
    let earlier = slice_bytes(&leader.read(end - 3, 2000, true, i64::MAX).unwrap().unwrap());
    assert!(matches!(
        follower.append_as_follower(&earlier, NOW),
        Err(FollowerAppendError::UnexpectedAppendOffset { first_offset, log_end_offset, .. })
            if first_offset == end - 3 && log_end_offset == end
    ));
    let swapped = Bytes::from([second.as_ref(), first.as_ref()].concat());
    assert!(matches!(
        follower.append_as_follower(&swapped, NOW),
        Err(FollowerAppendError::OffsetsOutOfOrder { previous_last_offset, base_offset })
            if base_offset == end && previous_last_offset == end + 5
    ));
    // A truncated batch alone appends nothing.
    let info = follower
        .append_as_follower(&next.slice(..first.len() - 1), NOW)
        .unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset, info.records_appended),
        (end, end - 1, 0)
    );
    assert_eq!(follower.log_end_offset(), end);
    assert_eq!(files(follower_root.path(), &ALL_FILES), before);

    // Nothing was written: the rest replicates as if nothing happened.
    replicate(&leader, &mut follower, i64::MAX);
    assert_eq!(
        files(follower_root.path(), &ALL_FILES),
        files(leader_root.path(), &ALL_FILES)
    );
}

#[test]
fn gaps_left_by_compaction_are_kept() {
    let root = tempfile::tempdir().unwrap();
    let mut follower = open_log(root.path(), 0, 0);
    let batch = |base: i64, epoch: i32| {
        let mut bytes = encode_batch(2, NOW, Codec::Lz4, NO_PRODUCER).to_vec();
        bytes[..8].copy_from_slice(&base.to_be_bytes());
        bytes[12..16].copy_from_slice(&epoch.to_be_bytes());
        bytes
    };
    // Offsets 0-1, then 10-11 and 20-21 (batches removed by the leader's cleaner between).
    let first = follower
        .append_as_follower(&Bytes::from(batch(0, 2)), NOW)
        .unwrap();
    assert_eq!((first.base_offset, first.last_offset), (0, 1));
    let both = Bytes::from([batch(10, 2), batch(20, 4)].concat());
    let info = follower.append_as_follower(&both, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (10, 21));
    assert_eq!(info.records_appended, 4);
    assert_eq!(follower.log_end_offset(), 22);
    assert_eq!(follower.leader_epochs().entries(), [(2, 0), (4, 20)]);
    let read = follower.read(5, 1, true, i64::MAX).unwrap().unwrap();
    assert_eq!(
        read.first_offset, 10,
        "a read in a gap starts at the next batch"
    );
    // Offsets far beyond the active segment's index range go to a new segment.
    let far = u32::MAX as i64 + 100;
    follower
        .append_as_follower(&Bytes::from(batch(far, 4)), NOW)
        .unwrap();
    assert_eq!(follower.segment_count(), 2);
    assert_eq!(follower.active.base_offset(), far);
    follower.close().unwrap();
    let follower = open_log(root.path(), 0, 0);
    assert_eq!(follower.log_end_offset(), far + 2);
    assert_eq!(
        follower
            .read(21, 1, true, i64::MAX)
            .unwrap()
            .unwrap()
            .first_offset,
        20
    );
}

/// Where a truncation cuts the follower of [`leader_and_follower`]: the offset, and the log
/// end offset it leaves.
#[derive(Debug, Clone, Copy)]
struct Cut {
    offset: i64,
    log_end_offset: i64,
}

/// The truncation points the tests try, from the follower's segment layout: inside a segment,
/// at a segment boundary, inside a batch (the whole batch goes), and across several segments.
fn cuts(follower: &PartitionLog) -> Vec<Cut> {
    let bases: Vec<i64> = follower.segments().map(Segment::base_offset).collect();
    let n = bases.len();
    assert!(n >= 8, "{bases:?}");
    vec![
        Cut {
            offset: bases[n - 1] + 3,
            log_end_offset: bases[n - 1] + 3,
        },
        Cut {
            offset: bases[n - 3],
            log_end_offset: bases[n - 3],
        },
        Cut {
            offset: bases[n - 2] + 4,
            log_end_offset: bases[n - 2] + 3,
        },
        Cut {
            offset: bases[2] + 3,
            log_end_offset: bases[2] + 3,
        },
    ]
}

#[test]
fn truncation_gives_the_log_a_shorter_fetch_would_have_given() {
    let cuts = {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        cuts(&leader_and_follower(a.path(), b.path()).1)
    };
    for cut in cuts {
        let (leader_root, follower_root, reference_root, new_leader_root) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let (leader, mut follower) = leader_and_follower(leader_root.path(), follower_root.path());
        let segments_before = follower.segment_count();
        let truncation = follower.truncate_to(cut.offset, NOW).unwrap().unwrap();
        assert_eq!(truncation.log_end_offset, cut.log_end_offset, "{cut:?}");
        assert_eq!(follower.log_end_offset(), cut.log_end_offset, "{cut:?}");
        assert_eq!(
            segments_before - follower.segment_count(),
            truncation.deleted.len(),
            "{cut:?}"
        );
        assert!(truncation.bytes_removed > 0);
        settle(&mut follower, &truncation);

        // What a follower that fetched only up to there has.
        let mut reference = open_log(reference_root.path(), 0, 0);
        replicate(&leader, &mut reference, cut.log_end_offset);
        assert_eq!(reference.log_end_offset(), cut.log_end_offset);
        assert_eq!(
            files(follower_root.path(), &LOG_FILES),
            files(reference_root.path(), &LOG_FILES),
            "{cut:?}"
        );
        assert_eq!(
            follower.leader_epochs().entries(),
            reference.leader_epochs().entries(),
            "{cut:?}"
        );
        assert_eq!(producers(&follower), producers(&reference), "{cut:?}");
        assert_eq!(reads(&follower), reads(&reference), "{cut:?}");
        assert!(follower.recovery_point() <= cut.log_end_offset);

        // A new leader (epoch 7) that has the same prefix writes other batches; the follower
        // replicates them from its truncation point on.
        let mut new_leader = open_log(new_leader_root.path(), 0, 0);
        replicate(&leader, &mut new_leader, cut.log_end_offset);
        for i in 0..12 {
            let producer = if i % 2 == 0 { (13, 0, i) } else { NO_PRODUCER };
            let batch = encode_batch(2, NOW + 500, CODECS[i as usize % 5], producer);
            new_leader.append(&batch, 7, NOW).unwrap();
        }
        replicate(&new_leader, &mut follower, i64::MAX);
        assert_eq!(follower.log_end_offset(), new_leader.log_end_offset());
        assert_eq!(
            files(follower_root.path(), &LOG_FILES),
            files(new_leader_root.path(), &LOG_FILES),
            "{cut:?}"
        );
        let epochs = new_leader.leader_epochs().entries().to_vec();
        assert_eq!(epochs.last(), Some(&(7, cut.log_end_offset)));
        assert_eq!(follower.leader_epochs().entries(), epochs);
        assert_eq!(producers(&follower), producers(&new_leader), "{cut:?}");

        // Reopened: log end, epochs, index lookups and producer state as the new leader's.
        follower.close().unwrap();
        let follower = open_log(follower_root.path(), 0, 0);
        assert_eq!(follower.log_end_offset(), new_leader.log_end_offset());
        assert_eq!(follower.leader_epochs().entries(), epochs);
        assert_eq!(reads(&follower), reads(&new_leader), "{cut:?}");
        assert_eq!(producers(&follower), producers(&new_leader), "{cut:?}");
    }
}

#[test]
fn after_a_truncation_the_producer_state_answers_as_the_kept_log_does() {
    let (leader_root, follower_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, mut follower) = leader_and_follower(leader_root.path(), follower_root.path());
    // Batch 34 (producer 9, epoch 1, sequence 3) is kept; 35 on go. Producer 7's last kept
    // batch is 33 (sequence 33), and its five last batches were all cut.
    let truncation = follower.truncate_to(35 * 3, NOW).unwrap().unwrap();
    settle(&mut follower, &truncation);
    let (epoch, last) = follower.producer_state().last_batch(7).unwrap();
    assert_eq!((epoch, last.first_seq, last.base_offset), (0, 33, 99));
    let (epoch, last) = follower.producer_state().last_batch(9).unwrap();
    assert_eq!((epoch, last.first_seq, last.base_offset), (1, 3, 102));
    // Now leader: a retry of a kept batch is a duplicate, the next sequences follow on.
    let retry = encode_batch(3, NOW, Codec::None, (9, 1, 3));
    let dup = follower.append(&retry, 8, NOW).unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 102);
    for (pid, epoch, seq) in [(7, 0, 36), (9, 1, 6)] {
        let next = encode_batch(3, NOW, Codec::None, (pid, epoch, seq));
        assert!(!follower.append(&next, 8, NOW).unwrap().duplicate);
    }
    let stale = encode_batch(3, NOW, Codec::None, (9, 0, 33));
    assert!(matches!(
        follower.append(&stale, 8, NOW),
        Err(AppendError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn truncating_below_the_first_segment_or_restarting_elsewhere_empties_the_log() {
    let (leader_root, follower_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, mut follower) = leader_and_follower(leader_root.path(), follower_root.path());
    let end = follower.log_end_offset();
    let segments = follower.segment_count();

    // The leader's log now starts beyond the follower's end.
    let start = end + 1000;
    let truncation = follower.truncate_fully_and_start_at(start, NOW).unwrap();
    assert_eq!(truncation.deleted.len(), segments);
    assert_eq!(truncation.log_end_offset, start);
    settle(&mut follower, &truncation);
    assert_eq!(
        (
            follower.log_start_offset(),
            follower.log_end_offset(),
            follower.recovery_point()
        ),
        (start, start, start)
    );
    assert_eq!(follower.segment_count(), 1);
    assert!(follower.leader_epochs().entries().is_empty());
    assert!(follower.producer_state().is_empty());
    for deleted in &truncation.deleted {
        deleted.remove_files().unwrap();
    }
    let names: Vec<String> = files(follower_root.path(), &ALL_FILES)
        .into_keys()
        .collect();
    assert_eq!(
        names,
        [
            format!("{start:020}.index"),
            format!("{start:020}.log"),
            format!("{start:020}.timeindex"),
            "leader-epoch-checkpoint".to_string()
        ]
    );

    // It replicates a leader that starts there.
    let new_leader_root = tempfile::tempdir().unwrap();
    let mut new_leader = open_log(new_leader_root.path(), 0, start);
    for i in 0..20 {
        let batch = encode_batch(3, NOW, CODECS[i % 5], (21, 0, 3 * i as i32));
        new_leader.append(&batch, 9, NOW).unwrap();
    }
    replicate(&new_leader, &mut follower, i64::MAX);
    assert_eq!(
        files(follower_root.path(), &ALL_FILES),
        files(new_leader_root.path(), &ALL_FILES)
    );
    assert_eq!(follower.leader_epochs().entries(), [(9, start)]);

    // Truncating below the first segment restarts the log there too.
    let truncation = follower.truncate_to(start - 10, NOW).unwrap().unwrap();
    settle(&mut follower, &truncation);
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (start - 10, start - 10)
    );
    follower.close().unwrap();
    let follower = open_log(follower_root.path(), 0, 0);
    assert_eq!(
        (follower.log_start_offset(), follower.log_end_offset()),
        (start - 10, start - 10)
    );
}

#[test]
fn truncating_at_or_beyond_the_end_drops_only_epochs_that_start_there() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open_log(root.path(), 0, 0);
    lead(&mut log, 0, 5);
    assert!(log.truncate_to(15, NOW).unwrap().is_none());
    assert!(log.truncate_to(100, NOW).unwrap().is_none());
    // A leader that took epoch 2 at the log end and appended nothing.
    log.epochs.assign(2, 15).unwrap();
    let truncation = log.truncate_to(15, NOW).unwrap().unwrap();
    assert_eq!((truncation.bytes_removed, truncation.deleted.len()), (0, 0));
    assert_eq!(log.leader_epochs().entries(), [(0, 0)]);
    settle(&mut log, &truncation);
    assert_eq!(
        LeaderEpochCache::load(&partition_dir(root.path()))
            .unwrap()
            .entries(),
        [(0, 0)],
        "the sync wrote the checkpoint"
    );
    assert!(matches!(
        log.truncate_to(-1, NOW),
        Err(StorageError::InvalidOffset { offset: -1, .. })
    ));
}

#[test]
fn truncations_make_no_blocking_call_and_lower_the_log_start_offset_and_recovery_point() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open_log(root.path(), 0, 0);
    lead(&mut log, 0, BATCHES);
    log.flush_now().unwrap();
    let hw = log.log_end_offset();
    log.maybe_increment_log_start_offset(100, hw).unwrap();
    let in_flight = {
        lead_more(&mut log);
        log.begin_flush().unwrap()
    };
    // On a shard's thread: no fsync, no checkpoint write.
    let (mut log, truncation) = std::thread::scope(|s| {
        s.spawn(move || {
            crate::blocking::forbid_blocking_file_calls();
            let truncation = log.truncate_to(90, NOW).unwrap().unwrap();
            (log, truncation)
        })
        .join()
        .unwrap()
    });
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.recovery_point()
        ),
        (90, 90, 90)
    );
    // The epochs all started at or above 90 (the log start offset had moved epoch 3 to 100):
    // as in Kafka, they all go.
    assert!(log.leader_epochs().entries().is_empty());
    // The flush that began before the truncation moves nothing.
    in_flight.sync().unwrap();
    log.complete_flush(&in_flight);
    assert_eq!(log.recovery_point(), 90);
    settle(&mut log, &truncation);
    lead_more(&mut log);
    assert!(log.recovery_point() < log.log_end_offset());
}

/// Appends one more batch as leader.
fn lead_more(log: &mut PartitionLog) {
    log.append(&encode_batch(3, NOW, Codec::None, NO_PRODUCER), 6, NOW)
        .unwrap();
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "a truncation must be made durable")]
fn appending_before_a_truncation_is_durable_is_a_bug() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open_log(root.path(), 0, 0);
    lead(&mut log, 0, 5);
    let _truncation = log.truncate_to(6, NOW).unwrap();
    lead_more(&mut log);
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "log start offset 50 above the log end offset 15")]
fn a_log_start_offset_beyond_the_log_end_breaks_an_invariant() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open_log(root.path(), 0, 0);
    lead(&mut log, 0, 5);
    log.log_start_offset = 50;
    log.debug_assert_invariants();
}

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "offsets strictly increase")]
fn writing_below_the_log_end_breaks_an_invariant() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open_log(root.path(), 0, 0);
    lead(&mut log, 0, 5);
    let bytes = encode_batch(1, NOW, Codec::None, NO_PRODUCER);
    let batch = validate_replicated_records(&bytes).unwrap().remove(0);
    let mut prefix = [0u8; HEADER_SIZE];
    prefix.copy_from_slice(&bytes[..HEADER_SIZE]);
    log.write_batch(&batch.header, &prefix, &bytes[HEADER_SIZE..], NOW)
        .unwrap();
}

/// Copies the partition directory of `from` into `to`.
fn copy_partition(from: &Path, to: &Path) {
    let target = partition_dir(to);
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(partition_dir(from)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, target.join(path.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_crash_midway_through_a_truncation_leaves_a_log_that_truncates_again() {
    let (leader_root, follower_root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (leader, mut follower) = leader_and_follower(leader_root.path(), follower_root.path());
    follower.flush_now().unwrap();
    let before = tempfile::tempdir().unwrap();
    copy_partition(follower_root.path(), before.path());
    let bases: Vec<i64> = follower.segments().map(Segment::base_offset).collect();
    let n = bases.len();
    let cut = bases[n - 4] + 3;
    let truncation = follower.truncate_to(cut, NOW).unwrap().unwrap();
    settle(&mut follower, &truncation);
    let truncated = files(follower_root.path(), &LOG_FILES);

    // The crashes: (a) only the newest segment was renamed; (b) every later segment was
    // renamed but the cut of the segment holding the offset was lost.
    let dir = partition_dir(follower_root.path());
    let crashed_early = tempfile::tempdir().unwrap();
    copy_partition(before.path(), crashed_early.path());
    let newest = bases[n - 1];
    for ext in ["log", "index", "timeindex"] {
        std::fs::remove_file(
            partition_dir(crashed_early.path()).join(format!("{newest:020}.{ext}")),
        )
        .unwrap();
    }
    let crashed_late = tempfile::tempdir().unwrap();
    copy_partition(follower_root.path(), crashed_late.path());
    let kept = format!("{:020}.log", bases[n - 4]);
    std::fs::copy(
        partition_dir(before.path()).join(&kept),
        partition_dir(crashed_late.path()).join(&kept),
    )
    .unwrap();
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(DELETED_FILE_SUFFIX)));

    for (root, expected_end) in [
        (crashed_early.path(), bases[n - 1]),
        (crashed_late.path(), bases[n - 3]),
    ] {
        // The recovery point checkpoint is the one written before the truncation.
        let mut log = open_log(root, leader.log_end_offset(), 0);
        assert_eq!(log.log_end_offset(), expected_end);
        assert_eq!(reads(&log)[..], reads(&leader)[..expected_end as usize]);
        let truncation = log.truncate_to(cut, NOW).unwrap().unwrap();
        settle(&mut log, &truncation);
        assert_eq!(files(root, &LOG_FILES), truncated);
        assert_eq!(
            log.leader_epochs().entries(),
            follower.leader_epochs().entries()
        );
        assert_eq!(producers(&log), producers(&follower));
    }
}
