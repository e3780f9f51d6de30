//! Replication throttles (Kafka's replication quotas, KIP-73): the leader side of a shard, and
//! the settings both sides take from the broker configs and the metadata image.
//!
//! An operator bounds the replication of chosen replicas, typically while a reassignment
//! copies partitions to new brokers, with Kafka's keys:
//!
//! * the dynamic broker configs `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` (bytes per second, default `Long.MAX_VALUE`: none),
//!   set per broker (resource BROKER "<id>") or as cluster defaults (BROKER ""), and applied
//!   by every shard with the metadata image that brings them (no restart);
//! * the topic configs `leader.replication.throttled.replicas` and
//!   `follower.replication.throttled.replicas`: `*`, or `partition:broker` pairs naming the
//!   replicas on the leader's / the follower's side to throttle (see [`ThrottledReplicas`] for
//!   the ids).
//!
//! Leader side ([`LeaderThrottle`], here): a follower's fetch of a throttled partition gets
//! no records while the leader's throttled traffic is above its rate and that follower is
//! out of the ISR (Kafka's `shouldLeaderThrottle`: an in-sync follower is never held back, so
//! the throttle cannot shrink the ISR); the bytes sent for throttled partitions are recorded
//! whether the follower is in sync or not. Follower side (the replica fetchers,
//! `sluice_replication::fetcher`): the fetchers leave throttled, out-of-sync partitions out of
//! their fetches while the follower rate is exceeded.
//!
//! Both measure their rate over `replication.quota.window.num` samples of
//! `replication.quota.window.size.seconds` ([`ReplicationQuota`]). A shard is a Kafka node of
//! its own, with no lock shared between shards: each shard enforces an equal share of the
//! broker's rate ([`shard_share`]), so that the broker as a whole never exceeds it. A broker
//! whose throttled replicas all live on one shard therefore replicates them at that shard's
//! share only.
//!
//! Kafka reads the rates only as dynamic configs; Sluice also honours them from the
//! properties file (with the lowest precedence), like its other dynamic broker configs.

use crate::config::{BrokerConfig, DynamicBrokerConfigs, ThrottledReplicas};
use crate::metadata::MetadataImage;
use crate::partition::Partition;
use sluice_replication::fetcher::{QuotaWindow, ReplicationQuota, UNTHROTTLED};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tracing::info;

/// The topic config naming the replicas throttled on the leader side.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic config naming the replicas throttled on the follower side.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
/// The broker config bounding the leader side's throttled traffic.
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
/// The broker config bounding the follower side's throttled traffic.
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// The window both quotas measure over (`replication.quota.window.num` ×
/// `replication.quota.window.size.seconds`).
pub fn quota_window(config: &BrokerConfig) -> QuotaWindow {
    QuotaWindow {
        num: config.replication_quota_window_num.max(1),
        size: Duration::from_secs(u64::from(
            config.replication_quota_window_size_seconds.max(1),
        )),
    }
}

/// The broker's rate for `key` ([`LEADER_THROTTLED_RATE`] or [`FOLLOWER_THROTTLED_RATE`]):
/// the dynamic value set for this broker, else the dynamic cluster default, else the
/// properties file's `static_rate` (Kafka's default: [`UNTHROTTLED`]).
pub fn broker_rate(
    dynamic: &DynamicBrokerConfigs,
    broker_id: i32,
    key: &str,
    static_rate: i64,
) -> i64 {
    dynamic
        .value_for(broker_id, key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(static_rate)
}

/// One shard's share of a broker rate: an equal part per shard, so that the shards together
/// stay within it (at least 1 byte per second of a nonzero rate; unthrottled stays so).
pub fn shard_share(rate: i64, shards: u32) -> i64 {
    if rate == UNTHROTTLED || rate <= 0 {
        return rate.max(0);
    }
    (rate / i64::from(shards.max(1))).max(1)
}

/// This shard's follower rate in `image` (its share of `follower.replication.throttled.rate`).
pub fn follower_rate(config: &BrokerConfig, image: &MetadataImage) -> i64 {
    let rate = broker_rate(
        &image.state.broker_configs,
        image.broker_id,
        FOLLOWER_THROTTLED_RATE,
        config.follower_replication_throttled_rate,
    );
    shard_share(rate, image.shards)
}

/// The partitions each topic throttles on the shard `node_id` of this broker under topic
/// config `key` ([`LEADER_THROTTLED_REPLICAS`] or [`FOLLOWER_THROTTLED_REPLICAS`]); topics that
/// throttle nothing here are left out.
pub fn throttled_topics(
    image: &MetadataImage,
    key: &str,
    node_id: i32,
) -> HashMap<String, ThrottledReplicas> {
    image
        .state
        .topics
        .iter()
        .filter_map(|(name, topic)| {
            let throttled =
                ThrottledReplicas::parse(topic.configs.get(key)?, image.broker_id, node_id);
            (!throttled.is_empty()).then(|| (name.clone(), throttled))
        })
        .collect()
}

/// The leader side of a shard's replication throttle (Kafka's `quotaManagers.leader`): the
/// throttled partitions this shard leads and the bytes sent to their followers.
pub struct LeaderThrottle {
    quota: RefCell<ReplicationQuota>,
    throttled: RefCell<HashMap<String, ThrottledReplicas>>,
}

impl LeaderThrottle {
    /// Unthrottled, with nothing throttled, until the first [`LeaderThrottle::apply`].
    pub fn new() -> LeaderThrottle {
        LeaderThrottle {
            quota: RefCell::new(ReplicationQuota::unthrottled()),
            throttled: RefCell::new(HashMap::new()),
        }
    }

    /// Takes the rate (this shard's share of `leader.replication.throttled.rate`), the window
    /// and the throttled partitions of the shard `node_id` from a new metadata image.
    pub fn apply(&self, config: &BrokerConfig, image: &MetadataImage, node_id: i32) {
        let rate = broker_rate(
            &image.state.broker_configs,
            image.broker_id,
            LEADER_THROTTLED_RATE,
            config.leader_replication_throttled_rate,
        );
        let share = shard_share(rate, image.shards);
        let mut quota = self.quota.borrow_mut();
        quota.set_window(quota_window(config));
        if quota.bound() != share {
            info!(
                node = node_id,
                bytes_per_second = share,
                "leader replication throttle: {}",
                describe_rate(share)
            );
            quota.set_bound(share);
        }
        *self.throttled.borrow_mut() = throttled_topics(image, LEADER_THROTTLED_REPLICAS, node_id);
    }

    /// Whether `leader.replication.throttled.replicas` throttles partition `index` of
    /// `topic` on this shard (Kafka's `isThrottled`).
    pub fn is_throttled(&self, topic: &str, index: i32) -> bool {
        self.throttled
            .borrow()
            .get(topic)
            .is_some_and(|t| t.contains(index))
    }

    /// Whether the fetch of `p` by follower node `follower` gets no records now (Kafka's
    /// `shouldLeaderThrottle`): `p` is throttled, the follower is out of the ISR and the
    /// leader quota is exceeded.
    pub fn should_throttle(&self, p: &Partition, follower: i32) -> bool {
        if !self.is_throttled(&p.topic, p.index) {
            return false;
        }
        let in_sync = p
            .in_sync_replicas()
            .is_some_and(|isr| isr.contains(&follower));
        self.throttles(&p.topic, p.index, in_sync, Instant::now())
    }

    /// [`LeaderThrottle::should_throttle`] for a follower whose ISR membership is known, at
    /// `now`.
    pub fn throttles(&self, topic: &str, index: i32, follower_in_sync: bool, now: Instant) -> bool {
        !follower_in_sync
            && self.is_throttled(topic, index)
            && self.quota.borrow_mut().is_exceeded(now)
    }

    /// Records `bytes` of records sent to a follower for partition `index` of `topic`, if it
    /// is throttled (in sync or not: all throttled traffic counts).
    pub fn record(&self, topic: &str, index: i32, bytes: u64) {
        self.record_at(topic, index, bytes, Instant::now());
    }

    /// [`LeaderThrottle::record`] at `now`.
    pub fn record_at(&self, topic: &str, index: i32, bytes: u64, now: Instant) {
        if self.is_throttled(topic, index) {
            self.quota.borrow_mut().record(bytes, now);
        }
    }

    /// The leader quota's bound (this shard's share), in bytes per second.
    pub fn rate(&self) -> i64 {
        self.quota.borrow().bound()
    }
}

impl Default for LeaderThrottle {
    fn default() -> Self {
        LeaderThrottle::new()
    }
}

/// A rate for the logs: `N bytes/s per shard`, or `none`.
pub fn describe_rate(bytes_per_second: i64) -> String {
    if bytes_per_second == UNTHROTTLED {
        "none".to_string()
    } else {
        format!("{bytes_per_second} bytes/s per shard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{ClusterState, TopicState};
    use std::collections::BTreeMap;

    fn broker(overrides: &[&str]) -> BrokerConfig {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        BrokerConfig::load(None, &o).unwrap()
    }

    /// An image of broker 2 with `shards` shards, topics `(name, throttled-replicas key,
    /// value)` and dynamic broker configs `(broker id or None for the default, key, value)`.
    fn image(
        config: &BrokerConfig,
        shards: u32,
        topics: &[(&str, &str, &str)],
        dynamic: &[(Option<i32>, &str, &str)],
    ) -> MetadataImage {
        let mut state = ClusterState::new(Some("c".into()));
        for (i, (name, key, value)) in topics.iter().enumerate() {
            let mut topic = TopicState {
                id: uuid::Uuid::from_u128(i as u128 + 1),
                partitions: Vec::new(),
                configs: Default::default(),
                internal: false,
            };
            topic.configs.set(key, value).unwrap();
            state.topics.insert(name.to_string(), topic);
        }
        for (id, key, value) in dynamic {
            let d = &mut state.broker_configs;
            match id {
                None => {
                    d.cluster_default.insert(key.to_string(), value.to_string());
                }
                Some(id) => {
                    let mut configs = d.broker(*id).cloned().unwrap_or_default();
                    configs.insert(key.to_string(), value.to_string());
                    d.set_broker(*id, configs);
                }
            }
        }
        MetadataImage::new(state, config, shards)
    }

    #[test]
    fn rates_come_from_the_broker_then_the_default_then_the_file() {
        let none = DynamicBrokerConfigs::default();
        assert_eq!(
            broker_rate(&none, 2, LEADER_THROTTLED_RATE, UNTHROTTLED),
            UNTHROTTLED
        );
        assert_eq!(broker_rate(&none, 2, LEADER_THROTTLED_RATE, 500), 500);
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic
            .cluster_default
            .insert(LEADER_THROTTLED_RATE.into(), "300".into());
        assert_eq!(broker_rate(&dynamic, 2, LEADER_THROTTLED_RATE, 500), 300);
        dynamic.set_broker(
            2,
            BTreeMap::from([(LEADER_THROTTLED_RATE.to_string(), "100".to_string())]),
        );
        assert_eq!(broker_rate(&dynamic, 2, LEADER_THROTTLED_RATE, 500), 100);
        assert_eq!(broker_rate(&dynamic, 3, LEADER_THROTTLED_RATE, 500), 300);
        assert_eq!(broker_rate(&dynamic, 2, FOLLOWER_THROTTLED_RATE, 500), 500);
    }

    #[test]
    fn each_shard_gets_an_equal_share() {
        assert_eq!(shard_share(UNTHROTTLED, 4), UNTHROTTLED);
        assert_eq!(shard_share(1000, 4), 250);
        assert_eq!(shard_share(1000, 0), 1000);
        assert_eq!(shard_share(3, 4), 1, "a nonzero rate never becomes 0");
        assert_eq!(shard_share(0, 4), 0);
        assert_eq!(shard_share(-7, 4), 0);
        let config = broker(&["node.id=2", "follower.replication.throttled.rate=900"]);
        let img = image(&config, 3, &[], &[]);
        assert_eq!(follower_rate(&config, &img), 300);
        let img = image(&config, 3, &[], &[(None, FOLLOWER_THROTTLED_RATE, "60")]);
        assert_eq!(follower_rate(&config, &img), 20);
    }

    #[test]
    fn throttled_topics_of_a_shard() {
        let config = broker(&["node.id=2"]);
        let img = image(
            &config,
            2,
            &[
                ("all", LEADER_THROTTLED_REPLICAS, "*"),
                ("some", LEADER_THROTTLED_REPLICAS, "0:2,1:2001,2:1,3:2000"),
                ("others", LEADER_THROTTLED_REPLICAS, "0:1,1:3"),
                ("follower", FOLLOWER_THROTTLED_REPLICAS, "*"),
            ],
            &[],
        );
        let on_2001 = throttled_topics(&img, LEADER_THROTTLED_REPLICAS, 2001);
        assert_eq!(on_2001.len(), 2, "{on_2001:?}");
        assert_eq!(on_2001["all"], ThrottledReplicas::All);
        assert_eq!(
            on_2001["some"],
            ThrottledReplicas::Partitions([0, 1].into_iter().collect())
        );
        let on_2000 = throttled_topics(&img, LEADER_THROTTLED_REPLICAS, 2000);
        assert_eq!(
            on_2000["some"],
            ThrottledReplicas::Partitions([0, 3].into_iter().collect())
        );
        let followers = throttled_topics(&img, FOLLOWER_THROTTLED_REPLICAS, 2000);
        assert_eq!(followers.keys().collect::<Vec<_>>(), ["follower"]);
    }

    #[test]
    fn the_leader_holds_back_out_of_sync_followers_of_throttled_partitions_over_the_rate() {
        let t0 = Instant::now();
        let config = broker(&["node.id=2"]);
        let throttle = LeaderThrottle::new();
        assert_eq!(throttle.rate(), UNTHROTTLED);
        let img = image(
            &config,
            2,
            &[("t", LEADER_THROTTLED_REPLICAS, "0:2")],
            &[(Some(2), LEADER_THROTTLED_RATE, "2000")],
        );
        throttle.apply(&config, &img, 2000);
        assert_eq!(throttle.rate(), 1000, "half of 2000 for each of 2 shards");
        assert!(throttle.is_throttled("t", 0));
        assert!(!throttle.is_throttled("t", 1));
        assert!(!throttle.is_throttled("u", 0));

        // Unthrottled partitions' bytes are not recorded; throttled ones' are.
        throttle.record_at("t", 1, 1_000_000, t0);
        assert!(!throttle.throttles("t", 0, false, t0));
        throttle.record_at("t", 0, 1500, t0);
        assert!(throttle.throttles("t", 0, false, t0));
        assert!(
            !throttle.throttles("t", 0, true, t0),
            "in sync: never held back"
        );
        assert!(!throttle.throttles("t", 1, false, t0), "not throttled");
        // The average falls back under the rate.
        assert!(!throttle.throttles("t", 0, false, t0 + Duration::from_secs(2)));

        // Removing the rate (a new image) lets everything through at once.
        let img = image(&config, 2, &[("t", LEADER_THROTTLED_REPLICAS, "0:2")], &[]);
        throttle.apply(&config, &img, 2000);
        assert_eq!(throttle.rate(), UNTHROTTLED);
        assert!(!throttle.throttles("t", 0, false, t0));
        // Removing the replicas list leaves nothing throttled.
        let img = image(&config, 2, &[], &[(None, LEADER_THROTTLED_RATE, "10")]);
        throttle.apply(&config, &img, 2000);
        assert_eq!(throttle.rate(), 5);
        assert!(!throttle.is_throttled("t", 0));
    }

    #[test]
    fn the_window_comes_from_the_broker_config() {
        assert_eq!(quota_window(&broker(&[])), QuotaWindow::default());
        assert_eq!(
            quota_window(&broker(&[
                "replication.quota.window.num=3",
                "replication.quota.window.size.seconds=2"
            ])),
            QuotaWindow {
                num: 3,
                size: Duration::from_secs(2)
            }
        );
        assert_eq!(describe_rate(UNTHROTTLED), "none");
        assert_eq!(describe_rate(5), "5 bytes/s per shard");
    }
}
