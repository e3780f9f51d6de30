//! A shard: one core's share of the broker.
//!
//! [`run_shard`] is the body of one pinned executor. The shard opens the logs of the partitions
//! placed on it, listens on its own port (`listener port + shard`), and serves connections. It
//! owns its partitions' logs, their fetch waiters and its group commit; its checkpoint files live
//! in `<log dir>/shard-<k>/` so that no two shards ever write the same file.

use crate::accept_backoff::AcceptBackoff;
use crate::api::ApiHandler;
use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::file_worker::{remove_dir_releasing_blocks, run_blocking, FileWorker};
use crate::group::GroupCoordinator;
use crate::group_commit::GroupCommit;
use crate::log_cleaner;
use crate::messages::{OfflinePartition, ShardMessage, ShardRouter};
use crate::metadata::{ClusterState, MetadataImage};
use crate::metrics::{http::serve_metrics, PartitionStats, ShardMetrics, ShardSnapshot};
use crate::partition::{log_config, Partition};
use crate::retention;
use crate::time::now_ms;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use kafka_protocol::ResponseError;
use sluice_net::listener::{bind_listener, ShutdownSignal};
use sluice_net::{serve_connection, ConnectionLimits, RequestMemoryPool};
use sluice_storage::blocking::{allow_blocking_file_calls, forbid_blocking_file_calls};
use sluice_storage::{read_checkpoint, write_checkpoint, LogFileCache, PartitionLog};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// Name of the per-shard recovery point checkpoint (Kafka's file name and format).
const RECOVERY_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Name of the per-shard log start offset checkpoint (Kafka's file name and format).
const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Marker written at the end of a clean shutdown (Kafka's name).
const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";
/// How often the shard writes its recovery point and log start offset checkpoints (Kafka's
/// `log.flush.offset.checkpoint.interval.ms` and `log.flush.start.offset.checkpoint.interval.ms`
/// defaults). A moved log start offset is also written at the next tick, so that records
/// deleted by DeleteRecords do not come back after a crash.
const CHECKPOINT_INTERVAL_MS: i64 = 60_000;
/// How often the shard's housekeeping runs (stop flag, `flush.ms`, checkpoints, retention).
const TICK: Duration = Duration::from_millis(50);
/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a shard needs to start.
pub struct ShardStart {
    /// Shard index.
    pub id: u32,
    /// Broker configuration.
    pub config: Arc<BrokerConfig>,
    /// The metadata image at start.
    pub image: Arc<MetadataImage>,
    /// Channels to every shard.
    pub router: ShardRouter,
    /// This shard's inbox.
    pub inbox: UnboundedReceiver<ShardMessage>,
    /// Raised by the main thread on SIGTERM / SIGINT (or when another shard failed).
    pub stop: Arc<AtomicBool>,
    /// For shard 0: the controller's persisted state and where it lives.
    pub controller_state: Option<(ClusterState, PathBuf)>,
}

/// Partitions this shard leads, by topic name then partition index.
type PartitionTable = HashMap<String, Vec<Option<Rc<Partition>>>>;

/// One shard's state, shared by its tasks (never by other shards).
pub struct Shard {
    /// Shard index (0-based).
    pub id: u32,
    /// The Kafka node id clients know this shard by.
    pub node_id: i32,
    /// Broker configuration.
    pub config: Arc<BrokerConfig>,
    /// Channels to every shard.
    pub router: ShardRouter,
    /// The controller, on shard 0 only.
    pub controller: Option<Rc<Controller>>,
    /// Group commit of this shard's appends.
    pub group_commit: Rc<GroupCommit>,
    /// Raised when the shard stops.
    pub shutdown: ShutdownSignal,
    /// This shard's counters.
    pub metrics: ShardMetrics,
    /// The consumer groups this shard coordinates.
    pub groups: GroupCoordinator,
    /// The thread for slow file-system work: cleaning, removing deleted files.
    pub file_worker: FileWorker,
    /// The open log files of this shard's sealed segments (see [`crate::fd_budget`]).
    pub segment_files: LogFileCache,
    image: RefCell<Arc<MetadataImage>>,
    partitions: RefCell<PartitionTable>,
    /// Partitions placed here whose log could not be opened, with why (retried at every new
    /// metadata image); their requests get KAFKA_STORAGE_ERROR.
    offline: RefCell<HashMap<(String, i32), String>>,
    recovery_points: RefCell<HashMap<(String, i32), i64>>,
    /// Log start offsets read from the checkpoint at start, each taken when its log is opened.
    log_start_offsets: RefCell<HashMap<(String, i32), i64>>,
    /// A log start offset moved since the log start offset checkpoint was last written.
    log_start_checkpoint_due: Cell<bool>,
    shard_dir: PathBuf,
    connections: Cell<usize>,
}

/// Why a shard could not run.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The listener could not be bound.
    #[error("shard {shard} cannot listen on {addr}: {source} (is another broker using the port? change `listeners`)")]
    Bind {
        /// Shard index.
        shard: u32,
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file the shard needs could not be used.
    #[error("shard {shard}: {message}")]
    Storage {
        /// Shard index.
        shard: u32,
        /// What failed.
        message: String,
    },
}

impl Shard {
    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// The partition `topic`/`index` if this shard leads it.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        let table = self.partitions.borrow();
        table.get(topic)?.get(usize::try_from(index).ok()?)?.clone()
    }

    /// The error for a request on `topic`/`index` that this shard does not serve: KAFKA_STORAGE_ERROR
    /// when the partition is placed here but its log could not be opened (Kafka's answer for a
    /// partition on an offline log dir), NOT_LEADER_OR_FOLLOWER when another shard leads it,
    /// UNKNOWN_TOPIC_OR_PARTITION when it does not exist.
    pub fn unserved_partition_error(
        &self,
        image: &MetadataImage,
        topic: &str,
        index: i32,
    ) -> ResponseError {
        let exists = image
            .topic(topic)
            .is_some_and(|t| usize::try_from(index).is_ok_and(|i| i < t.partitions.len()));
        if !exists {
            ResponseError::UnknownTopicOrPartition
        } else if self
            .offline
            .borrow()
            .contains_key(&(topic.to_string(), index))
        {
            ResponseError::KafkaStorageError
        } else {
            ResponseError::NotLeaderOrFollower
        }
    }

    /// Every partition this shard leads.
    pub fn all_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions
            .borrow()
            .values()
            .flatten()
            .flatten()
            .cloned()
            .collect()
    }

    /// Adopts `image`: opens logs of partitions newly placed here, deletes logs of topics that
    /// were deleted, and applies topic configs (overrides and dynamic broker configs) to the
    /// partitions and their logs, live. Returns the partitions whose logs it tried to open and
    /// could not (they stay offline, and are tried again at the next image).
    pub fn apply_metadata(&self, image: Arc<MetadataImage>) -> Vec<OfflinePartition> {
        let mut failed = Vec::new();
        let mut table = self.partitions.borrow_mut();
        let mut removed = Vec::new();
        table.retain(|topic, parts| match image.topic(topic) {
            Some(t) if parts.iter().flatten().all(|p| p.topic_id == t.id) => true,
            _ => {
                removed.extend(parts.drain(..).flatten());
                false
            }
        });
        for (name, topic) in &image.state.topics {
            let effective = topic
                .configs
                .effective(&self.config, &image.state.broker_configs);
            let slots = table.entry(name.clone()).or_default();
            slots.resize(topic.partitions.len().max(slots.len()), None);
            for (index, placement) in topic.partitions.iter().enumerate() {
                match &slots[index] {
                    Some(p) if placement.shard == self.id => {
                        p.apply_config(&effective);
                        p.leader_epoch.set(placement.leader_epoch);
                    }
                    Some(_) => removed.extend(slots[index].take()),
                    None if placement.shard == self.id => {
                        let opened = self.open_partition(
                            name,
                            index as i32,
                            topic.id,
                            placement.leader_epoch,
                            &effective,
                        );
                        let key = (name.clone(), index as i32);
                        match opened {
                            Ok(p) => {
                                self.offline.borrow_mut().remove(&key);
                                slots[index] = Some(p);
                            }
                            Err(reason) => {
                                failed.push(OfflinePartition {
                                    topic: name.clone(),
                                    index: index as i32,
                                    reason: reason.clone(),
                                });
                                self.offline.borrow_mut().insert(key, reason);
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        table.retain(|_, parts| parts.iter().any(Option::is_some));
        drop(table);
        self.offline.borrow_mut().retain(|key, _| {
            let (topic, index) = key;
            let placed_here = image
                .topic(topic)
                .and_then(|t| t.partitions.get(*index as usize))
                .is_some_and(|p| p.shard == self.id);
            if !placed_here {
                self.log_start_offsets.borrow_mut().remove(key);
                self.recovery_points.borrow_mut().remove(key);
            }
            placed_here
        });
        for p in removed {
            let deleted = image
                .topic(&p.topic)
                .map(|t| t.id != p.topic_id)
                .unwrap_or(true);
            if deleted {
                delete_partition_dir(&self.file_worker, &p);
            }
        }
        *self.image.borrow_mut() = image;
        failed
    }

    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        topic_id: uuid::Uuid,
        epoch: i32,
        effective: &crate::config::EffectiveTopicConfig,
    ) -> Result<Rc<Partition>, String> {
        let dir_name = format!("{topic}-{index}");
        let log_dir = self
            .config
            .log_dirs
            .iter()
            .find(|d| d.join(&dir_name).is_dir())
            .unwrap_or(&self.config.log_dirs[self.id as usize % self.config.log_dirs.len()]);
        let recovery_point = self
            .recovery_points
            .borrow()
            .get(&(topic.to_string(), index))
            .copied()
            .unwrap_or(0);
        // Taken once the log is open (kept while it is offline): a topic deleted and created
        // again later starts from 0.
        let log_start_offset = self
            .log_start_offsets
            .borrow()
            .get(&(topic.to_string(), index))
            .copied()
            .unwrap_or(0);
        match PartitionLog::open_with_file_cache(
            log_dir,
            topic,
            index,
            log_config(effective),
            recovery_point,
            log_start_offset,
            now_ms(),
            self.segment_files.clone(),
        ) {
            Ok((log, report)) => {
                self.log_start_offsets
                    .borrow_mut()
                    .remove(&(topic.to_string(), index));
                if report.truncated_at_offset.is_some() {
                    warn!(shard = self.id, "recovery of {topic}-{index}: {report}");
                }
                Ok(Rc::new(Partition::new(
                    topic.to_string(),
                    index,
                    topic_id,
                    log,
                    epoch,
                    effective.clone(),
                )))
            }
            Err(e) => {
                error!(
                    shard = self.id,
                    "cannot open log of {topic}-{index}; the partition stays offline (its requests get KAFKA_STORAGE_ERROR) until it can be opened: {e}"
                );
                Err(e.to_string())
            }
        }
    }

    /// The shard's own directory, `<log dir>/shard-<k>/`, where its checkpoint files live.
    pub fn shard_dir(&self) -> &Path {
        &self.shard_dir
    }

    /// This shard's metrics, with its partitions' gauges.
    pub fn metrics_snapshot(&self) -> ShardSnapshot {
        let partitions = self
            .all_partitions()
            .iter()
            .map(|p| {
                let high_watermark = p.high_watermark();
                let log = p.log.borrow();
                PartitionStats {
                    topic: p.topic.clone(),
                    partition: p.index,
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                    high_watermark,
                    size_bytes: log.size_bytes(),
                }
            })
            .collect();
        self.metrics
            .snapshot(self.id, self.connections.get() as u64, partitions)
    }

    /// The entries of this shard's recovery point checkpoint. Offline partitions keep the
    /// entries read at start, so that they recover from them once they can be opened. Each
    /// recovery point covers only data already synced, so writing them later is safe.
    fn recovery_checkpoint_entries(&self) -> Vec<(String, i32, i64)> {
        let mut entries: Vec<(String, i32, i64)> = self
            .all_partitions()
            .iter()
            .map(|p| (p.topic.clone(), p.index, p.log.borrow().recovery_point()))
            .collect();
        entries.extend(self.offline_entries(&self.recovery_points.borrow()));
        entries
    }

    /// The checkpoint entries in `read_at_start` of the partitions that are offline.
    fn offline_entries(
        &self,
        read_at_start: &HashMap<(String, i32), i64>,
    ) -> Vec<(String, i32, i64)> {
        self.offline
            .borrow()
            .keys()
            .filter_map(|key| {
                let offset = read_at_start.get(key)?;
                Some((key.0.clone(), key.1, *offset))
            })
            .collect()
    }

    /// Records that a partition's log start offset moved (retention, DeleteRecords): the log
    /// start offset checkpoint is written at the next housekeeping tick.
    pub fn log_start_offsets_changed(&self) {
        self.log_start_checkpoint_due.set(true);
    }

    /// The entries of this shard's log start offset checkpoint: as Kafka, only the logs whose
    /// log start offset lies beyond their first segment's base offset (the others restore it
    /// from their segments).
    fn log_start_checkpoint_entries(&self) -> Vec<(String, i32, i64)> {
        let mut entries: Vec<(String, i32, i64)> = self
            .all_partitions()
            .iter()
            .filter_map(|p| {
                let log = p.log.borrow();
                (log.log_start_offset() > log.first_segment_base_offset())
                    .then(|| (p.topic.clone(), p.index, log.log_start_offset()))
            })
            .collect();
        entries.extend(self.offline_entries(&self.log_start_offsets.borrow()));
        entries
    }

    /// Writes the checkpoint `name` of this shard on the blocking pool (never on the shard's
    /// thread); returns whether it was written.
    async fn write_checkpoint(&self, name: &'static str, entries: Vec<(String, i32, i64)>) -> bool {
        let path = self.shard_dir.join(name);
        match run_blocking(move || write_checkpoint(&path, &entries)).await {
            Ok(()) => true,
            Err(e) => {
                error!(shard = self.id, "cannot write {name}: {e}");
                false
            }
        }
    }

    /// Writes the recovery point checkpoint.
    async fn write_recovery_checkpoint(&self) {
        let entries = self.recovery_checkpoint_entries();
        self.write_checkpoint(RECOVERY_CHECKPOINT, entries).await;
    }

    /// Writes the log start offset checkpoint; a failed write is retried at the next tick.
    async fn write_log_start_checkpoint(&self) {
        self.log_start_checkpoint_due.set(false);
        let entries = self.log_start_checkpoint_entries();
        if !self.write_checkpoint(LOG_START_CHECKPOINT, entries).await {
            self.log_start_checkpoint_due.set(true);
        }
    }

    /// Periodic housekeeping: `flush.ms`, checkpoints, retention (every
    /// `log.retention.check.interval.ms`), and the stop flag.
    async fn housekeeping(self: Rc<Self>, stop: Arc<AtomicBool>) {
        let mut last_checkpoint = now_ms();
        let mut last_retention_check = last_checkpoint;
        while !self.shutdown.is_triggered() {
            glommio::timer::sleep(TICK).await;
            if stop.load(Ordering::Relaxed) {
                self.shutdown.trigger();
                break;
            }
            let now = now_ms();
            for p in self.all_partitions() {
                if p.log.borrow().needs_flush(now) {
                    let gc = self.group_commit.clone();
                    glommio::spawn_local(async move {
                        let _ = gc.sync(p).await;
                    })
                    .detach();
                }
            }
            self.groups.tick(&self);
            if now - last_retention_check >= self.config.log_retention_check_interval_ms {
                last_retention_check = now;
                retention::delete_old_segments(&self, now);
            }
            if now - last_checkpoint >= CHECKPOINT_INTERVAL_MS {
                last_checkpoint = now;
                self.write_recovery_checkpoint().await;
                self.write_log_start_checkpoint().await;
            } else if self.log_start_checkpoint_due.get() {
                self.write_log_start_checkpoint().await;
            }
        }
    }

    /// Flushes every log and writes the checkpoints and the clean-shutdown marker, on the
    /// shard's thread: nothing is served any more, and shutdown waits for them anyway.
    fn finish(&self) {
        for p in self.all_partitions() {
            if let Err(e) = p.log.borrow_mut().flush_now() {
                error!(
                    shard = self.id,
                    "flush of {}-{} failed at shutdown: {e}", p.topic, p.index
                );
                return;
            }
        }
        for (name, entries) in [
            (RECOVERY_CHECKPOINT, self.recovery_checkpoint_entries()),
            (LOG_START_CHECKPOINT, self.log_start_checkpoint_entries()),
        ] {
            if let Err(e) = write_checkpoint(&self.shard_dir.join(name), &entries) {
                error!(shard = self.id, "cannot write {name}: {e}");
            }
        }
        if let Err(e) = std::fs::write(self.shard_dir.join(CLEAN_SHUTDOWN_MARKER), b"") {
            error!(shard = self.id, "cannot write clean shutdown marker: {e}");
        }
    }
}

/// Runs one shard until the stop flag is raised; returns after a clean shutdown.
pub async fn run_shard(start: ShardStart) -> Result<(), ShardError> {
    let ShardStart {
        id,
        config,
        image,
        router,
        inbox,
        stop,
        controller_state,
    } = start;
    let shard_dir =
        config.log_dirs[id as usize % config.log_dirs.len()].join(format!("shard-{id}"));
    let storage_err = |message: String| ShardError::Storage { shard: id, message };
    std::fs::create_dir_all(&shard_dir)
        .map_err(|e| storage_err(format!("cannot create {}: {e}", shard_dir.display())))?;
    let clean = remove_marker(&shard_dir);
    let file_worker = FileWorker::start(id)
        .map_err(|e| storage_err(format!("cannot start the file worker thread: {e}")))?;
    let recovery_points =
        load_offsets_checkpoint(&shard_dir.join(RECOVERY_CHECKPOINT)).map_err(storage_err)?;
    let log_start_offsets =
        load_offsets_checkpoint(&shard_dir.join(LOG_START_CHECKPOINT)).map_err(storage_err)?;
    if !clean && !recovery_points.is_empty() {
        info!(
            shard = id,
            "previous shutdown was not clean: recovering logs from their recovery points"
        );
    }
    let controller = controller_state.map(|(state, dir)| {
        Rc::new(Controller::new(
            state,
            dir,
            config.clone(),
            image.shards,
            router.clone(),
        ))
    });
    let shard = Rc::new(Shard {
        id,
        node_id: image.node_of(id),
        config: config.clone(),
        router,
        controller,
        group_commit: Rc::new(GroupCommit::default()),
        shutdown: ShutdownSignal::default(),
        metrics: ShardMetrics::default(),
        groups: GroupCoordinator::new(&config),
        file_worker,
        segment_files: LogFileCache::new(config.segment_files_open_per_shard),
        image: RefCell::new(image.clone()),
        partitions: RefCell::new(HashMap::new()),
        offline: RefCell::new(HashMap::new()),
        recovery_points: RefCell::new(recovery_points),
        log_start_offsets: RefCell::new(log_start_offsets),
        log_start_checkpoint_due: Cell::new(false),
        shard_dir,
        connections: Cell::new(0),
    });
    shard.apply_metadata(image);
    GroupCoordinator::load(shard.clone());

    let addr = listen_address(&config, id)?;
    let listener = bind_listener(addr).map_err(|source| ShardError::Bind {
        shard: id,
        addr: addr.to_string(),
        source,
    })?;
    info!(shard = id, node = shard.node_id, %addr, partitions = shard.all_partitions().len(), offline_partitions = shard.offline.borrow().len(), "shard ready");

    if let (0, Some(metrics)) = (id, &config.metrics_listener) {
        let addr = resolve(&metrics.host, metrics.port as u32, id)?;
        let listener = bind_listener(addr).map_err(|source| ShardError::Bind {
            shard: id,
            addr: addr.to_string(),
            source,
        })?;
        info!(%addr, "serving Prometheus metrics at http://{addr}/metrics");
        glommio::spawn_local(serve_metrics(listener, shard.clone())).detach();
    }
    // From here on the shard serves: slow file calls go to helper threads (see file_worker).
    forbid_blocking_file_calls();
    glommio::spawn_local(serve_inbox(shard.clone(), inbox)).detach();
    let housekeeping = glommio::spawn_local(shard.clone().housekeeping(stop));
    log_cleaner::spawn(shard.clone());

    let limits = ConnectionLimits {
        max_request_bytes: config.socket_request_max_bytes as usize,
        max_idle: config
            .connections_max_idle_ms
            .map(|ms| Duration::from_millis(ms.max(1))),
    };
    let pool = Rc::new(RequestMemoryPool::new(
        config
            .queued_max_request_bytes
            .map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
        limits.max_request_bytes,
    ));
    let mut backoff = AcceptBackoff::default();
    loop {
        match listener.accept_until(&shard.shutdown).await {
            None => break,
            Some(Ok(stream)) => {
                if let Some(line) = backoff.succeeded(std::time::Instant::now()) {
                    info!(shard = id, "{line}");
                }
                let shard = shard.clone();
                let pool = pool.clone();
                shard.connections.set(shard.connections.get() + 1);
                glommio::spawn_local(async move {
                    let _ = stream.set_nodelay(true);
                    let client_host = stream
                        .peer_addr()
                        .map(|a| format!("/{}", a.ip()))
                        .unwrap_or_default();
                    let handler = ApiHandler::new(shard.clone(), client_host);
                    serve_connection(stream, &handler, limits, &pool, &shard.shutdown).await;
                    shard.connections.set(shard.connections.get() - 1);
                })
                .detach();
            }
            Some(Err(e)) => {
                let retry = backoff.failed(&e, std::time::Instant::now());
                if let Some(line) = retry.log {
                    warn!(shard = id, "{line}");
                }
                if !retry.delay.is_zero() {
                    futures_lite::future::or(glommio::timer::sleep(retry.delay), async {
                        shard.shutdown.wait().await
                    })
                    .await;
                }
            }
        }
    }
    listener.close();
    shard.groups.fail_waiters();
    let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
    while shard.connections.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    // A checkpoint write of housekeeping still in flight finishes before shutdown writes its own.
    housekeeping.await;
    allow_blocking_file_calls(|| shard.finish());
    info!(shard = id, "shard stopped cleanly");
    Ok(())
}

/// Handles cross-shard messages; each runs as its own task so none blocks another.
async fn serve_inbox(shard: Rc<Shard>, mut inbox: UnboundedReceiver<ShardMessage>) {
    while let Some(message) = inbox.next().await {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            match message {
                ShardMessage::CollectMetrics { reply } => {
                    let _ = reply.send(shard.metrics_snapshot());
                }
                ShardMessage::ApplyMetadata { image, done } => {
                    let _ = done.send(shard.apply_metadata(image));
                }
                ShardMessage::Controller { command, reply } => match &shard.controller {
                    Some(c) => {
                        let _ = reply.send(c.execute(command).await);
                    }
                    None => error!(
                        shard = shard.id,
                        "controller command sent to a shard without the controller"
                    ),
                },
            }
        })
        .detach();
    }
}

fn listen_address(config: &BrokerConfig, shard: u32) -> Result<SocketAddr, ShardError> {
    let listener = config.client_listener();
    resolve(&listener.host, listener.port as u32 + shard, shard)
}

/// Resolves `host:port` for binding (an empty host means every interface).
fn resolve(host: &str, port: u32, shard: u32) -> Result<SocketAddr, ShardError> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let text = format!("{host}:{port}");
    let bind_err = |message: &str| ShardError::Bind {
        shard,
        addr: text.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_string()),
    };
    if port > u16::MAX as u32 {
        return Err(bind_err("port out of range"));
    }
    (host, port as u16)
        .to_socket_addrs()
        .map_err(|e| ShardError::Bind {
            shard,
            addr: text.clone(),
            source: e,
        })?
        .next()
        .ok_or_else(|| bind_err("host does not resolve"))
}

fn remove_marker(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(CLEAN_SHUTDOWN_MARKER)).is_ok()
}

/// Reads one of the shard's offset checkpoints (a missing file is empty).
fn load_offsets_checkpoint(path: &Path) -> Result<HashMap<(String, i32), i64>, String> {
    let entries = read_checkpoint(path).map_err(|e| e.to_string())?;
    Ok(entries.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}

/// Renames a deleted partition's directory to Kafka's `-delete` form, then removes it on the
/// shard's file worker so a large log does not stall the core.
fn delete_partition_dir(worker: &FileWorker, p: &Partition) {
    let dir = p.log.borrow().dir().to_path_buf();
    let Some(parent) = dir.parent() else { return };
    let doomed = parent.join(format!(
        "{}-{}.{}-delete",
        p.topic,
        p.index,
        uuid::Uuid::new_v4().simple()
    ));
    if let Err(e) = std::fs::rename(&dir, &doomed) {
        error!("cannot rename {} for deletion: {e}", dir.display());
        return;
    }
    let worker = worker.clone();
    glommio::spawn_local(async move {
        let path = doomed.clone();
        let removed = match worker.run(move || remove_dir_releasing_blocks(&path)).await {
            Ok(removed) => removed.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = removed {
            error!("cannot remove {}: {e}", doomed.display());
        }
    })
    .detach();
}
