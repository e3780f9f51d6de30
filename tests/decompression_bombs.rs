//! Decompression bombs cost the broker nothing. A Produce of a batch whose records expand to
//! 1 GiB, in each codec (gzip, lz4, zstd, snappy raw and xerial), to a compacted topic (the
//! only topics whose records the broker must read, to check their keys) gets CORRUPT_MESSAGE:
//! the records are decompressed only up to the topic's limit, 64 × `max.message.bytes` within
//! [16 MiB, 256 MiB]. The broker's peak memory stays far below the gigabyte, it stays up, and
//! librdkafka producers and consumers of every codec keep working on the same topics.
//!
//! The bombs are large for batches (gzip ~1 MiB, lz4 ~4 MiB, snappy ~50 MiB, which is as far
//! as snappy can expand), so each topic's `max.message.bytes` is raised to let its bomb in;
//! `socket.request.max.bytes` keeps its default of 100 MiB, which the largest request fits.
mod common;

#[path = "../storage/tests/support/bombs.rs"]
mod bombs;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Kafka's CORRUPT_MESSAGE error code.
const CORRUPT_MESSAGE: i16 = 2;

/// Creates `topic` (one partition) with `configs`.
fn create_with(bootstrap: &str, topic: &str, configs: &[(&str, String)]) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let res = futures::executor::block_on(admin.create_topics([&new], &opts)).expect("create");
    for r in res {
        r.unwrap_or_else(|(name, code)| panic!("CreateTopics {name}: {code:?}"));
    }
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            let (lo, hi) = watermarks(bootstrap, topic, 0);
            lo == 0 && hi == 0
        }),
        "topic {topic} is not served"
    );
}

/// The shard leading partition 0 of `topic`, from Metadata (shard `n` is node `1000 + n`).
fn leader_shard(bootstrap: &str, topic: &str) -> u16 {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let mut leader = -1;
    let found = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            leader = md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .and_then(|t| t.partitions().iter().find(|p| p.id() == 0))
                .map_or(-1, |p| p.leader());
        }
        leader >= 1000
    });
    assert!(found, "no leader for {topic}-0");
    (leader - 1000) as u16
}

/// Sends one Produce of `records` to partition 0 of `topic` on its leader and returns its
/// error code; the connection must stay usable afterwards.
fn produce_error(broker: &Broker, topic: &str, records: Vec<u8>) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])]);
    let shard = leader_shard(&broker.bootstrap(), topic);
    let mut c = RawClient::connect_negotiated(broker.addr(shard));
    let v = c.version::<ProduceRequest>(9);
    let resp = c.send(&request, v).expect("no Produce response");
    let code = resp.responses[0].partition_responses[0].error_code;
    c.negotiate();
    code
}

/// The librdkafka name of a bomb's codec.
fn librdkafka_codec(name: &str) -> &'static str {
    match name {
        "gzip" => "gzip",
        "lz4" => "lz4",
        "zstd" => "zstd",
        _ => "snappy",
    }
}

#[test]
fn one_gib_bombs_are_refused_on_compacted_topics_and_the_broker_serves_on() {
    bounded(Duration::from_secs(600), || {
        let all = bombs::all();
        for (name, _, bomb) in &all {
            assert_eq!(bombs::expanded_size(name, bomb), bombs::BOMB_SIZE, "{name}");
        }
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let pid = broker.pid().expect("broker pid");
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64
        };

        let mut topics = Vec::new();
        for (name, _, bomb) in &all {
            let topic = unique(&format!("bomb-{name}"));
            let max_message_bytes = (bomb.len() + 4096).max(1_048_588);
            create_with(
                &bs,
                &topic,
                &[
                    ("cleanup.policy", "compact".into()),
                    ("max.message.bytes", max_message_bytes.to_string()),
                ],
            );
            topics.push(topic);
        }
        let plain = unique("bomb-plain");
        create_with(&bs, &plain, &[("max.message.bytes", (2 << 20).to_string())]);

        let before = peak_rss_kib(pid) * 1024;
        for ((name, codec, bomb), topic) in all.iter().zip(&topics) {
            let code = produce_error(&broker, topic, bombs::batch(*codec, bomb, now()));
            assert_eq!(code, CORRUPT_MESSAGE, "{name}");
            broker.assert_alive();
            assert_eq!(watermarks(&bs, topic, 0), (0, 0), "{name}: nothing written");
        }
        // Other topics store compressed batches as they come, without reading them.
        for (name, codec, bomb) in all.iter().filter(|(n, ..)| ["gzip", "zstd"].contains(n)) {
            let code = produce_error(&broker, &plain, bombs::batch(*codec, bomb, now()));
            assert_eq!(code, 0, "{name} on a topic that is not compacted");
        }
        assert_eq!(watermarks(&bs, &plain, 0), (0, 2));
        let grown = (peak_rss_kib(pid) * 1024).saturating_sub(before);
        eprintln!("broker peak memory grew by {} MiB", grown >> 20);
        // The largest limit here is 256 MiB (the lz4 topic's); the snappy requests hold 50 MiB
        // each while they are read. Decompressing any bomb would have added a whole GiB.
        assert!(
            grown < 512 << 20,
            "peak memory grew by {grown} bytes while refusing the bombs"
        );

        // librdkafka producers of every codec still write keyed records to the same compacted
        // topics (their batches decompress within the limit), and a consumer reads them back.
        let deadline = Instant::now() + Duration::from_secs(120);
        for ((name, ..), topic) in all.iter().zip(&topics) {
            let (p, delivered) = producer(
                &bs,
                &[
                    ("acks", "all"),
                    ("compression.type", librdkafka_codec(name)),
                ],
            );
            for id in 0..50 {
                let m = Msg {
                    key: Some(format!("k{id}").into_bytes()),
                    value: Some(filler(id as u64, 2000)),
                    ..Default::default()
                };
                send(&p, topic, id, &m, deadline);
            }
            wait_delivered(&p, &delivered, 50, Duration::from_secs(60));
            assert_eq!(
                delivered.failed(),
                0,
                "{name}: {:?}",
                delivered.first_failures(3)
            );
            let report = consume(
                &bs,
                topic,
                &[(0, 0, 50)],
                Duration::from_secs(60),
                Duration::ZERO,
                |_| {},
            );
            assert_eq!(report.messages, 50, "{name}");
            assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
        }
        broker.assert_alive();
        broker.stop();
    });
}
