//! Log compaction end to end: a compacted topic written by librdkafka is cleaned by the
//! broker's log cleaner while and after it is written; a consumer from the beginning then sees
//! exactly the latest value of every live key, each at the offset its producer was told, and
//! deleted keys disappear once `delete.retention.ms` has passed.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::Message;

const KEYS: usize = 1000;
const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 2;
/// `delete.retention.ms` of the topic.
const DELETE_RETENTION_MS: u64 = 15_000;
/// lz4, the codec of every batch (attributes bits 0-2).
const LZ4: i16 = 3;

/// What a partition holds, by offset: (key, value; `None` for a tombstone).
type Contents = BTreeMap<i64, (String, Option<Vec<u8>>)>;

fn key_of(i: usize) -> String {
    format!("key-{:04}", i % KEYS)
}

/// Record `i`: a tombstone in round 50 for keys divisible by 7 (they come back in round 51)
/// and in the last round for keys divisible by 10 (they stay deleted); otherwise a value
/// naming the record. Values end with a run of one byte, so that librdkafka compresses even a
/// batch of one record (it sends a batch uncompressed when compression does not shrink it).
fn value_of(i: usize) -> Option<Vec<u8>> {
    let (round, key) = (i / KEYS, i % KEYS);
    let tombstone = (round == 50 && key % 7 == 0) || (round == RECORDS / KEYS - 1 && key % 10 == 0);
    (!tombstone).then(|| {
        let mut v = format!("{}={i}:", key_of(i)).into_bytes();
        v.extend(filler(i as u64, 100));
        v.extend([b'.'; 200]);
        v
    })
}

/// The value of the last record of each partition.
fn sentinel_value() -> Vec<u8> {
    let mut v = b"end".to_vec();
    v.extend([b'.'; 300]);
    v
}

fn create_compacted_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let retention = DELETE_RETENTION_MS.to_string();
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "65536")
        .set("segment.ms", "1000")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", &retention);
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request");
    for r in results {
        r.unwrap_or_else(|(name, code)| panic!("CreateTopics {name}: {code:?}"));
    }
}

/// Reads every record of every partition from offset 0 to the high watermark.
fn read_all(bootstrap: &str, topic: &str) -> HashMap<i32, Contents> {
    let ranges: Vec<(i32, i64, i64)> = (0..PARTITIONS)
        .map(|p| {
            let (low, high) = watermarks(bootstrap, topic, p);
            assert_eq!(low, 0, "compaction never moves the log start offset");
            (p, 0, high)
        })
        .collect();
    let mut seen: HashMap<i32, Contents> = HashMap::new();
    let report = consume(
        bootstrap,
        topic,
        &ranges,
        Duration::from_secs(60),
        Duration::ZERO,
        |m| {
            let key = String::from_utf8(m.key().expect("every record has a key").to_vec()).unwrap();
            let value = m.payload().map(<[u8]>::to_vec);
            let previous = seen
                .entry(m.partition())
                .or_default()
                .insert(m.offset(), (key, value));
            assert!(previous.is_none(), "offset {} delivered twice", m.offset());
        },
    );
    assert!(
        report.errors.is_empty(),
        "consumer errors: {:?}",
        report.errors
    );
    seen
}

/// Total bytes of the topic's segment files, and whether any cleaned or swap file is there.
fn segment_bytes(broker: &Broker, topic: &str) -> u64 {
    (0..PARTITIONS)
        .flat_map(|p| segment_files(&broker.partition_dir(topic, p)))
        .map(|path| std::fs::metadata(path).map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn compaction_keeps_the_latest_value_per_key_at_its_offset_and_drops_deleted_keys() {
    bounded(Duration::from_secs(900), || {
        let broker = Broker::builder()
            .cores(2)
            .set("log.cleaner.backoff.ms", 200)
            .start();
        let bootstrap = broker.bootstrap();
        let topic = unique("compacted");
        create_compacted_topic(&bootstrap, &topic);

        let (producer, log) = producer(
            &bootstrap,
            &[
                ("compression.type", "lz4"),
                ("linger.ms", "5"),
                ("batch.size", "16384"),
                ("acks", "all"),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut produced_bytes = 0u64;
        for i in 0..RECORDS {
            let msg = Msg {
                key: Some(key_of(i).into_bytes()),
                value: value_of(i),
                ..Msg::default()
            };
            produced_bytes += msg.value.as_ref().map_or(0, |v| v.len() as u64);
            send(&producer, &topic, i, &msg, deadline);
        }
        wait_delivered(&producer, &log, RECORDS as u64, Duration::from_secs(300));
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
        // Past segment.ms, one more record per partition rolls the active segments, so that
        // every record above becomes cleanable.
        std::thread::sleep(Duration::from_millis(1500));
        for p in 0..PARTITIONS {
            let msg = Msg {
                key: Some(format!("sentinel-{p}").into_bytes()),
                value: Some(sentinel_value()),
                partition: Some(p),
                ..Msg::default()
            };
            send(&producer, &topic, RECORDS + p as usize, &msg, deadline);
        }
        let total = RECORDS as u64 + PARTITIONS as u64;
        wait_delivered(&producer, &log, total, Duration::from_secs(60));
        let acked = log.acked.lock().unwrap().clone();

        // The latest record of each key, by the offsets the producer was told.
        let mut latest: HashMap<String, (i32, i64, Option<Vec<u8>>)> = HashMap::new();
        for (&id, a) in &acked {
            let (key, value) = if id < RECORDS {
                (key_of(id), value_of(id))
            } else {
                (format!("sentinel-{}", id - RECORDS), Some(sentinel_value()))
            };
            if latest.get(&key).is_none_or(|(_, o, _)| a.offset > *o) {
                latest.insert(key, (a.partition, a.offset, value));
            }
        }
        let live = latest.values().filter(|(_, _, v)| v.is_some()).count();
        assert_eq!(live, KEYS - KEYS / 10 + PARTITIONS as usize);

        // Phase 1: compacted. Every live key's latest value at its offset, nothing else but
        // tombstones of deleted keys (kept for delete.retention.ms).
        let mut tombstones_seen = 0;
        let compacted = wait_until(Duration::from_secs(240), Duration::from_secs(1), || {
            let seen = read_all(&bootstrap, &topic);
            let mut exact = true;
            let mut tombstones = 0;
            let mut records = 0;
            for (partition, contents) in &seen {
                for (offset, (key, value)) in contents {
                    records += 1;
                    let (p, o, v) = &latest[key];
                    if (p, o) != (partition, offset) {
                        exact = false;
                    } else {
                        assert_eq!(v, value, "{key} at {partition}/{offset}");
                        tombstones += usize::from(value.is_none());
                    }
                }
            }
            if exact && records - tombstones == live {
                tombstones_seen = tombstones;
                true
            } else {
                false
            }
        });
        assert!(
            compacted,
            "the topic was not compacted in time:\n{}",
            broker.stderr_text()
        );
        assert!(
            tombstones_seen > 0,
            "tombstones of deleted keys are kept for delete.retention.ms after their first cleaning"
        );

        // Phase 2: delete.retention.ms later, deleted keys are gone for good.
        let gone = wait_until(
            Duration::from_millis(DELETE_RETENTION_MS) + Duration::from_secs(120),
            Duration::from_secs(2),
            || {
                let seen = read_all(&bootstrap, &topic);
                let records: Vec<_> = seen.values().flat_map(|c| c.values()).collect();
                records.len() == live && records.iter().all(|(_, v)| v.is_some())
            },
        );
        assert!(
            gone,
            "tombstones were not removed:\n{}",
            broker.stderr_text()
        );
        let seen = read_all(&bootstrap, &topic);
        for (partition, contents) in &seen {
            for (offset, (key, value)) in contents {
                assert_eq!(&latest[key], &(*partition, *offset, value.clone()));
            }
        }

        // The segment files shrank, and every batch in them is still lz4 with a valid CRC.
        let bytes = segment_bytes(&broker, &topic);
        assert!(
            bytes < produced_bytes / 20,
            "{bytes} bytes of segments left of {produced_bytes} produced"
        );
        for p in 0..PARTITIONS {
            let dir = broker.partition_dir(&topic, p);
            for path in segment_files(&dir) {
                let data = std::fs::read(&path).unwrap();
                for b in scan_batches(&data) {
                    assert!(batch_crc_ok(&data, &b), "{} at {}", path.display(), b.pos);
                    let at = b.pos as usize + 21;
                    let attributes = i16::from_be_bytes([data[at], data[at + 1]]);
                    assert_eq!(
                        attributes & 7,
                        LZ4,
                        "{} at {}: codec kept",
                        path.display(),
                        b.pos
                    );
                }
            }
            let leftovers: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
        let cleanings = broker.stderr_text().matches("cleaned ").count();
        assert!(cleanings > 0);
    });
}
