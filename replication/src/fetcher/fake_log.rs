//! An in-memory [`FollowerLog`] for the fetcher's unit tests: offsets, a leader-epoch cache
//! with Kafka's answers, and batches reduced to the v2 header fields the follower relies on.

use super::log::{FollowerAppend, FollowerLog, FollowerLogError};
use bytes::{BufMut, Bytes, BytesMut};
use std::cell::RefCell;

/// Size of a record batch header in the v2 format (the fake's batches carry no records).
const BATCH_HEADER_BYTES: usize = 61;

/// A v2-shaped batch header of `count` records from `base_offset` stamped with `epoch`; only
/// the fields the fake reads are meaningful.
pub fn batch(base_offset: i64, count: i32, epoch: i32) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(BATCH_HEADER_BYTES);
    b.put_i64(base_offset);
    b.put_i32((BATCH_HEADER_BYTES - 12) as i32);
    b.put_i32(epoch);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(count - 1);
    b.resize(BATCH_HEADER_BYTES, 0);
    b.to_vec()
}

#[derive(Default)]
struct FakeState {
    log_start: i64,
    log_end: i64,
    high_watermark: i64,
    /// (epoch, start offset), epochs increasing.
    epochs: Vec<(i32, i64)>,
    truncation_broken: bool,
    append_failure: Option<FollowerLogError>,
    appended_batches: usize,
}

impl FakeState {
    fn assign(&mut self, epoch: i32, start: i64) {
        let newer = match self.epochs.last() {
            Some(&(latest, _)) => epoch > latest,
            None => true,
        };
        if newer {
            self.epochs.push((epoch, start));
        }
    }
}

/// The in-memory follower log.
#[derive(Default)]
pub struct FakeLog {
    state: RefCell<FakeState>,
}

impl FakeLog {
    /// An empty log at offset 0.
    pub fn new() -> FakeLog {
        FakeLog::default()
    }

    /// Appends `count` records from `base` in `epoch` directly (test setup).
    pub fn append_batch(&self, base: i64, count: i64, epoch: i32) {
        let mut s = self.state.borrow_mut();
        assert_eq!(base, s.log_end, "test batches follow the log end");
        s.assign(epoch, base);
        s.log_end = base + count;
    }

    /// Forgets the leader epochs, as a log written before epochs existed.
    pub fn clear_epochs(&self) {
        self.state.borrow_mut().epochs.clear();
    }

    /// Makes `truncate_to` succeed without truncating (to break the fetcher's invariant).
    pub fn break_truncation(&self) {
        self.state.borrow_mut().truncation_broken = true;
    }

    /// Makes every append fail with `error`.
    pub fn fail_appends(&self, error: FollowerLogError) {
        self.state.borrow_mut().append_failure = Some(error);
    }

    /// The number of whole batches appended through `append_as_follower`.
    pub fn appended_batches(&self) -> usize {
        self.state.borrow().appended_batches
    }
}

impl FollowerLog for FakeLog {
    fn log_start_offset(&self) -> i64 {
        self.state.borrow().log_start
    }

    fn log_end_offset(&self) -> i64 {
        self.state.borrow().log_end
    }

    fn high_watermark(&self) -> i64 {
        self.state.borrow().high_watermark
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.state.borrow().epochs.last().map(|&(epoch, _)| epoch)
    }

    fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        let s = self.state.borrow();
        if requested < 0 {
            return (-1, -1);
        }
        if s.epochs.last().map(|&(e, _)| e) == Some(requested) {
            return (requested, s.log_end);
        }
        let higher = s.epochs.iter().find(|e| e.0 > requested);
        let floor = s.epochs.iter().rev().find(|e| e.0 <= requested);
        match (higher, floor) {
            (None, _) => (-1, -1),
            (Some(h), None) => (requested, h.1),
            (Some(h), Some(f)) => (f.0, h.1),
        }
    }

    fn append_as_follower(&self, records: &Bytes) -> Result<FollowerAppend, FollowerLogError> {
        let mut s = self.state.borrow_mut();
        if let Some(e) = &s.append_failure {
            return Err(e.clone());
        }
        let mut appended = FollowerAppend::default();
        let mut rest = &records[..];
        while rest.len() >= 12 {
            let base = i64::from_be_bytes(rest[0..8].try_into().unwrap());
            let length = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize;
            if rest.len() < 12 + length {
                break;
            }
            if base != s.log_end {
                return Err(FollowerLogError::InvalidRecords(format!(
                    "batch at {base}, log end {}",
                    s.log_end
                )));
            }
            let epoch = i32::from_be_bytes(rest[12..16].try_into().unwrap());
            let last_delta = i32::from_be_bytes(rest[23..27].try_into().unwrap());
            s.assign(epoch, base);
            s.log_end = base + i64::from(last_delta) + 1;
            s.appended_batches += 1;
            appended.last_offset = Some(s.log_end - 1);
            appended.appended_bytes += 12 + length;
            rest = &rest[12 + length..];
        }
        Ok(appended)
    }

    fn truncate_to(&self, offset: i64) -> Result<(), FollowerLogError> {
        let mut s = self.state.borrow_mut();
        if s.truncation_broken || offset >= s.log_end {
            return Ok(());
        }
        s.log_end = offset;
        s.epochs.retain(|&(_, start)| start < offset);
        s.high_watermark = s.high_watermark.min(offset);
        Ok(())
    }

    fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), FollowerLogError> {
        let mut s = self.state.borrow_mut();
        s.log_start = offset;
        s.log_end = offset;
        s.high_watermark = offset;
        s.epochs.clear();
        Ok(())
    }

    fn set_high_watermark(&self, high_watermark: i64) {
        self.state.borrow_mut().high_watermark = high_watermark;
    }

    fn maybe_increment_log_start_offset(&self, offset: i64) -> Result<(), FollowerLogError> {
        let mut s = self.state.borrow_mut();
        if offset > s.log_start {
            s.log_start = offset;
            let covered = s
                .epochs
                .iter()
                .filter(|&&(_, start)| start <= offset)
                .count();
            if covered > 0 {
                let (epoch, _) = s.epochs[covered - 1];
                s.epochs.drain(..covered);
                s.epochs.insert(0, (epoch, offset));
            }
        }
        Ok(())
    }
}
