//! The metadata log on a broker: applying it, and acting as the active controller.
//!
//! Every process runs one [`ControllerService`] on shard 0. It has three jobs:
//!
//! * **Apply.** [`ControllerService::apply_committed`] reads the quorum's committed entries in
//!   order, applies their records to the process's [`ClusterState`], publishes each new
//!   [`MetadataImage`] to every shard, and hands the quorum a snapshot every
//!   `metadata.log.max.record.bytes.between.snapshots` bytes.
//! * **Route.** [`ControllerService::call`] takes a [`ControllerCall`] from any shard of this
//!   broker to the active controller: handled here when this node is it, forwarded over the
//!   controller listeners to the quorum leader otherwise (KIP-590), retried while leadership
//!   moves, and failed with REQUEST_TIMED_OUT after [`CONTROLLER_DEADLINE`].
//! * **Lead.** When this node leads the quorum *and* has applied every entry before its term,
//!   it is the active controller. It decides commands with [`Controller::decide`], writes the
//!   difference as records, and answers once they are committed and applied here. It also
//!   registers, heartbeats and fences brokers, electing new partition leaders as they come and
//!   go ([`crate::controller::election`]), runs the periodic work ([`ControllerService::tick`]),
//!   bootstraps a new cluster (its id, and the import of a single-broker release's
//!   `cluster-metadata.json`), and creates `__consumer_offsets`.
//!
//! Raft allows at most one leader per epoch, and a node acts only as leader of its current
//! epoch, so no two nodes act as active controller in the same epoch.

use crate::config::BrokerConfig;
use crate::controller::alter_partition::alter_partition;
use crate::controller::election::{
    elect_leaderless, fence_broker, leaderless_electable, rebalance_preferred_leaders,
    unfence_broker,
};
use crate::controller::{fail_all, report_offline, Controller};
use crate::controller_rpc::{
    decode, encode, AlterPartitionOutcome, AlterPartitionRequest, BrokerHeartbeat, ControllerCall,
    ControllerCallReply, QuorumView,
};
use crate::group::{offsets_topic, OFFSETS_TOPIC};
use crate::messages::{ControllerCommand, ControllerReply, OfflinePartition, ShardRouter};
use crate::metadata::{BrokerRegistration, ClusterState, MetadataImage, METADATA_FILE};
use crate::metadata_log::{
    apply_committed, encode_batch, encode_snapshot, records_between, MetadataRecord,
};
use crate::metrics::render::QuorumMetrics;
use event_listener::Event;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use kafka_protocol::ResponseError;
use sluice_replication::quorum::{Committed, IncomingCall, QuorumError, QuorumHandle};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// How long a controller call may take, forwarding and commit included, before it fails with
/// REQUEST_TIMED_OUT. Below the clients' default request timeout (30 s), so that they see the
/// broker's answer rather than their own timeout.
pub const CONTROLLER_DEADLINE: Duration = Duration::from_secs(15);
/// How often the active controller checks heartbeats and pending work.
const TICK: Duration = Duration::from_millis(250);
/// How long to wait before asking again while the quorum has no leader.
const RETRY: Duration = Duration::from_millis(50);
/// How long after becoming active the controller waits for the voters to register as brokers
/// before it creates `__consumer_offsets` with the brokers it has.
const OFFSETS_TOPIC_GRACE: Duration = Duration::from_secs(10);

/// Runs `future` until `deadline`; `None` if the deadline came first.
pub async fn before<T>(deadline: Instant, future: impl Future<Output = T>) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(left).await;
        None
    })
    .await
}

/// What shard 0 needs to run the [`ControllerService`].
pub struct ControllerStart {
    /// The quorum.
    pub quorum: QuorumHandle,
    /// Committed entries after those replayed at start.
    pub committed: UnboundedReceiver<Committed>,
    /// Calls forwarded to this node's controller listener.
    pub calls: UnboundedReceiver<IncomingCall>,
    /// The state replayed at start.
    pub state: ClusterState,
    /// Its log offset.
    pub applied: u64,
    /// A single-broker release's state to import.
    pub pending_import: Option<ClusterState>,
    /// The first log dir (where `cluster-metadata.json` was).
    pub metadata_dir: PathBuf,
}

/// The metadata log on this process, and the active controller when this node is it.
pub struct ControllerService {
    config: Arc<BrokerConfig>,
    decider: Controller,
    quorum: QuorumHandle,
    router: ShardRouter,
    shards: u32,
    state: RefCell<ClusterState>,
    /// The log offset of the last applied entry.
    applied: Cell<u64>,
    /// The log offset whose image every shard has adopted.
    published: Cell<u64>,
    published_event: Event,
    /// Partitions the last published image could not open on this broker.
    last_offline: RefCell<Vec<OfflinePartition>>,
    bytes_since_snapshot: Cell<u64>,
    /// Serializes the active controller's decisions: each sees the previous one applied.
    lock: futures::lock::Mutex<()>,
    /// The epoch in which this node last became active, and when.
    active_since: Cell<Option<(u64, Instant)>>,
    /// When the active controller last checked the leaders' balance (`auto.leader.rebalance.enable`).
    last_balance_check: Cell<Option<Instant>>,
    /// When each broker last heartbeated (kept by the active controller only).
    heartbeats: RefCell<HashMap<i32, Instant>>,
    /// A single-broker release's state, imported when this node bootstraps the cluster.
    pending_import: RefCell<Option<ClusterState>>,
    metadata_dir: PathBuf,
}

impl ControllerService {
    /// The service of a process running `shards` shards, over `state` (applied up to
    /// `applied`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<BrokerConfig>,
        quorum: QuorumHandle,
        router: ShardRouter,
        shards: u32,
        state: ClusterState,
        applied: u64,
        pending_import: Option<ClusterState>,
        metadata_dir: PathBuf,
    ) -> ControllerService {
        ControllerService {
            decider: Controller::new(config.clone()),
            config,
            quorum,
            router,
            shards,
            state: RefCell::new(state),
            applied: Cell::new(applied),
            published: Cell::new(applied),
            published_event: Event::new(),
            last_offline: RefCell::new(Vec::new()),
            bytes_since_snapshot: Cell::new(0),
            lock: futures::lock::Mutex::new(()),
            active_since: Cell::new(None),
            last_balance_check: Cell::new(None),
            heartbeats: RefCell::new(HashMap::new()),
            pending_import: RefCell::new(pending_import),
            metadata_dir,
        }
    }

    /// The log offset this process has applied.
    pub fn applied_offset(&self) -> u64 {
        self.applied.get()
    }

    /// The quorum handle (for status and metrics).
    pub fn quorum(&self) -> &QuorumHandle {
        &self.quorum
    }

    /// The quorum gauges of the metrics endpoint.
    pub fn metrics(&self) -> QuorumMetrics {
        let status = self.quorum.status();
        QuorumMetrics {
            leader: status.leader.unwrap_or(-1),
            epoch: status.epoch,
            commit_lag: status.high_watermark.saturating_sub(self.applied.get()),
            active: self.is_active(),
            fenced_brokers: self
                .state
                .borrow()
                .brokers
                .values()
                .filter(|b| b.fenced)
                .count(),
        }
    }

    /// Whether this node is the active controller: the quorum's leader, with every entry of
    /// earlier epochs applied.
    pub fn is_active(&self) -> bool {
        let status = self.quorum.status();
        status.leader == Some(self.config.broker_id)
            && status
                .leader_since_index
                .is_some_and(|first| self.applied.get() >= first)
    }

    /// Applies the committed entries as they come, until the quorum stops.
    pub async fn apply_committed(self: Rc<Self>, mut committed: UnboundedReceiver<Committed>) {
        while let Some(first) = committed.next().await {
            let mut changed = self.apply_one(first);
            // Apply whatever else is already committed before publishing one image for all.
            while let Ok(next) = committed.try_recv() {
                changed |= self.apply_one(next);
            }
            self.maybe_snapshot();
            if changed {
                self.publish().await;
            } else {
                self.published.set(self.applied.get());
                self.published_event.notify(usize::MAX);
            }
        }
    }

    /// Applies one committed entry or snapshot; returns whether the state changed.
    fn apply_one(&self, committed: Committed) -> bool {
        let mut applied = self.applied.get();
        let (changed, bytes) =
            apply_committed(&mut self.state.borrow_mut(), &mut applied, committed);
        self.applied.set(applied);
        self.bytes_since_snapshot
            .set(self.bytes_since_snapshot.get() + bytes);
        changed
    }

    /// Hands the quorum a snapshot when enough records have been applied since the last one.
    fn maybe_snapshot(&self) {
        if self.bytes_since_snapshot.get()
            >= self.config.metadata_log_max_record_bytes_between_snapshots
        {
            self.bytes_since_snapshot.set(0);
            let data = encode_snapshot(&self.state.borrow());
            self.quorum.snapshot(self.applied.get(), data);
        }
    }

    /// Publishes the applied state to every shard and waits until they have adopted it.
    async fn publish(&self) {
        let image = Arc::new(MetadataImage::new(
            self.state.borrow().clone(),
            &self.config,
            self.shards,
        ));
        let offset = self.applied.get();
        match self.router.publish(image).await {
            Ok(offline) => *self.last_offline.borrow_mut() = offline,
            Err(e) => warn!("metadata at offset {offset} not published: {e}"),
        }
        self.published.set(offset);
        self.published_event.notify(usize::MAX);
    }

    /// Waits until every shard of this broker has adopted the state at `offset`.
    async fn published_past(&self, offset: u64) {
        while self.published.get() < offset {
            let listener = self.published_event.listen();
            if self.published.get() >= offset {
                break;
            }
            listener.await;
        }
    }

    /// Runs `command` on the active controller, wherever it is.
    pub async fn execute(&self, command: ControllerCommand) -> ControllerReply {
        match self.call(ControllerCall::Command(command.clone())).await {
            ControllerCallReply::Command(reply) => reply,
            ControllerCallReply::Failed { code, message } => {
                let code =
                    ResponseError::try_from_code(code).unwrap_or(ResponseError::RequestTimedOut);
                command.failed(code, &message)
            }
            other => command.failed(
                ResponseError::UnknownServerError,
                &format!("the controller answered {other:?}"),
            ),
        }
    }

    /// The quorum's state, from its leader.
    pub async fn describe_quorum(&self) -> Result<QuorumView, String> {
        match self.call(ControllerCall::DescribeQuorum).await {
            ControllerCallReply::Quorum(view) => Ok(view),
            ControllerCallReply::Failed { message, .. } => Err(message),
            other => Err(format!("the controller answered {other:?}")),
        }
    }

    /// Takes `call` to the active controller: here, or forwarded to the quorum leader.
    pub async fn call(&self, call: ControllerCall) -> ControllerCallReply {
        let deadline = Instant::now() + CONTROLLER_DEADLINE;
        let me = self.config.broker_id;
        loop {
            let leader = self.quorum.status().leader;
            let reply = match leader {
                Some(l) if l == me && self.is_active() => {
                    match before(deadline, self.handle(call.clone(), deadline)).await {
                        Some(reply) => reply,
                        None => return timed_out(),
                    }
                }
                Some(l) if l != me => {
                    match before(deadline, self.quorum.call(l, encode(&call))).await {
                        None => return timed_out(),
                        Some(Ok(bytes)) => match decode::<ControllerCallReply>(&bytes) {
                            Ok(reply) => reply,
                            Err(e) => ControllerCallReply::Failed {
                                code: ResponseError::UnknownServerError.code(),
                                message: format!("unreadable answer from controller {l}: {e}"),
                            },
                        },
                        Some(Err(e)) => {
                            debug!("controller {l} unreachable: {e}");
                            ControllerCallReply::NotController { leader: None }
                        }
                    }
                }
                _ => ControllerCallReply::NotController { leader: None },
            };
            match reply {
                ControllerCallReply::NotController { .. } => {
                    if Instant::now() + RETRY >= deadline {
                        return timed_out();
                    }
                    glommio::timer::sleep(RETRY).await;
                }
                reply => return reply,
            }
        }
    }

    /// Serves calls forwarded to this node's controller listener.
    pub async fn serve_calls(self: Rc<Self>, mut calls: UnboundedReceiver<IncomingCall>) {
        while let Some(incoming) = calls.next().await {
            let service = self.clone();
            glommio::spawn_local(async move {
                let reply = match decode::<ControllerCall>(&incoming.request) {
                    Ok(call) => {
                        let deadline = Instant::now() + CONTROLLER_DEADLINE;
                        before(deadline, service.handle(call, deadline))
                            .await
                            .unwrap_or_else(timed_out)
                    }
                    Err(e) => ControllerCallReply::Failed {
                        code: ResponseError::InvalidRequest.code(),
                        message: format!("unreadable controller call: {e}"),
                    },
                };
                let _ = incoming.reply.send(encode(&reply));
            })
            .detach();
        }
    }

    /// Handles `call` as the active controller (or answers NOT_CONTROLLER).
    async fn handle(&self, call: ControllerCall, deadline: Instant) -> ControllerCallReply {
        if !self.is_active() {
            return ControllerCallReply::NotController {
                leader: self.quorum.status().leader,
            };
        }
        if let Err((code, message)) = self.bootstrap(deadline).await {
            return ControllerCallReply::Failed {
                code: code.code(),
                message,
            };
        }
        match call {
            ControllerCall::DescribeQuorum => {
                ControllerCallReply::Quorum(QuorumView::of(&self.quorum.status()))
            }
            ControllerCall::Command(command) => {
                let _serialized = self.lock.lock().await;
                let (reply, next) = self.decider.decide(&self.state.borrow(), command);
                let Some(next) = next else {
                    return ControllerCallReply::Command(reply);
                };
                let records = records_between(&self.state.borrow(), &next);
                match self.commit(records, deadline).await {
                    Ok(()) => ControllerCallReply::Command(report_offline(
                        reply,
                        &self.last_offline.borrow(),
                    )),
                    Err((code, why)) => ControllerCallReply::Command(fail_all(reply, code, &why)),
                }
            }
            ControllerCall::RegisterBroker(registration) => {
                self.register(registration, deadline).await
            }
            ControllerCall::BrokerHeartbeat(heartbeat) => self.heartbeat(heartbeat, deadline).await,
            ControllerCall::AlterPartition(request) => {
                ControllerCallReply::AlterPartition(self.alter_partition(request, deadline).await)
            }
        }
    }

    /// Appends `records` as one entry and waits until it is committed and adopted here.
    async fn commit(
        &self,
        records: Vec<MetadataRecord>,
        deadline: Instant,
    ) -> Result<(), (ResponseError, String)> {
        if records.is_empty() {
            return Ok(());
        }
        let offset = match before(deadline, self.quorum.propose(encode_batch(records))).await {
            None => return Err(not_committed_in_time()),
            Some(Err(e)) => return Err(quorum_failure(&e)),
            Some(Ok(offset)) => offset,
        };
        match before(deadline, self.published_past(offset)).await {
            Some(()) => Ok(()),
            None => Err(not_committed_in_time()),
        }
    }

    /// Decides a partition leader's AlterPartition and answers once the change is committed.
    async fn alter_partition(
        &self,
        request: AlterPartitionRequest,
        deadline: Instant,
    ) -> AlterPartitionOutcome {
        let _serialized = self.lock.lock().await;
        let (outcome, next) = alter_partition(&self.state.borrow(), &self.config, &request);
        let Some(next) = next else {
            return outcome;
        };
        let records = records_between(&self.state.borrow(), &next);
        match self.commit(records, deadline).await {
            Ok(()) => {
                debug!(
                    topic = %request.topic,
                    partition = request.partition,
                    leader = request.leader,
                    "ISR altered: {:?}",
                    outcome.partition.as_ref().map(|p| &p.isr)
                );
                outcome
            }
            Err((code, why)) => AlterPartitionOutcome::failed(code, why),
        }
    }

    /// Registers a broker (fenced until it catches up), moving its replicas off shards it no
    /// longer runs. A new incarnation means the old one is gone: its nodes leave every ISR and
    /// lose every leadership, as when a broker is fenced.
    async fn register(
        &self,
        registration: BrokerRegistration,
        deadline: Instant,
    ) -> ControllerCallReply {
        let _serialized = self.lock.lock().await;
        self.heartbeats
            .borrow_mut()
            .insert(registration.id, Instant::now());
        let mut next = self.state.borrow().clone();
        if next
            .brokers
            .get(&registration.id)
            .is_some_and(|b| b.incarnation_id == registration.incarnation_id)
        {
            return ControllerCallReply::Registered;
        }
        let moved = next.rebalance_missing_shards(registration.id, registration.shards);
        if moved > 0 {
            info!(
                broker = registration.id,
                "{moved} partition(s) were on shards broker {} no longer runs; moved them to its remaining shards",
                registration.id
            );
        }
        info!(broker = registration.id, shards = registration.shards, rack = ?registration.rack, "broker registered");
        let id = registration.id;
        next.brokers.insert(
            id,
            BrokerRegistration {
                fenced: true,
                ..registration
            },
        );
        fence_broker(&mut next, id, &self.config).log(&format!("broker {id} registered"));
        let records = records_between(&self.state.borrow(), &next);
        match self.commit(records, deadline).await {
            Ok(()) => ControllerCallReply::Registered,
            Err((code, message)) => ControllerCallReply::Failed {
                code: code.code(),
                message,
            },
        }
    }

    /// Records a heartbeat; unfences a broker that has caught up (leaderless partitions it is
    /// in sync for elect it), fences one that shuts down (a controlled shutdown: its
    /// leaderships move to the other in-sync replicas and its nodes leave the ISRs) and
    /// answers once that is committed.
    async fn heartbeat(
        &self,
        heartbeat: BrokerHeartbeat,
        deadline: Instant,
    ) -> ControllerCallReply {
        self.heartbeats
            .borrow_mut()
            .insert(heartbeat.id, Instant::now());
        let current = self.state.borrow().brokers.get(&heartbeat.id).cloned();
        let Some(broker) = current.filter(|b| b.incarnation_id == heartbeat.incarnation_id) else {
            return ControllerCallReply::Heartbeat {
                registered: false,
                fenced: true,
            };
        };
        let fence = if heartbeat.shutting_down {
            !broker.fenced
        } else {
            broker.fenced && heartbeat.applied_offset >= broker.epoch
        };
        if !fence {
            return ControllerCallReply::Heartbeat {
                registered: true,
                fenced: broker.fenced,
            };
        }
        let fenced = heartbeat.shutting_down;
        let _serialized = self.lock.lock().await;
        let mut next = self.state.borrow().clone();
        let id = heartbeat.id;
        if fenced {
            fence_broker(&mut next, id, &self.config)
                .log(&format!("controlled shutdown of broker {id}"));
        } else {
            unfence_broker(&mut next, id, &self.config).log(&format!("broker {id} unfenced"));
        }
        // The broker that completes the voters' registrations gets __consumer_offsets before
        // it serves, so that its first clients find their group coordinators.
        let created = !fenced && self.add_offsets_topic_if_due(&mut next, false);
        let records = records_between(&self.state.borrow(), &next);
        match self.commit(records, deadline).await {
            Ok(()) => {
                info!(
                    broker = heartbeat.id,
                    "broker {}",
                    if fenced {
                        "fenced: controlled shutdown"
                    } else {
                        "unfenced: caught up with the metadata log"
                    }
                );
                if created {
                    info!("created {OFFSETS_TOPIC} for consumer groups");
                }
                ControllerCallReply::Heartbeat {
                    registered: true,
                    fenced,
                }
            }
            Err((code, message)) => ControllerCallReply::Failed {
                code: code.code(),
                message,
            },
        }
    }

    /// Adds `__consumer_offsets` to `next` when it is missing and due: once every voter has
    /// registered as a live broker, or (`grace_over`) once some broker is live — and, as in
    /// Kafka, only once `offsets.topic.replication.factor` nodes are live (until then
    /// FindCoordinator answers COORDINATOR_NOT_AVAILABLE). Returns whether it added it.
    fn add_offsets_topic_if_due(&self, next: &mut ClusterState, grace_over: bool) -> bool {
        let live = next.live_brokers().count();
        let voters = self.config.controller_quorum_voters.len().max(1);
        let enough_nodes = usize::try_from(self.config.offsets_topic_replication_factor)
            .is_ok_and(|rf| next.live_nodes().count() >= rf);
        let due = !next.topics.contains_key(OFFSETS_TOPIC)
            && live > 0
            && enough_nodes
            && (live >= voters || grace_over);
        if !due {
            return false;
        }
        match offsets_topic(&self.config, next) {
            Ok(topic) => {
                next.topics.insert(OFFSETS_TOPIC.to_string(), topic);
                true
            }
            Err(e) => {
                error!("cannot create {OFFSETS_TOPIC}: {e}");
                false
            }
        }
    }

    /// The active controller's periodic work, until `stopped` says so.
    pub async fn tick(self: Rc<Self>, stopped: impl Fn() -> bool) {
        while !stopped() {
            glommio::timer::sleep(TICK).await;
            if !self.is_active() {
                self.active_since.set(None);
                continue;
            }
            let epoch = self.quorum.status().epoch;
            let since = match self.active_since.get() {
                Some((e, since)) if e == epoch => since,
                _ => {
                    info!(epoch, "this node is the active controller");
                    let now = Instant::now();
                    let ids: Vec<i32> = self.state.borrow().brokers.keys().copied().collect();
                    self.heartbeats
                        .borrow_mut()
                        .extend(ids.into_iter().map(|id| (id, now)));
                    self.active_since.set(Some((epoch, now)));
                    self.last_balance_check.set(Some(now));
                    now
                }
            };
            let deadline = Instant::now() + CONTROLLER_DEADLINE;
            if let Err((_, why)) = self.bootstrap(deadline).await {
                warn!("cannot bootstrap the cluster metadata yet: {why}");
                continue;
            }
            self.fence_silent_brokers(deadline).await;
            self.elect_leaderless(deadline).await;
            self.balance_leaders(deadline).await;
            self.create_offsets_topic(since, deadline).await;
        }
    }

    /// Gives a new cluster its id (and the state of a single-broker release found here).
    async fn bootstrap(&self, deadline: Instant) -> Result<(), (ResponseError, String)> {
        if !self.state.borrow().cluster_id.is_empty() {
            return Ok(());
        }
        let _serialized = self.lock.lock().await;
        if !self.state.borrow().cluster_id.is_empty() {
            return Ok(());
        }
        let imported = self.pending_import.borrow().clone();
        let current = self.state.borrow().clone();
        let next = match &imported {
            Some(old) => {
                info!(cluster_id = %old.cluster_id, topics = old.topics.len(), "importing {METADATA_FILE} into the metadata log");
                // The imported topics, configs and credentials, with whatever the log already
                // holds (registrations, anything created before this node bootstrapped) kept.
                let mut next = old.clone();
                next.brokers = current.brokers.clone();
                for (name, topic) in &current.topics {
                    next.topics
                        .entry(name.clone())
                        .or_insert_with(|| topic.clone());
                }
                next.next_producer_id = next.next_producer_id.max(current.next_producer_id);
                let registered: Vec<(i32, u32)> =
                    next.brokers.values().map(|b| (b.id, b.shards)).collect();
                for (id, shards) in registered {
                    next.rebalance_missing_shards(id, shards);
                }
                next
            }
            None => ClusterState {
                cluster_id: ClusterState::new(self.config.cluster_id.clone()).cluster_id,
                ..current
            },
        };
        let records = records_between(&self.state.borrow(), &next);
        self.commit(records, deadline).await?;
        if imported.is_some() {
            self.pending_import.borrow_mut().take();
            let from = self.metadata_dir.join(METADATA_FILE);
            let to = self.metadata_dir.join(format!("{METADATA_FILE}.imported"));
            if let Err(e) = std::fs::rename(&from, &to) {
                warn!("imported {} but could not rename it: {e}", from.display());
            }
        }
        Ok(())
    }

    /// Fences the live brokers whose heartbeats stopped for `broker.session.timeout.ms`.
    async fn fence_silent_brokers(&self, deadline: Instant) {
        let timeout = Duration::from_millis(self.config.broker_session_timeout_ms);
        let silent: Vec<i32> = {
            let heartbeats = self.heartbeats.borrow();
            self.state
                .borrow()
                .live_brokers()
                .filter(|b| {
                    heartbeats
                        .get(&b.id)
                        .is_none_or(|last| last.elapsed() > timeout)
                })
                .map(|b| b.id)
                .collect()
        };
        for id in silent {
            let _serialized = self.lock.lock().await;
            let mut next = self.state.borrow().clone();
            let changed = fence_broker(&mut next, id, &self.config);
            let records = records_between(&self.state.borrow(), &next);
            match self.commit(records, deadline).await {
                Ok(()) => {
                    warn!(
                        broker = id,
                        "broker fenced: no heartbeat for broker.session.timeout.ms={}",
                        timeout.as_millis()
                    );
                    changed.log(&format!("broker {id} fenced"));
                }
                Err((_, why)) => warn!(broker = id, "cannot fence silent broker: {why}"),
            }
        }
    }

    /// Elects leaders for the partitions without one that can get one (a topic's
    /// `unclean.leader.election.enable` turned on, say): Kafka's periodic election of offline
    /// partitions.
    async fn elect_leaderless(&self, deadline: Instant) {
        if !leaderless_electable(&self.state.borrow(), &self.config) {
            return;
        }
        let _serialized = self.lock.lock().await;
        let mut next = self.state.borrow().clone();
        let changed = elect_leaderless(&mut next, &self.config);
        if changed.partitions == 0 {
            return;
        }
        let records = records_between(&self.state.borrow(), &next);
        match self.commit(records, deadline).await {
            Ok(()) => changed.log("election of leaderless partitions"),
            Err((_, why)) => warn!("cannot elect leaders of leaderless partitions yet: {why}"),
        }
    }

    /// Every `leader.imbalance.check.interval.seconds` (`auto.leader.rebalance.enable`): moves
    /// leadership back to preferred replicas where a broker's imbalance is over
    /// `leader.imbalance.per.broker.percentage`.
    async fn balance_leaders(&self, deadline: Instant) {
        let interval = Duration::from_secs(
            u64::try_from(self.config.leader_imbalance_check_interval_seconds).unwrap_or(1),
        );
        let due = self
            .last_balance_check
            .get()
            .is_none_or(|last| last.elapsed() >= interval);
        if !self.config.auto_leader_rebalance_enable || !due {
            return;
        }
        self.last_balance_check.set(Some(Instant::now()));
        let _serialized = self.lock.lock().await;
        let mut next = self.state.borrow().clone();
        let changed = rebalance_preferred_leaders(&mut next, &self.config);
        if changed.partitions == 0 {
            return;
        }
        let records = records_between(&self.state.borrow(), &next);
        match self.commit(records, deadline).await {
            Ok(()) => changed.log("preferred leader election (auto.leader.rebalance.enable)"),
            Err((_, why)) => warn!("cannot move leadership back to preferred replicas: {why}"),
        }
    }

    /// Creates `__consumer_offsets` once every voter has registered as a live broker (or the
    /// grace period is over and some broker is live), spread over the live brokers.
    async fn create_offsets_topic(&self, active_since: Instant, deadline: Instant) {
        if self.state.borrow().topics.contains_key(OFFSETS_TOPIC) {
            return;
        }
        let _serialized = self.lock.lock().await;
        let mut next = self.state.borrow().clone();
        if !self.add_offsets_topic_if_due(&mut next, active_since.elapsed() >= OFFSETS_TOPIC_GRACE)
        {
            return;
        }
        let records = records_between(&self.state.borrow(), &next);
        match self.commit(records, deadline).await {
            Ok(()) => info!("created {OFFSETS_TOPIC} for consumer groups"),
            Err((_, why)) => warn!("cannot create {OFFSETS_TOPIC} yet: {why}"),
        }
    }
}

fn timed_out() -> ControllerCallReply {
    let (code, message) = not_committed_in_time();
    ControllerCallReply::Failed {
        code: code.code(),
        message,
    }
}

fn not_committed_in_time() -> (ResponseError, String) {
    (
        ResponseError::RequestTimedOut,
        format!(
            "the controller quorum did not complete the request within {} s (is a majority of controller.quorum.voters running?)",
            CONTROLLER_DEADLINE.as_secs()
        ),
    )
}

/// A quorum failure as a Kafka error.
fn quorum_failure(e: &QuorumError) -> (ResponseError, String) {
    match e {
        QuorumError::NotLeader { .. } | QuorumError::LeadershipLost => (
            ResponseError::NotController,
            format!("the active controller changed before the change was committed: {e}"),
        ),
        _ => (ResponseError::RequestTimedOut, e.to_string()),
    }
}
