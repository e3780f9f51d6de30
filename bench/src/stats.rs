//! Measurements: counters and an hdrhistogram per core and role, merged for the live line and
//! the summary.
//!
//! Each core records into its own [`RoleStats`] (the counters are atomics, the histogram sits
//! behind a mutex only the reporter ever contends for, once a second). Latencies are recorded in
//! microseconds. Throughput in MB/s uses MB = 2^20 bytes, as Kafka's perf tools do.

use hdrhistogram::Histogram;
use serde::Serialize;
use sluice_net::client::error_name;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Highest latency the histograms track (longer ones are clamped), in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What went wrong, for the error table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKey {
    /// A Kafka error code in a response.
    Kafka(i16),
    /// A client-side failure (timeout, lost connection…), by description.
    Client(String),
}

struct Inner {
    hist: Histogram<u64>,
    errors: BTreeMap<ErrorKey, u64>,
}

/// One role's measurements on one core.
pub struct RoleStats {
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    inner: Mutex<Inner>,
}

fn new_hist() -> Histogram<u64> {
    // 3 significant figures from 1 µs to an hour: a fixed, small footprint.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl Default for RoleStats {
    fn default() -> Self {
        RoleStats {
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                hist: new_hist(),
                errors: BTreeMap::new(),
            }),
        }
    }
}

impl RoleStats {
    /// Fresh, shareable stats.
    pub fn new() -> Arc<RoleStats> {
        Arc::new(RoleStats::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `messages` messages of `bytes` bytes as done.
    pub fn add(&self, messages: u64, bytes: u64) {
        self.messages.fetch_add(messages, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records latencies in microseconds.
    pub fn latencies(&self, micros: impl IntoIterator<Item = u64>) {
        let mut inner = self.lock();
        for us in micros {
            inner.hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    /// Counts `n` errors of kind `key`.
    pub fn error(&self, key: ErrorKey, n: u64) {
        self.errors.fetch_add(n, Ordering::Relaxed);
        *self.lock().errors.entry(key).or_insert(0) += n;
    }

    /// Messages counted so far.
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
}

/// A role's stats across all cores.
#[derive(Clone)]
pub struct Role {
    /// Its name in the output (`produce`, `consume`, `e2e`).
    pub name: &'static str,
    /// What its latency measures, for the summary.
    pub latency_kind: &'static str,
    /// One per core.
    pub cores: Vec<Arc<RoleStats>>,
}

impl Role {
    /// A role with fresh stats for `cores` cores.
    pub fn new(name: &'static str, latency_kind: &'static str, cores: usize) -> Role {
        Role {
            name,
            latency_kind,
            cores: (0..cores).map(|_| RoleStats::new()).collect(),
        }
    }

    fn totals(&self) -> (u64, u64, u64) {
        self.cores.iter().fold((0, 0, 0), |(m, b, e), c| {
            (
                m + c.messages.load(Ordering::Relaxed),
                b + c.bytes.load(Ordering::Relaxed),
                e + c.errors.load(Ordering::Relaxed),
            )
        })
    }

    fn merged(&self) -> (Histogram<u64>, BTreeMap<ErrorKey, u64>) {
        let mut hist = new_hist();
        let mut errors = BTreeMap::new();
        for c in &self.cores {
            let inner = c.lock();
            let _ = hist.add(&inner.hist);
            for (k, n) in &inner.errors {
                *errors.entry(k.clone()).or_insert(0) += n;
            }
        }
        (hist, errors)
    }

    /// The role's summary over `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> RoleSummary {
        let (messages, bytes, _) = self.totals();
        let (hist, errors) = self.merged();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ms = |q: f64| {
            if hist.is_empty() {
                0.0
            } else {
                hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        RoleSummary {
            role: self.name.to_string(),
            latency_kind: self.latency_kind.to_string(),
            messages,
            bytes,
            msg_per_s: messages as f64 / secs,
            mb_per_s: bytes as f64 / secs / (1024.0 * 1024.0),
            latency_ms: Latency {
                samples: hist.len(),
                p50: ms(0.5),
                p90: ms(0.9),
                p99: ms(0.99),
                p99_9: ms(0.999),
                p99_99: ms(0.9999),
                max: if hist.is_empty() {
                    0.0
                } else {
                    hist.max() as f64 / 1000.0
                },
            },
            errors: errors
                .into_iter()
                .map(|(k, count)| match k {
                    ErrorKey::Kafka(code) => ErrorCount {
                        code: Some(code),
                        name: error_name(code).to_string(),
                        count,
                    },
                    ErrorKey::Client(name) => ErrorCount {
                        code: None,
                        name,
                        count,
                    },
                })
                .collect(),
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Number of latencies recorded.
    pub samples: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: f64,
    /// Largest.
    pub max: f64,
}

/// One kind of error and how often it happened.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorCount {
    /// The Kafka error code (none for client-side errors).
    pub code: Option<i16>,
    /// Kafka's name for it, or a description.
    pub name: String,
    /// Occurrences (messages for produce errors, partitions × fetches for fetch errors).
    pub count: u64,
}

/// A role's results.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RoleSummary {
    /// `produce`, `consume` or `e2e`.
    pub role: String,
    /// What the latency measures.
    pub latency_kind: String,
    /// Messages done (acknowledged or consumed).
    pub messages: u64,
    /// Key plus value bytes of those messages.
    pub bytes: u64,
    /// Messages per second.
    pub msg_per_s: f64,
    /// MB (2^20 bytes) per second.
    pub mb_per_s: f64,
    /// Latency percentiles.
    pub latency_ms: Latency,
    /// Errors by kind.
    pub errors: Vec<ErrorCount>,
}

/// The results of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// The workload (`produce`, `consume`, `e2e`, `mixed`).
    pub workload: String,
    /// Wall-clock seconds the measurement covered.
    pub duration_s: f64,
    /// One entry per role.
    pub roles: Vec<RoleSummary>,
}

impl Summary {
    /// The human-readable summary table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "sluice bench {} — {:.2} s\n",
            self.workload, self.duration_s
        );
        out.push_str(&format!(
            "{:<8} {:>12} {:>14} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "role",
            "messages",
            "bytes",
            "msg/s",
            "MB/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "p99.99 ms",
            "max ms"
        ));
        for r in &self.roles {
            let l = &r.latency_ms;
            out.push_str(&format!(
                "{:<8} {:>12} {:>14} {:>12.0} {:>9.2} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}\n",
                r.role, r.messages, r.bytes, r.msg_per_s, r.mb_per_s, l.p50, l.p90, l.p99, l.p99_9, l.p99_99, l.max
            ));
        }
        for r in &self.roles {
            out.push_str(&format!("{} latency: {}\n", r.role, r.latency_kind));
        }
        for r in &self.roles {
            for e in &r.errors {
                match e.code {
                    Some(c) => out.push_str(&format!(
                        "{} errors: {} ({c}): {}\n",
                        r.role, e.name, e.count
                    )),
                    None => out.push_str(&format!("{} errors: {}: {}\n", r.role, e.name, e.count)),
                }
            }
            if r.errors.is_empty() {
                out.push_str(&format!("{} errors: none\n", r.role));
            }
        }
        out
    }
}

/// Produces the once-a-second live line from the running totals.
pub struct LiveLine {
    roles: Vec<Role>,
    last: Vec<(u64, u64)>,
}

impl LiveLine {
    /// A live line over `roles`.
    pub fn new(roles: Vec<Role>) -> LiveLine {
        let last = vec![(0, 0); roles.len()];
        LiveLine { roles, last }
    }

    /// The line for the interval of `interval` since the previous call, at `elapsed` seconds.
    pub fn line(&mut self, elapsed: Duration, interval: Duration) -> String {
        let secs = interval.as_secs_f64().max(1e-9);
        let mut parts = Vec::new();
        for (i, role) in self.roles.iter().enumerate() {
            let (m, b, e) = role.totals();
            let (lm, lb) = self.last[i];
            self.last[i] = (m, b);
            let (hist, _) = role.merged();
            let p99 = if hist.is_empty() {
                0.0
            } else {
                hist.value_at_quantile(0.99) as f64 / 1000.0
            };
            parts.push(format!(
                "{} {:>9.0} msg/s {:>8.2} MB/s p99 {:>8.3} ms errors {}",
                role.name,
                (m - lm) as f64 / secs,
                (b - lb) as f64 / secs / (1024.0 * 1024.0),
                p99,
                e
            ));
        }
        format!("[{:>5.0}s] {}", elapsed.as_secs_f64(), parts.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_cores_and_names_errors() {
        let role = Role::new("produce", "ack", 2);
        role.cores[0].add(10, 1000);
        role.cores[1].add(5, 500);
        role.cores[0].latencies([1000, 2000, 3000]);
        role.cores[1].latencies([4000]);
        role.cores[1].error(ErrorKey::Kafka(6), 3);
        role.cores[0].error(ErrorKey::Kafka(6), 1);
        let s = role.summary(Duration::from_secs(1));
        assert_eq!(s.messages, 15);
        assert_eq!(s.bytes, 1500);
        assert_eq!(s.latency_ms.samples, 4);
        assert!((s.latency_ms.max - 4.0).abs() < 0.01);
        assert_eq!(
            s.errors,
            vec![ErrorCount {
                code: Some(6),
                name: "NOT_LEADER_OR_FOLLOWER".into(),
                count: 4
            }]
        );
        let summary = Summary {
            workload: "produce".into(),
            duration_s: 1.0,
            roles: vec![s],
        };
        assert!(summary.table().contains("NOT_LEADER_OR_FOLLOWER (6): 4"));
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json["roles"][0]["latency_ms"]["p99.9"]
                .as_f64()
                .map(|v| v > 0.0),
            Some(true)
        );
    }
}
