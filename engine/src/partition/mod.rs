//! A partition replica as its shard holds it: the log plus what the API layer needs around it.
//!
//! `Partition` is the boundary between Kafka semantics and storage: handlers and coordinators
//! append, read, look up offsets, flush and delete records through its methods, never through
//! its log, so that replication can later act behind those same methods. The methods are split
//! by concern:
//!
//! * this module — identity, offsets (log start, log end, high watermark), the leader append,
//!   fetch reads, offset for leader epoch, config changes and the append event;
//! * [`offsets`] — ListOffsets lookups (special timestamps, offset by timestamp);
//! * [`maintenance`] — flushes, checkpoint values, retention and DeleteRecords, compaction;
//! * [`replica`] — the follower's side: appends of the leader's batches, truncations.
//!
//! The log sits in a `RefCell` that every method borrows only for its own synchronous duration,
//! never across an `.await`.

mod leadership;
pub mod maintenance;
pub mod offsets;
pub mod replica;

use crate::config::{EffectiveTopicConfig, TimestampType};
use bytes::Bytes;
use event_listener::{Event, EventListener};
pub use leadership::ReadReplicaView;
use leadership::ReplicaRole;
use sluice_storage::{
    AppendError, AppendInfo, FileSlice, LogConfig, PartitionLog, ReadError, ValidationConfig,
};
use std::cell::{Cell, RefCell};
use uuid::Uuid;

/// One partition replica led by this shard.
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    /// Topic id.
    pub topic_id: Uuid,
    /// The log. Borrowed only inside this module's methods, never across an `.await`.
    log: RefCell<PartitionLog>,
    /// The current leader epoch, written into appended batches.
    pub leader_epoch: Cell<i32>,
    /// Effective topic config.
    pub config: RefCell<EffectiveTopicConfig>,
    /// Leader (with its ISR rules and acks=all waiters) or follower; see [`leadership`].
    role: RefCell<ReplicaRole>,
    /// Notified at every append and every move of the high watermark (parked fetches wait
    /// on it).
    appended: Event,
}

impl Partition {
    /// Wraps an opened log. The replica starts as a follower of no leader with
    /// `high_watermark` (the checkpointed one, or the log start); the shard then makes it
    /// leader or follower as the metadata image says.
    pub fn new(
        topic: String,
        index: i32,
        topic_id: Uuid,
        log: PartitionLog,
        leader_epoch: i32,
        high_watermark: i64,
        config: EffectiveTopicConfig,
    ) -> Partition {
        Partition {
            role: RefCell::new(ReplicaRole::Follower {
                leader: -1,
                high_watermark,
            }),
            topic,
            index,
            topic_id,
            log: RefCell::new(log),
            leader_epoch: Cell::new(leader_epoch),
            config: RefCell::new(config),
            appended: Event::new(),
        }
    }

    /// The high watermark: on the leader the minimum log end offset of the in-sync replicas,
    /// on a follower what the leader last said; never below the log start nor above the log
    /// end.
    pub fn high_watermark(&self) -> i64 {
        let known = self.role_high_watermark();
        let log = self.log.borrow();
        known.min(log.log_end_offset()).max(log.log_start_offset())
    }

    /// Adopts a new effective topic config, and its storage settings in the log, when it
    /// differs from the current one.
    pub fn apply_config(&self, effective: &EffectiveTopicConfig) {
        if *self.config.borrow() == *effective {
            return;
        }
        self.log.borrow_mut().set_config(log_config(effective));
        *self.config.borrow_mut() = effective.clone();
    }

    /// The log start offset (Kafka's low watermark): reads below it are out of range.
    pub fn log_start_offset(&self) -> i64 {
        self.log.borrow().log_start_offset()
    }

    /// The log end offset: the offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log.borrow().log_end_offset()
    }

    /// Appends `records` (the `Bytes` of a request, written as they are but for the patched
    /// batch prefixes) as this partition's leader, stamped with the current leader epoch
    /// (Kafka's `Partition.appendRecordsToLeader`), and wakes the fetches parked on the
    /// partition when records were appended (not for a duplicate of an idempotent batch).
    /// Durability is the caller's: [`Partition::needs_flush`] says when the shard's group
    /// commit must sync before the answer.
    pub fn append_as_leader(
        &self,
        records: &Bytes,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.log.borrow_mut();
        if log.truncation_pending() {
            return Err(AppendError::TruncationPending);
        }
        let info = log.append(records, self.leader_epoch.get(), now_ms)?;
        drop(log);
        if !info.duplicate {
            self.appended.notify(usize::MAX);
            self.leader_appended(now_ms);
        }
        Ok(info)
    }

    /// Reads whole batches from `offset` for a fetch (Kafka's `LogSegment.read`): at most
    /// `max_bytes` (but the first batch whole with `min_one_batch`), stopping at
    /// `max_offset_exclusive` (the high watermark for consumers). The answer is a range of a
    /// segment file to send as it is; `Ok(None)` when there is nothing to read yet.
    pub fn read_range(
        &self,
        offset: i64,
        max_bytes: u32,
        min_one_batch: bool,
        max_offset_exclusive: i64,
    ) -> Result<Option<FileSlice>, ReadError> {
        self.log
            .borrow()
            .read(offset, max_bytes, min_one_batch, max_offset_exclusive)
    }

    /// OffsetForLeaderEpoch (Kafka's `Partition.lastOffsetForLeaderEpoch` on the leader): the
    /// largest epoch <= `leader_epoch` and the offset where it ended (the log end offset for
    /// the latest epoch), or -1 / -1 when the epoch is unknown to the log.
    pub fn end_offset_for_epoch(&self, leader_epoch: i32) -> (i32, i64) {
        epoch_end_offset(&self.log.borrow(), leader_epoch)
    }

    /// The most bytes one batch's records may take once decompressed on this topic (from
    /// `max.message.bytes`): readers that decode batches stop at it.
    pub fn decompression_limit(&self) -> usize {
        self.log.borrow().config().validation.decompression_limit()
    }

    /// A future completing at the next append (for long-poll fetches).
    pub fn listen(&self) -> EventListener {
        self.appended.listen()
    }
}

/// [`Partition::end_offset_for_epoch`] on `log`: -1 / -1 when the epoch is unknown.
fn epoch_end_offset(log: &PartitionLog, leader_epoch: i32) -> (i32, i64) {
    let (epoch, offset) = log.end_offset_for_epoch(leader_epoch);
    if offset < 0 {
        (-1, -1)
    } else {
        (epoch, offset)
    }
}

/// The storage settings of a topic's effective config.
pub fn log_config(c: &EffectiveTopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: c.segment_bytes,
        segment_ms: c.segment_ms,
        index_interval_bytes: c.index_interval_bytes,
        flush_messages: c.flush_messages,
        flush_ms: c.flush_ms,
        validation: ValidationConfig {
            max_message_bytes: c.max_message_bytes,
            timestamp_type: match c.timestamp_type {
                TimestampType::CreateTime => sluice_storage::TimestampType::CreateTime,
                TimestampType::LogAppendTime => sluice_storage::TimestampType::LogAppendTime,
            },
            timestamp_before_max_ms: c.timestamp_before_max_ms,
            timestamp_after_max_ms: c.timestamp_after_max_ms,
            require_keys: c.cleanup_policy.compact,
        },
    }
}

#[cfg(test)]
impl Partition {
    /// A partition (epoch 0) over a new log of `topic`-0 in `dir`, with the default topic
    /// config changed by `configure` (tests).
    pub(crate) fn open_for_tests(
        dir: &std::path::Path,
        topic: &str,
        now_ms: i64,
        configure: impl FnOnce(&mut EffectiveTopicConfig),
    ) -> Partition {
        let broker = crate::config::BrokerConfig::load(None, &[]).expect("default broker config");
        let mut effective = crate::config::TopicConfigs::default()
            .effective(&broker, &crate::config::DynamicBrokerConfigs::default());
        configure(&mut effective);
        let (log, _) = PartitionLog::open(dir, topic, 0, log_config(&effective), 0, 0, now_ms)
            .expect("a new log opens");
        let partition = Partition::new(topic.to_string(), 0, Uuid::nil(), log, 0, 0, effective);
        let sole_replica = sluice_replication::leader::LeaderAndIsr {
            leader: 0,
            replicas: vec![0],
            isr: vec![0],
            leader_epoch: 0,
            partition_epoch: 0,
        };
        partition
            .make_leader(&sole_replica, Default::default(), now_ms)
            .expect("a sole replica leads");
        partition
    }

    /// The number of segments, the active one included (tests lay segments out).
    pub(crate) fn segment_count(&self) -> usize {
        self.log.borrow().segment_count()
    }
}

#[cfg(test)]
mod tests {
    use super::offsets::tests::batch;
    use super::*;
    use sluice_storage::LogConfig;

    #[test]
    fn end_offsets_per_epoch() {
        let now = 1_700_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) =
            PartitionLog::open(dir.path(), "t", 0, LogConfig::default(), 0, 0, now).unwrap();
        assert_eq!(epoch_end_offset(&log, 0), (-1, -1));
        log.append(&batch(&[now, now]), 1, now).unwrap();
        log.append(&batch(&[now, now, now]), 3, now).unwrap();
        // Latest epoch ends at the log end offset.
        assert_eq!(epoch_end_offset(&log, 3), (3, 5));
        // Epoch 2 was never used: the largest epoch below it (1) ends where epoch 3 starts.
        assert_eq!(epoch_end_offset(&log, 2), (1, 2));
        assert_eq!(epoch_end_offset(&log, 1), (1, 2));
        // Older than every known epoch: the requested epoch ends where the first one starts.
        assert_eq!(epoch_end_offset(&log, 0), (0, 0));
        // Unknown future epoch and "no epoch".
        assert_eq!(epoch_end_offset(&log, 4), (-1, -1));
        assert_eq!(epoch_end_offset(&log, -1), (-1, -1));
    }
}
