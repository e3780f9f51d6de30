//! Tests of whole cleanings of a [`PartitionLog`]: what stays, offsets and codecs, tombstones,
//! the active segment, compaction lags, a full offset map, changes during a cleaning, and the
//! recovery of interrupted swaps.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression as Codec, RecordBatchDecoder};

use super::*;
use crate::log::{LogConfig, PartitionLog};
use crate::wire::{BatchOptions, RecordBatchBuilder};

const NOW: i64 = 1_700_000_000_000;
const CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

/// Key and value (`None`: a tombstone) of a test record.
type Kv = (String, Option<String>);
/// Records with their offsets.
type Records = Vec<(i64, Kv)>;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn compaction(delete_retention_ms: i64) -> CompactionConfig {
    CompactionConfig {
        delete_retention_ms,
        min_cleanable_dirty_ratio: 0.0,
        ..CompactionConfig::default()
    }
}

fn open(dir: &Path) -> PartitionLog {
    let (log, report) = PartitionLog::open(dir, "table", 0, config(), 0, 0, NOW).unwrap();
    assert_eq!(report.truncated_at_offset, None, "{report}");
    log
}

/// One batch of `records`, all with timestamp `ts`, from `producer` (id, epoch, base seq).
fn batch(records: &[Kv], ts: i64, codec: Codec, producer: (i64, i16, i32)) -> Bytes {
    let mut builder = RecordBatchBuilder::new();
    for (key, value) in records {
        let header = format!("{key}!");
        builder.push(
            ts,
            Some(key.as_bytes()),
            value.as_deref().map(str::as_bytes),
            &[(b"h", Some(header.as_bytes()))],
        );
    }
    let options = BatchOptions {
        compression: crate::batch::Compression::from(codec),
        producer_id: producer.0,
        producer_epoch: producer.1,
        base_sequence: producer.2,
        ..BatchOptions::default()
    };
    builder.finish(&options).unwrap()
}

fn kv(key: &str, value: Option<&str>) -> Kv {
    (key.to_string(), value.map(str::to_string))
}

/// Appends `count` records cycling over `keys` keys, `per_batch` per batch, codecs cycling;
/// every 7th record of a key divisible by 5 is a tombstone. Returns the codec of each batch
/// by base offset and every record with its offset.
fn fill(
    log: &mut PartitionLog,
    count: usize,
    keys: usize,
    per_batch: usize,
    ts: i64,
) -> (HashMap<i64, Codec>, Vec<(i64, Kv)>) {
    let mut codecs = HashMap::new();
    let mut written = Vec::new();
    let mut i = 0;
    while i < count {
        let records: Vec<Kv> = (i..(i + per_batch).min(count))
            .map(|n| {
                let key = format!("key-{}", n % keys);
                let tombstone = n.is_multiple_of(7) && (n % keys).is_multiple_of(5);
                kv(&key, (!tombstone).then(|| format!("value-{n}")).as_deref())
            })
            .collect();
        let codec = CODECS[(i / per_batch) % CODECS.len()];
        let info = log
            .append(&batch(&records, ts, codec, (-1, -1, -1)), 0, NOW)
            .unwrap();
        codecs.insert(info.base_offset, codec);
        for (j, record) in records.into_iter().enumerate() {
            written.push((info.base_offset + j as i64, record));
        }
        i += per_batch;
    }
    (codecs, written)
}

/// Every batch of the log (from its start), decoded (which checks every CRC): the header and
/// the records as (offset, key, value).
fn contents(log: &PartitionLog) -> Vec<(BatchHeader, Vec<(i64, Kv)>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, 1 << 24, true, i64::MAX).unwrap() {
        let mut buf = vec![0u8; slice.len as usize];
        slice.file.read_exact_at(&mut buf, slice.position).unwrap();
        let mut rest = Bytes::from(buf);
        while rest.len() >= HEADER_SIZE {
            let header = BatchHeader::parse(&rest).unwrap();
            let set = RecordBatchDecoder::decode(&mut rest).unwrap();
            let records = set
                .records
                .iter()
                .map(|r| {
                    let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
                    let value = r
                        .value
                        .clone()
                        .map(|v| String::from_utf8(v.to_vec()).unwrap());
                    let header = r
                        .headers
                        .get(&StrBytes::from_static_str("h"))
                        .cloned()
                        .flatten();
                    assert_eq!(header.as_deref(), Some(format!("{key}!").as_bytes()));
                    (r.offset, (key, value))
                })
                .collect();
            offset = header.next_offset();
            out.push((header, records));
        }
    }
    out
}

fn records_of(log: &PartitionLog) -> Vec<(i64, Kv)> {
    contents(log).into_iter().flat_map(|(_, r)| r).collect()
}

/// The latest record of each key among `written`, in offset order; tombstones included unless
/// `drop_tombstones`.
fn latest(written: &[(i64, Kv)], drop_tombstones: bool) -> Vec<(i64, Kv)> {
    let mut by_key: HashMap<&str, &(i64, Kv)> = HashMap::new();
    for record in written {
        by_key.insert(&record.1 .0, record);
    }
    let mut out: Vec<(i64, Kv)> = by_key
        .into_values()
        .filter(|(_, (_, v))| !drop_tombstones || v.is_some())
        .cloned()
        .collect();
    out.sort_by_key(|(o, _)| *o);
    out
}

/// Runs a whole cleaning, swapping each cleaned group in; returns its summary.
fn clean(
    log: &mut PartitionLog,
    checkpoint: Option<i64>,
    config: &CompactionConfig,
    now_ms: i64,
    map_memory: u64,
) -> CleaningSummary {
    let range = log
        .cleanable_range(checkpoint, log.log_end_offset(), config, now_ms)
        .unwrap();
    let mut job = log
        .start_cleaning(&range, config, OffsetMap::with_memory(map_memory), now_ms)
        .unwrap();
    loop {
        match job.step(4096).unwrap().step {
            CleaningStep::Progress => {}
            CleaningStep::Cleaned(cleaned) => {
                let swap = log.replace_with_cleaned(cleaned).unwrap();
                for replaced in swap.replaced {
                    replaced.remove_files().unwrap();
                }
            }
            CleaningStep::Finished(summary) => return summary,
        }
    }
}

/// The names of the files of the test log in `dir`, sorted.
fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("table-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn keeps_exactly_the_latest_record_per_key_with_offsets_codecs_and_crcs() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let (codecs, written) = fill(&mut log, 600, 40, 6, NOW - 1000);
    log.roll_now(NOW).unwrap();
    let segments_before = log.segment_count();
    let size_before = log.size_bytes();
    let end = log.log_end_offset();
    assert!(segments_before > 10, "{segments_before} segments");

    let summary = clean(&mut log, None, &compaction(60_000), NOW, 1 << 20);
    assert_eq!(summary.first_dirty_offset, 0);
    assert_eq!(summary.next_dirty_offset, end);
    assert_eq!(summary.keys_mapped, 40);
    assert_eq!(summary.records_removed, 560);
    assert!(summary.bytes_read >= size_before && summary.bytes_written > 0);
    assert!(summary.earliest_delete_horizon.is_some(), "tombstones kept");

    let expected = latest(&written, false);
    assert_eq!(records_of(&log), expected);
    for (header, records) in contents(&log) {
        assert_eq!(
            header.compression(),
            crate::batch::Compression::from(codecs[&header.base_offset]),
            "codec kept"
        );
        assert!(records.iter().all(|(o, _)| *o <= header.last_offset()));
    }
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(log.log_start_offset(), 0);
    assert!(log.size_bytes() < size_before / 4);
    assert!(dir_names(dir.path())
        .iter()
        .all(|n| !n.ends_with(".cleaned") && !n.ends_with(".swap") && !n.ends_with(".deleted")));

    // Everything survives a reopen that verifies every batch.
    drop(log);
    let (log, report) = PartitionLog::open(dir.path(), "table", 0, config(), 0, 0, NOW).unwrap();
    assert_eq!(report.truncated_at_offset, None, "{report}");
    assert_eq!(records_of(&log), expected);
    assert_eq!(log.log_end_offset(), end);

    // Full segments were cleaned one by one; a second cleaning, with nothing dirty, removes
    // nothing but merges the small cleaned segments (Kafka's groupSegmentsBySize).
    let mut log = log;
    let again = clean(&mut log, Some(end), &compaction(60_000), NOW, 1 << 20);
    assert_eq!(again.records_removed, 0);
    assert_eq!(records_of(&log), expected);
    assert!(log.segment_count() < segments_before / 2);
}

#[test]
fn tombstones_stay_for_delete_retention_ms_after_their_first_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let records = [
        kv("a", Some("1")),
        kv("b", Some("1")),
        kv("a", Some("2")),
        kv("b", None),
    ];
    log.append(&batch(&records, NOW, Codec::Lz4, (-1, -1, -1)), 0, NOW)
        .unwrap();
    log.roll_now(NOW).unwrap();
    let cfg = compaction(10_000);
    let first = clean(&mut log, None, &cfg, NOW, 1 << 20);
    assert_eq!(first.earliest_delete_horizon, Some(NOW + 10_000));
    assert_eq!(
        records_of(&log),
        vec![(2, kv("a", Some("2"))), (3, kv("b", None))]
    );
    let checkpoint = Some(first.next_dirty_offset);
    let before_horizon = clean(&mut log, checkpoint, &cfg, NOW + 9_999, 1 << 20);
    assert_eq!(before_horizon.records_removed, 0);
    assert_eq!(before_horizon.earliest_delete_horizon, Some(NOW + 10_000));
    assert_eq!(records_of(&log).len(), 2);
    let after_horizon = clean(&mut log, checkpoint, &cfg, NOW + 10_000, 1 << 20);
    assert_eq!(after_horizon.records_removed, 1);
    assert_eq!(after_horizon.earliest_delete_horizon, None);
    assert_eq!(records_of(&log), vec![(2, kv("a", Some("2")))]);
    let (header, _) = contents(&log).remove(0);
    assert_eq!(
        (header.base_offset, header.last_offset()),
        (0, 3),
        "offsets kept"
    );
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn the_active_segment_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let (_, written) = fill(&mut log, 300, 10, 5, NOW);
    let active_name = dir_names(dir.path())
        .into_iter()
        .rfind(|n| n.ends_with(".log"))
        .unwrap();
    let active_base: i64 = active_name.trim_end_matches(".log").parse().unwrap();
    let active_path = dir.path().join("table-0").join(&active_name);
    let active_bytes = std::fs::read(&active_path).unwrap();
    assert!(active_base > 0 && !active_bytes.is_empty());
    let range = log
        .cleanable_range(None, log.log_end_offset(), &compaction(0), NOW)
        .unwrap();
    assert_eq!(range.first_uncleanable_offset, active_base);
    clean(&mut log, None, &compaction(0), NOW, 1 << 20);
    assert_eq!(std::fs::read(&active_path).unwrap(), active_bytes);
    let (sealed, active): (Vec<_>, Vec<_>) =
        written.iter().cloned().partition(|(o, _)| *o < active_base);
    let mut expected = latest(&sealed, false);
    expected.extend(active);
    // Tombstones are kept on the first cleaning: their horizon starts then.
    assert_eq!(records_of(&log), expected);
}

#[test]
fn min_compaction_lag_holds_young_segments_back_and_max_lag_forces_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let (_, old) = fill(&mut log, 200, 10, 5, NOW - 60_000);
    log.roll_now(NOW).unwrap();
    let young_base = log.log_end_offset();
    let (_, young) = fill(&mut log, 200, 10, 5, NOW - 1000);
    log.roll_now(NOW).unwrap();
    let cfg = CompactionConfig {
        min_compaction_lag_ms: 30_000,
        ..compaction(0)
    };
    let range = log
        .cleanable_range(None, log.log_end_offset(), &cfg, NOW)
        .unwrap();
    assert_eq!(range.first_uncleanable_offset, young_base);
    let summary = clean(&mut log, None, &cfg, NOW, 1 << 20);
    assert_eq!(summary.next_dirty_offset, young_base);
    let mut expected = latest(&old, false);
    expected.extend(young);
    assert_eq!(records_of(&log), expected, "young records untouched");

    let lazy = CompactionConfig {
        min_cleanable_dirty_ratio: 1.0,
        ..cfg
    };
    let range = log
        .cleanable_range(Some(young_base), log.log_end_offset(), &lazy, NOW + 100_000)
        .unwrap();
    assert!(!range.needs_compaction_now());
    assert!(
        !range.is_cleanable(lazy.min_cleanable_dirty_ratio),
        "{range:?}"
    );
    let forced = CompactionConfig {
        max_compaction_lag_ms: 10_000,
        ..lazy
    };
    let range = log
        .cleanable_range(
            Some(young_base),
            log.log_end_offset(),
            &forced,
            NOW + 100_000,
        )
        .unwrap();
    assert_eq!(range.max_compaction_delay_ms, 100_000 - 10_000 + 1000);
    assert!(range.is_cleanable(forced.min_cleanable_dirty_ratio));
}

#[test]
fn a_full_offset_map_cleans_part_of_the_dirty_section_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let (_, written) = fill(&mut log, 400, 20, 4, NOW);
    log.roll_now(NOW).unwrap();
    let end = log.log_end_offset();
    let mut checkpoint = None;
    let mut rounds = 0;
    loop {
        rounds += 1;
        // 7 keys per round.
        let summary = clean(&mut log, checkpoint, &compaction(60_000), NOW, 0);
        assert!(summary.next_dirty_offset > summary.first_dirty_offset);
        assert_eq!(log.log_end_offset(), end);
        checkpoint = Some(summary.next_dirty_offset);
        if summary.next_dirty_offset == end {
            break;
        }
        assert!(rounds < 100);
    }
    assert!(rounds > 1);
    assert_eq!(records_of(&log), latest(&written, false));
}

#[test]
fn a_cleaning_is_abandoned_when_its_segments_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let (_, written) = fill(&mut log, 200, 10, 5, NOW);
    log.roll_now(NOW).unwrap();
    let cfg = compaction(0);
    let range = log
        .cleanable_range(None, log.log_end_offset(), &cfg, NOW)
        .unwrap();
    let mut job = log
        .start_cleaning(&range, &cfg, OffsetMap::with_memory(1 << 20), NOW)
        .unwrap();
    let cleaned = loop {
        match job.step(1 << 20).unwrap().step {
            CleaningStep::Cleaned(cleaned) => break cleaned,
            CleaningStep::Progress => {}
            CleaningStep::Finished(_) => panic!("no group was cleaned"),
        }
    };
    let second_segment: i64 = dir_names(dir.path())
        .iter()
        .filter(|n| n.ends_with(".log"))
        .nth(1)
        .and_then(|n| n.trim_end_matches(".log").parse().ok())
        .unwrap();
    log.delete_segments_before(second_segment).unwrap();
    let before = records_of(&log);
    match log.replace_with_cleaned(cleaned) {
        Err(CleanerError::LogChanged { base_offset, .. }) => assert_eq!(base_offset, 0),
        other => panic!("expected LogChanged, got {other:?}"),
    }
    drop(job.into_map());
    assert!(dir_names(dir.path())
        .iter()
        .all(|n| !n.contains(".cleaned")));
    assert_eq!(records_of(&log), before);
    assert!(before.len() < written.len());
}

#[test]
fn producers_keep_their_last_batch_even_when_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let producer = 4242;
    for seq in 0..3 {
        let records = [kv("p", Some(&format!("{seq}")))];
        log.append(
            &batch(&records, NOW, Codec::Gzip, (producer, 1, seq)),
            0,
            NOW,
        )
        .unwrap();
    }
    log.append(
        &batch(&[kv("p", Some("last"))], NOW, Codec::None, (-1, -1, -1)),
        0,
        NOW,
    )
    .unwrap();
    log.roll_now(NOW).unwrap();
    let before = log.producer_state().last_batch(producer).unwrap();
    clean(&mut log, None, &compaction(0), NOW, 1 << 20);
    let batches = contents(&log);
    let kept: Vec<(i64, i64, i32)> = batches
        .iter()
        .map(|(h, r)| (h.base_offset, h.producer_id, r.len() as i32))
        .collect();
    assert_eq!(kept, vec![(2, producer, 0), (3, -1, 1)]);
    assert_eq!(batches[0].0.last_sequence(), 2);
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.producer_state().last_batch(producer), Some(before));
}

/// A log of several segments with duplicates, cleaned up to the point where its cleaned
/// files exist; returns the expected records once the swap is done, and the records before.
fn interrupted_cleaning(dir: &Path) -> (Records, Records) {
    let mut log = open(dir);
    let (_, written) = fill(&mut log, 300, 12, 6, NOW);
    log.roll_now(NOW).unwrap();
    assert!(log.segment_count() > 3);
    // One group for the whole log.
    log.set_config(LogConfig {
        segment_bytes: 1 << 20,
        ..config()
    });
    let before = records_of(&log);
    let cfg = compaction(0);
    let range = log
        .cleanable_range(None, log.log_end_offset(), &cfg, NOW)
        .unwrap();
    let mut job = log
        .start_cleaning(&range, &cfg, OffsetMap::with_memory(1 << 20), NOW)
        .unwrap();
    let cleaned = loop {
        if let CleaningStep::Cleaned(cleaned) = job.step(1 << 20).unwrap().step {
            break cleaned;
        }
    };
    assert_eq!(cleaned.end_offset(), log.log_end_offset(), "one group");
    drop((cleaned, job, log));
    (latest(&written, false), before)
}

/// Renames every `*<from>` file of `dir` to `*<to>`.
fn rename_suffix(dir: &Path, from: &str, to: &str) {
    let part = dir.join("table-0");
    for name in dir_names(dir) {
        if let Some(stem) = name.strip_suffix(from) {
            std::fs::rename(part.join(&name), part.join(format!("{stem}{to}"))).unwrap();
        }
    }
}

#[test]
fn cleaned_files_left_by_a_crash_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = interrupted_cleaning(dir.path());
    assert!(dir_names(dir.path())
        .iter()
        .any(|n| n.ends_with(".log.cleaned")));
    let log = open(dir.path());
    assert!(dir_names(dir.path())
        .iter()
        .all(|n| !n.ends_with(".cleaned")));
    assert_eq!(records_of(&log), before);
}

#[test]
fn swap_files_left_by_a_crash_complete_the_swap_at_open() {
    for renamed_old_segments in [0, 1, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        let (expected, _) = interrupted_cleaning(dir.path());
        rename_suffix(dir.path(), ".cleaned", ".swap");
        let mut old_logs: Vec<String> = dir_names(dir.path())
            .into_iter()
            .filter(|n| n.ends_with(".log"))
            .collect();
        old_logs.pop(); // the active segment
        assert!(old_logs.len() > 2);
        for name in old_logs.iter().take(renamed_old_segments) {
            for ext in ["log", "index", "timeindex"] {
                let file = name.replace(".log", &format!(".{ext}"));
                let part = dir.path().join("table-0");
                std::fs::rename(part.join(&file), part.join(format!("{file}.deleted"))).unwrap();
            }
        }
        let log = open(dir.path());
        assert_eq!(records_of(&log), expected, "{renamed_old_segments} renamed");
        let names = dir_names(dir.path());
        assert!(names
            .iter()
            .all(|n| !n.contains(".swap") && !n.contains(".deleted")));
        // The cleaned segment and the (empty) active one remain.
        assert_eq!(
            names.iter().filter(|n| n.ends_with(".log")).count(),
            2,
            "{names:?}"
        );
    }
}

#[test]
fn an_index_swap_without_its_log_swap_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = interrupted_cleaning(dir.path());
    let names = dir_names(dir.path());
    for name in names.iter().filter(|n| n.ends_with(".index.cleaned")) {
        let stem = name.strip_suffix(".cleaned").unwrap();
        let part = dir.path().join("table-0");
        std::fs::rename(part.join(name), part.join(format!("{stem}.swap"))).unwrap();
    }
    let log = open(dir.path());
    let names = dir_names(dir.path());
    assert!(names
        .iter()
        .all(|n| !n.contains(".swap") && !n.contains(".cleaned")));
    assert_eq!(records_of(&log), before);
    let by_offset: BTreeMap<i64, Kv> = records_of(&log).into_iter().collect();
    assert_eq!(by_offset.len(), before.len());
}

/// Every batch of the log as stored, undecoded.
fn raw_batches(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, 1 << 24, true, i64::MAX).unwrap() {
        let mut buf = vec![0u8; slice.len as usize];
        slice.file.read_exact_at(&mut buf, slice.position).unwrap();
        let all = Bytes::from(buf);
        let mut pos = 0;
        while all.len() - pos >= HEADER_SIZE {
            let header = BatchHeader::parse(&all[pos..]).unwrap();
            out.push(all.slice(pos..pos + header.total_size()));
            pos += header.total_size();
            offset = header.next_offset();
        }
    }
    out
}

#[test]
fn batches_that_cannot_be_decompressed_within_the_limit_are_kept_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // A topic that was not compacted when the bombs were produced: they were stored unread.
    let small = LogConfig {
        segment_bytes: 256 * 1024,
        validation: crate::batch::ValidationConfig {
            max_message_bytes: 64 * 1024,
            ..crate::batch::ValidationConfig::default()
        },
        ..config()
    };
    let limit = small.validation.decompression_limit();
    assert_eq!(limit, crate::decompress::MIN_DECOMPRESSION_LIMIT);
    let (mut log, _) = PartitionLog::open(dir.path(), "table", 0, small, 0, 0, NOW).unwrap();
    let zeros = vec![0u8; limit + 1];
    let mut bombs = Vec::new();
    for (i, codec) in [Codec::Gzip, Codec::Zstd].into_iter().enumerate() {
        let old = [kv("a", Some("old")), kv(&format!("b{i}"), Some("old"))];
        log.append(&batch(&old, NOW - 1000, codec, (-1, -1, -1)), 0, NOW)
            .unwrap();
        let header = batch(&[kv("a", Some("bomb"))], NOW - 1000, codec, (-1, -1, -1));
        let compressed = crate::test_util::compress_with(codec, &zeros);
        let bomb = crate::test_util::with_records(&header, &compressed);
        let info = log.append(&bomb, 0, NOW).unwrap();
        bombs.push((info.base_offset, bomb.slice(HEADER_SIZE..)));
    }
    log.append(
        &batch(
            &[kv("a", Some("new"))],
            NOW - 1000,
            Codec::Lz4,
            (-1, -1, -1),
        ),
        0,
        NOW,
    )
    .unwrap();
    log.roll_now(NOW).unwrap();

    let summary = clean(&mut log, None, &compaction(0), NOW, 1 << 20);
    assert_eq!(summary.records_removed, 2, "the two old records of key a");
    let after = raw_batches(&log);
    for (offset, records) in &bombs {
        let kept = after
            .iter()
            .find(|b| BatchHeader::parse(b).unwrap().base_offset == *offset)
            .expect("the bomb is kept");
        assert_eq!(&kept[HEADER_SIZE..], &records[..], "byte for byte");
    }
    assert_eq!(
        after.len(),
        5,
        "two cleaned batches, two bombs, the newest batch"
    );
}
