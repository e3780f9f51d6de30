//! Every shard is its own Kafka node: Metadata advertises nodes 1000 and 1001
//! on ports P and P+1, partition leaders are those nodes, and a Produce that
//! reaches the shard not leading the partition gets NOT_LEADER_OR_FOLLOWER.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{MetadataRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

const PARTITIONS: i32 = 8;

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// Raw Metadata for `topic` from one shard: (nodes id->(host, port), partition->leader).
fn raw_metadata(
    addr: std::net::SocketAddr,
    topic: &str,
) -> (BTreeMap<i32, (String, i32)>, BTreeMap<i32, i32>) {
    let mut c = RawClient::connect_negotiated(addr);
    let v = c.version::<MetadataRequest>(12);
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
        ]))
        .with_allow_auto_topic_creation(false);
    let resp = c.send(&req, v).expect("Metadata");
    let nodes = resp
        .brokers
        .iter()
        .map(|b| (b.node_id.0, (b.host.to_string(), b.port)))
        .collect();
    assert_eq!(resp.topics.len(), 1);
    let t = &resp.topics[0];
    assert_eq!(t.error_code, 0, "Metadata topic error");
    let leaders = t
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(
                p.error_code, 0,
                "Metadata partition {} error",
                p.partition_index
            );
            (p.partition_index, p.leader_id.0)
        })
        .collect();
    (nodes, leaders)
}

fn raw_produce(
    addr: std::net::SocketAddr,
    topic: &str,
    partition: i32,
    value: &[u8],
) -> (i16, i64) {
    let mut c = RawClient::connect_negotiated(addr);
    let v = c.version::<ProduceRequest>(9);
    let batch = encode_batch(
        &[(Some(b"k"), Some(value))],
        1_700_000_000_000,
        Compression::None,
    );
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let resp = c.send(&req, v).expect("Produce");
    assert_eq!(resp.responses.len(), 1);
    let pr = &resp.responses[0].partition_responses;
    assert_eq!(pr.len(), 1);
    assert_eq!(pr[0].index, partition);
    (pr[0].error_code, pr[0].base_offset)
}

#[test]
fn metadata_advertises_one_node_per_shard() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("routing-md");
        create_topic(&bs, &topic, PARTITIONS);
        let want_nodes: BTreeMap<i32, (String, i32)> = [
            (1000, ("127.0.0.1".to_string(), broker.port(0) as i32)),
            (1001, ("127.0.0.1".to_string(), broker.port(1) as i32)),
        ]
        .into();

        // librdkafka's view.
        let c = plain_consumer(&bs);
        let md = c
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("fetch_metadata");
        let nodes: BTreeMap<i32, (String, i32)> = md
            .brokers()
            .iter()
            .map(|b| (b.id(), (b.host().to_string(), b.port())))
            .collect();
        assert_eq!(nodes, want_nodes, "rdkafka metadata brokers");
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .expect("topic in metadata");
        assert_eq!(t.partitions().len(), PARTITIONS as usize);
        for p in t.partitions() {
            assert!(
                p.leader() == 1000 || p.leader() == 1001,
                "partition {} led by {}",
                p.id(),
                p.leader()
            );
            assert_eq!(
                p.replicas(),
                &[p.leader()],
                "replicas of partition {}",
                p.id()
            );
        }

        // The raw view from each shard is the same.
        let (n0, l0) = raw_metadata(broker.addr(0), &topic);
        let (n1, l1) = raw_metadata(broker.addr(1), &topic);
        assert_eq!(n0, want_nodes, "raw Metadata nodes from shard 0");
        assert_eq!(n1, want_nodes, "raw Metadata nodes from shard 1");
        assert_eq!(l0, l1, "shards disagree on partition leaders");
        let rd: BTreeMap<i32, i32> = t
            .partitions()
            .iter()
            .map(|p| (p.id(), p.leader()))
            .collect();
        assert_eq!(l0, rd, "raw and rdkafka leaders differ");
        assert_eq!(
            l0.keys().copied().collect::<Vec<_>>(),
            (0..PARTITIONS).collect::<Vec<_>>()
        );
        let used: BTreeSet<i32> = l0.values().copied().collect();
        eprintln!("leaders: {l0:?} (nodes used: {used:?})");
        drop(c);
        broker.stop();
    })
}

#[test]
fn produce_to_the_wrong_shard_gets_not_leader() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("routing-produce");
        create_topic(&bs, &topic, PARTITIONS);
        let (_, leaders) = raw_metadata(broker.addr(0), &topic);

        for part in 0..PARTITIONS {
            let leader = leaders[&part];
            assert!(leader == 1000 || leader == 1001, "leader {leader}");
            let leader_shard = (leader - 1000) as u16;
            let other_shard = 1 - leader_shard;
            let value = format!("p{part}");

            let (err, _) = raw_produce(broker.addr(other_shard), &topic, part, value.as_bytes());
            assert_eq!(
                err,
                errors::NOT_LEADER_OR_FOLLOWER,
                "produce to partition {part} on non-leader shard {other_shard}"
            );
            let (err, base) =
                raw_produce(broker.addr(leader_shard), &topic, part, value.as_bytes());
            assert_eq!(
                err,
                errors::NONE,
                "produce to partition {part} on its leader shard {leader_shard}"
            );
            assert_eq!(
                base, 0,
                "base offset of the first batch in partition {part}"
            );
        }

        // Exactly the one accepted message per partition is there.
        let mut ranges = Vec::new();
        for part in 0..PARTITIONS {
            assert_eq!(
                watermarks(&bs, &topic, part),
                (0, 1),
                "partition {part} watermarks"
            );
            ranges.push((part, 0, 1));
        }
        let mut got = BTreeMap::new();
        let rep = consume(
            &bs,
            &topic,
            &ranges,
            Duration::from_secs(60),
            Duration::from_millis(300),
            |m| {
                got.insert(
                    (m.partition(), m.offset()),
                    (m.key().map(|k| k.to_vec()), m.payload().map(|v| v.to_vec())),
                );
            },
        );
        assert!(rep.errors.is_empty(), "consumer errors: {:?}", rep.errors);
        assert_eq!(got.len(), PARTITIONS as usize);
        for part in 0..PARTITIONS {
            assert_eq!(
                got[&(part, 0)],
                (Some(b"k".to_vec()), Some(format!("p{part}").into_bytes())),
                "partition {part}"
            );
        }
        broker.stop();
    })
}
