//! Partition reassignments (KIP-455) on three brokers × two shards (`tests/common/cluster.rs`),
//! driven by real clients and the `sluice topic reassign` command line:
//!
//! * a move under load: every replica of a partition of a replication-factor-3 topic
//!   (`min.insync.replicas=2`) moves to the other shard of its broker while an idempotent
//!   acks=all librdkafka producer writes to it; the plan is executed and verified with the
//!   CLI. No delivery fails, every acknowledged record is at its offset once, the new replicas
//!   are the ISR and byte-identical to the leader, and the old replicas' directories are gone;
//! * an unfinished move: with broker 3 stopped, a move to its other shard stays in progress —
//!   ListPartitionReassignments (API 46), `verify` and `list` show the replicas being added
//!   and removed — until it is cancelled, and the partition has its replicas back;
//! * raising a topic's replication factor from 1 to 3: `plan --replication-factor 3`, then
//!   `execute` and `verify`; every partition ends with three in-sync replicas whose logs are
//!   byte-identical to the leader's; plans that cannot be read, name an unknown node or an
//!   unknown topic are refused with clear errors.
mod common;
#[path = "common/chaos/replica_logs.rs"]
#[allow(dead_code)]
mod replica_logs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::*;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{CreateTopicsRequest, ListPartitionReassignmentsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::message::Message;
use replica_logs::{compare_to_leader, read_replica_log};

const BROKERS: u16 = 3;
const SHARDS: u16 = 2;
/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(600);
/// Upper bound for one step: a reassignment completing, replicas catching up.
const WAIT: Duration = Duration::from_secs(90);
/// `timeout_ms` of the admin requests the tests send.
const ADMIN_TIMEOUT_MS: i32 = 10_000;

/// One partition as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PartitionView {
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

/// The partitions of `topic` from Metadata at `addr`.
fn view_at(addr: SocketAddr, topic: &str) -> Option<BTreeMap<i32, PartitionView>> {
    let mut c = RawClient::try_connect_negotiated(addr, Duration::from_secs(3)).ok()?;
    let md = admin::metadata(&mut c).ok()?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    Some(
        t.partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    PartitionView {
                        leader: p.leader_id.0,
                        replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                        isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                    },
                )
            })
            .collect(),
    )
}

/// The partitions of `topic` from the first live broker that answers.
fn view(cluster: &Cluster, topic: &str) -> BTreeMap<i32, PartitionView> {
    cluster
        .live()
        .into_iter()
        .find_map(|n| view_at(cluster.broker(n).addr(0), topic))
        .unwrap_or_else(|| panic!("no live broker describes {topic}"))
}

/// Whether `p` has a leader and its ISR is exactly its replicas.
fn fully_in_sync(p: &PartitionView) -> bool {
    p.leader >= 0
        && p.isr.iter().collect::<BTreeSet<_>>() == p.replicas.iter().collect::<BTreeSet<_>>()
}

/// CreateTopics of `name` with `partitions` partitions of `replication_factor` replicas and
/// `configs`; waits until every partition is led and fully in sync.
fn create(cluster: &Cluster, name: &str, partitions: i32, rf: i16, configs: &[(&str, &str)]) {
    let mut c = RawClient::connect_negotiated(cluster.broker(1).addr(0));
    let version = c.version::<CreateTopicsRequest>(7);
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    let code = c.send(&request, version).expect("CreateTopics").topics[0].error_code;
    assert_eq!(code, errors::NONE, "CreateTopics {name}");
    let ready = wait_until(WAIT, Duration::from_millis(200), || {
        let v = view(cluster, name);
        v.len() == partitions as usize && v.values().all(fully_in_sync)
    });
    assert!(
        ready,
        "{name} not led and in sync: {:?}",
        view(cluster, name)
    );
}

/// Runs `sluice ARGS --bootstrap-server …` in `dir`; (exit code, stdout, stderr).
fn sluice(cluster: &Cluster, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let bootstrap = cluster.bootstrap_of(&cluster.live());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--bootstrap-server", &bootstrap]);
    let out = run_sluice_bounded(&all, dir, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("sluice {args:?} did not finish within 60 s"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "sluice {args:?} panicked:\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// Writes a plan moving `topic`'s partitions to the given replicas; its path.
fn write_plan(dir: &Path, name: &str, topic: &str, targets: &[(i32, Vec<i32>)]) -> PathBuf {
    let partitions: Vec<String> = targets
        .iter()
        .map(|(p, replicas)| {
            format!(r#"{{"topic":"{topic}","partition":{p},"replicas":{replicas:?}}}"#)
        })
        .collect();
    let path = dir.join(name);
    let plan = format!(r#"{{"version":1,"partitions":[{}]}}"#, partitions.join(","));
    std::fs::write(&path, plan).expect("write the plan");
    path
}

/// Runs `verify` until it reports every partition of `plan` complete (exit status 0).
fn verify_until_complete(cluster: &Cluster, dir: &Path, plan: &Path) -> String {
    let plan = plan.to_str().expect("a UTF-8 path");
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, stdout, stderr) = sluice(
            cluster,
            dir,
            &["topic", "reassign", "verify", "--plan", plan],
        );
        if code == 0 {
            return stdout;
        }
        assert!(
            Instant::now() < deadline,
            "the reassignment did not complete within {WAIT:?}; last verify:\n{stdout}{stderr}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The directory of the replica of `topic`-`partition` on `node`: its shard's own directory
/// when it has one there, else the partition's shared directory of its broker.
fn replica_dir(cluster: &Cluster, node: i32, topic: &str, partition: i32) -> PathBuf {
    let data = cluster.data_dir((node / 1000) as u16);
    let own = data.join(format!("shard-{}/{topic}-{partition}", node % 1000));
    if own.is_dir() {
        own
    } else {
        data.join(format!("{topic}-{partition}"))
    }
}

/// Waits until every replica of `topic`-`partition` holds the leader's log byte for byte up to
/// the high watermark; returns the high watermark.
fn replicas_identical(cluster: &Cluster, topic: &str, partition: i32) -> i64 {
    let mut last = String::new();
    let mut hw = 0;
    let same = wait_until(WAIT, Duration::from_millis(500), || {
        let p = view(cluster, topic)[&partition].clone();
        hw = watermarks(&cluster.bootstrap(), topic, partition).1;
        let leader = match read_replica_log(&replica_dir(cluster, p.leader, topic, partition)) {
            Ok(log) => log,
            Err(e) => {
                last = format!("leader {}: {e}", p.leader);
                return false;
            }
        };
        for node in p.replicas.iter().filter(|n| **n != p.leader) {
            let dir = replica_dir(cluster, *node, topic, partition);
            let diverged = match read_replica_log(&dir) {
                Ok(log) => compare_to_leader(&leader, &log, hw).map(|d| d.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(d) = diverged {
                last = format!("replica {node} ({}): {d}", dir.display());
                return false;
            }
        }
        true
    });
    assert!(
        same,
        "{topic}-{partition}: replicas differ from the leader: {last}"
    );
    hw
}

/// An idempotent acks=all producer writing `m-<id>` to partitions 0 and 1 of `topic` in turn
/// until `stop`; returns how many it sent once every delivery report is in.
fn produce_until(
    cluster: &Cluster,
    topic: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u64, Arc<DeliveryLog>)> {
    let bootstrap = cluster.bootstrap();
    let topic = topic.to_string();
    std::thread::spawn(move || {
        let (p, log) = producer(
            &bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("message.timeout.ms", "120000"),
            ],
        );
        let mut sent = 0u64;
        while !stop.load(Ordering::SeqCst) {
            for _ in 0..50 {
                let m = Msg {
                    value: Some(format!("m-{sent}").into_bytes()),
                    partition: Some((sent % 2) as i32),
                    ..Msg::default()
                };
                send(&p, &topic, sent as usize, &m, Instant::now() + WAIT);
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        wait_delivered(&p, &log, sent, WAIT);
        (sent, log)
    })
}

/// A reassignment in progress as ListPartitionReassignments lists it: (replicas, adding,
/// removing).
type Ongoing = (Vec<i32>, Vec<i32>, Vec<i32>);

/// ListPartitionReassignments for `topic`'s `partitions` at `addr`: partition → (replicas,
/// adding, removing).
fn listed(addr: SocketAddr, topic: &str, partitions: Vec<i32>) -> BTreeMap<i32, Ongoing> {
    let mut c = RawClient::connect_negotiated(addr);
    let version = c.version::<ListPartitionReassignmentsRequest>(0);
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_indexes(partitions)]));
    let resp = c
        .send(&request, version)
        .expect("ListPartitionReassignments");
    assert_eq!(resp.error_code, errors::NONE, "{resp:?}");
    let ids = |nodes: &[kafka_protocol::messages::BrokerId]| {
        nodes.iter().map(|n| n.0).collect::<Vec<_>>()
    };
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                p.partition_index,
                (
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                ),
            )
        })
        .collect()
}

/// The other shard of `node`'s broker (shard 0 ↔ 1).
fn other_shard(node: i32) -> i32 {
    node - node % 1000 + (1 - node % 1000)
}

#[test]
fn a_partition_moves_to_other_nodes_under_load_and_an_unfinished_move_is_cancelled() {
    bounded(TEST_LIMIT, || {
        let mut cluster = Cluster::start(BROKERS, SHARDS);
        let dir = tempfile::tempdir().expect("a plan directory");
        let topic = unique("moving");
        create(&cluster, &topic, 2, 3, &[("min.insync.replicas", "2")]);
        let before = view(&cluster, &topic);
        let old = before[&0].replicas.clone();
        let target: Vec<i32> = old.iter().map(|n| other_shard(*n)).collect();

        // Writes throughout: before, during and after the move.
        let stop = Arc::new(AtomicBool::new(false));
        let writer = produce_until(&cluster, &topic, stop.clone());
        std::thread::sleep(Duration::from_secs(2));
        let plan = write_plan(dir.path(), "move.json", &topic, &[(0, target.clone())]);
        let (code, stdout, stderr) = sluice(
            &cluster,
            dir.path(),
            &[
                "topic",
                "reassign",
                "execute",
                "--plan",
                plan.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "execute:\n{stdout}{stderr}");
        assert!(
            stdout.contains(&format!(r#""partition":0,"replicas":{old:?}"#).replace(' ', "")),
            "the current assignment, to roll back:\n{stdout}"
        );
        assert!(stdout.contains("started"), "{stdout}");
        let verified = verify_until_complete(&cluster, dir.path(), &plan);
        assert!(
            verified.contains("1 complete, 0 in progress, 0 failed."),
            "{verified}"
        );
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        let (sent, log) = writer.join().expect("the producer thread");
        eprintln!("{sent} records written while {topic}-0 moved from {old:?} to {target:?}");
        assert_eq!(
            (log.acked(), log.failed()),
            (sent, 0),
            "deliveries failed: {:?}",
            log.first_failures(5)
        );

        // The new replicas are the partition and its ISR; the other partition is untouched.
        let after = view(&cluster, &topic);
        assert_eq!(after[&0].replicas, target);
        assert!(
            fully_in_sync(&after[&0]) && target.contains(&after[&0].leader),
            "{after:?}"
        );
        assert_eq!(after[&1].replicas, before[&1].replicas);

        // Every acknowledged record is at its offset, once.
        let acked: HashMap<usize, Acked> = log.acked.lock().unwrap().clone();
        let bootstrap = cluster.bootstrap();
        let ranges: Vec<(i32, i64, i64)> = (0..2)
            .map(|p| {
                let (low, high) = watermarks(&bootstrap, &topic, p);
                (p, low, high)
            })
            .collect();
        let mut stored: HashMap<(i32, i64), String> = HashMap::new();
        let mut seen: HashMap<String, u32> = HashMap::new();
        consume(&bootstrap, &topic, &ranges, WAIT, Duration::ZERO, |m| {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            *seen.entry(value.clone()).or_default() += 1;
            stored.insert((m.partition(), m.offset()), value);
        });
        for (id, at) in &acked {
            assert_eq!(
                stored.get(&(at.partition, at.offset)).map(String::as_str),
                Some(format!("m-{id}").as_str()),
                "acknowledged record {id} at {at:?}"
            );
        }
        let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(doubled.is_empty(), "records stored twice: {doubled:?}");
        assert_eq!(stored.len() as u64, sent, "records in the log");

        // The new replicas hold the leader's log; the old ones are gone from disk.
        replicas_identical(&cluster, &topic, 0);
        for node in &old {
            let broker = (node / 1000) as u16;
            let shared = cluster.data_dir(broker).join(format!("{topic}-0"));
            let own = cluster
                .data_dir(broker)
                .join(format!("shard-{}/{topic}-0", node % 1000));
            let gone = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
                !shared.exists() && !own.exists()
            });
            assert!(
                gone,
                "the directory of removed replica {node} is still there ({} / {}): a shard must close and delete a replica that leaves it (engine/src/shard.rs apply_metadata)",
                shared.display(),
                own.display()
            );
        }
        let leftovers: Vec<String> = cluster
            .ids()
            .iter()
            .flat_map(|b| {
                std::fs::read_dir(cluster.data_dir(*b))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("{topic}-0.")) && n.ends_with("-delete"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "directories left to delete: {leftovers:?}"
        );

        // An unfinished move: broker 3 is stopped, so a replica added on it cannot catch up.
        cluster.stop(3);
        let p1 = view(&cluster, &topic)[&1].clone();
        let on_3 = *p1
            .replicas
            .iter()
            .find(|n| **n / 1000 == 3)
            .expect("a replica on broker 3");
        let moved: Vec<i32> = p1
            .replicas
            .iter()
            .map(|n| if *n == on_3 { other_shard(*n) } else { *n })
            .collect();
        let plan = write_plan(dir.path(), "stuck.json", &topic, &[(1, moved.clone())]);
        let plan = plan.to_str().unwrap();
        let (code, stdout, stderr) = sluice(
            &cluster,
            dir.path(),
            &["topic", "reassign", "execute", "--plan", plan],
        );
        assert_eq!(code, 0, "execute:\n{stdout}{stderr}");
        let mut expected_replicas = moved.clone();
        expected_replicas.push(on_3);
        let list = listed(cluster.broker(1).addr(1), &topic, vec![0, 1]);
        assert_eq!(
            list,
            BTreeMap::from([(
                1,
                (
                    expected_replicas.clone(),
                    vec![other_shard(on_3)],
                    vec![on_3]
                )
            )]),
            "ListPartitionReassignments"
        );
        let (code, stdout, _) = sluice(
            &cluster,
            dir.path(),
            &["topic", "reassign", "verify", "--plan", plan],
        );
        assert_eq!(code, 1, "verify of an unfinished move:\n{stdout}");
        assert!(
            stdout.contains("in progress")
                && stdout.contains("0 complete, 1 in progress, 0 failed."),
            "{stdout}"
        );
        let (code, stdout, _) = sluice(&cluster, dir.path(), &["topic", "reassign", "list"]);
        assert_eq!(code, 0);
        let row: Vec<String> = stdout
            .lines()
            .find(|l| l.starts_with(&topic))
            .unwrap_or_else(|| panic!("list shows no move:\n{stdout}"))
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let text = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        assert_eq!(
            row,
            [
                topic.clone(),
                "1".into(),
                text(&expected_replicas),
                other_shard(on_3).to_string(),
                on_3.to_string()
            ]
        );

        // Cancelled: the partition has its replicas back, and nothing is in progress.
        let (code, stdout, stderr) = sluice(
            &cluster,
            dir.path(),
            &["topic", "reassign", "cancel", "--plan", plan],
        );
        assert_eq!(code, 0, "cancel:\n{stdout}{stderr}");
        assert!(stdout.contains("cancelled"), "{stdout}");
        assert!(listed(cluster.broker(2).addr(0), &topic, vec![1]).is_empty());
        let back = wait_until(WAIT, Duration::from_millis(200), || {
            let p = view(&cluster, &topic)[&1].clone();
            p.replicas.iter().collect::<BTreeSet<_>>()
                == p1.replicas.iter().collect::<BTreeSet<_>>()
        });
        assert!(back, "{:?}", view(&cluster, &topic));
        let (code, stdout, _) = sluice(
            &cluster,
            dir.path(),
            &["topic", "reassign", "cancel", "--plan", plan],
        );
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stdout.contains("(85): No partition reassignment is in progress."),
            "NO_REASSIGNMENT_IN_PROGRESS: {stdout}"
        );
    })
}

#[test]
fn raising_the_replication_factor_from_one_to_three() {
    bounded(TEST_LIMIT, || {
        let cluster = Cluster::start(BROKERS, SHARDS);
        let dir = tempfile::tempdir().expect("a plan directory");
        let topic = unique("growing");
        create(&cluster, &topic, 3, 1, &[]);
        let (p, log) = producer(&cluster.bootstrap(), &[("acks", "all"), ("linger.ms", "5")]);
        let count = 3_000u64;
        for id in 0..count {
            let m = Msg {
                value: Some(filler(id, 200)),
                partition: Some((id % 3) as i32),
                ..Msg::default()
            };
            send(&p, &topic, id as usize, &m, Instant::now() + WAIT);
        }
        wait_delivered(&p, &log, count, WAIT);
        assert_eq!(log.failed(), 0, "{:?}", log.first_failures(5));

        // The plan: three replicas per partition, on distinct brokers, leaders spread.
        let (code, plan, stderr) = sluice(
            &cluster,
            dir.path(),
            &[
                "topic",
                "reassign",
                "plan",
                "--topics",
                &topic,
                "--brokers",
                "1,2,3",
                "--replication-factor",
                "3",
            ],
        );
        assert_eq!(code, 0, "plan:\n{plan}{stderr}");
        assert!(stderr.contains("Current assignment"), "{stderr}");
        let parsed: serde_json::Value =
            serde_json::from_str(plan.trim()).expect("the plan is JSON");
        assert_eq!(parsed["version"], 1);
        let targets: BTreeMap<i32, Vec<i32>> = parsed["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .map(|p| {
                assert_eq!(p["topic"], topic.as_str());
                let replicas: Vec<i32> = p["replicas"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_i64().unwrap() as i32)
                    .collect();
                (p["partition"].as_i64().unwrap() as i32, replicas)
            })
            .collect();
        assert_eq!(targets.len(), 3, "{plan}");
        for replicas in targets.values() {
            let brokers: BTreeSet<i32> = replicas.iter().map(|n| n / 1000).collect();
            assert_eq!(
                brokers.len(),
                3,
                "replicas on distinct brokers: {replicas:?}"
            );
        }
        let leaders: BTreeSet<i32> = targets.values().map(|r| r[0] / 1000).collect();
        assert_eq!(
            leaders.len(),
            3,
            "leaders spread over the brokers: {targets:?}"
        );
        let path = dir.path().join("grow.json");
        std::fs::write(&path, &plan).unwrap();

        // Bad plans: clear errors, nothing changes.
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{}").unwrap();
        let (code, _, stderr) = sluice(
            &cluster,
            dir.path(),
            &[
                "topic",
                "reassign",
                "execute",
                "--plan",
                bad.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 1);
        assert!(stderr.contains("not a reassignment plan"), "{stderr}");
        let unknown = write_plan(dir.path(), "unknown.json", &topic, &[(0, vec![1000, 9000])]);
        let (code, stdout, _) = sluice(
            &cluster,
            dir.path(),
            &[
                "topic",
                "reassign",
                "execute",
                "--plan",
                unknown.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stdout.contains("INVALID_REPLICA_ASSIGNMENT (39): The manual partition assignment includes node 9000, but no such node exists"),
            "{stdout}"
        );
        let missing = write_plan(
            dir.path(),
            "missing.json",
            "no-such-topic",
            &[(0, vec![1000])],
        );
        let (code, _, stderr) = sluice(
            &cluster,
            dir.path(),
            &[
                "topic",
                "reassign",
                "execute",
                "--plan",
                missing.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 1);
        assert!(
            stderr.contains("topic 'no-such-topic' does not exist"),
            "{stderr}"
        );
        assert!(view(&cluster, &topic)
            .values()
            .all(|p| p.replicas.len() == 1));

        let (code, stdout, stderr) = sluice(
            &cluster,
            dir.path(),
            &[
                "topic",
                "reassign",
                "execute",
                "--plan",
                path.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "execute:\n{stdout}{stderr}");
        verify_until_complete(&cluster, dir.path(), &path);
        let after = view(&cluster, &topic);
        for (partition, replicas) in &targets {
            let p = &after[partition];
            assert_eq!(&p.replicas, replicas);
            assert!(fully_in_sync(p), "partition {partition}: {p:?}");
            let hw = replicas_identical(&cluster, &topic, *partition);
            assert_eq!(
                hw,
                (count / 3) as i64,
                "partition {partition}'s high watermark"
            );
        }
    })
}
