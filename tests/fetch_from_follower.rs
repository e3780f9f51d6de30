//! Fetch from follower (KIP-392) on three brokers in racks `rack-1`, `rack-2`, `rack-3` (one
//! shard each), with a replication-factor-3 topic:
//!
//! * with `replica.selector.class` = Kafka's `RackAwareReplicaSelector`, a consumer whose
//!   `client.rack` is a follower's rack is sent there by the leader (`preferred_read_replica`)
//!   and reads every record, intact and in order, from that follower: the follower's
//!   `sluice_topic_bytes_out_total` covers the whole log, the other follower serves nothing;
//!   at the protocol level the leader answers such a fetch with the follower and no records, and
//!   a follower answers consumers as Kafka's do (v11+ only, nothing between its high watermark
//!   and log end, OFFSET_OUT_OF_RANGE past its log end, leader epochs checked against its own);
//! * without a selector (Kafka's default) the same consumer is served by the leader alone.
mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const BROKERS: u16 = 3;
const RECORDS: usize = 2_000;
const VALUE_LEN: usize = 200;
/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(300);
/// Upper bound for one step.
const WAIT: Duration = Duration::from_secs(60);
const RACK_AWARE: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// Three brokers, broker `n` in rack `rack-n` with its metrics endpoint on the returned port;
/// `selector` is `replica.selector.class`, when set.
fn rack_cluster(selector: Option<&str>) -> (Cluster, BTreeMap<u16, u16>) {
    let mut metrics_ports = BTreeMap::new();
    let mut builder = Cluster::builder(BROKERS, 1);
    if let Some(class) = selector {
        builder = builder.set("replica.selector.class", class);
    }
    for n in 1..=BROKERS {
        let port = free_range(1);
        metrics_ports.insert(n, port);
        builder = builder
            .set_on(n, "broker.rack", format!("rack-{n}"))
            .set_on(n, "metrics.listener", format!("127.0.0.1:{port}"));
    }
    (builder.start(), metrics_ports)
}

/// Partition 0 of a topic as Metadata describes it.
#[derive(Debug, Clone)]
struct Placement {
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

fn placement(addr: SocketAddr, topic: &str) -> Option<Placement> {
    let mut c = RawClient::try_connect_negotiated(addr, Duration::from_secs(10)).ok()?;
    let md = admin::metadata(&mut c).ok()?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    let p = t.partitions.iter().find(|p| p.partition_index == 0)?;
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Some(Placement {
        leader: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        replicas: ids(&p.replica_nodes),
        isr: ids(&p.isr_nodes),
    })
}

/// Creates `topic` (one partition, replication factor 3) and waits until all three replicas
/// are in sync.
fn create_replicated_topic(cluster: &Cluster, topic: &str) -> Placement {
    let admin: AdminClient<DefaultClientContext> = client_config(&cluster.bootstrap())
        .create()
        .expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(3));
    for r in futures::executor::block_on(admin.create_topics([&new], &opts)).expect("CreateTopics")
    {
        r.unwrap_or_else(|(name, code)| panic!("CreateTopics {name}: {code:?}"));
    }
    wait_in_sync(cluster, topic)
}

/// Waits until partition 0 of `topic` has a leader and all three replicas in its ISR.
fn wait_in_sync(cluster: &Cluster, topic: &str) -> Placement {
    let addr = cluster.broker(1).addr(0);
    let mut last = None;
    let ok = wait_until(WAIT, Duration::from_millis(100), || {
        last = placement(addr, topic);
        last.as_ref()
            .is_some_and(|p| p.leader >= 0 && p.replicas.len() == 3 && p.isr.len() == 3)
    });
    assert!(ok, "{topic} never had three in-sync replicas: {last:?}");
    last.expect("checked above")
}

/// The value of record `i`: its index, then filler.
fn value_of(i: usize) -> Vec<u8> {
    let mut v = format!("{i:08}:").into_bytes();
    v.extend(filler(i as u64, VALUE_LEN - v.len()));
    v
}

fn produce_all(cluster: &Cluster, topic: &str) {
    let (p, log) = producer(&cluster.bootstrap(), &[("acks", "all"), ("linger.ms", "5")]);
    let deadline = Instant::now() + WAIT;
    for i in 0..RECORDS {
        let m = Msg {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(value_of(i)),
            partition: Some(0),
            ..Msg::default()
        };
        send(&p, topic, i, &m, deadline);
    }
    wait_delivered(&p, &log, RECORDS as u64, WAIT);
    assert_eq!(log.acked(), RECORDS as u64, "{:?}", log.first_failures(5));
}

/// Reads partition 0 of `topic` from the start as a consumer in `rack`, checking that every
/// record comes once, in order, intact.
fn consume_all_from_rack(cluster: &Cluster, topic: &str, rack: &str) {
    let mut cfg = client_config(&cluster.bootstrap());
    cfg.set("group.id", unique("fff"))
        .set("client.rack", rack)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("check.crcs", "true");
    let consumer: BaseConsumer = cfg.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + WAIT;
    let mut next = 0usize;
    let mut errors = Vec::new();
    while next < RECORDS {
        assert!(
            Instant::now() < deadline,
            "consumed {next} of {RECORDS} records within {WAIT:?}; errors {errors:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                assert_eq!(m.offset(), next as i64, "records out of order");
                assert_eq!(m.key(), Some(format!("k{next}").as_bytes()));
                assert_eq!(
                    m.payload(),
                    Some(&value_of(next)[..]),
                    "record {next} altered"
                );
                next += 1;
            }
            Some(Err(e)) if is_group_error(&e) => {}
            Some(Err(e)) => errors.push(e.to_string()),
        }
    }
}

/// `sluice_topic_bytes_out_total` of `topic` on a broker (0 when the topic has no sample).
fn bytes_out(metrics_port: u16, topic: &str) -> f64 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", metrics_port)).expect("metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let doc = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text");
    doc.samples
        .iter()
        .filter(|s| s.metric == "sluice_topic_bytes_out_total")
        .filter(|s| s.labels.get("topic") == Some(topic))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .sum()
}

fn broker_of(node: i32) -> u16 {
    (node / 1000) as u16
}

/// A consumer's Fetch of partition 0 of `topic` from `fetch_offset`, answered at once.
fn fetch(
    addr: SocketAddr,
    version: i16,
    topic: &str,
    fetch_offset: i64,
    leader_epoch: i32,
    rack: &str,
) -> (i16, i32, i64, usize) {
    let mut c = RawClient::connect_negotiated(addr);
    let partition = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(fetch_offset)
        .with_current_leader_epoch(leader_epoch)
        .with_partition_max_bytes(1 << 20);
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_rack_id(StrBytes::from_string(rack.to_string()))
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![partition])]);
    let response: FetchResponse = c.send(&request, version).expect("Fetch");
    let p = &response.responses[0].partitions[0];
    (
        p.error_code,
        p.preferred_read_replica.0,
        p.high_watermark,
        p.records.as_ref().map_or(0, |r| r.len()),
    )
}

#[test]
fn consumer_in_a_followers_rack_reads_from_that_follower() {
    bounded(TEST_LIMIT, || {
        let (cluster, metrics_ports) = rack_cluster(Some(RACK_AWARE));
        let topic = unique("fff");
        let before = create_replicated_topic(&cluster, &topic);
        produce_all(&cluster, &topic);
        let placement = wait_in_sync(&cluster, &topic);
        assert_eq!(placement.leader, before.leader, "no leader change expected");
        let leader = placement.leader;
        let mut followers: Vec<i32> = placement
            .replicas
            .iter()
            .copied()
            .filter(|&r| r != leader)
            .collect();
        followers.sort();
        let (chosen, other) = (followers[0], followers[1]);
        let rack = format!("rack-{}", broker_of(chosen));

        consume_all_from_rack(&cluster, &topic, &rack);

        let served = bytes_out(metrics_ports[&broker_of(chosen)], &topic);
        let record_bytes = (RECORDS * VALUE_LEN) as f64;
        assert!(
            served >= record_bytes,
            "the follower in the consumer's rack served {served} bytes, less than the {record_bytes} bytes of values"
        );
        assert_eq!(
            bytes_out(metrics_ports[&broker_of(other)], &topic),
            0.0,
            "the follower in another rack served nothing"
        );

        // The protocol, partition by partition.
        let leader_addr = cluster.broker(broker_of(leader)).addr(0);
        let chosen_addr = cluster.broker(broker_of(chosen)).addr(0);
        let epoch = placement.leader_epoch;
        let end = RECORDS as i64;
        let (error, preferred, hw, records) = fetch(leader_addr, 12, &topic, 0, epoch, &rack);
        assert_eq!(
            (error, preferred, hw, records),
            (0, chosen, end, 0),
            "the leader sends the consumer to its rack's follower, with no records"
        );
        let leader_rack = format!("rack-{}", broker_of(leader));
        let (error, preferred, _, records) = fetch(leader_addr, 12, &topic, 0, epoch, &leader_rack);
        assert_eq!(
            (error, preferred),
            (0, -1),
            "a consumer in the leader's rack stays"
        );
        assert!(records > 0);
        let (error, preferred, _, records) = fetch(leader_addr, 10, &topic, 0, epoch, "");
        assert_eq!((error, preferred), (0, -1), "before v11 the leader serves");
        assert!(records > 0);

        let (error, preferred, hw, records) = fetch(chosen_addr, 12, &topic, 0, epoch, &rack);
        assert_eq!((error, preferred, hw), (0, -1, end), "the follower serves");
        assert!(records > 0);
        let (error, _, _, _) = fetch(chosen_addr, 10, &topic, 0, epoch, "");
        assert_eq!(
            error,
            ResponseError::NotLeaderOrFollower.code(),
            "before v11 consumers read from leaders only"
        );
        let (error, _, _, records) = fetch(chosen_addr, 12, &topic, end, epoch, &rack);
        assert_eq!(
            (error, records),
            (0, 0),
            "at the high watermark: nothing yet"
        );
        let (error, _, _, _) = fetch(chosen_addr, 12, &topic, end + 1, epoch, &rack);
        assert_eq!(
            error,
            ResponseError::OffsetOutOfRange.code(),
            "past the follower's log end"
        );
        let (error, _, _, _) = fetch(chosen_addr, 12, &topic, 0, epoch + 1, &rack);
        assert_eq!(error, ResponseError::UnknownLeaderEpoch.code());
        if epoch > 0 {
            let (error, _, _, _) = fetch(chosen_addr, 12, &topic, 0, epoch - 1, &rack);
            assert_eq!(error, ResponseError::FencedLeaderEpoch.code());
        }
    });
}

#[test]
fn without_a_replica_selector_the_leader_serves_every_rack() {
    bounded(TEST_LIMIT, || {
        let (cluster, metrics_ports) = rack_cluster(None);
        let topic = unique("fff-leader");
        create_replicated_topic(&cluster, &topic);
        produce_all(&cluster, &topic);
        let placement = wait_in_sync(&cluster, &topic);
        let follower = placement
            .replicas
            .iter()
            .copied()
            .find(|&r| r != placement.leader)
            .expect("a follower");
        let rack = format!("rack-{}", broker_of(follower));

        consume_all_from_rack(&cluster, &topic, &rack);

        for &r in &placement.replicas {
            let served = bytes_out(metrics_ports[&broker_of(r)], &topic);
            if r == placement.leader {
                assert!(served > 0.0, "the leader served the consumer");
            } else {
                assert_eq!(served, 0.0, "follower {r} served bytes without a selector");
            }
        }
        let leader_addr = cluster.broker(broker_of(placement.leader)).addr(0);
        let (error, preferred, _, records) =
            fetch(leader_addr, 12, &topic, 0, placement.leader_epoch, &rack);
        assert_eq!((error, preferred), (0, -1));
        assert!(records > 0);
    });
}
