//! Topic and dynamic broker configs end to end: DescribeConfigs, AlterConfigs (rdkafka's
//! AdminClient) and IncrementalAlterConfigs (raw protocol) round-trip, survive a restart, are
//! rejected with INVALID_CONFIG naming the key when invalid, and apply live to the partitions'
//! logs (max.message.bytes, segment.bytes); a compacted topic refuses records without a key.
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as LegacyResource, AlterableConfig as LegacyConfig,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigResource, ConfigSource, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap).create().expect("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(30)))
}

fn describe(admin: &AdminClient<DefaultClientContext>, spec: ResourceSpecifier) -> ConfigResource {
    let mut out = futures::executor::block_on(admin.describe_configs([&spec], &opts()))
        .expect("DescribeConfigs request");
    out.remove(0)
        .unwrap_or_else(|e| panic!("DescribeConfigs {spec:?}: {e:?}"))
}

/// (value, source) of `name` in a described resource.
fn entry<'a>(resource: &'a ConfigResource, name: &str) -> (Option<String>, &'a ConfigSource) {
    let e = resource
        .get(name)
        .unwrap_or_else(|| panic!("{name} not described"));
    (e.value.clone(), &e.source)
}

fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// One IncrementalAlterConfigs resource: (key, operation, value) triples.
fn resource(kind: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> AlterConfigsResource {
    AlterConfigsResource::default()
        .with_resource_type(kind)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(
            ops.iter()
                .map(|(key, op, value)| {
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(key.to_string()))
                        .with_config_operation(*op)
                        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
                })
                .collect(),
        )
}

/// Sends IncrementalAlterConfigs to shard `shard` and returns (error code, message) per
/// resource.
fn incremental_alter(
    broker: &Broker,
    shard: u16,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
) -> Vec<(i16, Option<String>)> {
    let mut c = RawClient::connect_negotiated(broker.addr(shard));
    let v = c.version::<IncrementalAlterConfigsRequest>(1);
    let req = IncrementalAlterConfigsRequest::default()
        .with_resources(resources)
        .with_validate_only(validate_only);
    let resp: IncrementalAlterConfigsResponse = c.send(&req, v).expect("IncrementalAlterConfigs");
    resp.responses
        .iter()
        .map(|r| {
            (
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect()
}

fn ok_or_panic(results: Vec<(i16, Option<String>)>) {
    for (code, message) in results {
        assert_eq!(code, 0, "IncrementalAlterConfigs failed: {message:?}");
    }
}

fn create_with_configs(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let res =
        futures::executor::block_on(admin.create_topics([&new], &opts())).expect("CreateTopics");
    assert!(res[0].is_ok(), "CreateTopics {topic}: {:?}", res[0]);
}

/// The shard leading `topic`/`partition`, from Metadata.
fn leader_shard(bootstrap: &str, topic: &str, partition: i32) -> u16 {
    let consumer: BaseConsumer = client_config(bootstrap).create().unwrap();
    let mut leader = -1;
    let found = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
            return false;
        };
        leader = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .and_then(|t| t.partitions().iter().find(|p| p.id() == partition))
            .map_or(-1, |p| p.leader());
        leader >= 1000
    });
    assert!(found, "no leader for {topic}-{partition}");
    (leader - 1000) as u16
}

/// Produces one batch to partition 0 on its leader and returns the partition's response.
fn produce(broker: &Broker, topic: &str, records: Bytes) -> PartitionProduceResponse {
    let shard = leader_shard(&broker.bootstrap(), topic, 0);
    let mut c = RawClient::connect_negotiated(broker.addr(shard));
    let v = c.version::<ProduceRequest>(9);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let mut resp = c.send(&req, v).expect("Produce");
    resp.responses.remove(0).partition_responses.remove(0)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn describe_alter_incremental_round_trip_and_restart() {
    bounded(Duration::from_secs(240), || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("cfg");
        let other = unique("cfg-other");
        create_topic(&bs, &topic, 2);
        create_topic(&bs, &other, 1);
        let admin = admin(&bs);

        let d = describe(&admin, ResourceSpecifier::Topic(&topic));
        assert!(d.entries.len() >= 30, "{} configs", d.entries.len());
        assert_eq!(
            entry(&d, "retention.ms"),
            (some("604800000"), &ConfigSource::Default)
        );
        assert_eq!(
            entry(&d, "cleanup.policy"),
            (some("delete"), &ConfigSource::Default)
        );
        assert!(d.entries.iter().all(|e| !e.is_read_only && !e.is_sensitive));

        // Legacy AlterConfigs (rdkafka's alter_configs): the given set becomes the overrides.
        let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic))
            .set("retention.ms", "3600000")
            .set("segment.bytes", "1048576")
            .set("max.message.bytes", "200000");
        let res = futures::executor::block_on(admin.alter_configs([&alter], &opts()))
            .expect("AlterConfigs");
        assert!(res[0].is_ok(), "{:?}", res[0]);
        let d = describe(&admin, ResourceSpecifier::Topic(&topic));
        assert_eq!(
            entry(&d, "retention.ms"),
            (some("3600000"), &ConfigSource::DynamicTopic)
        );
        assert_eq!(
            entry(&d, "segment.bytes"),
            (some("1048576"), &ConfigSource::DynamicTopic)
        );

        // Incremental, sent to shard 1 (forwarded to the controller on shard 0).
        ok_or_panic(incremental_alter(
            &broker,
            1,
            vec![resource(
                TOPIC,
                &topic,
                &[
                    ("retention.bytes", SET, Some("10000000")),
                    ("segment.bytes", DELETE, None),
                    ("cleanup.policy", APPEND, Some("compact")),
                    ("flush.ms", DELETE, None),
                ],
            )],
            false,
        ));
        let d = describe(&admin, ResourceSpecifier::Topic(&topic));
        assert_eq!(
            entry(&d, "retention.bytes"),
            (some("10000000"), &ConfigSource::DynamicTopic)
        );
        assert_eq!(
            entry(&d, "segment.bytes"),
            (some("1073741824"), &ConfigSource::Default)
        );
        assert_eq!(
            entry(&d, "cleanup.policy"),
            (some("delete,compact"), &ConfigSource::DynamicTopic)
        );
        assert_eq!(
            entry(&d, "retention.ms"),
            (some("3600000"), &ConfigSource::DynamicTopic)
        );
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                TOPIC,
                &topic,
                &[("cleanup.policy", SUBTRACT, Some("delete"))],
            )],
            false,
        ));

        // validate_only changes nothing.
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(TOPIC, &topic, &[("retention.ms", SET, Some("1"))])],
            true,
        ));

        // Rejections name the key and the reason; nothing changes.
        let rejections = [
            (
                resource(TOPIC, &topic, &[("retention.ms", SET, Some("abc"))]),
                INVALID_CONFIG,
                "Invalid value abc for configuration retention.ms: Not a number of type LONG",
            ),
            (
                resource(TOPIC, &topic, &[("retention.mss", SET, Some("1"))]),
                INVALID_CONFIG,
                "Unknown topic config name: retention.mss",
            ),
            (
                resource(TOPIC, &topic, &[("retention.ms", APPEND, Some("1"))]),
                INVALID_CONFIG,
                "Can't APPEND to key retention.ms because its type is not LIST.",
            ),
            (
                resource(TOPIC, "no-such-topic", &[("retention.ms", SET, Some("1"))]),
                UNKNOWN_TOPIC_OR_PARTITION,
                "The topic 'no-such-topic' does not exist.",
            ),
            (
                resource(BROKER, "", &[("log.dirs", SET, Some("/tmp/x"))]),
                INVALID_CONFIG,
                "Cannot update these configs dynamically: Set(log.dirs)",
            ),
        ];
        for (r, code, message) in rejections {
            assert_eq!(
                incremental_alter(&broker, 0, vec![r], false),
                [(code, Some(message.to_string()))]
            );
        }
        // A resource named twice is refused (each time), the others still go through.
        let twice = || resource(TOPIC, &topic, &[("retention.ms", SET, Some("5"))]);
        let results = incremental_alter(
            &broker,
            0,
            vec![
                twice(),
                resource(TOPIC, &other, &[("segment.ms", DELETE, None)]),
                twice(),
            ],
            false,
        );
        let codes: Vec<i16> = results.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, [INVALID_REQUEST, 0, INVALID_REQUEST]);
        // Legacy AlterConfigs refuses the same way (rdkafka's alter_configs does not report
        // per-resource errors, so this one goes raw).
        let mut c = RawClient::connect_negotiated(broker.addr(1));
        let v = c.version::<AlterConfigsRequest>(2);
        let req = AlterConfigsRequest::default().with_resources(vec![LegacyResource::default()
            .with_resource_type(TOPIC)
            .with_resource_name(StrBytes::from_string(topic.clone()))
            .with_configs(vec![LegacyConfig::default()
                .with_name(StrBytes::from_static_str("segment.bytes"))
                .with_value(Some(StrBytes::from_static_str("13")))])]);
        let resp = c.send(&req, v).expect("AlterConfigs");
        assert_eq!(
            (
                resp.responses[0].error_code,
                resp.responses[0].error_message.as_deref()
            ),
            (
                INVALID_CONFIG,
                Some("Invalid value 13 for configuration segment.bytes: Value must be at least 14")
            )
        );

        // A dynamic cluster default shows through where no topic override hides it.
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                BROKER,
                "",
                &[("log.retention.ms", SET, Some("7200000"))],
            )],
            false,
        ));
        let d = describe(&admin, ResourceSpecifier::Topic(&other));
        assert_eq!(
            entry(&d, "retention.ms"),
            (some("7200000"), &ConfigSource::DynamicDefaultBroker)
        );
        let d = describe(&admin, ResourceSpecifier::Topic(&topic));
        assert_eq!(
            entry(&d, "retention.ms"),
            (some("3600000"), &ConfigSource::DynamicTopic)
        );
        let b = describe(&admin, ResourceSpecifier::Broker(1000));
        assert_eq!(
            entry(&b, "log.retention.ms"),
            (some("7200000"), &ConfigSource::DynamicDefaultBroker)
        );
        assert!(b.get("log.retention.ms").is_some_and(|e| !e.is_read_only));
        assert!(b.get("log.dirs").is_some_and(|e| e.is_read_only));

        let check_after_restart = |admin: &AdminClient<DefaultClientContext>| {
            let d = describe(admin, ResourceSpecifier::Topic(&topic));
            assert_eq!(
                entry(&d, "retention.ms"),
                (some("3600000"), &ConfigSource::DynamicTopic)
            );
            assert_eq!(
                entry(&d, "retention.bytes"),
                (some("10000000"), &ConfigSource::DynamicTopic)
            );
            assert_eq!(
                entry(&d, "cleanup.policy"),
                (some("compact"), &ConfigSource::DynamicTopic)
            );
            assert_eq!(
                entry(&d, "max.message.bytes"),
                (some("200000"), &ConfigSource::DynamicTopic)
            );
            let d = describe(admin, ResourceSpecifier::Topic(&other));
            assert_eq!(
                entry(&d, "retention.ms"),
                (some("7200000"), &ConfigSource::DynamicDefaultBroker)
            );
        };
        check_after_restart(&admin);
        drop(admin);
        broker.restart();
        let admin = self::admin(&bs);
        check_after_restart(&admin);
        drop(admin);
        broker.stop();
    });
}

#[test]
fn changes_apply_live_and_compacted_topics_need_keys() {
    bounded(Duration::from_secs(240), || {
        let broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();

        // max.message.bytes: a batch accepted before is refused after the change.
        let topic = unique("live");
        create_topic(&bs, &topic, 1);
        let big = filler(1, 20_000);
        let batch = || encode_batch(&[(Some(b"k"), Some(&big[..]))], now_ms(), Compression::None);
        assert_eq!(produce(&broker, &topic, batch()).error_code, 0);
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                TOPIC,
                &topic,
                &[("max.message.bytes", SET, Some("5000"))],
            )],
            false,
        ));
        assert_eq!(
            produce(&broker, &topic, batch()).error_code,
            MESSAGE_TOO_LARGE
        );

        // segment.bytes: the next appends roll segments.
        let dir = broker.partition_dir(&topic, 0);
        assert_eq!(segment_files(&dir).len(), 1);
        ok_or_panic(incremental_alter(
            &broker,
            1,
            vec![resource(
                TOPIC,
                &topic,
                &[
                    ("max.message.bytes", DELETE, None),
                    ("segment.bytes", SET, Some("30000")),
                ],
            )],
            false,
        ));
        for _ in 0..4 {
            assert_eq!(produce(&broker, &topic, batch()).error_code, 0);
        }
        let segments = segment_files(&dir);
        assert!(segments.len() >= 4, "segments: {segments:?}");

        // A dynamic broker default applies live too: message.max.bytes on BROKER "".
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                BROKER,
                "",
                &[("message.max.bytes", SET, Some("5000"))],
            )],
            false,
        ));
        assert_eq!(
            produce(&broker, &topic, batch()).error_code,
            MESSAGE_TOO_LARGE
        );
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                BROKER,
                "1000",
                &[("message.max.bytes", SET, Some("100000"))],
            )],
            false,
        ));
        assert_eq!(produce(&broker, &topic, batch()).error_code, 0);

        // Compacted topics: records without a key are refused, the request writes nothing.
        let compacted = unique("compacted");
        create_with_configs(&bs, &compacted, 1, &[("cleanup.policy", "compact")]);
        let ts = now_ms();
        for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mixed = encode_batch(
                &[
                    (Some(b"a"), Some(b"1")),
                    (None, Some(b"2")),
                    (Some(b"c"), Some(b"3")),
                    (None, Some(b"4")),
                ],
                ts,
                codec,
            );
            let r = produce(&broker, &compacted, mixed);
            assert_eq!(r.error_code, errors::INVALID_RECORD, "{codec:?}");
            let reason = format!(
                "Compacted topic cannot accept message without key in topic partition {compacted}-0."
            );
            let message = r
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            assert!(message.contains(&reason), "{message}");
            let indexes: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(indexes, [1, 3]);
            assert!(r
                .record_errors
                .iter()
                .all(|e| e.batch_index_error_message.as_deref() == Some(reason.as_str())));
        }
        let keyed = encode_batch(
            &[(Some(b"a"), Some(b"1")), (Some(b"b"), None)],
            ts,
            Compression::Lz4,
        );
        let r = produce(&broker, &compacted, keyed);
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, 0),
            "nothing of the refused batches was written"
        );

        // Appending "compact" to a delete topic makes it refuse unkeyed records at once;
        // subtracting it lifts that.
        let unkeyed = || encode_batch(&[(None, Some(b"x"))], now_ms(), Compression::None);
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                TOPIC,
                &topic,
                &[("cleanup.policy", APPEND, Some("compact"))],
            )],
            false,
        ));
        assert_eq!(
            produce(&broker, &topic, unkeyed()).error_code,
            errors::INVALID_RECORD
        );
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![resource(
                TOPIC,
                &topic,
                &[("cleanup.policy", SUBTRACT, Some("compact"))],
            )],
            false,
        ));
        assert_eq!(produce(&broker, &topic, unkeyed()).error_code, 0);
    });
}

#[test]
fn log_cleaner_settings_change_live() {
    bounded(Duration::from_secs(120), || {
        let broker = Broker::builder()
            .cores(2)
            .set("log.cleaner.backoff.ms", 200)
            .start();
        // Cluster-wide default for the throttle, a per-broker value for the key map.
        ok_or_panic(incremental_alter(
            &broker,
            0,
            vec![
                resource(
                    BROKER,
                    "",
                    &[("log.cleaner.io.max.bytes.per.second", SET, Some("1048576"))],
                ),
                resource(
                    BROKER,
                    "1",
                    &[("log.cleaner.dedupe.buffer.size", SET, Some("4194304"))],
                ),
            ],
            false,
        ));
        // Both shards' cleaners pick them up (each gets half of the key-map memory).
        let changed = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            broker
                .stderr_text()
                .lines()
                .filter(|l| {
                    l.contains("log cleaner settings changed")
                        && l.contains("2097152 bytes of key map")
                        && l.contains("at most 1048576 bytes/s")
                })
                .count()
                == 2
        });
        assert!(changed, "{}", broker.stderr_text());
    });
}
