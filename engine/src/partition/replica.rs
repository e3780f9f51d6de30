//! The partition as a follower replica (Kafka's `Partition.appendRecordsToFollowerOrFutureReplica`
//! and `truncateTo`): appends of the leader's batches as they are, and truncations after a
//! leader change (see [`sluice_storage::PartitionLog`]'s follower side for the rules).
//!
//! A truncation is not durable when it returns. Before the partition is appended to again
//! (debug builds check it), the caller runs [`LogTruncation::sync`] off the shard's thread,
//! calls [`Partition::complete_truncation`], and writes the shard's recovery-point and
//! log-start-offset checkpoints (both may have moved down); the files of
//! [`LogTruncation::deleted`] are then removed after `file.delete.delay.ms`, as retention's.

use super::Partition;
use bytes::Bytes;
use sluice_storage::{AppendInfo, FollowerAppendError, LogTruncation, StorageError};

impl Partition {
    /// Appends the records a leader's Fetch response carried for this partition, unchanged
    /// (offsets, leader epochs, producer ids kept; a truncated last batch left out), and wakes
    /// the fetches parked on the partition when a batch was appended. Durability is the
    /// caller's, as for the leader: [`Partition::needs_flush`] says when to flush.
    pub fn append_as_follower(
        &self,
        records: &Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, FollowerAppendError> {
        let info = self.log.borrow_mut().append_as_follower(records, now_ms)?;
        if info.last_offset >= info.base_offset {
            self.appended.notify(usize::MAX);
        }
        Ok(info)
    }

    /// The offset to restart the log at after `error`, in the one case where Kafka's follower
    /// recovers from an overlapping append: the log is empty (its end is its start) and the
    /// first fetched batch holds the log end offset (the leader's log start offset lies inside
    /// that batch, after DeleteRecords). The caller then truncates fully to the batch's base
    /// offset ([`Partition::truncate_fully_and_start_at`]), makes that durable, and appends
    /// again. `None` for any other error.
    pub fn restart_offset_after(&self, error: &FollowerAppendError) -> Option<i64> {
        let FollowerAppendError::UnexpectedAppendOffset {
            first_offset,
            last_offset,
            log_end_offset,
        } = *error
        else {
            return None;
        };
        let log = self.log.borrow();
        (log_end_offset == log.log_end_offset()
            && log_end_offset == log.log_start_offset()
            && first_offset < log_end_offset
            && last_offset >= log_end_offset)
            .then_some(first_offset)
    }

    /// Drops every record at or after `offset` (Kafka's `Partition.truncateTo`, with the
    /// offset OffsetForLeaderEpoch gave; see [`sluice_storage::PartitionLog::truncate_to`]).
    /// `None` when nothing changed; otherwise the caller makes the truncation durable before
    /// the next append (see the module docs).
    pub fn truncate_to(
        &self,
        offset: i64,
        now_ms: i64,
    ) -> Result<Option<LogTruncation>, StorageError> {
        self.log.borrow_mut().truncate_to(offset, now_ms)
    }

    /// Empties the log and restarts it at `offset` (Kafka's `truncateFullyAndStartAt`: the
    /// leader's log starts beyond this replica's end). The caller makes it durable before the
    /// next append (see the module docs).
    pub fn truncate_fully_and_start_at(
        &self,
        offset: i64,
        now_ms: i64,
    ) -> Result<LogTruncation, StorageError> {
        self.log
            .borrow_mut()
            .truncate_fully_and_start_at(offset, now_ms)
    }

    /// Records that `truncation` was synced ([`LogTruncation::sync`] succeeded): the partition
    /// may be appended to again.
    pub fn complete_truncation(&self, truncation: &LogTruncation) {
        self.log.borrow_mut().complete_truncation(truncation);
    }

    /// Whether a truncation is not durable yet: appends (as leader or follower) wait for it.
    pub fn truncation_pending(&self) -> bool {
        self.log.borrow().truncation_pending()
    }

    /// The latest leader epoch of the log, if any: what a follower asks its leader about with
    /// OffsetForLeaderEpoch before fetching after a leader change.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.log.borrow().latest_epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::super::offsets::tests::batch;
    use super::*;
    use futures_lite::future::block_on;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn a_follower_partition_appends_truncates_and_restarts_as_kafka_does() {
        let (leader_dir, follower_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let leader = Partition::open_for_tests(leader_dir.path(), "t", NOW, |_| {});
        let follower = Partition::open_for_tests(follower_dir.path(), "t", NOW, |_| {});
        leader.leader_epoch.set(4);
        for _ in 0..3 {
            leader
                .append_as_leader(&batch(&[NOW, NOW, NOW]), NOW)
                .unwrap();
        }
        let fetched = |from: i64| {
            let slice = leader
                .read_range(from, u32::MAX, true, i64::MAX)
                .unwrap()
                .unwrap();
            let mut bytes = vec![0u8; slice.len as usize];
            std::os::unix::fs::FileExt::read_exact_at(&*slice.file, &mut bytes, slice.position)
                .unwrap();
            Bytes::from(bytes)
        };

        let woken = follower.listen();
        let info = follower.append_as_follower(&fetched(0), NOW).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 8));
        block_on(woken);
        assert_eq!(follower.latest_epoch(), Some(4));
        assert_eq!(follower.end_offset_for_epoch(4), (4, 9));

        let truncation = follower.truncate_to(3, NOW).unwrap().unwrap();
        truncation.sync().unwrap();
        follower.complete_truncation(&truncation);
        assert_eq!(follower.log_end_offset(), 3);
        assert!(follower.truncate_to(7, NOW).unwrap().is_none());
        follower.append_as_follower(&fetched(3), NOW).unwrap();
        assert_eq!(follower.log_end_offset(), 9);

        // The leader's log start lies inside its second batch: an empty follower restarts at
        // that batch.
        let truncation = follower.truncate_fully_and_start_at(4, NOW).unwrap();
        truncation.sync().unwrap();
        follower.complete_truncation(&truncation);
        let error = follower.append_as_follower(&fetched(3), NOW).unwrap_err();
        assert_eq!(follower.restart_offset_after(&error), Some(3));
        let truncation = follower.truncate_fully_and_start_at(3, NOW).unwrap();
        truncation.sync().unwrap();
        follower.complete_truncation(&truncation);
        follower.append_as_follower(&fetched(3), NOW).unwrap();
        assert_eq!(
            (follower.log_start_offset(), follower.log_end_offset()),
            (3, 9)
        );
        let overlap = follower.append_as_follower(&fetched(3), NOW).unwrap_err();
        assert_eq!(follower.restart_offset_after(&overlap), None);
    }
}
