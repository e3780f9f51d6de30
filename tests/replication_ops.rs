//! Operating replicated partitions (issue 12, "Operations"), against real clusters:
//!
//! * the high watermark checkpoint (Kafka's `replication-offset-checkpoint`): a replica restarted
//!   while its leader cannot answer still knows which records are committed, whether the
//!   checkpoint was written periodically (then `kill -9`) or at a clean shutdown;
//! * DescribeLogDirs: each node lists its replicas, leaders and followers, in the broker's log
//!   dir, with sizes that agree between replicas, and the volume's space (v4);
//! * `sluice cluster elect-leaders`: its usage errors and refusals, and a preferred election
//!   that gives a partition back to its preferred replica after a restart took it away.
mod cli_support;
mod common;

use common::cluster::Cluster;
use common::metrics::{try_scrape, value};
use common::*;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;
use kafka_protocol::messages::{DescribeLogDirsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

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
        create_topic_assigned(&bs, &topic, &[&[2000, 1000]], &[]);

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

/// DescribeLogDirs at `version` to `addr`, for every replica (`None`) or the listed partitions.
fn describe_log_dirs(
    addr: std::net::SocketAddr,
    version: i16,
    partitions: Option<(&str, Vec<i32>)>,
) -> Vec<DescribeLogDirsResult> {
    let mut c = RawClient::connect_negotiated(addr);
    let topics = partitions.map(|(topic, partitions)| {
        vec![DescribableLogDirTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(partitions)]
    });
    let resp = c
        .send(
            &DescribeLogDirsRequest::default().with_topics(topics),
            version,
        )
        .expect("DescribeLogDirs");
    assert_eq!(resp.error_code, 0);
    resp.results
}

/// (partition, size, offset lag, is future) of `topic` in the one log dir of `results`.
fn listed_replicas(results: &[DescribeLogDirsResult], topic: &str) -> Vec<(i32, i64, i64, bool)> {
    assert_eq!(results.len(), 1, "one log dir: {results:?}");
    results[0]
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .map(|p| {
            (
                p.partition_index,
                p.partition_size,
                p.offset_lag,
                p.is_future_key,
            )
        })
        .collect()
}

#[test]
fn describe_log_dirs_lists_each_nodes_replicas() {
    bounded(Duration::from_secs(180), || {
        let broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("log-dirs");
        // Two partitions, each with a replica on both shards (nodes 1000 and 1001).
        create_topic_assigned(&bs, &topic, &[&[1000, 1001], &[1001, 1000]], &[]);
        let (p, log) = producer(&bs, &[("acks", "all"), ("linger.ms", "5")]);
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..200 {
            let m = Msg {
                value: Some(vec![b'v'; 100]),
                partition: Some(i as i32 % 2),
                ..Msg::default()
            };
            send(&p, &topic, i, &m, deadline);
        }
        wait_delivered(&p, &log, 200, Duration::from_secs(60));
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));

        // Both nodes list both partitions (one leader, one follower each), with the same sizes
        // once the followers caught up.
        let mut sizes: BTreeMap<u16, Vec<(i32, i64, i64, bool)>> = BTreeMap::new();
        let agreed = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            for shard in 0..2 {
                let results = describe_log_dirs(broker.addr(shard), 4, None);
                sizes.insert(shard, listed_replicas(&results, &topic));
            }
            sizes[&0] == sizes[&1]
        });
        assert!(agreed, "replica sizes differ between nodes: {sizes:?}");
        let listed = &sizes[&0];
        assert_eq!(
            listed.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![0, 1],
            "{listed:?}"
        );
        assert!(
            listed
                .iter()
                .all(|&(_, size, lag, future)| size >= 100 * 100 && lag == 0 && !future),
            "{listed:?}"
        );

        let results = describe_log_dirs(broker.addr(0), 4, None);
        assert_eq!(results[0].error_code, 0);
        assert_eq!(
            Path::new(results[0].log_dir.as_str()),
            std::path::absolute(broker.data_dir()).unwrap()
        );
        assert!(
            results[0].total_bytes > 0 && results[0].usable_bytes <= results[0].total_bytes,
            "{:?}",
            results[0]
        );

        // One partition asked for: only it; v1 has no volume space.
        let results = describe_log_dirs(broker.addr(1), 1, Some((&topic, vec![1])));
        let listed = listed_replicas(&results, &topic);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].0, 1);
        let results = describe_log_dirs(broker.addr(1), 4, Some(("no-such-topic", vec![0])));
        assert!(results[0].topics.is_empty(), "{results:?}");
    })
}

#[test]
fn elect_leaders_cli_refuses_bad_usage_and_unknown_partitions() {
    cli_support::help_mentions(
        &["cluster", "elect-leaders"],
        &[
            "--election-type",
            "preferred",
            "unclean",
            "--topic",
            "--partition",
            "--all-topic-partitions",
        ],
    );
    let broker = Broker::builder().cores(2).start();
    let bs = broker.bootstrap();
    let topic = unique("elect-usage");
    create_topic(&bs, &topic, 2);
    let elect = |args: &[&str]| {
        let mut all = vec!["cluster", "elect-leaders"];
        all.extend_from_slice(args);
        cli_support::sluice_at(&bs, &all)
    };
    elect(&["--election-type", "preferred"])
        .failed_with(2)
        .stderr_has(&["--topic", "--all-topic-partitions"]);
    elect(&[
        "--election-type",
        "preferred",
        "--topic",
        &topic,
        "--all-topic-partitions",
    ])
    .failed_with(2)
    .stderr_has(&["cannot be used with"]);
    elect(&["--election-type", "preferred", "--partition", "0"]).failed_with(2);
    elect(&["--election-type", "sideways", "--topic", &topic])
        .failed_with(2)
        .stderr_has(&["possible values: preferred, unclean"]);
    elect(&["--election-type", "unclean", "--topic", "no-such-topic"])
        .failed_with(1)
        .stderr_has(&["topic 'no-such-topic' does not exist"]);
    elect(&[
        "--election-type",
        "preferred",
        "--topic",
        &topic,
        "--partition",
        "0,5",
    ])
    .failed_with(1)
    .stderr_has(&[&format!(
        "topic '{topic}' has 2 partitions, so there is no partition 5"
    )]);
    cli_support::unreachable_is_clear(
        &format!("127.0.0.1:{}", free_range(1)),
        &[
            "cluster",
            "elect-leaders",
            "--election-type",
            "preferred",
            "--all-topic-partitions",
        ],
    );
}

/// The leader and ISR of `topic`/`partition` in Metadata from `bootstrap`.
fn leader_and_isr(bootstrap: &str, topic: &str, partition: i32) -> Option<(i32, Vec<i32>)> {
    use rdkafka::consumer::Consumer;
    let md = plain_consumer(bootstrap)
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let p = t.partitions().iter().find(|p| p.id() == partition)?;
    Some((p.leader(), p.isr().to_vec()))
}

/// The rows of an `elect-leaders` table (its cells split on whitespace) and its summary line.
fn election_table(stdout: &str) -> (Vec<Vec<String>>, String) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 2, "a table and a summary:\n{stdout}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TOPIC", "PARTITION", "RESULT"],
        "{stdout}"
    );
    let rows = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    (rows, lines[lines.len() - 1].to_string())
}

#[test]
fn elect_leaders_cli_gives_a_partition_back_to_its_preferred_replica() {
    bounded(Duration::from_secs(300), || {
        let mut cluster = Cluster::builder(3, 1)
            .set("auto.leader.rebalance.enable", false)
            .start();
        let bs = cluster.bootstrap();
        let topic = unique("elect");
        create_topic_assigned(
            &bs,
            &topic,
            &[&[1000, 2000, 3000], &[2000, 3000, 1000]],
            &[],
        );
        let elect = |bootstrap: &str, election: &str| {
            cli_support::sluice_at(
                bootstrap,
                &[
                    "cluster",
                    "elect-leaders",
                    "--election-type",
                    election,
                    "--topic",
                    &topic,
                ],
            )
        };
        let row = |partition: &str, result: &[&str]| {
            let mut row = vec![topic.clone(), partition.to_string()];
            row.extend(result.iter().map(|w| w.to_string()));
            row
        };

        // Broker 1 stopped: its partition cannot go back to it.
        cluster.stop(1);
        let others = cluster.bootstrap_of(&[2, 3]);
        let run = elect(&others, "preferred");
        run.failed_with(1);
        let (rows, summary) = election_table(&run.stdout);
        assert_eq!(rows.len(), 2, "{}", run.show());
        assert_eq!(
            rows[0][..3],
            row("0", &["PREFERRED_LEADER_NOT_AVAILABLE"])[..],
            "{}",
            run.show()
        );
        assert_eq!(rows[1], row("1", &["not", "needed"]), "{}", run.show());
        assert_eq!(
            summary,
            "Preferred election: 0 elected, 1 not needed, 1 failed."
        );

        // Back and in sync, it does not lead again by itself (no automatic rebalance) until
        // the election.
        cluster.start_again(1);
        cluster.wait_nodes(&cluster.all_nodes(), Duration::from_secs(90));
        let mut last = None;
        let in_sync = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
            last = leader_and_isr(&bs, &topic, 0);
            last.as_ref()
                .is_some_and(|(leader, isr)| *leader != 1000 && isr.contains(&1000))
        });
        assert!(in_sync, "broker 1 back in partition 0's ISR: {last:?}");
        let run = elect(&bs, "preferred");
        let (rows, summary) = election_table(run.ok());
        assert_eq!(
            rows,
            vec![row("0", &["elected"]), row("1", &["not", "needed"])],
            "{}",
            run.show()
        );
        assert_eq!(
            summary,
            "Preferred election: 1 elected, 1 not needed, 0 failed."
        );
        let led = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            last = leader_and_isr(&bs, &topic, 0);
            last.as_ref().is_some_and(|(leader, _)| *leader == 1000)
        });
        assert!(
            led,
            "the preferred replica leads partition 0 again: {last:?}"
        );

        // Both partitions have leaders: an unclean election has nothing to do.
        let run = elect(&bs, "unclean");
        let (rows, summary) = election_table(run.ok());
        assert_eq!(
            rows,
            vec![row("0", &["not", "needed"]), row("1", &["not", "needed"])],
            "{}",
            run.show()
        );
        assert_eq!(
            summary,
            "Unclean election: 0 elected, 2 not needed, 0 failed."
        );
    })
}
