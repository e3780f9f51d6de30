//! The follower side of replication: replica fetchers (Kafka's `AbstractFetcherThread`,
//! `ReplicaFetcherThread` and `ReplicaFetcherManager`).
//!
//! Each shard of a broker runs one [`ReplicaFetcherManager`], which runs one [`ReplicaFetcher`]
//! per leader node this shard follows partitions of. A fetcher is a glommio task on the
//! follower's shard with one connection straight to the leader's shard; it never blocks the
//! shard, and a follower on another shard of the same broker fetches exactly like a remote one.
//!
//! # The loop
//!
//! A fetcher's partitions are each in one [`FetchPhase`], possibly delayed after an error:
//!
//! * **Truncating** (every partition starts here, and returns here at a new leader epoch):
//!   one OffsetForLeaderEpoch request (v3+, as the replica) for all of them asks where the
//!   follower's latest epoch ends on the leader, and each log is truncated by KIP-101/279
//!   ([`truncation_for_epoch_end_offset`]); a log with no epoch truncates to its high
//!   watermark. Then the partition is fetching.
//! * **Fetching**: one Fetch (v12–v17; `ReplicaState` {node id, broker epoch} from v15,
//!   `replica_id` before; no fetch session) for all of them, from each log's end. The
//!   leader's batches are appended unchanged, the follower's high watermark becomes the
//!   leader's bounded by the local log, and the log start follows the leader's. A diverging
//!   epoch (KIP-320) truncates instead. OFFSET_OUT_OF_RANGE asks the leader for its log start
//!   and end (ListOffsets as the replica) and truncates or restarts the log
//!   ([`out_of_range_reset`]). Any other error delays the partition by
//!   `replica.fetch.backoff.ms` or until the engine brings new leadership information.
//! * **Failed**: the log reported a storage error; the partition waits for the engine to hand
//!   it over again.
//!
//! A connection failure closes the connection and retries after `replica.fetch.backoff.ms`.
//!
//! # Follower throttling (KIP-73)
//!
//! The fetchers of a shard share one [`ReplicationQuota`], bounded by the shard's share of
//! `follower.replication.throttled.rate` ([`ReplicaFetcherManager::set_throttled_rate`]). A
//! partition handed over as `throttled` (`follower.replication.throttled.replicas` names this
//! replica) counts the bytes it appends against that quota, and while the quota is exceeded
//! it is left out of the Fetch unless it is in sync (its log end has reached the leader's high
//! watermark), as Kafka's `shouldFollowerThrottle` does. A fetcher whose partitions are all
//! left out waits `replica.fetch.backoff.ms` before it looks again.
//! All decisions live in the `partitions` and `truncation` modules, as functions of the
//! answers, the time and the [`FollowerLog`] trait the engine implements for its
//! `Partition`; the task only sends requests and waits.
//!
//! # How the engine drives it
//!
//! On every metadata image, for each partition replicated on this shard's node:
//! * this node is a follower and the leader is another node →
//!   [`ReplicaFetcherManager::become_follower`] with the leader's node id and `host:port` and
//!   the partition's leader epoch (a no-op when nothing changed; a new epoch truncates again;
//!   a new leader moves the partition to that leader's fetcher);
//! * this node became the leader, the partition has no leader, or the replica left this node
//!   → [`ReplicaFetcherManager::remove_partition`] *before* the partition acts as leader;
//!   once it returns, the fetcher never touches that log again.
//!
//! On each broker registration, [`ReplicaFetcherManager::set_broker_epoch`]; for metrics,
//! [`ReplicaFetcherManager::status`]; at shutdown, [`ReplicaFetcherManager::shutdown`].

mod config;
mod log;
mod manager;
mod partitions;
mod quota;
mod replica_fetcher;
mod truncation;

#[cfg(test)]
mod fake_log;

pub use config::{FetcherConfigError, ReplicaFetcherConfig};
pub use log::{FollowerAppend, FollowerLog, FollowerLogError};
pub use manager::ReplicaFetcherManager;
pub use quota::{QuotaWindow, ReplicationQuota, UNTHROTTLED};
pub use replica_fetcher::ReplicaFetcher;
pub use truncation::{
    follower_high_watermark, out_of_range_reset, truncation_for_epoch_end_offset, OutOfRangeReset,
    Truncation,
};

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use uuid::Uuid;

/// A partition by topic name and index (Kafka's `TopicPartition`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A local replica handed to a fetcher: which partition, under which leader epoch, and its
/// log.
#[derive(Clone)]
pub struct FollowerPartition {
    /// Topic name.
    pub topic: String,
    /// Topic id (nil when unknown: the fetcher then names the topic in Fetch v12).
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The partition's leader epoch as the follower knows it from metadata, sent as
    /// `current_leader_epoch` so that a leader on another epoch refuses the request.
    pub leader_epoch: i32,
    /// The local log.
    pub log: Rc<dyn FollowerLog>,
    /// Whether the replica's replication is throttled on the follower side
    /// (`follower.replication.throttled.replicas` names it): its appended bytes count against
    /// the follower quota, and it is not fetched while the quota is exceeded and it is out of
    /// sync.
    pub throttled: bool,
}

impl FollowerPartition {
    /// The partition's name and index.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(&self.topic, self.partition)
    }
}

/// The leader node a fetcher fetches from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderEndpoint {
    /// The leader's node id (`broker * 1000 + shard`).
    pub node_id: i32,
    /// `host:port` of that shard's listener.
    pub addr: String,
}

/// Who the follower is, as it tells the leader in every request.
#[derive(Debug)]
pub struct FollowerIdentity {
    node_id: i32,
    broker_epoch: Cell<i64>,
}

impl FollowerIdentity {
    /// The follower node `node_id` with the broker epoch of its registration (-1 before the
    /// first).
    pub fn new(node_id: i32, broker_epoch: i64) -> FollowerIdentity {
        FollowerIdentity {
            node_id,
            broker_epoch: Cell::new(broker_epoch),
        }
    }

    /// The follower's node id, sent as `replica_id`.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The broker epoch sent as `ReplicaState.replica_epoch` (Fetch v15+, KIP-903).
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.get()
    }

    /// Adopts the broker epoch of a new registration.
    pub fn set_broker_epoch(&self, broker_epoch: i64) {
        self.broker_epoch.set(broker_epoch);
    }
}

/// Where a partition is in the fetch cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchPhase {
    /// Finding, by OffsetForLeaderEpoch, where the log diverges from the leader's.
    Truncating,
    /// Fetching from the log end.
    Fetching,
    /// Stopped after a storage error, until the engine hands the partition over again.
    Failed,
}

/// One followed partition's replication state, for metrics and `topic describe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// The leader node fetched from.
    pub leader_id: i32,
    /// The leader epoch the follower fetches under.
    pub leader_epoch: i32,
    /// Where the partition is in the fetch cycle.
    pub phase: FetchPhase,
    /// Whether it is held back after an error.
    pub delayed: bool,
    /// The follower's log end offset.
    pub log_end_offset: i64,
    /// The follower's high watermark.
    pub high_watermark: i64,
    /// The leader's high watermark in the last fetch response, if any yet.
    pub leader_high_watermark: Option<i64>,
    /// Kafka's fetcher lag: how far the follower's log end is behind the leader's high
    /// watermark (never negative); `None` before the first fetch response.
    pub lag: Option<i64>,
    /// The last error the partition met, cleared by the next success.
    pub last_error: Option<String>,
    /// Whether the partition's replication is throttled on the follower side.
    pub throttled: bool,
}
