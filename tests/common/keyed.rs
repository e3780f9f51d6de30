//! The keyed round trip that single-broker and cluster tests share: `n` keyed messages with
//! headers and timestamps, produced with acks=all and read back with the same checks
//! everywhere (every message once, at the offset it was acknowledged at, intact; offsets
//! increasing per partition; each key on one partition, in order).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::message::{Message, Timestamp};

use super::{consume, filler, headers_of, mix64, producer, send, wait_delivered, watermarks, Msg};

/// Distinct keys: message `i` has key `key-(i % KEYS)`.
pub const KEYS: usize = 1_000;
/// CreateTime of message 0 (message `i` has `TS0 + i`).
pub const TS0: i64 = 1_700_000_000_000;

/// Message `i`: key `key-(i % KEYS)`, its sequence number within that key is
/// `i / KEYS`; the value starts with `i:` and continues with deterministic
/// filler of varying length; four headers (one empty, one null); CreateTime
/// `TS0 + i`.
pub fn message(i: usize) -> Msg {
    let mut value = format!("{i}:").into_bytes();
    value.extend_from_slice(&filler(
        i as u64,
        20 + (mix64(i as u64 ^ 0xabc) % 180) as usize,
    ));
    Msg {
        key: Some(format!("key-{:04}", i % KEYS).into_bytes()),
        value: Some(value),
        headers: vec![
            ("i".to_string(), Some(i.to_string().into_bytes())),
            ("seq".to_string(), Some((i / KEYS).to_string().into_bytes())),
            ("empty".to_string(), Some(Vec::new())),
            ("null".to_string(), None),
        ],
        timestamp: Some(TS0 + i as i64),
        partition: None,
    }
}

/// Produces messages `0..n` (see [`message`]) to `topic` with `codec`, acks=all, checks that
/// all `partitions` together hold exactly them, and reads them back with every check of the
/// module documentation. Panics with the first bad messages otherwise.
pub fn round_trip(bs: &str, topic: &str, partitions: i32, n: usize, codec: &str) {
    let (p, log) = producer(
        bs,
        &[
            ("acks", "all"),
            ("compression.type", codec),
            ("linger.ms", "20"),
            ("batch.num.messages", "5000"),
            ("queue.buffering.max.messages", "50000"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(400);
    for i in 0..n {
        send(&p, topic, i, &message(i), deadline);
    }
    wait_delivered(&p, &log, n as u64, Duration::from_secs(400));
    assert_eq!(
        log.failed(),
        0,
        "deliveries failed: {:?}",
        log.first_failures(10)
    );
    drop(p);
    let acked = std::mem::take(&mut *log.acked.lock().unwrap());
    assert_eq!(acked.len(), n);

    // Every partition's high watermark, and together they hold n messages.
    let mut ranges = Vec::new();
    let mut total = 0;
    for part in 0..partitions {
        let (lo, hi) = watermarks(bs, topic, part);
        assert_eq!(lo, 0, "partition {part} low watermark");
        total += hi;
        ranges.push((part, 0, hi));
    }
    assert_eq!(total, n as i64, "sum of high watermarks");

    let mut seen = vec![false; n];
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    let mut key_partition: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut key_last_seq: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut bad = Vec::<String>::new();
    let rep = consume(
        bs,
        topic,
        &ranges,
        Duration::from_secs(400),
        Duration::from_millis(500),
        |m| {
            let mut fail = |s: String| {
                if bad.len() < 20 {
                    bad.push(s)
                }
            };
            let part = m.partition();
            let off = m.offset();
            if let Some(prev) = last_offset.insert(part, off) {
                if off <= prev {
                    fail(format!("partition {part}: offset {off} after {prev}"));
                }
            }
            let headers = headers_of(m);
            let id = headers
                .first()
                .filter(|(k, _)| k == "i")
                .and_then(|(_, v)| v.as_ref())
                .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok());
            let Some(i) = id.filter(|i| *i < n) else {
                fail(format!("p{part}@{off}: no valid `i` header: {headers:?}"));
                return;
            };
            if std::mem::replace(&mut seen[i], true) {
                fail(format!("message {i} read twice (again at p{part}@{off})"));
            }
            let want = message(i);
            if m.key() != want.key.as_deref() {
                fail(format!(
                    "message {i}: key {:?}",
                    m.key().map(String::from_utf8_lossy)
                ));
            }
            if m.payload() != want.value.as_deref() {
                fail(format!(
                    "message {i}: value differs (len {:?})",
                    m.payload().map(|v| v.len())
                ));
            }
            if headers != want.headers {
                fail(format!("message {i}: headers {headers:?}"));
            }
            if m.timestamp() != Timestamp::CreateTime(TS0 + i as i64) {
                fail(format!(
                    "message {i}: timestamp {:?}, want CreateTime({})",
                    m.timestamp(),
                    TS0 + i as i64
                ));
            }
            match acked.get(&i) {
                Some(a) if a.partition == part && a.offset == off => {}
                other => fail(format!(
                    "message {i} read at p{part}@{off}, acknowledged at {other:?}"
                )),
            }
            let key = want.key.unwrap();
            let kp = *key_partition.entry(key.clone()).or_insert(part);
            if kp != part {
                fail(format!(
                    "key {:?} on partitions {kp} and {part}",
                    String::from_utf8_lossy(&key)
                ));
            }
            let seq = i / KEYS;
            if let Some(prev) = key_last_seq.insert(key.clone(), seq) {
                if seq <= prev {
                    fail(format!(
                        "key {:?}: sequence {seq} after {prev}",
                        String::from_utf8_lossy(&key)
                    ));
                }
            }
        },
    );
    assert!(bad.is_empty(), "{codec}: bad messages:\n{}", bad.join("\n"));
    assert!(
        rep.errors.is_empty(),
        "{codec}: consumer errors: {:?}",
        rep.errors
    );
    let missing: Vec<usize> = (0..n).filter(|i| !seen[*i]).take(10).collect();
    assert!(
        missing.is_empty(),
        "{codec}: messages never read, e.g. {missing:?}"
    );
    assert_eq!(rep.messages, n as u64, "{codec}: messages read");
    assert_eq!(key_partition.len(), KEYS.min(n));
}
