//! A partition replica as its shard holds it: the log plus what the API layer needs around it.

use crate::config::{EffectiveTopicConfig, TimestampType};
use event_listener::{Event, EventListener};
use sluice_storage::{LogConfig, PartitionLog, ValidationConfig};
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
    /// The log. Borrowed only inside synchronous code, never across an `.await`.
    pub log: RefCell<PartitionLog>,
    /// The current leader epoch, written into appended batches.
    pub leader_epoch: Cell<i32>,
    /// Effective topic config.
    pub config: RefCell<EffectiveTopicConfig>,
    appended: Event,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(
        topic: String,
        index: i32,
        topic_id: Uuid,
        log: PartitionLog,
        leader_epoch: i32,
        config: EffectiveTopicConfig,
    ) -> Partition {
        Partition {
            topic,
            index,
            topic_id,
            log: RefCell::new(log),
            leader_epoch: Cell::new(leader_epoch),
            config: RefCell::new(config),
            appended: Event::new(),
        }
    }

    /// The high watermark: the minimum log end offset of the in-sync replicas, which today
    /// are only this leader (so it equals the log end offset).
    pub fn high_watermark(&self) -> i64 {
        let log = self.log.borrow();
        let hw = sluice_replication::high_watermark(log.log_end_offset(), &[]);
        debug_assert!(
            hw >= log.log_start_offset(),
            "high watermark below log start"
        );
        hw
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

    /// The log start offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log.borrow().log_start_offset()
    }

    /// Wakes fetches parked on this partition (called after every append).
    pub fn notify_appended(&self) {
        self.appended.notify(usize::MAX);
    }

    /// A future completing at the next append (for long-poll fetches).
    pub fn listen(&self) -> EventListener {
        self.appended.listen()
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
