//! Operating replicated partitions (issue 12, "Operations"), against real clusters:
//!
//! * the high watermark checkpoint (Kafka's `replication-offset-checkpoint`): a replica restarted
//!   while its leader cannot answer still knows which records are committed, whether the
//!   checkpoint was written periodically (then `kill -9`) or at a clean shutdown.
mod common;

use common::cluster::Cluster;
use common::metrics::{try_scrape, value};
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use std::path::Path;
use std::time::{Duration, Instant};

/// Creates `topic` with the replica assignment `replicas` (one list of node ids per partition,
/// preferred leader first), then waits until Metadata shows every partition led.
fn create_assigned_topic(bootstrap: &str, topic: &str, replicas: &[&[i32]]) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let new = NewTopic::new(
        topic,
        replicas.len() as i32,
        TopicReplication::Variable(replicas),
    );
    let res = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request failed");
    for r in res {
        if let Err((name, code)) = r {
            panic!("CreateTopics {name}: {code:?}");
        }
    }
    let consumer = plain_consumer(bootstrap);
    let led = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.partitions().len() == replicas.len()
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
    });
    assert!(led, "{topic} did not get leaders for all its partitions");
}

/// Produces `count` records to partition 0 of `topic` with acks=all and waits for every one.
fn produce_acked(bootstrap: &str, topic: &str, count: usize) {
    let (p, log) = producer(bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..count {
        let m = Msg {
            value: Some(format!("record {i}").into_bytes()),
            partition: Some(0),
            ..Msg::default()
        };
        send(&p, topic, i, &m, deadline);
    }
    wait_delivered(&p, &log, count as u64, Duration::from_secs(60));
    assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));
}

/// The gauge `name` of partition 0 of `topic` on broker `n`, if the broker answers and holds a
/// replica of it.
fn partition_gauge(cluster: &Cluster, n: u16, name: &str, topic: &str) -> Option<f64> {
    let doc = try_scrape(cluster.metrics_port(n)).ok()?;
    value(&doc, name, &[("topic", topic), ("partition", "0")])
}

/// Waits until broker `n`'s replica of partition 0 of `topic` reports the high watermark `hw`.
fn wait_high_watermark(cluster: &Cluster, n: u16, topic: &str, hw: i64) {
    let reached = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        partition_gauge(cluster, n, "sluice_partition_high_watermark", topic) == Some(hw as f64)
    });
    assert!(
        reached,
        "broker {n}'s replica of {topic}-0 did not reach high watermark {hw}: {:?}",
        partition_gauge(cluster, n, "sluice_partition_high_watermark", topic)
    );
}

/// The high watermark of `topic`-0 in shard 0's `replication-offset-checkpoint` under
/// `log_dir`.
fn checkpointed_high_watermark(log_dir: &Path, topic: &str) -> Option<i64> {
    let text =
        std::fs::read_to_string(log_dir.join("shard-0/replication-offset-checkpoint")).ok()?;
    text.lines().skip(2).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [t, "0", offset] if t == topic => offset.parse().ok(),
            _ => None,
        }
    })
}

/// Restarts broker 1 while broker 2, the leader, is paused (so no fetch can tell broker 1 the
/// high watermark), and returns broker 1's first reported high watermark and log end of
/// `topic`-0.
fn restart_with_leader_paused(cluster: &mut Cluster, topic: &str) -> (f64, f64) {
    cluster.pause(2);
    cluster.start_again(1);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(hw) = partition_gauge(cluster, 1, "sluice_partition_high_watermark", topic) {
            let leo = partition_gauge(cluster, 1, "sluice_partition_log_end_offset", topic);
            return (hw, leo.unwrap_or(f64::NAN));
        }
        assert!(
            Instant::now() < deadline,
            "broker 1 did not report its replica of {topic}-0 after restarting"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_restarted_replica_keeps_its_high_watermark() {
    bounded(Duration::from_secs(400), || {
        // The paused leader must stay leader (not fenced) while broker 1 restarts.
        let mut cluster = Cluster::builder(3, 1)
            .metrics()
            .set("broker.session.timeout.ms", 60_000)
            .start();
        let bs = cluster.bootstrap();
        let topic = unique("hw-checkpoint");
        create_assigned_topic(&bs, &topic, &[&[2000, 1000]]);

        // The periodic checkpoint, then kill -9.
        produce_acked(&bs, &topic, 100);
        wait_high_watermark(&cluster, 1, &topic, 100);
        let written = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            checkpointed_high_watermark(cluster.data_dir(1), &topic) == Some(100)
        });
        assert!(
            written,
            "the periodic checkpoint did not record high watermark 100: {:?}",
            checkpointed_high_watermark(cluster.data_dir(1), &topic)
        );
        cluster.kill9(1);
        let (hw, leo) = restart_with_leader_paused(&mut cluster, &topic);
        assert_eq!(
            (hw, leo),
            (100.0, 100.0),
            "high watermark and log end after kill -9"
        );

        // The checkpoint written at a clean shutdown.
        cluster.resume(2);
        cluster.wait_nodes(&cluster.all_nodes(), Duration::from_secs(90));
        produce_acked(&bs, &topic, 50);
        wait_high_watermark(&cluster, 1, &topic, 150);
        cluster.stop(1);
        assert_eq!(
            checkpointed_high_watermark(cluster.data_dir(1), &topic),
            Some(150),
            "the shutdown checkpoint"
        );
        let (hw, leo) = restart_with_leader_paused(&mut cluster, &topic);
        assert_eq!(
            (hw, leo),
            (150.0, 150.0),
            "high watermark and log end after a clean shutdown"
        );
        cluster.resume(2);
    })
}
