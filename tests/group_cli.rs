//! `sluice group` end to end: the real binary's `group` subcommands against a real broker with a
//! real consumer group (librdkafka's consumer through `rdkafka`), checking the tables it prints —
//! states, members, assignments, exact committed offsets, log end offsets and lags — and that
//! resets and deletes are refused while the group has members and take effect once it has none.
//! Also: a clear error and exit status 1 for an unreachable broker, `--help` for every
//! subcommand, and usage errors (exit status 2) for contradictory options.
//!
//! `CLI_SHOW=1` prints every command with its output.
mod cli_support;
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cli_support::{sluice, Run};
use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// How long the group may take to reach a state (join, sync, leave).
const STATE_LIMIT: Duration = Duration::from_secs(60);
/// The consumer's client.id, expected in `describe`.
const CLIENT_ID: &str = "group-cli-consumer";
/// Partitions of the test topic, and messages per partition.
const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 20;

// ---------------------------------------------------------------------------
// Running the binary (tests/cli_support: bounded runs, output kept, no panics)
// ---------------------------------------------------------------------------

/// Runs `sluice group <args> --bootstrap-server <bootstrap>`.
fn group(bootstrap: &str, args: &[&str]) -> Run {
    let mut all = vec!["group"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--bootstrap-server", bootstrap]);
    sluice(&all)
}

// ---------------------------------------------------------------------------
// Reading the tables
// ---------------------------------------------------------------------------

/// The whitespace-split rows of the table whose header line starts with `header` (the first
/// such table in `out`), up to the first blank line.
fn rows_after(out: &str, header: &str) -> Option<Vec<Vec<String>>> {
    let mut lines = out.lines();
    lines.by_ref().find(|l| l.starts_with(header))?;
    Some(
        lines
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect(),
    )
}

/// `list` output: group → (state, protocol type).
fn listed(out: &str) -> BTreeMap<String, (String, String)> {
    rows_after(out, "GROUP")
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.len() >= 3)
        .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
        .collect()
}

/// One row of an offsets table.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LagRow {
    current: String,
    log_end: String,
    lag: String,
    consumer: String,
}

/// The offsets table (from `lag` or `describe`) of `topic`: partition → row.
fn lag_table(run: &Run, topic: &str) -> BTreeMap<i32, LagRow> {
    let rows = rows_after(&run.stdout, "TOPIC")
        .unwrap_or_else(|| panic!("no TOPIC … table in the output:\n{}", run.show()));
    let mut out = BTreeMap::new();
    for r in rows {
        assert_eq!(
            r.len(),
            6,
            "offsets row {r:?} does not have 6 columns:\n{}",
            run.show()
        );
        if r[0] != topic {
            continue;
        }
        let p: i32 = r[1]
            .parse()
            .unwrap_or_else(|_| panic!("partition {:?}:\n{}", r[1], run.show()));
        out.insert(
            p,
            LagRow {
                current: r[2].clone(),
                log_end: r[3].clone(),
                lag: r[4].clone(),
                consumer: r[5].clone(),
            },
        );
    }
    out
}

/// The expected offsets table: committed offset per partition (`None`: "-"), each log ending at
/// [`PER_PARTITION`], owned by `consumer` ("-" for none).
fn expected_lag(committed: &[Option<i64>], consumer: &str) -> BTreeMap<i32, LagRow> {
    committed
        .iter()
        .enumerate()
        .map(|(p, c)| {
            (
                p as i32,
                LagRow {
                    current: c.map_or("-".into(), |c| c.to_string()),
                    log_end: PER_PARTITION.to_string(),
                    lag: c.map_or("-".into(), |c| (PER_PARTITION - c).to_string()),
                    consumer: consumer.to_string(),
                },
            )
        })
        .collect()
}

/// The `Total lag: N` value.
fn total_lag(run: &Run) -> i64 {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total lag: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no 'Total lag: N' line:\n{}", run.show()))
}

/// `describe`'s `Name: value` summary line.
fn summary_value(run: &Run, name: &str) -> String {
    let prefix = format!("{name}:");
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no '{prefix}' line:\n{}", run.show()))
}

/// A plan (`reset-offsets`) table of `topic`: partition → (current, new).
fn plan_table(run: &Run, topic: &str) -> BTreeMap<i32, (String, String)> {
    rows_after(&run.stdout, "TOPIC")
        .unwrap_or_else(|| panic!("no plan table:\n{}", run.show()))
        .into_iter()
        .filter(|r| r.len() == 4 && r[0] == topic)
        .map(|r| (r[1].parse().unwrap(), (r[2].clone(), r[3].clone())))
        .collect()
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `YYYY-MM-DDTHH:MM:SS.sss` (UTC) of `ms` since the epoch.
fn iso_utc(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[test]
fn iso_utc_formats_known_instants() {
    assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000");
    assert_eq!(iso_utc(1_709_210_096_789), "2024-02-29T12:34:56.789");
}

// ---------------------------------------------------------------------------
// Without a broker
// ---------------------------------------------------------------------------

#[test]
fn help_describes_every_subcommand() {
    let top = sluice(&["--help"]);
    assert!(
        top.ok().contains("group"),
        "`sluice --help` does not list `group`:\n{}",
        top.show()
    );
    let help = sluice(&["group", "--help"]);
    let text = help.ok();
    for word in [
        "list",
        "describe",
        "lag",
        "reset-offsets",
        "delete",
        "--bootstrap-server",
        "-b",
    ] {
        assert!(
            text.contains(word),
            "`sluice group --help` does not mention {word}:\n{}",
            help.show()
        );
    }
    let expectations: [(&str, &[&str]); 5] = [
        ("list", &["--state", "--bootstrap-server"]),
        ("describe", &["<GROUP>", "--bootstrap-server"]),
        ("lag", &["<GROUP>", "--bootstrap-server"]),
        (
            "reset-offsets",
            &[
                "--topic",
                "--all-topics",
                "--to-earliest",
                "--to-latest",
                "--to-offset",
                "--to-datetime",
                "--to-timestamp",
                "--shift-by",
                "--execute",
                "YYYY-MM-DDTHH:MM:SS",
            ],
        ),
        ("delete", &["<GROUP>", "--bootstrap-server"]),
    ];
    for (sub, words) in expectations {
        let h = sluice(&["group", sub, "--help"]);
        let text = h.ok();
        for word in words {
            assert!(
                text.contains(word),
                "`sluice group {sub} --help` does not mention {word}:\n{}",
                h.show()
            );
        }
    }
}

#[test]
fn unreachable_bootstrap_is_a_clear_error() {
    // A port nothing listens on (refused at once).
    let port = free_range(1);
    let addr = format!("127.0.0.1:{port}");
    let commands: [&[&str]; 5] = [
        &["list"],
        &["describe", "some-group"],
        &["lag", "some-group"],
        &[
            "reset-offsets",
            "some-group",
            "--all-topics",
            "--to-earliest",
        ],
        &["delete", "some-group"],
    ];
    for args in commands {
        let r = group(&addr, args);
        r.failed_with(1);
        assert!(
            r.took < Duration::from_secs(10),
            "took {:?} to give up:\n{}",
            r.took,
            r.show()
        );
        let line = r.stderr.trim();
        assert_eq!(
            line.lines().count(),
            1,
            "expected a one-line error:\n{}",
            r.show()
        );
        assert!(
            line.contains(&addr) && line.contains("check that the broker is running"),
            "the error should name {addr} and suggest checking that the broker runs:\n{}",
            r.show()
        );
    }
}

#[test]
fn contradictory_or_missing_options_are_usage_errors() {
    // clap rejects these before any connection is tried (the address would refuse anyway).
    let addr = format!("127.0.0.1:{}", free_range(1));
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--to-latest",
            ],
            "cannot be used with",
        ),
        (
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-offset",
                "5",
                "--shift-by",
                "-1",
            ],
            "cannot be used with",
        ),
        (&["reset-offsets", "g", "--topic", "t"], "required"),
        (&["reset-offsets", "g", "--to-earliest"], "required"),
        (
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--all-topics",
                "--to-earliest",
            ],
            "cannot be used with",
        ),
        (
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--execute",
                "--dry-run",
            ],
            "cannot be used with",
        ),
        (
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-datetime",
                "2024-02-30T00:00:00",
            ],
            "YYYY-MM-DDTHH:MM:SS",
        ),
        (
            &["reset-offsets", "g", "--topic", "t:x", "--to-earliest"],
            "partition",
        ),
        (&["list", "--state", "running"], "Stable"),
    ];
    for (args, needle) in cases {
        let r = group(&addr, args);
        r.failed_with(2);
        assert!(
            r.stderr.contains(needle),
            "expected {needle:?} in stderr:\n{}",
            r.show()
        );
    }
    for args in [&["describe"][..], &["lag"], &["delete"], &["reset-offsets"]] {
        group(&addr, args).failed_with(2);
    }
}

// ---------------------------------------------------------------------------
// Against a broker
// ---------------------------------------------------------------------------

/// Produces [`PER_PARTITION`] messages to each of [`PARTITIONS`] partitions of `topic`; message
/// k of every partition has timestamp `t0 + 1000 * k` and lands at offset k.
fn produce_known(bootstrap: &str, topic: &str, t0: i64) {
    let (p, log) = producer(
        bootstrap,
        &[("linger.ms", "5"), ("enable.idempotence", "true")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 0usize;
    let mut where_: BTreeMap<usize, (i32, i64)> = BTreeMap::new();
    for k in 0..PER_PARTITION {
        for part in 0..PARTITIONS {
            let m = Msg {
                key: Some(format!("k{k}").into_bytes()),
                value: Some(format!("p{part}-m{k}").into_bytes()),
                timestamp: Some(t0 + 1000 * k),
                partition: Some(part),
                ..Msg::default()
            };
            send(&p, topic, id, &m, deadline);
            where_.insert(id, (part, k));
            id += 1;
        }
    }
    wait_delivered(&p, &log, id as u64, Duration::from_secs(60));
    assert_eq!(
        log.failed(),
        0,
        "failed deliveries: {:?}",
        log.first_failures(5)
    );
    let acked = log.acked.lock().unwrap();
    for (id, (part, k)) in where_ {
        let a = acked[&id];
        assert_eq!(
            (a.partition, a.offset),
            (part, k),
            "message {id} landed elsewhere"
        );
    }
}

/// A subscribed consumer in `group` that has joined, been assigned every partition of `topic`
/// and committed `committed` (offset per partition).
fn joined_consumer(bootstrap: &str, group: &str, topic: &str, committed: &[i64]) -> BaseConsumer {
    let mut cfg = client_config(bootstrap);
    cfg.set("group.id", group)
        .set("client.id", CLIENT_ID)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500");
    let consumer: BaseConsumer = cfg.create().expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + STATE_LIMIT;
    let mut received = 0u64;
    let mut errors = Vec::new();
    loop {
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        if assigned == PARTITIONS as usize && received >= 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer did not join group {group} and get all {PARTITIONS} partitions within {STATE_LIMIT:?} \
             (assigned {assigned}, received {received} messages, errors {:?})",
            &errors[..errors.len().min(5)]
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => received += 1,
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in committed.iter().enumerate() {
        tpl.add_partition_offset(topic, p as i32, Offset::Offset(*o))
            .unwrap();
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {committed:?} failed: {e}"));
    consumer
}

/// Runs `list` until `group` shows `state` (or, for `None`, is gone); returns the last run.
fn wait_listed(bootstrap: &str, group: &str, state: Option<&str>) -> Run {
    let mut last = None;
    let ok = wait_until(STATE_LIMIT, Duration::from_millis(250), || {
        let r = group_list(bootstrap);
        let found = listed(&r.stdout).get(group).map(|(s, _)| s.clone());
        let done = r.code == Some(0) && found.as_deref() == state;
        last = Some(r);
        done
    });
    let last = last.expect("list ran");
    assert!(
        ok,
        "expected group {group} {} in `sluice group list` within {STATE_LIMIT:?}; last run:\n{}",
        match state {
            Some(s) => format!("in state {s}"),
            None => "to be gone".to_string(),
        },
        last.show()
    );
    last
}

fn group_list(bootstrap: &str) -> Run {
    group(bootstrap, &["list"])
}

/// `lag` must show exactly `committed` (per partition) against log ends of [`PER_PARTITION`].
fn assert_lag(
    bootstrap: &str,
    group_id: &str,
    topic: &str,
    committed: &[Option<i64>],
    consumer: &str,
) {
    let r = group(bootstrap, &["lag", group_id]);
    r.ok();
    assert_eq!(
        lag_table(&r, topic),
        expected_lag(committed, consumer),
        "`lag` rows (partition → current, log end, lag, consumer) differ:\n{}",
        r.show()
    );
    let total: i64 = committed.iter().flatten().map(|c| PER_PARTITION - c).sum();
    assert_eq!(total_lag(&r), total, "total lag:\n{}", r.show());
}

/// `reset-offsets … --execute` must succeed and print `expected_new` for `topic`'s partitions.
fn reset_executed(bootstrap: &str, args: &[&str], topic: &str, expected_new: &[(i32, i64)]) {
    let mut all = vec!["reset-offsets"];
    all.extend_from_slice(args);
    all.push("--execute");
    let r = group(bootstrap, &all);
    r.ok();
    let plan = plan_table(&r, topic);
    let got: Vec<(i32, String)> = plan.iter().map(|(p, (_, new))| (*p, new.clone())).collect();
    let want: Vec<(i32, String)> = expected_new
        .iter()
        .map(|(p, o)| (*p, o.to_string()))
        .collect();
    assert_eq!(got, want, "NEW-OFFSET per partition differs:\n{}", r.show());
}

#[test]
fn group_lifecycle_list_describe_lag_reset_delete() {
    bounded(Duration::from_secs(600), || {
        let broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("group-cli");
        let g = unique("group-cli-g");
        create_topic(&bs, &topic, PARTITIONS);
        // Whole seconds, an hour ago: message k of each partition is at t0 + k s.
        let t0 = (now_ms() / 1000 - 3600) * 1000;
        produce_known(&bs, &topic, t0);

        let committed = [5i64, 7, 12, 20];
        let consumer = joined_consumer(&bs, &g, &topic, &committed);
        let some: Vec<Option<i64>> = committed.iter().map(|c| Some(*c)).collect();

        // list: Stable while the consumer is in the group.
        let r = wait_listed(&bs, &g, Some("Stable"));
        assert_eq!(
            listed(&r.stdout)[&g].1,
            "consumer",
            "protocol type:\n{}",
            r.show()
        );
        let r = group(&bs, &["list", "--state", "stable"]);
        assert!(
            listed(r.ok()).contains_key(&g),
            "--state stable should show {g}:\n{}",
            r.show()
        );
        let r = group(&bs, &["list", "--state", "Empty"]);
        assert!(
            !listed(r.ok()).contains_key(&g),
            "--state Empty should not show {g}:\n{}",
            r.show()
        );

        // describe: the member, its client id and its partitions, and the offsets.
        let d = group(&bs, &["describe", &g]);
        d.ok();
        assert_eq!(summary_value(&d, "Group"), g, "{}", d.show());
        assert_eq!(summary_value(&d, "State"), "Stable", "{}", d.show());
        assert_eq!(
            summary_value(&d, "Protocol type"),
            "consumer",
            "{}",
            d.show()
        );
        assert_eq!(summary_value(&d, "Members"), "1", "{}", d.show());
        let assignor = summary_value(&d, "Assignor");
        assert!(
            ["range", "roundrobin", "cooperative-sticky"].contains(&assignor.as_str()),
            "assignor {assignor:?}:\n{}",
            d.show()
        );
        let members = rows_after(&d.stdout, "MEMBER ID")
            .unwrap_or_else(|| panic!("no MEMBER ID table:\n{}", d.show()));
        assert_eq!(members.len(), 1, "one member expected:\n{}", d.show());
        let m = &members[0];
        assert!(m.len() >= 6, "member row {m:?}:\n{}", d.show());
        let member_id = m[0].clone();
        assert_eq!(m[1], "-", "no instance id expected:\n{}", d.show());
        assert_eq!(m[2], CLIENT_ID, "client id:\n{}", d.show());
        assert_eq!(
            m[4..].join(" "),
            format!("{topic}: 0,1,2,3"),
            "assignment:\n{}",
            d.show()
        );
        assert_eq!(
            lag_table(&d, &topic),
            expected_lag(&some, &member_id),
            "describe's offsets:\n{}",
            d.show()
        );

        // lag: exact committed offsets, log end offsets and lags, owned by the member.
        assert_lag(&bs, &g, &topic, &some, &member_id);

        // A dry run prints the plan (even while active) and changes nothing.
        let r = group(
            &bs,
            &["reset-offsets", &g, "--topic", &topic, "--to-earliest"],
        );
        r.ok();
        let plan = plan_table(&r, &topic);
        let want: BTreeMap<i32, (String, String)> = committed
            .iter()
            .enumerate()
            .map(|(p, c)| (p as i32, (c.to_string(), "0".to_string())))
            .collect();
        assert_eq!(
            plan,
            want,
            "dry-run plan (partition → current, new):\n{}",
            r.show()
        );
        assert!(
            r.stdout.contains("Dry run") && r.stdout.contains("--execute"),
            "{}",
            r.show()
        );
        assert_lag(&bs, &g, &topic, &some, &member_id);

        // --execute is refused while the consumer is active; nothing changes.
        let r = group(
            &bs,
            &[
                "reset-offsets",
                &g,
                "--topic",
                &topic,
                "--to-earliest",
                "--execute",
            ],
        );
        r.failed_with(1);
        let refusal = format!(
            "Assignments can only be reset if the group '{g}' is inactive, but the current state is Stable."
        );
        assert!(
            r.stderr.contains(&refusal),
            "expected {refusal:?}:\n{}",
            r.show()
        );
        assert_lag(&bs, &g, &topic, &some, &member_id);

        // delete is refused while the group has a member.
        let r = group(&bs, &["delete", &g]);
        r.failed_with(1);
        assert!(
            r.stderr.contains("NON_EMPTY_GROUP") && r.stderr.contains("active members"),
            "expected NON_EMPTY_GROUP and an explanation:\n{}",
            r.show()
        );
        wait_listed(&bs, &g, Some("Stable"));

        // The consumer leaves: the group is Empty, its offsets stay.
        bounded(Duration::from_secs(60), move || drop(consumer));
        wait_listed(&bs, &g, Some("Empty"));
        let d = group(&bs, &["describe", &g]);
        d.ok();
        assert_eq!(summary_value(&d, "State"), "Empty", "{}", d.show());
        assert_eq!(summary_value(&d, "Members"), "0", "{}", d.show());
        assert_eq!(
            lag_table(&d, &topic),
            expected_lag(&some, "-"),
            "{}",
            d.show()
        );
        assert_lag(&bs, &g, &topic, &some, "-");

        // Resets now commit.
        reset_executed(
            &bs,
            &[&g, "--topic", &topic, "--to-earliest"],
            &topic,
            &[(0, 0), (1, 0), (2, 0), (3, 0)],
        );
        assert_lag(&bs, &g, &topic, &[Some(0); 4], "-");

        let t01 = format!("{topic}:0,1");
        reset_executed(
            &bs,
            &[&g, "--topic", &t01, "--to-offset", "7"],
            &topic,
            &[(0, 7), (1, 7)],
        );
        assert_lag(&bs, &g, &topic, &[Some(7), Some(7), Some(0), Some(0)], "-");

        // --to-offset past the log end is clamped to it; --shift-by moves from the committed offset.
        let t2 = format!("{topic}:2");
        reset_executed(
            &bs,
            &[&g, "--topic", &t2, "--to-offset", "1000"],
            &topic,
            &[(2, 20)],
        );
        reset_executed(
            &bs,
            &[&g, "--topic", &t2, "--shift-by", "-3"],
            &topic,
            &[(2, 17)],
        );
        assert_lag(&bs, &g, &topic, &[Some(7), Some(7), Some(17), Some(0)], "-");

        reset_executed(
            &bs,
            &[&g, "--all-topics", "--to-latest"],
            &topic,
            &[(0, 20), (1, 20), (2, 20), (3, 20)],
        );
        assert_lag(&bs, &g, &topic, &[Some(20); 4], "-");

        // By time: the first record at or after the time.
        let ts = (t0 + 5000).to_string();
        reset_executed(
            &bs,
            &[&g, "--all-topics", "--to-timestamp", &ts],
            &topic,
            &[(0, 5), (1, 5), (2, 5), (3, 5)],
        );
        assert_lag(&bs, &g, &topic, &[Some(5); 4], "-");
        let ts = (t0 + 8500).to_string();
        reset_executed(
            &bs,
            &[&g, "--topic", &topic, "--to-timestamp", &ts],
            &topic,
            &[(0, 9), (1, 9), (2, 9), (3, 9)],
        );
        let dt = iso_utc(t0 + 12_000);
        reset_executed(
            &bs,
            &[&g, "--topic", &topic, "--to-datetime", &dt],
            &topic,
            &[(0, 12), (1, 12), (2, 12), (3, 12)],
        );
        assert_lag(&bs, &g, &topic, &[Some(12); 4], "-");
        let dt_z = format!("{}Z", iso_utc(t0 + 3000));
        reset_executed(
            &bs,
            &[&g, "--topic", &t01, "--to-datetime", &dt_z],
            &topic,
            &[(0, 3), (1, 3)],
        );
        // Later than every record: the log end, as Kafka does.
        let future = iso_utc(now_ms() + 86_400_000);
        reset_executed(
            &bs,
            &[&g, "--topic", &t2, "--to-datetime", &future],
            &topic,
            &[(2, 20)],
        );
        assert_lag(
            &bs,
            &g,
            &topic,
            &[Some(3), Some(3), Some(20), Some(12)],
            "-",
        );

        // Deleted once empty; then gone.
        let r = group(&bs, &["delete", &g]);
        assert!(
            r.ok().contains(&format!("Deleted group '{g}'")),
            "{}",
            r.show()
        );
        wait_listed(&bs, &g, None);
        let r = group(&bs, &["describe", &g]);
        r.failed_with(1);
        assert!(r.stderr.contains("does not exist"), "{}", r.show());
        drop(broker);
    });
}

#[test]
fn unknown_groups_are_named_as_such() {
    bounded(Duration::from_secs(300), || {
        let broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let g = unique("no-such-group");
        for sub in ["describe", "lag"] {
            let r = group(&bs, &[sub, &g]);
            r.failed_with(1);
            assert!(
                r.stderr
                    .contains(&format!("consumer group '{g}' does not exist")),
                "`{sub}` of an unknown group should say it does not exist:\n{}",
                r.show()
            );
        }
        let r = group(&bs, &["delete", &g]);
        r.failed_with(1);
        assert!(
            r.stderr.contains("GROUP_ID_NOT_FOUND") && r.stderr.contains("does not exist"),
            "delete of an unknown group:\n{}",
            r.show()
        );
        // A broker with no groups lists none, and says so.
        let r = group(&bs, &["list"]);
        assert!(!listed(r.ok()).contains_key(&g), "{}", r.show());
        drop(broker);
    });
}

#[test]
fn list_merges_the_groups_of_every_node() {
    bounded(Duration::from_secs(300), || {
        let broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("group-cli-merge");
        create_topic(&bs, &topic, 2);
        // Groups made by administrative commits (a reset of a group that does not exist yet),
        // until their coordinators are on both shards.
        let mut groups: BTreeMap<String, String> = BTreeMap::new();
        let mut nodes = std::collections::BTreeSet::new();
        for _ in 0..24 {
            if nodes.len() >= 2 && groups.len() >= 3 {
                break;
            }
            let g = unique("group-cli-merge-g");
            group(
                &bs,
                &[
                    "reset-offsets",
                    &g,
                    "--topic",
                    &topic,
                    "--to-earliest",
                    "--execute",
                ],
            )
            .ok();
            let d = group(&bs, &["describe", &g]);
            d.ok();
            assert_eq!(summary_value(&d, "State"), "Empty", "{}", d.show());
            assert_eq!(summary_value(&d, "Protocol type"), "-", "{}", d.show());
            let coordinator = summary_value(&d, "Coordinator");
            nodes.insert(
                coordinator
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("?")
                    .to_string(),
            );
            groups.insert(g, coordinator);
        }
        assert!(
            nodes.len() >= 2,
            "all {} groups have one coordinator ({groups:?}), so merging cannot be checked",
            groups.len()
        );
        let r = group(&bs, &["list"]);
        let seen = listed(r.ok());
        for g in groups.keys() {
            assert_eq!(
                seen.get(g),
                Some(&("Empty".to_string(), "-".to_string())),
                "`list` should show {g} (coordinated by {}) as Empty with no protocol type:\n{}",
                groups[g],
                r.show()
            );
        }
        let names: Vec<String> = rows_after(&r.stdout, "GROUP")
            .unwrap_or_default()
            .into_iter()
            .map(|row| row[0].clone())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "`list` is not sorted by name:\n{}", r.show());
        let r = group(&bs, &["list", "--state", "Stable,Dead"]);
        let seen = listed(r.ok());
        assert!(groups.keys().all(|g| !seen.contains_key(g)), "{}", r.show());
        drop(broker);
    });
}
