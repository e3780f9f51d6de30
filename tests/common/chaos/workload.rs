//! The clients of a chaos run, each on its own thread, recording a [`History`]:
//!
//! * an idempotent producer (`enable.idempotence=true`, `acks=all`) writing record `id` to
//!   partition `id % partitions` at a steady rate, its value [`payload`]`(id)`, and recording
//!   every delivery report (acknowledged with its offset, or failed with its error). A producer
//!   that hits a fatal error (librdkafka's idempotence guarantees broken, e.g. an unrecoverable
//!   sequence gap) is recorded and replaced by a new one, so the run goes on;
//! * one consumer-group member (`enable.auto.commit=false`) reading throughout, recording
//!   every record it reads, committing its positions synchronously every
//!   [`COMMIT_EVERY`] (after processing), and starting a new assignment epoch at every
//!   assignment. When the fault driver asks ([`Workload::restart_consumer`]) the member is
//!   dropped without a last commit, as a crashed application would be, and a new member of the
//!   same group takes over: it must resume at the group's committed offsets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::history::{Acked, ConsumerEvent, FailedDelivery, History};
use crate::common::client_config;
use crate::common::group::{id_of, payload};

/// How often the consumer commits what it has processed.
pub const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// How many error texts each client keeps (the count goes on).
const KEPT_ERRORS: usize = 20;

/// The id of a record value the producer wrote: `Some` only when the whole value is exactly
/// [`payload`] of the id its prefix names.
pub fn id_in(value: Option<&[u8]>) -> Option<usize> {
    let value = value?;
    let id = id_of(value)?;
    (payload(id) == value).then_some(id)
}

/// Errors a client saw: how many, and the first few texts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorLog {
    /// How many.
    pub count: u64,
    /// The first [`KEPT_ERRORS`] texts.
    pub first: Vec<String>,
}

impl ErrorLog {
    fn push(&mut self, text: String) {
        self.count += 1;
        if self.first.len() < KEPT_ERRORS {
            self.first.push(text);
        }
    }
}

/// What the producer thread records.
#[derive(Default)]
struct ProducerLog {
    acked: Mutex<Vec<Acked>>,
    failed: Mutex<Vec<FailedDelivery>>,
    acked_count: AtomicU64,
    sent: AtomicUsize,
    /// Fatal errors (each one replaced the producer).
    fatal: Mutex<ErrorLog>,
}

/// Records every delivery report into a [`ProducerLog`].
struct DeliveryRecorder(Arc<ProducerLog>);

impl ClientContext for DeliveryRecorder {}

impl ProducerContext for DeliveryRecorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        match result {
            Ok(m) => {
                self.0.acked.lock().unwrap().push(Acked {
                    id,
                    partition: m.partition(),
                    offset: m.offset(),
                });
                self.0.acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, m)) => self.0.failed.lock().unwrap().push(FailedDelivery {
                id,
                partition: m.partition(),
                error: e.to_string(),
            }),
        }
    }
}

/// What the consumer thread records.
#[derive(Default)]
struct ConsumerLog {
    events: Mutex<Vec<ConsumerEvent>>,
    /// Partition → one past the highest offset read.
    reached: Mutex<BTreeMap<i32, i64>>,
    /// The last assignment epoch handed out (epochs count from 1).
    epochs: AtomicU32,
    /// The current assignment epoch of the live member (0: nothing assigned).
    current: AtomicU32,
    /// Members started (the first and every restart); member `n` is the n-th started.
    members: AtomicU64,
    /// The member that got the latest assignment.
    assigned_member: AtomicU64,
    errors: Mutex<ErrorLog>,
}

/// Turns every assignment of member `member` into a new epoch in the [`ConsumerLog`].
struct MemberContext {
    log: Arc<ConsumerLog>,
    member: u64,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let epoch = self.log.epochs.fetch_add(1, Ordering::SeqCst) + 1;
                self.log.current.store(epoch, Ordering::SeqCst);
                self.log
                    .assigned_member
                    .store(self.member, Ordering::SeqCst);
                let partitions = tpl.elements().iter().map(|e| e.partition()).collect();
                self.log
                    .events
                    .lock()
                    .unwrap()
                    .push(ConsumerEvent::Assigned { epoch, partitions });
            }
            Rebalance::Revoke(_) => self.log.current.store(0, Ordering::SeqCst),
            Rebalance::Error(e) => self
                .log
                .errors
                .lock()
                .unwrap()
                .push(format!("rebalance: {e}")),
        }
    }
}

/// What a chaos workload writes and reads.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// Its partition count (record `id` goes to partition `id % partitions`).
    pub partitions: i32,
    /// Records per second.
    pub rate: u32,
    /// The consumer group.
    pub group: String,
}

/// The running producer and consumer threads of a chaos run.
pub struct Workload {
    produced: Arc<ProducerLog>,
    consumed: Arc<ConsumerLog>,
    stop_producer: Arc<AtomicBool>,
    stop_consumer: Arc<AtomicBool>,
    restarts: Arc<AtomicU64>,
    producer: Option<JoinHandle<()>>,
    consumer: Option<JoinHandle<()>>,
}

impl Workload {
    /// Starts the producer and the consumer.
    pub fn start(config: WorkloadConfig) -> Workload {
        let produced = Arc::new(ProducerLog::default());
        let consumed = Arc::new(ConsumerLog::default());
        let stop_producer = Arc::new(AtomicBool::new(false));
        let stop_consumer = Arc::new(AtomicBool::new(false));
        let restarts = Arc::new(AtomicU64::new(0));
        let producer = {
            let (config, log, stop) = (config.clone(), produced.clone(), stop_producer.clone());
            std::thread::Builder::new()
                .name("chaos-producer".into())
                .spawn(move || produce(&config, &log, &stop))
                .expect("spawn producer thread")
        };
        let consumer = {
            let (config, log, stop, restarts) = (
                config,
                consumed.clone(),
                stop_consumer.clone(),
                restarts.clone(),
            );
            std::thread::Builder::new()
                .name("chaos-consumer".into())
                .spawn(move || consume_as_group(&config, &log, &stop, &restarts))
                .expect("spawn consumer thread")
        };
        Workload {
            produced,
            consumed,
            stop_producer,
            stop_consumer,
            restarts,
            producer: Some(producer),
            consumer: Some(consumer),
        }
    }

    /// Acknowledged records so far.
    pub fn acked(&self) -> u64 {
        self.produced.acked_count.load(Ordering::SeqCst)
    }

    /// Waits until `more` records beyond `since` are acknowledged; false if `timeout` passes.
    pub fn wait_acked(&self, since: u64, more: u64, timeout: Duration) -> bool {
        crate::common::wait_until(timeout, Duration::from_millis(50), || {
            self.acked() >= since + more
        })
    }

    /// Drops the group member without a last commit and starts a new one (after a failover,
    /// so that every failover is followed by a resume from the committed offsets), then waits
    /// (up to `timeout`) until the new member has its assignment. False if it has none by then.
    pub fn restart_consumer(&self, timeout: Duration) -> bool {
        let next = self.members() + 1;
        self.restarts.fetch_add(1, Ordering::SeqCst);
        crate::common::wait_until(timeout, Duration::from_millis(50), || {
            self.consumed.assigned_member.load(Ordering::SeqCst) >= next
        })
    }

    /// Members started so far.
    pub fn members(&self) -> u64 {
        self.consumed.members.load(Ordering::SeqCst)
    }

    /// Stops producing and waits (up to `timeout`) for the delivery report of every record
    /// sent.
    pub fn stop_producer(&mut self, timeout: Duration) {
        self.stop_producer.store(true, Ordering::SeqCst);
        if let Some(t) = self.producer.take() {
            t.join().expect("producer thread panicked");
        }
        let reported = || {
            self.produced.acked_count.load(Ordering::SeqCst) as usize
                + self.produced.failed.lock().unwrap().len()
        };
        crate::common::wait_until(timeout, Duration::from_millis(50), || {
            reported() >= self.produced.sent.load(Ordering::SeqCst)
        });
    }

    /// True once the consumer has read up to `ends` (partition → offset) on every partition.
    pub fn consumer_reached(&self, ends: &BTreeMap<i32, i64>) -> bool {
        let reached = self.consumed.reached.lock().unwrap();
        ends.iter()
            .all(|(p, end)| *end == 0 || reached.get(p).is_some_and(|r| r >= end))
    }

    /// Stops the consumer (closing its member) and returns the whole history.
    pub fn finish(mut self) -> History {
        self.stop_producer(Duration::ZERO);
        self.stop_consumer.store(true, Ordering::SeqCst);
        if let Some(t) = self.consumer.take() {
            t.join().expect("consumer thread panicked");
        }
        History {
            acked: std::mem::take(&mut *self.produced.acked.lock().unwrap()),
            failed: std::mem::take(&mut *self.produced.failed.lock().unwrap()),
            sent: self.produced.sent.load(Ordering::SeqCst),
            consumer: std::mem::take(&mut *self.consumed.events.lock().unwrap()),
        }
    }

    /// The producer's fatal errors (each replaced the producer).
    pub fn producer_fatal_errors(&self) -> ErrorLog {
        self.produced.fatal.lock().unwrap().clone()
    }

    /// The consumer's poll, commit and rebalance errors.
    pub fn consumer_errors(&self) -> ErrorLog {
        self.consumed.errors.lock().unwrap().clone()
    }
}

/// The idempotent, acks=all producer's configuration.
fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = client_config(bootstrap);
    cfg.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .set("request.timeout.ms", "10000")
        .set("retry.backoff.ms", "100");
    cfg
}

/// The producer thread: sends `rate` records a second until `stop`, then flushes.
fn produce(config: &WorkloadConfig, log: &Arc<ProducerLog>, stop: &AtomicBool) {
    let create = || -> ThreadedProducer<DeliveryRecorder> {
        producer_config(&config.bootstrap)
            .create_with_context(DeliveryRecorder(log.clone()))
            .expect("create producer")
    };
    let mut producer = create();
    let started = Instant::now();
    let mut next = 0usize;
    while !stop.load(Ordering::SeqCst) {
        if let Some((code, text)) = producer.client().fatal_error() {
            log.fatal.lock().unwrap().push(format!("{code:?}: {text}"));
            let _ = producer.flush(Duration::from_secs(5));
            producer = create();
        }
        let due = (started.elapsed().as_secs_f64() * f64::from(config.rate)) as usize;
        while next < due {
            let value = payload(next);
            let key = next.to_string();
            let partition = (next % config.partitions as usize) as i32;
            let record = BaseRecord::with_opaque_to(&config.topic, next)
                .partition(partition)
                .key(key.as_bytes())
                .payload(&value[..]);
            match producer.send(record) {
                Ok(()) => {}
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => break,
                Err((e, _)) => log.failed.lock().unwrap().push(FailedDelivery {
                    id: next,
                    partition,
                    error: format!("enqueue: {e}"),
                }),
            }
            next += 1;
            log.sent.store(next, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = producer.flush(Duration::from_secs(150));
}

/// One consumer-group member's configuration.
fn member_config(config: &WorkloadConfig) -> ClientConfig {
    let mut cfg = client_config(&config.bootstrap);
    cfg.set("group.id", &config.group)
        .set("client.id", "chaos-consumer")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100");
    cfg
}

/// The consumer thread: one member after another until `stop`; a member ends (without a last
/// commit) when `restarts` moves.
fn consume_as_group(
    config: &WorkloadConfig,
    log: &Arc<ConsumerLog>,
    stop: &AtomicBool,
    restarts: &AtomicU64,
) {
    while !stop.load(Ordering::SeqCst) {
        let seen = restarts.load(Ordering::SeqCst);
        let number = log.members.fetch_add(1, Ordering::SeqCst) + 1;
        log.current.store(0, Ordering::SeqCst);
        let member: BaseConsumer<MemberContext> = member_config(config)
            .create_with_context(MemberContext {
                log: log.clone(),
                member: number,
            })
            .expect("create consumer");
        member.subscribe(&[&config.topic]).expect("subscribe");
        // Partition → next offset to read, for the current epoch.
        let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
        let mut positions_epoch = 0;
        let mut dirty = false;
        let mut last_commit = Instant::now();
        while !stop.load(Ordering::SeqCst) && restarts.load(Ordering::SeqCst) == seen {
            let polled = member.poll(Duration::from_millis(100));
            let epoch = log.current.load(Ordering::SeqCst);
            if epoch != positions_epoch {
                positions.clear();
                positions_epoch = epoch;
                dirty = false;
            }
            match polled {
                None => {}
                Some(Ok(m)) => {
                    let (partition, offset) = (m.partition(), m.offset());
                    log.events.lock().unwrap().push(ConsumerEvent::Read {
                        epoch,
                        partition,
                        offset,
                        id: id_in(m.payload()),
                    });
                    let mut reached = log.reached.lock().unwrap();
                    let r = reached.entry(partition).or_insert(0);
                    *r = (*r).max(offset + 1);
                    positions.insert(partition, offset + 1);
                    dirty = true;
                }
                Some(Err(e)) => log.errors.lock().unwrap().push(format!("poll: {e}")),
            }
            if dirty && last_commit.elapsed() >= COMMIT_EVERY {
                commit(&member, &config.topic, &positions, log);
                dirty = false;
                last_commit = Instant::now();
            }
        }
    }
}

/// Commits `positions` synchronously and records one commit event per partition.
fn commit(
    member: &BaseConsumer<MemberContext>,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    log: &ConsumerLog,
) {
    let mut tpl = TopicPartitionList::new();
    for (p, next) in positions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*next))
            .expect("a valid offset");
    }
    let result = member.commit(&tpl, CommitMode::Sync);
    if let Err(e) = &result {
        log.errors.lock().unwrap().push(format!("commit: {e}"));
    }
    let mut events = log.events.lock().unwrap();
    for (p, next) in positions {
        events.push(ConsumerEvent::Commit {
            partition: *p,
            offset: *next,
            acknowledged: result.is_ok(),
        });
    }
}
