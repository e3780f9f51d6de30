//! The replica fetchers of one shard, one per leader node (Kafka's `ReplicaFetcherManager`,
//! with one fetcher per leader where Kafka has `num.replica.fetchers` per broker: a shard is a
//! single thread, and its fetchers are tasks that cost nothing while they wait). The fetchers
//! share the shard's follower quota (Kafka's `quotaManagers.follower`, one per broker).

use super::{
    FollowerIdentity, FollowerPartition, FollowerStatus, LeaderEndpoint, ReplicaFetcher,
    ReplicaFetcherConfig, ReplicationQuota, TopicPartition, UNTHROTTLED,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The fetchers of one shard, keyed by leader node, and which fetcher holds each partition.
pub struct ReplicaFetcherManager {
    identity: Rc<FollowerIdentity>,
    config: ReplicaFetcherConfig,
    quota: Rc<RefCell<ReplicationQuota>>,
    fetchers: HashMap<i32, ReplicaFetcher>,
    leader_of: HashMap<TopicPartition, i32>,
}

impl ReplicaFetcherManager {
    /// No fetchers yet, for the follower node `node_id` registered with `broker_epoch` (-1
    /// before the first registration); the follower quota is unthrottled until
    /// [`ReplicaFetcherManager::set_throttled_rate`].
    pub fn new(
        node_id: i32,
        broker_epoch: i64,
        config: ReplicaFetcherConfig,
    ) -> ReplicaFetcherManager {
        let quota = ReplicationQuota::new(config.quota_window, UNTHROTTLED);
        ReplicaFetcherManager {
            identity: Rc::new(FollowerIdentity::new(node_id, broker_epoch)),
            config,
            quota: Rc::new(RefCell::new(quota)),
            fetchers: HashMap::new(),
            leader_of: HashMap::new(),
        }
    }

    /// Bounds the throttled partitions' replication to `bytes_per_second` (this shard's share
    /// of `follower.replication.throttled.rate`; [`UNTHROTTLED`] for none). A change applies
    /// to the next Fetch of every fetcher: they are woken, so that partitions held back go at
    /// once when the bound rises.
    pub fn set_throttled_rate(&self, bytes_per_second: i64) {
        let mut quota = self.quota.borrow_mut();
        if quota.bound() == bytes_per_second.max(0) {
            return;
        }
        quota.set_bound(bytes_per_second);
        drop(quota);
        for fetcher in self.fetchers.values() {
            fetcher.wake();
        }
    }

    /// The follower quota's bound, in bytes per second.
    pub fn throttled_rate(&self) -> i64 {
        self.quota.borrow().bound()
    }

    /// Adopts the broker epoch of a new registration; the next Fetch carries it.
    pub fn set_broker_epoch(&self, broker_epoch: i64) {
        self.identity.set_broker_epoch(broker_epoch);
    }

    /// Fetches `partition` from `leader` (Kafka's `addFetcherForPartitions`): added to that
    /// leader's fetcher (started on the current glommio executor when it is the first
    /// partition from that leader), and taken from another leader's fetcher if it was there.
    /// Handing over a partition already fetched from the same leader at the same leader epoch
    /// changes nothing; a new epoch truncates again. Returns whether the partition (re)starts
    /// truncating.
    pub fn become_follower(
        &mut self,
        leader: &LeaderEndpoint,
        partition: FollowerPartition,
    ) -> bool {
        let tp = partition.topic_partition();
        if let Some(previous) = self.leader_of.get(&tp).copied() {
            if previous != leader.node_id {
                self.remove_partition(&tp);
            }
        }
        let fetcher = self.fetchers.entry(leader.node_id).or_insert_with(|| {
            ReplicaFetcher::start(
                leader.clone(),
                self.identity.clone(),
                self.config.clone(),
                self.quota.clone(),
            )
        });
        fetcher.set_leader_address(&leader.addr);
        let rearmed = fetcher.add_partition(partition);
        self.leader_of.insert(tp.clone(), leader.node_id);
        self.check_invariants(Some(&tp));
        rearmed
    }

    /// New leadership information for a followed partition whose leader node stays the same:
    /// a different leader epoch truncates again, and a partition delayed after an error is
    /// retried at once. Returns whether the partition is followed here.
    pub fn update_leader_epoch(&self, tp: &TopicPartition, leader_epoch: i32) -> bool {
        self.leader_of
            .get(tp)
            .and_then(|leader| self.fetchers.get(leader))
            .is_some_and(|fetcher| fetcher.update_leader_epoch(tp, leader_epoch))
    }

    /// Stops fetching `tp` (Kafka's `removeFetcherForPartitions`), and stops its fetcher when
    /// that was its last partition. Once this returns, no fetcher touches the partition's log.
    /// Returns whether it was followed here.
    pub fn remove_partition(&mut self, tp: &TopicPartition) -> bool {
        let Some(leader) = self.leader_of.remove(tp) else {
            return false;
        };
        if let Some(fetcher) = self.fetchers.get(&leader) {
            fetcher.remove_partition(tp);
            if fetcher.partition_count() == 0 {
                if let Some(idle) = self.fetchers.remove(&leader) {
                    idle.stop();
                }
            }
        }
        self.check_invariants(None);
        true
    }

    /// The leader node `tp` is fetched from, if it is followed here.
    pub fn leader_of(&self, tp: &TopicPartition) -> Option<i32> {
        self.leader_of.get(tp).copied()
    }

    /// The number of partitions followed.
    pub fn partition_count(&self) -> usize {
        self.leader_of.len()
    }

    /// The number of running fetchers (leader nodes followed).
    pub fn fetcher_count(&self) -> usize {
        self.fetchers.len()
    }

    /// The replication state of every followed partition.
    pub fn status(&self) -> Vec<FollowerStatus> {
        self.fetchers.values().flat_map(|f| f.status()).collect()
    }

    /// Stops every fetcher (Kafka's `closeAllFetchers`).
    pub fn shutdown(&mut self) {
        self.leader_of.clear();
        for (_, fetcher) in self.fetchers.drain() {
            fetcher.stop();
        }
    }

    /// The fetchers hold exactly the followed partitions (`touched` in its leader's), and no
    /// fetcher is idle.
    fn check_invariants(&self, touched: Option<&TopicPartition>) {
        if let Some(tp) = touched {
            debug_assert!(
                self.leader_of
                    .get(tp)
                    .and_then(|leader| self.fetchers.get(leader))
                    .is_some_and(|f| f.contains(tp)),
                "a followed partition is in its leader's fetcher"
            );
        }
        debug_assert_eq!(
            self.fetchers
                .values()
                .map(ReplicaFetcher::partition_count)
                .sum::<usize>(),
            self.leader_of.len(),
            "fetchers hold exactly the followed partitions"
        );
        debug_assert!(
            self.fetchers.values().all(|f| f.partition_count() > 0),
            "no fetcher runs without partitions"
        );
    }
}

impl Drop for ReplicaFetcherManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake_log::FakeLog;
    use super::super::FetchPhase;
    use super::*;
    use std::time::Duration;
    use uuid::Uuid;

    fn partition(index: i32, leader_epoch: i32) -> FollowerPartition {
        FollowerPartition {
            topic: "t".into(),
            topic_id: Uuid::from_u128(7),
            partition: index,
            leader_epoch,
            log: Rc::new(FakeLog::new()),
            throttled: false,
        }
    }

    /// An address nothing listens on: connections are refused at once.
    fn closed_addr() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        addr
    }

    fn on_executor<F, Fut>(test: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 * 1024)
            .spawn(test)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn one_fetcher_per_leader_node_and_partitions_move_with_their_leader() {
        on_executor(|| async {
            let config = ReplicaFetcherConfig {
                fetch_backoff: Duration::from_millis(50),
                ..ReplicaFetcherConfig::default()
            };
            let mut manager = ReplicaFetcherManager::new(2001, 5, config);
            assert_eq!(manager.throttled_rate(), UNTHROTTLED);
            manager.set_throttled_rate(-3);
            assert_eq!(manager.throttled_rate(), 0, "a negative rate means 0");
            manager.set_throttled_rate(UNTHROTTLED);
            let a = LeaderEndpoint {
                node_id: 1000,
                addr: closed_addr(),
            };
            let b = LeaderEndpoint {
                node_id: 3000,
                addr: closed_addr(),
            };
            let p0 = TopicPartition::new("t", 0);
            let p1 = TopicPartition::new("t", 1);
            assert!(manager.become_follower(&a, partition(0, 1)));
            assert!(manager.become_follower(&a, partition(1, 1)));
            assert_eq!((manager.fetcher_count(), manager.partition_count()), (1, 2));
            // The same leader and epoch again changes nothing.
            assert!(!manager.become_follower(&a, partition(0, 1)));
            // A new leader takes the partition to its own fetcher.
            assert!(manager.become_follower(&b, partition(0, 2)));
            assert_eq!((manager.fetcher_count(), manager.partition_count()), (2, 2));
            assert_eq!(manager.leader_of(&p0), Some(3000));
            assert!(manager.update_leader_epoch(&p0, 3));
            assert!(!manager.update_leader_epoch(&TopicPartition::new("u", 0), 3));
            // The last partition of a leader stops its fetcher.
            assert!(manager.remove_partition(&p1));
            assert!(!manager.remove_partition(&p1));
            assert_eq!((manager.fetcher_count(), manager.partition_count()), (1, 1));

            // The leader refuses connections: the fetcher backs off and says why.
            glommio::timer::sleep(Duration::from_millis(200)).await;
            let status = manager.status();
            assert_eq!(status.len(), 1);
            assert_eq!(status[0].topic_partition, p0);
            assert_eq!((status[0].leader_id, status[0].leader_epoch), (3000, 3));
            assert_eq!(status[0].phase, FetchPhase::Truncating);
            let error = status[0].last_error.as_deref().unwrap_or_default();
            assert!(error.contains("cannot connect"), "{error}");

            manager.shutdown();
            assert_eq!((manager.fetcher_count(), manager.partition_count()), (0, 0));
            assert!(manager.status().is_empty());
        });
    }
}
