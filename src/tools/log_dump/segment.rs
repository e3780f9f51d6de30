//! `.log` segments: the batches back to back, each checked against its CRC, read sequentially
//! (a segment can be a gigabyte: one batch is in memory at a time). A torn or unparsable tail
//! ends the walk and is reported.

use crate::tools::records::crc_valid;
use bytes::Bytes;
use sluice_storage::batch::HEADER_SIZE;
use sluice_storage::{BatchHeader, Compression, TimestampType};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// One batch found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchAt {
    /// Byte position of the batch in the file.
    pub position: u64,
    /// Its header.
    pub header: BatchHeader,
    /// Whether its CRC matches its contents.
    pub crc_valid: bool,
}

/// What walking a segment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// The whole batches, in file order.
    pub batches: Vec<BatchAt>,
    /// The file's size.
    pub file_len: u64,
    /// Why the walk stopped before the end of the file, if it did.
    pub problem: Option<String>,
}

/// Walks the batches of the segment at `path`, calling `each` with every whole batch and its
/// bytes.
pub fn walk(path: &Path, mut each: impl FnMut(&BatchAt, &Bytes)) -> io::Result<Walk> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut walk = Walk {
        file_len,
        ..Walk::default()
    };
    let mut pos = 0u64;
    while pos < file_len {
        let left = file_len - pos;
        if left < HEADER_SIZE as u64 {
            walk.problem = Some(format!(
                "torn tail at position {pos}: {left} bytes left, too few for a batch header \
                 ({HEADER_SIZE} bytes); the broker truncates it on recovery"
            ));
            break;
        }
        let mut buf = vec![0u8; HEADER_SIZE];
        reader.read_exact(&mut buf)?;
        let header = match BatchHeader::parse(&buf) {
            Ok(h) => h,
            Err(e) => {
                walk.problem = Some(format!(
                    "unreadable batch at position {pos}: {e}; the remaining {left} bytes are \
                     not decoded"
                ));
                break;
            }
        };
        let size = header.total_size() as u64;
        if size > left {
            walk.problem = Some(format!(
                "torn tail at position {pos}: the batch at offset {} declares {size} bytes, \
                 {left} are present; the broker truncates it on recovery",
                header.base_offset
            ));
            break;
        }
        buf.resize(size as usize, 0);
        reader.read_exact(&mut buf[HEADER_SIZE..])?;
        let bytes = Bytes::from(buf);
        let batch = BatchAt {
            position: pos,
            header,
            crc_valid: crc_valid(&header, &bytes),
        };
        each(&batch, &bytes);
        walk.batches.push(batch);
        pos += size;
    }
    Ok(walk)
}

/// A codec's name as Kafka prints it.
pub fn codec_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// The line describing one batch, in kafka-dump-log's `name: value` style.
pub fn batch_line(b: &BatchAt) -> String {
    let h = &b.header;
    let timestamp_type = match h.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} position: {} firstTimestamp: {} maxTimestamp: {} timestampType: {} \
         size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
        h.base_offset,
        h.last_offset(),
        h.records_count,
        h.base_sequence,
        h.last_sequence(),
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        b.position,
        h.base_timestamp,
        h.max_timestamp,
        timestamp_type,
        h.total_size(),
        h.magic,
        codec_name(h.compression()),
        h.crc,
        b.crc_valid
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::tools::produce::batch::encode;
    use crate::tools::produce::input::split_line;
    use std::io::Write;

    /// A segment of two batches (offsets 0-2 and 3-4) at `path`; returns its bytes.
    pub(in crate::tools::log_dump) fn write_segment(path: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        for (base, n) in [(0i64, 3i64), (3, 2)] {
            let lines: Vec<_> = (base..base + n)
                .map(|i| split_line(format!("k{i}:v{i}").as_bytes(), Some(b":")))
                .collect();
            let mut b = encode(&lines, &[], 1_000 + base, Compression::Lz4)
                .unwrap()
                .to_vec();
            b[..8].copy_from_slice(&base.to_be_bytes());
            // Offsets are patched outside the CRC, as the broker does.
            out.extend_from_slice(&b);
        }
        File::create(path).unwrap().write_all(&out).unwrap();
        out
    }

    #[test]
    fn walks_batches_and_reports_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        let bytes = write_segment(&path);
        let mut seen = 0;
        let w = walk(&path, |_, _| seen += 1).unwrap();
        assert_eq!((seen, w.batches.len(), w.problem.clone()), (2, 2, None));
        assert!(w.batches.iter().all(|b| b.crc_valid));
        assert_eq!(w.batches[1].header.base_offset, 3);
        assert!(batch_line(&w.batches[1]).starts_with("baseOffset: 3 lastOffset: 4 count: 2 "));
        assert!(batch_line(&w.batches[1]).contains(" compresscodec: lz4 crc: "));
        assert!(batch_line(&w.batches[1]).ends_with(" isvalid: true"));

        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let w = walk(&path, |_, _| {}).unwrap();
        assert_eq!(w.batches.len(), 1);
        assert!(w.problem.unwrap().starts_with("torn tail at position"));

        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        let w = walk(&path, |_, _| {}).unwrap();
        assert_eq!(
            w.batches.iter().map(|b| b.crc_valid).collect::<Vec<_>>(),
            [true, false]
        );
    }
}
