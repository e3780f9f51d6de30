//! Replication throttles (KIP-73) on a real cluster of three brokers with two shards each.
//!
//! A one-partition topic with replication factor 3 loses a follower broker (SIGTERM: it
//! leaves the ISR) while a producer writes 8 MiB with acks=1. The broker comes back under a
//! throttle set with IncrementalAlterConfigs:
//!
//! 1. follower side: `follower.replication.throttled.rate` on that broker's BROKER resource
//!    (set through that broker before it stops) and `follower.replication.throttled.replicas`
//!    = `0:<its node.id>` on the topic;
//! 2. leader side (after the follower caught up, stopped again, and 8 MiB more): a cluster
//!    default (BROKER "") `leader.replication.throttled.rate` and
//!    `leader.replication.throttled.replicas` = `*`, set while the follower is down.
//!
//! Each shard enforces an equal share of its broker's rate. For 10 s from its first new byte,
//! the follower's log (its segment files on disk) must grow by at least a quarter of that
//! share and by no more than three times it (plus one fetch), then catch up within half the
//! time the throttled rate would need once the throttle is removed (the rate deleted in the
//! first phase, the replicas list in the second), and rejoin the ISR.
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::admin::{BROKER_RESOURCE, TOPIC_RESOURCE};
use common::cluster::*;
use common::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const BROKERS: u16 = 3;
const SHARDS: u16 = 2;
/// Upper bound for the whole test.
const TEST_LIMIT: Duration = Duration::from_secs(600);
/// Upper bound for one step (a broker restarting, the ISR changing).
const WAIT: Duration = Duration::from_secs(90);
/// The throttled rate set for a broker; each of its shards gets half.
const BROKER_RATE: u64 = 400_000;
/// What one shard may replicate under the throttle, in bytes per second.
const SHARD_RATE: f64 = (BROKER_RATE / SHARDS as u64) as f64;
/// Bytes produced while the follower is away, in each phase.
const DATA_BYTES: usize = 8 << 20;
/// Size of each record's value.
const VALUE_BYTES: usize = 1000;
/// `replica.fetch.max.bytes` of the cluster and `batch.size` of the producer: the most one
/// fetch brings beyond the throttled rate.
const FETCH_BYTES: u64 = 64 << 10;
/// How long the throttled follower is watched.
const OBSERVE: Duration = Duration::from_secs(10);
/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;

/// One partition as Metadata describes it: (leader, replicas, ISR).
type PartitionView = (i32, Vec<i32>, Vec<i32>);

/// Partition 0 of `topic` as Metadata at `addr` describes it.
fn partition_0(addr: SocketAddr, topic: &str) -> Option<PartitionView> {
    let mut c = RawClient::connect_negotiated(addr);
    let version = c.version::<MetadataRequest>(12);
    let md = c
        .send(
            &MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))])),
            version,
        )
        .ok()?;
    let p = md.topics.first()?.partitions.first()?;
    let ids = |nodes: &[kafka_protocol::messages::BrokerId]| nodes.iter().map(|n| n.0).collect();
    (p.error_code == errors::NONE)
        .then(|| (p.leader_id.0, ids(&p.replica_nodes), ids(&p.isr_nodes)))
}

/// Waits until partition 0 of `topic` (as `addr` sees it) satisfies `cond`; its last view.
fn wait_partition(
    addr: SocketAddr,
    topic: &str,
    what: &str,
    cond: impl Fn(&PartitionView) -> bool,
) -> PartitionView {
    let mut last = None;
    let ok = wait_until(WAIT, Duration::from_millis(100), || {
        last = partition_0(addr, topic).or(last.take());
        last.as_ref().is_some_and(&cond)
    });
    assert!(ok, "{topic}-0 never {what}: {last:?}");
    last.unwrap_or_default()
}

/// IncrementalAlterConfigs of one key of one resource (`value` None deletes it); the error
/// code.
fn alter(addr: SocketAddr, resource_type: i8, name: &str, key: &str, value: Option<&str>) -> i16 {
    let mut c = RawClient::connect_negotiated(addr);
    let version = c.version::<IncrementalAlterConfigsRequest>(1);
    let sb = |s: &str| StrBytes::from_string(s.to_string());
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configs(vec![AlterableConfig::default()
                .with_name(sb(key))
                .with_config_operation(if value.is_some() { SET } else { DELETE })
                .with_value(value.map(sb))]),
    ]);
    let response = c.send(&request, version).expect("IncrementalAlterConfigs");
    response.responses[0].error_code
}

/// The directory of partition 0 of `topic` on `node` of `cluster` (every shard keeps its
/// partitions in the broker's `log.dirs`).
fn partition_dir(cluster: &Cluster, node: i32, topic: &str) -> PathBuf {
    cluster
        .data_dir((node / 1000) as u16)
        .join(format!("{topic}-0"))
}

/// Bytes in the segment files (`*.log`) of a partition directory (0 before it exists).
fn log_bytes(dir: &PathBuf) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Produces [`DATA_BYTES`] of records with acks=1 and waits until every one is acknowledged.
fn produce(cluster: &Cluster, topic: &str) {
    let batch = FETCH_BYTES.to_string();
    let (p, log) = producer(
        &cluster.bootstrap(),
        &[("acks", "1"), ("linger.ms", "5"), ("batch.size", &batch)],
    );
    let count = DATA_BYTES / VALUE_BYTES;
    let deadline = Instant::now() + WAIT;
    for i in 0..count {
        let value: Vec<u8> = (0..VALUE_BYTES)
            .map(|j| (i.wrapping_mul(31).wrapping_add(j * 7) % 251) as u8)
            .collect();
        let m = Msg {
            value: Some(value),
            ..Msg::default()
        };
        send(&p, topic, i, &m, deadline);
    }
    wait_delivered(&p, &log, count as u64, WAIT);
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
}

/// Waits until the high watermark of `topic`-0 on `leader` covers `phases` × the records
/// [`produce`] writes: the other follower has them, so that the returning follower is behind
/// the high watermark, out of sync for the throttles (a follower at or past the high
/// watermark counts as caught up and is never held back).
fn wait_committed(cluster: &Cluster, leader: i32, topic: &str, phases: usize) {
    let bootstrap = cluster.bootstrap_of(&[(leader / 1000) as u16]);
    let records = (phases * (DATA_BYTES / VALUE_BYTES)) as i64;
    let mut high = -1;
    let committed = wait_until(WAIT, Duration::from_millis(100), || {
        high = watermarks(&bootstrap, topic, 0).1;
        high == records
    });
    assert!(
        committed,
        "the high watermark stayed at {high} of {records}"
    );
}

/// Watches the follower's log for [`OBSERVE`] from its first byte past `start_bytes`, and
/// checks that it grew at about the throttled shard rate; returns the bytes still missing.
fn watch_throttled(dir: &PathBuf, start_bytes: u64, leader_bytes: u64, side: &str) -> u64 {
    let moved = wait_until(WAIT, Duration::from_millis(20), || {
        log_bytes(dir) > start_bytes
    });
    assert!(moved, "{side}: the follower never replicated a byte");
    let first = Instant::now();
    std::thread::sleep(OBSERVE);
    let grown = log_bytes(dir) - start_bytes;
    let elapsed = first.elapsed().as_secs_f64();
    let ceiling = 3.0 * SHARD_RATE * elapsed + 2.0 * FETCH_BYTES as f64;
    let floor = SHARD_RATE * elapsed / 4.0;
    eprintln!(
        "{side}: {grown} bytes in {elapsed:.1} s ({:.0} B/s; shard rate {SHARD_RATE} B/s)",
        grown as f64 / elapsed
    );
    assert!(
        (grown as f64) <= ceiling,
        "{side}: the follower replicated {grown} bytes in {elapsed:.1} s, over 3 × {SHARD_RATE} B/s"
    );
    assert!(
        (grown as f64) >= floor,
        "{side}: the follower replicated only {grown} bytes in {elapsed:.1} s at {SHARD_RATE} B/s"
    );
    leader_bytes - (start_bytes + grown)
}

/// Waits until the follower `node` holds the leader's bytes, checking it took at most half
/// of what the throttled rate would have needed for the `missing` bytes, and then until it is
/// back in the ISR (as `watch` sees it).
fn catches_up(
    cluster: &Cluster,
    watch: SocketAddr,
    topic: &str,
    node: i32,
    missing: u64,
    leader_bytes: u64,
) {
    let removed = Instant::now();
    let dir = partition_dir(cluster, node, topic);
    let same = wait_until(WAIT, Duration::from_millis(20), || {
        log_bytes(&dir) == leader_bytes
    });
    assert!(
        same,
        "the follower holds {} bytes, the leader {leader_bytes}",
        log_bytes(&dir)
    );
    let took = removed.elapsed();
    wait_partition(watch, topic, "took the follower back into the ISR", |p| {
        p.2.contains(&node)
    });
    let throttled = Duration::from_secs_f64(missing as f64 / SHARD_RATE);
    eprintln!(
        "caught up {missing} bytes in {took:?} (throttled: {throttled:?}), in the ISR after {:?}",
        removed.elapsed()
    );
    assert!(
        took < throttled / 2,
        "{missing} bytes took {took:?} without the throttle; throttled they take {throttled:?}"
    );
}

#[test]
fn throttled_followers_catch_up_at_the_throttled_rate() {
    bounded(TEST_LIMIT, || {
        let mut cluster = Cluster::builder(BROKERS, SHARDS)
            .set("replica.fetch.max.bytes", FETCH_BYTES)
            .start();
        let topic = unique("throttled");
        let watch = cluster.broker(1).addr(0);
        let mut c = RawClient::connect_negotiated(watch);
        let version = c.version::<CreateTopicsRequest>(7);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                .with_num_partitions(1)
                .with_replication_factor(3)])
            .with_timeout_ms(10_000);
        let created = c.send(&request, version).expect("CreateTopics");
        assert_eq!(created.topics[0].error_code, errors::NONE);
        let (leader, replicas, _) = wait_partition(watch, &topic, "had its whole ISR", |p| {
            p.0 >= 0 && p.2.len() == 3
        });
        // The follower: not the preferred leader (the first replica), so that no automatic
        // election moves leadership to it when it catches up.
        let follower = *replicas
            .iter()
            .skip(1)
            .find(|n| **n / 1000 != leader / 1000)
            .expect("a follower on another broker");
        let follower_broker = (follower / 1000) as u16;
        let admin = cluster.broker((leader / 1000) as u16).addr(0);
        let follower_dir = partition_dir(&cluster, follower, &topic);
        let leader_dir = partition_dir(&cluster, leader, &topic);
        eprintln!("leader {leader}, follower {follower}, replicas {replicas:?}");

        // Phase 1: the follower side. A BROKER resource is altered through that broker (as in
        // Kafka), so the follower's rate is set before it stops.
        let follower_addr = cluster.broker(follower_broker).addr(0);
        let broker_name = follower_broker.to_string();
        let rate = BROKER_RATE.to_string();
        let follower_rate = "follower.replication.throttled.rate";
        let replicas_key = "follower.replication.throttled.replicas";
        let own_pair = format!("0:{follower_broker}");
        let set_rate = alter(
            follower_addr,
            BROKER_RESOURCE,
            &broker_name,
            follower_rate,
            Some(&rate),
        );
        assert_eq!(set_rate, errors::NONE);
        assert_eq!(
            alter(admin, TOPIC_RESOURCE, &topic, replicas_key, Some(&own_pair)),
            errors::NONE
        );
        cluster.stop(follower_broker);
        wait_partition(admin, &topic, "let the stopped follower go", |p| {
            !p.2.contains(&follower)
        });
        produce(&cluster, &topic);
        let leader_bytes = log_bytes(&leader_dir);
        let start_bytes = log_bytes(&follower_dir);
        wait_committed(&cluster, leader, &topic, 1);
        cluster.start_again(follower_broker);
        let missing = watch_throttled(&follower_dir, start_bytes, leader_bytes, "follower side");
        let deleted = alter(
            follower_addr,
            BROKER_RESOURCE,
            &broker_name,
            follower_rate,
            None,
        );
        assert_eq!(deleted, errors::NONE);
        catches_up(&cluster, admin, &topic, follower, missing, leader_bytes);

        // Phase 2: the leader side, with the rate as a cluster default.
        cluster.stop(follower_broker);
        wait_partition(admin, &topic, "let the stopped follower go", |p| {
            !p.2.contains(&follower)
        });
        produce(&cluster, &topic);
        let leader_bytes = log_bytes(&leader_dir);
        let start_bytes = log_bytes(&follower_dir);
        wait_committed(&cluster, leader, &topic, 2);
        let leader_rate = "leader.replication.throttled.rate";
        let replicas_key = "leader.replication.throttled.replicas";
        assert_eq!(
            alter(admin, BROKER_RESOURCE, "", leader_rate, Some(&rate)),
            errors::NONE
        );
        assert_eq!(
            alter(admin, TOPIC_RESOURCE, &topic, replicas_key, Some("*")),
            errors::NONE
        );
        cluster.start_again(follower_broker);
        let missing = watch_throttled(&follower_dir, start_bytes, leader_bytes, "leader side");
        assert_eq!(
            alter(admin, TOPIC_RESOURCE, &topic, replicas_key, None),
            errors::NONE
        );
        catches_up(&cluster, admin, &topic, follower, missing, leader_bytes);
    })
}
