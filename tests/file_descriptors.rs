//! File descriptors are budgeted: a broker whose `RLIMIT_NOFILE` is 256 (soft and hard) serves
//! partitions whose segments would need several times that many descriptors if each held its
//! three files open. It logs both limits at start, keeps old segments' files closed (opened on
//! demand through a bounded per-shard cache), and everything produced reads back intact from
//! the beginning, before and after a restart, while its open descriptors stay under the limit.
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::message::Message;

/// `RLIMIT_NOFILE` of the broker, soft and hard.
const LIMIT: usize = 256;
const PARTITIONS: i32 = 24;
const MESSAGES_PER_PARTITION: usize = 200;
const VALUE_BYTES: usize = 400;
/// Small segments: about ten messages each.
const SEGMENT_BYTES: u64 = 4096;

/// Samples `pid`'s descriptor count every 10 ms until dropped; keeps the largest seen.
struct FdWatcher {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FdWatcher {
    fn start(pid: u32) -> FdWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicUsize::new(open_fds(pid) as usize));
        let thread = {
            let (stop, max) = (stop.clone(), max.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    max.fetch_max(open_fds(pid) as usize, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        FdWatcher {
            stop,
            max,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns the largest count seen.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.max.load(Ordering::Relaxed)
    }
}

fn value(partition: i32, i: usize) -> Vec<u8> {
    let mut v = format!("{partition}:{i}:").into_bytes();
    v.extend_from_slice(&filler((partition as u64) << 32 | i as u64, VALUE_BYTES));
    v
}

/// Reads every partition from offset 0 and checks each message is the one produced there.
fn consume_all_and_check(bootstrap: &str, topic: &str) {
    let ranges: Vec<(i32, i64, i64)> = (0..PARTITIONS)
        .map(|p| (p, 0, MESSAGES_PER_PARTITION as i64))
        .collect();
    let mut seen: HashMap<i32, usize> = HashMap::new();
    let report = consume(
        bootstrap,
        topic,
        &ranges,
        Duration::from_secs(120),
        Duration::ZERO,
        |m| {
            let p = m.partition();
            let i = usize::try_from(m.offset()).unwrap();
            assert_eq!(m.payload(), Some(&value(p, i)[..]), "{p}/{i}");
            *seen.entry(p).or_default() += 1;
        },
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    for p in 0..PARTITIONS {
        assert_eq!(seen.get(&p), Some(&MESSAGES_PER_PARTITION), "partition {p}");
    }
}

#[test]
fn many_segments_under_a_low_descriptor_limit() {
    let mut broker = Broker::builder()
        .cores(2)
        .nofile(LIMIT as u64)
        .set("log.segment.bytes", SEGMENT_BYTES)
        .set("offsets.topic.num.partitions", 2)
        .start();
    let start_log = broker.stderr_since_start();
    assert!(
        start_log.contains("RLIMIT_NOFILE soft limit 256 (was 256), hard limit 256"),
        "start-up log:\n{start_log}"
    );
    assert!(
        start_log.contains("the hard RLIMIT_NOFILE 256 is low"),
        "a limit below the plan is reported:\n{start_log}"
    );
    let bootstrap = broker.bootstrap();
    let topic = unique("fds");
    create_topic(&bootstrap, &topic, PARTITIONS);

    let pid = broker.pid().unwrap();
    let watcher = FdWatcher::start(pid);
    let (p, log) = producer(
        &bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("batch.size", "2000"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut id = 0;
    for i in 0..MESSAGES_PER_PARTITION {
        for partition in 0..PARTITIONS {
            let m = Msg {
                value: Some(value(partition, i)),
                partition: Some(partition),
                ..Default::default()
            };
            send(&p, &topic, id, &m, deadline);
            id += 1;
        }
    }
    wait_delivered(&p, &log, id as u64, Duration::from_secs(120));
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
    drop(p);

    let segments: usize = (0..PARTITIONS)
        .map(|p| {
            std::fs::read_dir(broker.partition_dir(&topic, p))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
                })
                .count()
        })
        .sum();
    assert!(
        segments * 3 > 3 * LIMIT,
        "{segments} segments: three files each must far exceed the limit {LIMIT}"
    );

    let max_producing = watcher.finish();
    let watcher = FdWatcher::start(pid);
    consume_all_and_check(&bootstrap, &topic);
    let max = watcher.finish().max(max_producing);
    assert!(max < LIMIT, "broker held {max} descriptors (limit {LIMIT})");
    broker.assert_alive();

    broker.restart();
    let pid = broker.pid().unwrap();
    let after_start = open_fds(pid) as usize;
    eprintln!("{after_start} descriptors open after the restart");
    assert!(
        after_start < LIMIT,
        "{after_start} descriptors after restart"
    );
    let watcher = FdWatcher::start(pid);
    consume_all_and_check(&broker.bootstrap(), &topic);
    let max = watcher.finish();
    assert!(max < LIMIT, "broker held {max} descriptors after restart");
    broker.assert_alive();
    eprintln!("{segments} segments; at most {max} descriptors open (limit {LIMIT})");
}
