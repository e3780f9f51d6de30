//! Admin requests cannot exhaust the broker (issue 10, part 3).
//!
//! * Partition counts are capped per broker and per shard (`sluice.max.partitions.per.broker`,
//!   `sluice.max.partitions.per.shard`): CreateTopics, CreatePartitions and auto-creation beyond
//!   them get POLICY_VIOLATION with a message naming the limit, checked before anything is
//!   allocated, topic by topic within one request.
//! * (A metadata change that is not committed changes nothing: the cluster tests check it with
//!   the controller quorum lost, `tests/cluster.rs`.)
//! * A partition whose log cannot be opened stays offline (KAFKA_STORAGE_ERROR) while the broker
//!   serves the others.
mod common;

use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreateTopicsRequest, MetadataRequest, ProduceRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const POLICY_VIOLATION: i16 = 44;
const KAFKA_STORAGE_ERROR: i16 = 56;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn topic(n: &str, partitions: i32) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(n))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
}

/// Sends one CreateTopics and returns its per-topic results.
fn create_topics(c: &mut RawClient, topics: Vec<CreatableTopic>) -> Vec<CreatableTopicResult> {
    let v = c.version::<CreateTopicsRequest>(7);
    let req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000);
    c.send(&req, v).expect("CreateTopics response").topics
}

/// Sends one CreatePartitions for `topic` and returns its (error code, message).
fn create_partitions(
    c: &mut RawClient,
    topic: &str,
    count: i32,
    assignments: Option<Vec<i32>>,
) -> (i16, String) {
    let v = c.version::<CreatePartitionsRequest>(3);
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name(topic))
            .with_count(count)
            .with_assignments(assignments.map(|nodes| {
                nodes
                    .into_iter()
                    .map(|n| {
                        CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(n)])
                    })
                    .collect()
            }))])
        .with_timeout_ms(30_000);
    let r = c.send(&req, v).expect("CreatePartitions response");
    let r = &r.results[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// The error code and partition count of each named topic in Metadata (`auto_create` as asked).
fn metadata(c: &mut RawClient, topics: &[&str], auto_create: bool) -> Vec<(i16, usize)> {
    let v = c.version::<MetadataRequest>(12);
    let req = MetadataRequest::default()
        .with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(auto_create);
    let r = c.send(&req, v).expect("Metadata response");
    topics
        .iter()
        .map(|t| {
            let found = r
                .topics
                .iter()
                .find(|x| x.name.as_ref().is_some_and(|n| n.0.as_str() == *t))
                .unwrap_or_else(|| panic!("topic {t} missing from the Metadata response"));
            (found.error_code, found.partitions.len())
        })
        .collect()
}

/// Produces one record to `topic`-`partition` with a raw Produce and returns the error code.
fn produce(c: &mut RawClient, topic: &str, partition: i32) -> i16 {
    let v = c.version::<ProduceRequest>(9);
    let records = encode_batch(
        &[(Some(b"k"), Some(b"v"))],
        1_700_000_000_000,
        Compression::None,
    );
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let r = c.send(&req, v).expect("Produce response");
    r.responses[0].partition_responses[0].error_code
}

/// A librdkafka producer delivers 50 messages to a new 2-partition topic, and (when
/// `consume_too`) a consumer reads them back.
fn normal_client_works(bootstrap: &str, consume_too: bool) {
    let topic = unique("normal");
    create_topic(bootstrap, &topic, 2);
    let (p, log) = producer(bootstrap, &[("acks", "all")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in 0..50 {
        let m = Msg {
            key: Some(format!("k{id}").into_bytes()),
            value: Some(format!("v{id}").into_bytes()),
            ..Default::default()
        };
        send(&p, &topic, id, &m, deadline);
    }
    wait_delivered(&p, &log, 50, Duration::from_secs(60));
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(3));
    let ranges: Vec<(i32, i64, i64)> = (0..2)
        .map(|p| {
            let (lo, hi) = watermarks(bootstrap, &topic, p);
            (p, lo, hi)
        })
        .collect();
    assert_eq!(ranges.iter().map(|(_, lo, hi)| hi - lo).sum::<i64>(), 50);
    if consume_too {
        let report = consume(
            bootstrap,
            &topic,
            &ranges,
            Duration::from_secs(60),
            Duration::ZERO,
            |_| {},
        );
        assert_eq!(report.messages, 50);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
}

#[test]
fn create_partitions_to_i32_max_is_refused_at_once_with_memory_bounded() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let pid = broker.pid().expect("broker pid");
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        let results = create_topics(&mut c, vec![topic("grow-me", 1)]);
        assert_eq!(results[0].error_code, 0, "{:?}", results[0].error_message);
        let before = peak_rss_kib(pid);

        let started = Instant::now();
        let (code, message) = create_partitions(&mut c, "grow-me", i32::MAX, None);
        assert_eq!(code, POLICY_VIOLATION, "{message}");
        assert!(
            message.contains("sluice.max.partitions.per.broker=10000")
                && message.contains("file descriptors"),
            "{message}"
        );
        // Absurd counts are refused before anything proportional to them is allocated.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let (code, message) = create_partitions(&mut c, "grow-me", i32::MAX, Some(vec![1000]));
        assert_eq!(code, 39, "INVALID_REPLICA_ASSIGNMENT: {message}");
        let grown = peak_rss_kib(pid).saturating_sub(before);
        assert!(grown < 32 * 1024, "peak memory grew by {grown} KiB");
        assert_eq!(metadata(&mut c, &["grow-me"], false), [(0, 1)]);
        broker.assert_alive();

        normal_client_works(&broker.bootstrap(), true);
        broker.stop();
    });
}

#[test]
fn three_create_topics_of_32769_partitions_are_refused_and_the_broker_restarts() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let pid = broker.pid().expect("broker pid");
        let before = peak_rss_kib(pid);
        let mut c = RawClient::connect_negotiated(broker.addr(1));
        for i in 0..3 {
            let results = create_topics(&mut c, vec![topic(&format!("huge-{i}"), 32_769)]);
            assert_eq!(
                results[0].error_code, POLICY_VIOLATION,
                "{:?}",
                results[0].error_message
            );
            let message = results[0].error_message.as_ref().unwrap().to_string();
            assert!(
                message.contains("Cannot add 32769 partition(s) for topic 'huge-")
                    && message.contains("sluice.max.partitions.per.broker=10000"),
                "{message}"
            );
        }
        let grown = peak_rss_kib(pid).saturating_sub(before);
        assert!(grown < 32 * 1024, "peak memory grew by {grown} KiB");
        assert_eq!(
            metadata(&mut c, &["huge-0", "huge-1", "huge-2"], false),
            [(UNKNOWN_TOPIC_OR_PARTITION, 0); 3]
        );
        normal_client_works(&broker.bootstrap(), false);

        broker.restart();
        normal_client_works(&broker.bootstrap(), true);
        broker.stop();
    });
}

#[test]
fn partition_caps_per_shard_and_per_broker() {
    bounded(Duration::from_secs(300), || {
        // __consumer_offsets (50 partitions, 25 per shard) counts too: 10 left per shard, 15 in
        // all.
        let mut broker = Broker::builder()
            .cores(2)
            .set("sluice.max.partitions.per.shard", 35)
            .set("sluice.max.partitions.per.broker", 65)
            .start();
        let mut c = RawClient::connect_negotiated(broker.addr(0));

        // 11 partitions assigned to shard 0 (node 1000): over the per-shard cap.
        let on_shard0 = CreatableTopic::default()
            .with_name(name("on-shard-0"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                (0..11)
                    .map(|p| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(p)
                            .with_broker_ids(vec![BrokerId(1000)])
                    })
                    .collect(),
            );
        let r = create_topics(&mut c, vec![on_shard0]);
        let message = r[0].error_message.as_ref().map(|m| m.to_string());
        assert_eq!(r[0].error_code, POLICY_VIOLATION, "{message:?}");
        let message = message.unwrap();
        assert!(
            message.contains(
                "node 1000 would hold 36 partitions, over sluice.max.partitions.per.shard=35"
            ) && message.contains("file descriptors and memory"),
            "{message}"
        );

        // 16 partitions: over the per-broker cap.
        let r = create_topics(&mut c, vec![topic("sixteen", 16)]);
        assert_eq!(r[0].error_code, POLICY_VIOLATION);
        let message = r[0].error_message.as_ref().unwrap().to_string();
        assert!(
            message.contains("sluice.max.partitions.per.broker=65 allows 15 more"),
            "{message}"
        );

        // Within both caps: created, 5 on each shard.
        let r = create_topics(&mut c, vec![topic("ten", 10)]);
        assert_eq!(r[0].error_code, 0, "{:?}", r[0].error_message);

        // One request whose total exceeds the cap: the topics that fit, in order, are created;
        // the one that would exceed it is refused and creates nothing.
        let r = create_topics(
            &mut c,
            vec![topic("three-a", 3), topic("three-b", 3), topic("two", 2)],
        );
        let codes: Vec<i16> = r.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, [0, POLICY_VIOLATION, 0], "{r:?}");
        let message = r[1].error_message.as_ref().unwrap().to_string();
        assert!(
            message.contains("the 1 live broker(s) hold 63 partition(s)")
                && message.contains("allows 2 more"),
            "{message}"
        );
        assert_eq!(
            metadata(&mut c, &["ten", "three-a", "three-b", "two"], false),
            [(0, 10), (0, 3), (UNKNOWN_TOPIC_OR_PARTITION, 0), (0, 2)]
        );

        // The broker is full: growing a topic and auto-creation are refused too.
        let (code, message) = create_partitions(&mut c, "two", 3, None);
        assert_eq!(code, POLICY_VIOLATION, "{message}");
        assert!(
            message.contains("sluice.max.partitions.per.broker=65"),
            "{message}"
        );
        assert_eq!(
            metadata(&mut c, &["auto-created"], true),
            [(POLICY_VIOLATION, 0)]
        );
        broker.assert_alive();

        // The caps hold across a restart, and a client is served on the existing topics.
        broker.restart();
        let mut c = RawClient::connect_negotiated(broker.addr(1));
        let r = create_topics(&mut c, vec![topic("one-more", 1)]);
        assert_eq!(r[0].error_code, POLICY_VIOLATION);
        let (p, log) = producer(&broker.bootstrap(), &[("acks", "all")]);
        let deadline = Instant::now() + Duration::from_secs(60);
        for id in 0..20 {
            let m = Msg {
                value: Some(format!("v{id}").into_bytes()),
                ..Default::default()
            };
            send(&p, "ten", id, &m, deadline);
        }
        wait_delivered(&p, &log, 20, Duration::from_secs(60));
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(3));
        broker.stop();
    });
}

#[test]
fn an_unopenable_partition_is_offline_and_the_rest_is_served() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(1).start();
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        let r = create_topics(&mut c, vec![topic("broken", 2)]);
        assert_eq!(r[0].error_code, 0, "{:?}", r[0].error_message);
        for p in 0..2 {
            assert_eq!(produce(&mut c, "broken", p), 0);
        }
        broker.stop();

        // Partition 0's segment becomes a directory: its log cannot be opened.
        let segment = broker
            .partition_dir("broken", 0)
            .join("00000000000000000000.log");
        std::fs::remove_file(&segment).expect("remove segment");
        std::fs::create_dir(&segment).expect("segment as a directory");

        broker.start_again();
        let stderr = broker.stderr_since_start();
        assert!(
            stderr.contains("cannot open log of broken-0"),
            "the broker does not say which partition it cannot open:\n{stderr}"
        );
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        assert_eq!(produce(&mut c, "broken", 0), KAFKA_STORAGE_ERROR);
        assert_eq!(produce(&mut c, "broken", 1), 0);
        assert_eq!(watermarks(&broker.bootstrap(), "broken", 1), (0, 2));
        normal_client_works(&broker.bootstrap(), true);

        // A clean stop keeps the offline partition's recovery point in the shard's checkpoint.
        broker.stop();
        let checkpoint = std::fs::read_to_string(
            broker
                .data_dir()
                .join("shard-0")
                .join("recovery-point-offset-checkpoint"),
        )
        .expect("recovery point checkpoint");
        assert!(
            checkpoint.lines().any(|l| l == "broken 0 1"),
            "{checkpoint}"
        );
        broker.start_again();
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        assert_eq!(produce(&mut c, "broken", 0), KAFKA_STORAGE_ERROR);

        // Repaired, the partition comes back at the next metadata change.
        std::fs::remove_dir(&segment).expect("rmdir");
        let r = create_topics(&mut c, vec![topic("nudge", 1)]);
        assert_eq!(r[0].error_code, 0, "{:?}", r[0].error_message);
        assert_eq!(produce(&mut c, "broken", 0), 0);
        broker.stop();
    });
}

#[test]
fn running_out_of_file_descriptors_fails_the_request_not_the_broker() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(1).start();
        let pid = broker.pid().expect("broker pid");
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        let r = create_topics(&mut c, vec![topic("first", 1)]);
        assert_eq!(r[0].error_code, 0, "{:?}", r[0].error_message);

        // Room for the metadata save, not for 200 partitions' logs.
        let old = set_soft_nofile(pid, open_fds(pid) + 12);
        let r = create_topics(&mut c, vec![topic("many", 200)]);
        assert_eq!(r[0].error_code, KAFKA_STORAGE_ERROR, "{r:?}");
        let message = r[0].error_message.as_ref().unwrap().to_string();
        eprintln!("CreateTopics out of file descriptors: {message}");
        assert!(
            message.contains("could not be opened") || message.contains("could not be persisted"),
            "{message}"
        );
        broker.assert_alive();
        set_soft_nofile(pid, old);

        // The broker serves on, and restarts on its data dir with whatever was saved.
        normal_client_works(&broker.bootstrap(), true);
        broker.restart();
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        let md = metadata(&mut c, &["first", "many"], false);
        assert_eq!(md[0], (0, 1));
        if md[1].0 == 0 {
            assert_eq!(md[1].1, 200);
            for p in [0, 199] {
                assert_eq!(produce(&mut c, "many", p), 0, "partition {p}");
            }
        } else {
            assert_eq!(md[1], (UNKNOWN_TOPIC_OR_PARTITION, 0));
        }
        normal_client_works(&broker.bootstrap(), true);
        broker.stop();
    });
}
