//! The producer task: one per (core, leader node, connection), owning a set of partitions.
//!
//! Messages go to the partitions sticky-style (fill one partition's batch to `--batch-bytes`,
//! then move to the next, as Kafka's sticky partitioner does); a batch is sent when full or
//! when `--linger-ms` has passed. Up to `--max-in-flight` Produce requests are pipelined on the
//! connection, each holding at most one batch per partition. At a fixed rate, message k of a
//! task is *intended* to be sent at `start + k / rate`; its latency is measured from that
//! instant, so a producer that falls behind shows it in the percentiles instead of hiding it
//! (coordinated omission). Unlimited, a message's intended time is when it was created.

use crate::args::{KeySpec, ProduceArgs};
use crate::batch::{filler_pool, stamp, BatchBuilder, ProducerIdentity, Rng};
use crate::runner::{BenchError, Shared};
use crate::stats::{ErrorKey, RoleStats};
use bytes::Bytes;
use futures_lite::future;
use glommio::timer::Timer;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use sluice_net::client::{topic_name, Cluster, Connection, Pending};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes a fixed-rate task may buffer before it stops generating (like Kafka's buffer.memory).
const BUFFER_LIMIT: usize = 32 * 1024 * 1024;

/// What one producer task does.
#[derive(Debug, Clone)]
pub struct ProducerSpec {
    /// Producer options.
    pub args: ProduceArgs,
    /// The topic.
    pub topic: String,
    /// The partitions this task owns.
    pub partitions: Vec<i32>,
    /// This task's share of the rate, in messages per second (`None` = unlimited).
    pub rate: Option<f64>,
    /// Idempotent producer identity.
    pub producer: Option<ProducerIdentity>,
    /// Seed for sizes, keys and payloads.
    pub seed: u64,
    /// Timeout of a produce request (also sent as the request's timeout_ms).
    pub request_timeout: Duration,
}

struct ReadyBatch {
    data: Bytes,
    /// Uncompressed size, as counted in `Producer::buffered`.
    raw_size: usize,
    count: u64,
    payload_bytes: u64,
    intended: Vec<u64>,
}

struct Part {
    id: i32,
    leader: i32,
    sequence: i32,
    open: BatchBuilder,
    open_since: Option<Instant>,
    intended: Vec<u64>,
    ready: VecDeque<ReadyBatch>,
}

struct InFlight {
    pending: Option<Pending<ProduceResponse>>,
    batches: Vec<(i32, u64, u64, Vec<u64>)>,
    written_us: u64,
}

struct Producer {
    spec: ProducerSpec,
    cluster: Rc<Cluster>,
    shared: Arc<Shared>,
    stats: Arc<RoleStats>,
    parts: Vec<Part>,
    current: usize,
    conns: HashMap<i32, Rc<Connection>>,
    in_flight: VecDeque<InFlight>,
    buffered: usize,
    rng: Rng,
    pool: Vec<u8>,
    key_buf: Vec<u8>,
}

/// Runs one producer task until its share of the run is produced and acknowledged.
pub async fn run_task(
    spec: ProducerSpec,
    cluster: Rc<Cluster>,
    shared: Arc<Shared>,
    stats: Arc<RoleStats>,
) -> Result<(), BenchError> {
    let md = cluster.metadata();
    let parts = spec
        .partitions
        .iter()
        .map(|p| Part {
            id: *p,
            leader: md.leader(&spec.topic, *p).unwrap_or(-1),
            sequence: 0,
            open: BatchBuilder::new(),
            open_since: None,
            intended: Vec::new(),
            ready: VecDeque::new(),
        })
        .collect();
    let pool_len = (1 << 20).max(spec.args.size.max * 2);
    let mut p = Producer {
        rng: Rng::new(spec.seed ^ 0x5EED),
        pool: filler_pool(spec.seed, pool_len),
        spec,
        cluster,
        shared,
        stats,
        parts,
        current: 0,
        conns: HashMap::new(),
        in_flight: VecDeque::new(),
        buffered: 0,
        key_buf: Vec::new(),
    };
    if p.parts.is_empty() {
        return Ok(());
    }
    let r = p.run().await;
    if r.is_err() {
        p.shared.stop.store(true, Ordering::Relaxed);
    }
    r
}

impl Producer {
    async fn run(&mut self) -> Result<(), BenchError> {
        let clock = self.shared.clock;
        let linger = Duration::from_secs_f64(self.spec.args.linger_ms.max(0.0) / 1000.0);
        let interval_us = self.spec.rate.map(|r| 1e6 / r.max(1e-6));
        let start_us = self.shared.start_us;
        let end_us = self
            .shared
            .end
            .map(|e| start_us + e.saturating_duration_since(self.shared.start).as_micros() as u64);
        let mut sent_k: u64 = 0;
        let mut generating = true;
        let max_in_flight = self.spec.args.max_in_flight.max(1);
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // At a fixed rate the run ends with the last intended send time; a producer stuck
            // behind a full buffer stops at the deadline too.
            if generating
                && (interval_us.is_none() || self.buffered >= BUFFER_LIMIT)
                && self.shared.time_is_up()
            {
                generating = false;
            }
            // 1. Generate the messages that are due.
            if generating {
                match interval_us {
                    Some(iv) => {
                        let now = clock.now_us();
                        while self.buffered < BUFFER_LIMIT {
                            let intended = start_us + (sent_k as f64 * iv) as u64;
                            if intended > now {
                                break;
                            }
                            if end_us.is_some_and(|e| intended >= e) {
                                generating = false;
                                break;
                            }
                            if !self.shared.claim() {
                                generating = false;
                                break;
                            }
                            self.generate(intended)?;
                            sent_k += 1;
                        }
                    }
                    None => {
                        let mut n = 0;
                        while self.ready_count() < self.parts.len() && n < 10_000 {
                            if !self.shared.claim() {
                                generating = false;
                                break;
                            }
                            self.generate(clock.now_us())?;
                            n += 1;
                        }
                    }
                }
            }
            // 2. Close batches that lingered long enough (or all of them once done generating).
            let now = Instant::now();
            for i in 0..self.parts.len() {
                let due = self.parts[i].open_since.is_some_and(|t| now >= t + linger);
                if due || (!generating && !self.parts[i].open.is_empty()) {
                    self.close(i)?;
                }
            }
            // 3. Send what is ready.
            while self.in_flight.len() < max_in_flight && self.ready_count() > 0 {
                self.send_one().await?;
            }
            if !generating && self.in_flight.is_empty() && self.ready_count() == 0 {
                return Ok(());
            }
            // 4. Wait for a response, the next message, or a linger deadline.
            let mut wake: Option<Instant> = self
                .parts
                .iter()
                .filter_map(|p| p.open_since.map(|t| t + linger))
                .min();
            if generating {
                if let Some(iv) = interval_us {
                    // While the buffer is full, the next message cannot be generated anyway:
                    // wait for a response instead of spinning (which would starve the reactor).
                    if self.buffered < BUFFER_LIMIT {
                        let next = clock.instant(start_us + (sent_k as f64 * iv) as u64);
                        wake = Some(wake.map_or(next, |w| w.min(next)));
                    }
                } else if self.in_flight.len() < max_in_flight
                    || self.ready_count() < self.parts.len()
                {
                    // Unlimited: keep generating, letting other tasks run.
                    if let Some(f) = self.in_flight.front_mut() {
                        if let Some(p) = f.pending.as_mut() {
                            if let Some(r) = future::poll_once(p).await {
                                self.complete(r).await?;
                            }
                        }
                    }
                    glommio::yield_if_needed().await;
                    continue;
                }
                if let Some(end) = self.shared.end {
                    wake = Some(wake.map_or(end, |w| w.min(end)));
                }
            }
            // Never a zero-length sleep: the executor must get to poll for I/O completions.
            let sleep_for = wake
                .map(|w| w.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(100))
                .max(Duration::from_micros(50));
            match self.in_flight.front_mut().and_then(|f| f.pending.as_mut()) {
                Some(pending) => {
                    let r = future::or(async { Some(pending.await) }, async {
                        Timer::new(sleep_for).await;
                        None
                    })
                    .await;
                    if let Some(r) = r {
                        self.complete(r).await?;
                    }
                }
                None => {
                    if !sleep_for.is_zero() {
                        Timer::new(sleep_for).await;
                    }
                }
            }
        }
    }

    fn ready_count(&self) -> usize {
        self.parts.iter().filter(|p| !p.ready.is_empty()).count()
    }

    fn generate(&mut self, intended_us: u64) -> Result<(), BenchError> {
        let size = self.rng.range(
            self.spec.args.size.min as u64,
            self.spec.args.size.max as u64,
        ) as usize;
        let key: Option<&[u8]> = match self.spec.args.keys {
            KeySpec::None => None,
            KeySpec::Random => {
                self.key_buf.clear();
                let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
                self.key_buf.extend_from_slice(&a.to_le_bytes());
                self.key_buf.extend_from_slice(&b.to_le_bytes());
                Some(&self.key_buf)
            }
            KeySpec::Distinct(n) => {
                self.key_buf.clear();
                let k = self.rng.next_u64() % n;
                self.key_buf
                    .extend_from_slice(format!("key-{k}").as_bytes());
                Some(&self.key_buf)
            }
        };
        let offset = (self.rng.next_u64() as usize) % (self.pool.len() - size + 1);
        let pool = &self.pool[offset..offset + size];
        let part = &mut self.parts[self.current];
        let before = part.open.size();
        part.open.push((intended_us / 1000) as i64, key, size, |v| {
            v.copy_from_slice(pool);
            stamp(v, intended_us);
        });
        part.intended.push(intended_us);
        if part.open_since.is_none() {
            part.open_since = Some(Instant::now());
        }
        self.buffered += part.open.size() - before;
        if part.open.size() >= self.spec.args.batch_bytes {
            let i = self.current;
            self.close(i)?;
            self.current = (self.current + 1) % self.parts.len();
        }
        Ok(())
    }

    fn close(&mut self, i: usize) -> Result<(), BenchError> {
        let part = &mut self.parts[i];
        if part.open.is_empty() {
            return Ok(());
        }
        let count = part.open.count();
        let payload_bytes = part.open.payload_bytes();
        let raw_size = part.open.size();
        let data = part.open.finish(
            self.spec.args.compression,
            self.spec.producer,
            part.sequence,
        )?;
        part.sequence = part.sequence.wrapping_add(count);
        part.open_since = None;
        let intended = std::mem::take(&mut part.intended);
        part.ready.push_back(ReadyBatch {
            data,
            raw_size,
            count: count as u64,
            payload_bytes,
            intended,
        });
        Ok(())
    }

    async fn connection(&mut self, node: i32) -> Result<Rc<Connection>, BenchError> {
        if let Some(c) = self.conns.get(&node) {
            if !c.is_broken() {
                return Ok(c.clone());
            }
        }
        let c = Rc::new(self.cluster.connect_node(node).await?);
        self.conns.insert(node, c.clone());
        Ok(c)
    }

    /// Sends one request: the head batch of every ready partition led by the same node.
    async fn send_one(&mut self) -> Result<(), BenchError> {
        let Some(first) = self.parts.iter().find(|p| !p.ready.is_empty()) else {
            return Ok(());
        };
        let leader = first.leader;
        let mut partition_data = Vec::new();
        let mut batches = Vec::new();
        for part in self.parts.iter_mut().filter(|p| p.leader == leader) {
            if let Some(b) = part.ready.pop_front() {
                self.buffered = self.buffered.saturating_sub(b.raw_size);
                partition_data.push(
                    PartitionProduceData::default()
                        .with_index(part.id)
                        .with_records(Some(b.data)),
                );
                batches.push((part.id, b.count, b.payload_bytes, b.intended));
            }
        }
        let req = ProduceRequest::default()
            .with_acks(self.spec.args.acks.0)
            .with_timeout_ms(self.spec.request_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&self.spec.topic))
                .with_partition_data(partition_data)]);
        if leader < 0 {
            for (_, count, _, _) in &batches {
                self.stats.error(ErrorKey::Kafka(5), *count);
            }
            self.refresh().await?;
            return Ok(());
        }
        let conn = self.connection(leader).await?;
        if self.spec.args.acks.0 == 0 {
            conn.send_no_response(&req).await?;
            let now = self.shared.clock.now_us();
            for (_, count, bytes, intended) in batches {
                self.stats.add(count, bytes);
                self.stats
                    .latencies(intended.iter().map(|t| now.saturating_sub(*t)));
                self.shared.acked.fetch_add(count, Ordering::Relaxed);
            }
            return Ok(());
        }
        let pending = conn.submit(&req).await?;
        self.in_flight.push_back(InFlight {
            pending: Some(pending),
            batches,
            written_us: self.shared.clock.now_us(),
        });
        Ok(())
    }

    async fn complete(
        &mut self,
        result: sluice_net::client::Result<ProduceResponse>,
    ) -> Result<(), BenchError> {
        let Some(f) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let resp = result?;
        let now = self.shared.clock.now_us();
        let _ = f.written_us;
        let mut codes: HashMap<i32, i16> = HashMap::new();
        for t in &resp.responses {
            for p in &t.partition_responses {
                codes.insert(p.index, p.error_code);
            }
        }
        let mut refresh = false;
        for (partition, count, bytes, intended) in f.batches {
            match codes.get(&partition).copied().unwrap_or(-1) {
                0 => {
                    self.stats.add(count, bytes);
                    self.stats
                        .latencies(intended.iter().map(|t| now.saturating_sub(*t)));
                    self.shared.acked.fetch_add(count, Ordering::Relaxed);
                }
                code => {
                    self.stats.error(ErrorKey::Kafka(code), count);
                    refresh |= matches!(code, 3 | 5 | 6);
                }
            }
        }
        if refresh {
            self.refresh().await?;
        }
        Ok(())
    }

    /// Refreshes metadata after NOT_LEADER_OR_FOLLOWER and friends, rerouting partitions.
    async fn refresh(&mut self) -> Result<(), BenchError> {
        let md = self
            .cluster
            .refresh(std::slice::from_ref(&self.spec.topic))
            .await?;
        for p in &mut self.parts {
            p.leader = md.leader(&self.spec.topic, p.id).unwrap_or(-1);
        }
        Ok(())
    }
}
