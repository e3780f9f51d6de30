//! An idempotent producer keeps sending through a broker restart: afterwards
//! every message is in the log exactly once, in order within its partition.
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::message::Message;

const N: usize = 100_000;
const PARTITIONS: i32 = 4;

fn message(seq: usize) -> Msg {
    let mut value = format!("{seq}:").into_bytes();
    value.extend_from_slice(&filler(seq as u64, 50));
    Msg {
        key: Some(format!("k{}", seq % 64).into_bytes()),
        value: Some(value),
        ..Default::default()
    }
}

fn seq_of(m: &rdkafka::message::BorrowedMessage<'_>) -> Option<usize> {
    let v = m.payload()?;
    let colon = v.iter().position(|b| *b == b':')?;
    std::str::from_utf8(&v[..colon]).ok()?.parse().ok()
}

#[test]
fn idempotent_producer_survives_broker_restart() {
    bounded(Duration::from_secs(900), || {
        let mut broker = Broker::start();
        let bs = broker.bootstrap();
        let topic = unique("idempotence");
        create_topic(&bs, &topic, PARTITIONS);

        let (p, log) = producer(
            &bs,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("batch.num.messages", "1000"),
                ("message.timeout.ms", "300000"),
                ("retry.backoff.ms", "100"),
            ],
        );
        let p = Arc::new(p);
        let restarted = Arc::new(AtomicBool::new(false));
        let sender = {
            let (p, topic, restarted) = (p.clone(), topic.clone(), restarted.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(600);
                for seq in 0..N {
                    if seq == N / 2 {
                        // Hold the second half until the restart has begun, so
                        // it is sent while the broker is down or coming back.
                        while !restarted.load(Ordering::SeqCst) {
                            assert!(Instant::now() < deadline, "restart never began");
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    send(&p, &topic, seq, &message(seq), deadline);
                }
            })
        };
        let ok = wait_until(Duration::from_secs(240), Duration::from_millis(2), || {
            log.acked() >= (N / 4) as u64
        });
        assert!(ok, "only {} acknowledged before the restart", log.acked());
        restarted.store(true, Ordering::SeqCst);
        let acked_before = log.acked();
        broker.stop();
        broker.start_again();
        eprintln!("restarted with {acked_before} of {N} acknowledged");
        assert!((acked_before as usize) < N);

        sender.join().expect("sender thread");
        wait_delivered(&p, &log, N as u64, Duration::from_secs(300));
        assert_eq!(
            log.failed(),
            0,
            "idempotent deliveries failed: {:?}",
            log.first_failures(10)
        );
        let acked = std::mem::take(&mut *log.acked.lock().unwrap());
        drop(p);

        let mut ranges = Vec::new();
        let mut total = 0;
        for part in 0..PARTITIONS {
            let (lo, hi) = watermarks(&bs, &topic, part);
            assert_eq!(lo, 0);
            total += hi;
            ranges.push((part, 0, hi));
        }
        let mut seen = vec![0u32; N];
        let mut last: HashMap<i32, usize> = HashMap::new();
        let mut bad = Vec::new();
        let rep = consume(
            &bs,
            &topic,
            &ranges,
            Duration::from_secs(300),
            Duration::from_millis(500),
            |m| {
                let mut fail = |s: String| {
                    if bad.len() < 20 {
                        bad.push(s)
                    }
                };
                let Some(seq) = seq_of(m).filter(|s| *s < N) else {
                    fail(format!(
                        "p{}@{}: not one of ours",
                        m.partition(),
                        m.offset()
                    ));
                    return;
                };
                seen[seq] += 1;
                if m.payload() != message(seq).value.as_deref()
                    || m.key() != message(seq).key.as_deref()
                {
                    fail(format!("message {seq}: content differs"));
                }
                if let Some(prev) = last.insert(m.partition(), seq) {
                    if seq <= prev {
                        fail(format!(
                            "partition {}: sequence {seq} after {prev} (offset {})",
                            m.partition(),
                            m.offset()
                        ));
                    }
                }
                match acked.get(&seq) {
                    Some(a) if a.partition == m.partition() && a.offset == m.offset() => {}
                    other => fail(format!(
                        "message {seq} at p{}@{}, acknowledged at {other:?}",
                        m.partition(),
                        m.offset()
                    )),
                }
            },
        );
        assert!(rep.errors.is_empty(), "consumer errors: {:?}", rep.errors);
        let dups: Vec<usize> = (0..N).filter(|s| seen[*s] > 1).take(10).collect();
        let gaps: Vec<usize> = (0..N).filter(|s| seen[*s] == 0).take(10).collect();
        assert!(dups.is_empty(), "duplicated messages, e.g. {dups:?}");
        assert!(gaps.is_empty(), "missing messages, e.g. {gaps:?}");
        assert!(bad.is_empty(), "bad messages:\n{}", bad.join("\n"));
        assert_eq!(total, N as i64, "messages in the log");
        broker.stop();
    })
}
