//! `sluice bench` against a real `sluice` broker process.
//!
//! The broker binary is looked up at `<workspace>/target/{ci,release,debug}/sluice` (build it
//! with `cargo build --profile ci --bin sluice`); without it these tests are skipped with a
//! message. They check correctness (counts, byte totals, percentiles present, JSON fields, clear
//! errors), never speed.

use clap::Parser;
use sluice_bench::{execute, run_bench, BenchArgs, Summary};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn args(line: &str) -> BenchArgs {
    let argv = std::iter::once("bench").chain(line.split_whitespace());
    Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("bad test arguments `{line}`: {e}"))
        .bench
}

fn sluice_binary() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target");
    ["ci", "release", "debug"]
        .iter()
        .map(|p| root.join(p).join("sluice"))
        .find(|p| p.is_file())
}

fn free_base(cores: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        46_000 + (std::process::id() % 500) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let base = NEXT.fetch_add(cores + 1, Ordering::SeqCst);
        if (0..cores).all(|k| TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
}

struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    fn start(cores: u16) -> Option<Broker> {
        let Some(bin) = sluice_binary() else {
            eprintln!("SKIPPED: no sluice binary under target/{{ci,release,debug}}; build it with `cargo build --profile ci --bin sluice`");
            return None;
        };
        let port = free_base(cores);
        let dir =
            std::env::temp_dir().join(format!("sluice-bench-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let child = Command::new(bin)
            .args(["start", "--cores", &cores.to_string()])
            .args(["--set", &format!("listeners=PLAINTEXT://127.0.0.1:{port}")])
            .args(["--set", &format!("log.dirs={}", dir.join("data").display())])
            .args(["--set", "metrics.listener="])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sluice");
        let b = Broker { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while (0..cores).any(|k| TcpStream::connect(("127.0.0.1", port + k)).is_err()) {
            assert!(
                Instant::now() < deadline,
                "broker did not open its ports within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(b)
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn role<'a>(s: &'a Summary, name: &str) -> &'a sluice_bench::stats::RoleSummary {
    s.roles
        .iter()
        .find(|r| r.role == name)
        .unwrap_or_else(|| panic!("no role {name} in {s:?}"))
}

fn check_role(s: &Summary, name: &str, messages: u64, bytes: Option<u64>) {
    let r = role(s, name);
    assert_eq!(r.messages, messages, "{name} messages: {s:?}");
    if let Some(b) = bytes {
        assert_eq!(r.bytes, b, "{name} bytes");
    }
    assert!(r.errors.is_empty(), "{name} errors: {:?}", r.errors);
    let l = &r.latency_ms;
    assert!(
        l.samples > 0
            && l.p50 > 0.0
            && l.p50 <= l.p90
            && l.p90 <= l.p99
            && l.p99 <= l.p99_9
            && l.p99_9 <= l.p99_99
            && l.p99_99 <= l.max,
        "{name} latency {l:?}"
    );
    assert!(r.msg_per_s > 0.0 && r.mb_per_s > 0.0);
}

#[test]
fn produce_then_consume_counts_and_json() {
    let Some(broker) = Broker::start(2) else {
        return;
    };
    let bs = broker.bootstrap();
    let s = execute(&args(&format!(
        "produce -b {bs} -t pc -n 5000 -s 100 -p 4 --cores 2 -q"
    )))
    .expect("produce");
    check_role(&s, "produce", 5000, Some(500_000));
    assert_eq!(
        role(&s, "produce").latency_ms.samples,
        5000,
        "one latency per message"
    );
    let c = execute(&args(&format!(
        "consume -b {bs} -t pc -n 5000 --from earliest --cores 2 -q"
    )))
    .expect("consume");
    check_role(&c, "consume", 5000, Some(500_000));

    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["workload"], "consume");
    let r = &json["roles"][0];
    for k in [
        "role",
        "messages",
        "bytes",
        "msg_per_s",
        "mb_per_s",
        "latency_ms",
        "errors",
    ] {
        assert!(!r[k].is_null(), "JSON field {k} missing: {json}");
    }
    for k in ["p50", "p90", "p99", "p99.9", "p99.99", "max", "samples"] {
        assert!(
            r["latency_ms"][k].is_number(),
            "JSON latency field {k} missing: {json}"
        );
    }
    // From an offset, in a one-partition topic.
    execute(&args(&format!(
        "produce -b {bs} -t po -n 3000 -s 20 -p 1 -q"
    )))
    .expect("produce");
    let c = execute(&args(&format!(
        "consume -b {bs} -t po --from 1000 -d 5 --idle-timeout 1 -q"
    )))
    .expect("consume from offset");
    check_role(&c, "consume", 2000, Some(2000 * 20));
}

#[test]
fn codecs_keys_sizes_and_idempotence_round_trip() {
    let Some(broker) = Broker::start(2) else {
        return;
    };
    let bs = broker.bootstrap();
    for (i, codec) in ["gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let t = format!("codec{i}");
        let s = execute(&args(&format!(
            "produce -b {bs} -t {t} -n 3000 -s 50..150 -k 10 -c {codec} --idempotence -p 3 --batch-bytes 4096 -q"
        )))
        .expect("produce");
        let bytes = role(&s, "produce").bytes;
        check_role(&s, "produce", 3000, None);
        let c = execute(&args(&format!("consume -b {bs} -t {t} -n 3000 -q"))).expect("consume");
        check_role(&c, "consume", 3000, Some(bytes));
    }
    let s = execute(&args(&format!(
        "produce -b {bs} -t acks0 -n 2000 -s 10 -k random -a 0 -q"
    )))
    .expect("acks=0");
    check_role(&s, "produce", 2000, Some(2000 * (10 + 16)));
}

#[test]
fn e2e_at_a_fixed_rate() {
    let Some(broker) = Broker::start(2) else {
        return;
    };
    let bs = broker.bootstrap();
    let s = execute(&args(&format!(
        "e2e -b {bs} -t e2e -r 2000 -d 1 -s 64 --cores 2 -q"
    )))
    .expect("e2e");
    check_role(&s, "produce", 2000, Some(2000 * 64));
    check_role(&s, "e2e", 2000, Some(2000 * 64));
    assert_eq!(role(&s, "e2e").latency_ms.samples, 2000);
}

#[test]
fn mixed_consumes_what_it_produced() {
    let Some(broker) = Broker::start(2) else {
        return;
    };
    let bs = broker.bootstrap();
    let s = execute(&args(&format!(
        "mixed -b {bs} -t mixed -d 1 -s 64 -p 4 --connections 2 -q"
    )))
    .expect("mixed");
    let produced = role(&s, "produce").messages;
    assert!(produced > 0);
    check_role(&s, "produce", produced, Some(produced * 64));
    check_role(&s, "consume", produced, Some(produced * 64));
}

#[test]
fn stopped_broker_and_unknown_topic_fail_fast() {
    let Some(broker) = Broker::start(1) else {
        return;
    };
    let bs = broker.bootstrap();
    let t = Instant::now();
    let e =
        execute(&args(&format!("consume -b {bs} -t no-such-topic -q"))).expect_err("unknown topic");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    drop(broker);

    // Nothing listens there any more.
    let t = Instant::now();
    for w in ["produce", "consume", "e2e", "mixed"] {
        let e = execute(&args(&format!("{w} -b {bs} -q"))).expect_err("stopped broker");
        let msg = e.to_string();
        assert!(
            msg.contains(&bs) && (msg.contains("cannot connect") || msg.contains("failed")),
            "{w}: {msg}"
        );
    }
    let code = run_bench(&args(&format!("produce -b {bs} -q")));
    assert_eq!(
        format!("{code:?}"),
        format!("{:?}", std::process::ExitCode::FAILURE)
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
}
