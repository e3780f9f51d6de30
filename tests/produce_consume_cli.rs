//! `sluice produce` and `sluice consume` end to end against a real 2-shard broker: stdin lines
//! with keys and headers written and read back exactly (also by librdkafka, and with keys on
//! the partitions librdkafka's murmur2 partitioner picks), `--from` offset / timestamp / latest,
//! `--count`, `--group` resuming from committed offsets, every codec and acks setting (the codec
//! checked in the segment file), failures summarised, `--help`, usage errors and an unreachable
//! broker.
//!
//! `CLI_SHOW=1` prints every command with its output.
mod cli_support;
mod common;

use cli_support::*;
use common::{consume, free_range, producer, send, unique, wait_delivered, Broker, Msg};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn produce(bootstrap: &str, topic: &str, extra: &[&str], input: &str) -> Run {
    let mut args = vec!["produce", topic, "--bootstrap-server", bootstrap];
    args.extend_from_slice(extra);
    sluice_with_stdin(&args, input.as_bytes())
}

fn consume_cli(bootstrap: &str, topic: &str, extra: &[&str]) -> Run {
    let mut args = vec!["consume", topic];
    args.extend_from_slice(extra);
    sluice_at(bootstrap, &args)
}

fn create(bootstrap: &str, topic: &str, partitions: i32) {
    sluice_at(
        bootstrap,
        &[
            "topic",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ],
    )
    .failed_with(0);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The partition librdkafka's `murmur2_random` partitioner (Kafka's default) gives each key.
fn librdkafka_partitions(bootstrap: &str, partitions: i32, keys: &[&str]) -> BTreeMap<String, i32> {
    let topic = unique("murmur2");
    create(bootstrap, &topic, partitions);
    let (p, log) = producer(bootstrap, &[("partitioner", "murmur2_random")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    for (id, k) in keys.iter().enumerate() {
        let m = Msg {
            key: Some(k.as_bytes().to_vec()),
            value: Some(b"x".to_vec()),
            headers: vec![],
            timestamp: None,
            partition: None,
        };
        send(&p, &topic, id, &m, deadline);
    }
    wait_delivered(&p, &log, keys.len() as u64, Duration::from_secs(30));
    let acked = log.acked.lock().unwrap();
    keys.iter()
        .enumerate()
        .map(|(id, k)| (k.to_string(), acked[&id].partition))
        .collect()
}

#[test]
fn help_describes_every_option() {
    help_mentions(
        &["produce"],
        &[
            "<TOPIC>",
            "--partition",
            "--key-separator",
            "--header",
            "--acks",
            "--compression",
            "--batch-size",
            "--linger-ms",
            "gzip",
            "snappy",
            "lz4",
            "zstd",
            "murmur2",
            "round-robin",
            "--bootstrap-server",
        ],
    );
    help_mentions(
        &["consume"],
        &[
            "<TOPIC>",
            "--partition",
            "--from",
            "earliest",
            "latest",
            "@TIMESTAMP_MS",
            "--count",
            "--group",
            "--format",
            "%k",
            "%v",
            "%h",
            "%t",
            "%p",
            "%o",
            "key-value",
            "--timeout-ms",
            "end offset",
            "standalone",
            "generation -1",
        ],
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["consume", "t", "--from", "5"][..],
        &["consume", "t", "--from", "yesterday"],
        &["consume", "t", "--format", "%x"],
        &["consume", "t", "--count", "0"],
        &["produce", "t", "--acks", "2"],
        &["produce", "t", "--compression", "brotli"],
        &["produce", "t", "--batch-size", "0"],
        &["produce", "t", "--key-separator", ""],
        &["produce", "t", "--header", "novalue"],
    ] {
        sluice(args).failed_with(2);
    }
}

#[test]
fn unreachable_broker_is_a_clear_error() {
    let addr = format!("127.0.0.1:{}", free_range(1));
    unreachable_is_clear(&addr, &["produce", "t"]);
    unreachable_is_clear(&addr, &["consume", "t"]);
}

#[test]
fn keyed_lines_with_headers_round_trip() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("produce-cli");
    create(&b, &topic, 3);
    let input = "alpha:1\nbeta:2\ngamma:3\nno separator here\nalpha:4\ndelta:with:colons\nanother unkeyed\r\n";
    let keys = ["alpha", "beta", "gamma", "delta"];
    let by_key = librdkafka_partitions(&b, 3, &keys);

    // Expected per partition, in order: (key, value); unkeyed lines go round-robin from 0.
    let mut expected: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
    let mut unkeyed = 0;
    for line in input.lines() {
        let (key, value, p) = match line.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string(), by_key[k]),
            None => {
                unkeyed += 1;
                ("null".to_string(), line.to_string(), unkeyed - 1)
            }
        };
        expected.entry(p).or_default().push((key, value));
    }

    let run = produce(
        &b,
        &topic,
        &[
            "--key-separator",
            ":",
            "--header",
            "src=cli",
            "--header",
            "trace=t1",
        ],
        input,
    );
    run.failed_with(0);
    let counts: Vec<String> = expected
        .iter()
        .map(|(p, r)| format!("partition {p}: {}", r.len()))
        .collect();
    assert_eq!(
        run.stderr,
        format!(
            "Produced 7 records to topic '{topic}' ({}); no errors.\n",
            counts.join(", ")
        ),
        "{}",
        run.show()
    );

    let out = consume_cli(&b, &topic, &["--format", "%p|%o|%k|%v|%h"]);
    out.failed_with(0).stderr_has(&["Consumed 7 records"]);
    let mut got: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for l in out.stdout.lines() {
        got.entry(l.split('|').next().unwrap().parse().unwrap())
            .or_default()
            .push(l.to_string());
    }
    let want: BTreeMap<i32, Vec<String>> = expected
        .iter()
        .map(|(p, rs)| {
            let lines = rs
                .iter()
                .enumerate()
                .map(|(o, (k, v))| format!("{p}|{o}|{k}|{v}|src=cli,trace=t1"))
                .collect();
            (*p, lines)
        })
        .collect();
    assert_eq!(got, want, "{}", out.show());

    // librdkafka reads the same records, headers included.
    let ranges: Vec<(i32, i64, i64)> = expected
        .iter()
        .map(|(p, r)| (*p, 0, r.len() as i64))
        .collect();
    let mut seen = Vec::new();
    consume(
        &b,
        &topic,
        &ranges,
        Duration::from_secs(30),
        Duration::ZERO,
        |m| {
            use rdkafka::Message;
            seen.push((
                m.partition(),
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                common::headers_of(m),
            ));
        },
    );
    assert_eq!(seen.len(), 7);
    for (p, key, value, headers) in seen {
        let key = key.unwrap_or_else(|| "null".to_string());
        assert!(expected[&p].contains(&(key, value)));
        assert_eq!(
            headers,
            vec![
                ("src".to_string(), Some(b"cli".to_vec())),
                ("trace".to_string(), Some(b"t1".to_vec()))
            ]
        );
    }
}

#[test]
fn from_offset_timestamp_latest_and_count() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("consume-from");
    create(&b, &topic, 1);
    produce(&b, &topic, &[], "a0\na1\na2\na3\na4\n").failed_with(0);
    std::thread::sleep(Duration::from_millis(30));
    let middle = now_ms();
    std::thread::sleep(Duration::from_millis(30));
    produce(&b, &topic, &[], "b0\nb1\nb2\nb3\nb4\n").failed_with(0);

    consume_cli(&b, &topic, &["--count", "3", "--format", "%o %v"])
        .stdout_is("0 a0\n1 a1\n2 a2\n")
        .failed_with(0)
        .stderr_has(&["Consumed 3 records"]);
    consume_cli(&b, &topic, &["--partition", "0", "--from", "7"])
        .stdout_is("b2\nb3\nb4\n")
        .failed_with(0);
    consume_cli(&b, &topic, &["--partition", "0", "--from", "11"])
        .failed_with(1)
        .stderr_has(&["offset 11 is out of range", "0 to 10"]);
    let from_time = format!("@{middle}");
    consume_cli(&b, &topic, &["--from", &from_time, "--format", "%v@%t"])
        .failed_with(0)
        .stdout
        .lines()
        .enumerate()
        .for_each(|(i, l)| {
            let (v, t) = l.split_once('@').unwrap();
            assert_eq!(v, format!("b{i}"));
            assert!(t.parse::<i64>().unwrap() >= middle);
        });
    consume_cli(&b, &topic, &["--from", &from_time, "--format", "%v"])
        .stdout_is("b0\nb1\nb2\nb3\nb4\n");
    consume_cli(&b, &topic, &["--from", "latest"])
        .stdout_is("")
        .failed_with(0)
        .stderr_has(&["Consumed 0 records"]);
    consume_cli(
        &b,
        &topic,
        &["--from", "latest", "--count", "1", "--timeout-ms", "1000"],
    )
    .stdout_is("")
    .failed_with(1)
    .stderr_has(&["gave up after 1000 ms without new records", "--count 1"]);
    consume_cli(&b, &topic, &["--partition", "5"])
        .failed_with(1)
        .stderr_has(&["no partition 5"]);
}

#[test]
fn group_resumes_from_committed_offsets() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("consume-group");
    let group = unique("cli-group");
    create(&b, &topic, 2);
    let input: String = (0..10).map(|i| format!("v{i}\n")).collect();
    produce(&b, &topic, &[], &input).failed_with(0);

    let first = consume_cli(
        &b,
        &topic,
        &["--group", &group, "--count", "4", "--format", "%p %o %v"],
    );
    first.failed_with(0).stderr_has(&[
        "Consumed 4 records",
        &format!("Committed offsets of group '{group}'"),
    ]);
    let second = consume_cli(&b, &topic, &["--group", &group, "--format", "%p %o %v"]);
    second.failed_with(0).stderr_has(&["Consumed 6 records"]);
    let mut all: Vec<String> = first
        .stdout
        .lines()
        .chain(second.stdout.lines())
        .map(String::from)
        .collect();
    all.sort();
    // Round-robin: even lines to partition 0, odd ones to partition 1.
    let mut want: Vec<String> = (0..10)
        .map(|i| format!("{} {} v{i}", i % 2, i / 2))
        .collect();
    want.sort();
    assert_eq!(all, want, "{}\n{}", first.show(), second.show());
    consume_cli(&b, &topic, &["--group", &group])
        .stdout_is("")
        .failed_with(0)
        .stderr_has(&[
            "Consumed 0 records",
            &format!("Committed offsets of group '{group}' (partition 0: 5, partition 1: 5)."),
        ]);
    let lag = sluice_at(&b, &["group", "lag", &group]);
    assert!(lag.ok().contains("Total lag: 0"), "{}", lag.show());
}

#[test]
fn every_codec_and_acks_setting() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("codecs");
    create(&b, &topic, 1);
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (i, codec) in codecs.iter().enumerate() {
        let acks = ["all", "1"][i % 2];
        let input = format!("{codec}-1\n{codec}-2\n");
        produce(
            &b,
            &topic,
            &[
                "--compression",
                codec,
                "--acks",
                acks,
                "--linger-ms",
                "5000",
            ],
            &input,
        )
        .failed_with(0)
        .stderr_has(&["Produced 2 records", "no errors"]);
    }
    produce(&b, &topic, &["--acks", "0"], "unacked\n")
        .failed_with(0)
        .stderr_has(&["Produced 1 record to", "unacknowledged (--acks 0)"]);
    let out = consume_cli(&b, &topic, &["--count", "11"]);
    let want: String = codecs
        .iter()
        .map(|c| format!("{c}-1\n{c}-2\n"))
        .chain(["unacked\n".to_string()])
        .collect();
    out.stdout_is(&want).failed_with(0);

    // Each batch kept the codec it was produced with.
    let log = broker
        .partition_dir(&topic, 0)
        .join("00000000000000000000.log");
    let dump = sluice(&["log", "dump", log.to_str().unwrap()]);
    let used: Vec<&str> = dump
        .ok()
        .lines()
        .filter_map(|l| l.split(" compresscodec: ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        used,
        ["none", "gzip", "snappy", "lz4", "zstd", "none"],
        "{}",
        dump.show()
    );
}

#[test]
fn many_lines_go_in_batches() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("many-lines");
    create(&b, &topic, 2);
    let input: String = (0..5000)
        .map(|i| format!("k{}|line {i}\n", i % 7))
        .collect();
    produce(
        &b,
        &topic,
        &[
            "--key-separator",
            "|",
            "--batch-size",
            "100",
            "--compression",
            "lz4",
        ],
        &input,
    )
    .failed_with(0)
    .stderr_has(&["Produced 5000 records", "no errors"]);
    let out = consume_cli(&b, &topic, &["--format", "%k|%v"]);
    out.failed_with(0).stderr_has(&["Consumed 5000 records"]);
    let mut got: Vec<&str> = out.stdout.lines().collect();
    let mut want: Vec<&str> = input.lines().collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn produce_creates_a_missing_topic_when_the_broker_allows() {
    let broker = Broker::builder().cores(2).set("num.partitions", 3).start();
    let b = broker.bootstrap();
    let topic = unique("auto-created");
    produce(&b, &topic, &["--key-separator", ":"], "a:1\nb:2\nc:3\n")
        .failed_with(0)
        .stderr_has(&["Produced 3 records", "no errors"]);
    let out = consume_cli(&b, &topic, &["--format", "%k=%v"]);
    out.failed_with(0).stderr_has(&["Consumed 3 records"]);
    let mut got: Vec<&str> = out.stdout.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["a=1", "b=2", "c=3"]);
    let described = sluice_at(&b, &["topic", "describe", &topic]);
    assert!(
        described.ok().contains("PartitionCount: 3"),
        "{}",
        described.show()
    );
}

#[test]
fn failures_are_summarised() {
    let broker = Broker::builder()
        .cores(2)
        .set("message.max.bytes", 2000)
        .set("auto.create.topics.enable", false)
        .start();
    let b = broker.bootstrap();
    let topic = unique("failures");
    create(&b, &topic, 1);
    let big = "x".repeat(5000);
    produce(
        &b,
        &topic,
        &["--batch-size", "1"],
        &format!("small\n{big}\n"),
    )
    .failed_with(1)
    .stderr_has(&[
        "Produced 1 record to",
        "1 failed: 1 × MESSAGE_TOO_LARGE (10)",
    ]);
    produce(&b, "no-such-topic", &[], "x\n")
        .failed_with(1)
        .stderr_has(&[
            "topic 'no-such-topic' does not exist",
            "`sluice topic create no-such-topic` creates it",
        ]);
    produce(&b, &topic, &["--partition", "9"], "x\n")
        .failed_with(1)
        .stderr_has(&["no partition 9"]);
    consume_cli(&b, "no-such-topic", &[])
        .failed_with(1)
        .stderr_has(&["topic 'no-such-topic' does not exist"]);
}
