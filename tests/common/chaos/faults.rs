//! The fault driver: "chase the leader", as Kafka's replication system tests do. Each fault
//! picks a broker, takes it away, measures how long the cluster takes to fail over, brings it
//! back after a random short while and waits until it is back in service (registered and
//! unfenced in Metadata, every partition's ISR full again, the producer making progress) before
//! the next fault:
//!
//! * [`FaultKind::LeaderKill`]: `kill -9` the broker that leads the most partitions of the
//!   topic; failover is every partition led by a live broker again;
//! * [`FaultKind::ControllerKill`]: `kill -9` the active controller (which is also a broker);
//!   failover is a new controller in a higher epoch and every partition led by a live broker;
//! * [`FaultKind::Pause`]: SIGSTOP the broker that leads the most partitions for longer than
//!   `broker.session.timeout.ms`, so that it is fenced and its partitions get new leaders while
//!   it still believes it leads them, then SIGCONT. Its log, read while it is paused, is kept:
//!   after the run it shows how much divergent tail the broker had to truncate on rejoin.
//!
//! After every fault the consumer group member is restarted, and the driver waits for the new
//! member's assignment, so every failover is followed by a resume from the committed offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use super::replica_logs::{read_replica_log, ReplicaLog};
use super::workload::Workload;
use crate::common::cluster::Cluster;
use crate::common::{admin, wait_until, RawClient};

/// Upper bound for a broker to come back into service (registered, ISR full).
pub const REJOIN_LIMIT: Duration = Duration::from_secs(90);
/// Acknowledged records the producer must add after each fault before the next one.
pub const PROGRESS: u64 = 50;

/// One partition as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id (-1: none).
    pub leader: i32,
    /// The replicas' node ids.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' node ids.
    pub isr: Vec<i32>,
    /// The partition's error code.
    pub error: i16,
}

/// The broker (`node.id`) a shard node belongs to.
pub fn broker_of(node: i32) -> u16 {
    (node / 1000) as u16
}

/// The partitions of `topic` as Metadata at `addr` describes them, sorted; `None` when the
/// broker does not answer or does not list the topic.
pub fn topic_view_at(addr: SocketAddr, topic: &str) -> Option<Vec<PartitionView>> {
    let mut c = RawClient::try_connect_negotiated(addr, Duration::from_secs(3)).ok()?;
    let md = admin::metadata(&mut c).ok()?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    let mut view: Vec<PartitionView> = t
        .partitions
        .iter()
        .map(|p| PartitionView {
            partition: p.partition_index,
            leader: p.leader_id.0,
            replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
            isr: p.isr_nodes.iter().map(|r| r.0).collect(),
            error: p.error_code,
        })
        .collect();
    view.sort_by_key(|p| p.partition);
    Some(view)
}

/// The partitions of `topic` from the first live broker that answers.
pub fn topic_view(cluster: &Cluster, topic: &str) -> Option<Vec<PartitionView>> {
    cluster
        .live()
        .into_iter()
        .find_map(|n| topic_view_at(cluster.broker(n).addr(0), topic))
}

/// True when every partition has a leader on one of the brokers `live`.
pub fn led_by(view: &[PartitionView], live: &[u16]) -> bool {
    view.iter()
        .all(|p| p.leader >= 0 && live.contains(&broker_of(p.leader)))
}

/// True when every partition has a leader and its ISR is all of its replicas.
pub fn isr_full(view: &[PartitionView]) -> bool {
    view.iter().all(|p| {
        p.leader >= 0
            && p.isr.iter().collect::<BTreeSet<_>>() == p.replicas.iter().collect::<BTreeSet<_>>()
    })
}

/// Broker → how many partitions it leads.
pub fn leader_counts(view: &[PartitionView]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for p in view.iter().filter(|p| p.leader >= 0) {
        *counts.entry(broker_of(p.leader)).or_default() += 1;
    }
    counts
}

/// The directory of `topic`-`partition` on the broker of replica `node`.
pub fn replica_dir(cluster: &Cluster, node: i32, topic: &str, partition: i32) -> PathBuf {
    cluster
        .broker(broker_of(node))
        .partition_dir(topic, partition)
}

/// How many faults of each kind a run injects, and how.
#[derive(Clone, Debug)]
pub struct FaultPlan {
    /// `kill -9` of the broker leading the most partitions.
    pub leader_kills: usize,
    /// `kill -9` of the active controller.
    pub controller_kills: usize,
    /// SIGSTOP of the broker leading the most partitions, for [`FaultPlan::pause_for`].
    pub pauses: usize,
    /// A killed broker stays down a random time up to this before it is restarted.
    pub max_down: Duration,
    /// How long a paused broker stays paused (longer than `broker.session.timeout.ms`).
    pub pause_for: Duration,
    /// How long failover may take before the driver gives up waiting for it.
    pub failover_limit: Duration,
}

/// The kind of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `kill -9` of the broker leading the most partitions.
    LeaderKill,
    /// `kill -9` of the active controller.
    ControllerKill,
    /// SIGSTOP, then SIGCONT, of the broker leading the most partitions.
    Pause,
}

/// What one fault did and how the cluster took it.
#[derive(Clone, Debug)]
pub struct FaultOutcome {
    /// The kind.
    pub kind: FaultKind,
    /// The broker it hit.
    pub broker: u16,
    /// How many partitions of the topic that broker led.
    pub led: usize,
    /// Time from the fault to failover (see the module docs), `None` if it did not happen
    /// within [`FaultPlan::failover_limit`].
    pub failover: Option<Duration>,
    /// How long the broker was down or paused.
    pub down: Duration,
    /// Time from its restart (or SIGCONT) until it was registered and unfenced again, `None` if
    /// not within [`REJOIN_LIMIT`].
    pub rejoined: Option<Duration>,
    /// Whether every partition's ISR was full again within [`REJOIN_LIMIT`].
    pub isr_restored: bool,
    /// Whether the producer got [`PROGRESS`] more records acknowledged within
    /// [`REJOIN_LIMIT`] after the fault.
    pub progressed: bool,
    /// Whether the consumer group member started after the fault got its assignment within
    /// [`REJOIN_LIMIT`].
    pub consumer_resumed: bool,
    /// For a pause: partition → the paused broker's log of it, read while it was paused (only
    /// the partitions it led).
    pub paused_logs: BTreeMap<i32, ReplicaLog>,
}

impl FaultOutcome {
    /// One line describing it.
    pub fn describe(&self) -> String {
        let ms = |d: Option<Duration>| {
            d.map_or("never".to_string(), |d| format!("{} ms", d.as_millis()))
        };
        format!(
            "{:?} of broker {} (led {} partitions): failover {}, down {} ms, rejoined {}, \
             ISR {}, producer {}, new consumer {}",
            self.kind,
            self.broker,
            self.led,
            ms(self.failover),
            self.down.as_millis(),
            ms(self.rejoined),
            if self.isr_restored {
                "restored"
            } else {
                "NOT restored"
            },
            if self.progressed {
                "progressed"
            } else {
                "STALLED"
            },
            if self.consumer_resumed {
                "assigned"
            } else {
                "NOT assigned"
            },
        )
    }

    /// True when the cluster failed over, took the broker back, kept the producer going and
    /// gave the new consumer its assignment.
    pub fn recovered(&self) -> bool {
        self.failover.is_some()
            && self.rejoined.is_some()
            && self.isr_restored
            && self.progressed
            && self.consumer_resumed
    }
}

/// Drives faults against `cluster` while `workload` runs against `topic`.
pub struct FaultDriver<'a> {
    cluster: &'a mut Cluster,
    topic: String,
    plan: FaultPlan,
    rng: StdRng,
}

impl<'a> FaultDriver<'a> {
    /// A driver for `plan`, choosing random down times from `rng`.
    pub fn new(cluster: &'a mut Cluster, topic: &str, plan: FaultPlan, rng: StdRng) -> Self {
        FaultDriver {
            cluster,
            topic: topic.to_string(),
            plan,
            rng,
        }
    }

    /// Runs the plan (leader kills, then controller kills, then pauses), calling `report` with
    /// each fault's number, the total, and its outcome.
    pub fn run(
        &mut self,
        workload: &Workload,
        mut report: impl FnMut(usize, usize, &FaultOutcome),
    ) -> Vec<FaultOutcome> {
        let kinds: Vec<FaultKind> =
            std::iter::repeat_n(FaultKind::LeaderKill, self.plan.leader_kills)
                .chain(std::iter::repeat_n(
                    FaultKind::ControllerKill,
                    self.plan.controller_kills,
                ))
                .chain(std::iter::repeat_n(FaultKind::Pause, self.plan.pauses))
                .collect();
        let mut outcomes = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let outcome = self.fault(*kind, workload);
            report(i + 1, kinds.len(), &outcome);
            outcomes.push(outcome);
        }
        outcomes
    }

    /// The current view of the topic, waiting (up to [`REJOIN_LIMIT`]) for an answer.
    fn view(&self) -> Vec<PartitionView> {
        let mut view = None;
        let answered = wait_until(REJOIN_LIMIT, Duration::from_millis(100), || {
            view = topic_view(self.cluster, &self.topic);
            view.is_some()
        });
        assert!(answered, "no live broker describes {}", self.topic);
        view.expect("checked above")
    }

    /// The broker leading the most partitions (ties broken at random), and how many it leads.
    fn leader_most(&mut self) -> (u16, usize) {
        let counts = leader_counts(&self.view());
        let most = counts.values().copied().max().unwrap_or(0);
        let tied: Vec<u16> = counts
            .iter()
            .filter(|(_, n)| **n == most)
            .map(|(b, _)| *b)
            .collect();
        if tied.is_empty() {
            let live = self.cluster.live();
            return (live[self.rng.gen_range(0..live.len())], 0);
        }
        (tied[self.rng.gen_range(0..tied.len())], most)
    }

    /// Waits (up to the failover limit) until `done`; the time it took from `since`.
    fn failover_time(
        &self,
        since: Instant,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Option<Duration> {
        wait_until(self.plan.failover_limit, Duration::from_millis(50), || {
            done(self.cluster)
        })
        .then(|| since.elapsed())
    }

    /// True when Metadata from the live brokers shows every partition led by one of them.
    fn all_led(cluster: &Cluster, topic: &str) -> bool {
        let live = cluster.live();
        topic_view(cluster, topic).is_some_and(|v| led_by(&v, &live))
    }

    /// Injects one fault and waits until the cluster is whole again.
    fn fault(&mut self, kind: FaultKind, workload: &Workload) -> FaultOutcome {
        let acked_before = workload.acked();
        let topic = self.topic.clone();
        let (broker, led, controller) = match kind {
            FaultKind::ControllerKill => {
                let (node, epoch) = self.cluster.wait_active_controller(REJOIN_LIMIT);
                let broker = node as u16;
                let led = leader_counts(&self.view())
                    .get(&broker)
                    .copied()
                    .unwrap_or(0);
                (broker, led, Some((node, epoch)))
            }
            FaultKind::LeaderKill | FaultKind::Pause => {
                let (broker, led) = self.leader_most();
                (broker, led, None)
            }
        };
        let t0 = Instant::now();
        let mut paused_logs = BTreeMap::new();
        let failover;
        let down;
        if kind == FaultKind::Pause {
            let before = self.view();
            self.cluster.pause(broker);
            failover = self.failover_time(t0, |c| Self::all_led(c, &topic));
            for p in before.iter().filter(|p| broker_of(p.leader) == broker) {
                let dir = self
                    .cluster
                    .broker(broker)
                    .partition_dir(&topic, p.partition);
                if let Ok(log) = read_replica_log(&dir) {
                    paused_logs.insert(p.partition, log);
                }
            }
            if let Some(rest) = self.plan.pause_for.checked_sub(t0.elapsed()) {
                std::thread::sleep(rest);
            }
            down = t0.elapsed();
            self.cluster.resume(broker);
        } else {
            self.cluster.kill9(broker);
            failover = self.failover_time(t0, |c| {
                let controller_moved = controller.is_none_or(|(node, epoch)| {
                    c.active_controller()
                        .is_some_and(|(n, e)| n != node && e > epoch)
                });
                controller_moved && Self::all_led(c, &topic)
            });
            let max_down = self.plan.max_down.as_millis() as u64;
            std::thread::sleep(Duration::from_millis(self.rng.gen_range(0..=max_down)));
            down = t0.elapsed();
            self.cluster.start_again(broker);
        }
        let t1 = Instant::now();
        let all: BTreeSet<i32> = self.cluster.all_nodes().into_iter().collect();
        let rejoined = wait_until(REJOIN_LIMIT, Duration::from_millis(100), || {
            self.cluster.metadata_nodes().as_ref() == Some(&all)
        })
        .then(|| t1.elapsed());
        let isr_restored = wait_until(REJOIN_LIMIT, Duration::from_millis(100), || {
            topic_view(self.cluster, &topic).is_some_and(|v| isr_full(&v))
        });
        let progressed = workload.wait_acked(acked_before, PROGRESS, REJOIN_LIMIT);
        let consumer_resumed = workload.restart_consumer(REJOIN_LIMIT);
        FaultOutcome {
            kind,
            broker,
            led,
            failover,
            down,
            rejoined,
            isr_restored,
            progressed,
            consumer_resumed,
            paused_logs,
        }
    }
}
