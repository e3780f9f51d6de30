//! Replays the saved fuzz corpora (`tests/fuzz/corpus/<target>/`) and every saved crash input
//! (`tests/fuzz/crashes/<target>/`) through the fuzz target bodies, so that the normal suite
//! keeps every input the fuzzer ever found interesting or fatal from coming back. Takes seconds.
//!
//! `make_fuzz_seeds` (ignored; run it by name) rebuilds the seed corpora from a real broker: see
//! its doc comment.

mod common;
#[path = "common/frames.rs"]
mod frames;
#[path = "fuzz/src/targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every saved input of every target runs to completion: no panic, no failed debug assertion,
/// no overflow (the `ci` profile keeps both checks on).
#[test]
fn saved_fuzz_inputs_replay_without_findings() {
    let mut failures = Vec::new();
    for &(name, target) in targets::ALL {
        let corpus = files_in(&fuzz_dir().join("corpus").join(name));
        assert!(
            corpus.len() >= 3,
            "target {name} has {} corpus files; seed it (tests/fuzz/README in RESULTS.md)",
            corpus.len()
        );
        let crashes = files_in(&fuzz_dir().join("crashes").join(name));
        for file in corpus.iter().chain(&crashes) {
            let data = std::fs::read(file).expect("read a saved fuzz input");
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(format!("{name}: {}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "fuzz inputs that fail: {failures:#?}");
}

/// The request target decodes the body of every API and version the broker supports (so no
/// supported API is left out of `decode_request_body`), and every default-bodied request of
/// every supported version is in the saved corpus's reach: its header parses.
#[test]
fn request_target_covers_every_supported_api_and_version() {
    let frames = frames::default_frames();
    for &(key, lo, hi) in sluice_engine::api::SUPPORTED_APIS {
        for version in lo..=hi {
            let (_, _, frame) = frames
                .iter()
                .find(|(k, v, _)| *k == key && *v == version)
                .unwrap_or_else(|| panic!("no default frame for {key:?} v{version}"));
            let request =
                sluice_net::RawRequest::parse(frame.clone()).expect("a default request header");
            assert_eq!((request.api_key, request.api_version), (key, version));
            assert!(
                targets::decode_request_body(&request),
                "{key:?} is not decoded by the request_decoding target"
            );
        }
    }
}

/// Rebuilds the seed corpora of every target from real inputs, into `SLUICE_FUZZ_SEED_DIR`
/// (default `tests/fuzz/corpus`): a 2-shard broker with `log.index.interval.bytes=256` is sent
/// messages by librdkafka producers in every codec and a consumer group commits offsets; then
/// the broker is stopped and its segment, index, `__consumer_offsets` and metadata files, the
/// batches in its segments, kafka-protocol request frames of every supported API and version
/// and of a real client session, and a few `server.properties` files become seed inputs.
/// Minimize afterwards with `tests/fuzz/run.sh minimize TARGET`.
///
/// `cargo test --profile ci --test fuzz_replay -- --ignored make_fuzz_seeds`
#[test]
#[ignore]
fn make_fuzz_seeds() {
    seeds::make();
}

mod seeds {
    use super::common::*;
    use super::frames;
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::records::RecordBatchDecoder;
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::Message;
    use sluice_storage::BatchHeader;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    const TOPIC: &str = "seeds";
    const COMPACTED: &str = "seeds-compacted";

    struct Out(PathBuf);

    impl Out {
        fn put(&self, target: &str, data: &[u8]) {
            let dir = self.0.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            let name = format!("seed-{:08x}-{}", crc32c::crc32c(data), data.len());
            std::fs::write(dir.join(name), data).unwrap();
        }

        /// A whole batch for `batch_validation`, and its records for `decompression` (codec
        /// byte from the batch's attributes, limit byte 0: the smallest topic limit).
        fn put_batch(&self, batch: &[u8]) {
            self.put("batch_validation", batch);
            let header = BatchHeader::parse(batch).unwrap();
            let mut records = vec![header.compression() as u8, 0];
            records.extend_from_slice(&batch[sluice_storage::batch::HEADER_SIZE..]);
            self.put("decompression", &records);
        }
    }

    pub fn make() {
        let out = Out(std::env::var_os("SLUICE_FUZZ_SEED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| super::fuzz_dir().join("corpus")));
        let mut broker = Broker::builder()
            .cores(2)
            .set("log.index.interval.bytes", 256)
            .start();
        let bootstrap = broker.bootstrap();
        create_topic(&bootstrap, TOPIC, 2);
        create_topic(&bootstrap, COMPACTED, 1);
        let mut sent = 0usize;
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let (p, log) = producer(
                &bootstrap,
                &[("compression.type", codec), ("linger.ms", "20")],
            );
            for i in 0..60 {
                let m = Msg {
                    key: Some(format!("key-{}", i % 7).into_bytes()),
                    value: Some(filler(i as u64, 40 + i * 3)),
                    headers: vec![("codec".into(), Some(codec.as_bytes().to_vec()))],
                    timestamp: None,
                    partition: None,
                };
                let topic = if i % 5 == 0 { COMPACTED } else { TOPIC };
                send(
                    &p,
                    topic,
                    sent,
                    &m,
                    Instant::now() + Duration::from_secs(30),
                );
                sent += 1;
            }
            wait_delivered(&p, &log, 60, Duration::from_secs(60));
        }
        commit_as_group(&bootstrap);
        broker.stop();

        for (_, _, frame) in frames::default_frames() {
            out.put("request_decoding", &frame);
        }
        for frame in frames::client_frames(TOPIC, "seed-group") {
            out.put("request_decoding", &frame);
        }
        for codec in frames::CODECS {
            out.put_batch(&frames::record_batch(codec, 4, 1));
        }
        for entry in std::fs::read_dir(broker.data_dir()).unwrap() {
            let dir = entry.unwrap().path();
            if dir.is_dir() {
                seed_partition(&out, &dir);
            }
        }
        for metadata in [
            MINIMAL_METADATA,
            LEGACY_METADATA,
            METADATA_LOG_ENTRY,
            METADATA_SNAPSHOT,
            CONTROLLER_CALL,
        ] {
            out.put("metadata_loading", metadata.as_bytes());
        }
        for config in CONFIGS {
            out.put("config_loading", config.as_bytes());
        }
    }

    /// A consumer group reads the topic and commits, so that `__consumer_offsets` holds group
    /// metadata and offset commit records.
    fn commit_as_group(bootstrap: &str) {
        let consumer: BaseConsumer = client_config(bootstrap)
            .set("group.id", "seed-group")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("group consumer");
        consumer.subscribe(&[TOPIC, COMPACTED]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut read = 0;
        while read < 100 && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                assert!(m.payload().is_some());
                read += 1;
            }
        }
        assert!(read >= 100, "the seed group read only {read} messages");
        consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    }

    /// Seeds from one partition directory: its segments (recovery), batches (validation),
    /// indexes, and for `__consumer_offsets` its records.
    fn seed_partition(out: &Out, dir: &Path) {
        let offsets = dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("__consumer_offsets"));
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "log") {
                continue;
            }
            let log = std::fs::read(&path).unwrap();
            if log.is_empty() {
                continue;
            }
            out.put("segment_recovery", &log[..log.len().min(48 << 10)]);
            let index = std::fs::read(path.with_extension("index")).unwrap_or_default();
            let times = std::fs::read(path.with_extension("timeindex")).unwrap_or_default();
            let index = &index[..index.len().min(255 * 8)];
            let mut pair = vec![(index.len() / 8) as u8];
            pair.extend_from_slice(index);
            pair.extend_from_slice(&times);
            out.put("index_loading", &pair);
            let log = Bytes::from(log);
            let mut pos = 0;
            let mut seen_codecs = Vec::new();
            while let Ok(header) = BatchHeader::parse(&log[pos..]) {
                let end = pos + header.total_size();
                if end > log.len() {
                    break;
                }
                let batch = log.slice(pos..end);
                if !seen_codecs.contains(&header.compression()) {
                    seen_codecs.push(header.compression());
                    out.put_batch(&batch);
                }
                if offsets && !header.is_control() {
                    let records = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
                    for record in records.records {
                        let key = record.key.unwrap_or_default();
                        let mut input = BytesMut::new();
                        input.put_u16(key.len() as u16);
                        input.extend_from_slice(&key);
                        input.extend_from_slice(record.value.as_deref().unwrap_or_default());
                        out.put("offsets_records", &input);
                    }
                }
                pos = end;
            }
        }
    }

    /// The metadata file of a broker that has no topic yet, as an older version wrote it.
    const MINIMAL_METADATA: &str =
        r#"{"cluster_id":"AAAAAAAAAAAAAAAAAAAAAA","next_producer_id":7,"topics":{}}"#;
    /// A `cluster-metadata.json` of the single-broker release, with a topic and configs.
    const LEGACY_METADATA: &str = r#"{"cluster_id":"AAAAAAAAAAAAAAAAAAAAAA","next_producer_id":1000,"topics":{"t":{"id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0de","partitions":[{"shard":0,"leader_epoch":0},{"shard":1,"leader_epoch":2}],"configs":{"retention.ms":"1000"},"internal":false}},"broker_configs":{"cluster_default":{},"brokers":{}}}"#;
    /// A metadata log entry: a broker registration and a topic.
    const METADATA_LOG_ENTRY: &str = r#"{"version":1,"records":[{"cluster_id":{"id":"AAAAAAAAAAAAAAAAAAAAAA"}},{"register_broker":{"broker":{"id":1,"incarnation_id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0de","shards":2,"host":"127.0.0.1","port":9092,"rack":null,"fenced":false,"epoch":0}}},{"topic":{"name":"t","topic":{"id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0df","partitions":[{"broker":1,"shard":1,"leader_epoch":0}],"configs":{},"internal":false}}},{"broker_configs":{"configs":{"brokers":{"1":{"message.max.bytes":"5000"}}}}},{"broker_fencing":{"id":1,"fenced":true}}]}"#;
    /// A metadata snapshot.
    const METADATA_SNAPSHOT: &str = r#"{"version":1,"state":{"cluster_id":"AAAAAAAAAAAAAAAAAAAAAA","next_producer_id":7,"topics":{},"brokers":{}}}"#;
    /// A controller call as the controller listener receives it.
    const CONTROLLER_CALL: &str = r#"{"BrokerHeartbeat":{"id":1,"incarnation_id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0de","applied_offset":5,"shutting_down":false}}"#;

    /// Broker configuration files as operators write them.
    const CONFIGS: &[&str] = &[
        "# A single broker\nnode.id=1\nlisteners=PLAINTEXT://127.0.0.1:9092\nlog.dirs=/var/lib/sluice\nnum.partitions=3\nlog.retention.hours=168\nlog.segment.bytes=1073741824\n",
        "broker.id = 7\nlog.dirs: /data/a\\\n    ,/data/b\nlog.retention.ms=86400000\nlog.cleanup.policy=compact,delete\nauto.create.topics.enable=false\nmessage.max.bytes=1048588\n! comment\nsluice.shards=2\n",
        "advertised.listeners=PLAINTEXT://broker\\u002e1:9092\nlisteners=PLAINTEXT://:9092\noffsets.topic.num.partitions=50\ngroup.initial.rebalance.delay.ms=0\nlog.retention.bytes=-1\nlog.flush.interval.messages=10000\nlog.flush.interval.ms=1000\nconnections.max.idle.ms=600000\nsocket.request.max.bytes=104857600\n",
    ];
}
