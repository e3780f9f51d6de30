//! Cleaning one record batch (Kafka's `LogCleaner` record filter and
//! `MemoryRecords.filterTo`): which records stay, and the batch that holds them.
//!
//! A record stays when it is beyond what the offset map covers, or when it is the latest record
//! of its key — unless it is a tombstone (null value) whose delete horizon has passed. As in
//! Kafka since KIP-534, a batch that keeps a tombstone gets a delete horizon the first time it
//! is cleaned: now + `delete.retention.ms`, stored as the batch's base timestamp with attribute
//! bit 6 (the records' timestamp deltas are rebased so their timestamps do not change); later
//! cleanings drop the tombstone once the horizon has passed. Records without a key are dropped,
//! as Kafka does for compacted topics.
//!
//! A batch keeps its base offset, last offset delta, producer id, epoch and base sequence, its
//! partition leader epoch, timestamp type and codec, whatever records remain; only its record
//! count, records, max timestamp (CreateTime) and CRC change. The retained records are copied
//! byte for byte (headers included) and compressed again with the batch's own codec. When no
//! record remains, the batch disappears — unless it is the last batch of its producer, which is
//! kept as an empty batch (a header without records, as Kafka's `RETAIN_EMPTY`) so that the
//! producer's last sequence survives a restart. Control batches are kept as they are: Sluice has
//! no transactions yet, so no marker is ever the end of an aborted or removed transaction.
//!
//! A batch whose records cannot be decompressed within the topic's decompression limit (a
//! decompression bomb stored before the topic became compacted, or corrupt compressed data) is
//! kept unchanged, with a warning: the cleaner never drops data it cannot read.

use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::offset_map::OffsetMap;
use super::records::{decompress, parse_records, put_record};
use crate::batch::{BatchHeader, TimestampType, HEADER_SIZE};
use crate::wire::{compress_records, encode_batch};

/// Attribute bit: the batch's base timestamp is its delete horizon (KIP-534).
const DELETE_HORIZON_BIT: i16 = 1 << 6;
/// Attribute bits of the compression codec.
const COMPRESSION_BITS: i16 = 0x07;

/// What the filter needs to know besides the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FilterContext<'a> {
    /// Latest offset of each key in the dirty section read so far.
    pub map: &'a OffsetMap,
    /// Records at or after this offset are beyond what the map covers: they all stay.
    pub map_end: i64,
    /// The time of the cleaning.
    pub now_ms: i64,
    /// `delete.retention.ms`: how long a cleaned tombstone stays.
    pub delete_retention_ms: i64,
    /// The most bytes a batch's records may take decompressed.
    pub decompression_limit: usize,
    /// The segment file being cleaned, for warnings.
    pub path: &'a Path,
}

/// The cleaned form of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilteredBatch {
    /// Every record stays and nothing changes: the batch is written as it was.
    Unchanged,
    /// The batch becomes these bytes (fewer records, or a delete horizon set).
    Rewritten(Bytes),
    /// No record stays and the batch is not needed: it disappears.
    Removed,
}

/// The outcome of cleaning one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterOutcome {
    /// The cleaned batch.
    pub batch: FilteredBatch,
    /// Records of the batch that were removed.
    pub records_removed: u64,
    /// The delete horizon of the written batch when it keeps a tombstone.
    pub retained_delete_horizon: Option<i64>,
}

impl FilterOutcome {
    fn unchanged() -> FilterOutcome {
        FilterOutcome {
            batch: FilteredBatch::Unchanged,
            records_removed: 0,
            retained_delete_horizon: None,
        }
    }
}

/// The batch's delete horizon, if a cleaning set one.
pub(crate) fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_BIT != 0).then_some(header.base_timestamp)
}

/// Cleans `batch` (whole, header included, described by `header`). `retain_empty` says whether
/// the batch must stay even without records (it is its producer's last). Errors describe
/// records that cannot be decoded.
pub(crate) fn filter_batch(
    batch: &Bytes,
    header: &BatchHeader,
    retain_empty: bool,
    ctx: &FilterContext<'_>,
) -> Result<FilterOutcome, String> {
    if header.is_control() || header.base_offset >= ctx.map_end {
        return Ok(FilterOutcome::unchanged());
    }
    let horizon = delete_horizon(header);
    let plain = match decompress(
        header.compression(),
        batch.slice(HEADER_SIZE..),
        ctx.decompression_limit,
    ) {
        Ok(plain) => plain,
        Err(e) => {
            tracing::warn!(
                "{}: keeping the batch at offset {} unchanged: {e}",
                ctx.path.display(),
                header.base_offset
            );
            return Ok(FilterOutcome::unchanged());
        }
    };
    let records = parse_records(&plain, header.records_count)?;
    let mut kept = Vec::with_capacity(records.len());
    let mut keeps_tombstone = false;
    for record in &records {
        let offset = header.base_offset + i64::from(record.offset_delta);
        let keep = offset >= ctx.map_end
            || record.key.clone().is_some_and(|key| {
                let latest = ctx.map.get(&plain[key]).is_none_or(|o| o <= offset);
                latest && (record.has_value || horizon.is_none_or(|h| ctx.now_ms < h))
            });
        if keep {
            keeps_tombstone |= !record.has_value;
            kept.push(record);
        }
    }
    let records_removed = (records.len() - kept.len()) as u64;
    let sets_horizon = keeps_tombstone && horizon.is_none();
    if records_removed == 0 && !sets_horizon {
        return Ok(FilterOutcome {
            retained_delete_horizon: horizon.filter(|_| keeps_tombstone),
            ..FilterOutcome::unchanged()
        });
    }
    if kept.is_empty() {
        let batch = if retain_empty {
            FilteredBatch::Rewritten(empty_batch(header))
        } else {
            FilteredBatch::Removed
        };
        return Ok(FilterOutcome {
            batch,
            records_removed,
            retained_delete_horizon: None,
        });
    }
    let new_horizon = ctx.now_ms.saturating_add(ctx.delete_retention_ms);
    let base_timestamp = if sets_horizon {
        new_horizon
    } else {
        header.base_timestamp
    };
    let shift = header.base_timestamp - base_timestamp;
    let mut body = Vec::with_capacity(plain.len());
    for record in &kept {
        put_record(&mut body, &plain, record, shift);
    }
    let max_timestamp = match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => kept
            .iter()
            .map(|r| header.base_timestamp + r.timestamp_delta)
            .max()
            .unwrap_or(header.max_timestamp),
    };
    let mut records_out = BytesMut::with_capacity(body.len() / 2 + 64);
    compress_records(header.compression(), &body, &mut records_out).map_err(|e| e.to_string())?;
    let rewritten = BatchHeader {
        attributes: header.attributes | if sets_horizon { DELETE_HORIZON_BIT } else { 0 },
        base_timestamp,
        max_timestamp,
        records_count: kept.len() as i32,
        ..*header
    };
    Ok(FilterOutcome {
        batch: FilteredBatch::Rewritten(encode_batch(&rewritten, &records_out)),
        records_removed,
        retained_delete_horizon: keeps_tombstone
            .then_some(if sets_horizon {
                Some(new_horizon)
            } else {
                horizon
            })
            .flatten(),
    })
}

/// A batch with `header`'s offsets, producer fields, leader epoch and timestamp type but no
/// records (Kafka's `writeEmptyHeader`): uncompressed, without timestamps (-1) so that it never
/// answers a timestamp lookup.
fn empty_batch(header: &BatchHeader) -> Bytes {
    let empty = BatchHeader {
        attributes: header.attributes & !(COMPRESSION_BITS | DELETE_HORIZON_BIT),
        base_timestamp: -1,
        max_timestamp: -1,
        records_count: 0,
        ..*header
    };
    encode_batch(&empty, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::ATTRIBUTES_POS;
    use crate::test_util::{encode_batch as encode_test_batch, encode_with_keys, with_base_offset};
    use crate::wire::{BatchOptions, RecordBatchBuilder};
    use kafka_protocol::records::{Compression as Codec, RecordBatchDecoder};

    const NOW: i64 = 1_700_000_000_000;

    /// A batch at `base` with one record per key (`None` value for keys starting with `~`).
    fn batch(base: i64, keys: &[&str], codec: Codec) -> (Bytes, BatchHeader) {
        let keyed: Vec<Option<&str>> = keys.iter().map(|k| Some(*k)).collect();
        let mut bytes = with_base_offset(&encode_with_keys(&keyed, NOW - 1000, codec), base);
        if keys.iter().any(|k| k.starts_with('~')) {
            bytes = tombstones(&bytes, keys);
        }
        let bytes = Bytes::from(bytes);
        let header = BatchHeader::parse(&bytes).unwrap();
        (bytes, header)
    }

    /// Re-encodes `bytes` with null values for the keys starting with `~`.
    fn tombstones(bytes: &[u8], keys: &[&str]) -> Vec<u8> {
        let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(bytes)).unwrap();
        let mut builder = RecordBatchBuilder::new();
        for (record, key) in set.records.iter().zip(keys) {
            let value = record.value.as_deref().filter(|_| !key.starts_with('~'));
            builder.push(record.timestamp, record.key.as_deref(), value, &[]);
        }
        let options = BatchOptions {
            base_offset: set.records[0].offset,
            compression: set.compression.into(),
            ..BatchOptions::default()
        };
        builder.finish(&options).unwrap().to_vec()
    }

    fn ctx(map: &OffsetMap, map_end: i64, now_ms: i64) -> FilterContext<'_> {
        FilterContext {
            map,
            map_end,
            now_ms,
            delete_retention_ms: 60_000,
            decompression_limit: 1 << 20,
            path: Path::new("table-0/00000000000000000000.log"),
        }
    }

    fn decoded(bytes: &Bytes) -> Vec<(i64, String, bool)> {
        RecordBatchDecoder::decode(&mut bytes.clone())
            .unwrap()
            .records
            .iter()
            .map(|r| {
                let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
                (r.offset, key, r.value.is_some())
            })
            .collect()
    }

    #[test]
    fn keeps_latest_per_key_with_original_offsets_and_codec() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Lz4,
            Codec::Zstd,
            Codec::Snappy,
        ] {
            let (bytes, header) = batch(100, &["a", "b", "c", "d"], codec);
            let mut map = OffsetMap::with_memory(1 << 16);
            map.put(b"a", 100);
            map.put(b"b", 150);
            map.put(b"d", 151);
            let out = filter_batch(&bytes, &header, false, &ctx(&map, 200, NOW)).unwrap();
            assert_eq!(out.records_removed, 2);
            let FilteredBatch::Rewritten(new) = out.batch else {
                panic!("{codec:?}: expected a rewrite");
            };
            let h = BatchHeader::parse(&new).unwrap();
            assert_eq!(h.compression(), header.compression());
            assert_eq!((h.base_offset, h.last_offset()), (100, 103));
            assert_eq!(h.records_count, 2);
            assert_eq!(h.crc, crc32c::crc32c(&new[ATTRIBUTES_POS..]), "valid CRC");
            assert_eq!(h.max_timestamp, NOW - 1000 + 2, "max of the kept records");
            assert_eq!(
                decoded(&new),
                vec![(100, "a".into(), true), (102, "c".into(), true)]
            );
        }
    }

    #[test]
    fn unchanged_batches_and_batches_beyond_the_map_stay_as_they_are() {
        let (bytes, header) = batch(10, &["a", "b"], Codec::Gzip);
        let map = OffsetMap::with_memory(1 << 16);
        let out = filter_batch(&bytes, &header, false, &ctx(&map, 100, NOW)).unwrap();
        assert_eq!(out, FilterOutcome::unchanged());
        let mut map = OffsetMap::with_memory(1 << 16);
        map.put(b"a", 50);
        let out = filter_batch(&bytes, &header, false, &ctx(&map, 10, NOW)).unwrap();
        assert_eq!(out.batch, FilteredBatch::Unchanged, "beyond the map");
        let out = filter_batch(&bytes, &header, false, &ctx(&map, 11, NOW)).unwrap();
        assert_eq!(
            out.records_removed, 1,
            "only the record inside the map goes"
        );
    }

    #[test]
    fn tombstones_get_a_horizon_then_go() {
        let (bytes, header) = batch(0, &["a", "~b"], Codec::Lz4);
        let map = OffsetMap::with_memory(1 << 16);
        let first = filter_batch(&bytes, &header, false, &ctx(&map, 100, NOW)).unwrap();
        assert_eq!(first.records_removed, 0);
        assert_eq!(first.retained_delete_horizon, Some(NOW + 60_000));
        let FilteredBatch::Rewritten(marked) = first.batch else {
            panic!("the horizon is set");
        };
        let h = BatchHeader::parse(&marked).unwrap();
        assert_eq!(delete_horizon(&h), Some(NOW + 60_000));
        let set = RecordBatchDecoder::decode(&mut marked.clone()).unwrap();
        let timestamps: Vec<i64> = set.records.iter().map(|r| r.timestamp).collect();
        assert_eq!(
            timestamps,
            vec![NOW - 1000, NOW - 999],
            "timestamps unchanged"
        );
        assert_eq!(
            decoded(&marked),
            vec![(0, "a".into(), true), (1, "~b".into(), false)]
        );

        let again = filter_batch(&marked, &h, false, &ctx(&map, 100, NOW + 59_999)).unwrap();
        assert_eq!(again.batch, FilteredBatch::Unchanged, "horizon not reached");
        assert_eq!(again.retained_delete_horizon, Some(NOW + 60_000));
        let late = filter_batch(&marked, &h, false, &ctx(&map, 100, NOW + 60_000)).unwrap();
        assert_eq!(late.records_removed, 1);
        assert_eq!(late.retained_delete_horizon, None);
        let FilteredBatch::Rewritten(last) = late.batch else {
            panic!("the tombstone goes");
        };
        assert_eq!(decoded(&last), vec![(0, "a".into(), true)]);
        assert_eq!(BatchHeader::parse(&last).unwrap().last_offset(), 1);
    }

    #[test]
    fn empty_batches_of_producers_and_unkeyed_records() {
        let bytes = with_base_offset(&encode_test_batch(3, NOW, Codec::Gzip, (7, 2, 40)), 20);
        let bytes = Bytes::from(bytes);
        let header = BatchHeader::parse(&bytes).unwrap();
        let mut map = OffsetMap::with_memory(1 << 16);
        for i in 0..3 {
            map.put(format!("key-{i}").as_bytes(), 100 + i);
        }
        let removed = filter_batch(&bytes, &header, false, &ctx(&map, 200, NOW)).unwrap();
        assert_eq!(
            (removed.batch, removed.records_removed),
            (FilteredBatch::Removed, 3)
        );
        let kept = filter_batch(&bytes, &header, true, &ctx(&map, 200, NOW)).unwrap();
        let FilteredBatch::Rewritten(empty) = kept.batch else {
            panic!("the producer's last batch stays");
        };
        let h = BatchHeader::parse(&empty).unwrap();
        assert_eq!(empty.len(), HEADER_SIZE);
        assert_eq!(
            (h.base_offset, h.last_offset(), h.records_count),
            (20, 22, 0)
        );
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 2, 40)
        );
        assert_eq!(h.last_sequence(), header.last_sequence());
        assert_eq!(h.crc, crc32c::crc32c(&empty[ATTRIBUTES_POS..]));

        let unkeyed = Bytes::from(with_base_offset(
            &encode_with_keys(&[None, Some("k")], NOW, Codec::None),
            0,
        ));
        let h = BatchHeader::parse(&unkeyed).unwrap();
        let map = OffsetMap::with_memory(1 << 16);
        let out = filter_batch(&unkeyed, &h, false, &ctx(&map, 10, NOW)).unwrap();
        assert_eq!(out.records_removed, 1, "records without a key are dropped");
    }
}
