//! `__consumer_offsets`: created at start as an internal topic spread over the shards, guarded
//! against client writes and deletion, holding commits as Kafka's key/value records, surviving
//! `kill -9`, and kept bounded by the coordinator's rewrite of its live state.
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, Bytes};
use common::*;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, DeleteTopicsRequest, FindCoordinatorRequest, GroupId, MetadataRequest,
    OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const OFFSETS: &str = "__consumer_offsets";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Kafka's partition of a group: `Math.abs(group.hashCode()) % partitions`.
fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = group
        .encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    (if h == i32::MIN { 0 } else { h.abs() }) % partitions
}

/// The port of `group`'s coordinator, from FindCoordinator.
fn coordinator_port(broker: &Broker, group: &str) -> u16 {
    let mut c = RawClient::connect_negotiated(broker.addr(0));
    let v = c.version::<FindCoordinatorRequest>(3);
    let resp = c
        .send(&FindCoordinatorRequest::default().with_key(s(group)), v)
        .expect("FindCoordinator");
    assert_eq!(resp.error_code, 0, "FindCoordinator error");
    u16::try_from(resp.port).expect("port")
}

/// Commits `offset` (with `metadata`) for `group` on `topic`-0 as a standalone consumer.
fn commit(client: &mut RawClient, group: &str, topic: &str, offset: i64, metadata: &str) {
    let v = client.version::<OffsetCommitRequest>(8);
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(s(metadata)))])]);
    let resp = client.send(&req, v).expect("OffsetCommit");
    let code = resp.topics[0].partitions[0].error_code;
    assert_eq!(
        code, 0,
        "OffsetCommit of offset {offset} failed with {code}"
    );
}

/// The committed (offset, metadata) of `group` on `topic`-0.
fn fetch(broker: &Broker, group: &str, topic: &str) -> (i64, String) {
    let port = coordinator_port(broker, group);
    let mut c = RawClient::connect_negotiated(([127, 0, 0, 1], port).into());
    let v = c.version::<OffsetFetchRequest>(7);
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![0])]));
    let resp = c.send(&req, v).expect("OffsetFetch");
    assert_eq!(resp.error_code, 0, "OffsetFetch error");
    let p = &resp.topics[0].partitions[0];
    (
        p.committed_offset,
        p.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// Metadata shows `__consumer_offsets` internal, with 50 partitions split over both shards;
/// clients can neither write to it, delete it, nor add partitions to it.
#[test]
fn the_offsets_topic_is_internal_spread_and_guarded() {
    let broker = Broker::builder().cores(2).start();
    let mut c = RawClient::connect_negotiated(broker.addr(0));
    let v = c.version::<MetadataRequest>(12);
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(s(OFFSETS))))
    ]));
    let resp = c.send(&req, v).expect("Metadata");
    let t = &resp.topics[0];
    assert_eq!(t.error_code, 0);
    assert!(t.is_internal, "{OFFSETS} is internal");
    assert_eq!(
        t.partitions.len(),
        50,
        "offsets.topic.num.partitions default"
    );
    let mut per_leader = BTreeMap::new();
    for p in &t.partitions {
        *per_leader.entry(p.leader_id.0).or_insert(0) += 1;
    }
    assert_eq!(per_leader, BTreeMap::from([(1000, 25), (1001, 25)]));

    let v = c.version::<DeleteTopicsRequest>(6);
    let resp = c
        .send(
            &DeleteTopicsRequest::default()
                .with_topics(vec![
                    DeleteTopicState::default().with_name(Some(TopicName(s(OFFSETS))))
                ])
                .with_topic_names(vec![TopicName(s(OFFSETS))])
                .with_timeout_ms(10_000),
            v,
        )
        .expect("DeleteTopics");
    assert_eq!(resp.responses[0].error_code, 42, "INVALID_REQUEST");

    let v = c.version::<CreatePartitionsRequest>(3);
    let resp = c
        .send(
            &CreatePartitionsRequest::default()
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(TopicName(s(OFFSETS)))
                    .with_count(60)])
                .with_timeout_ms(10_000),
            v,
        )
        .expect("CreatePartitions");
    assert_eq!(resp.results[0].error_code, 42, "INVALID_REQUEST");

    let producer: BaseProducer = client_config(&broker.bootstrap())
        .set("message.timeout.ms", "5000")
        .create()
        .expect("producer");
    let record = BaseRecord::<[u8], [u8]>::to(OFFSETS)
        .partition(0)
        .payload(&b"x"[..])
        .key(&b"k"[..]);
    assert!(producer.send(record).is_ok(), "queued");
    let _ = producer.flush(Duration::from_secs(15));
    let (low, high) = watermarks(&broker.bootstrap(), OFFSETS, 0);
    assert_eq!((low, high), (0, 0), "nothing was appended by the client");
}

/// A commit is a record of `__consumer_offsets` in Kafka's format (key version 1: group,
/// topic, partition; value version 3: offset, leader epoch, metadata, timestamp), it survives
/// `kill -9` once acknowledged, and it is replayed at start.
#[test]
fn commits_are_kafka_records_and_survive_kill_9() {
    let mut broker = Broker::builder()
        .cores(2)
        .set("log.flush.interval.messages", 1)
        .start();
    let topic = unique("orders");
    create_topic(&broker.bootstrap(), &topic, 1);
    let group = unique("billing");
    let port = coordinator_port(&broker, &group);
    let mut c = RawClient::connect_negotiated(([127, 0, 0, 1], port).into());
    for offset in [5, 17, 42] {
        commit(&mut c, &group, &topic, offset, "checkpoint");
    }
    broker.kill9();
    broker.start_again();
    assert_eq!(
        fetch(&broker, &group, &topic),
        (42, "checkpoint".to_string())
    );

    let consumer: BaseConsumer = client_config(&broker.bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(OFFSETS, partition_for(&group, 50), Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let mut key = Bytes::copy_from_slice(m.key().expect("key"));
            let mut value = Bytes::copy_from_slice(m.payload().expect("value"));
            assert_eq!(key.get_i16(), 1, "offset commit key version");
            let g = read_string(&mut key);
            if g != group {
                continue;
            }
            assert_eq!(read_string(&mut key), topic);
            assert_eq!(key.get_i32(), 0, "partition");
            assert_eq!(value.get_i16(), 3, "offset commit value version");
            let offset = value.get_i64();
            assert_eq!(value.get_i32(), -1, "leader epoch");
            assert_eq!(read_string(&mut value), "checkpoint");
            seen.push(offset);
        }
    }
    assert_eq!(seen, vec![5, 17, 42], "one record per commit, in order");
}

fn read_string(b: &mut Bytes) -> String {
    let len = b.get_i16() as usize;
    let s = String::from_utf8(b[..len].to_vec()).expect("utf-8");
    b.advance(len);
    s
}

/// With small `offsets.topic.segment.bytes`, thousands of commits of one group's offset are
/// compacted away by the shard's log cleaner (only the latest record per key survives), and
/// the last commit is what the group has, before and after a restart.
#[test]
fn the_offsets_log_stays_bounded() {
    let mut broker = Broker::builder()
        .cores(2)
        .set("offsets.topic.segment.bytes", 16384)
        .set("log.cleaner.backoff.ms", 200)
        .start();
    let topic = unique("events");
    create_topic(&broker.bootstrap(), &topic, 1);
    let group = unique("bounded");
    let port = coordinator_port(&broker, &group);
    let mut c = RawClient::connect_negotiated(([127, 0, 0, 1], port).into());
    let metadata = "m".repeat(100);
    for offset in 0..3000 {
        commit(&mut c, &group, &topic, offset, &metadata);
    }
    let dir = broker.partition_dir(OFFSETS, partition_for(&group, 50));
    let log_bytes = || -> u64 {
        std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            log_bytes() <= 2 * 16384
        }),
        "{} bytes of segments left in {} after 3000 commits of ~200 bytes (at most the active \
         segment and one cleaned one expected)\n{}",
        log_bytes(),
        dir.display(),
        broker.stderr_text()
    );
    assert_eq!(fetch(&broker, &group, &topic), (2999, metadata.clone()));
    broker.restart();
    assert_eq!(fetch(&broker, &group, &topic), (2999, metadata));
}
