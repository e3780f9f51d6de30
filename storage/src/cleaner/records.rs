//! The records inside a v2 batch, as the cleaner needs them: bounded decompression
//! ([`decompress_records`]) and a view of each record
//! (offset, key, null value) that keeps its encoded bytes, so that a retained record is copied
//! into the cleaned batch unchanged.

use std::ops::Range;

use bytes::Bytes;

use crate::batch::Compression;
use crate::decompress::{decompress_records, DecompressError};
use crate::wire::varint::{put_varlong, read_varint, read_varlong};

/// One record of a batch, located in the batch's uncompressed record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordView {
    /// The record's offset delta (its offset minus the batch's base offset).
    pub offset_delta: i32,
    /// The record's timestamp delta (its timestamp minus the batch's base timestamp).
    pub timestamp_delta: i64,
    /// Where the key is, `None` for a null key.
    pub key: Option<Range<usize>>,
    /// Whether the value is present (a null value makes the record a tombstone).
    pub has_value: bool,
    /// The whole record, its length prefix included.
    pub encoded: Range<usize>,
    /// The record's attributes byte.
    pub attributes: u8,
    /// Everything after the offset delta (key, value, headers).
    pub tail: Range<usize>,
}

/// The record bytes of a batch compressed with `compression`, decompressed within `limit`
/// bytes (uncompressed records are returned as they are, without a copy).
pub(crate) fn decompress(
    compression: Compression,
    data: Bytes,
    limit: usize,
) -> Result<Bytes, DecompressError> {
    match compression {
        Compression::None => Ok(data),
        _ => decompress_records(compression, &data, limit),
    }
}

/// Reads a nullable varint-length-prefixed byte string at `pos`; `None` for null (-1).
fn nullable_bytes(buf: &[u8], pos: &mut usize, what: &str) -> Result<Option<Range<usize>>, String> {
    let len = read_varint(buf, pos).map_err(|_| format!("bad {what} length"))?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| format!("negative {what} length {len}"))?;
    let start = *pos;
    if buf.len() - start < len {
        return Err(format!("{what} overruns its record"));
    }
    *pos += len;
    Ok(Some(start..start + len))
}

/// Parses `count` records from `data` (the uncompressed records of a batch).
pub(crate) fn parse_records(data: &[u8], count: i32) -> Result<Vec<RecordView>, String> {
    // A record takes at least 7 bytes (length, attributes, timestamp and offset deltas, key
    // and value lengths, header count): the count read from disk reserves no more than that.
    let capacity = usize::try_from(count).unwrap_or(0).min(data.len() / 7);
    let mut records = Vec::with_capacity(capacity);
    let mut pos = 0usize;
    for i in 0..count {
        let start = pos;
        let len = read_varint(data, &mut pos).map_err(|_| format!("record {i}: bad length"))?;
        let len = usize::try_from(len).map_err(|_| format!("record {i}: negative length"))?;
        let end = pos
            .checked_add(len)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| format!("record {i} overruns the batch"))?;
        let body = &data[..end];
        let attributes = *body
            .get(pos)
            .ok_or_else(|| format!("record {i} is empty"))?;
        pos += 1;
        let timestamp_delta =
            read_varlong(body, &mut pos).map_err(|_| format!("record {i}: bad timestamp"))?;
        let offset_delta =
            read_varint(body, &mut pos).map_err(|_| format!("record {i}: bad offset delta"))?;
        let tail_start = pos;
        let key = nullable_bytes(body, &mut pos, "key").map_err(|e| format!("record {i}: {e}"))?;
        let has_value = nullable_bytes(body, &mut pos, "value")
            .map_err(|e| format!("record {i}: {e}"))?
            .is_some();
        records.push(RecordView {
            offset_delta,
            timestamp_delta,
            key,
            has_value,
            encoded: start..end,
            attributes,
            tail: tail_start..end,
        });
        pos = end;
    }
    if pos != data.len() {
        return Err(format!(
            "{} bytes after the {count} declared records",
            data.len() - pos
        ));
    }
    Ok(records)
}

/// Appends `record` (from `data`) to `out` with its timestamp delta rebased by `shift`
/// (the old base timestamp minus the new one), so that its timestamp is unchanged under a new
/// base timestamp. A zero shift copies the record's bytes as they are.
pub(crate) fn put_record(out: &mut Vec<u8>, data: &[u8], record: &RecordView, shift: i64) {
    if shift == 0 {
        out.extend_from_slice(&data[record.encoded.clone()]);
        return;
    }
    let mut body = Vec::with_capacity(record.encoded.len() + 8);
    body.push(record.attributes);
    put_varlong(&mut body, record.timestamp_delta + shift);
    put_varlong(&mut body, i64::from(record.offset_delta));
    body.extend_from_slice(&data[record.tail.clone()]);
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::encode_with_keys;
    use crate::wire::compress_records;
    use bytes::BytesMut;
    use kafka_protocol::records::{Compression as Codec, RecordBatchDecoder};

    #[test]
    fn round_trips_every_codec_and_parses_records() {
        for (codec, ours) in [
            (Codec::None, Compression::None),
            (Codec::Gzip, Compression::Gzip),
            (Codec::Snappy, Compression::Snappy),
            (Codec::Lz4, Compression::Lz4),
            (Codec::Zstd, Compression::Zstd),
        ] {
            let batch = encode_with_keys(&[Some("a"), None, Some("bc")], 1000, codec);
            let plain = decompress(ours, batch.slice(61..), 1 << 20).unwrap();
            let records = parse_records(&plain, 3).unwrap();
            assert_eq!(records.len(), 3);
            assert_eq!(records[0].key.clone().map(|k| &plain[k]), Some(&b"a"[..]));
            assert_eq!(records[1].key, None);
            assert_eq!(records[2].offset_delta, 2);
            assert_eq!(records[2].timestamp_delta, 2);
            assert!(records.iter().all(|r| r.has_value));
            assert!(parse_records(&plain, 2).is_err(), "trailing record");
            assert!(parse_records(&plain, 4).is_err(), "missing record");

            let mut out = BytesMut::new();
            compress_records(ours, &plain, &mut out).unwrap();
            assert_eq!(decompress(ours, out.freeze(), plain.len()).unwrap(), plain);
            if ours != Compression::None {
                assert!(matches!(
                    decompress(ours, batch.slice(61..), plain.len() - 1),
                    Err(DecompressError::ExceedsLimit { .. })
                ));
            }
        }
    }

    #[test]
    fn rebased_records_keep_their_timestamps() {
        let batch = encode_with_keys(&[Some("a"), Some("b")], 5000, Codec::None);
        let plain = batch.slice(61..);
        let records = parse_records(&plain, 2).unwrap();
        let mut rebased = Vec::new();
        for r in &records {
            put_record(&mut rebased, &plain, r, 5000 - 9_000_000);
        }
        let reparsed = parse_records(&rebased, 2).unwrap();
        for (old, new) in records.iter().zip(&reparsed) {
            assert_eq!(new.timestamp_delta, old.timestamp_delta + 5000 - 9_000_000);
            assert_eq!(new.offset_delta, old.offset_delta);
            assert_eq!(&rebased[new.tail.clone()], &plain[old.tail.clone()]);
        }
        let mut copied = Vec::new();
        put_record(&mut copied, &plain, &records[1], 0);
        assert_eq!(&copied[..], &plain[records[1].encoded.clone()]);
        let _ = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
    }
}
