//! A shard's replicas as leaders and followers (Kafka's `ReplicaManager`): makes each local
//! replica leader or follower as every new metadata image says, runs the shard's replica
//! fetchers, checks the ISR of the partitions it leads, and sends their ISR changes to the
//! controller (AlterPartition).
//!
//! * On each image ([`apply_roles`]): a replica this node leads gets the committed replicas and
//!   ISR (its [`Partition`] tracks the followers and the high watermark); a replica another
//!   node leads is handed to the fetcher of that leader, which truncates it by
//!   OffsetForLeaderEpoch and then copies the leader's batches; a replica with no leader is
//!   only kept. A replica leaving the fetchers is removed from them before it leads.
//! * Every `replica.lag.time.max.ms / 2` ([`check_isr`]): each led partition drops the
//!   followers that have not caught up within `replica.lag.time.max.ms`.
//! * ISR changes ([`send_isr_proposal`]) go to the active controller as an AlterPartition and
//!   count once committed: the next image carries them.
//!
//! The follower side of a [`Partition`] is [`FollowerReplica`], the fetcher's view of it. A
//! truncation is made durable on the shard's file worker before the replica appends again
//! (no fsync on the shard's thread).
//!
//! Replication throttles (KIP-73, [`crate::replication_throttle`]) are applied with every
//! image too: the fetchers get this shard's share of `follower.replication.throttled.rate`
//! and each followed partition whether `follower.replication.throttled.replicas` names it;
//! the leader side ([`ReplicaManager::leader_throttle`]) gets the leader rate and the
//! partitions `leader.replication.throttled.replicas` names. The fetchers run with the
//! broker's `replica.fetch.*` and `replication.quota.window.*` settings.

use crate::config::BrokerConfig;
use crate::controller_rpc::{alter_partition, AlterPartitionRequest, IsrMember};
use crate::file_worker::FileWorker;
use crate::metadata::{MetadataImage, PartitionState};
use crate::partition::Partition;
use crate::replication_throttle::{
    describe_rate, follower_rate, quota_window, throttled_topics, LeaderThrottle,
    FOLLOWER_THROTTLED_REPLICAS,
};
use crate::shard::Shard;
use crate::time::now_ms;
use bytes::Bytes;
use sluice_replication::fetcher::{
    FollowerAppend, FollowerLog, FollowerLogError, FollowerPartition, FollowerStatus,
    LeaderEndpoint, ReplicaFetcherConfig, ReplicaFetcherManager, TopicPartition,
};
use sluice_replication::leader::{FollowerBrokerState, IsrProposal, LeaderAndIsr, LeaderConfig};
use sluice_storage::{FollowerAppendError, LogTruncation, StorageError};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// A shard's replica fetchers and the partitions they follow, and the leader side of its
/// replication throttle.
pub struct ReplicaManager {
    fetchers: RefCell<Option<ReplicaFetcherManager>>,
    followed: RefCell<HashSet<TopicPartition>>,
    leader_throttle: LeaderThrottle,
}

impl ReplicaManager {
    /// No fetchers yet: the first follower replica starts them, on the shard's executor.
    pub fn new() -> ReplicaManager {
        ReplicaManager {
            fetchers: RefCell::new(None),
            followed: RefCell::new(HashSet::new()),
            leader_throttle: LeaderThrottle::new(),
        }
    }

    /// The leader side of the shard's replication throttle, which the fetch handler asks
    /// before it reads a throttled partition for a follower.
    pub fn leader_throttle(&self) -> &LeaderThrottle {
        &self.leader_throttle
    }

    /// The replication state of every partition this shard follows (for metrics and tools).
    pub fn follower_status(&self) -> Vec<FollowerStatus> {
        self.fetchers
            .borrow()
            .as_ref()
            .map(ReplicaFetcherManager::status)
            .unwrap_or_default()
    }

    /// Stops every fetcher (the shard is stopping).
    pub fn shutdown(&self) {
        if let Some(fetchers) = self.fetchers.borrow_mut().as_mut() {
            fetchers.shutdown();
        }
        self.followed.borrow_mut().clear();
    }
}

impl Default for ReplicaManager {
    fn default() -> Self {
        ReplicaManager::new()
    }
}

/// Makes every local replica leader or follower as the shard's current image says, and hands
/// the followers to the fetchers of their leaders.
pub fn apply_roles(shard: &Rc<Shard>) {
    let image = shard.image();
    let now = now_ms();
    let manager = &shard.replicas;
    manager
        .leader_throttle
        .apply(&shard.config, &image, shard.node_id);
    let mut fetchers = manager.fetchers.borrow_mut();
    let fetchers = fetchers.get_or_insert_with(|| {
        ReplicaFetcherManager::new(shard.node_id, -1, fetcher_config(&shard.config))
    });
    fetchers.set_broker_epoch(local_broker_epoch(&image));
    let rate = follower_rate(&shard.config, &image);
    if fetchers.throttled_rate() != rate {
        info!(
            node = shard.node_id,
            bytes_per_second = rate,
            "follower replication throttle: {}",
            describe_rate(rate)
        );
        fetchers.set_throttled_rate(rate);
    }
    let follower_throttled = throttled_topics(&image, FOLLOWER_THROTTLED_REPLICAS, shard.node_id);
    let mut still_followed = HashSet::new();
    for p in shard.all_partitions() {
        let Some(state) = image
            .topic(&p.topic)
            .and_then(|t| t.partitions.get(usize::try_from(p.index).ok()?))
        else {
            continue;
        };
        let tp = TopicPartition::new(&p.topic, p.index);
        if state.leader == shard.node_id {
            fetchers.remove_partition(&tp);
            make_leader(shard, &image, &p, state, now);
            continue;
        }
        p.make_follower(state.leader, state.leader_epoch);
        match image.node(state.leader) {
            Some(leader) if state.leader >= 0 => {
                let endpoint = LeaderEndpoint {
                    node_id: leader.node_id,
                    addr: format!("{}:{}", leader.host, leader.port),
                };
                let follower = FollowerPartition {
                    topic: p.topic.clone(),
                    topic_id: p.topic_id,
                    partition: p.index,
                    leader_epoch: state.leader_epoch,
                    log: Rc::new(FollowerReplica::new(p.clone(), shard.file_worker.clone())),
                    throttled: follower_throttled
                        .get(&p.topic)
                        .is_some_and(|t| t.contains(p.index)),
                };
                if fetchers.become_follower(&endpoint, follower) {
                    debug!(
                        topic = %p.topic, partition = p.index, leader = state.leader,
                        leader_epoch = state.leader_epoch, "following a new leader"
                    );
                }
                still_followed.insert(tp);
            }
            _ => {
                fetchers.remove_partition(&tp);
            }
        }
    }
    let mut followed = manager.followed.borrow_mut();
    for gone in followed.difference(&still_followed) {
        fetchers.remove_partition(gone);
    }
    *followed = still_followed;
}

/// The replica fetchers' settings from the broker config (`replica.fetch.*`,
/// `replication.quota.window.*`); `replica.socket.timeout.ms` keeps Kafka's 30 s default,
/// raised to `replica.fetch.wait.max.ms` if that is longer. Values the fetcher cannot work
/// with (a zero size) are raised to the least that works.
pub fn fetcher_config(config: &BrokerConfig) -> ReplicaFetcherConfig {
    let millis = |ms: i32| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let fetch_wait_max = millis(config.replica_fetch_wait_max_ms);
    let defaults = ReplicaFetcherConfig::default();
    let fetcher = ReplicaFetcherConfig {
        fetch_wait_max,
        fetch_min_bytes: config.replica_fetch_min_bytes.max(1),
        fetch_max_bytes: config.replica_fetch_max_bytes.max(1),
        fetch_response_max_bytes: config.replica_fetch_response_max_bytes.max(1),
        fetch_backoff: millis(config.replica_fetch_backoff_ms),
        socket_timeout: defaults.socket_timeout.max(fetch_wait_max),
        quota_window: quota_window(config),
    };
    debug_assert_eq!(
        fetcher.validate(),
        Ok(()),
        "the broker's replica settings make a valid fetcher config"
    );
    fetcher
}

/// Makes `p` the leader of its partition with the image's replicas and ISR, and tells it the
/// state of each follower's broker.
fn make_leader(
    shard: &Shard,
    image: &MetadataImage,
    p: &Rc<Partition>,
    state: &PartitionState,
    now: i64,
) {
    let leader_and_isr = LeaderAndIsr {
        leader: state.leader,
        replicas: state.replicas.clone(),
        isr: state.isr.clone(),
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
    };
    let config = LeaderConfig {
        replica_lag_time_max_ms: shard.config.replica_lag_time_max_ms,
        min_insync_replicas: usize::try_from(p.config.borrow().min_insync_replicas).unwrap_or(1),
    };
    let was_leader = p.is_leader();
    if let Err(e) = p.make_leader(&leader_and_isr, config, now) {
        warn!(topic = %p.topic, partition = p.index, error = %e, "cannot lead the partition");
        return;
    }
    if !was_leader {
        debug!(
            topic = %p.topic, partition = p.index, leader_epoch = state.leader_epoch,
            isr = ?state.isr, "leading the partition"
        );
    }
    for &follower in state.replicas.iter().filter(|&&r| r != state.leader) {
        p.update_follower_broker(follower, follower_broker_state(image, follower), now);
    }
}

/// What the image says about the broker of `node` (None when it is not registered).
fn follower_broker_state(image: &MetadataImage, node: i32) -> Option<FollowerBrokerState> {
    let broker = image
        .state
        .brokers
        .get(&crate::metadata::broker_of_node(node))?;
    Some(FollowerBrokerState {
        broker_epoch: i64::try_from(broker.epoch).unwrap_or(i64::MAX),
        fenced: broker.fenced,
        in_controlled_shutdown: false,
    })
}

/// This broker's registration epoch, -1 before it is registered.
fn local_broker_epoch(image: &MetadataImage) -> i64 {
    image
        .state
        .brokers
        .get(&image.broker_id)
        .map_or(-1, |b| i64::try_from(b.epoch).unwrap_or(i64::MAX))
}

/// The periodic ISR check of every partition this shard leads (Kafka's `isr-expiration`
/// task): lagging followers leave the ISR through the controller.
pub fn check_isr(shard: &Rc<Shard>) {
    let now = now_ms();
    for p in shard.all_partitions() {
        if let Some(shrink) = p.maybe_shrink_isr(now) {
            info!(
                topic = %p.topic, partition = p.index, removed = ?shrink.removed,
                "followers out of sync: shrinking the ISR"
            );
            send_isr_proposal(shard, &p, shrink);
        }
    }
}

/// Sends an ISR change of `p` (which this shard leads) to the active controller as an
/// AlterPartition, in the background. The change counts once committed, when the next image
/// brings it; a refusal or a failure frees the partition to propose again.
pub fn send_isr_proposal(shard: &Rc<Shard>, p: &Rc<Partition>, proposal: IsrProposal) {
    let shard = shard.clone();
    let p = p.clone();
    glommio::spawn_local(async move {
        let own_epoch = local_broker_epoch(&shard.image());
        let new_isr = proposal
            .new_isr
            .iter()
            .map(|m| IsrMember {
                node: m.replica_id,
                broker_epoch: if m.replica_id == proposal.leader {
                    own_epoch
                } else {
                    m.broker_epoch
                },
            })
            .collect();
        let request = AlterPartitionRequest {
            topic: p.topic.clone(),
            topic_id: p.topic_id,
            partition: p.index,
            leader: proposal.leader,
            leader_epoch: proposal.leader_epoch,
            partition_epoch: proposal.partition_epoch,
            new_isr,
        };
        let outcome = alter_partition(&shard.router, request).await;
        let refusal = (outcome.error_code != 0).then(|| outcome.error_message.unwrap_or_default());
        if let Some(reason) = refusal {
            info!(
                topic = %p.topic, partition = p.index, %reason,
                "the controller did not take the ISR change"
            );
            p.isr_proposal_failed(now_ms());
        }
    })
    .detach();
}

/// A follower [`Partition`] as the replica fetcher drives it.
pub struct FollowerReplica {
    partition: Rc<Partition>,
    file_worker: FileWorker,
}

impl FollowerReplica {
    /// The fetcher's view of `partition`, whose truncations are synced on `file_worker`.
    pub fn new(partition: Rc<Partition>, file_worker: FileWorker) -> FollowerReplica {
        FollowerReplica {
            partition,
            file_worker,
        }
    }

    /// Makes `truncation` durable off the shard's thread, then lets the log append again
    /// (until then, appends as follower or leader are refused).
    fn sync_in_background(&self, truncation: LogTruncation) {
        let partition = self.partition.clone();
        let worker = self.file_worker.clone();
        glommio::spawn_local(async move {
            let truncation = std::sync::Arc::new(truncation);
            let synced = {
                let truncation = truncation.clone();
                worker.run(move || truncation.sync()).await
            };
            match synced {
                Ok(Ok(())) => partition.complete_truncation(&truncation),
                Ok(Err(e)) => warn!(
                    topic = %partition.topic, partition = partition.index, error = %e,
                    "cannot make a truncation durable; the replica stops appending"
                ),
                Err(stopped) => warn!(error = %stopped, "file worker stopped"),
            }
        })
        .detach();
    }
}

impl FollowerLog for FollowerReplica {
    fn log_start_offset(&self) -> i64 {
        self.partition.log_start_offset()
    }

    fn log_end_offset(&self) -> i64 {
        self.partition.log_end_offset()
    }

    fn high_watermark(&self) -> i64 {
        self.partition.high_watermark()
    }

    fn latest_epoch(&self) -> Option<i32> {
        self.partition.latest_epoch()
    }

    fn end_offset_for_epoch(&self, leader_epoch: i32) -> (i32, i64) {
        self.partition.end_offset_for_epoch(leader_epoch)
    }

    fn append_as_follower(&self, records: &Bytes) -> Result<FollowerAppend, FollowerLogError> {
        if self.partition.truncation_pending() {
            return Err(FollowerLogError::InvalidRecords(
                "a truncation is still being made durable".into(),
            ));
        }
        let before = self.partition.log_end_offset();
        match self.partition.append_as_follower(records, now_ms()) {
            Ok(info) => Ok(FollowerAppend {
                last_offset: (info.last_offset >= before).then_some(info.last_offset),
                appended_bytes: records.len(),
            }),
            Err(e) => Err(follower_append_error(e)),
        }
    }

    fn truncate_to(&self, offset: i64) -> Result<(), FollowerLogError> {
        match self.partition.truncate_to(offset, now_ms()) {
            Ok(Some(truncation)) => {
                self.sync_in_background(truncation);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }

    fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), FollowerLogError> {
        let truncation = self
            .partition
            .truncate_fully_and_start_at(offset, now_ms())
            .map_err(storage_error)?;
        self.sync_in_background(truncation);
        Ok(())
    }

    fn set_high_watermark(&self, high_watermark: i64) {
        self.partition.set_follower_high_watermark(high_watermark);
    }

    fn maybe_increment_log_start_offset(
        &self,
        leader_log_start_offset: i64,
    ) -> Result<(), FollowerLogError> {
        self.partition
            .delete_records_before(leader_log_start_offset)
            .map(|_| ())
            .map_err(|e| FollowerLogError::Storage(e.to_string()))
    }
}

/// The fetcher's error for a refused follower append: bad data is retried, I/O stops.
fn follower_append_error(e: FollowerAppendError) -> FollowerLogError {
    match e {
        FollowerAppendError::Io(io) => FollowerLogError::Storage(io.to_string()),
        other => FollowerLogError::InvalidRecords(other.to_string()),
    }
}

/// The fetcher's error for a failed truncation.
fn storage_error(e: StorageError) -> FollowerLogError {
    FollowerLogError::Storage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(overrides: &[&str]) -> BrokerConfig {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        BrokerConfig::load(None, &o).unwrap()
    }

    #[test]
    fn fetchers_run_with_the_broker_replica_settings() {
        assert_eq!(
            fetcher_config(&broker(&[])),
            ReplicaFetcherConfig::default()
        );
        let config = broker(&[
            "replica.fetch.max.bytes=65536",
            "replica.fetch.min.bytes=0",
            "replica.fetch.response.max.bytes=1000000",
            "replica.fetch.backoff.ms=50",
            "replica.lag.time.max.ms=60000",
            "replica.fetch.wait.max.ms=45000",
            "replication.quota.window.num=4",
        ]);
        let fetcher = fetcher_config(&config);
        assert_eq!(
            (
                fetcher.fetch_max_bytes,
                fetcher.fetch_min_bytes,
                fetcher.fetch_response_max_bytes
            ),
            (65536, 1, 1_000_000),
            "a minimum of 0 bytes is raised to the 1 a fetcher needs"
        );
        assert_eq!(fetcher.fetch_backoff, Duration::from_millis(50));
        assert_eq!(fetcher.fetch_wait_max, Duration::from_secs(45));
        assert_eq!(
            fetcher.socket_timeout,
            Duration::from_secs(45),
            "the socket timeout covers the fetch wait"
        );
        assert_eq!(fetcher.quota_window.num, 4);
        assert_eq!(fetcher.validate(), Ok(()));
    }
}
