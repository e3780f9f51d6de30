//! `sluice topic` and `sluice config` end to end: the real binary against a real 2-shard broker,
//! each command's output checked exactly — create (and its refusals), list, describe (against
//! the leaders, replicas and ISRs librdkafka sees), add-partitions, delete; config describe with
//! values and sources; config set / delete and topic alter (IncrementalAlterConfigs) with their
//! effect seen by describe; `--help` of every subcommand; usage errors (exit status 2) and an
//! unreachable broker (exit status 1, one clear line).
//!
//! `CLI_SHOW=1` prints every command with its output.
mod cli_support;
mod common;

use cli_support::*;
use common::{free_range, plain_consumer, unique, Broker};
use rdkafka::consumer::Consumer;
use std::time::Duration;

/// The expected `topic describe` partition table, from the metadata librdkafka sees.
fn expected_partitions(bootstrap: &str, topic: &str) -> String {
    let md = plain_consumer(bootstrap)
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let t = &md.topics()[0];
    let join = |ids: &[i32]| {
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut rows: Vec<(i32, String)> = t
        .partitions()
        .iter()
        .map(|p| {
            (
                p.id(),
                format!(
                    "{:<9}  {:<6}  {:<8}  {}\n",
                    p.id(),
                    p.leader(),
                    join(p.replicas()),
                    join(p.isr())
                ),
            )
        })
        .collect();
    rows.sort();
    let mut out = "PARTITION  LEADER  REPLICAS  ISR\n".to_string();
    rows.into_iter().for_each(|(_, r)| out.push_str(&r));
    out
}

/// `Topic: …` summary line of a description: (topic id, partition count, replication factor).
fn summary(run: &Run, topic: &str) -> (String, String, String) {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("Topic: {topic}  ")))
        .unwrap_or_else(|| panic!("no summary line for {topic}:\n{}", run.show()));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (f[0], f[2], f[4], f[6]),
        (
            "Topic:",
            "TopicId:",
            "PartitionCount:",
            "ReplicationFactor:"
        ),
        "{line}"
    );
    (f[3].to_string(), f[5].to_string(), f[7].to_string())
}

#[test]
fn help_describes_every_subcommand_and_option() {
    help_mentions(&[], &["topic", "config", "produce", "consume", "log"]);
    help_mentions(
        &["topic"],
        &[
            "create",
            "list",
            "describe",
            "alter",
            "delete",
            "add-partitions",
            "reassign",
            "--bootstrap-server",
            "-b",
        ],
    );
    help_mentions(
        &["topic", "create"],
        &[
            "<NAME>",
            "--partitions",
            "--replication-factor",
            "--config",
            "--if-not-exists",
            "--timeout-ms",
        ],
    );
    help_mentions(&["topic", "list"], &["--include-internal"]);
    help_mentions(&["topic", "describe"], &["[NAME]..."]);
    help_mentions(
        &["topic", "alter"],
        &["<NAME>", "--config", "--delete-config"],
    );
    help_mentions(&["topic", "delete"], &["<NAME>...", "--if-exists"]);
    help_mentions(&["topic", "add-partitions"], &["<NAME>", "--partitions"]);
    help_mentions(
        &["topic", "reassign"],
        &["plan", "execute", "verify", "cancel", "list"],
    );
    help_mentions(
        &["topic", "reassign", "plan"],
        &["--topics", "--brokers", "--replication-factor"],
    );
    help_mentions(
        &["topic", "reassign", "execute"],
        &["--plan", "--disallow-replication-factor-change"],
    );
    help_mentions(&["topic", "reassign", "verify"], &["--plan"]);
    help_mentions(&["topic", "reassign", "cancel"], &["--plan"]);
    help_mentions(&["config"], &["describe", "set", "delete"]);
    help_mentions(
        &["config", "describe"],
        &[
            "--topic",
            "--broker",
            "--broker-defaults",
            "--all",
            "source",
        ],
    );
    help_mentions(
        &["config", "set"],
        &["--topic", "--broker", "--broker-defaults", "<KEY=VALUE>..."],
    );
    help_mentions(
        &["config", "delete"],
        &["--topic", "--broker", "--broker-defaults", "<KEY>..."],
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["topic", "alter", "t"][..],
        &["topic", "create", "t", "--partitions", "0"],
        &["topic", "create", "t", "--config", "novalue"],
        &["topic", "delete"],
        &["topic", "add-partitions", "t"],
        &["topic", "reassign", "execute"],
        &["topic", "reassign", "plan", "--topics", "t"],
        &[
            "topic",
            "reassign",
            "plan",
            "--topics",
            "t",
            "--brokers",
            "x",
        ],
        &["config", "describe"],
        &["config", "describe", "--topic", "t", "--broker", "1"],
        &["config", "set", "--topic", "t"],
        &["config", "delete", "--broker-defaults"],
    ] {
        sluice(args).failed_with(2);
    }
}

#[test]
fn unreachable_broker_is_a_clear_error() {
    let addr = format!("127.0.0.1:{}", free_range(1));
    for args in [
        &["topic", "list"][..],
        &["topic", "describe", "t"],
        &["topic", "create", "t"],
        &["topic", "delete", "t"],
        &["topic", "reassign", "list"],
        &["config", "describe", "--topic", "t"],
        &["config", "set", "--topic", "t", "retention.ms=1"],
    ] {
        unreachable_is_clear(&addr, args);
    }
}

#[test]
fn topic_create_list_describe_add_partitions_delete() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("topic-cli");

    sluice_at(
        &b,
        &[
            "topic",
            "create",
            &topic,
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
    )
    .stdout_is(&format!("Created topic '{topic}'.\n"))
    .failed_with(0);
    sluice_at(&b, &["topic", "create", &topic])
        .failed_with(1)
        .stderr_has(&[
            "already exists",
            "TOPIC_ALREADY_EXISTS (36)",
            "--if-not-exists",
        ]);
    sluice_at(&b, &["topic", "create", &topic, "--if-not-exists"])
        .stdout_is(&format!("Topic '{topic}' already exists.\n"))
        .failed_with(0);
    sluice_at(
        &b,
        &[
            "topic",
            "create",
            "bad-config",
            "--config",
            "retention.ms=soon",
        ],
    )
    .failed_with(1)
    .stderr_has(&["INVALID_CONFIG (40)", "retention.ms"]);

    sluice_at(&b, &["topic", "list"])
        .stdout_is(&format!("{topic}\n"))
        .failed_with(0);
    sluice_at(&b, &["topic", "list", "--include-internal"])
        .stdout_is(&format!("__consumer_offsets\n{topic}\n"))
        .failed_with(0);

    let described = sluice_at(&b, &["topic", "describe", &topic]);
    let (id, count, rf) = summary(&described, &topic);
    assert_eq!((count.as_str(), rf.as_str()), ("3", "1"));
    assert!(
        id.len() == 22
            && id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && id != "AAAAAAAAAAAAAAAAAAAAAA",
        "topic id {id:?} is not Kafka's base64 form"
    );
    described.stdout_is(&format!(
        "Topic: {topic}  TopicId: {id}  PartitionCount: 3  ReplicationFactor: 1\n\
         Configs: retention.ms=3600000\n{}",
        expected_partitions(&b, &topic)
    ));
    described.failed_with(0);
    // Without names: every non-internal topic, the same description.
    sluice_at(&b, &["topic", "describe"])
        .stdout_is(&described.stdout)
        .failed_with(0);

    sluice_at(
        &b,
        &["topic", "add-partitions", &topic, "--partitions", "5"],
    )
    .stdout_is(&format!("Topic '{topic}' now has 5 partitions.\n"))
    .failed_with(0);
    let grown = sluice_at(&b, &["topic", "describe", &topic]);
    grown
        .stdout_is(&format!(
            "Topic: {topic}  TopicId: {id}  PartitionCount: 5  ReplicationFactor: 1\n\
             Configs: retention.ms=3600000\n{}",
            expected_partitions(&b, &topic)
        ))
        .failed_with(0);
    sluice_at(
        &b,
        &["topic", "add-partitions", &topic, "--partitions", "2"],
    )
    .failed_with(1)
    .stderr_has(&["INVALID_PARTITIONS (37)"]);

    sluice_at(&b, &["topic", "describe", "no-such-topic", &topic])
        .failed_with(1)
        .stderr_has(&["topic 'no-such-topic' does not exist"]);

    sluice_at(&b, &["topic", "delete", &topic])
        .stdout_is(&format!("Deleted topic '{topic}'.\n"))
        .failed_with(0);
    sluice_at(&b, &["topic", "list"])
        .stdout_is("")
        .failed_with(0);
    sluice_at(&b, &["topic", "delete", &topic])
        .failed_with(1)
        .stderr_has(&[
            "UNKNOWN_TOPIC_OR_PARTITION (3)",
            "does not exist",
            "--if-exists",
        ]);
    sluice_at(&b, &["topic", "delete", &topic, "--if-exists"])
        .stdout_is(&format!(
            "Topic '{topic}' does not exist; nothing to delete.\n"
        ))
        .failed_with(0);
    // The name is free again at once.
    sluice_at(&b, &["topic", "create", &topic, "--partitions", "1"]).failed_with(0);
}

#[test]
fn config_describe_shows_values_and_sources() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("config-cli");
    sluice_at(
        &b,
        &[
            "topic",
            "create",
            &topic,
            "--config",
            "retention.ms=3600000",
            "--config",
            "cleanup.policy=compact",
        ],
    )
    .failed_with(0);

    sluice_at(&b, &["config", "describe", "--topic", &topic])
        .stdout_is(
            "NAME            VALUE    SOURCE\n\
             cleanup.policy  compact  DYNAMIC_TOPIC_CONFIG\n\
             retention.ms    3600000  DYNAMIC_TOPIC_CONFIG\n",
        )
        .failed_with(0);

    let all = sluice_at(&b, &["config", "describe", "--topic", &topic, "--all"]);
    let rows: Vec<Vec<&str>> = all
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "VALUE", "SOURCE"], "{}", all.show());
    for expected in [
        ["retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"],
        ["cleanup.policy", "compact", "DYNAMIC_TOPIC_CONFIG"],
        ["segment.bytes", "1073741824", "DEFAULT_CONFIG"],
        ["min.insync.replicas", "1", "DEFAULT_CONFIG"],
    ] {
        assert!(
            rows.contains(&expected.to_vec()),
            "no row {expected:?}:\n{}",
            all.show()
        );
    }
    assert!(
        rows.len() > 20,
        "--all lists every topic config:\n{}",
        all.show()
    );

    // A broker (by a shard's node id): the settings the test harness started it with.
    let broker_configs = sluice_at(&b, &["config", "describe", "--broker", "1000"]);
    assert!(
        broker_configs.ok().lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f == [
                "listeners",
                &format!("PLAINTEXT://{b}"),
                "STATIC_BROKER_CONFIG",
            ]
        }),
        "{}",
        broker_configs.show()
    );
    sluice_at(&b, &["config", "describe", "--broker-defaults"])
        .stdout_is("No overridden configs for the cluster-wide broker defaults (--all lists every config).\n")
        .failed_with(0);
    sluice_at(&b, &["config", "describe", "--topic", "no-such-topic"])
        .failed_with(1)
        .stderr_has(&["UNKNOWN_TOPIC_OR_PARTITION (3)", "topic 'no-such-topic'"]);
}

/// Depends on the broker's IncrementalAlterConfigs (API 44).
#[test]
fn config_set_and_delete_change_a_topic() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("config-set");
    sluice_at(&b, &["topic", "create", &topic]).failed_with(0);

    sluice_at(
        &b,
        &[
            "config",
            "set",
            "--topic",
            &topic,
            "retention.ms=1000",
            "cleanup.policy=compact",
        ],
    )
    .stdout_is(&format!(
        "Updated topic '{topic}': set retention.ms=1000, set cleanup.policy=compact.\n"
    ))
    .failed_with(0);
    sluice_at(&b, &["config", "describe", "--topic", &topic])
        .stdout_is(
            "NAME            VALUE    SOURCE\n\
             cleanup.policy  compact  DYNAMIC_TOPIC_CONFIG\n\
             retention.ms    1000     DYNAMIC_TOPIC_CONFIG\n",
        )
        .failed_with(0);
    sluice_at(&b, &["config", "delete", "--topic", &topic, "retention.ms"])
        .stdout_is(&format!("Updated topic '{topic}': deleted retention.ms.\n"))
        .failed_with(0);
    sluice_at(&b, &["config", "describe", "--topic", &topic])
        .stdout_is(
            "NAME            VALUE    SOURCE\n\
             cleanup.policy  compact  DYNAMIC_TOPIC_CONFIG\n",
        )
        .failed_with(0);
    sluice_at(
        &b,
        &["config", "set", "--topic", &topic, "retention.ms=soon"],
    )
    .failed_with(1)
    .stderr_has(&["INVALID_CONFIG (40)", "retention.ms"]);
    sluice_at(
        &b,
        &[
            "config",
            "set",
            "--topic",
            "no-such-topic",
            "retention.ms=1",
        ],
    )
    .failed_with(1)
    .stderr_has(&["UNKNOWN_TOPIC_OR_PARTITION (3)"]);
}

/// Depends on the broker's IncrementalAlterConfigs (API 44).
#[test]
fn topic_alter_sets_and_deletes_configs() {
    let broker = Broker::builder().cores(2).start();
    let b = broker.bootstrap();
    let topic = unique("topic-alter");
    sluice_at(
        &b,
        &[
            "topic",
            "create",
            &topic,
            "--config",
            "retention.ms=3600000",
        ],
    )
    .failed_with(0);

    sluice_at(
        &b,
        &[
            "topic",
            "alter",
            &topic,
            "--config",
            "segment.ms=600000",
            "--delete-config",
            "retention.ms",
        ],
    )
    .stdout_is(&format!(
        "Updated topic '{topic}': set segment.ms=600000, deleted retention.ms.\n"
    ))
    .failed_with(0);
    let described = sluice_at(&b, &["topic", "describe", &topic]);
    assert_eq!(
        described.ok().lines().nth(1),
        Some("Configs: segment.ms=600000"),
        "{}",
        described.show()
    );
    sluice_at(
        &b,
        &["topic", "alter", &topic, "--delete-config", "segment.ms"],
    )
    .failed_with(0);
    let described = sluice_at(&b, &["topic", "describe", &topic]);
    assert_eq!(
        described.ok().lines().nth(1),
        Some("Configs: (none overridden)"),
        "{}",
        described.show()
    );
    sluice_at(
        &b,
        &["topic", "alter", &topic, "--config", "no.such.config=1"],
    )
    .failed_with(1)
    .stderr_has(&["INVALID_CONFIG (40)", "no.such.config"]);
}
