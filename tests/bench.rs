//! `sluice bench` end to end: the real binary's `bench` subcommand against a real broker,
//! checking message counts, byte totals, percentiles and the `--json` fields, and that a stopped
//! broker or a missing topic ends with a clear error and a non-zero exit status, not a hang.
//! (The load generator's own tests, with more workloads, are in `bench/tests/live.rs`.)
mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

/// Whether this `sluice` has the `bench` subcommand (it is wired into the CLI separately).
fn bench_available() -> bool {
    let ok = Command::new(SLUICE)
        .args(["bench", "--help"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: `sluice bench` is not wired into src/main.rs yet");
    }
    ok
}

fn bench(args: &str) -> Output {
    Command::new(SLUICE)
        .arg("bench")
        .args(args.split_whitespace())
        .output()
        .expect("run sluice bench")
}

fn json_of(out: &Output) -> serde_json_lite::Value {
    assert!(
        out.status.success(),
        "sluice bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json_lite::parse(&String::from_utf8_lossy(&out.stdout))
}

/// Just enough JSON reading for the summary (the root package has no serde_json).
mod serde_json_lite {
    /// The summary's numbers, found by key path with a tolerant scan.
    pub struct Value(pub String);

    pub fn parse(s: &str) -> Value {
        assert!(s.trim_start().starts_with('{'), "not JSON: {s}");
        Value(s.to_string())
    }

    impl Value {
        /// The number after the `n`-th occurrence of `"key":`.
        pub fn number(&self, key: &str, n: usize) -> f64 {
            let pat = format!("\"{key}\":");
            let mut rest = &self.0[..];
            for _ in 0..n {
                let i = rest
                    .find(&pat)
                    .unwrap_or_else(|| panic!("no {key} in {}", self.0));
                rest = &rest[i + pat.len()..];
            }
            let i = rest
                .find(&pat)
                .unwrap_or_else(|| panic!("no {key} in {}", self.0));
            let v = rest[i + pat.len()..].trim_start();
            let end = v
                .find(|c: char| {
                    !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e' || c == '+')
                })
                .unwrap_or(v.len());
            v[..end]
                .parse()
                .unwrap_or_else(|_| panic!("{key} is not a number in {}", self.0))
        }

        pub fn has(&self, s: &str) -> bool {
            self.0.contains(s)
        }
    }
}

#[test]
fn bench_produce_consume_e2e_json() {
    if !bench_available() {
        return;
    }
    bounded(Duration::from_secs(300), || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("bench");
        let p = json_of(&bench(&format!(
            "produce -b {bs} -t {topic} -n 4000 -s 100 -p 4 --cores 2 -q --json"
        )));
        assert_eq!(p.number("messages", 0), 4000.0);
        assert_eq!(p.number("bytes", 0), 400_000.0);
        assert!(
            p.number("p99", 0) > 0.0
                && p.has("\"p99.9\"")
                && p.has("\"p99.99\"")
                && p.has("\"max\"")
        );
        assert!(p.has("\"errors\": []"), "{}", p.0);
        let c = json_of(&bench(&format!(
            "consume -b {bs} -t {topic} -n 4000 --from earliest -q --json"
        )));
        assert_eq!(c.number("messages", 0), 4000.0);
        assert_eq!(c.number("bytes", 0), 400_000.0);
        let e = json_of(&bench(&format!(
            "e2e -b {bs} -t {topic} -r 1000 -d 1 -s 64 -q --json"
        )));
        assert_eq!(e.number("messages", 0), 1000.0, "produced");
        assert_eq!(e.number("messages", 1), 1000.0, "received");
        assert!(e.number("p50", 1) > 0.0);
        let m = json_of(&bench(&format!(
            "mixed -b {bs} -t {topic} -d 1 -s 64 -q --json"
        )));
        assert_eq!(
            m.number("messages", 0),
            m.number("messages", 1),
            "mixed consumes what it produced"
        );
        // The table, without --json.
        let t = bench(&format!("produce -b {bs} -t {topic} -n 100 -q"));
        assert!(t.status.success());
        let text = String::from_utf8_lossy(&t.stdout);
        assert!(
            text.contains("p99.9") && text.contains("msg/s") && text.contains("errors: none"),
            "{text}"
        );
        broker.stop();
    })
}

#[test]
fn bench_fails_fast_and_clearly() {
    if !bench_available() {
        return;
    }
    bounded(Duration::from_secs(120), || {
        let mut broker = Broker::builder().cores(1).start();
        let bs = broker.bootstrap();
        let out = bench(&format!("consume -b {bs} -t {} -q", unique("missing")));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not exist"), "{err}");
        broker.stop();
        let t = Instant::now();
        let out = bench(&format!("produce -b {bs} -q"));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&bs), "{err}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "took {:?}",
            t.elapsed()
        );
    })
}
