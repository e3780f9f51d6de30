//! Helpers for tests of replicated partitions against a [`Cluster`]:
//!
//! * [`PartitionState`]: one partition as Metadata describes it (leader, leader epoch,
//!   replicas, ISR), read from the first live broker that answers, and [`wait_states`] to wait
//!   for a condition on a topic's partitions;
//! * [`create_replicated_topic`]: CreateTopics with a replication factor and topic configs,
//!   waiting until every partition has a leader and a full ISR;
//! * [`Load`]: a producer thread writing record `id` to partition `id % partitions` at a steady
//!   rate until stopped, its delivery reports in a [`DeliveryLog`];
//! * [`read_back`] and [`check_acknowledged`]: the log as a fresh consumer reads it, and the
//!   checks that every acknowledged record is there once, at its offset, in order;
//! * [`find_coordinator`]: FindCoordinator for a group, from any live broker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use super::cluster::Cluster;
use super::group::{id_of, payload};
use super::{admin, client_config, consume, producer, wait_until, DeliveryLog, RawClient};

/// The internal topic holding consumer-group commits.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One partition as a Metadata answer describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id (-1: none).
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The replicas' node ids, in assignment order.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' node ids.
    pub isr: Vec<i32>,
    /// The partition's error code.
    pub error: i16,
}

impl PartitionState {
    /// True when the partition has a leader and every replica is in the ISR.
    pub fn isr_full(&self) -> bool {
        self.leader >= 0
            && self.isr.iter().collect::<BTreeSet<_>>()
                == self.replicas.iter().collect::<BTreeSet<_>>()
    }

    /// The replicas other than the leader.
    pub fn followers(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| *r != self.leader)
            .collect()
    }
}

/// The broker (`node.id`) a shard node belongs to.
pub fn broker_of(node: i32) -> u16 {
    u16::try_from(node / 1000).expect("a shard node id of a broker")
}

/// The partitions of `topic` as Metadata at `addr` describes them, sorted; `None` when the
/// broker does not answer or does not list the topic.
pub fn partition_states_at(addr: SocketAddr, topic: &str) -> Option<Vec<PartitionState>> {
    let mut c = RawClient::try_connect_negotiated(addr, Duration::from_secs(3)).ok()?;
    let md = admin::metadata(&mut c).ok()?;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))?;
    let mut states: Vec<PartitionState> = t
        .partitions
        .iter()
        .map(|p| PartitionState {
            partition: p.partition_index,
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
            isr: p.isr_nodes.iter().map(|r| r.0).collect(),
            error: p.error_code,
        })
        .collect();
    states.sort_by_key(|p| p.partition);
    (!states.is_empty()).then_some(states)
}

/// The partitions of `topic` from the first live broker that answers.
pub fn partition_states(cluster: &Cluster, topic: &str) -> Option<Vec<PartitionState>> {
    cluster
        .live()
        .into_iter()
        .find_map(|n| partition_states_at(cluster.broker(n).addr(0), topic))
}

/// Waits (up to `timeout`) until the partitions of `topic` satisfy `cond`, and returns them;
/// panics with `what` and the last answer otherwise.
pub fn wait_states(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&[PartitionState]) -> bool,
) -> Vec<PartitionState> {
    let mut last = None;
    let ok = wait_until(timeout, Duration::from_millis(100), || {
        last = partition_states(cluster, topic).or(last.take());
        last.as_deref().is_some_and(&mut cond)
    });
    assert!(
        ok,
        "{topic}: {what} did not happen within {timeout:?}; last Metadata: {last:#?}"
    );
    last.expect("checked above")
}

/// True when every partition has a leader and a full ISR.
pub fn all_isr_full(states: &[PartitionState]) -> bool {
    states.iter().all(PartitionState::isr_full)
}

/// True when every partition is led by a node of one of the brokers `live`.
pub fn all_led_by(states: &[PartitionState], live: &[u16]) -> bool {
    states
        .iter()
        .all(|p| p.leader >= 0 && live.contains(&broker_of(p.leader)))
}

/// Creates `topic` with the AdminClient (`partitions`, `replication_factor`, `configs` as
/// topic configs) and waits (up to `timeout`) until every partition has its replicas, a
/// leader and a full ISR; returns the partitions then.
pub fn create_replicated_topic(
    cluster: &Cluster,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Vec<PartitionState> {
    let admin: AdminClient<DefaultClientContext> = client_config(&cluster.bootstrap())
        .create()
        .expect("admin client");
    let opts = AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(30)));
    let mut new = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let results = futures::executor::block_on(admin.create_topics([&new], &opts))
        .expect("CreateTopics request");
    for r in results {
        if let Err((name, code)) = r {
            panic!("CreateTopics {name} (RF {replication_factor}, {configs:?}): {code:?}");
        }
    }
    wait_states(
        cluster,
        topic,
        timeout,
        "every partition with its replicas, a leader and a full ISR",
        |s| {
            s.len() == partitions as usize
                && s.iter()
                    .all(|p| p.replicas.len() == replication_factor as usize)
                && all_isr_full(s)
        },
    )
}

/// What a [`Load`] producer did, once stopped.
#[derive(Debug)]
pub struct LoadReport {
    /// Records handed to the producer (ids `0..sent`).
    pub sent: usize,
    /// The producer's fatal error, if it hit one (idempotence guarantees broken).
    pub fatal: Option<String>,
    /// Whether every record sent got its delivery report before the flush limit.
    pub all_reported: bool,
}

/// A producer thread writing record `id` (key `id`, value [`payload`]`(id)`) to partition
/// `id % partitions` of a topic at a steady rate until stopped; every delivery report goes to
/// [`Load::log`], keyed by the id.
pub struct Load {
    log: Arc<DeliveryLog>,
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(Option<String>, bool)>>,
}

impl Load {
    /// Starts writing `rate` records a second to `topic` with the librdkafka properties `opts`
    /// (e.g. `enable.idempotence=true`, `acks=all`).
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        rate: u32,
        opts: &[(&str, &str)],
    ) -> Load {
        let (p, log) = producer(bootstrap, opts);
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (topic, sent, stop, log) =
                (topic.to_string(), sent.clone(), stop.clone(), log.clone());
            std::thread::Builder::new()
                .name("load-producer".into())
                .spawn(move || {
                    let started = Instant::now();
                    let mut next = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as usize;
                        while next < due {
                            let value = payload(next);
                            let key = next.to_string();
                            let record = BaseRecord::with_opaque_to(&topic, next)
                                .partition((next % partitions as usize) as i32)
                                .key(key.as_bytes())
                                .payload(&value[..]);
                            match p.send(record) {
                                Ok(()) => {}
                                Err((
                                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                    _,
                                )) => break,
                                Err((e, _)) => {
                                    log.failed
                                        .lock()
                                        .unwrap()
                                        .push((next, format!("enqueue: {e}")));
                                    log.failed_count.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            next += 1;
                            sent.store(next, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let all_reported = p.flush(Duration::from_secs(60)).is_ok();
                    let fatal = p
                        .client()
                        .fatal_error()
                        .map(|(code, text)| format!("{code:?}: {text}"));
                    (fatal, all_reported)
                })
                .expect("spawn load producer")
        };
        Load {
            log,
            sent,
            stop,
            thread: Some(thread),
        }
    }

    /// The delivery reports so far.
    pub fn log(&self) -> &DeliveryLog {
        &self.log
    }

    /// Acknowledged records so far.
    pub fn acked(&self) -> u64 {
        self.log.acked()
    }

    /// Waits until `more` records beyond `since` are acknowledged; false if `timeout` passes.
    pub fn wait_acked(&self, since: u64, more: u64, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            self.acked() >= since + more
        })
    }

    /// Stops sending, flushes (up to a minute) and reports.
    pub fn stop(&mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let (fatal, all_reported) = self
            .thread
            .take()
            .map(|t| t.join().expect("load producer panicked"))
            .unwrap_or((None, true));
        LoadReport {
            sent: self.sent.load(Ordering::SeqCst),
            fatal,
            all_reported,
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One record of a partition as read back: its offset and the id in its value (`None` when
/// the value is not a [`payload`]).
pub type ReadRecord = (i64, Option<usize>);

/// Reads every partition of `topic` from its log start to its high watermark with a fresh
/// consumer: partition → its records in offset order.
pub fn read_back(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, Vec<ReadRecord>> {
    let ranges: Vec<(i32, i64, i64)> = (0..partitions)
        .map(|p| {
            let (low, high) = super::watermarks(bootstrap, topic, p);
            (p, low, high)
        })
        .collect();
    let mut read: BTreeMap<i32, BTreeMap<i64, Option<usize>>> =
        (0..partitions).map(|p| (p, BTreeMap::new())).collect();
    consume(
        bootstrap,
        topic,
        &ranges,
        Duration::from_secs(60),
        Duration::from_millis(300),
        |m| {
            let id = m
                .payload()
                .and_then(|v| id_of(v).filter(|id| payload(*id) == v));
            read.entry(m.partition())
                .or_default()
                .insert(m.offset(), id);
        },
    );
    read.into_iter()
        .map(|(p, records)| (p, records.into_iter().collect()))
        .collect()
}

/// What [`check_acknowledged`] found; [`AckCheck::problems`] is empty when all is well.
#[derive(Debug, Default)]
pub struct AckCheck {
    /// Records acknowledged.
    pub acknowledged: usize,
    /// Records acknowledged without an offset: librdkafka's idempotent producer acknowledges
    /// a request that failed with a transport error or a timeout once a later request of the
    /// same partition succeeds (an implicit ack), with offset -1001. They must be in their
    /// partition once, anywhere.
    pub offset_unknown: usize,
    /// Records read back.
    pub read: usize,
    /// Acknowledged records not found at their acknowledged (partition, offset).
    pub lost: Vec<(usize, i32, i64)>,
    /// Ids found more than once: (id, where).
    pub duplicated: Vec<(usize, Vec<(i32, i64)>)>,
    /// Offsets missing between consecutive records of a partition: (partition, from, to).
    pub holes: Vec<(i32, i64, i64)>,
    /// Records of a partition whose id is not above the id before them: (partition, offset).
    pub out_of_order: Vec<(i32, i64)>,
    /// Records whose value is not a payload the test wrote: (partition, offset).
    pub foreign: Vec<(i32, i64)>,
}

impl AckCheck {
    /// Every violation, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |what: &str, n: usize, first: String| {
            if n > 0 {
                out.push(format!("{n} {what} (first: {first})"));
            }
        };
        add(
            "acknowledged records lost",
            self.lost.len(),
            format!("{:?}", self.lost.first()),
        );
        add(
            "ids duplicated",
            self.duplicated.len(),
            format!("{:?}", self.duplicated.first()),
        );
        add(
            "holes",
            self.holes.len(),
            format!("{:?}", self.holes.first()),
        );
        add(
            "records out of order",
            self.out_of_order.len(),
            format!("{:?}", self.out_of_order.first()),
        );
        add(
            "foreign records",
            self.foreign.len(),
            format!("{:?}", self.foreign.first()),
        );
        out
    }
}

/// Checks the log read back (`log`, from [`read_back`]) against the acknowledged records
/// (`acked`: id → where): each one is at its acknowledged offset (or, acknowledged without
/// one, somewhere in its partition), no id appears twice, every
/// partition's offsets are contiguous, and its ids increase with the offsets (the producer
/// wrote each partition's ids in increasing order).
pub fn check_acknowledged(
    acked: &HashMap<usize, super::Acked>,
    log: &BTreeMap<i32, Vec<ReadRecord>>,
) -> AckCheck {
    let mut check = AckCheck {
        acknowledged: acked.len(),
        ..AckCheck::default()
    };
    let mut found: HashMap<usize, Vec<(i32, i64)>> = HashMap::new();
    let mut at: HashMap<(i32, i64), Option<usize>> = HashMap::new();
    for (p, records) in log {
        check.read += records.len();
        let mut previous: Option<ReadRecord> = None;
        for &(offset, id) in records {
            at.insert((*p, offset), id);
            match id {
                Some(id) => found.entry(id).or_default().push((*p, offset)),
                None => check.foreign.push((*p, offset)),
            }
            if let Some((prev_offset, prev_id)) = previous {
                if offset != prev_offset + 1 {
                    check.holes.push((*p, prev_offset + 1, offset));
                }
                if let (Some(a), Some(b)) = (prev_id, id) {
                    if b <= a {
                        check.out_of_order.push((*p, offset));
                    }
                }
            }
            previous = Some((offset, id));
        }
    }
    check.offset_unknown = acked.values().filter(|a| a.offset < 0).count();
    let mut lost: Vec<(usize, i32, i64)> = acked
        .iter()
        .filter(|(id, a)| {
            if a.offset >= 0 {
                at.get(&(a.partition, a.offset)) != Some(&Some(**id))
            } else {
                !found
                    .get(id)
                    .is_some_and(|w| w.iter().any(|(p, _)| *p == a.partition))
            }
        })
        .map(|(id, a)| (*id, a.partition, a.offset))
        .collect();
    lost.sort();
    check.lost = lost;
    let mut duplicated: Vec<(usize, Vec<(i32, i64)>)> =
        found.into_iter().filter(|(_, w)| w.len() > 1).collect();
    duplicated.sort();
    check.duplicated = duplicated;
    check
}

/// Kafka's `__consumer_offsets` partition of `group`: `abs(javaStringHashCode(group)) %
/// partitions`.
pub fn offsets_partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    (if hash == i32::MIN { 0 } else { hash.abs() }) % partitions
}

/// FindCoordinator for `group` at `addr`: the coordinator's node id, or the error code.
pub fn find_coordinator_at(addr: SocketAddr, group: &str) -> std::io::Result<Result<i32, i16>> {
    let mut c = RawClient::try_connect_negotiated(addr, Duration::from_secs(3))?;
    let v = c.version::<FindCoordinatorRequest>(3);
    let resp = c.send(
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
        v,
    )?;
    Ok(if resp.error_code == 0 {
        Ok(resp.node_id.0)
    } else {
        Err(resp.error_code)
    })
}

/// FindCoordinator for `group` from the first live broker that answers without an error.
pub fn find_coordinator(cluster: &Cluster, group: &str) -> Option<i32> {
    cluster.live().into_iter().find_map(|n| {
        find_coordinator_at(cluster.broker(n).addr(0), group)
            .ok()
            .and_then(Result::ok)
    })
}
