//! The consumer task: one per (core, leader node, connection), fetching its partitions from
//! their leader with one Fetch in flight at a time (the next offsets depend on the answer).

use crate::args::ConsumeArgs;
use crate::batch::walk;
use crate::runner::{list_offsets, BenchError, Shared};
use crate::stats::{ErrorKey, RoleStats};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use sluice_net::client::{topic_name, Cluster, Connection};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long e2e/mixed consumers keep waiting for acknowledged messages after the producers
/// finished.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// What a consumer's latency measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyMode {
    /// The round trip of each fetch that returned data.
    FetchRoundTrip,
    /// Receive time minus each message's intended send time.
    EndToEnd,
}

/// What one consumer task does.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer options.
    pub args: ConsumeArgs,
    /// The topic.
    pub topic: String,
    /// (partition, start offset).
    pub partitions: Vec<(i32, i64)>,
    /// What latency means.
    pub mode: LatencyMode,
    /// Whether producers run in this process (then consumers drain what they acknowledged).
    pub with_producers: bool,
}

/// Runs one consumer task until the run is over.
pub async fn run_task(
    spec: ConsumerSpec,
    cluster: Rc<Cluster>,
    shared: Arc<Shared>,
    stats: Arc<RoleStats>,
) -> Result<(), BenchError> {
    let r = run(&spec, &cluster, &shared, &stats).await;
    if r.is_err() {
        shared.stop.store(true, Ordering::Relaxed);
    }
    r
}

fn should_stop(spec: &ConsumerSpec, shared: &Shared, last_data: Instant) -> bool {
    if shared.stop.load(Ordering::Relaxed) {
        return true;
    }
    let consumed = shared.consumed.load(Ordering::Relaxed);
    if spec.with_producers {
        let done_us = shared.producers_done_us.load(Ordering::Relaxed);
        if shared.producers_running.load(Ordering::Relaxed) > 0 || done_us == 0 {
            return false;
        }
        consumed >= shared.acked.load(Ordering::Relaxed)
            || shared.clock.now_us() >= done_us + DRAIN_GRACE.as_micros() as u64
    } else {
        shared.consume_target.is_some_and(|t| consumed >= t)
            || shared.time_is_up()
            || last_data.elapsed().as_secs_f64() >= spec.args.idle_timeout
    }
}

async fn run(
    spec: &ConsumerSpec,
    cluster: &Rc<Cluster>,
    shared: &Shared,
    stats: &RoleStats,
) -> Result<(), BenchError> {
    let mut offsets: BTreeMap<i32, i64> = spec.partitions.iter().copied().collect();
    let mut leaders: BTreeMap<i32, i32> = BTreeMap::new();
    let refresh_leaders = |leaders: &mut BTreeMap<i32, i32>, md: &sluice_net::client::Metadata| {
        for p in spec.partitions.iter().map(|(p, _)| *p) {
            leaders.insert(p, md.leader(&spec.topic, p).unwrap_or(-1));
        }
    };
    refresh_leaders(&mut leaders, &cluster.metadata());
    let mut conns: HashMap<i32, Rc<Connection>> = HashMap::new();
    let mut last_data = Instant::now();
    let max_wait = Duration::from_millis(spec.args.fetch_max_wait_ms.max(0) as u64);
    let mut node_list: Vec<i32> = Vec::new();
    let mut turn = 0usize;
    while !should_stop(spec, shared, last_data) {
        node_list.clear();
        node_list.extend(leaders.values().copied().filter(|l| *l >= 0));
        node_list.sort_unstable();
        node_list.dedup();
        if node_list.is_empty() {
            let md = cluster.refresh(std::slice::from_ref(&spec.topic)).await?;
            refresh_leaders(&mut leaders, &md);
            glommio::timer::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let node = node_list[turn % node_list.len()];
        turn = turn.wrapping_add(1);
        let conn = match conns.get(&node) {
            Some(c) if !c.is_broken() => c.clone(),
            _ => {
                let c = Rc::new(cluster.connect_node(node).await?);
                conns.insert(node, c.clone());
                c
            }
        };
        let parts: Vec<FetchPartition> = leaders
            .iter()
            .filter(|(_, l)| **l == node)
            .map(|(p, _)| {
                FetchPartition::default()
                    .with_partition(*p)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offsets[p])
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(spec.args.partition_max_bytes)
            })
            .collect();
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(spec.args.fetch_max_wait_ms)
            .with_min_bytes(spec.args.fetch_min_bytes)
            .with_max_bytes(spec.args.fetch_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(&spec.topic))
                .with_partitions(parts)]);
        let version = conn.version::<FetchRequest>()?;
        let sent = Instant::now();
        let resp = conn.submit_at(&req, version, max_wait).await?.await?;
        let rtt = sent.elapsed();
        let now_us = shared.clock.now_us();
        let mut got = 0u64;
        let mut refresh = false;
        let mut reset = Vec::new();
        if resp.error_code != 0 {
            stats.error(ErrorKey::Kafka(resp.error_code), 1);
            refresh = true;
        }
        for t in &resp.responses {
            for p in &t.partitions {
                match p.error_code {
                    0 => {}
                    1 => {
                        stats.error(ErrorKey::Kafka(1), 1);
                        reset.push(p.partition_index);
                        continue;
                    }
                    code => {
                        stats.error(ErrorKey::Kafka(code), 1);
                        refresh |= matches!(code, 3 | 5 | 6 | 74 | 75 | 100);
                        continue;
                    }
                }
                let Some(records) = &p.records else { continue };
                let mut stamps = Vec::new();
                let from = offsets.get(&p.partition_index).copied().unwrap_or(0);
                let w = walk(records, true, from, |s| {
                    if spec.mode == LatencyMode::EndToEnd {
                        stamps.push(now_us.saturating_sub(s));
                    }
                })?;
                if let Some(next) = w.next_offset {
                    if let Some(o) = offsets.get_mut(&p.partition_index) {
                        *o = (*o).max(next);
                    }
                }
                if w.records > 0 {
                    stats.add(w.records, w.payload_bytes);
                    stats.latencies(stamps);
                    got += w.records;
                }
            }
        }
        if got > 0 {
            shared.consumed.fetch_add(got, Ordering::Relaxed);
            shared.last_consumed_us.fetch_max(now_us, Ordering::Relaxed);
            last_data = Instant::now();
            if spec.mode == LatencyMode::FetchRoundTrip {
                stats.latencies([rtt.as_micros() as u64]);
            }
        }
        if !reset.is_empty() {
            let ps: Vec<(i32, i32)> = reset.iter().map(|p| (*p, node)).collect();
            for (p, o) in list_offsets(cluster, &spec.topic, &ps, -2).await? {
                offsets.insert(p, o);
            }
        }
        if refresh {
            let md = cluster.refresh(std::slice::from_ref(&spec.topic)).await?;
            refresh_leaders(&mut leaders, &md);
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
