//! Upgrade: a data directory written by the previous release starts under this build with
//! everything in it.
//!
//! The fixture `tests/data/upgrade-0.1/` was written by the release whose cluster metadata is
//! the file `cluster-metadata.json` (commit 225a09e, before the metadata log): a 2-shard
//! broker started with `server.properties` there, holding two topics (`orders`, 3 partitions,
//! with a `retention.ms` override, and `events`, 2 partitions), five records in every
//! partition, a SCRAM-SHA-256 user and a consumer group with committed offsets.
//! `tests/data/upgrade-0.1/regenerate.sh` writes it again with [`write_fixture`].
//!
//! [`previous_release_data_dir_starts_with_everything`] starts on a copy of it and checks that
//! the cluster id, topic ids, partitions, config override, records, credential and committed
//! offsets all survived.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeConfigsRequest, DescribeUserScramCredentialsRequest,
    MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The fixture: `server.properties`, `data/` and `regenerate.sh`.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/upgrade-0.1");
/// Shards the fixture broker ran with.
const SHARDS: u16 = 2;
/// Topics and their partition counts.
const TOPICS: [(&str, i32); 2] = [("orders", 3), ("events", 2)];
/// The topic config override `orders` has.
const OVERRIDE: (&str, &str, &str) = ("orders", "retention.ms", "3600000");
/// Records in every partition.
const RECORDS: i64 = 5;
/// The SCRAM user, its mechanism (SCRAM-SHA-256) and iterations.
const USER: (&str, i8, i32) = ("alice", 1, 8192);
/// The group and its committed offsets on `orders`: (partition, offset, metadata).
const GROUP: &str = "billing";
const COMMITTED: [(i32, i64, &str); 3] = [(0, 2, "p0"), (1, 5, "p1"), (2, 0, "p2")];
/// DescribeConfigs' source of a topic override (DYNAMIC_TOPIC_CONFIG).
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
/// DescribeConfigs' resource type for topics.
const TOPIC_RESOURCE: i8 = 2;

fn fixture() -> PathBuf {
    PathBuf::from(FIXTURE)
}

/// Record `i` of `topic`/`partition`: (key, value).
fn record(topic: &str, partition: i32, i: i64) -> (String, String) {
    (
        format!("{topic}-{partition}-{i}"),
        format!("value {i} of {topic} partition {partition}"),
    )
}

/// Writes the fixture with the broker binary `SLUICE_UPGRADE_BIN` (the previous release) into
/// `SLUICE_UPGRADE_OUT` (a directory that must not exist). Run by `regenerate.sh`.
#[test]
#[ignore = "writes the upgrade fixture; run by tests/data/upgrade-0.1/regenerate.sh"]
fn write_fixture() {
    let bin = std::env::var("SLUICE_UPGRADE_BIN").expect("SLUICE_UPGRADE_BIN: the old sluice");
    let out = PathBuf::from(std::env::var("SLUICE_UPGRADE_OUT").expect("SLUICE_UPGRADE_OUT"));
    assert!(!out.exists(), "{} exists already", out.display());
    bounded(Duration::from_secs(300), move || {
        let mut broker = Broker::builder()
            .binary(bin)
            .cores(SHARDS)
            .config_file(fixture().join("server.properties"))
            .start();
        let bs = broker.bootstrap();
        create_topics(&bs);
        produce_records(&bs);
        upsert_user(&broker);
        commit_offsets(&bs);
        broker.stop();
        copy_dir(broker.data_dir(), &out);
    })
}

fn create_topics(bs: &str) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bs).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let topics: Vec<NewTopic> = TOPICS
        .iter()
        .map(|(name, partitions)| {
            let t = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
            if *name == OVERRIDE.0 {
                t.set(OVERRIDE.1, OVERRIDE.2)
            } else {
                t
            }
        })
        .collect();
    for r in futures::executor::block_on(admin.create_topics(&topics, &opts)).expect("CreateTopics")
    {
        r.unwrap_or_else(|(name, code)| panic!("CreateTopics {name}: {code:?}"));
    }
}

fn produce_records(bs: &str) {
    let (p, log) = producer(bs, &[("acks", "all")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 0;
    for (topic, partitions) in TOPICS {
        for partition in 0..partitions {
            for i in 0..RECORDS {
                let (key, value) = record(topic, partition, i);
                let m = Msg {
                    key: Some(key.into_bytes()),
                    value: Some(value.into_bytes()),
                    partition: Some(partition),
                    timestamp: Some(1_700_000_000_000 + i),
                    ..Default::default()
                };
                send(&p, topic, id, &m, deadline);
                id += 1;
            }
        }
    }
    wait_delivered(&p, &log, id as u64, Duration::from_secs(60));
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
}

fn upsert_user(broker: &Broker) {
    let mut c = RawClient::connect_negotiated(broker.addr(0));
    let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_static_str(USER.0))
            .with_mechanism(USER.1)
            .with_iterations(USER.2)
            .with_salt(Bytes::from_static(b"upgrade-salt"))
            .with_salted_password(Bytes::from_static(&[7; 32])),
    ]);
    let resp = c.send(&req, 0).expect("AlterUserScramCredentials");
    assert!(
        resp.results.iter().all(|r| r.error_code == 0),
        "{:?}",
        resp.results
    );
}

fn commit_offsets(bs: &str) {
    let consumer: BaseConsumer = client_config(bs)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (partition, offset, metadata) in COMMITTED {
        tpl.add_partition_offset(OVERRIDE.0, partition, Offset::Offset(offset))
            .expect("offset");
        tpl.find_partition(OVERRIDE.0, partition)
            .expect("just added")
            .set_metadata(metadata);
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

/// The fixture's `cluster-metadata.json`: its cluster id and topic ids by name.
fn fixture_ids(data: &Path) -> (String, BTreeMap<String, String>) {
    let text = std::fs::read(data.join("cluster-metadata.json")).expect("cluster-metadata.json");
    let json: serde_json::Value = serde_json::from_slice(&text).expect("metadata JSON");
    let cluster_id = json["cluster_id"].as_str().expect("cluster_id").to_string();
    let ids = json["topics"]
        .as_object()
        .expect("topics")
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                t["id"].as_str().expect("topic id").to_string(),
            )
        })
        .collect();
    (cluster_id, ids)
}

#[test]
fn previous_release_data_dir_starts_with_everything() {
    bounded(Duration::from_secs(300), || {
        let data = fixture().join("data");
        let (cluster_id, ids) = fixture_ids(&data);
        let mut broker = Broker::builder()
            .cores(SHARDS)
            .config_file(fixture().join("server.properties"))
            .data_from(&data)
            .start();
        let bs = broker.bootstrap();

        // Cluster id, topic ids and partitions, from every shard.
        for shard in 0..SHARDS {
            let mut c = RawClient::connect_negotiated(broker.addr(shard));
            let version = c.version::<MetadataRequest>(12);
            let md = c
                .send(&MetadataRequest::default().with_topics(None), version)
                .expect("Metadata");
            assert_eq!(
                md.cluster_id.as_deref(),
                Some(cluster_id.as_str()),
                "cluster id"
            );
            for (name, partitions) in TOPICS {
                let t = md
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(name))
                    .unwrap_or_else(|| panic!("topic {name} is gone after the upgrade"));
                assert_eq!(t.error_code, 0, "{name}");
                assert_eq!(t.topic_id.to_string(), ids[name], "topic id of {name}");
                assert_eq!(t.partitions.len(), partitions as usize, "{name}");
                assert!(t.partitions.iter().all(|p| p.leader_id.0 >= 0), "{t:?}");
            }
        }

        // The config override, and no override on the other topic.
        let mut c = RawClient::connect_negotiated(broker.addr(0));
        let req = DescribeConfigsRequest::default().with_resources(
            TOPICS
                .iter()
                .map(|(name, _)| {
                    DescribeConfigsResource::default()
                        .with_resource_type(TOPIC_RESOURCE)
                        .with_resource_name(StrBytes::from_static_str(name))
                        .with_configuration_keys(Some(vec![StrBytes::from_static_str(OVERRIDE.1)]))
                })
                .collect(),
        );
        let version = c.version::<DescribeConfigsRequest>(4);
        let resp = c.send(&req, version).expect("DescribeConfigs");
        for r in &resp.results {
            assert_eq!(r.error_code, 0, "{r:?}");
            let entry = r
                .configs
                .iter()
                .find(|e| e.name.as_str() == OVERRIDE.1)
                .expect("retention.ms");
            let overridden = entry.config_source == DYNAMIC_TOPIC_CONFIG;
            if r.resource_name.as_str() == OVERRIDE.0 {
                assert!(overridden, "{entry:?}");
                assert_eq!(entry.value.as_deref(), Some(OVERRIDE.2));
            } else {
                assert!(!overridden, "{entry:?}");
            }
        }

        // Every record, at its offset.
        for (topic, partitions) in TOPICS {
            let ranges: Vec<(i32, i64, i64)> = (0..partitions).map(|p| (p, 0, RECORDS)).collect();
            let mut bad = Vec::new();
            let rep = consume(
                &bs,
                topic,
                &ranges,
                Duration::from_secs(60),
                Duration::from_millis(300),
                |m| {
                    let (key, value) = record(topic, m.partition(), m.offset());
                    if m.key() != Some(key.as_bytes()) || m.payload() != Some(value.as_bytes()) {
                        bad.push(format!("{topic}-{}@{}", m.partition(), m.offset()));
                    }
                },
            );
            assert!(bad.is_empty(), "records changed: {bad:?}");
            assert_eq!(
                rep.messages,
                (partitions as i64 * RECORDS) as u64,
                "{topic}"
            );
        }

        // The SCRAM credential.
        let req = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
            UserName::default().with_name(StrBytes::from_static_str(USER.0)),
        ]));
        let resp = c.send(&req, 0).expect("DescribeUserScramCredentials");
        let infos: Vec<(i8, i32)> = resp.results[0]
            .credential_infos
            .iter()
            .map(|i| (i.mechanism, i.iterations))
            .collect();
        assert_eq!(resp.results[0].error_code, 0, "{resp:?}");
        assert_eq!(infos, vec![(USER.1, USER.2)]);

        // The committed offsets and their metadata.
        let consumer: BaseConsumer = client_config(&bs)
            .set("group.id", GROUP)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for (partition, _, _) in COMMITTED {
            tpl.add_partition(OVERRIDE.0, partition);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(30))
            .expect("OffsetFetch");
        let got: Vec<(i32, Offset, String)> = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset(), e.metadata().to_string()))
            .collect();
        let want: Vec<(i32, Offset, String)> = COMMITTED
            .iter()
            .map(|(p, o, m)| (*p, Offset::Offset(*o), m.to_string()))
            .collect();
        assert_eq!(got, want, "committed offsets of {GROUP}");
        drop(consumer);
        broker.stop();
    })
}
