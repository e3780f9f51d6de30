//! Broker metrics: shard-local counters, gathered on demand and served in Prometheus text.
//!
//! Each shard counts into its own [`ShardMetrics`] (plain `Cell`s and `RefCell`s: no atomics,
//! no locks, nothing shared between cores). A scrape of the HTTP endpoint ([`http`], on shard 0)
//! asks every shard for a [`ShardSnapshot`] over the cross-shard channels and renders them
//! ([`render`]), so the data path never pays for a scrape.

pub mod http;
pub mod render;

use crate::metadata::ClusterState;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

/// The partitions of `state` without a leader (Kafka's `OfflinePartitionsCount`): no replica
/// can serve them until one is elected.
pub fn offline_partitions(state: &ClusterState) -> usize {
    state
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.leader < 0)
        .count()
}

/// Upper bounds (seconds) of the request-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Request count and latency histogram of one API on one shard.
#[derive(Debug, Clone, Default)]
pub struct ApiStats {
    /// Requests handled.
    pub count: u64,
    /// Non-cumulative count per bucket of [`LATENCY_BUCKETS`], plus one for +Inf.
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of latencies, seconds.
    pub sum_seconds: f64,
}

impl ApiStats {
    fn observe(&mut self, latency: Duration) {
        let s = latency.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot] += 1;
        self.count += 1;
        self.sum_seconds += s;
    }
}

/// Bytes moved for one topic on one shard.
#[derive(Debug, Clone, Copy, Default)]
pub struct TopicBytes {
    /// Record bytes appended by Produce.
    pub bytes_in: u64,
    /// Record bytes returned by Fetch.
    pub bytes_out: u64,
}

/// One shard's counters.
#[derive(Default)]
pub struct ShardMetrics {
    requests: RefCell<BTreeMap<i16, ApiStats>>,
    errors: RefCell<BTreeMap<(i16, i16), u64>>,
    topics: RefCell<BTreeMap<String, TopicBytes>>,
    fetch_waiting: Cell<u64>,
    produce_waiting: Cell<u64>,
    reads_page_cache: Cell<u64>,
    reads_disk: Cell<u64>,
    cleaner_runs: Cell<u64>,
    cleaner_bytes_read: Cell<u64>,
    cleaner_bytes_written: Cell<u64>,
    isr_shrinks: Cell<u64>,
    isr_expands: Cell<u64>,
}

/// Keeps a purgatory gauge raised while alive.
pub struct Parked<'a>(&'a Cell<u64>);

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl ShardMetrics {
    /// Counts one request of `api_key` that took `latency`.
    pub fn record_request(&self, api_key: i16, latency: Duration) {
        self.requests
            .borrow_mut()
            .entry(api_key)
            .or_default()
            .observe(latency);
    }

    /// Counts one error `code` (non-zero) returned by `api_key`.
    pub fn record_error(&self, api_key: i16, code: i16) {
        if code != 0 {
            *self.errors.borrow_mut().entry((api_key, code)).or_default() += 1;
        }
    }

    /// Counts one finished log cleaning and its I/O.
    pub fn record_cleaning(&self, bytes_read: u64, bytes_written: u64) {
        self.cleaner_runs.set(self.cleaner_runs.get() + 1);
        self.cleaner_bytes_read
            .set(self.cleaner_bytes_read.get() + bytes_read);
        self.cleaner_bytes_written
            .set(self.cleaner_bytes_written.get() + bytes_written);
    }

    /// Counts the change of a led partition's committed ISR from `old_isr` to `new_isr`
    /// between two metadata images: a shrink when a member left, an expansion when one
    /// joined (Kafka's `IsrShrinksPerSec` / `IsrExpandsPerSec`, once per change).
    pub fn record_isr_change(&self, old_isr: &[i32], new_isr: &[i32]) {
        if old_isr.iter().any(|r| !new_isr.contains(r)) {
            self.isr_shrinks.set(self.isr_shrinks.get() + 1);
        }
        if new_isr.iter().any(|r| !old_isr.contains(r)) {
            self.isr_expands.set(self.isr_expands.get() + 1);
        }
    }

    /// Adds record bytes produced to `topic`.
    pub fn add_bytes_in(&self, topic: &str, bytes: u64) {
        self.topic_entry(topic, |t| t.bytes_in += bytes);
    }

    /// Adds record bytes fetched from `topic`.
    pub fn add_bytes_out(&self, topic: &str, bytes: u64) {
        self.topic_entry(topic, |t| t.bytes_out += bytes);
    }

    fn topic_entry(&self, topic: &str, f: impl FnOnce(&mut TopicBytes)) {
        let mut topics = self.topics.borrow_mut();
        match topics.get_mut(topic) {
            Some(t) => f(t),
            None => f(topics.entry(topic.to_string()).or_default()),
        }
    }

    /// Marks a fetch as parked (long poll) until the guard drops.
    pub fn fetch_parked(&self) -> Parked<'_> {
        self.fetch_waiting.set(self.fetch_waiting.get() + 1);
        Parked(&self.fetch_waiting)
    }

    /// Marks a produce as waiting for its fsync until the guard drops.
    pub fn produce_parked(&self) -> Parked<'_> {
        self.produce_waiting.set(self.produce_waiting.get() + 1);
        Parked(&self.produce_waiting)
    }

    /// Counts fetch file regions served from the page cache and from disk.
    pub fn record_reads(&self, page_cache: u64, disk: u64) {
        self.reads_page_cache
            .set(self.reads_page_cache.get() + page_cache);
        self.reads_disk.set(self.reads_disk.get() + disk);
    }

    /// A copy of the counters, plus the gauges the caller measures.
    pub fn snapshot(
        &self,
        shard: u32,
        connections: u64,
        partitions: Vec<PartitionStats>,
        replication: ReplicationStats,
    ) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            replication,
            isr_shrinks: self.isr_shrinks.get(),
            isr_expands: self.isr_expands.get(),
            requests: self.requests.borrow().clone(),
            errors: self.errors.borrow().clone(),
            topics: self.topics.borrow().clone(),
            connections,
            partitions,
            fetch_waiting: self.fetch_waiting.get(),
            produce_waiting: self.produce_waiting.get(),
            reads_page_cache: self.reads_page_cache.get(),
            reads_disk: self.reads_disk.get(),
            cleaner_runs: self.cleaner_runs.get(),
            cleaner_bytes_read: self.cleaner_bytes_read.get(),
            cleaner_bytes_written: self.cleaner_bytes_written.get(),
        }
    }
}

/// Gauges of one partition replica.
#[derive(Debug, Clone)]
pub struct PartitionStats {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// The replication gauges of one shard, measured at a scrape.
#[derive(Debug, Clone, Default)]
pub struct ReplicationStats {
    /// Partitions led here whose committed ISR is smaller than their replica set (Kafka's
    /// `UnderReplicatedPartitions`).
    pub under_replicated_partitions: u64,
    /// Partitions led here whose committed ISR is smaller than `min.insync.replicas` (Kafka's
    /// `UnderMinIsrPartitionCount`).
    pub under_min_isr_partitions: u64,
    /// Every partition followed here whose fetcher knows its lag.
    pub follower_lags: Vec<FollowerLag>,
}

/// How far one follower is behind its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerLag {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The leader's node id.
    pub leader: i32,
    /// Records between the follower's log end and the leader's high watermark (Kafka's fetcher
    /// `ConsumerLag`, never negative).
    pub lag: i64,
}

/// Everything one shard reports to a scrape.
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    /// Shard index.
    pub shard: u32,
    /// Per API key.
    pub requests: BTreeMap<i16, ApiStats>,
    /// Per (API key, error code).
    pub errors: BTreeMap<(i16, i16), u64>,
    /// Per topic.
    pub topics: BTreeMap<String, TopicBytes>,
    /// Open client connections.
    pub connections: u64,
    /// The partition replicas on the shard, leaders and followers.
    pub partitions: Vec<PartitionStats>,
    /// Under-replicated and under-min-ISR counts, follower lags.
    pub replication: ReplicationStats,
    /// Shrinks of the committed ISR of partitions led here.
    pub isr_shrinks: u64,
    /// Expansions of the committed ISR of partitions led here.
    pub isr_expands: u64,
    /// Fetches parked in long poll.
    pub fetch_waiting: u64,
    /// Produce requests waiting for an fsync.
    pub produce_waiting: u64,
    /// Fetch file regions sent from the page cache (sendfile).
    pub reads_page_cache: u64,
    /// Fetch file regions read from disk first.
    pub reads_disk: u64,
    /// Log cleanings finished.
    pub cleaner_runs: u64,
    /// Bytes the log cleaner read.
    pub cleaner_bytes_read: u64,
    /// Bytes the log cleaner wrote.
    pub cleaner_bytes_written: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_every_observation_once() {
        let m = ShardMetrics::default();
        for us in [50, 300, 2_000, 20_000_000] {
            m.record_request(0, Duration::from_micros(us));
        }
        let s = m.snapshot(0, 0, vec![], ReplicationStats::default());
        let stats = &s.requests[&0];
        assert_eq!(stats.count, 4);
        assert_eq!(stats.buckets.iter().sum::<u64>(), 4);
        assert_eq!(
            stats.buckets[LATENCY_BUCKETS.len()],
            1,
            "20 s lands in +Inf"
        );
    }

    #[test]
    fn isr_changes_count_shrinks_and_expansions_once_each() {
        let m = ShardMetrics::default();
        m.record_isr_change(&[1, 2, 3], &[1, 2, 3]);
        m.record_isr_change(&[1, 2, 3], &[1, 3]);
        m.record_isr_change(&[1, 3], &[1, 2, 3]);
        // A member swapped for another: both.
        m.record_isr_change(&[1, 2], &[1, 3]);
        let s = m.snapshot(0, 0, vec![], ReplicationStats::default());
        assert_eq!((s.isr_shrinks, s.isr_expands), (2, 2));
    }

    #[test]
    fn purgatory_gauges_follow_guards() {
        let m = ShardMetrics::default();
        let a = m.fetch_parked();
        let b = m.fetch_parked();
        assert_eq!(
            m.snapshot(0, 0, vec![], ReplicationStats::default())
                .fetch_waiting,
            2
        );
        drop(a);
        drop(b);
        assert_eq!(
            m.snapshot(0, 0, vec![], ReplicationStats::default())
                .fetch_waiting,
            0
        );
    }
}
