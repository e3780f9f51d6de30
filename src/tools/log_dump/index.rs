//! `.index` (relative offset → position) and `.timeindex` (timestamp → relative offset) files:
//! their entries, whether they increase as they must, and — with the segment's `.log` beside
//! them — whether each entry points where it should.

use super::segment::BatchAt;

/// Bytes of an offset index entry: relative offset u32, position u32.
pub const OFFSET_ENTRY: usize = 8;
/// Bytes of a time index entry: timestamp i64, relative offset u32.
pub const TIME_ENTRY: usize = 12;

/// The entries of an index file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries<'a> {
    /// The entries in use, in file order.
    pub used: Vec<&'a [u8]>,
    /// All-zero entries after the first: preallocated space Kafka leaves in an active segment's
    /// index.
    pub unused: usize,
    /// Bytes of a partial last entry.
    pub torn_bytes: usize,
}

/// Splits `bytes` into entries of `size` bytes.
pub fn entries(bytes: &[u8], size: usize) -> Entries<'_> {
    let chunks = bytes.chunks_exact(size);
    let torn_bytes = chunks.remainder().len();
    let all: Vec<&[u8]> = chunks.collect();
    let used = all
        .iter()
        .enumerate()
        .position(|(i, e)| i > 0 && e.iter().all(|b| *b == 0))
        .unwrap_or(all.len());
    Entries {
        unused: all.len() - used,
        used: all[..used].to_vec(),
        torn_bytes,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Offset index entries as (absolute offset, position).
pub fn offset_entries(e: &Entries<'_>, base_offset: i64) -> Vec<(i64, u64)> {
    e.used
        .iter()
        .map(|b| {
            (
                base_offset + i64::from(u32_at(b, 0)),
                u64::from(u32_at(b, 4)),
            )
        })
        .collect()
}

/// Time index entries as (timestamp, absolute offset).
pub fn time_entries(e: &Entries<'_>, base_offset: i64) -> Vec<(i64, i64)> {
    e.used
        .iter()
        .map(|b| (i64_at(b, 0), base_offset + i64::from(u32_at(b, 8))))
        .collect()
}

/// What is wrong with offset index `entries`, checked against the segment's batches if known.
pub fn check_offsets(entries: &[(i64, u64)], batches: Option<&[BatchAt]>) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, w) in entries.windows(2).enumerate() {
        let ((o0, p0), (o1, p1)) = (w[0], w[1]);
        if o1 <= o0 || p1 <= p0 {
            problems.push(format!(
                "entry {}: offset {o1} → position {p1} does not increase on entry {i} (offset \
                 {o0} → position {p0})",
                i + 1
            ));
        }
    }
    let Some(batches) = batches else {
        return problems;
    };
    for (i, (offset, position)) in entries.iter().enumerate() {
        match batches.binary_search_by_key(position, |b| b.position) {
            Err(_) => problems.push(format!(
                "entry {i}: offset {offset} → position {position}: no batch starts there"
            )),
            Ok(at) => {
                let h = &batches[at].header;
                if h.last_offset() != *offset {
                    problems.push(format!(
                        "entry {i}: offset {offset} → position {position}: the batch there holds \
                         offsets {}-{}, so the entry should name {}",
                        h.base_offset,
                        h.last_offset(),
                        h.last_offset()
                    ));
                }
            }
        }
    }
    problems
}

/// What is wrong with time index `entries`, checked against the segment's batches if known.
pub fn check_times(entries: &[(i64, i64)], batches: Option<&[BatchAt]>) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, w) in entries.windows(2).enumerate() {
        let ((t0, o0), (t1, o1)) = (w[0], w[1]);
        if t1 <= t0 || o1 < o0 {
            problems.push(format!(
                "entry {}: timestamp {t1} → offset {o1} does not increase on entry {i} \
                 (timestamp {t0} → offset {o0})",
                i + 1
            ));
        }
    }
    let Some(batches) = batches else {
        return problems;
    };
    for (i, (timestamp, offset)) in entries.iter().enumerate() {
        let holder = batches
            .iter()
            .find(|b| b.header.base_offset <= *offset && *offset <= b.header.last_offset());
        match holder {
            None => problems.push(format!(
                "entry {i}: timestamp {timestamp} → offset {offset}: no batch holds that offset"
            )),
            Some(b) if b.header.max_timestamp != *timestamp => problems.push(format!(
                "entry {i}: timestamp {timestamp} → offset {offset}: the batch holding it has max \
                 timestamp {}",
                b.header.max_timestamp
            )),
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_storage::BatchHeader;

    fn batch(position: u64, base: i64, last: i64, max_ts: i64) -> BatchAt {
        let mut b = vec![0u8; 61];
        b[..8].copy_from_slice(&base.to_be_bytes());
        b[8..12].copy_from_slice(&49i32.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&((last - base) as i32).to_be_bytes());
        b[35..43].copy_from_slice(&max_ts.to_be_bytes());
        BatchAt {
            position,
            header: BatchHeader::parse(&b).unwrap(),
            crc_valid: true,
        }
    }

    #[test]
    fn splits_entries_and_ignores_preallocated_zeros() {
        let mut bytes = vec![0u8; 8]; // offset 0 → position 0: a real first entry
        bytes.extend_from_slice(&[0, 0, 0, 5, 0, 0, 1, 0]);
        bytes.extend_from_slice(&[0u8; 16]);
        bytes.extend_from_slice(&[1, 2, 3]);
        let e = entries(&bytes, OFFSET_ENTRY);
        assert_eq!((e.used.len(), e.unused, e.torn_bytes), (2, 2, 3));
        assert_eq!(offset_entries(&e, 100), vec![(100, 0), (105, 256)]);
    }

    #[test]
    fn offset_entries_must_name_a_batch_start_and_its_last_offset() {
        let batches = [batch(0, 0, 2, 10), batch(100, 3, 4, 20)];
        assert!(check_offsets(&[(2, 0), (4, 100)], Some(&batches)).is_empty());
        let p = check_offsets(&[(2, 0), (4, 50), (3, 100)], Some(&batches));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("entry 2: offset 3 → position 100 does not increase"));
        assert!(p[1].contains("no batch starts there"));
        assert!(p[2].contains("should name 4"));
        assert_eq!(
            check_offsets(&[(2, 0), (4, 50)], None),
            Vec::<String>::new()
        );
    }

    #[test]
    fn time_entries_must_increase_and_match_the_batch() {
        let batches = [batch(0, 0, 2, 10), batch(100, 3, 4, 20)];
        assert!(check_times(&[(10, 2), (20, 4)], Some(&batches)).is_empty());
        let p = check_times(&[(20, 4), (15, 2), (30, 9)], Some(&batches));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("entry 1: timestamp 15 → offset 2 does not increase"));
        assert!(p[1].contains("max timestamp 10"));
        assert!(p[2].contains("no batch holds that offset"));
    }
}
