//! The Prometheus endpoint: after real traffic the counters moved, histograms are consistent,
//! and the document parses as Prometheus text.
mod common;

use common::metrics::{http_get, value};
use common::*;
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
