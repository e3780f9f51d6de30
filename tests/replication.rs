//! Issue 12's acceptance for replicated partitions, one failure at a time, with real `sluice`
//! processes (see [`common::cluster`]) and librdkafka clients:
//!
//! * a rolling restart with SIGTERM of all three brokers under an idempotent acks=all load
//!   fails no delivery and keeps every acknowledged record once, in order;
//! * `min.insync.replicas`: with the ISR down to the leader alone, acks=all gets
//!   NOT_ENOUGH_REPLICAS (and appends nothing) while acks=1 still works, and acks=all works
//!   again once the followers are back in the ISR;
//! * `kill -9` of a partition's leader: a replica from the ISR takes over in a higher leader
//!   epoch with every acknowledged record, and the old leader, restarted, ends with a log
//!   byte-identical to the new leader's up to the high watermark;
//! * `kill -9` of a consumer group's coordinator: the group finds the new coordinator (the
//!   new leader of its `__consumer_offsets` partition) and resumes at its committed offsets.
//!
//! Each test starts its own cluster with fencing after [`SESSION_TIMEOUT_MS`]; the tests take
//! a lock so that they run one at a time even under the default parallel test runner (a
//! cluster is several processes of several threads each). `tests/long/replication-acceptance.sh`
//! runs them repeatedly and tabulates passes and durations.
mod common;
#[path = "common/chaos/replica_logs.rs"]
mod replica_logs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, ClusterBuilder};
use common::replicated::{
    all_isr_full, all_led_by, broker_of, check_acknowledged, create_replicated_topic,
    find_coordinator, offsets_partition_for, partition_states, read_back, wait_states, AckCheck,
    Load, PartitionState, OFFSETS_TOPIC,
};
use common::{bounded, client_config, unique, watermarks};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use replica_logs::{compare_to_leader, divergent_batches, read_replica_log, ReplicaLog};

/// `broker.session.timeout.ms` of every test cluster: short, so that a killed broker is fenced
/// (and its partitions fail over) quickly.
const SESSION_TIMEOUT_MS: u64 = 3000;
/// `broker.heartbeat.interval.ms` of every test cluster.
const HEARTBEAT_MS: u64 = 500;
/// Upper bound for a topic to be created, a broker to come back into service, a failover.
const SETTLE: Duration = Duration::from_secs(30);
/// The backstop for one whole test (each takes well under a minute when the broker works).
const TEST_LIMIT: Duration = Duration::from_secs(180);
/// librdkafka properties of the idempotent acks=all producer. A request that times out is
/// retried (the idempotent producer keeps it once); a delivery fails only after
/// `message.timeout.ms` (120 s, see [`common::producer`]).
const IDEMPOTENT: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
    ("request.timeout.ms", "5000"),
    ("retry.backoff.ms", "100"),
];

/// Serialises the tests of this binary: one cluster at a time.
fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cluster of `brokers` brokers with `shards` shards each, fencing after
/// [`SESSION_TIMEOUT_MS`].
fn cluster(brokers: u16, shards: u16) -> ClusterBuilder {
    Cluster::builder(brokers, shards)
        .set("broker.session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("broker.heartbeat.interval.ms", HEARTBEAT_MS)
}

/// Prints the test's one-line summary, `acceptance summary: test=NAME seconds=S key=value ...`
/// (NAME: the test function's), which `tests/long/replication-acceptance.sh` tabulates.
fn summary(test: &str, started: Instant, fields: &[(&str, String)]) {
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "acceptance summary: test={test} seconds={:.1} {}",
        started.elapsed().as_secs_f64(),
        fields.join(" ")
    );
}

/// Waits until Metadata lists every node of the cluster and every partition of `topic` has a
/// full ISR (a restarted broker is back in service).
fn wait_back_in_service(cluster: &Cluster, topic: &str) -> Vec<PartitionState> {
    cluster.wait_nodes(&cluster.all_nodes(), SETTLE);
    wait_states(cluster, topic, SETTLE, "every ISR full", all_isr_full)
}

/// Fails the test unless the load's producer delivered everything it sent, without a fatal
/// error, and every acknowledged record is in the log once, at its offset, in order; returns
/// what it checked.
fn assert_load_delivered(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    load: &mut Load,
) -> AckCheck {
    let report = load.stop();
    assert_eq!(
        report.fatal, None,
        "the idempotent producer hit a fatal error"
    );
    assert!(
        report.all_reported,
        "not every delivery report arrived: {report:?}"
    );
    let log = load.log();
    assert_eq!(
        log.failed(),
        0,
        "failed deliveries (of {} sent): {:?}",
        report.sent,
        log.first_failures(5)
    );
    assert_eq!(log.acked() as usize, report.sent, "acknowledged of sent");
    let read = read_back(&cluster.bootstrap(), topic, partitions);
    let check = check_acknowledged(&log.acked.lock().unwrap(), &read);
    assert!(
        check.problems().is_empty(),
        "{topic}: {:?}",
        check.problems()
    );
    assert_eq!(
        check.read, check.acknowledged,
        "the log holds records nobody acknowledged"
    );
    println!(
        "{topic}: {} records sent, {} acknowledged ({} without an offset), {} read back once \
         each, in order",
        report.sent, check.acknowledged, check.offset_unknown, check.read
    );
    check
}

#[test]
fn rolling_restart_with_sigterm_fails_no_delivery() {
    let _one = one_cluster_at_a_time();
    bounded(TEST_LIMIT, || {
        let started = Instant::now();
        let mut cluster = cluster(3, 2).start();
        let topic = unique("rolling");
        let partitions = 6;
        create_replicated_topic(
            &cluster,
            &topic,
            partitions,
            3,
            &[("min.insync.replicas", "2")],
            SETTLE,
        );
        let mut load = Load::start(&cluster.bootstrap(), &topic, partitions, 200, IDEMPOTENT);
        assert!(
            load.wait_acked(0, 100, SETTLE),
            "nothing acknowledged before the restarts"
        );
        println!("cluster and topic ready in {:?}", started.elapsed());
        let mut slowest_exit = Duration::ZERO;
        for n in cluster.ids() {
            let acked = load.acked();
            let controller = cluster.active_controller();
            let t = Instant::now();
            cluster.stop(n);
            let stopped = t.elapsed();
            slowest_exit = slowest_exit.max(stopped);
            // A controlled shutdown hands leadership over before the process exits.
            let live = cluster.live();
            wait_states(
                &cluster,
                &topic,
                Duration::from_secs(5),
                &format!("every partition led by a broker other than {n} after its SIGTERM"),
                |s| all_led_by(s, &live),
            );
            cluster.start_again(n);
            wait_back_in_service(&cluster, &topic);
            assert!(
                load.wait_acked(acked, 100, SETTLE),
                "the producer made no progress after broker {n}'s restart"
            );
            let role = if controller.is_some_and(|(c, _)| c == i32::from(n)) {
                " (the active controller)"
            } else {
                ""
            };
            println!(
                "broker {n}{role}: SIGTERM exit in {stopped:?}, back in service with full ISRs \
                 after {:?}; {} acknowledged so far",
                t.elapsed(),
                load.acked()
            );
        }
        let check = assert_load_delivered(&cluster, &topic, partitions, &mut load);
        summary(
            "rolling_restart_with_sigterm_fails_no_delivery",
            started,
            &[
                ("acknowledged", check.acknowledged.to_string()),
                ("failed", "0".to_string()),
                (
                    "slowest_sigterm_exit_ms",
                    slowest_exit.as_millis().to_string(),
                ),
            ],
        );
    })
}

/// Produces one record (value `payload(id)`) to partition 0 of `topic` with `acks` and no
/// retries: its offset, or the error librdkafka reports.
fn produce_once(bootstrap: &str, topic: &str, acks: &str, id: usize) -> Result<i64, String> {
    let producer: FutureProducer = client_config(bootstrap)
        .set("acks", acks)
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .set("message.timeout.ms", "15000")
        .set("request.timeout.ms", "10000")
        .create()
        .expect("create producer");
    let value = common::group::payload(id);
    let key = id.to_string();
    let record = FutureRecord::to(topic)
        .partition(0)
        .key(&key)
        .payload(&value);
    let delivery = producer
        .send_result(record)
        .map_err(|(e, _)| format!("enqueue: {e}"))?;
    match futures::executor::block_on(delivery) {
        Ok(Ok(d)) => Ok(d.offset),
        Ok(Err((e, _))) => Err(match e.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => e.to_string(),
        }),
        Err(_) => Err("delivery future cancelled".to_string()),
    }
}

#[test]
fn acks_all_needs_min_insync_replicas_and_acks_1_does_not() {
    let _one = one_cluster_at_a_time();
    bounded(TEST_LIMIT, || {
        let started = Instant::now();
        // Five voters, so that the controller quorum outlives the two brokers killed below
        // (shrinking the ISR is a metadata change the quorum must commit).
        let mut cluster = cluster(5, 1).set("replica.lag.time.max.ms", 3000).start();
        let bootstrap = cluster.bootstrap();
        let topic = unique("min-isr");
        let before = create_replicated_topic(
            &cluster,
            &topic,
            1,
            3,
            &[("min.insync.replicas", "2")],
            SETTLE,
        );
        let leader = before[0].leader;
        let followers: Vec<u16> = before[0].followers().into_iter().map(broker_of).collect();
        let mut id = 0;
        let mut next_id = || {
            id += 1;
            id - 1
        };
        let mut acked = BTreeMap::new();
        let first = next_id();
        let offset =
            produce_once(&bootstrap, &topic, "all", first).expect("acks=all with the full ISR");
        acked.insert(first, offset);

        let t = Instant::now();
        for f in &followers {
            cluster.kill9(*f);
        }
        let shrunk = wait_states(
            &cluster,
            &topic,
            SETTLE,
            &format!("the ISR shrinking to the leader {leader} alone"),
            |s| s[0].leader == leader && s[0].isr == [leader],
        );
        let shrink = t.elapsed();
        println!(
            "followers on brokers {followers:?} killed; ISR {:?} after {shrink:?}",
            shrunk[0].isr
        );
        let (_, high) = watermarks(&bootstrap, &topic, 0);
        let refused = produce_once(&bootstrap, &topic, "all", next_id());
        assert_eq!(
            refused,
            Err(format!("{:?}", RDKafkaErrorCode::NotEnoughReplicas)),
            "acks=all with the ISR below min.insync.replicas"
        );
        assert_eq!(
            watermarks(&bootstrap, &topic, 0).1,
            high,
            "a produce refused with NOT_ENOUGH_REPLICAS appended something"
        );
        for _ in 0..5 {
            let id = next_id();
            let offset = produce_once(&bootstrap, &topic, "1", id)
                .expect("acks=1 with the leader alone in the ISR");
            acked.insert(id, offset);
        }

        let t = Instant::now();
        for f in &followers {
            cluster.start_again(*f);
        }
        let grown = wait_back_in_service(&cluster, &topic);
        let grow = t.elapsed();
        println!("followers restarted; ISR {:?} after {grow:?}", grown[0].isr);
        let last = next_id();
        let offset = produce_once(&bootstrap, &topic, "all", last)
            .expect("acks=all once the ISR is full again");
        acked.insert(last, offset);

        let read = read_back(&bootstrap, &topic, 1);
        let log: BTreeMap<usize, i64> = read[&0]
            .iter()
            .map(|(offset, id)| (id.expect("a payload the test wrote"), *offset))
            .collect();
        assert_eq!(
            log, acked,
            "the log (id → offset) against what was acknowledged"
        );
        summary(
            "acks_all_needs_min_insync_replicas_and_acks_1_does_not",
            started,
            &[
                ("isr_shrink_ms", shrink.as_millis().to_string()),
                ("isr_grow_ms", grow.as_millis().to_string()),
                ("records", acked.len().to_string()),
            ],
        );
    })
}

/// Waits (up to `timeout`) until every replica of the partition `state` describes holds its
/// leader's log, byte-identical, up to the high watermark `high`; returns the leader's log.
fn wait_replicas_identical(
    cluster: &Cluster,
    topic: &str,
    state: &PartitionState,
    high: i64,
    timeout: Duration,
) -> ReplicaLog {
    let dir = |node: i32| {
        cluster
            .broker(broker_of(node))
            .partition_dir(topic, state.partition)
    };
    let mut last = Vec::new();
    let mut leader_log = ReplicaLog::default();
    let identical = common::wait_until(timeout, Duration::from_millis(200), || {
        leader_log = read_replica_log(&dir(state.leader)).expect("the leader's log");
        last = state
            .replicas
            .iter()
            .filter_map(|node| {
                let log = read_replica_log(&dir(*node)).expect("a replica's log");
                compare_to_leader(&leader_log, &log, high).map(|d| format!("replica {node}: {d}"))
            })
            .collect();
        last.is_empty()
    });
    assert!(
        identical,
        "{topic}-{}: replicas differ from the leader {} up to the HW {high}: {last:?}",
        state.partition, state.leader
    );
    leader_log
}

#[test]
fn leader_failover_keeps_acknowledged_records_and_the_old_leader_converges() {
    let _one = one_cluster_at_a_time();
    bounded(TEST_LIMIT, || {
        let started = Instant::now();
        let mut cluster = cluster(3, 2).start();
        let bootstrap = cluster.bootstrap();
        let topic = unique("failover");
        let before = create_replicated_topic(
            &cluster,
            &topic,
            1,
            3,
            &[("min.insync.replicas", "2")],
            SETTLE,
        );
        let mut load = Load::start(&bootstrap, &topic, 1, 300, IDEMPOTENT);
        assert!(load.wait_acked(0, 300, SETTLE), "nothing acknowledged");
        // The leader is killed with records in flight: its log may end with a tail that no
        // follower has, which it must truncate when it rejoins.
        let before = partition_states(&cluster, &topic).unwrap_or(before);
        let old = &before[0];
        let old_broker = broker_of(old.leader);
        let acked_at_kill = load.acked();
        let t = Instant::now();
        cluster.kill9(old_broker);
        let after = wait_states(
            &cluster,
            &topic,
            SETTLE,
            "a new leader from the ISR in a higher leader epoch",
            |s| {
                s[0].leader >= 0
                    && broker_of(s[0].leader) != old_broker
                    && old.isr.contains(&s[0].leader)
                    && s[0].leader_epoch > old.leader_epoch
            },
        );
        let failover = t.elapsed();
        let old_log = read_replica_log(
            &cluster
                .broker(old_broker)
                .partition_dir(&topic, old.partition),
        )
        .expect("the killed leader's log");
        assert!(
            load.wait_acked(acked_at_kill, 300, SETTLE),
            "the producer made no progress after the failover"
        );
        // Every record acknowledged so far is on the new leader, with the old one still down.
        let acked_so_far = load.log().acked.lock().unwrap().clone();
        let check = check_acknowledged(&acked_so_far, &read_back(&bootstrap, &topic, 1));
        assert!(
            check.problems().is_empty(),
            "after the failover: {:?}",
            check.problems()
        );
        println!(
            "leader {} (broker {old_broker}, epoch {}) killed with {acked_at_kill} \
             acknowledged; leader {} in epoch {} after {failover:?}; {} acknowledged records \
             all on it",
            old.leader,
            old.leader_epoch,
            after[0].leader,
            after[0].leader_epoch,
            check.acknowledged
        );

        cluster.start_again(old_broker);
        wait_back_in_service(&cluster, &topic);
        let check = assert_load_delivered(&cluster, &topic, 1, &mut load);
        let now = partition_states(&cluster, &topic).expect("Metadata");
        let (_, high) = watermarks(&bootstrap, &topic, 0);
        let leader_log = wait_replicas_identical(&cluster, &topic, &now[0], high, SETTLE);
        let truncated = divergent_batches(&old_log, &leader_log);
        println!(
            "old leader back: every replica byte-identical to leader {} up to the HW {high}; \
             it truncated {truncated} batches of its tail ({} batches, end {:?} when killed)",
            now[0].leader,
            old_log.batches.len(),
            old_log.end(),
        );
        summary(
            "leader_failover_keeps_acknowledged_records_and_the_old_leader_converges",
            started,
            &[
                ("failover_ms", failover.as_millis().to_string()),
                ("acknowledged", check.acknowledged.to_string()),
                ("high_watermark", high.to_string()),
                ("truncated_batches", truncated.to_string()),
            ],
        );
    })
}

/// A consumer-group member reading `topic` with manual, synchronous commits.
fn group_member(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Commits `positions` (partition → next offset to read) synchronously.
fn commit(
    consumer: &BaseConsumer,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> Result<(), String> {
    let mut tpl = TopicPartitionList::new();
    for (p, next) in positions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*next))
            .expect("a valid offset");
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| e.to_string())
}

/// The committed offsets of `group` on the partitions `0..partitions` of `topic`, from
/// OffsetFetch (through a consumer of the group that does not join it): partition → offset,
/// for the partitions with a commit.
fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    let probe: BaseConsumer = client_config(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let fetched = probe
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("OffsetFetch");
    fetched
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The coordinator of `group` and the state of its `__consumer_offsets` partition, once
/// FindCoordinator names a node on a live broker that leads that partition and `accept`
/// holds for it.
fn wait_coordinator(
    cluster: &Cluster,
    group: &str,
    offsets_partition: i32,
    mut accept: impl FnMut(&PartitionState) -> bool,
) -> PartitionState {
    let live = cluster.live();
    let mut last = None;
    let found = common::wait_until(SETTLE, Duration::from_millis(100), || {
        let coordinator = find_coordinator(cluster, group);
        let state = partition_states(cluster, OFFSETS_TOPIC)
            .and_then(|s| s.into_iter().find(|p| p.partition == offsets_partition));
        last = Some((coordinator, state.clone()));
        match (coordinator, state) {
            (Some(c), Some(s)) => c == s.leader && live.contains(&broker_of(c)) && accept(&s),
            _ => false,
        }
    });
    assert!(
        found,
        "group {group}: no coordinator leading {OFFSETS_TOPIC}-{offsets_partition} on a live \
         broker; last (FindCoordinator, partition): {last:?}"
    );
    last.and_then(|(_, s)| s).expect("checked above")
}

#[test]
fn consumer_group_resumes_at_its_commits_after_its_coordinator_is_killed() {
    let _one = one_cluster_at_a_time();
    bounded(TEST_LIMIT, || {
        let started = Instant::now();
        let mut cluster = cluster(3, 1).start();
        let bootstrap = cluster.bootstrap();
        let topic = unique("group-failover");
        let partitions = 3;
        let records = 900;
        create_replicated_topic(
            &cluster,
            &topic,
            partitions,
            3,
            &[("min.insync.replicas", "2")],
            SETTLE,
        );
        common::group::produce(&bootstrap, &topic, 0..records, |id| {
            (id % partitions as usize) as i32
        });
        let ends: BTreeMap<i32, i64> = (0..partitions)
            .map(|p| (p, watermarks(&bootstrap, &topic, p).1))
            .collect();
        let offsets_partitions = wait_states(
            &cluster,
            OFFSETS_TOPIC,
            SETTLE,
            "every partition of the offsets topic with three replicas and a full ISR",
            |s| s.iter().all(|p| p.replicas.len() == 3) && all_isr_full(s),
        )
        .len() as i32;
        let group = unique("failover-group");
        let offsets_partition = offsets_partition_for(&group, offsets_partitions);
        let old = wait_coordinator(&cluster, &group, offsets_partition, |_| true);

        // The first member processes records below `cap` of each partition only (as if it
        // crashed before processing the others), so that its last commit leaves records for
        // the next member: it reads half, commits, reads on without committing.
        let cap = (records / partitions as usize * 5 / 6) as i64;
        let member = group_member(&bootstrap, &group, &topic);
        let mut read: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
        let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
        let mut poll = |member: &BaseConsumer, read: &mut BTreeMap<i32, BTreeSet<i64>>| {
            match member.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.offset() < cap => {
                    read.entry(m.partition()).or_default().insert(m.offset());
                    positions.insert(m.partition(), m.offset() + 1);
                }
                Some(Ok(_)) | None => {}
                Some(Err(e)) => println!("first member: {e}"),
            }
            positions.clone()
        };
        let count = |read: &BTreeMap<i32, BTreeSet<i64>>| -> usize {
            read.values().map(BTreeSet::len).sum()
        };
        let deadline = Instant::now() + SETTLE;
        let mut read_up_to = |n: usize, read: &mut BTreeMap<i32, BTreeSet<i64>>| loop {
            let positions = poll(&member, read);
            if count(read) >= n {
                return positions;
            }
            assert!(
                Instant::now() < deadline,
                "the first member read {} records",
                count(read)
            );
        };
        let committed_before = read_up_to(records / 2, &mut read);
        commit(&member, &topic, &committed_before).expect("commit before the failover");
        read_up_to(records * 2 / 3, &mut read);

        let t = Instant::now();
        cluster.kill9(broker_of(old.leader));
        let new = wait_coordinator(&cluster, &group, offsets_partition, |s| {
            broker_of(s.leader) != broker_of(old.leader) && s.leader_epoch > old.leader_epoch
        });
        let moved = t.elapsed();
        assert_eq!(
            committed_offsets(&bootstrap, &group, &topic, partitions),
            committed_before,
            "the new coordinator's committed offsets against the commit before the failover"
        );
        // The same member goes on reading and committing until the new coordinator takes a
        // commit; nothing is committed after that one.
        let mut failed_commits = Vec::new();
        let committed = loop {
            assert!(
                t.elapsed() < SETTLE,
                "no commit succeeded after the failover; failures: {failed_commits:?}"
            );
            let mut positions = poll(&member, &mut read);
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                positions = poll(&member, &mut read);
            }
            match commit(&member, &topic, &positions) {
                Ok(()) => break positions,
                Err(e) => failed_commits.push(e),
            }
        };
        let commit_took = t.elapsed();
        drop(member);

        // A new member resumes exactly at the last commit, and reads on to the end.
        assert_eq!(
            committed_offsets(&bootstrap, &group, &topic, partitions),
            committed,
            "the committed offsets against the last commit"
        );
        let member = group_member(&bootstrap, &group, &topic);
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
        let deadline = Instant::now() + SETTLE;
        while ends.iter().any(|(p, end)| {
            reached.get(p).copied().unwrap_or(0) < *end
                && committed.get(p).copied().unwrap_or(0) < *end
        }) {
            assert!(
                Instant::now() < deadline,
                "the second member did not read to the end: reached {reached:?}, ends {ends:?}"
            );
            match member.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    first.entry(m.partition()).or_insert(m.offset());
                    reached.insert(m.partition(), m.offset() + 1);
                    read.entry(m.partition()).or_default().insert(m.offset());
                }
                Some(Err(e)) => println!("second member: {e}"),
                None => {}
            }
        }
        for (p, end) in &ends {
            let committed = committed.get(p).copied().unwrap_or(0);
            if committed < *end {
                assert_eq!(
                    first.get(p),
                    Some(&committed),
                    "partition {p}: the new member's first read against the committed offset \
                     (later: records skipped; earlier: an acknowledged commit forgotten)"
                );
            }
            let missing: Vec<i64> = (0..*end)
                .filter(|o| !read.get(p).is_some_and(|r| r.contains(o)))
                .collect();
            assert!(missing.is_empty(), "partition {p}: never read {missing:?}");
        }
        println!(
            "coordinator {} (epoch {}) killed; {} (epoch {}) after {moved:?}; first commit \
             taken after {commit_took:?} ({} failed before); resumed at {committed:?}",
            old.leader,
            old.leader_epoch,
            new.leader,
            new.leader_epoch,
            failed_commits.len(),
        );
        summary(
            "consumer_group_resumes_at_its_commits_after_its_coordinator_is_killed",
            started,
            &[
                ("coordinator_move_ms", moved.as_millis().to_string()),
                ("first_commit_ms", commit_took.as_millis().to_string()),
                ("failed_commits", failed_commits.len().to_string()),
            ],
        );
    })
}

#[test]
fn offsets_partitions_match_kafkas_hashing() {
    // Math.abs("my-group".hashCode()) % 50 in Java.
    assert_eq!(offsets_partition_for("my-group", 50), 12);
}
