//! Sequential scan of a segment file, batch by batch, reading in large chunks. Used by recovery
//! (with CRC verification) and to rebuild indexes and producer state (headers only).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::batch::{BatchHeader, HEADER_SIZE};

/// Bytes read per `pread` while scanning.
const CHUNK: usize = 1 << 20;
/// First byte covered by a batch's CRC.
const CRC_START: u64 = 21;

/// Where and why a scan stopped before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanProblem {
    /// File position of the first bad byte (the start of the bad batch).
    pub position: u64,
    /// What is wrong there.
    pub reason: String,
    /// The bad batch's header when it could be parsed (it tells which offsets are lost).
    pub header: Option<BatchHeader>,
}

/// Result of scanning a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Bytes from the start of the file that hold valid batches.
    pub valid_len: u64,
    /// Set when the scan stopped before the end of the file.
    pub problem: Option<ScanProblem>,
}

/// A window of the file kept in memory.
struct ChunkReader<'a> {
    file: &'a File,
    file_len: u64,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> ChunkReader<'a> {
    /// Returns `need` bytes at `pos` (the caller guarantees they are inside the file).
    fn bytes(&mut self, pos: u64, need: usize) -> io::Result<&[u8]> {
        let end = self.start + self.buf.len() as u64;
        if pos < self.start || pos + need as u64 > end {
            let len = (self.file_len - pos).min(need.max(CHUNK) as u64) as usize;
            self.buf.resize(len, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let at = (pos - self.start) as usize;
        Ok(&self.buf[at..at + need])
    }

    /// CRC32C of `[from, to)`, streamed through the chunk buffer.
    fn crc(&mut self, from: u64, to: u64) -> io::Result<u32> {
        let mut crc = 0u32;
        let mut at = from;
        while at < to {
            let n = (to - at).min(CHUNK as u64) as usize;
            crc = crc32c::crc32c_append(crc, self.bytes(at, n)?);
            at += n as u64;
        }
        Ok(crc)
    }
}

/// Scans the first `file_len` bytes of a segment whose base offset is `base_offset`, calling
/// `on_batch(position, header)` for every valid batch, and stops at the first batch that is torn,
/// fails its CRC (when `verify_crc`), or whose offsets go backwards or leave the segment's range.
pub(crate) fn scan_segment(
    file: &File,
    file_len: u64,
    base_offset: i64,
    verify_crc: bool,
    mut on_batch: impl FnMut(u64, &BatchHeader),
) -> io::Result<ScanOutcome> {
    let mut reader = ChunkReader {
        file,
        file_len,
        buf: Vec::new(),
        start: 0,
    };
    let mut pos = 0u64;
    let mut expected_next = base_offset;
    while pos < file_len {
        let available = (file_len - pos).min(HEADER_SIZE as u64) as usize;
        let stop = |reason: String, header: Option<BatchHeader>| ScanOutcome {
            valid_len: pos,
            problem: Some(ScanProblem {
                position: pos,
                reason,
                header,
            }),
        };
        let header = match BatchHeader::parse(reader.bytes(pos, available)?) {
            Ok(h) => h,
            Err(e) => return Ok(stop(e.to_string(), None)),
        };
        let end = pos + header.total_size() as u64;
        if end > file_len {
            let reason = format!(
                "torn batch: {} bytes declared, {} present",
                header.total_size(),
                file_len - pos
            );
            return Ok(stop(reason, Some(header)));
        }
        if header.base_offset < expected_next {
            let reason = format!(
                "offset {} goes backwards (expected at least {expected_next})",
                header.base_offset
            );
            return Ok(stop(reason, Some(header)));
        }
        if header.last_offset() - base_offset > i64::from(u32::MAX) {
            let reason = format!("offset {} is outside the segment", header.last_offset());
            return Ok(stop(reason, Some(header)));
        }
        if verify_crc && reader.crc(pos + CRC_START, end)? != header.crc {
            return Ok(stop("CRC mismatch".into(), Some(header)));
        }
        on_batch(pos, &header);
        expected_next = header.next_offset();
        pos = end;
    }
    Ok(ScanOutcome {
        valid_len: pos,
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{batch_bytes, with_base_offset};

    fn write(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        let file = File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    #[test]
    fn scans_valid_batches_and_stops_at_damage() {
        let mut data = with_base_offset(&batch_bytes(3, 1000), 0);
        let second_at = data.len() as u64;
        data.extend(with_base_offset(&batch_bytes(2, 1000), 3));
        let full = data.len() as u64;
        let (_tmp, file) = write(&data);
        let mut seen = Vec::new();
        let out = scan_segment(&file, full, 0, true, |p, h| seen.push((p, h.base_offset))).unwrap();
        assert_eq!(
            out,
            ScanOutcome {
                valid_len: full,
                problem: None
            }
        );
        assert_eq!(seen, vec![(0, 0), (second_at, 3)]);

        let out = scan_segment(&file, full - 5, 0, true, |_, _| {}).unwrap();
        assert_eq!(out.valid_len, second_at);
        assert!(out.problem.unwrap().reason.contains("torn"));

        let mut flipped = data.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0xff;
        let (_tmp2, file2) = write(&flipped);
        let out = scan_segment(&file2, full, 0, true, |_, _| {}).unwrap();
        assert_eq!(out.valid_len, second_at);
        let problem = out.problem.unwrap();
        assert_eq!(problem.header.map(|h| h.last_offset()), Some(4));
        let unverified = scan_segment(&file2, full, 0, false, |_, _| {}).unwrap();
        assert_eq!(unverified.valid_len, full);
    }

    #[test]
    fn rejects_offsets_going_backwards() {
        let mut data = with_base_offset(&batch_bytes(3, 1000), 10);
        data.extend(with_base_offset(&batch_bytes(1, 1000), 11));
        let (_tmp, file) = write(&data);
        let out = scan_segment(&file, data.len() as u64, 10, true, |_, _| {}).unwrap();
        assert!(out.problem.unwrap().reason.contains("backwards"));
    }
}
