//! Connections cost what their clients send, not what they announce, and cannot hold a shard:
//! * twenty connections announcing 100 MiB frames and sending 4 KiB each grow the broker by
//!   about the bytes sent plus a per-connection constant, while a normal client is served;
//! * `connections.max.idle.ms` closes a connection that sends nothing, but not one that sends
//!   a request slowly;
//! * connections trickling a frame byte by byte do not stop other clients;
//! * with a small `queued.max.request.bytes`, many large requests at once keep memory bounded
//!   and every one of them is answered.
mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

/// Produces and consumes `n` messages with librdkafka: the broker serves normal clients.
fn normal_client_round_trip(bootstrap: &str, n: usize) {
    let topic = unique("normal");
    create_topic(bootstrap, &topic, 1);
    let (p, log) = producer(bootstrap, &[("acks", "all")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in 0..n {
        let m = Msg {
            value: Some(format!("v{id}").into_bytes()),
            ..Default::default()
        };
        send(&p, &topic, id, &m, deadline);
    }
    wait_delivered(&p, &log, n as u64, Duration::from_secs(60));
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(3));
    let (lo, hi) = watermarks(bootstrap, &topic, 0);
    assert_eq!(hi - lo, n as i64);
    let report = consume(
        bootstrap,
        &topic,
        &[(0, lo, hi)],
        Duration::from_secs(60),
        Duration::ZERO,
        |_| {},
    );
    assert_eq!(report.messages, n as u64);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// The start of a frame announcing `size` body bytes: its prefix and a Produce request header.
fn announced_frame_start(size: i32) -> Vec<u8> {
    let mut f = size.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1, 0, 0]); // Produce v9, correlation 1, no client id
    f
}

/// What each connection may cost beyond the bytes it sent: its 4 KiB read buffer (or a body
/// buffer of at most twice the bytes received, documented in net/src/frame.rs) and its task and
/// socket state.
const PER_CONNECTION_KIB: u64 = 4 + 16;
/// Slack for the allocator and everything a broker touches while serving a normal client.
const PROCESS_SLACK_KIB: u64 = 8 * 1024;

#[test]
fn announced_100mib_frames_cost_only_the_bytes_sent() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::start();
        let bs = broker.bootstrap();
        let pid = broker.pid().expect("broker pid");
        // Warm up: the first client's work (topic, log, group) is not what we measure.
        normal_client_round_trip(&bs, 10);
        let rss_before = proc_status_kib(pid, "VmRSS").expect("broker status");
        let hwm_before = proc_status_kib(pid, "VmHWM").expect("broker status");

        const CONNECTIONS: usize = 20;
        const SENT: usize = 4096;
        let mut hogs = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut c = RawClient::connect(broker.addr(0));
            let mut bytes = announced_frame_start(100 * 1024 * 1024);
            bytes.resize(SENT, 0x5a);
            c.write_raw(&bytes).expect("send 4 KiB of a 100 MiB frame");
            hogs.push(c);
        }
        // Other clients are served while the 20 frames hang.
        RawClient::connect_negotiated(broker.addr(0));
        normal_client_round_trip(&bs, 100);
        broker.assert_alive();

        let sent_kib = (CONNECTIONS * SENT / 1024) as u64;
        let bound = 2 * sent_kib + CONNECTIONS as u64 * PER_CONNECTION_KIB + PROCESS_SLACK_KIB;
        let rss_grown = proc_status_kib(pid, "VmRSS")
            .expect("broker status")
            .saturating_sub(rss_before);
        let hwm_grown = proc_status_kib(pid, "VmHWM")
            .expect("broker status")
            .saturating_sub(hwm_before.max(rss_before));
        eprintln!("20 x 4 KiB of 100 MiB frames: RSS +{rss_grown} KiB, peak +{hwm_grown} KiB (bound {bound} KiB)");
        assert!(
            rss_grown <= bound && hwm_grown <= bound,
            "20 connections that sent {sent_kib} KiB grew the broker by {rss_grown} KiB \
             (peak +{hwm_grown} KiB), over the bound {bound} KiB"
        );
        // The hanging connections are still open: they are not idle, and nothing was refused.
        for c in &mut hogs {
            assert!(!c.closed_by_peer_within(Duration::from_millis(50)));
        }
        broker.stop();
    });
}

#[test]
fn idle_connections_are_closed_but_slow_senders_are_not() {
    bounded(Duration::from_secs(120), || {
        let mut broker = Broker::builder()
            .set("connections.max.idle.ms", 1000)
            .start();
        let idle = RawClient::connect_negotiated(broker.addr(0));
        // A client sending an ApiVersions request one byte every 150 ms takes longer than
        // connections.max.idle.ms in all, yet is never idle for that long: it is answered.
        let mut slow = RawClient::connect(broker.addr(0));
        let frame = api_versions_frame(3, 77);
        let started = Instant::now();
        for b in frame.iter() {
            slow.write_raw(&[*b]).expect("slow byte");
            std::thread::sleep(Duration::from_millis(150));
        }
        assert!(started.elapsed() > Duration::from_secs(2));
        let mut answer = slow.read_frame().expect("the slow request is answered");
        assert_eq!(bytes::Buf::get_i32(&mut answer), 77);

        let mut idle = idle;
        assert!(
            idle.closed_by_peer_within(Duration::from_secs(10)),
            "an idle connection outlived connections.max.idle.ms"
        );
        // The slow client, idle now, is closed in turn; new clients are still served.
        assert!(slow.closed_by_peer_within(Duration::from_secs(10)));
        RawClient::connect_negotiated(broker.addr(0));
        broker.assert_alive();
        broker.stop();
    });
}

#[test]
fn slowloris_connections_do_not_stop_other_clients() {
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let stop = Arc::new(AtomicBool::new(false));
        // 50 connections per shard, each trickling one byte at a time of a frame that announces
        // 1 MiB, round robin, for as long as the normal client works.
        let mut sockets: Vec<TcpStream> = Vec::new();
        for i in 0..100u16 {
            let s = TcpStream::connect(broker.addr(i % 2)).expect("connect slowloris");
            s.set_nodelay(true).unwrap();
            sockets.push(s);
        }
        let trickler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let frame = announced_frame_start(1024 * 1024);
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let byte = frame.get(sent).copied().unwrap_or(0x5a);
                    for s in &mut sockets {
                        s.write_all(&[byte]).expect("slowloris byte");
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                sent
            })
        };
        std::thread::sleep(Duration::from_millis(500));
        for shard in 0..2 {
            RawClient::connect_negotiated(broker.addr(shard));
        }
        normal_client_round_trip(&bs, 500);
        stop.store(true, Ordering::Relaxed);
        let sent = trickler.join().expect("trickler");
        assert!(
            sent > 10,
            "the slowloris connections sent only {sent} bytes each"
        );
        broker.assert_alive();
        broker.stop();
    });
}

/// A Produce request of one batch with a `value_len`-byte record for partition 0 of `topic`.
fn large_produce(topic: &str, seed: u64, value_len: usize) -> ProduceRequest {
    let value = filler(seed, value_len);
    let batch: Bytes = encode_batch(&[(None, Some(&value))], 1_000, Compression::None);
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])])
}

#[test]
fn queued_max_request_bytes_bounds_memory_and_answers_every_request() {
    bounded(Duration::from_secs(300), || {
        const MAX_REQUEST: usize = 8 * 1024 * 1024;
        const CLIENTS: usize = 16;
        const ROUNDS: usize = 3;
        const VALUE: usize = 7 * 1024 * 1024;
        let mut broker = Broker::builder()
            .set("socket.request.max.bytes", MAX_REQUEST)
            .set("queued.max.request.bytes", MAX_REQUEST)
            .set("message.max.bytes", MAX_REQUEST)
            .start();
        let bs = broker.bootstrap();
        let pid = broker.pid().expect("broker pid");
        let topic = unique("queued");
        create_topic(&bs, &topic, 1);
        // Warm up with one large request: its allocations are not what we measure.
        let mut warm = RawClient::connect_negotiated(broker.addr(0));
        let v = warm.version::<ProduceRequest>(9);
        let resp = warm
            .send(&large_produce(&topic, 0, VALUE), v)
            .expect("warm-up");
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
        let hwm_before = proc_status_kib(pid, "VmHWM").expect("broker status");

        // 16 clients send 7 MiB requests at once, three rounds each: 336 MiB in all, up to
        // 112 MiB at the same moment. The shard reads one at a time through its reserve.
        let start = Arc::new(Barrier::new(CLIENTS));
        let addr = broker.addr(0);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let start = start.clone();
                let topic = topic.clone();
                std::thread::spawn(move || {
                    let mut c = RawClient::connect_negotiated(addr);
                    c.stream
                        .set_read_timeout(Some(Duration::from_secs(120)))
                        .unwrap();
                    c.stream
                        .set_write_timeout(Some(Duration::from_secs(120)))
                        .unwrap();
                    let v = c.version::<ProduceRequest>(9);
                    let requests: Vec<_> = (0..ROUNDS)
                        .map(|r| large_produce(&topic, (i * ROUNDS + r + 1) as u64, VALUE))
                        .collect();
                    start.wait();
                    for req in &requests {
                        let resp = c.send(req, v).expect("every large request is answered");
                        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().expect("client thread");
        }
        let (lo, hi) = watermarks(&bs, &topic, 0);
        assert_eq!(hi - lo, (1 + CLIENTS * ROUNDS) as i64);

        // The budget holds one 8 MiB request; handling it may copy it once. Without the budget
        // the 16 requests in flight alone would take 112 MiB (measured: +103 MiB with -1).
        let grown = proc_status_kib(pid, "VmHWM")
            .expect("broker status")
            .saturating_sub(hwm_before);
        let bound = (4 * MAX_REQUEST / 1024) as u64
            + CLIENTS as u64 * PER_CONNECTION_KIB
            + PROCESS_SLACK_KIB;
        eprintln!("{CLIENTS} x {ROUNDS} requests of 7 MiB: peak +{grown} KiB (bound {bound} KiB)");
        assert!(
            grown <= bound,
            "peak memory grew by {grown} KiB with queued.max.request.bytes={MAX_REQUEST}, over {bound} KiB"
        );
        normal_client_round_trip(&bs, 10);
        broker.stop();
    });
}

/// Seconds of CPU the process used so far (user + system, from `/proc/<pid>/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// Out of descriptors, the accept loop backs off instead of spinning, logs once instead of
/// flooding, and accepts again once descriptors are free.
#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    bounded(Duration::from_secs(120), || {
        let mut broker = Broker::start();
        let pid = broker.pid().expect("broker pid");
        RawClient::connect_negotiated(broker.addr(0));
        let open = open_fds(pid);
        // Only a few descriptors are left; more connections than that wait in the backlog.
        let restore = set_soft_nofile(pid, open + 4);
        let held: Vec<TcpStream> = (0..20)
            .map(|_| TcpStream::connect(broker.addr(0)).expect("connect into the backlog"))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let cpu_before = cpu_seconds(pid);
        std::thread::sleep(Duration::from_secs(3));
        let cpu_used = cpu_seconds(pid) - cpu_before;
        assert!(
            cpu_used < 1.0,
            "the broker used {cpu_used:.2} s of CPU in 3 s while accept kept failing"
        );
        let log = broker.stderr_since_start();
        let failures = log.matches("accept failed").count();
        assert!(
            (1..=2).contains(&failures),
            "expected one 'accept failed' line, got {failures}:\n{log}"
        );
        broker.assert_alive();

        // Descriptors free again: the waiting connections and new ones are served.
        set_soft_nofile(pid, restore);
        drop(held);
        let ok = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            broker.stderr_since_start().contains("accept works again")
        });
        assert!(ok, "no recovery logged:\n{}", broker.stderr_since_start());
        RawClient::connect_negotiated(broker.addr(0));
        broker.stop();
    });
}
