//! Black-box mutation test against a live 2-shard broker: real client request frames (built with
//! kafka-protocol, `tests/common/frames.rs`) are mutated — bit flips, boundary values written
//! over length and count fields, truncation, splicing, inserted and deleted bytes, length
//! prefixes that lie — and sent on many short connections to both shards, while a canary
//! librdkafka producer and consumer keep producing and reading back. The test asserts that the
//! broker never dies, never hangs (every canary message is acknowledged and read back within a
//! deadline, and both shards still answer ApiVersions at the end), and that its peak memory stays
//! within a bound.
//!
//! About 30 s by default; `SLUICE_MUTATION_SECS=600` for the long run. `SLUICE_MUTATION_SEED`
//! picks the mutation seed (printed at the start), to replay a run.

mod common;
#[path = "common/frames.rs"]
mod frames;

use bytes::Bytes;
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CANARY: &str = "canary";
const TARGET_TOPIC: &str = "mutated";
/// How long a canary message may take to be acknowledged and read back.
const CANARY_DEADLINE: Duration = Duration::from_secs(20);
/// Connections sending mutated frames at once.
const ATTACKERS: usize = 6;
/// Growth of the broker's resident memory over its size after warm-up that the test allows:
/// requests are bounded by what is sent (and each connection sends at most a few MiB), so a
/// larger growth means something allocates from what the input declares.
const RSS_GROWTH_BOUND_KIB: u64 = 512 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Values that break length and count fields.
const BOUNDARY_I32: [i32; 8] = [
    i32::MAX,
    i32::MIN,
    -1,
    -2,
    0,
    0x7fff,
    0x0100_0000,
    0x4000_0000,
];

/// One mutation of `base` (and sometimes of `other`, for splicing).
fn mutate(rng: &mut StdRng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    let rounds = rng.gen_range(1..=3);
    for _ in 0..rounds {
        if out.is_empty() {
            out.push(rng.gen());
        }
        let at = rng.gen_range(0..out.len());
        match rng.gen_range(0..8) {
            0 => {
                for _ in 0..rng.gen_range(1..=8) {
                    let i = rng.gen_range(0..out.len());
                    out[i] ^= 1 << rng.gen_range(0..8);
                }
            }
            1 => {
                let v = BOUNDARY_I32[rng.gen_range(0..BOUNDARY_I32.len())].to_be_bytes();
                let end = (at + 4).min(out.len());
                out[at..end].copy_from_slice(&v[..end - at]);
            }
            2 => {
                let v = (BOUNDARY_I32[rng.gen_range(0..BOUNDARY_I32.len())] as i16).to_be_bytes();
                let end = (at + 2).min(out.len());
                out[at..end].copy_from_slice(&v[..end - at]);
            }
            3 => {
                // A huge unsigned varint (compact arrays and strings, tagged fields).
                let varint: &[u8] = [
                    &[0xff, 0xff, 0xff, 0xff, 0x07][..],
                    &[0x80, 0x80, 0x80, 0x80, 0x08],
                ][rng.gen_range(0..2)];
                out.splice(at..(at + 1).min(out.len()), varint.iter().copied());
            }
            4 => out.truncate(at.max(8)),
            5 => {
                if !other.is_empty() {
                    let from = rng.gen_range(0..other.len());
                    out.truncate(at.max(8));
                    out.extend_from_slice(&other[from..]);
                }
            }
            6 => {
                let n = rng.gen_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                out.splice(at..at, bytes);
            }
            _ => {
                let end = (at + rng.gen_range(1..=16)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}

/// Sends a few mutated frames on one connection and reads whatever comes back, briefly.
fn attack_once(rng: &mut StdRng, addr: SocketAddr, bases: &[Bytes], sent: &AtomicU64) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    for _ in 0..rng.gen_range(1..=8) {
        let base = &bases[rng.gen_range(0..bases.len())];
        let other = &bases[rng.gen_range(0..bases.len())];
        let frame = mutate(rng, base, other);
        let mut wire = frames::with_length(&frame).to_vec();
        match rng.gen_range(0..10) {
            // A length prefix that lies: larger than what follows, or smaller.
            0 => {
                let declared = rng.gen_range(frame.len() as u32..=frame.len() as u32 + (1 << 20));
                wire[..4].copy_from_slice(&declared.to_be_bytes());
            }
            1 => {
                let declared = rng.gen_range(0..=frame.len() as u32);
                wire[..4].copy_from_slice(&declared.to_be_bytes());
            }
            _ => {}
        }
        if stream.write_all(&wire).is_err() {
            break;
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
    let mut buf = [0u8; 64 * 1024];
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Canary messages: when each was sent and when it was read back.
#[derive(Default)]
struct CanaryLog {
    sent_at: HashMap<u64, Instant>,
    read: HashMap<u64, Instant>,
}

#[test]
fn mutated_frames_never_take_the_broker_down() {
    let secs = env_u64("SLUICE_MUTATION_SECS", 30);
    let seed = env_u64("SLUICE_MUTATION_SEED", rand::random());
    eprintln!("mutation test: {secs}s, seed {seed}");
    let mut broker = Broker::builder().cores(2).start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, CANARY, 2);
    create_topic(&bootstrap, TARGET_TOPIC, 2);
    let pid = broker.pid().expect("broker pid");

    let mut bases: Vec<Bytes> = frames::default_frames()
        .into_iter()
        .map(|(_, _, f)| f)
        .collect();
    bases.extend(frames::client_frames(TARGET_TOPIC, "mutation-group"));
    let bases = Arc::new(bases);

    // The canary consumer reads both partitions from the start.
    let consumer: BaseConsumer = client_config(&bootstrap)
        .set("group.id", unique("canary"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("canary consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..2 {
        assignment
            .add_partition_offset(CANARY, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let (canary, delivery) = producer(&bootstrap, &[("linger.ms", "5"), ("acks", "all")]);
    let log = Arc::new(Mutex::new(CanaryLog::default()));

    // Warm up the canary before measuring memory.
    let rss_base = {
        let deadline = Instant::now() + Duration::from_secs(30);
        send_canary(&canary, &log, 0, deadline);
        wait_delivered(&canary, &delivery, 1, CANARY_DEADLINE);
        read_canary(&consumer, &log, Duration::from_secs(10));
        proc_status_kib(pid, "VmRSS").unwrap_or(0)
    };

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|i| {
            let (stop, sent, connections, bases) = (
                stop.clone(),
                sent.clone(),
                connections.clone(),
                bases.clone(),
            );
            let addrs = [broker.addr(0), broker.addr(1)];
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
                while !stop.load(Ordering::Relaxed) {
                    let addr = addrs[rng.gen_range(0..2)];
                    attack_once(&mut rng, addr, &bases, &sent);
                    connections.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut next_id = 1u64;
    let mut rss_peak = rss_base;
    let mut failure = None;
    while started.elapsed() < Duration::from_secs(secs) && failure.is_none() {
        if !broker.is_running() {
            failure = Some("the broker died".to_string());
            break;
        }
        for _ in 0..5 {
            send_canary(&canary, &log, next_id, Instant::now() + CANARY_DEADLINE);
            next_id += 1;
        }
        read_canary(&consumer, &log, Duration::from_millis(500));
        rss_peak = rss_peak.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
        failure = overdue(&log.lock().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().expect("attacker thread");
    }
    // Every canary message still arrives.
    let drain_until = Instant::now() + CANARY_DEADLINE;
    while failure.is_none() && Instant::now() < drain_until {
        read_canary(&consumer, &log, Duration::from_millis(500));
        let l = log.lock().unwrap();
        if l.read.len() as u64 == next_id {
            break;
        }
        drop(l);
        failure = overdue(&log.lock().unwrap());
    }
    let read = log.lock().unwrap().read.len() as u64;
    eprintln!(
        "mutation test: {} mutated frames on {} connections in {:?}; canary {read}/{next_id} read back; broker RSS {} MiB after warm-up, peak {} MiB",
        sent.load(Ordering::Relaxed),
        connections.load(Ordering::Relaxed),
        started.elapsed(),
        rss_base / 1024,
        rss_peak / 1024
    );
    broker.assert_alive();
    if let Some(f) = failure {
        panic!("{f}; broker stderr:\n{}", broker.stderr_since_start());
    }
    assert_eq!(
        read, next_id,
        "canary messages not read back within {CANARY_DEADLINE:?}"
    );
    assert_eq!(
        delivery.failed(),
        0,
        "canary deliveries failed: {:?}",
        delivery.first_failures(5)
    );
    assert!(
        rss_peak <= rss_base + RSS_GROWTH_BOUND_KIB,
        "broker RSS grew from {rss_base} KiB to {rss_peak} KiB"
    );
    // Both shards still answer a well-formed request.
    for shard in 0..2 {
        let client = RawClient::connect_negotiated(broker.addr(shard));
        assert!(!client.versions.is_empty());
    }
    broker.stop();
}

fn send_canary(p: &TrackedProducer, log: &Mutex<CanaryLog>, id: u64, deadline: Instant) {
    let m = Msg {
        key: Some(id.to_string().into_bytes()),
        value: Some(format!("canary-{id}").into_bytes()),
        headers: Vec::new(),
        timestamp: None,
        partition: Some((id % 2) as i32),
    };
    log.lock().unwrap().sent_at.insert(id, Instant::now());
    send(p, CANARY, id as usize, &m, deadline);
}

/// Polls the canary consumer for `wait`, recording every canary message read.
fn read_canary(consumer: &BaseConsumer, log: &Mutex<CanaryLog>, wait: Duration) {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let id = m
                    .payload()
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|p| p.strip_prefix("canary-"))
                    .and_then(|id| id.parse::<u64>().ok());
                if let Some(id) = id {
                    log.lock().unwrap().read.insert(id, Instant::now());
                }
            }
            Some(Err(e)) if !is_group_error(&e) => eprintln!("canary consumer: {e}"),
            _ => {}
        }
    }
}

/// A canary message not read back within the deadline, if any.
fn overdue(log: &CanaryLog) -> Option<String> {
    let now = Instant::now();
    log.sent_at
        .iter()
        .filter(|(id, at)| !log.read.contains_key(id) && now.duration_since(**at) > CANARY_DEADLINE)
        .map(|(id, _)| format!("canary message {id} not read back within {CANARY_DEADLINE:?}"))
        .next()
}
