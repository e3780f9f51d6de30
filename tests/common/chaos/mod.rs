//! A Jepsen-style chaos run against a cluster of real `sluice` processes: clients write and read
//! a replicated topic while a fault driver kills and pauses brokers, and at the end the history
//! the clients recorded is checked against the log the cluster kept.
//!
//! * [`workload`]: an idempotent acks=all producer and a consumer-group member, recording every
//!   delivery report, read and commit ([`history`]);
//! * [`faults`]: the fault driver ("chase the leader": `kill -9` of the broker leading the most
//!   partitions, of the active controller, SIGSTOP of a leader);
//! * [`check`]: the checks on the history and the final log (lost, misplaced and duplicated
//!   records, holes, consumer order, vanished reads, resumes from committed offsets);
//! * [`replica_logs`]: byte-identity of every replica's segment files with the leader's up to
//!   the high watermark.
//!
//! [`run`] puts them together for one [`Scenario`] and returns a [`RunReport`]; a scenario's
//! sizes come from `SLUICE_CHAOS_*` environment variables ([`Scenario::from_env`]), so that the
//! same test is the short CI run and the long run of `tests/long/replication-chaos.sh`.
//!
//! Only `tests/replication_chaos.rs` uses this module; it includes it with `#[path]` instead of
//! through `common/mod.rs`, so that the other test binaries do not compile it.

pub mod check;
pub mod faults;
pub mod history;
pub mod replica_logs;
pub mod workload;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::common::cluster::Cluster;
use crate::common::{client_config, consume, unique, wait_until, watermarks};
use check::CheckReport;
use faults::{isr_full, replica_dir, topic_view, FaultDriver, FaultKind, FaultOutcome, FaultPlan};
use history::FinalLog;
use replica_logs::{compare_to_leader, divergent_batches, read_replica_log};
use workload::{id_in, ErrorLog, Workload, WorkloadConfig};

/// Brokers in a chaos cluster.
pub const BROKERS: u16 = 3;
/// Shards per broker.
pub const SHARDS: u16 = 2;
/// `broker.session.timeout.ms` of the cluster: short, so that fencing (and so failover after a
/// kill or a pause) is quick.
pub const SESSION_TIMEOUT_MS: u64 = 3000;
/// `broker.heartbeat.interval.ms` of the cluster.
pub const HEARTBEAT_MS: u64 = 500;
/// How long the workload, the final reads and the cluster each get to settle after the faults.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// The value of environment variable `name`, or `default` when unset or unparsable.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One chaos run's shape.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name in the summary line.
    pub name: String,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Replication factor of the topic.
    pub replication_factor: i32,
    /// `min.insync.replicas` of the topic.
    pub min_insync_replicas: i32,
    /// Records per second the producer writes.
    pub rate: u32,
    /// The faults.
    pub plan: FaultPlan,
    /// Seed of the random down times and tie breaks.
    pub seed: u64,
}

impl Scenario {
    /// A scenario named `name` with `leader_kills`, `controller_kills` and `pauses` faults, and
    /// the rest from the environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `SLUICE_CHAOS_RF` | replication factor | 3 |
    /// | `SLUICE_CHAOS_MIN_ISR` | `min.insync.replicas` | min(2, RF) |
    /// | `SLUICE_CHAOS_PARTITIONS` | partitions | 6 |
    /// | `SLUICE_CHAOS_RATE` | records per second | 200 |
    /// | `SLUICE_CHAOS_MAX_DOWN_MS` | longest random down time of a killed broker | 2000 |
    /// | `SLUICE_CHAOS_PAUSE_MS` | how long a pause lasts | 2 × session timeout |
    /// | `SLUICE_CHAOS_FAILOVER_MS` | longest wait for a failover | 20000 |
    /// | `SLUICE_CHAOS_SEED` | random seed | from the clock |
    pub fn from_env(
        name: &str,
        leader_kills: usize,
        controller_kills: usize,
        pauses: usize,
    ) -> Self {
        let replication_factor = env_or("SLUICE_CHAOS_RF", 3);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Scenario {
            name: name.to_string(),
            partitions: env_or("SLUICE_CHAOS_PARTITIONS", 6),
            replication_factor,
            min_insync_replicas: env_or("SLUICE_CHAOS_MIN_ISR", replication_factor.min(2)),
            rate: env_or("SLUICE_CHAOS_RATE", 200),
            plan: FaultPlan {
                leader_kills,
                controller_kills,
                pauses,
                max_down: Duration::from_millis(env_or("SLUICE_CHAOS_MAX_DOWN_MS", 2000)),
                pause_for: Duration::from_millis(env_or(
                    "SLUICE_CHAOS_PAUSE_MS",
                    2 * SESSION_TIMEOUT_MS,
                )),
                failover_limit: Duration::from_millis(env_or("SLUICE_CHAOS_FAILOVER_MS", 20_000)),
            },
            seed: env_or("SLUICE_CHAOS_SEED", clock),
        }
    }

    /// How many faults it injects.
    pub fn faults(&self) -> usize {
        self.plan.leader_kills + self.plan.controller_kills + self.plan.pauses
    }

    /// A generous upper bound for the whole run.
    pub fn time_limit(&self) -> Duration {
        let per_fault = self.plan.failover_limit
            + self.plan.max_down.max(self.plan.pause_for)
            + 2 * faults::REJOIN_LIMIT;
        Duration::from_secs(240) + 3 * SETTLE_LIMIT + per_fault * self.faults() as u32
    }
}

/// Everything a chaos run found.
#[derive(Debug)]
pub struct RunReport {
    /// The scenario it ran.
    pub scenario: Scenario,
    /// Each fault's outcome.
    pub faults: Vec<FaultOutcome>,
    /// The checks of the history against the final log.
    pub check: CheckReport,
    /// Replica logs compared with their leader's (the leader's own included: it must reach
    /// the high watermark).
    pub replicas_compared: usize,
    /// Replicas whose log differs from the leader's below the high watermark, described.
    pub divergent_replicas: Vec<String>,
    /// Batches of paused leaders' logs that the final log does not hold (the divergent tail
    /// they had to truncate).
    pub truncated_tail_batches: usize,
    /// Whether every partition's ISR was full when the faults were over.
    pub isr_full_at_end: bool,
    /// Whether the consumer read up to every partition's high watermark after the faults.
    pub consumer_caught_up: bool,
    /// Group members the consumer started (one per fault, plus the first).
    pub members: u64,
    /// The producer's fatal errors.
    pub producer_fatal: ErrorLog,
    /// The consumer's errors (not violations: clients see errors during failovers).
    pub consumer_errors: ErrorLog,
}

impl RunReport {
    /// The slowest failover, if any happened.
    pub fn slowest_failover(&self) -> Option<Duration> {
        self.faults.iter().filter_map(|f| f.failover).max()
    }

    /// Faults after which the cluster did not fail over, take the broker back or keep the
    /// producer going.
    pub fn unrecovered(&self) -> Vec<String> {
        self.faults
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.recovered())
            .map(|(i, f)| format!("fault {}: {}", i + 1, f.describe()))
            .collect()
    }

    /// Everything that is wrong, one line each; empty when the run passed.
    pub fn failures(&self) -> Vec<String> {
        let mut out = self.check.violations();
        out.extend(self.unrecovered());
        if !self.divergent_replicas.is_empty() {
            out.push(format!(
                "replicas not byte-identical to their leader up to the HW: {} (first: {:?})",
                self.divergent_replicas.len(),
                &self.divergent_replicas[..self.divergent_replicas.len().min(5)]
            ));
        }
        if !self.isr_full_at_end {
            out.push("some partition's ISR was not full after the faults".to_string());
        }
        if !self.consumer_caught_up {
            out.push("the consumer did not read up to the high watermarks".to_string());
        }
        if self.producer_fatal.count > 0 {
            out.push(format!(
                "the idempotent producer hit {} fatal errors: {:?}",
                self.producer_fatal.count, self.producer_fatal.first
            ));
        }
        out
    }

    /// The one-line `key=value` summary that `tests/long/replication-chaos.sh` tabulates.
    pub fn summary_line(&self) -> String {
        let count = |k: FaultKind| self.faults.iter().filter(|f| f.kind == k).count();
        let c = &self.check;
        format!(
            "chaos summary: scenario={} rf={} min_isr={} seed={} leader_kills={} \
             controller_kills={} pauses={} unrecovered={} acknowledged={} failed={} \
             indeterminate={} lost={} misplaced={} duplicated={} holes={} vanished={} \
             consumer_backwards={} consumer_skips={} resume_skipped={} resume_rewound={} \
             replicas_compared={} divergent_replicas={} truncated_tail_batches={} \
             slowest_failover_ms={}",
            self.scenario.name,
            self.scenario.replication_factor,
            self.scenario.min_insync_replicas,
            self.scenario.seed,
            count(FaultKind::LeaderKill),
            count(FaultKind::ControllerKill),
            count(FaultKind::Pause),
            self.unrecovered().len(),
            c.acknowledged,
            c.failed,
            c.indeterminate,
            c.lost.len(),
            c.misplaced.len(),
            c.duplicated.len(),
            c.missing_offsets(),
            c.vanished.len(),
            c.consumer_backwards.len(),
            c.consumer_skips.len(),
            c.resume_skipped.len(),
            c.resume_rewound.len(),
            self.replicas_compared,
            self.divergent_replicas.len(),
            self.truncated_tail_batches,
            self.slowest_failover()
                .map_or("none".to_string(), |d| d.as_millis().to_string()),
        )
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.check)?;
        writeln!(
            f,
            "{} group members; consumer errors {} (first: {:?})",
            self.members,
            self.consumer_errors.count,
            &self.consumer_errors.first[..self.consumer_errors.first.len().min(3)]
        )?;
        writeln!(
            f,
            "{} replica logs compared with their leader's, {} divergent; {} batches of paused \
             leaders' tails truncated",
            self.replicas_compared,
            self.divergent_replicas.len(),
            self.truncated_tail_batches
        )?;
        for line in self.failures() {
            writeln!(f, "FAILED: {line}")?;
        }
        write!(f, "{}", self.summary_line())
    }
}

/// Starts the cluster of a chaos run: three brokers of two shards, fencing after
/// [`SESSION_TIMEOUT_MS`].
pub fn start_cluster() -> Cluster {
    Cluster::builder(BROKERS, SHARDS)
        .set("broker.session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("broker.heartbeat.interval.ms", HEARTBEAT_MS)
        .start()
}

/// Creates the scenario's topic with the AdminClient (replication factor and
/// `min.insync.replicas` as asked) and waits until every partition has its replicas, a leader
/// and a full ISR.
pub fn create_replicated_topic(cluster: &Cluster, topic: &str, scenario: &Scenario) {
    let admin: AdminClient<DefaultClientContext> = client_config(&cluster.bootstrap())
        .create()
        .expect("admin client");
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)));
    let min_isr = scenario.min_insync_replicas.to_string();
    let new = NewTopic::new(
        topic,
        scenario.partitions,
        TopicReplication::Fixed(scenario.replication_factor),
    )
    .set("min.insync.replicas", &min_isr);
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request");
    for r in results {
        if let Err((name, code)) = r {
            panic!(
                "CreateTopics {name} with replication factor {} and min.insync.replicas \
                 {min_isr}: {code:?}",
                scenario.replication_factor
            );
        }
    }
    let mut last = None;
    let ready = wait_until(SETTLE_LIMIT, Duration::from_millis(200), || {
        last = topic_view(cluster, topic);
        last.as_ref().is_some_and(|v| {
            v.len() == scenario.partitions as usize
                && v.iter()
                    .all(|p| p.replicas.len() == scenario.replication_factor as usize)
                && isr_full(v)
        })
    });
    assert!(
        ready,
        "{topic} did not get {} partitions of {} replicas with full ISRs: {last:?}",
        scenario.partitions, scenario.replication_factor
    );
}

/// Runs `scenario`: a fresh cluster and topic, the workload, the faults, then every check.
/// Returns the cluster too, still running, so that a failing test keeps the brokers' logs and
/// data (see [`crate::common::Broker`]).
pub fn run(scenario: Scenario) -> (Cluster, RunReport) {
    println!("chaos scenario: {scenario:?}");
    let mut cluster = start_cluster();
    let topic = unique("chaos");
    create_replicated_topic(&cluster, &topic, &scenario);
    let mut workload = Workload::start(WorkloadConfig {
        bootstrap: cluster.bootstrap(),
        topic: topic.clone(),
        partitions: scenario.partitions,
        rate: scenario.rate,
        group: unique("chaos-group"),
    });
    assert!(
        workload.wait_acked(0, faults::PROGRESS, SETTLE_LIMIT),
        "the producer got nothing acknowledged before any fault"
    );

    let rng = StdRng::seed_from_u64(scenario.seed);
    let outcomes = FaultDriver::new(&mut cluster, &topic, scenario.plan.clone(), rng)
        .run(&workload, |i, n, outcome| {
            println!("fault {i}/{n}: {}", outcome.describe())
        });

    workload.stop_producer(SETTLE_LIMIT);
    let isr_full_at_end = wait_until(SETTLE_LIMIT, Duration::from_millis(200), || {
        topic_view(&cluster, &topic).is_some_and(|v| isr_full(&v))
    });
    let bootstrap = cluster.bootstrap();
    let bounds: BTreeMap<i32, (i64, i64)> = (0..scenario.partitions)
        .map(|p| (p, watermarks(&bootstrap, &topic, p)))
        .collect();
    let ends = bounds.iter().map(|(p, (_, high))| (*p, *high)).collect();
    let consumer_caught_up = wait_until(SETTLE_LIMIT, Duration::from_millis(200), || {
        workload.consumer_reached(&ends)
    });
    let members = workload.members();
    let producer_fatal = workload.producer_fatal_errors();
    let consumer_errors = workload.consumer_errors();
    let history = workload.finish();

    let final_log = read_final_log(&bootstrap, &topic, &bounds);
    let (replicas_compared, divergent_replicas, truncated_tail_batches) =
        compare_replicas(&cluster, &topic, &bounds, &outcomes);
    let report = RunReport {
        scenario,
        faults: outcomes,
        check: check::check(&history, &final_log),
        replicas_compared,
        divergent_replicas,
        truncated_tail_batches,
        isr_full_at_end,
        consumer_caught_up,
        members,
        producer_fatal,
        consumer_errors,
    };
    println!("{report}");
    (cluster, report)
}

/// Reads every partition from its log start to its high watermark (`bounds`) with a fresh
/// consumer.
pub fn read_final_log(
    bootstrap: &str,
    topic: &str,
    bounds: &BTreeMap<i32, (i64, i64)>,
) -> FinalLog {
    let mut log = FinalLog::with_bounds(bounds.iter().map(|(p, b)| (*p, *b)));
    let ranges: Vec<(i32, i64, i64)> = bounds
        .iter()
        .map(|(p, (low, high))| (*p, *low, *high))
        .collect();
    consume(
        bootstrap,
        topic,
        &ranges,
        SETTLE_LIMIT,
        Duration::from_millis(500),
        |m| {
            use rdkafka::message::Message;
            log.insert(m.partition(), m.offset(), id_in(m.payload()));
        },
    );
    log
}

/// Compares every replica's log with its leader's up to the high watermark (`bounds`), and
/// the logs paused leaders had with the final leader logs. Returns (replicas compared,
/// divergences, truncated tail batches).
fn compare_replicas(
    cluster: &Cluster,
    topic: &str,
    bounds: &BTreeMap<i32, (i64, i64)>,
    outcomes: &[FaultOutcome],
) -> (usize, Vec<String>, usize) {
    let Some(view) = topic_view(cluster, topic) else {
        return (0, vec![format!("no live broker describes {topic}")], 0);
    };
    let mut compared = 0;
    let mut divergent = Vec::new();
    let mut leader_logs = BTreeMap::new();
    for p in &view {
        let high = bounds.get(&p.partition).map_or(0, |b| b.1);
        if p.leader < 0 {
            divergent.push(format!("partition {}: no leader", p.partition));
            continue;
        }
        let leader = match read_replica_log(&replica_dir(cluster, p.leader, topic, p.partition)) {
            Ok(log) => log,
            Err(e) => {
                divergent.push(format!(
                    "partition {}: leader {}'s log: {e}",
                    p.partition, p.leader
                ));
                continue;
            }
        };
        // The leader is compared with itself too: that checks its log reaches the HW.
        for node in &p.replicas {
            compared += 1;
            match read_replica_log(&replica_dir(cluster, *node, topic, p.partition)) {
                Ok(replica) => {
                    if let Some(d) = compare_to_leader(&leader, &replica, high) {
                        divergent.push(format!(
                            "partition {} replica {node} (leader {}, HW {high}): {d}",
                            p.partition, p.leader
                        ));
                    }
                }
                Err(e) => divergent.push(format!("partition {} replica {node}: {e}", p.partition)),
            }
        }
        leader_logs.insert(p.partition, leader);
    }
    let truncated = outcomes
        .iter()
        .flat_map(|o| &o.paused_logs)
        .filter_map(|(p, before)| leader_logs.get(p).map(|now| divergent_batches(before, now)))
        .sum();
    (compared, divergent, truncated)
}
