//! Kafka v2 record batches: header parsing, validation of produce data, and offset assignment by
//! patching the header in place (the records themselves are never copied or re-encoded).

use bytes::Bytes;

use crate::decompress::{decompress_records, decompression_limit};
use crate::records_walk::walk_records;

/// Size of the v2 batch header; the records start at this byte.
pub const HEADER_SIZE: usize = 61;
/// Bytes before `batchLength`'s coverage starts: baseOffset (8) and batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// Position of the magic byte (the same in every message format version).
const MAGIC_POS: usize = 16;
/// Position of the CRC; the CRC covers everything from `ATTRIBUTES_POS` to the end.
pub(crate) const CRC_POS: usize = 17;
/// Position of the attributes, the first byte covered by the CRC.
pub(crate) const ATTRIBUTES_POS: usize = 21;
/// Position of `maxTimestamp`.
const MAX_TIMESTAMP_POS: usize = 35;
/// Attribute bit: the timestamps are LogAppendTime.
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
/// Attribute bit: transactional batch.
pub(crate) const TRANSACTIONAL_BIT: i16 = 1 << 4;
/// Attribute bit: control batch (transaction markers).
pub(crate) const CONTROL_BIT: i16 = 1 << 5;

/// Why a record batch was refused. Each variant maps to one Kafka error code in the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Torn, truncated, badly sized or CRC-failing data (Kafka's CORRUPT_MESSAGE).
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    /// Message format v0/v1 (or an unknown magic); only v2 is accepted.
    #[error("unsupported record batch magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),
    /// The batch is larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes ({max})")]
    MessageTooLarge {
        /// Total batch size in bytes.
        size: usize,
        /// The configured limit.
        max: u32,
    },
    /// The batch is well formed but its contents break a rule (Kafka's INVALID_RECORD).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    /// Records without a key in a batch for a compacted topic (Kafka's INVALID_RECORD, with one
    /// record error per index).
    #[error("a compacted topic cannot accept records without a key (records {batch_indexes:?} of the batch have none)")]
    RecordsWithoutKey {
        /// Positions of the unkeyed records within their batch (0-based).
        batch_indexes: Vec<i32>,
    },
    /// A CreateTime timestamp outside the accepted window (Kafka's INVALID_TIMESTAMP).
    #[error("timestamp {timestamp} is out of range [{min}, {max}]")]
    InvalidTimestamp {
        /// The batch's maxTimestamp.
        timestamp: i64,
        /// Earliest accepted timestamp.
        min: i64,
        /// Latest accepted timestamp.
        max: i64,
    },
}

/// Compression codec of a batch (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Uncompressed records.
    None,
    /// gzip.
    Gzip,
    /// Snappy (raw, or in xerial framing as Kafka's Java clients write it).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl From<kafka_protocol::records::Compression> for Compression {
    /// The same codec under kafka-protocol's name (its encoder and decoder are what clients
    /// and tests use).
    fn from(codec: kafka_protocol::records::Compression) -> Self {
        use kafka_protocol::records::Compression as Codec;
        match codec {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

/// Meaning of a batch's timestamps, and the topic setting `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appending (the batch's maxTimestamp applies to every record).
    LogAppendTime,
}

/// The fixed 61-byte header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch of the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Message format version (always 2 once parsed).
    pub magic: i8,
    /// CRC32C of bytes 21..end.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Last record's offset minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (or the LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the header at the start of `buf`. Checks only what is needed to trust the header's
    /// own fields: enough bytes, magic 2, a sane `batchLength` and a known compression codec.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() <= MAGIC_POS {
            return Err(BatchError::CorruptMessage(format!(
                "{} bytes left, too short for a batch header",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_POS] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if buf.len() < HEADER_SIZE {
            return Err(BatchError::CorruptMessage(format!(
                "{} bytes left, a v2 batch header needs {HEADER_SIZE}",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: be_i32(buf, CRC_POS) as u32,
            attributes: be_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        };
        if header.batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::CorruptMessage(format!(
                "batch length {} is below the minimum {MIN_BATCH_LENGTH}",
                header.batch_length
            )));
        }
        if header.last_offset_delta < 0 {
            return Err(BatchError::CorruptMessage(format!(
                "negative last offset delta {}",
                header.last_offset_delta
            )));
        }
        if header.compression_bits() > 4 {
            return Err(BatchError::CorruptMessage(format!(
                "unknown compression codec {}",
                header.compression_bits()
            )));
        }
        Ok(header)
    }

    fn compression_bits(&self) -> i16 {
        self.attributes & 0x07
    }

    /// Size of the whole batch in bytes, including baseOffset and batchLength.
    pub fn total_size(&self) -> usize {
        // batch_length >= MIN_BATCH_LENGTH once parsed.
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Offset following the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compression codec.
    pub fn compression(&self) -> Compression {
        match self.compression_bits() {
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Meaning of the batch's timestamps.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Sequence number of the last record: `base_sequence + last_offset_delta`, wrapping past
    /// `i32::MAX` to 0 as Kafka does; -1 when the batch carries no sequence.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
pub(crate) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence < 0 {
        return sequence;
    }
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Topic-level settings that validation enforces (Kafka's names in the field docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationConfig {
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: how far in the past a CreateTime may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far in the future a CreateTime may be.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` contains `compact`: every record must have a key. Checking it decodes
    /// the records (decompressing compressed batches, within [`Self::decompression_limit`]),
    /// so it costs only on compacted topics.
    pub require_keys: bool,
}

impl ValidationConfig {
    /// The most bytes a batch's records may take once decompressed on this topic
    /// ([`decompression_limit`] of `max.message.bytes`); a batch beyond it is refused as
    /// corrupt.
    pub fn decompression_limit(&self) -> usize {
        decompression_limit(self.max_message_bytes)
    }
}

impl Default for ValidationConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        ValidationConfig {
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            require_keys: false,
        }
    }
}

/// A batch that passed validation (of a produce request, or of a follower's fetch response):
/// its header and its bytes (a zero-copy slice of the request's records).
#[derive(Debug, Clone)]
pub struct ValidatedBatch {
    /// The parsed header, as sent by the client.
    pub header: BatchHeader,
    /// The whole batch, `header.total_size()` bytes.
    pub bytes: Bytes,
}

/// Splits a produce request's `records` into batches and validates each one (see the module
/// docs of the variants of [`BatchError`] for what is checked). Either every batch is valid
/// or an error is returned, so that nothing of a bad request is ever written.
pub fn validate_records(
    records: &Bytes,
    cfg: &ValidationConfig,
    now_ms: i64,
) -> Result<Vec<ValidatedBatch>, BatchError> {
    let mut batches = Vec::new();
    let mut pos = 0usize;
    while pos < records.len() {
        let rest = &records[pos..];
        let header = BatchHeader::parse(rest)?;
        let size = header.total_size();
        if size > cfg.max_message_bytes as usize {
            return Err(BatchError::MessageTooLarge {
                size,
                max: cfg.max_message_bytes,
            });
        }
        if rest.len() < size {
            return Err(BatchError::CorruptMessage(format!(
                "truncated batch: {size} bytes declared, {} present",
                rest.len()
            )));
        }
        let bytes = records.slice(pos..pos + size);
        validate_batch(&header, &bytes, cfg, now_ms)?;
        batches.push(ValidatedBatch { header, bytes });
        pos += size;
    }
    if batches.is_empty() {
        return Err(BatchError::InvalidRecord("no record batch".into()));
    }
    Ok(batches)
}

/// Splits the records a leader's Fetch response carried for a partition into whole batches,
/// validated as Kafka's follower does (`appendAsFollower`): a sane size, magic 2, a known
/// codec and the CRC32C, and offsets that fit an `i64`. Nothing else is checked (a follower
/// stores what its leader stored: empty batches and record counts below the offset span left
/// by compaction, control batches, any timestamp). A truncated batch at the end (a leader
/// cuts its answer at the fetch's byte limit) is left out; no batch at all is not an error.
/// Either every whole batch is valid or an error is returned.
pub fn validate_replicated_records(records: &Bytes) -> Result<Vec<ValidatedBatch>, BatchError> {
    let mut batches = Vec::new();
    let mut pos = 0usize;
    while records.len() - pos >= LOG_OVERHEAD {
        let rest = &records[pos..];
        let batch_length = be_i32(rest, 8);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::CorruptMessage(format!(
                "batch length {batch_length} is below the minimum {MIN_BATCH_LENGTH}"
            )));
        }
        let size = batch_length as usize + LOG_OVERHEAD;
        if rest.len() < size {
            break;
        }
        let bytes = records.slice(pos..pos + size);
        let header = BatchHeader::parse(&bytes)?;
        let computed = crc32c::crc32c(&bytes[ATTRIBUTES_POS..]);
        if computed != header.crc {
            return Err(BatchError::CorruptMessage(format!(
                "CRC mismatch in the batch at offset {}: stored {:#010x}, computed {computed:#010x}",
                header.base_offset, header.crc
            )));
        }
        let offsets_fit = header.base_offset >= 0
            && header
                .base_offset
                .checked_add(i64::from(header.last_offset_delta) + 1)
                .is_some();
        if !offsets_fit || header.records_count < 0 {
            return Err(BatchError::CorruptMessage(format!(
                "batch at offset {} with last offset delta {} and {} records",
                header.base_offset, header.last_offset_delta, header.records_count
            )));
        }
        batches.push(ValidatedBatch { header, bytes });
        pos += size;
    }
    Ok(batches)
}

fn validate_batch(
    header: &BatchHeader,
    bytes: &Bytes,
    cfg: &ValidationConfig,
    now_ms: i64,
) -> Result<(), BatchError> {
    let computed = crc32c::crc32c(&bytes[ATTRIBUTES_POS..]);
    if computed != header.crc {
        return Err(BatchError::CorruptMessage(format!(
            "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    if header.records_count < 1 {
        return Err(BatchError::InvalidRecord(format!(
            "record count {} (a batch needs at least one record)",
            header.records_count
        )));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.records_count) - 1 {
        return Err(BatchError::InvalidRecord(format!(
            "last offset delta {} does not match record count {}",
            header.last_offset_delta, header.records_count
        )));
    }
    if header.is_control() {
        return Err(BatchError::InvalidRecord(
            "control batches may not be produced by clients".into(),
        ));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return Err(BatchError::InvalidRecord(
            "transactional batch without a producer id".into(),
        ));
    }
    let unkeyed = if header.compression() == Compression::None {
        walk_records(&bytes[HEADER_SIZE..], header.records_count)
            .map_err(BatchError::InvalidRecord)?
    } else if cfg.require_keys {
        unkeyed_compressed_records(header, bytes, cfg.decompression_limit())?
    } else {
        Vec::new()
    };
    if cfg.require_keys && !unkeyed.is_empty() {
        return Err(BatchError::RecordsWithoutKey {
            batch_indexes: unkeyed,
        });
    }
    if cfg.timestamp_type == TimestampType::CreateTime {
        let min = now_ms.saturating_sub(cfg.timestamp_before_max_ms);
        let max = now_ms.saturating_add(cfg.timestamp_after_max_ms);
        if header.max_timestamp < min || header.max_timestamp > max {
            return Err(BatchError::InvalidTimestamp {
                timestamp: header.max_timestamp,
                min,
                max,
            });
        }
    }
    Ok(())
}

/// Decompresses a compressed batch (refusing records that would take more than `limit` bytes
/// as corrupt, as Kafka's CORRUPT_MESSAGE covers a record that "exceeds the valid size"), checks
/// the framing of its records and returns the indexes of those without a key.
fn unkeyed_compressed_records(
    header: &BatchHeader,
    batch: &Bytes,
    limit: usize,
) -> Result<Vec<i32>, BatchError> {
    let plain = decompress_records(header.compression(), &batch[HEADER_SIZE..], limit)
        .map_err(|e| BatchError::CorruptMessage(format!("cannot decompress the records: {e}")))?;
    walk_records(&plain, header.records_count).map_err(BatchError::InvalidRecord)
}

/// The first 61 bytes of `batch` as they go to disk: `baseOffset` and `partitionLeaderEpoch`
/// rewritten (both outside the CRC), and, for LogAppendTime, the timestamp-type bit and
/// `maxTimestamp` set with the CRC recomputed over the patched header and the untouched records.
/// The log writes this prefix followed by `batch.bytes[61..]`, so records are never copied.
pub fn patched_prefix(
    batch: &ValidatedBatch,
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> [u8; HEADER_SIZE] {
    debug_assert!(batch.bytes.len() >= HEADER_SIZE);
    let mut prefix = [0u8; HEADER_SIZE];
    prefix.copy_from_slice(&batch.bytes[..HEADER_SIZE]);
    prefix[0..8].copy_from_slice(&base_offset.to_be_bytes());
    prefix[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(time) = log_append_time {
        let attributes = batch.header.attributes | TIMESTAMP_TYPE_BIT;
        prefix[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
        prefix[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&time.to_be_bytes());
        let crc = crc32c::crc32c(&prefix[ATTRIBUTES_POS..]);
        let crc = crc32c::crc32c_append(crc, &batch.bytes[HEADER_SIZE..]);
        prefix[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        compress_with, encode_batch, encode_with_keys, with_records, NO_PRODUCER,
    };
    use kafka_protocol::records::Compression as Codec;

    const NOW: i64 = 1_700_000_000_000;

    fn cfg() -> ValidationConfig {
        ValidationConfig::default()
    }

    fn reseal(bytes: &mut [u8]) {
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_POS..]);
        bytes[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn parses_headers_of_every_codec() {
        for (codec, expected) in [
            (Codec::None, Compression::None),
            (Codec::Gzip, Compression::Gzip),
            (Codec::Snappy, Compression::Snappy),
            (Codec::Lz4, Compression::Lz4),
            (Codec::Zstd, Compression::Zstd),
        ] {
            let bytes = encode_batch(4, NOW, codec, (9, 2, 10));
            let batches = validate_records(&bytes, &cfg(), NOW).unwrap();
            assert_eq!(batches.len(), 1);
            let h = batches[0].header;
            assert_eq!(h.compression(), expected);
            assert_eq!((h.records_count, h.last_offset_delta), (4, 3));
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (9, 2, 10)
            );
            assert_eq!(h.last_sequence(), 13);
            assert_eq!(h.max_timestamp, NOW + 3);
            assert_eq!(h.total_size(), bytes.len());
            assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
            assert!(!h.is_transactional() && !h.is_control());
        }
    }

    #[test]
    fn last_sequence_wraps() {
        let bytes = encode_batch(3, NOW, Codec::None, (1, 0, i32::MAX - 1));
        let h = BatchHeader::parse(&bytes).unwrap();
        assert_eq!(h.last_sequence(), 0);
        assert_eq!(increment_sequence(-1, 5), -1);
    }

    #[test]
    fn several_batches_are_split_zero_copy() {
        let mut all = encode_batch(2, NOW, Codec::None, NO_PRODUCER).to_vec();
        all.extend_from_slice(&encode_batch(3, NOW, Codec::Lz4, NO_PRODUCER));
        let all = Bytes::from(all);
        let batches = validate_records(&all, &cfg(), NOW).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].bytes.as_ptr(), all.as_ptr());
        assert_eq!(batches[0].bytes.len() + batches[1].bytes.len(), all.len());
    }

    #[test]
    fn rejects_bad_batches() {
        let good = encode_batch(3, NOW, Codec::None, NO_PRODUCER).to_vec();
        let check = |bytes: Vec<u8>, cfg: &ValidationConfig| {
            validate_records(&Bytes::from(bytes), cfg, NOW)
        };

        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(
            matches!(check(bad_crc, &cfg()), Err(BatchError::CorruptMessage(m)) if m.contains("CRC"))
        );

        let mut magic1 = good.clone();
        magic1[MAGIC_POS] = 1;
        assert_eq!(
            check(magic1, &cfg()).unwrap_err(),
            BatchError::UnsupportedMagic(1)
        );
        assert_eq!(
            check(good[..20].to_vec(), &cfg()).unwrap_err(),
            BatchError::CorruptMessage("20 bytes left, a v2 batch header needs 61".into())
        );

        let mut truncated = good.clone();
        truncated.extend_from_slice(&good[..good.len() - 1]);
        assert!(
            matches!(check(truncated, &cfg()), Err(BatchError::CorruptMessage(m)) if m.contains("truncated"))
        );

        let mut wrong_count = good.clone();
        wrong_count[57..61].copy_from_slice(&4i32.to_be_bytes());
        reseal(&mut wrong_count);
        assert!(matches!(
            check(wrong_count, &cfg()),
            Err(BatchError::InvalidRecord(_))
        ));

        let mut both_wrong = good.clone();
        both_wrong[57..61].copy_from_slice(&4i32.to_be_bytes());
        both_wrong[23..27].copy_from_slice(&3i32.to_be_bytes());
        reseal(&mut both_wrong);
        assert!(
            matches!(check(both_wrong, &cfg()), Err(BatchError::InvalidRecord(m)) if m.contains("record"))
        );

        let mut control = good.clone();
        control[22] |= 1 << 5;
        reseal(&mut control);
        assert!(matches!(
            check(control, &cfg()),
            Err(BatchError::InvalidRecord(_))
        ));

        let small = ValidationConfig {
            max_message_bytes: 100,
            ..cfg()
        };
        assert!(matches!(
            check(good.clone(), &small),
            Err(BatchError::MessageTooLarge { max: 100, .. })
        ));

        let strict = ValidationConfig {
            timestamp_before_max_ms: 1000,
            ..cfg()
        };
        let old = encode_batch(1, NOW - 5000, Codec::None, NO_PRODUCER).to_vec();
        assert!(matches!(
            check(old.clone(), &strict),
            Err(BatchError::InvalidTimestamp { .. })
        ));
        let future = encode_batch(1, NOW + 3_600_001, Codec::None, NO_PRODUCER).to_vec();
        assert!(matches!(
            check(future, &cfg()),
            Err(BatchError::InvalidTimestamp { .. })
        ));
        let append_time = ValidationConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..strict
        };
        assert!(
            check(old, &append_time).is_ok(),
            "LogAppendTime ignores client timestamps"
        );
        assert!(matches!(
            check(Vec::new(), &cfg()),
            Err(BatchError::InvalidRecord(_))
        ));
    }

    #[test]
    fn replicated_records_keep_whole_batches_and_drop_a_truncated_tail() {
        let mut all = encode_batch(2, NOW, Codec::None, NO_PRODUCER).to_vec();
        all[..8].copy_from_slice(&40i64.to_be_bytes());
        let second = encode_batch(3, NOW - 10_000_000, Codec::Zstd, (4, 0, 0)).to_vec();
        let whole = all.len() + second.len();
        all.extend_from_slice(&second);
        all.extend_from_slice(&second);
        for cut in [
            whole,
            whole + 1,
            whole + 11,
            whole + 12,
            whole + 61,
            all.len() - 1,
        ] {
            let batches = validate_replicated_records(&Bytes::from(all[..cut].to_vec())).unwrap();
            assert_eq!(batches.len(), 2, "cut at {cut}");
            assert_eq!(batches[0].header.base_offset, 40);
            assert_eq!(batches[1].bytes.len(), second.len());
        }
        assert_eq!(
            validate_replicated_records(&Bytes::from(all.clone()))
                .unwrap()
                .len(),
            3
        );
        assert!(validate_replicated_records(&Bytes::new())
            .unwrap()
            .is_empty());
        assert!(
            validate_replicated_records(&Bytes::from(all[..30].to_vec()))
                .unwrap()
                .is_empty()
        );

        let check = |bytes: Vec<u8>| validate_replicated_records(&Bytes::from(bytes));
        let mut bad_crc = all.clone();
        bad_crc[whole - 1] ^= 1;
        assert!(matches!(check(bad_crc), Err(BatchError::CorruptMessage(m)) if m.contains("CRC")));
        let mut magic1 = all.clone();
        magic1[MAGIC_POS] = 1;
        assert_eq!(check(magic1).unwrap_err(), BatchError::UnsupportedMagic(1));
        let mut short = all.clone();
        short[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(check(short), Err(BatchError::CorruptMessage(_))));
        let mut negative = all.clone();
        negative[..8].copy_from_slice(&(-5i64).to_be_bytes());
        assert!(matches!(
            check(negative),
            Err(BatchError::CorruptMessage(_))
        ));
        let mut overflowing = all;
        overflowing[..8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
        assert!(matches!(
            check(overflowing),
            Err(BatchError::CorruptMessage(_))
        ));
    }

    #[test]
    fn compacted_topics_require_keys() {
        let compacted = ValidationConfig {
            require_keys: true,
            ..cfg()
        };
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let mixed = encode_with_keys(&[Some("a"), None, Some(""), None], NOW, codec);
            assert!(validate_records(&mixed, &cfg(), NOW).is_ok(), "{codec:?}");
            assert_eq!(
                validate_records(&mixed, &compacted, NOW).unwrap_err(),
                BatchError::RecordsWithoutKey {
                    batch_indexes: vec![1, 3]
                },
                "{codec:?}"
            );
            let keyed = encode_batch(3, NOW, codec, NO_PRODUCER);
            assert!(
                validate_records(&keyed, &compacted, NOW).is_ok(),
                "{codec:?}"
            );
            // A bad second batch rejects the whole request.
            let mut both = keyed.to_vec();
            both.extend_from_slice(&encode_with_keys(&[None], NOW, codec));
            assert!(matches!(
                validate_records(&Bytes::from(both), &compacted, NOW),
                Err(BatchError::RecordsWithoutKey { batch_indexes }) if batch_indexes == vec![0]
            ));
        }
    }

    #[test]
    fn compacted_topics_refuse_compressed_records_beyond_the_limit_or_malformed() {
        let compacted = ValidationConfig {
            require_keys: true,
            ..cfg()
        };
        let limit = compacted.decompression_limit();
        assert_eq!(limit, 64 * 1_048_588);
        let zeros = vec![0u8; limit + 1];
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let header = encode_batch(1, NOW, codec, NO_PRODUCER);
            // Snappy expands at most 22 times, so a snappy batch within max.message.bytes never
            // reaches 64 times it (decompress.rs tests snappy against smaller limits).
            if codec != Codec::Snappy {
                let bomb = with_records(&header, &compress_with(codec, &zeros));
                assert!(
                    bomb.len() <= compacted.max_message_bytes as usize,
                    "{codec:?}"
                );
                assert!(
                    matches!(
                        validate_records(&bomb, &compacted, NOW),
                        Err(BatchError::CorruptMessage(m)) if m.contains("exceed")
                    ),
                    "{codec:?}"
                );
                // Other topics store the batch as it came, without looking inside.
                assert!(validate_records(&bomb, &cfg(), NOW).is_ok(), "{codec:?}");
            }

            let garbage = with_records(&header, b"not compressed at all, not at all");
            assert!(
                matches!(
                    validate_records(&garbage, &compacted, NOW),
                    Err(BatchError::CorruptMessage(_))
                ),
                "{codec:?}"
            );
            let not_records = with_records(&header, &compress_with(codec, &[0x55; 1000]));
            assert!(
                matches!(
                    validate_records(&not_records, &compacted, NOW),
                    Err(BatchError::InvalidRecord(_))
                ),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn patched_prefix_rewrites_offsets_and_log_append_time() {
        for codec in [Codec::None, Codec::Gzip, Codec::Zstd] {
            let bytes = encode_batch(5, NOW, codec, NO_PRODUCER);
            let batch = validate_records(&bytes, &cfg(), NOW).unwrap().remove(0);
            let prefix = patched_prefix(&batch, 1234, 7, None);
            let h = BatchHeader::parse(&prefix).unwrap();
            assert_eq!(
                (h.base_offset, h.partition_leader_epoch, h.crc),
                (1234, 7, batch.header.crc)
            );

            let prefix = patched_prefix(&batch, 99, 3, Some(NOW + 42));
            let mut written = prefix.to_vec();
            written.extend_from_slice(&bytes[HEADER_SIZE..]);
            let revalidated = validate_records(&Bytes::from(written.clone()), &cfg(), NOW).unwrap();
            let h = revalidated[0].header;
            assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
            assert_eq!((h.base_offset, h.max_timestamp), (99, NOW + 42));
            let decoded =
                kafka_protocol::records::RecordBatchDecoder::decode(&mut Bytes::from(written))
                    .unwrap();
            assert_eq!(decoded.records.len(), 5);
            assert_eq!(decoded.records[4].offset, 103);
        }
    }
}
