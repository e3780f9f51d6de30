//! Reads of a partition log: byte ranges of whole batches for Fetch (served with `sendfile`),
//! and timestamp lookups for ListOffsets.

use std::fs::File;
use std::io;
use std::sync::Arc;

use super::PartitionLog;
use crate::batch::{BatchHeader, TimestampType};
use crate::decompress::decode_batch;
use crate::error::{IoContext, StorageError};
use crate::segment::Segment;

/// A byte range of a segment file holding record batches, to be sent as is.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment's log file.
    pub file: Arc<File>,
    /// Start of the first batch in the file.
    pub position: u64,
    /// Length of the range (the last batch may be partial, as in Kafka).
    pub len: u64,
    /// Base offset of the first batch (may be below the offset asked for).
    pub first_offset: i64,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The offset is outside `[log_start, log_end]`.
    #[error("offset out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// First offset of the log.
        log_start: i64,
        /// Log end offset.
        log_end: i64,
    },
    /// Reading a segment failed.
    #[error("I/O error while reading: {0}")]
    Io(#[from] io::Error),
}

impl PartitionLog {
    /// Segments that may hold `offset` or later offsets, in order.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> {
        let floor = self
            .sealed
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(base, _)| *base);
        self.sealed
            .range(floor..)
            .map(|(_, s)| s)
            .chain(std::iter::once(&self.active))
    }

    /// Reads from `offset`, as Kafka's `LogSegment.read`: the range starts at the batch holding
    /// `offset` and ends at `max_bytes`, at the first batch at or beyond `max_offset_exclusive`
    /// (the high watermark), or at the end of that batch's segment, whichever comes first. With
    /// `min_one_batch` the first batch is whole even if larger than `max_bytes`.
    /// `Ok(None)`: nothing to read yet (offset at the log end or at the bound).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: u32,
        min_one_batch: bool,
        max_offset_exclusive: i64,
    ) -> Result<Option<FileSlice>, ReadError> {
        let (log_start, log_end) = (self.log_start_offset(), self.log_end_offset);
        if offset < log_start || offset > log_end {
            return Err(ReadError::OffsetOutOfRange { log_start, log_end });
        }
        if offset == log_end || offset >= max_offset_exclusive {
            return Ok(None);
        }
        for segment in self.segments_from(offset) {
            let Some((position, header)) = segment.find_batch(offset)? else {
                continue;
            };
            if header.base_offset >= max_offset_exclusive {
                return Ok(None);
            }
            let limit = if max_offset_exclusive < segment.next_offset() {
                segment.position_of(max_offset_exclusive)?
            } else {
                segment.size()
            };
            let max = if min_one_batch {
                u64::from(max_bytes).max(header.total_size() as u64)
            } else {
                u64::from(max_bytes)
            };
            let len = max.min(limit.saturating_sub(position));
            return Ok((len > 0).then(|| FileSlice {
                file: Arc::clone(segment.log_file()),
                position,
                len,
                first_offset: header.base_offset,
            }));
        }
        Ok(None)
    }

    /// ListOffsets by timestamp: offset and timestamp of the first record at or after the log
    /// start offset whose timestamp is >= `timestamp`, or `None` if there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, StorageError> {
        for segment in self.segments() {
            if segment.next_offset() <= self.log_start_offset
                || segment
                    .max_timestamp()
                    .is_none_or(|(max, _)| max < timestamp)
            {
                continue;
            }
            let mut starting_offset = self.log_start_offset;
            while let Some((position, header)) = segment
                .find_batch_by_timestamp(timestamp, starting_offset)
                .at(segment.log_path())?
            {
                let found = first_record_at_or_after(
                    segment,
                    position,
                    &header,
                    (timestamp, starting_offset),
                    self.config.validation.decompression_limit(),
                )?;
                if found.is_some() {
                    return Ok(found);
                }
                // Only the batch holding the log start offset can have its matching records
                // all below it; go on with the next batch.
                starting_offset = header.next_offset();
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the record with the largest timestamp (the earliest one if
    /// several share it), as (offset, timestamp); `None` for an empty log.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let mut best: Option<(&Segment, i64, i64)> = None;
        for segment in self.segments() {
            if let Some((ts, offset)) = segment.max_timestamp() {
                if best.is_none_or(|(_, best_ts, _)| ts > best_ts) {
                    best = Some((segment, ts, offset));
                }
            }
        }
        let Some((segment, timestamp, offset)) = best else {
            return Ok(None);
        };
        let found = match segment.find_batch(offset).at(segment.log_path())? {
            Some((position, header)) => {
                let limit = self.config.validation.decompression_limit();
                first_record_at_or_after(segment, position, &header, (timestamp, i64::MIN), limit)?
            }
            None => None,
        };
        match found {
            Some(found) => Ok(Some(found)),
            None => Err(StorageError::Decode {
                path: segment.log_path().to_path_buf(),
                position: segment.size(),
                reason: format!(
                    "no record at offset {offset} has the segment's max timestamp {timestamp}"
                ),
            }),
        }
    }
}

/// The first record of the batch at `position` whose timestamp is >= `timestamp` and whose
/// offset is >= `starting_offset` (`from` is both), as (offset, timestamp); `None` when no
/// record qualifies. LogAppendTime batches give every record their max timestamp, so the answer
/// is their first record at or after `starting_offset`; CreateTime batches are decoded
/// (whatever their compression, within `limit` decompressed bytes). A batch that cannot be
/// decoded so (a decompression bomb or garbage stored as a client sent it) is answered as a
/// LogAppendTime batch would be, with a warning, rather than failing every lookup that meets it.
fn first_record_at_or_after(
    segment: &Segment,
    position: u64,
    header: &BatchHeader,
    from: (i64, i64),
    limit: usize,
) -> Result<Option<(i64, i64)>, StorageError> {
    let (timestamp, starting_offset) = from;
    let whole_batch = || {
        let offset = header.base_offset.max(starting_offset);
        (header.max_timestamp >= timestamp && offset <= header.last_offset())
            .then_some((offset, header.max_timestamp))
    };
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Ok(whole_batch());
    }
    let path = segment.log_path();
    let bytes = segment.read_batch(position, header).at(path)?;
    let set = match decode_batch(&bytes.into(), limit) {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(
                "{} at {position}: timestamp lookup answers for the whole batch at offset {}, \
                 whose records cannot be decoded: {e}",
                path.display(),
                header.base_offset
            );
            return Ok(whole_batch());
        }
    };
    Ok(set
        .records
        .iter()
        .find(|r| r.timestamp >= timestamp && r.offset >= starting_offset)
        .map(|r| (r.offset, r.timestamp)))
}
