//! Kafka v2 record batches: building them for produce, walking them on fetch.
//!
//! Batches are encoded by storage's [`RecordBatchBuilder`] (one reusable buffer, no per-record
//! allocation, kafka-protocol's codecs); the walker reads batch headers
//! and, when asked, each record's key and value lengths and the send time the bench embedded in
//! the value.

use crate::args::Codec;
use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
use sluice_storage::wire::{read_varlong, BatchOptions, RecordBatchBuilder, VarintError};

/// The 61-byte v2 batch header.
pub const BATCH_HEADER: usize = 61;
/// Values of at least this size carry the bench's send-time stamp.
pub const STAMP_LEN: usize = 12;
const STAMP_MAGIC: [u8; 4] = *b"SLB1";

/// Errors of batch encoding and decoding.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Compression or decompression failed.
    #[error("{0}: {1}")]
    Codec(&'static str, String),
    /// A batch is malformed.
    #[error("malformed record batch: {0}")]
    Malformed(&'static str),
}

/// Producer identity for idempotent batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// Producer id.
    pub id: i64,
    /// Producer epoch.
    pub epoch: i16,
}

/// Builds one record batch with storage's [`RecordBatchBuilder`], counting the key and value
/// bytes the bench reports.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    records: RecordBatchBuilder,
    payload_bytes: u64,
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records in the batch so far.
    pub fn count(&self) -> i32 {
        self.records.count()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encoded size of the records so far (uncompressed), plus the header.
    pub fn size(&self) -> usize {
        self.records.size()
    }

    /// Key plus value bytes so far.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Appends a record with timestamp `ts_ms`; `value` is written by `fill` into a slice of
    /// `value_len` bytes (so the value can be built in place).
    pub fn push(
        &mut self,
        ts_ms: i64,
        key: Option<&[u8]>,
        value_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) {
        self.records.push_with(ts_ms, key, value_len, fill);
        self.payload_bytes += (key.map_or(0, <[u8]>::len) + value_len) as u64;
    }

    /// Finishes the batch: header, compressed records, CRC-32C. `sequence` is the base sequence
    /// for an idempotent producer. The builder is left empty for reuse.
    pub fn finish(
        &mut self,
        codec: Codec,
        producer: Option<ProducerIdentity>,
        sequence: i32,
    ) -> Result<Bytes, BatchError> {
        let options = BatchOptions {
            compression: codec.compression(),
            producer_id: producer.map_or(-1, |p| p.id),
            producer_epoch: producer.map_or(-1, |p| p.epoch),
            base_sequence: if producer.is_some() { sequence } else { -1 },
            ..BatchOptions::default()
        };
        let batch = self
            .records
            .finish(&options)
            .map_err(|e| BatchError::Codec("encoding a batch", e.to_string()))?;
        self.payload_bytes = 0;
        Ok(batch)
    }
}

/// Writes the bench's send-time stamp (microseconds since the UNIX epoch) at the start of a value.
pub fn stamp(value: &mut [u8], micros: u64) {
    if value.len() >= STAMP_LEN {
        value[..4].copy_from_slice(&STAMP_MAGIC);
        value[4..12].copy_from_slice(&micros.to_be_bytes());
    }
}

/// The send-time stamp of a value, if it carries one.
pub fn read_stamp(value: &[u8]) -> Option<u64> {
    (value.len() >= STAMP_LEN && value[..4] == STAMP_MAGIC)
        .then(|| u64::from_be_bytes(value[4..12].try_into().unwrap_or([0; 8])))
}

/// What a fetch returned for one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Walked {
    /// Data records (control records not counted).
    pub records: u64,
    /// Key plus value bytes of those records (only when records were decoded).
    pub payload_bytes: u64,
    /// Bytes of the whole batches.
    pub batch_bytes: u64,
    /// The offset after the last whole batch, if there was one.
    pub next_offset: Option<i64>,
}

/// Walks the whole batches in `data` (a trailing partial batch is ignored, as consumers do).
/// Records below `min_offset` (a fetch may start mid-batch) are skipped. With `decode`, every
/// record is read and `on_stamp` gets each value's send-time stamp; without it, batches are
/// counted from their headers.
pub fn walk(
    data: &Bytes,
    decode: bool,
    min_offset: i64,
    mut on_stamp: impl FnMut(u64),
) -> Result<Walked, BatchError> {
    let mut w = Walked::default();
    let mut pos = 0usize;
    while data.len() - pos >= BATCH_HEADER {
        let mut h = &data[pos..pos + BATCH_HEADER];
        let base_offset = h.get_i64();
        let len = h.get_i32();
        if len < (BATCH_HEADER - 12) as i32 {
            return Err(BatchError::Malformed("batch length below the header size"));
        }
        let size = 12 + len as usize;
        if pos + size > data.len() {
            break;
        }
        let _epoch = h.get_i32();
        let magic = h.get_i8();
        if magic != 2 {
            return Err(BatchError::Malformed("not a v2 batch"));
        }
        let _crc = h.get_u32();
        let attributes = h.get_i16();
        let last_offset_delta = h.get_i32();
        h.advance(8 + 8 + 8 + 2 + 4);
        let count = h.get_i32();
        w.batch_bytes += size as u64;
        w.next_offset = Some(base_offset + last_offset_delta as i64 + 1);
        let control = attributes & 0x20 != 0;
        let last = base_offset + last_offset_delta as i64;
        if !control && last >= min_offset {
            if decode {
                let section = data.slice(pos + BATCH_HEADER..pos + size);
                let skip_below = (min_offset - base_offset).max(0);
                let (n, bytes) =
                    walk_records(section, attributes & 7, count, skip_below, &mut on_stamp)?;
                w.records += n;
                w.payload_bytes += bytes;
            } else {
                w.records += count.max(0) as u64;
            }
        }
        pos += size;
    }
    Ok(w)
}

fn walk_records(
    mut section: Bytes,
    codec: i16,
    count: i32,
    skip_below: i64,
    on_stamp: &mut impl FnMut(u64),
) -> Result<(u64, u64), BatchError> {
    let mut go = |buf: &mut Bytes| records_payload(buf, count, skip_below, on_stamp);
    let de = |e: &dyn std::fmt::Display| BatchError::Codec("decompressing a batch", e.to_string());
    match codec {
        0 => go(&mut section),
        1 => Gzip::decompress(&mut section, |b| Ok(go(b))).map_err(|e| de(&e))?,
        2 => Snappy::decompress(&mut section, |b| Ok(go(b))).map_err(|e| de(&e))?,
        3 => Lz4::decompress(&mut section, |b| Ok(go(b))).map_err(|e| de(&e))?,
        4 => Zstd::decompress(&mut section, |b| Ok(go(b))).map_err(|e| de(&e))?,
        _ => Err(BatchError::Malformed("unknown compression codec")),
    }
}

/// (records, key + value bytes) of the records at offset delta `skip_below` or later.
fn records_payload(
    buf: &[u8],
    count: i32,
    skip_below: i64,
    on_stamp: &mut impl FnMut(u64),
) -> Result<(u64, u64), BatchError> {
    let mut total = 0u64;
    let mut n = 0u64;
    let mut pos = 0usize;
    for _ in 0..count {
        let len = get_varlong(buf, &mut pos)?;
        if len < 0 || len as usize > buf.len() - pos {
            return Err(BatchError::Malformed("record length"));
        }
        let rec = &buf[pos..pos + len as usize];
        pos += len as usize;
        if rec.is_empty() {
            return Err(BatchError::Malformed("empty record"));
        }
        let mut at = 1; // attributes
        get_varlong(rec, &mut at)?; // timestamp delta
        if get_varlong(rec, &mut at)? < skip_below {
            continue;
        }
        n += 1;
        let key_len = get_varlong(rec, &mut at)?;
        if key_len > 0 {
            if key_len as usize > rec.len() - at {
                return Err(BatchError::Malformed("key length"));
            }
            at += key_len as usize;
            total += key_len as u64;
        }
        let value_len = get_varlong(rec, &mut at)?;
        if value_len > 0 {
            if value_len as usize > rec.len() - at {
                return Err(BatchError::Malformed("value length"));
            }
            if let Some(t) = read_stamp(&rec[at..at + value_len as usize]) {
                on_stamp(t);
            }
            total += value_len as u64;
        }
    }
    Ok((n, total))
}

/// Reads a varlong of a record at `*pos`.
fn get_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, BatchError> {
    read_varlong(buf, pos).map_err(|e| match e {
        VarintError::Truncated => BatchError::Malformed("truncated varint"),
        VarintError::TooLong(_) => BatchError::Malformed("varint too long"),
    })
}

/// A small, fast pseudo-random generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo + 1)
        }
    }
}

/// A pool of moderately compressible filler (words with some random noise) that message values
/// are cut from, so that the codecs have realistic work to do.
pub fn filler_pool(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "sluice", "kafka", "broker", "shard", "core", "batch", "record", "offset", "segment",
        "index", "fetch", "produce", "log", "crc", "epoch", "leader",
    ];
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let s = rng.next_u64();
        if s & 3 == 0 {
            out.extend_from_slice(&s.to_le_bytes()[..4]);
        } else {
            out.extend_from_slice(WORDS[(s >> 8) as usize % WORDS.len()].as_bytes());
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::records::RecordBatchDecoder;

    fn build(codec: Codec) -> Bytes {
        let mut b = BatchBuilder::new();
        for i in 0..50u64 {
            let key = format!("key-{i}");
            b.push(
                1_700_000_000_000 + i as i64,
                (i % 2 == 0).then_some(key.as_bytes()),
                100 + i as usize,
                |v| {
                    v.fill(b'x');
                    stamp(v, 1000 + i);
                },
            );
        }
        assert_eq!(b.count(), 50);
        b.finish(codec, Some(ProducerIdentity { id: 7, epoch: 0 }), 10)
            .unwrap()
    }

    #[test]
    fn batches_decode_with_kafka_protocol_and_walk_back() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let data = build(codec);
            let crc = u32::from_be_bytes(data[17..21].try_into().unwrap());
            assert_eq!(crc, crc32c::crc32c(&data[21..]), "{codec:?}");
            let mut d = data.clone();
            let sets = RecordBatchDecoder::decode_all(&mut d).unwrap();
            let recs: Vec<_> = sets.iter().flat_map(|s| s.records.iter()).collect();
            assert_eq!(recs.len(), 50, "{codec:?}");
            assert_eq!(recs[3].sequence, 13);
            assert_eq!(recs[3].timestamp, 1_700_000_000_003);
            assert_eq!(recs[4].key.as_deref(), Some(&b"key-4"[..]));
            assert_eq!(recs[5].key, None);
            assert_eq!(recs[5].value.as_ref().map(|v| v.len()), Some(105));
            let mut stamps = Vec::new();
            let w = walk(&data, true, 0, |s| stamps.push(s)).unwrap();
            let tail = walk(&data, true, 45, |_| {}).unwrap();
            assert_eq!(
                (tail.records, tail.payload_bytes),
                (5, (145..150).sum::<u64>() + 12),
                "keys key-46 and key-48"
            );
            assert_eq!(w.records, 50);
            assert_eq!(w.next_offset, Some(50));
            let keys: u64 = (0..50)
                .filter(|i| i % 2 == 0)
                .map(|i: u64| format!("key-{i}").len() as u64)
                .sum();
            let values: u64 = (0..50).map(|i| 100 + i).sum();
            assert_eq!(w.payload_bytes, keys + values);
            assert_eq!(stamps, (1000..1050).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn walk_ignores_a_partial_tail() {
        let data = build(Codec::None);
        let mut two = BytesMut::new();
        two.put_slice(&data);
        two.put_slice(&data[..data.len() - 3]);
        let w = walk(&two.freeze(), false, 0, |_| {}).unwrap();
        assert_eq!(w.records, 50);
        assert_eq!(w.batch_bytes, data.len() as u64);
    }
}
