//! Consumer-group members for tests: [`GroupConsumer`] is one rdkafka member subscribed to a
//! topic and polled by its own thread, recording every message it reads, so that a test can
//! check how a group split a topic ([`wait_split`]) and that it read every message exactly once
//! ([`wait_exactly_once`]). Messages carry their id in the payload (`"<id>:<filler>"`,
//! [`payload`]) and go to partition `id % partitions` ([`produce`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use super::{client_config, filler, producer, send, wait_delivered, wait_until, Msg};

/// Upper bound for closing one consumer.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(60);

/// The payload of message `id`: `"<id>:"` and 40 bytes of filler.
pub fn payload(id: usize) -> Vec<u8> {
    let mut v = format!("{id}:").into_bytes();
    v.extend_from_slice(&filler(id as u64, 40));
    v
}

/// The id at the start of a [`payload`], if it has one.
pub fn id_of(payload: &[u8]) -> Option<usize> {
    let colon = payload.iter().position(|b| *b == b':')?;
    std::str::from_utf8(&payload[..colon]).ok()?.parse().ok()
}

/// Produces messages `ids` (key `k<id>`, payload with the id) to partition
/// `partition_of(id)` with acks=all, and waits until all are acknowledged
/// where they were sent.
pub fn produce(bs: &str, topic: &str, ids: Range<usize>, partition_of: impl Fn(usize) -> i32) {
    let (p, log) = producer(bs, &[("acks", "all"), ("linger.ms", "5")]);
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in ids.clone() {
        let m = Msg {
            key: Some(format!("k{id}").into_bytes()),
            value: Some(payload(id)),
            partition: Some(partition_of(id)),
            ..Default::default()
        };
        send(&p, topic, id, &m, deadline);
    }
    wait_delivered(&p, &log, ids.len() as u64, Duration::from_secs(120));
    assert_eq!(
        log.failed(),
        0,
        "produce to {topic} failed: {:?}",
        log.first_failures(5)
    );
    let acked = log.acked.lock().unwrap();
    for id in ids {
        let a = acked
            .get(&id)
            .unwrap_or_else(|| panic!("message {id} has no delivery report"));
        assert_eq!(
            a.partition,
            partition_of(id),
            "message {id} acknowledged on the wrong partition"
        );
    }
}

// ---------------------------------------------------------------------------
// GroupConsumer: one rdkafka group member polled by its own thread
// ---------------------------------------------------------------------------

/// One message a member read.
#[derive(Clone, Debug)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub id: Option<usize>,
}

/// What a member saw, shared between its poll thread and the test.
#[derive(Default)]
pub struct MemberState {
    pub recs: Mutex<Vec<Rec>>,
    /// Errors returned by poll(), with their librdkafka code.
    pub errors: Mutex<Vec<(Option<RDKafkaErrorCode>, String)>>,
    /// Failures of the commit done in the revoke callback.
    pub commit_errors: Mutex<Vec<String>>,
    /// Rebalance errors (lost assignments and the like).
    pub rebalance_errors: Mutex<Vec<String>>,
    /// Rebalance callbacks: partitions assigned / revoked.
    pub assigns: AtomicU64,
    pub revokes: AtomicU64,
    /// The client's fatal error, if it got one (e.g. fenced static member).
    pub fatal: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl MemberState {
    fn push_error(&self, code: Option<RDKafkaErrorCode>, text: String) {
        let mut e = self.errors.lock().unwrap();
        if e.len() < 1000 {
            e.push((code, text));
        }
    }
}

/// Counts rebalance callbacks and, if asked, commits the consumed positions
/// synchronously before partitions are taken away, so that the next owner
/// resumes exactly where this member stopped (no duplicates).
pub struct MemberCtx {
    name: String,
    state: Arc<MemberState>,
    commit_on_revoke: bool,
}

/// Set `SLUICE_TEST_RDKAFKA_DEBUG` to librdkafka debug contexts (e.g.
/// `cgrp,consumer`) to see the members' librdkafka logs on stderr.
pub const RDKAFKA_DEBUG_ENV: &str = "SLUICE_TEST_RDKAFKA_DEBUG";

impl ClientContext for MemberCtx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
        if std::env::var_os(RDKAFKA_DEBUG_ENV).is_some() {
            eprintln!("[rdkafka {} {level:?}] {fac}: {msg}", self.name);
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if std::env::var_os(RDKAFKA_DEBUG_ENV).is_some() {
            eprintln!("[rdkafka {} error] {error}: {reason}", self.name);
        }
    }
}

impl ConsumerContext for MemberCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(_) => {
                self.state.assigns.fetch_add(1, Ordering::SeqCst);
            }
            Rebalance::Revoke(_) => {
                self.state.revokes.fetch_add(1, Ordering::SeqCst);
                if self.commit_on_revoke {
                    match consumer.commit_consumer_state(CommitMode::Sync) {
                        Ok(()) => {}
                        // Nothing consumed since the last commit.
                        Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
                        Err(e) => self.state.commit_errors.lock().unwrap().push(e.to_string()),
                    }
                }
            }
            Rebalance::Error(e) => self
                .state
                .rebalance_errors
                .lock()
                .unwrap()
                .push(e.to_string()),
        }
    }
}

/// The rdkafka consumer of a [`GroupConsumer`].
pub type MemberConsumer = BaseConsumer<MemberCtx>;

/// A group member: an rdkafka `BaseConsumer` subscribed to one topic, polled
/// in a loop by its own thread that records every message it reads.
pub struct GroupConsumer {
    pub name: String,
    pub topic: String,
    pub state: Arc<MemberState>,
    pub consumer: Option<Arc<MemberConsumer>>,
    pub stop: Arc<AtomicBool>,
    pub thread: Option<JoinHandle<()>>,
}

impl GroupConsumer {
    /// Joins `group` and subscribes to `topic`. Defaults: range assignment,
    /// auto.offset.reset=earliest, no auto commit (positions are committed in
    /// the revoke callback instead), session 10 s, heartbeat 1 s; `opts`
    /// (librdkafka properties) override them.
    pub fn start(bs: &str, group: &str, topic: &str, name: &str, opts: &[(&str, &str)]) -> Self {
        Self::start_with(bs, group, topic, name, opts, true)
    }

    pub fn start_with(
        bs: &str,
        group: &str,
        topic: &str,
        name: &str,
        opts: &[(&str, &str)],
        commit_on_revoke: bool,
    ) -> Self {
        let mut cfg: ClientConfig = client_config(bs);
        cfg.set("group.id", group)
            .set("client.id", name)
            .set("partition.assignment.strategy", "range")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "100");
        if let Ok(debug) = std::env::var(RDKAFKA_DEBUG_ENV) {
            cfg.set("debug", debug).set("log_level", "7");
        }
        for (k, v) in opts {
            cfg.set(*k, *v);
        }
        let state = Arc::new(MemberState::default());
        let ctx = MemberCtx {
            name: name.to_string(),
            state: state.clone(),
            commit_on_revoke,
        };
        let consumer: Arc<MemberConsumer> = Arc::new(
            cfg.create_with_context(ctx)
                .unwrap_or_else(|e| panic!("create consumer {name}: {e}")),
        );
        consumer
            .subscribe(&[topic])
            .unwrap_or_else(|e| panic!("{name}: subscribe({topic}): {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (c, state, stop) = (consumer.clone(), state.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("poll-{name}"))
                .spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match c.poll(Duration::from_millis(100)) {
                            None => {}
                            Some(Ok(m)) => {
                                let rec = Rec {
                                    partition: m.partition(),
                                    offset: m.offset(),
                                    id: m.payload().and_then(id_of),
                                };
                                state.recs.lock().unwrap().push(rec);
                            }
                            Some(Err(e)) => {
                                if let Some(f) = c.client().fatal_error() {
                                    state.fatal.lock().unwrap().get_or_insert(f);
                                }
                                state.push_error(e.rdkafka_error_code(), e.to_string());
                            }
                        }
                    }
                })
                .expect("spawn poll thread")
        };
        GroupConsumer {
            name: name.to_string(),
            topic: topic.to_string(),
            state,
            consumer: Some(consumer),
            stop,
            thread: Some(thread),
        }
    }

    pub fn consumer(&self) -> &MemberConsumer {
        self.consumer.as_deref().expect("consumer already closed")
    }

    /// The partitions of the topic currently assigned to this member.
    pub fn assignment(&self) -> BTreeSet<i32> {
        match self.consumer().assignment() {
            Ok(tpl) => tpl
                .elements()
                .iter()
                .filter(|e| e.topic() == self.topic)
                .map(|e| e.partition())
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// (assign callbacks, revoke callbacks) so far.
    pub fn rebalances(&self) -> (u64, u64) {
        (
            self.state.assigns.load(Ordering::SeqCst),
            self.state.revokes.load(Ordering::SeqCst),
        )
    }

    pub fn recs(&self) -> Vec<Rec> {
        self.state.recs.lock().unwrap().clone()
    }

    /// Stops polling and closes the consumer the way an application would
    /// (revoke callback, LeaveGroup for a dynamic member). What it read stays
    /// available.
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("poll thread panicked");
        }
        // The poll thread's handle is gone: this drop is the last one and runs
        // rdkafka's close (which serves the final rebalance callbacks). It
        // has no deadline of its own, so it runs on a thread of its own.
        if let Some(c) = self.consumer.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                drop(c);
                let _ = tx.send(());
            });
            if rx.recv_timeout(CLOSE_LIMIT).is_err() {
                panic!(
                    "closing consumer {} took over {CLOSE_LIMIT:?} (librdkafka waiting on the \
                     broker, or on a partition list still held by the test)",
                    self.name
                );
            }
        }
    }

    /// A one-line summary for failure messages.
    pub fn describe(&self) -> String {
        let assignment = if self.consumer.is_some() {
            format!("{:?}", self.assignment())
        } else {
            "(closed)".to_string()
        };
        let errors = self.state.errors.lock().unwrap();
        format!(
            "{}: assignment {assignment}, {} messages, rebalances (assign, revoke) {:?}, \
             commit errors {:?}, rebalance errors {:?}, fatal {:?}, poll errors ({}) {:?}",
            self.name,
            self.state.recs.lock().unwrap().len(),
            self.rebalances(),
            self.state.commit_errors.lock().unwrap(),
            self.state.rebalance_errors.lock().unwrap(),
            self.state.fatal.lock().unwrap(),
            errors.len(),
            &errors[..errors.len().min(5)],
        )
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if self.thread.is_none() && self.consumer.is_none() {
            return;
        }
        if std::thread::panicking() {
            // The test failed: do not risk a close that waits on a broken
            // broker (and hides the failure behind a timeout). Leak it.
            self.stop.store(true, Ordering::SeqCst);
            if let Some(c) = self.consumer.take() {
                std::mem::forget(c);
            }
        } else {
            self.close();
        }
    }
}

/// One summary line per member, for failure messages.
pub fn describe_all(members: &[&GroupConsumer]) -> String {
    members
        .iter()
        .map(|m| format!("\n  {}", m.describe()))
        .collect()
}

/// Waits until the live `members` split the topic's `parts` partitions
/// `per_member` each with no overlap, and returns their assignments (in the
/// order of `members`).
pub fn wait_split(
    members: &[&GroupConsumer],
    parts: i32,
    per_member: usize,
    timeout: Duration,
) -> Vec<BTreeSet<i32>> {
    assert_eq!(per_member * members.len(), parts as usize);
    let all: BTreeSet<i32> = (0..parts).collect();
    let mut last = Vec::new();
    let ok = wait_until(timeout, Duration::from_millis(100), || {
        last = members.iter().map(|m| m.assignment()).collect::<Vec<_>>();
        let union: BTreeSet<i32> = last.iter().flatten().copied().collect();
        last.iter().all(|a| a.len() == per_member) && union == all
    });
    assert!(
        ok,
        "the group did not settle on {per_member} partitions for each of {} members within \
         {timeout:?}; last assignments {last:?}; members:{}",
        members.len(),
        describe_all(members)
    );
    last
}

/// Waits until the rebalance callbacks of `members` stop for `window`.
pub fn wait_quiet(members: &[&GroupConsumer], window: Duration, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last: Vec<(u64, u64)> = members.iter().map(|m| m.rebalances()).collect();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now: Vec<(u64, u64)> = members.iter().map(|m| m.rebalances()).collect();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= window {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group kept rebalancing for {timeout:?}:{}",
            describe_all(members)
        );
    }
}

/// Who read a message: (member name, partition, offset).
pub type Reader = (String, i32, i64);

/// Waits until `members` (closed ones included) have read every id in
/// `0..n`, lingers `linger` to catch late duplicates, then asserts that each
/// id was read exactly once, from partition `id % parts`, and nothing else
/// was read. Returns id -> reader.
pub fn wait_exactly_once(
    members: &[&GroupConsumer],
    n: usize,
    parts: i32,
    timeout: Duration,
    linger: Duration,
) -> HashMap<usize, Reader> {
    let mut distinct = 0;
    let done = wait_until(timeout, Duration::from_millis(100), || {
        let mut seen = HashSet::new();
        for m in members {
            seen.extend(m.recs().iter().filter_map(|r| r.id).filter(|id| *id < n));
        }
        distinct = seen.len();
        distinct == n
    });
    if done {
        std::thread::sleep(linger);
    }
    let mut by_id: HashMap<usize, Vec<Reader>> = HashMap::new();
    let mut foreign = Vec::new();
    for m in members {
        for r in m.recs() {
            match r.id {
                Some(id) if id < n && r.partition == id as i32 % parts => by_id
                    .entry(id)
                    .or_default()
                    .push((m.name.clone(), r.partition, r.offset)),
                _ => foreign.push((m.name.clone(), r)),
            }
        }
    }
    let mut missing: Vec<usize> = (0..n).filter(|id| !by_id.contains_key(id)).collect();
    missing.sort();
    let mut dups: Vec<(usize, Vec<Reader>)> = by_id
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(id, v)| (*id, v.clone()))
        .collect();
    dups.sort();
    assert!(
        done && dups.is_empty() && foreign.is_empty(),
        "want each of ids 0..{n} read exactly once; {distinct} distinct ids read within \
         {timeout:?}; {} missing (first {:?}); {} read more than once (first {:?}); \
         {} unexpected records (first {:?}); members:{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        dups.len(),
        &dups[..dups.len().min(10)],
        foreign.len(),
        &foreign[..foreign.len().min(10)],
        describe_all(members)
    );
    by_id
        .into_iter()
        .map(|(id, mut v)| (id, v.remove(0)))
        .collect()
}
