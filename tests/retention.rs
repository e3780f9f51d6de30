//! Retention and DeleteRecords, as Kafka does them: `retention.bytes` and `retention.ms` delete
//! whole closed segments from the oldest (renamed `.deleted`, unlinked after
//! `file.delete.delay.ms`), the earliest offset moves to a former segment base, a consumer
//! below it gets OFFSET_OUT_OF_RANGE (and `auto.offset.reset` recovers), and DeleteRecords moves
//! the log start offset inside a segment, answers the low watermark and survives a restart.
mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// Kafka's smallest `segment.bytes` (Kafka 4 refuses less).
const SEGMENT_BYTES: u64 = 1024 * 1024;
/// Bytes of each message's value: about 100 messages per segment.
const VALUE_BYTES: usize = 10_000;
const OFFSET_OUT_OF_RANGE: i16 = 1;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A 2-core broker that checks retention every 200 ms.
fn start_broker() -> Broker {
    Broker::builder()
        .cores(2)
        .set("log.retention.check.interval.ms", 200)
        .start()
}

/// Creates `topic` with topic configs given at CreateTopics time, and waits for its leaders.
fn create_topic_with(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let res = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request failed");
    for r in res {
        if let Err((name, code)) = r {
            panic!("CreateTopics {name}: {code:?}");
        }
    }
    let consumer = plain_consumer(bootstrap);
    let ok = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
    });
    assert!(ok, "topic {topic} did not show up with led partitions");
}

/// Produces messages `ids` to `partition` (value `"<id>:"` + filler, timestamp `ts(id)`) and
/// checks that message `id` got offset `id - ids.start + first_offset`.
fn produce(bootstrap: &str, topic: &str, partition: i32, ids: Range<i64>, ts: impl Fn(i64) -> i64) {
    let (p, log) = producer(
        bootstrap,
        &[
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.size", "100000"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in ids.clone() {
        let mut value = format!("{i}:").into_bytes();
        value.extend_from_slice(&filler(i as u64, VALUE_BYTES));
        let m = Msg {
            value: Some(value),
            timestamp: Some(ts(i)),
            partition: Some(partition),
            ..Default::default()
        };
        send(&p, topic, i as usize, &m, deadline);
    }
    let count = (ids.end - ids.start) as u64;
    wait_delivered(&p, &log, count, Duration::from_secs(120));
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
    let acked = log.acked.lock().unwrap();
    for i in ids {
        assert_eq!(acked[&(i as usize)].offset, i, "offset of message {i}");
    }
}

/// The `.log` files of a partition as (base offset, size), and the base offsets of its
/// `.log.deleted` files.
fn segments(dir: &Path) -> (Vec<(i64, u64)>, Vec<i64>) {
    let mut live = Vec::new();
    let mut deleted = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base) = name.strip_suffix(".log") {
            live.push((base.parse().unwrap(), entry.metadata().unwrap().len()));
        } else if let Some(base) = name.strip_suffix(".log.deleted") {
            deleted.push(base.parse().unwrap());
        }
    }
    live.sort_unstable();
    deleted.sort_unstable();
    (live, deleted)
}

/// Every file name of a partition directory that ends in `.deleted`.
fn deleted_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deleted"))
        .collect()
}

/// Assigns a consumer at `offset` with `auto.offset.reset` = `reset` and returns the first
/// message (offset, id in its value) or the first error that is not group noise.
fn first_message(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    reset: &str,
) -> Result<(i64, i64), KafkaError> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", unique("retention-reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", reset)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let value = m.payload().unwrap();
                let text =
                    std::str::from_utf8(&value[..value.iter().position(|&b| b == b':').unwrap()])
                        .unwrap();
                return Ok((m.offset(), text.parse().unwrap()));
            }
            Some(Err(e)) if is_group_error(&e) => {}
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    panic!("no message nor error from {topic}-{partition} at offset {offset} within 30s");
}

/// Asserts that a consumer assigned at `offset` with `auto.offset.reset=error` is told the
/// offset is out of range.
fn assert_out_of_range(bootstrap: &str, topic: &str, partition: i32, offset: i64) {
    match first_message(bootstrap, topic, partition, offset, "error") {
        Err(e) => assert!(
            matches!(
                e.rdkafka_error_code(),
                Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
            ),
            "want OFFSET_OUT_OF_RANGE at {offset}, got {e}"
        ),
        Ok(m) => panic!("offset {offset} is below the earliest, yet {m:?} was read"),
    }
}

/// Raw Fetch of one partition from the shard leading it: (error code, log start offset).
fn raw_fetch(broker: &Broker, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let md = plain_consumer(&broker.bootstrap())
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let leader = md.topics()[0].partitions()[partition as usize].leader();
    let mut c = RawClient::connect_negotiated(broker.addr((leader % 1000) as u16));
    let v = c.version::<FetchRequest>(12);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let resp = c.send(&req, v).expect("Fetch");
    let p = &resp.responses[0].partitions[0];
    (p.error_code, p.log_start_offset)
}

/// DeleteRecords through rdkafka's AdminClient: per partition, the low watermark or the error.
fn delete_records(
    bootstrap: &str,
    topic: &str,
    offsets: &[(i32, Offset)],
) -> Vec<Result<i64, KafkaError>> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, *o).unwrap();
    }
    let result = futures::executor::block_on(admin.delete_records(&tpl, &opts))
        .expect("DeleteRecords request failed");
    offsets
        .iter()
        .map(|(p, _)| {
            let e = result
                .find_partition(topic, *p)
                .expect("partition in result");
            e.error().map(|()| match e.offset() {
                Offset::Offset(o) => o,
                other => panic!("low watermark {other:?}"),
            })
        })
        .collect()
}

/// Base offsets of the segments deleted from `topic`-`partition`, from the broker's log lines
/// (`deleted segment <base>.log (offsets <base>..<next>, …) of T-P: <reason>`), as
/// (base, next, reason).
fn logged_deletions(broker: &Broker, topic: &str, partition: i32) -> Vec<(i64, i64, String)> {
    let marker = format!(" of {topic}-{partition}: ");
    broker
        .stderr_text()
        .lines()
        .filter(|l| l.contains("deleted segment ") && l.contains(&marker))
        .map(|l| {
            let offsets = l.split("(offsets ").nth(1).unwrap();
            let (range, _) = offsets.split_once(',').unwrap();
            let (base, next) = range.split_once("..").unwrap();
            let reason = l.split(&marker).nth(1).unwrap().to_string();
            (base.parse().unwrap(), next.parse().unwrap(), reason)
        })
        .collect()
}

#[test]
fn retention_bytes_deletes_whole_old_segments() {
    bounded(Duration::from_secs(300), || {
        let broker = start_broker();
        let bs = broker.bootstrap();
        let topic = unique("retention-bytes");
        let retention_bytes = 3 * SEGMENT_BYTES;
        create_topic_with(
            &bs,
            &topic,
            1,
            &[
                ("segment.bytes", &SEGMENT_BYTES.to_string()),
                ("retention.bytes", &retention_bytes.to_string()),
                ("file.delete.delay.ms", "60000"),
            ],
        );
        const N: i64 = 800;
        let now = now_ms();
        produce(&bs, &topic, 0, 0..N, |_| now);
        let dir = broker.partition_dir(&topic, 0);

        // Kafka's rule, once the checks have caught up: the oldest segment goes while the log
        // minus its size still holds retention.bytes.
        let settled = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            let (live, _) = segments(&dir);
            let size: u64 = live.iter().map(|s| s.1).sum();
            size - live[0].1 < retention_bytes
        });
        let (live, deleted) = segments(&dir);
        assert!(settled, "retention.bytes never settled: {live:?}");
        let size: u64 = live.iter().map(|s| s.1).sum();
        assert!(size >= retention_bytes, "deleted too much: {live:?}");
        assert!(deleted.len() >= 3, "{deleted:?}");
        // Whole segments, oldest first: the deleted ones are exactly those below the first live
        // one, they tile the log from 0, and their three files wait under `.deleted`.
        let earliest = live[0].0;
        assert_eq!(deleted[0], 0);
        assert!(deleted.iter().all(|&b| b < earliest));
        let names = deleted_files(&dir);
        for base in &deleted {
            for ext in ["log", "index", "timeindex"] {
                let name = format!("{base:020}.{ext}.deleted");
                assert!(names.contains(&name), "{name} missing from {names:?}");
            }
        }
        let logged = logged_deletions(&broker, &topic, 0);
        assert_eq!(
            logged.iter().map(|d| d.0).collect::<Vec<_>>(),
            deleted,
            "one log line per deleted segment"
        );
        assert!(logged.windows(2).all(|w| w[0].1 == w[1].0));
        assert_eq!(logged.last().unwrap().1, earliest);
        assert!(
            logged.iter().all(|d| d.2.starts_with("retention.bytes")),
            "{logged:?}"
        );

        assert_eq!(watermarks(&bs, &topic, 0), (earliest, N));
        assert_out_of_range(&bs, &topic, 0, 0);
        assert_out_of_range(&bs, &topic, 0, earliest - 1);
        assert_eq!(
            first_message(&bs, &topic, 0, 0, "earliest").unwrap(),
            (earliest, earliest)
        );
        assert_eq!(
            first_message(&bs, &topic, 0, earliest, "error").unwrap(),
            (earliest, earliest)
        );
    });
}

#[test]
fn retention_ms_deletes_segments_of_old_records_only() {
    bounded(Duration::from_secs(300), || {
        let broker = start_broker();
        let bs = broker.bootstrap();
        let topic = unique("retention-ms");
        create_topic_with(
            &bs,
            &topic,
            1,
            &[
                ("segment.bytes", &SEGMENT_BYTES.to_string()),
                ("retention.ms", "3600000"),
                ("file.delete.delay.ms", "300"),
            ],
        );
        // 400 records two hours old, then 150 of now.
        const OLD: i64 = 400;
        const N: i64 = 550;
        let now = now_ms();
        produce(&bs, &topic, 0, 0..OLD, |i| now - 7_200_000 + i);
        produce(&bs, &topic, 0, OLD..N, |i| now + i);
        let dir = broker.partition_dir(&topic, 0);

        // The old segments go, and their `.deleted` files disappear after file.delete.delay.ms.
        let settled = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            let logged = logged_deletions(&broker, &topic, 0);
            let (live, _) = segments(&dir);
            let holds_first_recent = live.get(1).map_or(N, |s| s.0) > OLD;
            logged.last().is_some_and(|d| d.1 == live[0].0)
                && holds_first_recent
                && deleted_files(&dir).is_empty()
        });
        let logged = logged_deletions(&broker, &topic, 0);
        let (live, _) = segments(&dir);
        assert!(
            settled,
            "retention.ms never settled: deleted {logged:?}, live {live:?}, files {:?}",
            deleted_files(&dir)
        );
        let earliest = live[0].0;
        // Only segments of old records were deleted, whole and oldest first; the segment
        // holding the first recent record (offset OLD) is the first one left.
        assert_eq!(logged[0].0, 0);
        assert!(logged.windows(2).all(|w| w[0].1 == w[1].0), "{logged:?}");
        assert!(
            logged.iter().all(|d| d.1 <= OLD),
            "a recent record was deleted: {logged:?}"
        );
        assert!(
            logged
                .iter()
                .all(|d| d.2.starts_with("retention.ms 3600000")),
            "{logged:?}"
        );
        assert!(earliest <= OLD);
        let live_end = live.get(1).map_or(N, |s| s.0);
        assert!(
            OLD < live_end,
            "the first segment left holds offset {OLD}: {live:?}"
        );

        assert_eq!(watermarks(&bs, &topic, 0), (earliest, N));
        if earliest > 0 {
            assert_out_of_range(&bs, &topic, 0, earliest - 1);
        }
        assert_eq!(
            first_message(&bs, &topic, 0, 0, "earliest").unwrap(),
            (earliest, earliest)
        );
    });
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    bounded(Duration::from_secs(300), || {
        let mut broker = start_broker();
        let bs = broker.bootstrap();
        let topic = unique("delete-records");
        create_topic_with(
            &bs,
            &topic,
            2,
            &[
                ("segment.bytes", &SEGMENT_BYTES.to_string()),
                ("file.delete.delay.ms", "500"),
            ],
        );
        const N: i64 = 500;
        let now = now_ms();
        produce(&bs, &topic, 0, 0..N, |_| now);
        produce(&bs, &topic, 1, 0..10, |_| now);
        let dir = broker.partition_dir(&topic, 0);
        let (live, _) = segments(&dir);
        assert!(live.len() >= 4, "{live:?}");
        let bases: Vec<i64> = live.iter().map(|s| s.0).collect();
        let target = bases[2] + 5;

        // Partition 0 into its third segment; partition 1 up to its high watermark (-1).
        let result = delete_records(
            &bs,
            &topic,
            &[(0, Offset::Offset(target)), (1, Offset::End)],
        );
        assert_eq!(result[0].as_ref().ok(), Some(&target), "{result:?}");
        assert_eq!(result[1].as_ref().ok(), Some(&10), "{result:?}");
        assert_eq!(watermarks(&bs, &topic, 0), (target, N));
        assert_eq!(watermarks(&bs, &topic, 1), (10, 10));
        assert_eq!(
            raw_fetch(&broker, &topic, 0, target - 1),
            (OFFSET_OUT_OF_RANGE, target)
        );
        assert_eq!(raw_fetch(&broker, &topic, 0, target), (0, target));

        // Never backwards; beyond the high watermark is out of range.
        let result = delete_records(&bs, &topic, &[(0, Offset::Offset(3))]);
        assert_eq!(result[0].as_ref().ok(), Some(&target));
        let result = delete_records(&bs, &topic, &[(0, Offset::Offset(N + 1))]);
        match &result[0] {
            Err(KafkaError::OffsetFetch(RDKafkaErrorCode::OffsetOutOfRange)) => {}
            other => panic!("want OFFSET_OUT_OF_RANGE beyond the high watermark, got {other:?}"),
        }

        // Kafka refuses internal topics and topics without the delete policy.
        let result = delete_records(&bs, "__consumer_offsets", &[(0, Offset::End)]);
        match &result[0] {
            Err(KafkaError::OffsetFetch(RDKafkaErrorCode::InvalidTopic)) => {}
            other => panic!("want INVALID_TOPIC_EXCEPTION on __consumer_offsets, got {other:?}"),
        }
        let compacted = unique("compacted");
        create_topic_with(&bs, &compacted, 1, &[("cleanup.policy", "compact")]);
        let result = delete_records(&bs, &compacted, &[(0, Offset::End)]);
        match &result[0] {
            Err(KafkaError::OffsetFetch(RDKafkaErrorCode::PolicyViolation)) => {}
            other => panic!("want POLICY_VIOLATION on a compacted topic, got {other:?}"),
        }

        // The two segments wholly below the new start go (renamed, then unlinked after
        // file.delete.delay.ms); the one holding it stays.
        let gone = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            segments(&dir).0.iter().map(|s| s.0).collect::<Vec<_>>() == bases[2..]
                && deleted_files(&dir).is_empty()
        });
        assert!(
            gone,
            "segments left: {:?}, files {:?}",
            segments(&dir),
            deleted_files(&dir)
        );
        let logged = logged_deletions(&broker, &topic, 0);
        assert_eq!(
            logged.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(),
            vec![(bases[0], bases[1]), (bases[1], bases[2])]
        );

        assert_out_of_range(&bs, &topic, 0, bases[2]);
        assert_eq!(
            first_message(&bs, &topic, 0, 0, "earliest").unwrap(),
            (target, target)
        );

        // The log start offset is checkpointed and survives a restart.
        broker.restart();
        let checkpoints: String = (0..broker.cores())
            .map(|k| {
                broker
                    .data_dir()
                    .join(format!("shard-{k}/log-start-offset-checkpoint"))
            })
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        assert!(
            checkpoints.contains(&format!("{topic} 0 {target}\n")),
            "{checkpoints}"
        );
        assert!(
            checkpoints.contains(&format!("{topic} 1 10\n")),
            "{checkpoints}"
        );
        let bs = broker.bootstrap();
        assert_eq!(watermarks(&bs, &topic, 0), (target, N));
        assert_eq!(watermarks(&bs, &topic, 1), (10, 10));
        assert_eq!(
            first_message(&bs, &topic, 0, 0, "earliest").unwrap(),
            (target, target)
        );
        assert_out_of_range(&bs, &topic, 0, target - 1);
    });
}
