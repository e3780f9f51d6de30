//! Durability: clean restart, kill -9 under an acks=all stream with fsync per
//! batch, and recovery from a torn or corrupted last batch.
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::message::{Message, Timestamp};

const TS0: i64 = 1_650_000_000_000;

fn message(id: usize) -> Msg {
    let mut value = format!("{id}:").into_bytes();
    value.extend_from_slice(&filler(id as u64, 60 + id % 90));
    Msg {
        key: Some(format!("k{}", id % 100).into_bytes()),
        value: Some(value),
        headers: vec![("id".to_string(), Some(id.to_string().into_bytes()))],
        timestamp: Some(TS0 + id as i64),
        partition: None,
    }
}

/// The id a served message claims to be (from its value prefix).
fn id_of(m: &rdkafka::message::BorrowedMessage<'_>) -> Option<usize> {
    let v = m.payload()?;
    let colon = v.iter().position(|b| *b == b':')?;
    std::str::from_utf8(&v[..colon]).ok()?.parse().ok()
}

/// Checks that a served message is exactly message `id` as produced.
fn check_content(m: &rdkafka::message::BorrowedMessage<'_>, id: usize) -> Result<(), String> {
    let want = message(id);
    if m.key() != want.key.as_deref() {
        return Err(format!("message {id}: wrong key"));
    }
    if m.payload() != want.value.as_deref() {
        return Err(format!("message {id}: wrong value"));
    }
    if headers_of(m) != want.headers {
        return Err(format!("message {id}: wrong headers {:?}", headers_of(m)));
    }
    if m.timestamp() != Timestamp::CreateTime(TS0 + id as i64) {
        return Err(format!("message {id}: timestamp {:?}", m.timestamp()));
    }
    Ok(())
}

/// Produces messages `ids` (acks=all) and returns where each was acknowledged.
fn produce_acked(
    bs: &str,
    topic: &str,
    ids: std::ops::Range<usize>,
    flush_every: usize,
) -> HashMap<usize, Acked> {
    let (p, log) = producer(bs, &[("acks", "all"), ("linger.ms", "5")]);
    let deadline = Instant::now() + Duration::from_secs(180);
    let n = ids.len();
    for (k, id) in ids.enumerate() {
        send(&p, topic, id, &message(id), deadline);
        if flush_every > 0 && (k + 1) % flush_every == 0 {
            // Wait for this group so that it becomes its own batch(es).
            wait_delivered(&p, &log, (k + 1) as u64, Duration::from_secs(60));
        }
    }
    wait_delivered(&p, &log, n as u64, Duration::from_secs(180));
    assert_eq!(
        log.failed(),
        0,
        "failed deliveries: {:?}",
        log.first_failures(10)
    );
    let acked = std::mem::take(&mut *log.acked.lock().unwrap());
    acked
}

/// Reads partitions `0..partitions` from offset 0 to their high watermarks
/// and checks every message against what was acknowledged. Returns the
/// number of messages read.
fn read_and_check_all(
    bs: &str,
    topic: &str,
    partitions: i32,
    acked: &HashMap<usize, Acked>,
) -> u64 {
    let mut ranges = Vec::new();
    let mut total = 0;
    for p in 0..partitions {
        let (lo, hi) = watermarks(bs, topic, p);
        assert_eq!(lo, 0);
        total += hi;
        ranges.push((p, 0, hi));
    }
    assert_eq!(
        total as usize,
        acked.len(),
        "messages in the log vs acknowledged"
    );
    let by_pos: HashMap<(i32, i64), usize> = acked
        .iter()
        .map(|(id, a)| ((a.partition, a.offset), *id))
        .collect();
    let mut bad = Vec::new();
    let rep = consume(
        bs,
        topic,
        &ranges,
        Duration::from_secs(180),
        Duration::from_millis(500),
        |m| {
            let pos = (m.partition(), m.offset());
            let r = match by_pos.get(&pos) {
                None => Err(format!("unexpected message at {pos:?}")),
                Some(&id) if id_of(m) != Some(id) => Err(format!(
                    "at {pos:?}: message {:?}, acknowledged there: {id}",
                    id_of(m)
                )),
                Some(&id) => check_content(m, id),
            };
            if let Err(e) = r {
                if bad.len() < 20 {
                    bad.push(e);
                }
            }
        },
    );
    assert!(bad.is_empty(), "bad messages:\n{}", bad.join("\n"));
    assert!(rep.errors.is_empty(), "consumer errors: {:?}", rep.errors);
    assert_eq!(rep.messages as usize, acked.len());
    rep.messages
}

/// Checks Kafka's on-disk layout: `<log.dirs>/<topic>-<p>/<20 digits>.log`,
/// the first segment at base offset 0, well-formed v2 batches with valid
/// CRC-32C, contiguous offsets up to `end`.
fn check_layout(broker: &Broker, topic: &str, partition: i32, end: i64) {
    let dir = broker.partition_dir(topic, partition);
    assert!(
        dir.is_dir(),
        "missing partition directory {}",
        dir.display()
    );
    let segs = segment_files(&dir);
    assert!(!segs.is_empty(), "no .log segment in {}", dir.display());
    assert_eq!(
        segment_base(&segs[0]),
        0,
        "first segment {}",
        segs[0].display()
    );
    let mut next = 0i64;
    for s in &segs {
        let base = segment_base(s);
        assert_eq!(
            base,
            next,
            "segment {} does not start where the previous ended",
            s.display()
        );
        let data = std::fs::read(s).unwrap();
        for b in scan_batches(&data) {
            assert_eq!(
                b.magic,
                2,
                "{}: batch at {} has magic {}",
                s.display(),
                b.pos,
                b.magic
            );
            assert!(
                batch_crc_ok(&data, &b),
                "{}: bad CRC in batch at {}",
                s.display(),
                b.pos
            );
            assert_eq!(
                b.base_offset,
                next,
                "{}: batch at byte {}",
                s.display(),
                b.pos
            );
            assert_eq!(b.record_count, b.last_offset_delta + 1);
            next = b.next_offset();
        }
    }
    assert_eq!(
        next, end,
        "{topic}-{partition}: offsets on disk end at {next}, high watermark {end}"
    );
}

#[test]
fn clean_restart_keeps_everything() {
    bounded(Duration::from_secs(600), || {
        let mut broker = Broker::start();
        let bs = broker.bootstrap();
        let topic = unique("dur-restart");
        create_topic(&bs, &topic, 3);
        let acked = produce_acked(&bs, &topic, 0..20_000, 0);
        read_and_check_all(&bs, &topic, 3, &acked);

        broker.stop();
        for p in 0..3 {
            let end = acked.values().filter(|a| a.partition == p).count() as i64;
            check_layout(&broker, &topic, p, end);
        }
        broker.start_again();
        read_and_check_all(&bs, &topic, 3, &acked);

        // And it keeps appending after the old data.
        let more = produce_acked(&bs, &topic, 20_000..21_000, 0);
        let mut all = acked.clone();
        for (id, a) in &more {
            let before = acked
                .values()
                .filter(|x| x.partition == a.partition)
                .count() as i64;
            assert!(
                a.offset >= before,
                "new message {id} got offset {} below the old end {before}",
                a.offset
            );
            all.insert(*id, *a);
        }
        read_and_check_all(&bs, &topic, 3, &all);
        broker.stop();
    })
}

#[test]
fn kill9_loses_no_acknowledged_message() {
    bounded(Duration::from_secs(600), || {
        let mut broker = Broker::builder()
            .set("log.flush.interval.messages", 1)
            .set("sluice.fsync.acks.all", "true")
            .start();
        let bs = broker.bootstrap();
        let topic = unique("dur-kill9");
        create_topic(&bs, &topic, 2);

        let (p, log) = producer(
            &bs,
            &[
                ("acks", "all"),
                ("linger.ms", "2"),
                ("batch.num.messages", "200"),
                ("retry.backoff.ms", "100"),
                ("message.timeout.ms", "180000"),
            ],
        );
        let p = Arc::new(p);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let sender = {
            let (p, stop, sent, topic) = (p.clone(), stop.clone(), sent.clone(), topic.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(300);
                for id in 0..300_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    send(&p, &topic, id, &message(id), deadline);
                    sent.store(id + 1, Ordering::SeqCst);
                }
            })
        };
        // Let a good number of acknowledgements through, then kill -9 mid-stream.
        let ok = wait_until(Duration::from_secs(240), Duration::from_millis(5), || {
            log.acked() >= 20_000
        });
        assert!(
            ok,
            "only {} messages acknowledged before the kill",
            log.acked()
        );
        broker.kill9();
        let acked_at_kill = log.acked();
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("sender thread");
        let sent = sent.load(Ordering::SeqCst);
        assert!(
            (acked_at_kill as usize) < sent,
            "the stream had finished before the kill; nothing was in flight"
        );
        eprintln!("killed with {acked_at_kill} of {sent} sent messages acknowledged");

        broker.start_again();
        // The producer retries what was in flight; all that is left gets a
        // final delivery report (acknowledged or failed).
        wait_delivered(&p, &log, sent as u64, Duration::from_secs(240));
        let acked = std::mem::take(&mut *log.acked.lock().unwrap());
        eprintln!(
            "{} acknowledged in all, {} failed",
            acked.len(),
            log.failed()
        );
        drop(p);

        let mut ranges = Vec::new();
        for part in 0..2 {
            let (lo, hi) = watermarks(&bs, &topic, part);
            assert_eq!(lo, 0);
            ranges.push((part, 0, hi));
        }
        let mut served: HashMap<(i32, i64), usize> = HashMap::new();
        let mut bad = Vec::new();
        let rep = consume(
            &bs,
            &topic,
            &ranges,
            Duration::from_secs(240),
            Duration::from_millis(500),
            |m| {
                // Everything served must be one of our messages, intact. (Without
                // idempotence a retried batch may be stored twice: allowed.)
                let r = match id_of(m) {
                    Some(id) if id < sent => check_content(m, id).map(|_| id),
                    other => Err(format!(
                        "p{}@{}: not one of ours ({other:?})",
                        m.partition(),
                        m.offset()
                    )),
                };
                match r {
                    Ok(id) => {
                        served.insert((m.partition(), m.offset()), id);
                    }
                    Err(e) if bad.len() < 20 => bad.push(e),
                    Err(_) => {}
                }
            },
        );
        assert!(rep.errors.is_empty(), "consumer errors: {:?}", rep.errors);
        assert!(
            bad.is_empty(),
            "malformed or foreign messages served:\n{}",
            bad.join("\n")
        );
        let mut lost = Vec::new();
        for (id, a) in &acked {
            if served.get(&(a.partition, a.offset)) != Some(id) {
                lost.push((*id, *a, served.get(&(a.partition, a.offset)).copied()));
            }
        }
        lost.sort_by_key(|x| x.0);
        assert!(
            lost.is_empty(),
            "{} acknowledged messages missing or replaced, e.g. (id, acked at, found there) {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        broker.stop();
    })
}

/// How the last batch of the last segment gets damaged while the broker is down.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Cut a few bytes off the end (a torn write).
    Truncate,
    /// Flip one byte inside the last batch's records (CRC mismatch).
    FlipByte,
}

fn recover_from(damage: Damage) {
    bounded(Duration::from_secs(600), move || {
        let mut broker = Broker::start();
        let bs = broker.bootstrap();
        let topic = unique("dur-recover");
        create_topic(&bs, &topic, 1);
        // 30 groups of 50, each flushed on its own: many batches.
        let acked = produce_acked(&bs, &topic, 0..1_500, 50);
        broker.stop();
        check_layout(&broker, &topic, 0, 1_500);

        let segs = segment_files(&broker.partition_dir(&topic, 0));
        let last_seg = segs.last().unwrap().clone();
        let data = std::fs::read(&last_seg).unwrap();
        let batches = scan_batches(&data);
        assert!(
            batches.len() >= 2,
            "want several batches in {}, found {}",
            last_seg.display(),
            batches.len()
        );
        let last = *batches.last().unwrap();
        let keep_end = last.base_offset; // everything before the damaged batch
        assert!(last.size > 61 + 10);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&last_seg)
            .unwrap();
        match damage {
            Damage::Truncate => f.set_len(last.end() - 3).unwrap(),
            Damage::FlipByte => {
                use std::os::unix::fs::FileExt;
                let pos = last.end() - 5;
                let mut b = [0u8; 1];
                f.read_exact_at(&mut b, pos).unwrap();
                b[0] ^= 0x5a;
                f.write_all_at(&b, pos).unwrap();
                let data = std::fs::read(&last_seg).unwrap();
                assert!(
                    !batch_crc_ok(&data, &last),
                    "the flip did not break the CRC"
                );
            }
        }
        f.sync_all().unwrap();
        drop(f);

        broker.start_again();
        let log = broker.stderr_since_start();
        assert!(
            log.contains("truncated"),
            "recovery after {damage:?} did not log a line with `truncated`; stderr:\n{log}"
        );
        assert_eq!(
            watermarks(&bs, &topic, 0),
            (0, keep_end),
            "after {damage:?} the log must end at the last complete batch"
        );
        // Everything before the damaged batch, intact, and nothing after it.
        let kept: HashMap<usize, Acked> = acked
            .iter()
            .filter(|(_, a)| a.offset < keep_end)
            .map(|(i, a)| (*i, *a))
            .collect();
        assert_eq!(kept.len() as i64, keep_end);
        let mut past_end = Vec::new();
        let mut bad = Vec::new();
        let rep = consume(
            &bs,
            &topic,
            &[(0, 0, keep_end)],
            Duration::from_secs(120),
            Duration::from_secs(1),
            |m| {
                if m.offset() >= keep_end {
                    past_end.push(m.offset());
                    return;
                }
                let want = kept
                    .iter()
                    .find(|(_, a)| a.offset == m.offset())
                    .map(|(i, _)| *i);
                let r = match want {
                    Some(id) if id_of(m) == Some(id) => check_content(m, id),
                    _ => Err(format!(
                        "offset {}: got {:?}, want {want:?}",
                        m.offset(),
                        id_of(m)
                    )),
                };
                if let Err(e) = r {
                    if bad.len() < 20 {
                        bad.push(e);
                    }
                }
            },
        );
        assert!(rep.errors.is_empty(), "consumer errors: {:?}", rep.errors);
        assert!(bad.is_empty(), "bad messages:\n{}", bad.join("\n"));
        assert!(
            past_end.is_empty(),
            "served offsets past the recovered end: {past_end:?}"
        );
        assert_eq!(rep.messages as i64, keep_end);

        // The next append continues exactly at the recovered end.
        let more = produce_acked(&bs, &topic, 5_000..5_001, 0);
        assert_eq!(
            more[&5_000].offset, keep_end,
            "offset of the first append after recovery"
        );
        broker.stop();
        check_layout(&broker, &topic, 0, keep_end + 1);
    })
}

#[test]
fn torn_last_batch_is_truncated_on_start() {
    recover_from(Damage::Truncate)
}

#[test]
fn corrupt_last_batch_is_truncated_on_start() {
    recover_from(Damage::FlipByte)
}
