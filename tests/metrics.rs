//! The Prometheus endpoint: after real traffic the counters moved, histograms are consistent,
//! and the document parses as Prometheus text; in a cluster, the replication metrics follow a
//! follower that stops and comes back (under-replicated and under-min-ISR partitions, ISR
//! shrinks and expansions, offline partitions, follower lag).
mod common;

use common::cluster::Cluster;
use common::metrics::{http_get, sum, try_scrape, value};
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn metrics_endpoint_reports_traffic() {
    let metrics_port = free_range(1);
    let broker = Broker::builder()
        .cores(2)
        .set("metrics.listener", format!("127.0.0.1:{metrics_port}"))
        .start();
    let bs = broker.bootstrap();
    let topic = unique("metrics");
    create_topic(&bs, &topic, 4);
    let (p, log) = producer(&bs, &[("acks", "1"), ("linger.ms", "5")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..5_000 {
        let m = Msg {
            key: Some(format!("k{}", i % 97).into_bytes()),
            value: Some(vec![b'x'; 300]),
            ..Msg::default()
        };
        send(&p, &topic, i, &m, deadline);
    }
    wait_delivered(&p, &log, 5_000, Duration::from_secs(60));
    let ranges: Vec<(i32, i64, i64)> = (0..4)
        .map(|part| (part, 0, watermarks(&bs, &topic, part).1))
        .collect();
    let report = consume(
        &bs,
        &topic,
        &ranges,
        Duration::from_secs(60),
        Duration::from_millis(200),
        |_| {},
    );
    assert_eq!(report.messages, 5_000);

    let (status, body) = http_get(metrics_port, "/metrics");
    assert!(status.contains("200"), "{status}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let doc = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");

    let produced: f64 = (0..2)
        .filter_map(|s| {
            value(
                &doc,
                "sluice_requests_total",
                &[("shard", &s.to_string()), ("api", "Produce")],
            )
        })
        .sum();
    let fetched: f64 = (0..2)
        .filter_map(|s| {
            value(
                &doc,
                "sluice_requests_total",
                &[("shard", &s.to_string()), ("api", "Fetch")],
            )
        })
        .sum();
    assert!(
        produced >= 1.0 && fetched >= 1.0,
        "Produce {produced}, Fetch {fetched}"
    );
    let bytes_in: f64 = (0..2)
        .filter_map(|s| {
            value(
                &doc,
                "sluice_topic_bytes_in_total",
                &[("shard", &s.to_string()), ("topic", &topic)],
            )
        })
        .sum();
    let bytes_out: f64 = (0..2)
        .filter_map(|s| {
            value(
                &doc,
                "sluice_topic_bytes_out_total",
                &[("shard", &s.to_string()), ("topic", &topic)],
            )
        })
        .sum();
    assert!(bytes_in >= 5_000.0 * 300.0, "bytes in {bytes_in}");
    assert!(
        bytes_out >= bytes_in,
        "every produced byte was fetched at least once: out {bytes_out}, in {bytes_in}"
    );
    let leo: f64 = (0..4)
        .filter_map(|part| {
            value(
                &doc,
                "sluice_partition_log_end_offset",
                &[("topic", &topic), ("partition", &part.to_string())],
            )
        })
        .sum();
    assert_eq!(leo, 5_000.0);
    let reads: f64 = (0..2)
        .flat_map(|s| {
            ["page_cache", "disk"].map(|src| {
                value(
                    &doc,
                    "sluice_fetch_reads_total",
                    &[("shard", &s.to_string()), ("source", src)],
                )
            })
        })
        .flatten()
        .sum();
    assert!(reads >= 1.0, "fetch reads counted");

    // Histograms: cumulative buckets never decrease, +Inf equals _count.
    let mut checked = 0;
    for sample in doc
        .samples
        .iter()
        .filter(|s| s.metric == "sluice_request_duration_seconds")
    {
        if let prometheus_parse::Value::Histogram(buckets) = &sample.value {
            let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
            assert!(
                counts.windows(2).all(|w| w[0] <= w[1]),
                "buckets not cumulative: {counts:?}"
            );
            let count = doc
                .samples
                .iter()
                .find(|s| {
                    s.metric == "sluice_request_duration_seconds_count"
                        && s.labels.get("api") == sample.labels.get("api")
                        && s.labels.get("shard") == sample.labels.get("shard")
                })
                .map(|s| match s.value {
                    prometheus_parse::Value::Untyped(v) | prometheus_parse::Value::Counter(v) => v,
                    _ => f64::NAN,
                });
            let inf = buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .map(|b| b.count);
            if let (Some(c), Some(i)) = (count, inf) {
                assert_eq!(c, i, "+Inf bucket equals _count");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "histograms present (checked {checked})\n{body}"
    );

    let (status, _) = http_get(metrics_port, "/nope");
    assert!(status.contains("404"), "{status}");
}

/// The sum of `name` (with `labels`) over the scrapes of brokers `ns` (metrics ports in
/// `ports`); `None` if one does not answer.
fn sum_over(
    ports: &BTreeMap<u16, u16>,
    ns: &[u16],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    ns.iter()
        .map(|n| try_scrape(ports[n]).ok().map(|doc| sum(&doc, name, labels)))
        .sum()
}

#[test]
fn replication_metrics_follow_a_paused_follower() {
    bounded(Duration::from_secs(300), || {
        let mut cluster = Cluster::builder(3, 1)
            .metrics()
            .set("broker.session.timeout.ms", 3000)
            .set("broker.heartbeat.interval.ms", 500)
            .start();
        let bs = cluster.bootstrap();
        // The paused broker is neither the active controller nor the leader.
        let (controller, _) = cluster.wait_active_controller(Duration::from_secs(30));
        let controller = controller as u16;
        let others: Vec<u16> = cluster
            .ids()
            .into_iter()
            .filter(|n| *n != controller)
            .collect();
        let (leader, victim) = (others[0], others[1]);
        let node = |n: u16| n as i32 * 1000;
        let leader_node = node(leader).to_string();
        let replicated = unique("replicated");
        create_topic_assigned(
            &bs,
            &replicated,
            &[&[node(leader), node(controller), node(victim)]],
            &[("min.insync.replicas", "3")],
        );
        let lonely = unique("lonely");
        create_topic_assigned(&bs, &lonely, &[&[node(victim)]], &[]);
        let (p, log) = producer(&bs, &[("acks", "all"), ("linger.ms", "5")]);
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..100 {
            let m = Msg {
                value: Some(vec![b'r'; 50]),
                partition: Some(0),
                ..Msg::default()
            };
            send(&p, &replicated, i, &m, deadline);
        }
        wait_delivered(&p, &log, 100, Duration::from_secs(60));
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));

        let all = cluster.ids();
        let ports: BTreeMap<u16, u16> =
            all.iter().map(|n| (*n, cluster.metrics_port(*n))).collect();
        let leader_only = [leader];
        let lag_labels = [
            ("topic", replicated.as_str()),
            ("partition", "0"),
            ("leader", leader_node.as_str()),
        ];
        let mut last = Vec::new();
        let steady = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            last = vec![
                sum_over(&ports, &[controller], "sluice_follower_lag", &lag_labels),
                sum_over(&ports, &[victim], "sluice_follower_lag", &lag_labels),
                sum_over(&ports, &leader_only, "sluice_under_min_isr_partitions", &[]),
                sum_over(&ports, &all, "sluice_offline_partitions", &[]),
            ];
            last == [Some(0.0); 4]
        });
        assert!(
            steady,
            "followers caught up, nothing under min ISR or offline: {last:?}"
        );
        let followers_lag = |n: u16| {
            try_scrape(ports[&n])
                .ok()
                .and_then(|doc| value(&doc, "sluice_follower_lag", &lag_labels))
        };
        assert_eq!(
            followers_lag(leader),
            None,
            "the leader follows nothing of the partition"
        );
        let counter = |name: &str| sum_over(&ports, &leader_only, name, &[]).unwrap_or(-1.0);
        let (shrinks, expands) = (
            counter("sluice_isr_shrinks_total"),
            counter("sluice_isr_expands_total"),
        );

        cluster.pause(victim);
        let live = [leader, controller];
        let shrunk = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            last = vec![
                sum_over(&ports, &leader_only, "sluice_under_min_isr_partitions", &[]),
                sum_over(
                    &ports,
                    &leader_only,
                    "sluice_under_replicated_partitions",
                    &[],
                )
                .map(|n| n.min(1.0)),
                sum_over(&ports, &live, "sluice_offline_partitions", &[]),
            ];
            last == [Some(1.0); 3] && counter("sluice_isr_shrinks_total") > shrinks
        });
        assert!(
            shrunk,
            "with broker {victim} paused: under min ISR, under-replicated, offline {last:?}; shrinks {} (before {shrinks})",
            counter("sluice_isr_shrinks_total")
        );

        cluster.resume(victim);
        cluster.wait_nodes(&cluster.all_nodes(), Duration::from_secs(60));
        let expanded = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            last = vec![
                sum_over(&ports, &leader_only, "sluice_under_min_isr_partitions", &[]),
                sum_over(&ports, &all, "sluice_under_replicated_partitions", &[]),
                sum_over(&ports, &all, "sluice_offline_partitions", &[]),
            ];
            last == [Some(0.0); 3] && counter("sluice_isr_expands_total") > expands
        });
        assert!(
            expanded,
            "with broker {victim} back: under min ISR, under-replicated, offline {last:?}; expands {} (before {expands})",
            counter("sluice_isr_expands_total")
        );
        assert_eq!(followers_lag(victim), Some(0.0), "the follower caught up");
    })
}
