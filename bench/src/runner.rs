//! Setup, executors and the live line.
//!
//! Setup runs on one executor first: bootstrap, Metadata, CreateTopics when producing to a
//! missing topic, InitProducerId for idempotence, ListOffsets for consumers. It yields a
//! [`Plan`] that every core then follows: core k takes every `cores`-th partition, groups them by
//! leader node and opens `--connections` connections per leader for each side.

use crate::args::{BenchArgs, CommonArgs, ConsumeArgs, ProduceArgs, StartFrom, Workload};
use crate::batch::{BatchError, ProducerIdentity};
use crate::consume::{self, ConsumerSpec, LatencyMode};
use crate::produce::{self, ProducerSpec};
use crate::stats::{LiveLine, Role, RoleStats, Summary};
use crate::{e2e, mixed};
use glommio::{LocalExecutorBuilder, Placement};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, InitProducerIdRequest, ListOffsetsRequest};
use sluice_net::client::{error_name, topic_name, ClientError, ClientOptions, Cluster};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why a bench could not run (or stopped early).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The broker could not be reached or failed a request.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The topic to consume does not exist.
    #[error("topic '{0}' does not exist (UNKNOWN_TOPIC_OR_PARTITION); produce to it first or check --topic")]
    UnknownTopic(String),
    /// A partition has no leader or reports an error in Metadata.
    #[error("topic '{topic}' partition {partition}: {reason}")]
    Partition {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// What is wrong.
        reason: String,
    },
    /// Invalid options.
    #[error("{0}")]
    Usage(String),
    /// Locked memory too low for the executors.
    #[error("{0}")]
    Memlock(#[from] sluice_tuning::memlock::MemlockTooLow),
    /// An executor could not start or died.
    #[error("executor: {0}")]
    Executor(String),
    /// A batch could not be built or read.
    #[error("{0}")]
    Batch(#[from] BatchError),
}

/// One clock for the whole run: microseconds since the UNIX epoch, advanced by a monotonic
/// clock so that it never jumps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_us: u64,
}

impl Clock {
    /// A clock reading the wall time once, now.
    pub fn new() -> Clock {
        let base_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Clock {
            base: Instant::now(),
            base_us,
        }
    }

    /// Microseconds since the UNIX epoch.
    pub fn now_us(&self) -> u64 {
        self.base_us + self.base.elapsed().as_micros() as u64
    }

    /// The instant of a reading.
    pub fn instant(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us.saturating_sub(self.base_us))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What setup found and decided, shared by every core.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The topic.
    pub topic: String,
    /// (partition, leader node), by partition.
    pub partitions: Vec<(i32, i32)>,
    /// Start offset per partition for consumers.
    pub start_offsets: BTreeMap<i32, i64>,
    /// The idempotent producer's identity.
    pub producer: Option<ProducerIdentity>,
}

/// State shared by all cores while running.
pub struct Shared {
    /// Raised on a fatal error (or when done) to stop every task.
    pub stop: AtomicBool,
    /// The first fatal error.
    pub fatal: Mutex<Option<BenchError>>,
    /// The run's clock.
    pub clock: Clock,
    /// When the measurement started.
    pub start: Instant,
    /// The same instant on the clock (fixed-rate producers count intended times from it).
    pub start_us: u64,
    /// When producing / consuming for a duration ends.
    pub end: Option<Instant>,
    /// Message tickets handed to producers so far.
    pub claimed: AtomicU64,
    /// Produce message quota (`--messages`).
    pub quota: Option<u64>,
    /// Messages acknowledged by the broker (e2e consumers wait for these).
    pub acked: AtomicU64,
    /// Producer tasks still running.
    pub producers_running: AtomicUsize,
    /// When the last producer finished (micros on the clock; 0 = not yet).
    pub producers_done_us: AtomicU64,
    /// Messages consumed so far, across cores.
    pub consumed: AtomicU64,
    /// When a consumer last received data (micros on the clock; 0 = never).
    pub last_consumed_us: AtomicU64,
    /// Consume target (`--messages`, consume workload only).
    pub consume_target: Option<u64>,
}

impl Shared {
    /// Claims one message to produce; false once the quota is used up or the run is over.
    pub fn claim(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.quota {
            Some(q) => self.claimed.fetch_add(1, Ordering::Relaxed) < q,
            None => true,
        }
    }

    /// Records a fatal error (the first one wins) and stops everything.
    pub fn fail(&self, e: BenchError) {
        let mut f = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the duration is over.
    pub fn time_is_up(&self) -> bool {
        self.end.is_some_and(|e| Instant::now() >= e)
    }
}

/// Everything a core needs.
struct CoreCtx {
    core: usize,
    common: CommonArgs,
    produce: Option<(ProduceArgs, Option<f64>)>,
    consume: Option<(ConsumeArgs, LatencyMode)>,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    produce_stats: Option<Arc<RoleStats>>,
    consume_stats: Option<Arc<RoleStats>>,
    producer_tasks_total: usize,
}

/// The client options from the command line.
pub fn client_options(common: &CommonArgs) -> ClientOptions {
    ClientOptions {
        client_id: "sluice-bench".into(),
        connect_timeout: Duration::from_millis(common.connect_timeout_ms.max(1)),
        request_timeout: Duration::from_millis(common.request_timeout_ms.max(1)),
        ..ClientOptions::default()
    }
}

/// Partitions of `plan` for `core`, grouped into per-task lists: by leader node, then split
/// over `connections` tasks.
pub fn task_partitions(
    plan: &Plan,
    cores: usize,
    core: usize,
    connections: usize,
) -> Vec<Vec<i32>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (i, (p, leader)) in plan.partitions.iter().enumerate() {
        if i % cores == core {
            by_leader.entry(*leader).or_default().push(*p);
        }
    }
    let mut tasks = Vec::new();
    for parts in by_leader.into_values() {
        let n = connections.max(1).min(parts.len());
        let mut split = vec![Vec::new(); n];
        for (i, p) in parts.into_iter().enumerate() {
            split[i % n].push(p);
        }
        tasks.extend(split);
    }
    tasks
}

/// Runs the bench described by `args` and returns its summary (nothing is printed on stdout;
/// the live line goes to stderr unless `--quiet`).
pub fn execute(args: &BenchArgs) -> Result<Summary, BenchError> {
    let common = args.workload.common().clone();
    if common.cores == 0 {
        return Err(BenchError::Usage("--cores must be at least 1".into()));
    }
    let (produce, consume) = match &args.workload {
        Workload::Produce { produce, .. } => (
            Some((produce.clone(), produce.rate.filter(|r| *r > 0.0))),
            None,
        ),
        Workload::Consume { consume, .. } => {
            (None, Some((consume.clone(), LatencyMode::FetchRoundTrip)))
        }
        Workload::E2e {
            produce, consume, ..
        } => {
            let mut c = consume.clone();
            c.from = Some(e2e::start(consume));
            (
                Some((produce.clone(), e2e::rate(produce))),
                Some((c, LatencyMode::EndToEnd)),
            )
        }
        Workload::Mixed {
            produce, consume, ..
        } => {
            let mut c = consume.clone();
            c.from = Some(mixed::start(consume));
            (
                Some((produce.clone(), mixed::rate(produce))),
                Some((c, LatencyMode::EndToEnd)),
            )
        }
    };
    if let Some((p, _)) = &produce {
        if p.partitions < 1 {
            return Err(BenchError::Usage("--partitions must be at least 1".into()));
        }
        if p.idempotence && p.acks.0 != -1 {
            return Err(BenchError::Usage(
                "--idempotence needs --acks all (as Kafka requires)".into(),
            ));
        }
        if p.idempotence && p.max_in_flight > 5 {
            return Err(BenchError::Usage(
                "--idempotence allows at most 5 requests in flight (--max-in-flight)".into(),
            ));
        }
        if consume.is_some() && p.size.min < crate::batch::STAMP_LEN {
            return Err(BenchError::Usage(format!(
                "end-to-end latency needs messages of at least {} bytes (--size)",
                crate::batch::STAMP_LEN
            )));
        }
    }
    let io_memory = sluice_tuning::memlock::io_memory_per_shard(
        sluice_tuning::memlock::memlock_limit(),
        common.cores,
    )?;

    // Setup on one executor.
    let setup_common = common.clone();
    let setup_produce = produce.as_ref().map(|(p, _)| p.clone());
    let setup_from = consume
        .as_ref()
        .map(|(c, _)| c.from.unwrap_or(StartFrom::Earliest));
    let plan = LocalExecutorBuilder::new(Placement::Unbound)
        .name("bench-setup")
        .io_memory(io_memory)
        .spawn(
            move || async move { setup(&setup_common, setup_produce.as_ref(), setup_from).await },
        )
        .map_err(|e| BenchError::Executor(format!("cannot start the setup executor: {e}")))?
        .join()
        .map_err(|e| BenchError::Executor(format!("setup executor failed: {e}")))??;
    let plan = Arc::new(plan);

    let duration = match (common.duration, common.messages) {
        (Some(d), _) => Some(Duration::from_secs_f64(d.max(0.0))),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let producer_tasks_total: usize = if produce.is_some() {
        (0..common.cores)
            .map(|c| task_partitions(&plan, common.cores, c, common.connections).len())
            .sum()
    } else {
        0
    };
    let clock = Clock::new();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
        clock,
        start,
        start_us: clock.now_us(),
        end: duration.map(|d| start + d),
        claimed: AtomicU64::new(0),
        quota: if produce.is_some() {
            common.messages
        } else {
            None
        },
        acked: AtomicU64::new(0),
        producers_running: AtomicUsize::new(producer_tasks_total),
        producers_done_us: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        last_consumed_us: AtomicU64::new(0),
        consume_target: if produce.is_none() {
            common.messages
        } else {
            None
        },
    });
    let mut roles = Vec::new();
    let produce_role = produce.as_ref().map(|_| {
        Role::new(
            "produce",
            "acknowledgement time − intended send time (per message)",
            common.cores,
        )
    });
    let consume_role = consume.as_ref().map(|(_, mode)| match mode {
        LatencyMode::FetchRoundTrip => Role::new(
            "consume",
            "fetch round trip (per fetch returning data)",
            common.cores,
        ),
        LatencyMode::EndToEnd => Role::new(
            if matches!(args.workload, Workload::E2e { .. }) {
                "e2e"
            } else {
                "consume"
            },
            "receive time − intended send time (per message, one clock)",
            common.cores,
        ),
    });
    roles.extend(produce_role.clone());
    roles.extend(consume_role.clone());

    let finished = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for core in 0..common.cores {
        let ctx = CoreCtx {
            core,
            common: common.clone(),
            produce: produce.clone(),
            consume: consume.clone(),
            plan: plan.clone(),
            shared: shared.clone(),
            produce_stats: produce_role.as_ref().map(|r| r.cores[core].clone()),
            consume_stats: consume_role.as_ref().map(|r| r.cores[core].clone()),
            producer_tasks_total,
        };
        let placement = match common.pin {
            Some(first) => Placement::Fixed((first + core) % cpus),
            None => Placement::Unbound,
        };
        let done = finished.clone();
        let fail = shared.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("bench-{core}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                let shared = ctx.shared.clone();
                if let Err(e) = run_core(ctx).await {
                    shared.fail(e);
                }
                done.fetch_add(1, Ordering::Relaxed);
            });
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                fail.fail(BenchError::Executor(format!(
                    "cannot start executor {core}: {e}"
                )));
                finished.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    let mut live = LiveLine::new(roles.clone());
    let mut last_line = Instant::now();
    while finished.load(Ordering::Relaxed) < common.cores {
        std::thread::sleep(Duration::from_millis(50));
        if last_line.elapsed() >= Duration::from_secs(1) {
            let interval = last_line.elapsed();
            last_line = Instant::now();
            if !common.quiet {
                eprintln!("{}", live.line(start.elapsed(), interval));
            }
        }
    }
    for h in handles {
        if let Err(e) = h.join() {
            shared.fail(BenchError::Executor(format!("an executor failed: {e}")));
        }
    }
    let elapsed = start.elapsed();
    if let Some(e) = shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        return Err(e);
    }
    Ok(Summary {
        workload: args.workload.name().to_string(),
        duration_s: elapsed.as_secs_f64(),
        roles: roles
            .iter()
            .map(|r| {
                // The producers' throughput is over the time they ran, not the consumers' drain.
                let done_us = shared.producers_done_us.load(Ordering::Relaxed);
                let last_us = shared.last_consumed_us.load(Ordering::Relaxed);
                if r.name == "produce" && done_us > shared.start_us {
                    r.summary(Duration::from_micros(done_us - shared.start_us))
                } else if r.name == "consume" && produce_role.is_none() && last_us > shared.start_us
                {
                    // A consume-only run ends with an idle wait; rates cover the time data flowed.
                    r.summary(Duration::from_micros(last_us - shared.start_us))
                } else {
                    r.summary(elapsed)
                }
            })
            .collect(),
    })
}

async fn setup(
    common: &CommonArgs,
    produce: Option<&ProduceArgs>,
    from: Option<StartFrom>,
) -> Result<Plan, BenchError> {
    let cluster = Cluster::connect(
        std::slice::from_ref(&common.bootstrap),
        &client_options(common),
    )
    .await?;
    let topic = common.topic.clone();
    let mut md = cluster.refresh(std::slice::from_ref(&topic)).await?;
    let exists = md.topics.get(&topic).is_some_and(|t| t.error_code == 0);
    if !exists {
        match produce {
            Some(p) => {
                cluster
                    .create_topic(&topic, p.partitions, p.replication_factor)
                    .await?;
                // Wait (bounded) for every partition to have a leader.
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    md = cluster.refresh(std::slice::from_ref(&topic)).await?;
                    let ready = md.topics.get(&topic).is_some_and(|t| {
                        t.error_code == 0
                            && !t.partitions.is_empty()
                            && t.partitions.values().all(|p| p.leader >= 0)
                    });
                    if ready {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(BenchError::Usage(format!(
                            "topic '{topic}' was created but has no leaders after 10 s"
                        )));
                    }
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            }
            None => {
                let code = md.topics.get(&topic).map(|t| t.error_code).unwrap_or(3);
                if code == 3 {
                    return Err(BenchError::UnknownTopic(topic));
                }
                return Err(BenchError::Partition {
                    topic,
                    partition: -1,
                    reason: format!("Metadata error {} ({code})", error_name(code)),
                });
            }
        }
    }
    let t = md
        .topics
        .get(&topic)
        .ok_or_else(|| BenchError::UnknownTopic(topic.clone()))?;
    let mut partitions = Vec::new();
    for (p, pm) in &t.partitions {
        if pm.error_code != 0 && pm.leader < 0 {
            return Err(BenchError::Partition {
                topic: topic.clone(),
                partition: *p,
                reason: format!("{} ({})", error_name(pm.error_code), pm.error_code),
            });
        }
        if pm.leader < 0 {
            return Err(BenchError::Partition {
                topic: topic.clone(),
                partition: *p,
                reason: "no leader".into(),
            });
        }
        partitions.push((*p, pm.leader));
    }
    if partitions.is_empty() {
        return Err(BenchError::UnknownTopic(topic));
    }
    let producer = match produce {
        Some(p) if p.idempotence => {
            let conn = cluster.control().await?;
            let resp = conn
                .send(
                    &InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                        .with_producer_epoch(-1),
                )
                .await?;
            if resp.error_code != 0 {
                return Err(ClientError::Kafka {
                    what: "InitProducerId".into(),
                    code: resp.error_code,
                    message: None,
                }
                .into());
            }
            Some(ProducerIdentity {
                id: resp.producer_id.0,
                epoch: resp.producer_epoch,
            })
        }
        _ => None,
    };
    let mut start_offsets = BTreeMap::new();
    if let Some(from) = from {
        match from {
            StartFrom::Offset(o) => {
                for (p, _) in &partitions {
                    start_offsets.insert(*p, o);
                }
            }
            StartFrom::Earliest | StartFrom::Latest => {
                let ts = if from == StartFrom::Earliest { -2 } else { -1 };
                let cluster = Rc::new(cluster);
                for (p, o) in list_offsets(&cluster, &topic, &partitions, ts).await? {
                    start_offsets.insert(p, o);
                }
            }
        }
    }
    Ok(Plan {
        topic,
        partitions,
        start_offsets,
        producer,
    })
}

/// ListOffsets (`timestamp` -2 = earliest, -1 = latest) for `partitions` (partition, leader),
/// each asked of its leader.
pub async fn list_offsets(
    cluster: &Rc<Cluster>,
    topic: &str,
    partitions: &[(i32, i32)],
    timestamp: i64,
) -> Result<Vec<(i32, i64)>, BenchError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, l) in partitions {
        by_leader.entry(*l).or_default().push(*p);
    }
    let mut out = Vec::new();
    for (leader, parts) in by_leader {
        let conn = cluster.connect_node(leader).await?;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(*p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let resp = conn.send(&req).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(BenchError::Partition {
                        topic: topic.to_string(),
                        partition: p.partition_index,
                        reason: format!(
                            "ListOffsets: {} ({})",
                            error_name(p.error_code),
                            p.error_code
                        ),
                    });
                }
                out.push((p.partition_index, p.offset));
            }
        }
    }
    Ok(out)
}

async fn run_core(ctx: CoreCtx) -> Result<(), BenchError> {
    let cluster = Rc::new(
        Cluster::connect(
            std::slice::from_ref(&ctx.common.bootstrap),
            &client_options(&ctx.common),
        )
        .await?,
    );
    cluster
        .refresh(std::slice::from_ref(&ctx.plan.topic))
        .await?;
    let mut tasks = Vec::new();
    if let (Some((p, rate)), Some(stats)) = (&ctx.produce, &ctx.produce_stats) {
        let specs = task_partitions(
            &ctx.plan,
            ctx.common.cores,
            ctx.core,
            ctx.common.connections,
        );
        let per_task = rate.map(|r| r / ctx.producer_tasks_total.max(1) as f64);
        for (i, parts) in specs.into_iter().enumerate() {
            let spec = ProducerSpec {
                args: p.clone(),
                topic: ctx.plan.topic.clone(),
                partitions: parts,
                rate: per_task,
                producer: ctx.plan.producer,
                seed: (ctx.core as u64) << 32 | i as u64,
                request_timeout: Duration::from_millis(ctx.common.request_timeout_ms),
            };
            let (cluster, shared, stats) = (cluster.clone(), ctx.shared.clone(), stats.clone());
            tasks.push(glommio::spawn_local(async move {
                let r = produce::run_task(spec, cluster, shared.clone(), stats).await;
                if shared.producers_running.fetch_sub(1, Ordering::Relaxed) == 1 {
                    shared
                        .producers_done_us
                        .store(shared.clock.now_us(), Ordering::Relaxed);
                }
                r
            }));
        }
    }
    if let (Some((c, mode)), Some(stats)) = (&ctx.consume, &ctx.consume_stats) {
        let specs = task_partitions(
            &ctx.plan,
            ctx.common.cores,
            ctx.core,
            ctx.common.connections,
        );
        for parts in specs {
            let spec = ConsumerSpec {
                args: c.clone(),
                topic: ctx.plan.topic.clone(),
                partitions: parts
                    .iter()
                    .map(|p| (*p, ctx.plan.start_offsets.get(p).copied().unwrap_or(0)))
                    .collect(),
                mode: *mode,
                with_producers: ctx.produce.is_some(),
            };
            let (cluster, shared, stats) = (cluster.clone(), ctx.shared.clone(), stats.clone());
            tasks.push(glommio::spawn_local(consume::run_task(
                spec, cluster, shared, stats,
            )));
        }
    }
    let mut first_err = None;
    for t in tasks {
        if let Err(e) = t.await {
            ctx.shared.stop.store(true, Ordering::Relaxed);
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
