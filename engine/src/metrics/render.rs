//! Prometheus text exposition (format 0.0.4) of the shards' snapshots.
//!
//! Names follow Prometheus conventions: `sluice_…_total` for counters, `_seconds` and `_bytes`
//! units, one `shard` label on everything a shard owns.

use super::{ShardSnapshot, LATENCY_BUCKETS};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;
use std::fmt::Write;

/// A gauge family: name, help text, and how to read the value.
type Gauge<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// Renders every shard's snapshot as one Prometheus text document.
pub fn render(snapshots: &[ShardSnapshot]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut family = |name: &str, kind: &str, help: &str, body: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        body(&mut out);
    };
    family(
        "sluice_requests_total",
        "counter",
        "Kafka requests handled, by shard and API.",
        &mut |o| {
            for s in snapshots {
                for (key, stats) in &s.requests {
                    sample(
                        o,
                        "sluice_requests_total",
                        &[("shard", &s.shard.to_string()), ("api", &api_name(*key))],
                        stats.count as f64,
                    );
                }
            }
        },
    );
    family(
        "sluice_request_errors_total",
        "counter",
        "Kafka error codes returned, by shard, API and error.",
        &mut |o| {
            for s in snapshots {
                for ((key, code), n) in &s.errors {
                    let labels = [
                        ("shard", s.shard.to_string()),
                        ("api", api_name(*key)),
                        ("error", error_name(*code)),
                    ];
                    sample(
                        o,
                        "sluice_request_errors_total",
                        &as_refs(&labels),
                        *n as f64,
                    );
                }
            }
        },
    );
    family(
        "sluice_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its response, by shard and API.",
        &mut |o| {
            for s in snapshots {
                for (key, stats) in &s.requests {
                    let shard = s.shard.to_string();
                    let api = api_name(*key);
                    let mut cumulative = 0;
                    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                        cumulative += stats.buckets[i];
                        let le = bound.to_string();
                        sample(
                            o,
                            "sluice_request_duration_seconds_bucket",
                            &[("shard", &shard), ("api", &api), ("le", &le)],
                            cumulative as f64,
                        );
                    }
                    cumulative += stats.buckets[LATENCY_BUCKETS.len()];
                    debug_assert_eq!(
                        cumulative, stats.count,
                        "every observation is in one bucket"
                    );
                    sample(
                        o,
                        "sluice_request_duration_seconds_bucket",
                        &[("shard", &shard), ("api", &api), ("le", "+Inf")],
                        cumulative as f64,
                    );
                    sample(
                        o,
                        "sluice_request_duration_seconds_sum",
                        &[("shard", &shard), ("api", &api)],
                        stats.sum_seconds,
                    );
                    sample(
                        o,
                        "sluice_request_duration_seconds_count",
                        &[("shard", &shard), ("api", &api)],
                        stats.count as f64,
                    );
                }
            }
        },
    );
    family(
        "sluice_topic_bytes_in_total",
        "counter",
        "Record bytes appended by Produce, by shard and topic.",
        &mut |o| {
            for s in snapshots {
                for (topic, b) in &s.topics {
                    sample(
                        o,
                        "sluice_topic_bytes_in_total",
                        &[("shard", &s.shard.to_string()), ("topic", topic)],
                        b.bytes_in as f64,
                    );
                }
            }
        },
    );
    family(
        "sluice_topic_bytes_out_total",
        "counter",
        "Record bytes returned by Fetch, by shard and topic.",
        &mut |o| {
            for s in snapshots {
                for (topic, b) in &s.topics {
                    sample(
                        o,
                        "sluice_topic_bytes_out_total",
                        &[("shard", &s.shard.to_string()), ("topic", topic)],
                        b.bytes_out as f64,
                    );
                }
            }
        },
    );
    let per_shard: [Gauge<ShardSnapshot, u64>; 6] = [
        (
            "sluice_partitions",
            "Partition replicas on the shard, leaders and followers.",
            |s| s.partitions.len() as u64,
        ),
        (
            "sluice_under_replicated_partitions",
            "Partitions led by the shard whose in-sync replicas are fewer than their replicas.",
            |s| s.replication.under_replicated_partitions,
        ),
        (
            "sluice_under_min_isr_partitions",
            "Partitions led by the shard whose in-sync replicas are fewer than min.insync.replicas.",
            |s| s.replication.under_min_isr_partitions,
        ),
        (
            "sluice_connections_active",
            "Open client connections.",
            |s| s.connections,
        ),
        (
            "sluice_fetch_purgatory_size",
            "Fetch requests parked waiting for data (long poll).",
            |s| s.fetch_waiting,
        ),
        (
            "sluice_produce_purgatory_size",
            "Produce requests waiting for their fsync.",
            |s| s.produce_waiting,
        ),
    ];
    for (name, help, value) in per_shard {
        family(name, "gauge", help, &mut |o| {
            for s in snapshots {
                sample(o, name, &[("shard", &s.shard.to_string())], value(s) as f64);
            }
        });
    }
    let per_shard_counters: [Gauge<ShardSnapshot, u64>; 2] = [
        (
            "sluice_isr_shrinks_total",
            "Shrinks of the committed in-sync replica set of partitions led by the shard.",
            |s| s.isr_shrinks,
        ),
        (
            "sluice_isr_expands_total",
            "Expansions of the committed in-sync replica set of partitions led by the shard.",
            |s| s.isr_expands,
        ),
    ];
    for (name, help, value) in per_shard_counters {
        family(name, "counter", help, &mut |o| {
            for s in snapshots {
                sample(o, name, &[("shard", &s.shard.to_string())], value(s) as f64);
            }
        });
    }
    family(
        "sluice_follower_lag",
        "gauge",
        "Records a followed partition's log end is behind its leader's high watermark.",
        &mut |o| {
            for s in snapshots {
                for f in &s.replication.follower_lags {
                    let labels = [
                        ("shard", s.shard.to_string()),
                        ("topic", f.topic.clone()),
                        ("partition", f.partition.to_string()),
                        ("leader", f.leader.to_string()),
                    ];
                    sample(o, "sluice_follower_lag", &as_refs(&labels), f.lag as f64);
                }
            }
        },
    );
    family(
        "sluice_fetch_reads_total",
        "counter",
        "Fetch file regions sent from the page cache (sendfile) or read from disk first.",
        &mut |o| {
            for s in snapshots {
                let shard = s.shard.to_string();
                sample(
                    o,
                    "sluice_fetch_reads_total",
                    &[("shard", &shard), ("source", "page_cache")],
                    s.reads_page_cache as f64,
                );
                sample(
                    o,
                    "sluice_fetch_reads_total",
                    &[("shard", &shard), ("source", "disk")],
                    s.reads_disk as f64,
                );
            }
        },
    );
    family(
        "sluice_log_cleaner_runs_total",
        "counter",
        "Log cleanings finished, by shard.",
        &mut |o| {
            for s in snapshots {
                let shard = s.shard.to_string();
                sample(
                    o,
                    "sluice_log_cleaner_runs_total",
                    &[("shard", &shard)],
                    s.cleaner_runs as f64,
                );
            }
        },
    );
    family(
        "sluice_log_cleaner_bytes_total",
        "counter",
        "Bytes the log cleaner read from and wrote to segment files, by shard.",
        &mut |o| {
            for s in snapshots {
                let shard = s.shard.to_string();
                for (direction, bytes) in [
                    ("read", s.cleaner_bytes_read),
                    ("written", s.cleaner_bytes_written),
                ] {
                    sample(
                        o,
                        "sluice_log_cleaner_bytes_total",
                        &[("shard", &shard), ("direction", direction)],
                        bytes as f64,
                    );
                }
            }
        },
    );
    let per_partition: [Gauge<super::PartitionStats, f64>; 4] = [
        ("sluice_partition_log_end_offset", "Log end offset.", |p| {
            p.log_end_offset as f64
        }),
        (
            "sluice_partition_log_start_offset",
            "Log start offset.",
            |p| p.log_start_offset as f64,
        ),
        ("sluice_partition_high_watermark", "High watermark.", |p| {
            p.high_watermark as f64
        }),
        (
            "sluice_partition_size_bytes",
            "Bytes of the partition's segments on disk.",
            |p| p.size_bytes as f64,
        ),
    ];
    for (name, help, value) in per_partition {
        family(name, "gauge", help, &mut |o| {
            for s in snapshots {
                for p in &s.partitions {
                    let labels = [
                        ("shard", s.shard.to_string()),
                        ("topic", p.topic.clone()),
                        ("partition", p.partition.to_string()),
                    ];
                    sample(o, name, &as_refs(&labels), value(p));
                }
            }
        });
    }
    out
}

/// The controller quorum as this node sees it, for [`render_quorum`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMetrics {
    /// `node.id` of the quorum leader, -1 when there is none.
    pub leader: i32,
    /// The leader epoch (Raft term).
    pub epoch: u64,
    /// Committed entries this node has not applied yet.
    pub commit_lag: u64,
    /// Whether this node is the active controller.
    pub active: bool,
    /// Registered brokers that are fenced.
    pub fenced_brokers: usize,
}

/// Renders the quorum gauges (appended to the shards' families by the metrics endpoint).
pub fn render_quorum(q: &QuorumMetrics) -> String {
    let mut out = String::with_capacity(1024);
    let gauges: [(&str, &str, f64); 5] = [
        (
            "sluice_quorum_leader",
            "node.id of the controller quorum's leader (-1: none known).",
            f64::from(q.leader),
        ),
        (
            "sluice_quorum_epoch",
            "The controller quorum's leader epoch.",
            q.epoch as f64,
        ),
        (
            "sluice_quorum_commit_lag",
            "Committed metadata log entries this node has not applied yet.",
            q.commit_lag as f64,
        ),
        (
            "sluice_quorum_active_controller",
            "1 on the node that is the active controller.",
            if q.active { 1.0 } else { 0.0 },
        ),
        (
            "sluice_fenced_brokers",
            "Registered brokers that are fenced (they serve nothing).",
            q.fenced_brokers as f64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        sample(&mut out, name, &[], value);
    }
    out
}

/// Renders the gauges the active controller reports for the whole cluster: the partitions
/// without a leader (`offline`; as Kafka's `OfflinePartitionsCount`, the other controllers
/// report 0, so that a sum over the cluster counts each partition once).
pub fn render_controller(offline: usize) -> String {
    let mut out = String::with_capacity(256);
    let name = "sluice_offline_partitions";
    let _ = writeln!(
        out,
        "# HELP {name} Partitions without a leader (reported by the active controller, 0 elsewhere)."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    sample(&mut out, name, &[], offline as f64);
    out
}

fn as_refs<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `Produce`, `Fetch`, … (the API's name in Kafka's docs).
fn api_name(key: i16) -> String {
    ApiKey::try_from(key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| format!("api_{key}"))
}

/// `NOT_LEADER_OR_FOLLOWER` style names of Kafka error codes.
fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) => format!("UNKNOWN_{code}"),
        None if code != 0 => format!("UNKNOWN_{code}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut snake = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(ch.to_ascii_uppercase());
            }
            snake
        }
        None => "NONE".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ShardMetrics;
    use std::time::Duration;

    #[test]
    fn replication_gauges_and_counters_are_rendered_per_shard() {
        use crate::metrics::{FollowerLag, ReplicationStats};
        let m = ShardMetrics::default();
        m.record_isr_change(&[1000, 2000], &[1000]);
        let replication = ReplicationStats {
            under_replicated_partitions: 2,
            under_min_isr_partitions: 1,
            follower_lags: vec![FollowerLag {
                topic: "t".to_string(),
                partition: 4,
                leader: 2001,
                lag: 17,
            }],
        };
        let text = render(&[m.snapshot(1, 0, vec![], replication)]);
        for line in [
            "sluice_under_replicated_partitions{shard=\"1\"} 2",
            "sluice_under_min_isr_partitions{shard=\"1\"} 1",
            "sluice_isr_shrinks_total{shard=\"1\"} 1",
            "sluice_isr_expands_total{shard=\"1\"} 0",
            "# TYPE sluice_isr_shrinks_total counter",
            "sluice_follower_lag{shard=\"1\",topic=\"t\",partition=\"4\",leader=\"2001\"} 17",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let controller = render_controller(3);
        assert!(
            controller
                .contains("# TYPE sluice_offline_partitions gauge\nsluice_offline_partitions 3\n"),
            "{controller}"
        );
    }

    #[test]
    fn error_and_api_names_read_like_kafkas() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(2), "CORRUPT_MESSAGE");
        assert_eq!(api_name(0), "Produce");
    }

    #[test]
    fn labels_are_escaped_and_histograms_cumulative() {
        let m = ShardMetrics::default();
        m.record_request(1, Duration::from_micros(700));
        m.record_request(1, Duration::from_millis(30));
        m.add_bytes_in("we\"ird", 10);
        let text = render(&[m.snapshot(3, 2, vec![], Default::default())]);
        assert!(
            text.contains("sluice_topic_bytes_in_total{shard=\"3\",topic=\"we\\\"ird\"} 10"),
            "{text}"
        );
        assert!(
            text.contains(
                "sluice_request_duration_seconds_bucket{shard=\"3\",api=\"Fetch\",le=\"0.001\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "sluice_request_duration_seconds_bucket{shard=\"3\",api=\"Fetch\",le=\"+Inf\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("sluice_connections_active{shard=\"3\"} 2"),
            "{text}"
        );
    }
}
