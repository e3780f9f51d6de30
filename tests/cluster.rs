//! A cluster of three brokers with two shards each, laid out as the README's "Run a cluster"
//! recipe (see `tests/common/cluster.rs`), driven by real clients:
//!
//! * a 12-partition topic's leaders spread over all three brokers; 200,000 keyed messages
//!   round-trip intact; a three-member group splits a topic and reads it exactly once; admin
//!   requests get the same answers from every shard of every broker; `sluice cluster status`
//!   (tables and `--json`) describes the cluster;
//! * controller failover: the active controller is killed (`kill -9`) while a client loops over
//!   CreateTopics, IncrementalAlterConfigs and DeleteTopics; a new leader is elected in a higher
//!   epoch each time, no epoch ever has two leaders, the killed node catches up, and every
//!   acknowledged change is visible on every broker (`SLUICE_FAILOVER_KILLS`, default 3; the
//!   long run `tests/long/controller-failover.sh` asks for 20);
//! * a full-cluster stop and start keeps topics, ids, placements, leaders, configs, SCRAM users
//!   and committed offsets;
//! * with two of three voters down, CreateTopics fails within its timeout while produce and
//!   fetch on the live broker's partitions keep working;
//! * a broker whose heartbeats stop (SIGSTOP) is fenced: its nodes leave Metadata and its
//!   partitions answer LEADER_NOT_AVAILABLE; after SIGCONT it is unfenced and serves its
//!   partitions again with their data intact;
//! * a topic with replication factor 3 has its replicas on the three brokers, in sync, led by
//!   the first, leaders on every broker; a factor above the node count is refused; ElectLeaders
//!   answers per partition; a SIGTERM (controlled shutdown) moves every leadership of the
//!   stopping broker to another in-sync replica and takes its nodes out of the ISRs before it
//!   exits;
//! * the recipe's files (`config/cluster/broker-N.properties`) pass `--check-config`.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::group::{self, GroupConsumer};
use common::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, ElectLeadersRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const BROKERS: u16 = 3;
const SHARDS: u16 = 2;
/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(600);
/// Upper bound for one step: an election, a broker catching up, a group settling.
const WAIT: Duration = Duration::from_secs(90);
/// `timeout_ms` of the admin requests the tests send.
const ADMIN_TIMEOUT_MS: i32 = 10_000;

/// The broker (`node.id`) a shard node belongs to.
fn broker_of(node: i32) -> u16 {
    (node / 1000) as u16
}

/// Partition → leader node of `topic`, from Metadata at `addr`.
fn leaders_at(addr: SocketAddr, topic: &str) -> BTreeMap<i32, i32> {
    let mut c = RawClient::connect_negotiated(addr);
    let md = admin::metadata(&mut c).expect("Metadata");
    md.topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
        .unwrap_or_else(|| panic!("{topic} not in Metadata"))
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect()
}

// ---------------------------------------------------------------------------
// Placement, data path, groups, admin answers, `sluice cluster status`
// ---------------------------------------------------------------------------

#[test]
fn three_brokers_serve_one_cluster() {
    bounded(TEST_LIMIT, || {
        let cluster = Cluster::start(BROKERS, SHARDS);
        let bs = cluster.bootstrap();

        // A 12-partition topic: leaders on every broker.
        let topic = unique("spread");
        create_topic(&bs, &topic, 12);
        let leaders = leaders_at(cluster.broker(1).addr(0), &topic);
        let brokers: BTreeSet<u16> = leaders.values().map(|n| broker_of(*n)).collect();
        assert_eq!(
            brokers,
            cluster.ids().into_iter().collect(),
            "leaders {leaders:?} are not spread over every broker"
        );
        let nodes: BTreeSet<i32> = cluster.all_nodes().into_iter().collect();
        assert!(leaders.values().all(|n| nodes.contains(n)), "{leaders:?}");

        // 200,000 keyed messages, exactly as on one broker.
        keyed::round_trip(&bs, &topic, 12, 200_000, "lz4");

        group_splits_a_topic_exactly_once(&bs);
        admin_answers_agree_on_every_node(&cluster, &topic);
        cluster_status_describes_the_cluster(&cluster);
    })
}

/// Three members of one group split a 12-partition topic four partitions each and read every
/// message exactly once.
fn group_splits_a_topic_exactly_once(bs: &str) {
    const N: usize = 12_000;
    let topic = unique("group");
    create_topic(bs, &topic, 12);
    let name = unique("g");
    let members: Vec<GroupConsumer> = (0..3)
        .map(|i| GroupConsumer::start(bs, &name, &topic, &format!("m{i}"), &[]))
        .collect();
    let refs: Vec<&GroupConsumer> = members.iter().collect();
    group::wait_split(&refs, 12, 4, WAIT);
    group::produce(bs, &topic, 0..N, |id| id as i32 % 12);
    group::wait_exactly_once(&refs, N, 12, WAIT, Duration::from_secs(2));
}

/// What a node answers to the admin requests, made comparable: lists sorted, and the parts
/// that legitimately differ per receiver left out: the throttle time, and the controller id,
/// which Kafka 4 brokers answer with any live broker (clients send admin requests there and
/// the broker forwards them), so it is only checked to be a listed node.
fn admin_answers(addr: SocketAddr, topic: &str) -> String {
    let mut c = RawClient::connect_negotiated(addr);
    let mut md = admin::metadata(&mut c).expect("Metadata");
    md.throttle_time_ms = 0;
    md.brokers.sort_by_key(|b| b.node_id.0);
    assert!(
        md.brokers.iter().any(|b| b.node_id == md.controller_id),
        "Metadata at {addr}: controller {:?} is not a listed node",
        md.controller_id
    );
    md.controller_id = BrokerId(-1);
    md.topics.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &mut md.topics {
        t.partitions.sort_by_key(|p| p.partition_index);
    }
    let mut cluster = admin::describe_cluster(&mut c).expect("DescribeCluster");
    cluster.throttle_time_ms = 0;
    cluster.brokers.sort_by_key(|b| b.broker_id.0);
    assert!(
        cluster
            .brokers
            .iter()
            .any(|b| b.broker_id == cluster.controller_id),
        "DescribeCluster at {addr}: controller {:?} is not a listed node",
        cluster.controller_id
    );
    cluster.controller_id = BrokerId(-1);
    let topic_configs =
        admin::describe_configs(&mut c, admin::TOPIC_RESOURCE, topic).expect("DescribeConfigs");
    let defaults =
        admin::describe_configs(&mut c, admin::BROKER_RESOURCE, "").expect("DescribeConfigs");
    let duplicate =
        admin::create_topic(&mut c, topic, 12, &[], ADMIN_TIMEOUT_MS).expect("CreateTopics");
    assert_eq!(
        duplicate,
        errors::TOPIC_ALREADY_EXISTS,
        "CreateTopics of an existing topic at {addr}"
    );
    format!("{md:?}\n{cluster:?}\n{topic_configs:?}\n{defaults:?}\n{duplicate}")
}

/// Metadata, DescribeCluster, DescribeConfigs and a duplicate CreateTopics give the same
/// answers whichever shard of whichever broker receives them (each bootstrapped alone).
fn admin_answers_agree_on_every_node(cluster: &Cluster, topic: &str) {
    let nodes = cluster.node_addrs();
    let (first, addr) = nodes[0];
    let want = admin_answers(addr, topic);
    for (node, addr) in &nodes[1..] {
        let got = admin_answers(*addr, topic);
        assert!(
            got == want,
            "node {node} answers differently from node {first}:\n{got}\n--- vs ---\n{want}"
        );
    }
}

/// Runs `sluice cluster status ARGS` against the cluster; its stdout.
fn cluster_status(cluster: &Cluster, args: &[&str]) -> String {
    let bootstrap = cluster.bootstrap();
    let mut all = vec!["cluster", "status", "--bootstrap-server", &bootstrap];
    all.extend_from_slice(args);
    let out = run_sluice_bounded(&all, &std::env::temp_dir(), Duration::from_secs(60))
        .unwrap_or_else(|| panic!("sluice cluster status {args:?} did not finish within 60 s"));
    assert!(
        out.status.success(),
        "sluice cluster status {args:?} exited with {}:\n{}",
        out.status,
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sluice cluster status --json` lists the three brokers with their shard nodes, unfenced,
/// and the quorum with its leader among the voters and each lag the leader's log end offset
/// minus the voter's; the table form says the same.
fn cluster_status_describes_the_cluster(cluster: &Cluster) {
    let json: serde_json::Value = serde_json::from_str(&cluster_status(cluster, &["--json"]))
        .expect("--json prints one JSON object");
    let brokers: Vec<(i64, Vec<i64>, bool)> = json["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .map(|b| {
            let nodes = b["nodes"].as_array().expect("nodes");
            (
                b["id"].as_i64().expect("id"),
                nodes.iter().map(|n| n.as_i64().expect("node")).collect(),
                b["fenced"].as_bool().expect("fenced"),
            )
        })
        .collect();
    let want: Vec<(i64, Vec<i64>, bool)> = cluster
        .ids()
        .into_iter()
        .map(|n| {
            let nodes = cluster.nodes_of(n).into_iter().map(i64::from).collect();
            (i64::from(n), nodes, false)
        })
        .collect();
    assert_eq!(brokers, want, "{json}");
    let quorum = &json["quorum"];
    let leader = quorum["leader"].as_i64().expect("leader");
    assert!(quorum["epoch"].as_i64().expect("epoch") >= 1, "{json}");
    let voters = quorum["voters"].as_array().expect("voters");
    let ids: Vec<i64> = voters
        .iter()
        .map(|v| v["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![1, 2, 3], "{json}");
    assert!(
        ids.contains(&leader),
        "leader {leader} is not a voter: {json}"
    );
    let end_of = |id: i64| {
        voters.iter().find(|v| v["id"] == id).expect("voter")["log_end_offset"]
            .as_i64()
            .expect("log_end_offset")
    };
    for v in voters {
        assert_eq!(
            v["lag"].as_i64(),
            Some(end_of(leader) - v["log_end_offset"].as_i64().expect("log_end_offset")),
            "{json}"
        );
    }
    let text = cluster_status(cluster, &[]);
    assert!(text.starts_with("BROKER  NODES"), "{text}");
    assert!(
        text.contains(&format!("Quorum: leader {leader}, epoch")),
        "{text}"
    );
    for n in cluster.ids() {
        let nodes: Vec<String> = cluster.nodes_of(n).iter().map(|n| n.to_string()).collect();
        assert!(text.contains(&nodes.join(",")), "{text}");
    }
}

/// The README's recipe files (`config/cluster/broker-N.properties`) are valid configurations
/// of broker N, a voter of the three-voter quorum with its client and controller listeners.
#[test]
fn readme_recipe_files_are_valid() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for n in 1..=3 {
        let file = repo.join(format!("config/cluster/broker-{n}.properties"));
        let file = file.to_str().expect("UTF-8 path");
        let out = run_sluice_bounded(
            &["start", "--config", file, "--cores", "2", "--check-config"],
            &std::env::temp_dir(),
            Duration::from_secs(60),
        )
        .expect("--check-config finishes");
        let text = output_text(&out);
        assert!(out.status.success(), "{file}: {text}");
        for want in [
            format!("node.id={n}"),
            "process.roles=broker,controller".to_string(),
            format!("PLAINTEXT://127.0.0.1:19{n}92"),
            format!("CONTROLLER://127.0.0.1:19{n}99"),
            "1@127.0.0.1:19199,2@127.0.0.1:19299,3@127.0.0.1:19399".to_string(),
        ] {
            assert!(text.contains(&want), "{file}: no {want} in {text}");
        }
    }
}

// ---------------------------------------------------------------------------
// Controller failover
// ---------------------------------------------------------------------------

/// The admin changes the client loop got an answer of success for.
#[derive(Debug, Default)]
struct Ledger {
    /// Topics created (acknowledged).
    created: BTreeSet<String>,
    /// Topic → the `retention.ms` acknowledged for it.
    altered: BTreeMap<String, String>,
    /// Topics a delete was sent for (acknowledged or not: their state is then unknown).
    delete_sent: BTreeSet<String>,
    /// Topics deleted (acknowledged).
    deleted: BTreeSet<String>,
    /// Requests without a successful answer (connection lost, timed out, error code).
    failed: u64,
}

impl Ledger {
    fn acknowledged(&self) -> usize {
        self.created.len() + self.altered.len() + self.deleted.len()
    }
}

/// Loops CreateTopics, IncrementalAlterConfigs and (every third topic) DeleteTopics over
/// `addrs` until `stop`, moving to the next address whenever one fails.
fn admin_loop(
    addrs: Vec<SocketAddr>,
    prefix: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut at = 0;
    let mut conn: Option<RawClient> = None;
    let mut i = 0u64;
    // One request: Some(error code) if it was answered, None if the connection failed.
    let mut request = |f: &mut dyn FnMut(&mut RawClient) -> std::io::Result<i16>| {
        if conn.is_none() {
            match RawClient::try_connect_negotiated(addrs[at], Duration::from_secs(20)) {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    at = (at + 1) % addrs.len();
                    std::thread::sleep(Duration::from_millis(50));
                    return None;
                }
            }
        }
        let answer = f(conn.as_mut().expect("connected above")).ok();
        if answer.is_none() {
            conn = None;
            at = (at + 1) % addrs.len();
        }
        answer
    };
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let topic = format!("{prefix}-{i}");
        let created = request(&mut |c| admin::create_topic(c, &topic, 1, &[], ADMIN_TIMEOUT_MS));
        if created == Some(errors::NONE) {
            ledger.lock().unwrap().created.insert(topic.clone());
            let value = (1_000_000 + i).to_string();
            match request(&mut |c| admin::set_topic_config(c, &topic, "retention.ms", &value)) {
                Some(errors::NONE) => {
                    ledger.lock().unwrap().altered.insert(topic.clone(), value);
                }
                _ => ledger.lock().unwrap().failed += 1,
            }
        } else {
            ledger.lock().unwrap().failed += 1;
        }
        if i.is_multiple_of(3) {
            let victim = format!("{prefix}-{}", i - 2);
            if ledger.lock().unwrap().created.contains(&victim) {
                ledger.lock().unwrap().delete_sent.insert(victim.clone());
                match request(&mut |c| admin::delete_topic(c, &victim, ADMIN_TIMEOUT_MS)) {
                    Some(errors::NONE) => {
                        ledger.lock().unwrap().deleted.insert(victim);
                    }
                    _ => ledger.lock().unwrap().failed += 1,
                }
            }
        }
    }
}

/// Every (epoch → leaders) that DescribeQuorum reported at `addrs` until `stop`.
fn watch_quorum(
    addrs: Vec<SocketAddr>,
    seen: Arc<Mutex<BTreeMap<i32, BTreeSet<i32>>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        for addr in &addrs {
            if let Ok(q) = describe_quorum_at(*addr, Duration::from_secs(2)) {
                if q.leader >= 0 {
                    seen.lock()
                        .unwrap()
                        .entry(q.epoch)
                        .or_default()
                        .insert(q.leader);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What broker `addr` shows of the ledger's topics that disagrees with it (empty: all good).
fn ledger_mismatches(addr: SocketAddr, prefix: &str, ledger: &Ledger) -> Vec<String> {
    let Ok(mut c) = RawClient::try_connect_negotiated(addr, Duration::from_secs(10)) else {
        return vec![format!("{addr} unreachable")];
    };
    let Ok(md) = admin::metadata(&mut c) else {
        return vec![format!("{addr}: Metadata failed")];
    };
    let present: BTreeSet<String> = md
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .filter(|n| n.starts_with(prefix))
        .collect();
    let mut bad = Vec::new();
    for t in &ledger.deleted {
        if present.contains(t) {
            bad.push(format!("{addr}: deleted topic {t} still listed"));
        }
    }
    for t in ledger.created.difference(&ledger.delete_sent) {
        if !present.contains(t) {
            bad.push(format!("{addr}: created topic {t} missing"));
            continue;
        }
        if let Some(want) = ledger.altered.get(t) {
            match admin::describe_configs(&mut c, admin::TOPIC_RESOURCE, t) {
                Ok((0, configs)) => {
                    let got = configs.get("retention.ms").and_then(|c| c.0.clone());
                    if got.as_deref() != Some(want.as_str()) {
                        bad.push(format!("{addr}: {t} retention.ms {got:?}, want {want}"));
                    }
                }
                other => bad.push(format!("{addr}: DescribeConfigs {t}: {other:?}")),
            }
        }
    }
    bad
}

#[test]
fn controller_failover_keeps_every_acknowledged_change() {
    let kills: usize = std::env::var("SLUICE_FAILOVER_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(3);
    bounded(TEST_LIMIT + WAIT * kills as u32, move || {
        let mut cluster = Cluster::start(BROKERS, SHARDS);
        let addrs: Vec<SocketAddr> = cluster
            .ids()
            .iter()
            .map(|n| cluster.broker(*n).addr(0))
            .collect();
        let prefix = unique("fo");
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let epochs = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let client = {
            let (addrs, prefix, ledger, stop) =
                (addrs.clone(), prefix.clone(), ledger.clone(), stop.clone());
            std::thread::spawn(move || admin_loop(addrs, prefix, ledger, stop))
        };
        let watcher = {
            let (addrs, epochs, stop) = (addrs.clone(), epochs.clone(), stop.clone());
            std::thread::spawn(move || watch_quorum(addrs, epochs, stop))
        };

        let mut elections = Vec::new();
        for kill in 1..=kills {
            let (leader, epoch) = cluster.wait_active_controller(WAIT);
            // Let the client get some changes through under this leader first.
            let before = ledger.lock().unwrap().acknowledged();
            assert!(
                wait_until(WAIT, Duration::from_millis(50), || {
                    ledger.lock().unwrap().acknowledged() >= before + 3
                }),
                "the admin client made no progress under controller {leader}: {:?}",
                ledger.lock().unwrap()
            );
            let killed = leader as u16;
            let t0 = Instant::now();
            cluster.kill9(killed);
            let mut elected = None;
            let ok = wait_until(WAIT, Duration::from_millis(20), || {
                elected = cluster
                    .active_controller()
                    .filter(|(l, e)| *l != leader && *e > epoch);
                elected.is_some()
            });
            assert!(
                ok,
                "no new controller within {WAIT:?} after killing {leader} (epoch {epoch})"
            );
            let (new_leader, new_epoch) = elected.expect("checked above");
            let election = t0.elapsed();

            let t1 = Instant::now();
            cluster.start_again(killed);
            cluster.wait_nodes(&cluster.all_nodes(), WAIT);
            let target = cluster
                .describe_quorum()
                .and_then(|q| q.log_end_offset(q.leader))
                .expect("leader's log end offset");
            let caught_up = wait_until(WAIT, Duration::from_millis(100), || {
                cluster
                    .describe_quorum()
                    .and_then(|q| q.log_end_offset(leader))
                    .is_some_and(|end| end >= target)
            });
            assert!(
                caught_up,
                "restarted node {leader} did not reach log end offset {target}"
            );
            println!(
                "kill {kill}/{kills}: controller {leader} (epoch {epoch}) killed; {new_leader} \
                 elected in epoch {new_epoch} after {} ms; node {leader} back and caught up \
                 (log end offset {target}) after {} ms",
                election.as_millis(),
                t1.elapsed().as_millis()
            );
            elections.push((new_epoch, election));
        }
        stop.store(true, Ordering::SeqCst);
        client.join().expect("admin client thread");
        watcher.join().expect("quorum watcher thread");

        let epochs = epochs.lock().unwrap().clone();
        let doubled: Vec<_> = epochs.iter().filter(|(_, l)| l.len() > 1).collect();
        assert!(
            doubled.is_empty(),
            "epochs with two leaders: {doubled:?} (all: {epochs:?})"
        );
        assert!(
            elections.windows(2).all(|w| w[0].0 < w[1].0),
            "epochs did not increase: {elections:?}"
        );

        let ledger = ledger.lock().unwrap();
        let mut bad = Vec::new();
        let visible = wait_until(WAIT, Duration::from_millis(500), || {
            bad = cluster
                .node_addrs()
                .into_iter()
                .flat_map(|(_, addr)| ledger_mismatches(addr, &prefix, &ledger))
                .collect();
            bad.is_empty()
        });
        assert!(
            visible,
            "acknowledged changes not visible everywhere: {:?}",
            &bad[..bad.len().min(20)]
        );
        let slowest = elections.iter().map(|e| e.1).max().unwrap_or_default();
        println!(
            "failover summary: {kills} kills, {} elections (slowest {} ms), {} creates, {} \
             alters and {} deletes acknowledged and visible on every node, {} requests failed, \
             {} epochs seen, none with two leaders",
            elections.len(),
            slowest.as_millis(),
            ledger.created.len(),
            ledger.altered.len(),
            ledger.deleted.len(),
            ledger.failed,
            epochs.len()
        );
    })
}

// ---------------------------------------------------------------------------
// Replicated partitions: placement, ElectLeaders, controlled shutdown
// ---------------------------------------------------------------------------

/// INVALID_REPLICATION_FACTOR.
const INVALID_REPLICATION_FACTOR: i16 = 38;
/// ELECTION_NOT_NEEDED.
const ELECTION_NOT_NEEDED: i16 = 84;
/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// One partition as Metadata describes it: (leader, replicas, ISR, error code).
type Replicated = (i32, Vec<i32>, Vec<i32>, i16);

/// Partition → its description, for `topic` from Metadata at `addr`.
fn replicated_at(addr: SocketAddr, topic: &str) -> BTreeMap<i32, Replicated> {
    let mut c = RawClient::connect_negotiated(addr);
    let version = c.version::<MetadataRequest>(12);
    let md = c
        .send(
            &MetadataRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(topic.to_string())))),
            ])),
            version,
        )
        .expect("Metadata");
    let ids = |nodes: &[BrokerId]| nodes.iter().map(|n| n.0).collect::<Vec<_>>();
    md.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                (
                    p.leader_id.0,
                    ids(&p.replica_nodes),
                    ids(&p.isr_nodes),
                    p.error_code,
                ),
            )
        })
        .collect()
}

/// CreateTopics of `name` with `partitions` partitions of `replication_factor` replicas; the
/// error code.
fn create_replicated(
    c: &mut RawClient,
    name: &str,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    let version = c.version::<CreateTopicsRequest>(7);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)])
        .with_timeout_ms(ADMIN_TIMEOUT_MS);
    c.send(&request, version).expect("CreateTopics").topics[0].error_code
}

/// ElectLeaders of `election_type` for `partitions` (`None`: every partition): the
/// request-level error and (topic, partition, error code) per result.
fn elect(
    c: &mut RawClient,
    election_type: i8,
    partitions: Option<Vec<(&str, Vec<i32>)>>,
) -> (i16, Vec<(String, i32, i16)>) {
    let version = c.version::<ElectLeadersRequest>(2);
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topic_partitions(partitions.map(|ps| {
            ps.into_iter()
                .map(|(t, p)| {
                    TopicPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(p)
                })
                .collect()
        }));
    let resp = c.send(&request, version).expect("ElectLeaders");
    let results = resp
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.0.to_string(), p.partition_id, p.error_code))
        })
        .collect();
    (resp.error_code, results)
}

#[test]
fn replicated_partitions_follow_controlled_shutdowns() {
    bounded(TEST_LIMIT, || {
        let mut cluster = Cluster::start(BROKERS, SHARDS);
        let topic = unique("replicated");
        let watch = cluster.broker(1).addr(0);
        let mut c = RawClient::connect_negotiated(watch);
        assert_eq!(create_replicated(&mut c, &topic, 6, 3), errors::NONE);
        assert_eq!(
            create_replicated(&mut c, &unique("too-many"), 1, 7),
            INVALID_REPLICATION_FACTOR,
            "replication factor 7 on 6 nodes"
        );
        let ready = wait_until(WAIT, Duration::from_millis(200), || {
            replicated_at(watch, &topic).values().all(|p| p.0 >= 0)
        });
        assert!(ready, "{topic} got no leaders");
        let placed = replicated_at(watch, &topic);
        for (index, (leader, replicas, isr, error)) in &placed {
            let mut brokers: Vec<u16> = replicas.iter().map(|n| broker_of(*n)).collect();
            brokers.sort_unstable();
            assert_eq!(brokers, [1, 2, 3], "partition {index}: {replicas:?}");
            assert_eq!(
                (isr, *leader, *error),
                (replicas, replicas[0], errors::NONE)
            );
        }
        let leading: BTreeSet<u16> = placed.values().map(|p| broker_of(p.0)).collect();
        assert_eq!(leading, cluster.ids().into_iter().collect(), "{placed:?}");

        // ElectLeaders: every preferred replica leads already.
        assert_eq!(elect(&mut c, 0, None), (errors::NONE, vec![]));
        assert_eq!(
            elect(
                &mut c,
                1,
                Some(vec![(&topic, vec![0]), ("no-such-topic", vec![0])])
            ),
            (
                errors::NONE,
                vec![
                    (topic.clone(), 0, ELECTION_NOT_NEEDED),
                    ("no-such-topic".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION)
                ]
            )
        );

        // A controlled shutdown: once broker 2 has exited (and broker 1 has applied the
        // committed change), nothing is led by it or waits for it in an ISR, and every
        // partition still has a leader.
        cluster.stop(2);
        let moved = |parts: &BTreeMap<i32, Replicated>| {
            parts.iter().all(|(index, (leader, replicas, isr, error))| {
                *error == errors::NONE
                    && broker_of(*leader) != 2
                    && isr.iter().all(|n| broker_of(*n) != 2)
                    && replicas == &placed[index].1
            })
        };
        let mut after = BTreeMap::new();
        let done = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            after = replicated_at(watch, &topic);
            moved(&after)
        });
        assert!(done, "leadership did not leave broker 2: {after:?}");
    })
}

// ---------------------------------------------------------------------------
// Full-cluster stop and start
// ---------------------------------------------------------------------------

/// One partition's (index, leader, replicas).
type Placement = (i32, i32, Vec<i32>);

/// Topics (name, id, partitions with leader and replicas), configs of `topics`, SCRAM users and
/// the committed offsets of `group` on `topics[0]`, as one comparable text.
fn metadata_snapshot(cluster: &Cluster, topics: &[(String, i32)], group: &str) -> String {
    let mut c = RawClient::connect_negotiated(cluster.broker(1).addr(0));
    let md = admin::metadata(&mut c).expect("Metadata");
    let mut placement: BTreeMap<String, (String, Vec<Placement>)> = BTreeMap::new();
    for t in md.topics.iter().filter(|t| t.error_code == 0) {
        let mut parts: Vec<Placement> = t
            .partitions
            .iter()
            .map(|p| {
                let replicas = p.replica_nodes.iter().map(|r| r.0).collect();
                (p.partition_index, p.leader_id.0, replicas)
            })
            .collect();
        parts.sort();
        let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        placement.insert(name, (t.topic_id.to_string(), parts));
    }
    let configs: Vec<_> = topics
        .iter()
        .map(|(t, _)| {
            admin::describe_configs(&mut c, admin::TOPIC_RESOURCE, t).expect("DescribeConfigs")
        })
        .collect();
    let users = admin::scram_users(&mut c).expect("DescribeUserScramCredentials");
    let consumer: BaseConsumer = client_config(&cluster.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..topics[0].1 {
        tpl.add_partition(&topics[0].0, p);
    }
    let committed: Vec<(i32, Offset, String)> = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset(), e.metadata().to_string()))
        .collect();
    format!(
        "topics {placement:?}\nconfigs {configs:?}\nusers {users:?}\ncommitted {committed:?}\ncluster {:?}",
        md.cluster_id
    )
}

#[test]
fn full_cluster_stop_and_start_keeps_the_metadata() {
    bounded(TEST_LIMIT, || {
        // Every partition has one replica, `__consumer_offsets`' too: leadership of a single
        // replica comes back to it after a full restart, so leaders compare equal (those of
        // replicated partitions move at each controlled shutdown, as in Kafka).
        let mut cluster = Cluster::builder(BROKERS, SHARDS)
            .set("offsets.topic.replication.factor", 1)
            .start();
        let bs = cluster.bootstrap();
        let topics = vec![(unique("keep-a"), 6), (unique("keep-b"), 3)];
        let mut c = RawClient::connect_negotiated(cluster.broker(2).addr(1));
        let overrides = [("retention.ms", "7200000"), ("cleanup.policy", "compact")];
        assert_eq!(
            admin::create_topic(
                &mut c,
                &topics[0].0,
                topics[0].1,
                &overrides,
                ADMIN_TIMEOUT_MS
            )
            .unwrap(),
            0
        );
        assert_eq!(
            admin::create_topic(&mut c, &topics[1].0, topics[1].1, &[], ADMIN_TIMEOUT_MS).unwrap(),
            0
        );
        assert_eq!(
            admin::upsert_scram_user(&mut c, "alice", 1, 4096, &[1; 32]).unwrap(),
            0
        );
        assert_eq!(
            admin::upsert_scram_user(&mut c, "bob", 2, 8192, &[2; 64]).unwrap(),
            0
        );
        let ready = wait_until(WAIT, Duration::from_millis(200), || {
            topics.iter().all(|(t, n)| {
                let consumer = plain_consumer(&bs);
                consumer
                    .fetch_metadata(Some(t), Duration::from_secs(5))
                    .is_ok_and(|md| {
                        md.topics().iter().any(|m| {
                            m.partitions().len() == *n as usize
                                && m.partitions().iter().all(|p| p.leader() >= 0)
                        })
                    })
            })
        });
        assert!(ready, "topics {topics:?} did not get leaders");
        group::produce(&bs, &topics[0].0, 0..600, |id| id as i32 % 6);
        let group = unique("keep-group");
        let consumer: BaseConsumer = client_config(&bs)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..6 {
            tpl.add_partition_offset(&topics[0].0, p, Offset::Offset(10 * p as i64 + 5))
                .unwrap();
            tpl.find_partition(&topics[0].0, p)
                .unwrap()
                .set_metadata(format!("m{p}"));
        }
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
        drop(consumer);

        let before = metadata_snapshot(&cluster, &topics, &group);
        cluster.stop_all();
        cluster.start_all_again();
        let led = wait_until(WAIT, Duration::from_millis(200), || {
            topics.iter().all(|(t, _)| {
                leaders_at(cluster.broker(1).addr(0), t)
                    .values()
                    .all(|l| *l >= 0)
            })
        });
        assert!(led, "partitions without leaders after the restart");
        let after = metadata_snapshot(&cluster, &topics, &group);
        assert!(
            before == after,
            "metadata changed across a full restart:\nbefore {before}\nafter  {after}"
        );
    })
}

// ---------------------------------------------------------------------------
// Quorum lost
// ---------------------------------------------------------------------------

#[test]
fn quorum_lost_admin_times_out_data_keeps_flowing() {
    bounded(TEST_LIMIT, || {
        let mut cluster = Cluster::start(BROKERS, SHARDS);
        let topic = unique("lost");
        create_topic(&cluster.bootstrap(), &topic, 12);
        let mine: Vec<i32> = leaders_at(cluster.broker(1).addr(0), &topic)
            .into_iter()
            .filter(|(_, l)| broker_of(*l) == 1)
            .map(|(p, _)| p)
            .collect();
        assert!(!mine.is_empty(), "broker 1 leads no partition of {topic}");

        cluster.stop(3);
        cluster.stop(2);

        // Admin: fails within its timeout.
        let timeout_ms = 5_000;
        let mut c =
            RawClient::try_connect_negotiated(cluster.broker(1).addr(0), Duration::from_secs(60))
                .expect("connect to broker 1");
        let t0 = Instant::now();
        let code = admin::create_topic(&mut c, &unique("no-quorum"), 1, &[], timeout_ms)
            .expect("CreateTopics answered");
        let took = t0.elapsed();
        assert!(
            code == errors::REQUEST_TIMED_OUT || code == errors::NOT_CONTROLLER,
            "CreateTopics without a quorum: error {code}, want REQUEST_TIMED_OUT (or NOT_CONTROLLER)"
        );
        assert!(
            took <= Duration::from_millis(timeout_ms as u64) + Duration::from_secs(10),
            "CreateTopics took {took:?} with timeout_ms {timeout_ms}"
        );

        // Data path: produce to and fetch from broker 1's partitions.
        let bs = cluster.bootstrap_of(&[1]);
        let n = 300;
        let partition_of = |id: usize| mine[id % mine.len()];
        group::produce(&bs, &topic, 0..n, partition_of);
        let ranges: Vec<(i32, i64, i64)> = mine
            .iter()
            .map(|p| {
                (
                    *p,
                    0,
                    (0..n).filter(|id| partition_of(*id) == *p).count() as i64,
                )
            })
            .collect();
        let mut read = BTreeSet::new();
        let rep = consume(
            &bs,
            &topic,
            &ranges,
            WAIT,
            Duration::from_millis(300),
            |m| {
                let id = m.payload().and_then(group::id_of).expect("payload id");
                assert_eq!(m.payload(), Some(&group::payload(id)[..]), "message {id}");
                read.insert(id);
            },
        );
        assert_eq!(read, (0..n).collect(), "read back from broker 1: {rep:?}");
    })
}

// ---------------------------------------------------------------------------
// Fencing
// ---------------------------------------------------------------------------

/// Partition → (leader, error code).
type PartitionStates = BTreeMap<i32, (i32, i16)>;

/// Metadata of `topic` at `addr`: (node ids, partition → (leader, error code)).
fn nodes_and_partitions(addr: SocketAddr, topic: &str) -> Option<(BTreeSet<i32>, PartitionStates)> {
    let mut c = RawClient::try_connect_negotiated(addr, Duration::from_secs(5)).ok()?;
    let md = admin::metadata(&mut c).ok()?;
    let nodes = md.brokers.iter().map(|b| b.node_id.0).collect();
    let parts = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?
        .partitions
        .iter()
        .map(|p| (p.partition_index, (p.leader_id.0, p.error_code)))
        .collect();
    Some((nodes, parts))
}

#[test]
fn silent_broker_is_fenced_and_returns_intact() {
    bounded(TEST_LIMIT, || {
        let mut cluster = Cluster::builder(BROKERS, SHARDS)
            .set("broker.session.timeout.ms", 3000)
            .set("broker.heartbeat.interval.ms", 500)
            .start();
        let bs = cluster.bootstrap();
        let topic = unique("fence");
        create_topic(&bs, &topic, 12);
        let n = 1200;
        group::produce(&bs, &topic, 0..n, |id| id as i32 % 12);
        let leaders = leaders_at(cluster.broker(1).addr(0), &topic);
        let on3: BTreeSet<i32> = leaders
            .iter()
            .filter(|(_, l)| broker_of(**l) == 3)
            .map(|(p, _)| *p)
            .collect();
        assert!(!on3.is_empty(), "broker 3 leads no partition: {leaders:?}");

        cluster.pause(3);
        let watch = cluster.broker(1).addr(0);
        let mut last = None;
        let fenced = wait_until(WAIT, Duration::from_millis(200), || {
            last = nodes_and_partitions(watch, &topic);
            last.as_ref().is_some_and(|(nodes, parts)| {
                nodes.iter().all(|n| broker_of(*n) != 3)
                    && on3
                        .iter()
                        .all(|p| parts[p] == (-1, errors::LEADER_NOT_AVAILABLE))
            })
        });
        assert!(
            fenced,
            "broker 3 was not fenced (nodes and partitions: {last:?})"
        );

        cluster.resume(3);
        cluster.wait_nodes(&cluster.all_nodes(), WAIT);
        let back = wait_until(WAIT, Duration::from_millis(200), || {
            leaders_at(watch, &topic) == leaders
        });
        assert!(
            back,
            "broker 3's partitions did not return to it: {:?} vs {leaders:?}",
            leaders_at(watch, &topic)
        );

        let ranges: Vec<(i32, i64, i64)> = (0..12)
            .map(|p| {
                (
                    p,
                    0,
                    (0..n).filter(|id| *id as i32 % 12 == p).count() as i64,
                )
            })
            .collect();
        let mut read = BTreeSet::new();
        consume(
            &bs,
            &topic,
            &ranges,
            WAIT,
            Duration::from_millis(300),
            |m| {
                let id = m.payload().and_then(group::id_of).expect("payload id");
                assert_eq!(m.partition(), id as i32 % 12, "message {id}");
                assert_eq!(m.payload(), Some(&group::payload(id)[..]), "message {id}");
                read.insert(id);
            },
        );
        assert_eq!(read, (0..n).collect(), "messages after the broker returned");
    })
}
