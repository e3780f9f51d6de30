//! Record batches as the tools read them — from Fetch responses (`consume`) or from segment
//! files (`log dump`): batch boundaries and CRCs from the storage crate's [`BatchHeader`], records
//! decoded by kafka-protocol's decoder and decompressed within a bound by the storage crate's
//! [`decode_batch`], and keys, values and headers turned into text.

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Record;
use sluice_storage::decompress::MAX_DECOMPRESSION_LIMIT;
use sluice_storage::{decode_batch, BatchHeader, TimestampType};

/// The first byte a batch's CRC covers (its attributes).
const CRC_START: usize = 21;

/// The whole batches at the start of `data`, each with its header. A partial batch at the end
/// (a fetch response may cut one off) is left out; a batch whose header does not parse is an
/// error.
pub fn whole_batches(data: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= sluice_storage::batch::HEADER_SIZE {
        let header = BatchHeader::parse(&data[pos..]).map_err(|e| e.to_string())?;
        let end = pos + header.total_size();
        if end > data.len() {
            break;
        }
        out.push((header, data.slice(pos..end)));
        pos = end;
    }
    Ok(out)
}

/// Whether the CRC-32C stored in the header of `batch` (a whole batch) matches its contents.
pub fn crc_valid(header: &BatchHeader, batch: &[u8]) -> bool {
    batch.len() >= CRC_START && crc32c::crc32c(&batch[CRC_START..]) == header.crc
}

/// The records of one whole batch, decompressed (a batch whose records would take more than
/// [`MAX_DECOMPRESSION_LIMIT`] bytes, the most any topic of a broker accepts, is an error
/// rather than a decompression bomb). In a LogAppendTime batch every record gets the batch's
/// max timestamp, as Kafka's clients report it.
pub fn decode_records(header: &BatchHeader, batch: &Bytes) -> Result<Vec<Record>, String> {
    let mut records = decode_batch(batch, MAX_DECOMPRESSION_LIMIT)
        .map_err(|e| format!("cannot decode the records: {e}"))?
        .records;
    if header.timestamp_type() == TimestampType::LogAppendTime {
        for r in &mut records {
            r.timestamp = header.max_timestamp;
        }
    }
    Ok(records)
}

/// Bytes as text: `null` for none, `0x…` hex digits with `hex`, else UTF-8 (invalid sequences
/// replaced by U+FFFD).
pub fn bytes_text(bytes: Option<&[u8]>, hex: bool) -> String {
    match bytes {
        None => "null".to_string(),
        Some(b) if hex => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("0x");
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            s
        }
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Record headers as `k=v,k2=v2` (values as [`bytes_text`]); empty when there are none.
pub fn headers_text(headers: &IndexMap<StrBytes, Option<Bytes>>, hex: bool) -> String {
    let parts: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{}={}", k.as_str(), bytes_text(v.as_deref(), hex)))
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::produce::batch::encode;
    use crate::tools::produce::input::split_line;
    use bytes::BytesMut;
    use sluice_storage::Compression;

    /// One gzip batch of `n` records `k<i>:v<i>`, each with the header `h=x`.
    fn batch(n: i64) -> Bytes {
        let lines: Vec<_> = (0..n)
            .map(|i| split_line(format!("k{i}:v{i}").as_bytes(), Some(b":")))
            .collect();
        let headers = [("h".to_string(), "x".to_string())];
        encode(&lines, &headers, 1_000, Compression::Gzip).unwrap()
    }

    #[test]
    fn splits_whole_batches_and_leaves_a_partial_one_out() {
        let one = batch(3);
        let mut two = BytesMut::new();
        two.extend_from_slice(&one);
        two.extend_from_slice(&one[..one.len() - 1]);
        let batches = whole_batches(&two.freeze()).unwrap();
        assert_eq!(batches.len(), 1);
        let (header, bytes) = &batches[0];
        assert_eq!(header.records_count, 3);
        assert!(crc_valid(header, bytes));
        let records = decode_records(header, bytes).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(bytes_text(records[2].value.as_deref(), false), "v2");
        assert_eq!(headers_text(&records[0].headers, false), "h=x");
        assert_eq!(headers_text(&IndexMap::new(), false), "");
    }

    #[test]
    fn a_flipped_byte_fails_the_crc() {
        let mut b = BytesMut::from(&batch(2)[..]);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let (header, bytes) = whole_batches(&b.freeze()).unwrap().remove(0);
        assert!(!crc_valid(&header, &bytes));
    }

    #[test]
    fn bytes_as_text_or_hex() {
        assert_eq!(bytes_text(None, false), "null");
        assert_eq!(bytes_text(Some(b"hi"), false), "hi");
        assert_eq!(bytes_text(Some(&[0, 0xff]), true), "0x00ff");
        assert_eq!(bytes_text(Some(&[b'a', 0xff]), false), "a\u{fffd}");
    }
}
