//! Writing Kafka v2 record batches: the one encoder every Sluice crate uses (group records, the
//! log cleaner, the bench, the command-line tools and the tests).
//!
//! [`RecordBatchBuilder`] appends records (varint-framed, as Kafka's `DefaultRecord` writes them)
//! into one reusable buffer without a per-record allocation, and [`RecordBatchBuilder::finish`]
//! writes the 61-byte header, the records (compressed with kafka-protocol's codecs if asked)
//! and the CRC32C. [`encode_batch`] writes a batch from a decoded header and ready record bytes
//! (the cleaner's rewritten batches).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use super::varint::{put_varint, put_varlong, varlong_len, MAX_VARINT_LEN};
use crate::batch::{
    BatchHeader, Compression, TimestampType, ATTRIBUTES_POS, CONTROL_BIT, CRC_POS, HEADER_SIZE,
    LOG_OVERHEAD, TIMESTAMP_TYPE_BIT, TRANSACTIONAL_BIT,
};

/// Why a batch could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchBuildError {
    /// A batch needs at least one record.
    #[error("a record batch needs at least one record")]
    Empty,
    /// The codec failed to compress the records.
    #[error("cannot compress records with {compression:?}: {reason}")]
    Compress {
        /// The codec asked for.
        compression: Compression,
        /// The codec's error.
        reason: String,
    },
}

/// The batch-level fields of a batch to build. The default is what a client without an
/// idempotent producer sends: base offset 0, no leader epoch, producer or sequence (-1),
/// uncompressed, CreateTime, neither transactional nor control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Offset of the first record (the log assigns real offsets on append).
    pub base_offset: i64,
    /// Leader epoch stamped by the leader, -1 from clients.
    pub partition_leader_epoch: i32,
    /// Codec of the record section.
    pub compression: Compression,
    /// Meaning of the timestamps (attributes bit 3).
    pub timestamp_type: TimestampType,
    /// Whether the batch belongs to a transaction (attributes bit 4).
    pub transactional: bool,
    /// Whether the batch holds control records (attributes bit 5).
    pub control: bool,
    /// Idempotent producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 for none.
    pub base_sequence: i32,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

impl BatchOptions {
    /// The attributes field these options describe.
    pub fn attributes(&self) -> i16 {
        let mut attributes = compression_id(self.compression);
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= CONTROL_BIT;
        }
        attributes
    }
}

/// Kafka's id of a codec (attributes bits 0-2).
pub fn compression_id(compression: Compression) -> i16 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// One header of a record: its key and (nullable) value.
pub type RecordHeader<'a> = (&'a [u8], Option<&'a [u8]>);

/// Builds one record batch at a time; reusable (each [`finish`](Self::finish) empties it).
#[derive(Debug, Default)]
pub struct RecordBatchBuilder {
    records: BytesMut,
    count: i32,
    first_timestamp: i64,
    max_timestamp: i64,
}

impl RecordBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records added so far.
    pub fn count(&self) -> i32 {
        self.count
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch so far if it were finished uncompressed.
    pub fn size(&self) -> usize {
        HEADER_SIZE + self.records.len()
    }

    /// Appends a record with CreateTime `timestamp_ms`, `key` and `value` (`None` for null) and
    /// `headers`. Its offset delta is its position in the batch.
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) {
        let value_len = value.map_or(-1, |v| v.len() as i64);
        self.push_record(timestamp_ms, key, value_len, headers, |out| {
            if let Some(v) = value {
                out.put_slice(v);
            }
        });
    }

    /// Appends a record without headers whose `value_len`-byte value `fill` writes in place
    /// (so that a caller can build large values without a copy).
    pub fn push_with(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) {
        self.push_record(timestamp_ms, key, value_len as i64, &[], |out| {
            let start = out.len();
            out.resize(start + value_len, 0);
            fill(&mut out[start..]);
        });
    }

    /// Writes one record: length, attributes (0), timestamp and offset deltas, key, value
    /// (`value_len` -1 for null; `write_value` appends its bytes) and headers.
    fn push_record(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value_len: i64,
        headers: &[RecordHeader<'_>],
        write_value: impl FnOnce(&mut BytesMut),
    ) {
        if self.count == 0 {
            self.first_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        let timestamp_delta = timestamp_ms - self.first_timestamp;
        let offset_delta = self.count;
        let key_len = key.map_or(-1, |k| k.len() as i64);
        let mut body = 1
            + varlong_len(timestamp_delta)
            + varlong_len(i64::from(offset_delta))
            + varlong_len(key_len)
            + key.map_or(0, <[u8]>::len)
            + varlong_len(value_len)
            + value_len.max(0) as usize
            + varlong_len(headers.len() as i64);
        for (header_key, header_value) in headers {
            body += varlong_len(header_key.len() as i64)
                + header_key.len()
                + varlong_len(header_value.map_or(-1, |v| v.len() as i64))
                + header_value.map_or(0, <[u8]>::len);
        }
        self.records.reserve(body + MAX_VARINT_LEN);
        put_varlong(&mut self.records, body as i64);
        let start = self.records.len();
        self.records.put_u8(0);
        put_varlong(&mut self.records, timestamp_delta);
        put_varint(&mut self.records, offset_delta);
        put_varlong(&mut self.records, key_len);
        if let Some(k) = key {
            self.records.put_slice(k);
        }
        put_varlong(&mut self.records, value_len);
        write_value(&mut self.records);
        put_varlong(&mut self.records, headers.len() as i64);
        for (header_key, header_value) in headers {
            put_varlong(&mut self.records, header_key.len() as i64);
            self.records.put_slice(header_key);
            put_varlong(
                &mut self.records,
                header_value.map_or(-1, |v| v.len() as i64),
            );
            if let Some(v) = header_value {
                self.records.put_slice(v);
            }
        }
        debug_assert_eq!(
            self.records.len() - start,
            body,
            "record length prefix is exact"
        );
        self.count += 1;
    }

    /// Writes the batch (header, records compressed as `options` ask, CRC32C) and empties the
    /// builder for the next batch.
    pub fn finish(&mut self, options: &BatchOptions) -> Result<Bytes, BatchBuildError> {
        if self.count == 0 {
            return Err(BatchBuildError::Empty);
        }
        let header = BatchHeader {
            base_offset: options.base_offset,
            batch_length: 0,
            partition_leader_epoch: options.partition_leader_epoch,
            magic: 2,
            crc: 0,
            attributes: options.attributes(),
            last_offset_delta: self.count - 1,
            base_timestamp: self.first_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: options.producer_id,
            producer_epoch: options.producer_epoch,
            base_sequence: options.base_sequence,
            records_count: self.count,
        };
        let capacity = match options.compression {
            Compression::None => HEADER_SIZE + self.records.len(),
            _ => HEADER_SIZE + self.records.len() / 2 + 64,
        };
        let mut out = BytesMut::with_capacity(capacity);
        put_header(&mut out, &header);
        compress_records(options.compression, &self.records, &mut out)?;
        seal(&mut out);
        self.records.clear();
        self.count = 0;
        Ok(out.freeze())
    }
}

/// Compresses record bytes with `compression` (kafka-protocol's codecs), appending the result
/// to `out`; `Compression::None` appends them as they are.
pub fn compress_records(
    compression: Compression,
    records: &[u8],
    out: &mut BytesMut,
) -> Result<(), BatchBuildError> {
    let put = |buf: &mut BytesMut| {
        buf.put_slice(records);
        Ok(())
    };
    let compressed = match compression {
        Compression::None => {
            out.put_slice(records);
            return Ok(());
        }
        Compression::Gzip => Gzip::compress(out, put),
        Compression::Snappy => Snappy::compress(out, put),
        Compression::Lz4 => Lz4::compress(out, put),
        Compression::Zstd => Zstd::compress(out, put),
    };
    compressed.map_err(|e| BatchBuildError::Compress {
        compression,
        reason: format!("{e:#}"),
    })
}

/// Writes a v2 batch: `header`'s fields (its batch length and CRC are computed, not taken)
/// followed by `records` as they are.
pub fn encode_batch(header: &BatchHeader, records: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_SIZE + records.len());
    put_header(&mut out, header);
    out.put_slice(records);
    seal(&mut out);
    out.freeze()
}

/// Appends `header`'s fields with a zero batch length and CRC (see [`seal`]).
fn put_header(out: &mut BytesMut, header: &BatchHeader) {
    let start = out.len();
    out.put_i64(header.base_offset);
    out.put_i32(0);
    out.put_i32(header.partition_leader_epoch);
    out.put_i8(header.magic);
    out.put_u32(0);
    out.put_i16(header.attributes);
    out.put_i32(header.last_offset_delta);
    out.put_i64(header.base_timestamp);
    out.put_i64(header.max_timestamp);
    out.put_i64(header.producer_id);
    out.put_i16(header.producer_epoch);
    out.put_i32(header.base_sequence);
    out.put_i32(header.records_count);
    debug_assert_eq!(out.len() - start, HEADER_SIZE);
}

/// Fills in the batch length and the CRC32C of the one batch that `batch` holds.
fn seal(batch: &mut [u8]) {
    let batch_length = i32::try_from(batch.len() - LOG_OVERHEAD).unwrap_or(i32::MAX);
    batch[8..LOG_OVERHEAD].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_POS..]);
    batch[CRC_POS..ATTRIBUTES_POS].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{validate_records, BatchError, ValidationConfig};
    use kafka_protocol::records::{Compression as Codec, RecordBatchDecoder};

    const NOW: i64 = 1_700_000_000_000;

    fn codecs() -> [(Compression, Codec); 5] {
        [
            (Compression::None, Codec::None),
            (Compression::Gzip, Codec::Gzip),
            (Compression::Snappy, Codec::Snappy),
            (Compression::Lz4, Codec::Lz4),
            (Compression::Zstd, Codec::Zstd),
        ]
    }

    fn three_records(builder: &mut RecordBatchBuilder) {
        builder.push(NOW, Some(b"k0"), Some(b"v0"), &[]);
        builder.push(
            NOW + 5,
            None,
            Some(&[7; 300]),
            &[(b"h", Some(b"x")), (b"n", None)],
        );
        builder.push(NOW + 2, Some(b""), None, &[]);
    }

    #[test]
    fn batches_round_trip_through_the_validator_and_kafka_protocol_in_every_codec() {
        let mut builder = RecordBatchBuilder::new();
        for (compression, codec) in codecs() {
            three_records(&mut builder);
            let options = BatchOptions {
                compression,
                ..BatchOptions::default()
            };
            let bytes = builder.finish(&options).unwrap();
            assert!(builder.is_empty(), "finish empties the builder");

            let header = BatchHeader::parse(&bytes).unwrap();
            assert_eq!(header.total_size(), bytes.len());
            assert_eq!(header.crc, crc32c::crc32c(&bytes[ATTRIBUTES_POS..]));
            assert_eq!(header.compression(), compression);
            assert_eq!((header.records_count, header.last_offset_delta), (3, 2));
            assert_eq!(
                (header.base_timestamp, header.max_timestamp),
                (NOW, NOW + 5)
            );
            assert_eq!((header.producer_id, header.base_sequence), (-1, -1));
            let validated = validate_records(&bytes, &ValidationConfig::default(), NOW).unwrap();
            assert_eq!(validated.len(), 1);
            assert_eq!(validated[0].header, header);

            let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            assert_eq!(set.compression, codec);
            let r = &set.records;
            assert_eq!(r.len(), 3);
            assert_eq!(r[0].key.as_deref(), Some(&b"k0"[..]));
            assert_eq!(r[1].key, None);
            assert_eq!(r[1].value.as_deref(), Some(&[7; 300][..]));
            assert_eq!(r[1].headers.len(), 2);
            let h = kafka_protocol::protocol::StrBytes::from_static_str("h");
            assert_eq!(r[1].headers[&h].as_deref(), Some(&b"x"[..]));
            assert_eq!(r[2].value, None);
            let offsets: Vec<i64> = r.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [0, 1, 2]);
            let timestamps: Vec<i64> = r.iter().map(|r| r.timestamp).collect();
            assert_eq!(timestamps, [NOW, NOW + 5, NOW + 2]);
        }
    }

    #[test]
    fn options_set_the_header_fields_and_attributes() {
        let mut builder = RecordBatchBuilder::new();
        builder.push_with(NOW, Some(b"k"), 4, |v| v.copy_from_slice(b"fill"));
        let options = BatchOptions {
            base_offset: 42,
            partition_leader_epoch: 7,
            timestamp_type: TimestampType::LogAppendTime,
            transactional: true,
            control: true,
            producer_id: 1000,
            producer_epoch: 3,
            base_sequence: 9,
            ..BatchOptions::default()
        };
        let bytes = builder.finish(&options).unwrap();
        let header = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.partition_leader_epoch, 7);
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert!(header.is_transactional() && header.is_control());
        assert_eq!((header.producer_id, header.producer_epoch), (1000, 3));
        assert_eq!(header.base_sequence, 9);
        let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
        assert_eq!(set.records[0].value.as_deref(), Some(&b"fill"[..]));
        assert_eq!(set.records[0].offset, 42);
    }

    #[test]
    fn a_flipped_bit_fails_the_crc_check() {
        let mut builder = RecordBatchBuilder::new();
        three_records(&mut builder);
        let mut bytes = builder.finish(&BatchOptions::default()).unwrap().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            validate_records(&Bytes::from(bytes), &ValidationConfig::default(), NOW),
            Err(BatchError::CorruptMessage(_))
        ));
    }

    #[test]
    fn an_empty_builder_writes_no_batch() {
        assert_eq!(
            RecordBatchBuilder::new().finish(&BatchOptions::default()),
            Err(BatchBuildError::Empty)
        );
    }

    #[test]
    fn encode_batch_computes_length_and_crc_from_a_header() {
        let mut builder = RecordBatchBuilder::new();
        three_records(&mut builder);
        let original = builder.finish(&BatchOptions::default()).unwrap();
        let header = BatchHeader::parse(&original).unwrap();
        let rebuilt = encode_batch(
            &BatchHeader {
                batch_length: 0,
                crc: 0,
                ..header
            },
            &original[HEADER_SIZE..],
        );
        assert_eq!(rebuilt, original);
    }
}
