//! Builders of real record batches (with [`RecordBatchBuilder`]) for the unit tests.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::Compression;

use crate::batch::BatchHeader;
use crate::wire::{compress_records, BatchOptions, RecordBatchBuilder};

/// Identity of an idempotent producer for a test batch: (producer id, epoch, base sequence).
pub(crate) type Producer = (i64, i16, i32);

/// No producer id.
pub(crate) const NO_PRODUCER: Producer = (-1, -1, -1);

/// Encodes one v2 batch of `count` records with timestamps `first_ts`, `first_ts + 1`, ….
pub(crate) fn encode_batch(
    count: usize,
    first_ts: i64,
    compression: Compression,
    producer: Producer,
) -> Bytes {
    let timestamps: Vec<i64> = (0..count as i64).map(|i| first_ts + i).collect();
    encode_with_timestamps(&timestamps, compression, producer)
}

/// Encodes one v2 batch with one record per timestamp in `timestamps`.
pub(crate) fn encode_with_timestamps(
    timestamps: &[i64],
    compression: Compression,
    producer: Producer,
) -> Bytes {
    let keys: Vec<Option<String>> = (0..timestamps.len())
        .map(|i| Some(format!("key-{i}")))
        .collect();
    encode_records(timestamps, &keys, compression, producer)
}

/// Encodes one v2 batch without a producer id, one record per key (`None`: a record without
/// a key), with timestamps `first_ts`, `first_ts + 1`, ….
pub(crate) fn encode_with_keys(
    keys: &[Option<&str>],
    first_ts: i64,
    compression: Compression,
) -> Bytes {
    let timestamps: Vec<i64> = (0..keys.len() as i64).map(|i| first_ts + i).collect();
    let keys: Vec<Option<String>> = keys.iter().map(|k| k.map(str::to_string)).collect();
    encode_records(&timestamps, &keys, compression, NO_PRODUCER)
}

/// Encodes one v2 batch: record `i` has timestamp `timestamps[i]` and key `keys[i]`.
fn encode_records(
    timestamps: &[i64],
    keys: &[Option<String>],
    compression: Compression,
    producer: Producer,
) -> Bytes {
    let mut builder = RecordBatchBuilder::new();
    for (i, (&ts, key)) in timestamps.iter().zip(keys).enumerate() {
        builder.push(
            ts,
            key.as_deref().map(str::as_bytes),
            Some(&vec![b'v'; 100 + i % 7]),
            &[],
        );
    }
    let options = BatchOptions {
        compression: compression.into(),
        producer_id: producer.0,
        producer_epoch: producer.1,
        base_sequence: producer.2,
        ..BatchOptions::default()
    };
    builder.finish(&options).expect("encode test batch")
}

/// An uncompressed batch of `count` records without a producer id, as a `Vec`.
pub(crate) fn batch_bytes(count: usize, first_ts: i64) -> Vec<u8> {
    encode_batch(count, first_ts, Compression::None, NO_PRODUCER).to_vec()
}

/// A copy of `batch` with its baseOffset (outside the CRC) set to `offset`.
pub(crate) fn with_base_offset(batch: &[u8], offset: i64) -> Vec<u8> {
    let mut out = batch.to_vec();
    out[..8].copy_from_slice(&offset.to_be_bytes());
    out
}

/// `data` compressed with `compression` by kafka-protocol's compressors, as clients do.
pub(crate) fn compress_with(compression: Compression, data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    compress_records(compression.into(), data, &mut out).expect("compress test records");
    out.to_vec()
}

/// `batch`'s header followed by `records` (as they are, compressed or not), with the batch
/// length and CRC made to match.
pub(crate) fn with_records(batch: &[u8], records: &[u8]) -> Bytes {
    let header = BatchHeader::parse(batch).expect("a test batch has a valid header");
    crate::wire::encode_batch(&header, records)
}
