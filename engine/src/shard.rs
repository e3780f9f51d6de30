//! A shard's shared state: one core's share of the broker, as its tasks (connections, the
//! inbox, housekeeping, the cleaner) see it.
//!
//! [`Shard`] holds the partition replicas placed on this shard (leaders and followers), their logs, fetch waiters and group
//! commit, the consumer groups it coordinates, its metadata image and its counters;
//! [`Shard::apply_metadata`] adopts each new image. Its checkpoint files live in
//! `<log dir>/shard-<k>/` so that no two shards ever write the same file.
//!
//! The run loop that builds a shard, serves its port and stops it is
//! [`crate::shard_runtime`], kept apart so that the modules that only need the state (the
//! handlers, the coordinators) do not depend on the loop that calls them.

use crate::config::BrokerConfig;
use crate::file_worker::{remove_dir_releasing_blocks, run_blocking, FileWorker};
use crate::group::GroupCoordinator;
use crate::group_commit::GroupCommit;
use crate::messages::{OfflinePartition, ShardRouter};
use crate::metadata::{MetadataImage, PartitionState};
use crate::metrics::{FollowerLag, PartitionStats, ReplicationStats, ShardMetrics, ShardSnapshot};
use crate::partition::{log_config, Partition};
use crate::quorum_controller::ControllerService;
use crate::replica_manager::ReplicaManager;
use crate::time::now_ms;
use kafka_protocol::ResponseError;
use sluice_net::listener::ShutdownSignal;
use sluice_storage::{read_checkpoint, write_checkpoint, LogFileCache, PartitionLog};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use tracing::{error, warn};

/// Name of the per-shard recovery point checkpoint (Kafka's file name and format).
const RECOVERY_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Name of the per-shard log start offset checkpoint (Kafka's file name and format).
const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Name of the per-shard high watermark checkpoint (Kafka's file name and format).
const HIGH_WATERMARK_CHECKPOINT: &str = "replication-offset-checkpoint";

/// A partition replica on this shard, and whether this shard leads the partition.
struct LocalReplica {
    partition: Rc<Partition>,
    /// The image names this shard's node as the leader.
    leader: bool,
}

/// The replicas on this shard, by topic name then partition index.
type PartitionTable = HashMap<String, Vec<Option<LocalReplica>>>;

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
    /// The metadata log and the controller, on shard 0 only.
    pub controller: Option<Rc<ControllerService>>,
    /// Group commit of this shard's appends.
    pub group_commit: Rc<GroupCommit>,
    /// Raised when the shard stops.
    pub shutdown: ShutdownSignal,
    /// This shard's counters.
    pub metrics: ShardMetrics,
    /// The consumer groups this shard coordinates.
    pub groups: GroupCoordinator,
    /// Leaders and followers: the replica fetchers and the ISR checks (see
    /// [`crate::replica_manager`]).
    pub replicas: ReplicaManager,
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
    /// High watermarks read from the checkpoint at start, each taken when its log is opened.
    high_watermarks: RefCell<HashMap<(String, i32), i64>>,
    shard_dir: PathBuf,
    connections: Cell<usize>,
    /// Whether this broker is registered and unfenced in the current image.
    broker_live: Cell<bool>,
}

impl Shard {
    /// A shard's state at start, before any partition is open: reads the recovery point, log
    /// start offset and high watermark checkpoints in `shard_dir` (a missing file is empty),
    /// which the replicas are opened from. Fails with what could not be read.
    pub(crate) fn new(
        id: u32,
        config: Arc<BrokerConfig>,
        image: Arc<MetadataImage>,
        router: ShardRouter,
        controller: Option<Rc<ControllerService>>,
        file_worker: FileWorker,
        shard_dir: PathBuf,
    ) -> Result<Shard, String> {
        let recovery_points = load_offsets_checkpoint(&shard_dir.join(RECOVERY_CHECKPOINT))?;
        let log_start_offsets = load_offsets_checkpoint(&shard_dir.join(LOG_START_CHECKPOINT))?;
        let high_watermarks = load_offsets_checkpoint(&shard_dir.join(HIGH_WATERMARK_CHECKPOINT))?;
        Ok(Shard {
            id,
            node_id: image.node_of(id),
            groups: GroupCoordinator::new(&config),
            replicas: ReplicaManager::new(),
            segment_files: LogFileCache::new(config.segment_files_open_per_shard),
            config,
            router,
            controller,
            group_commit: Rc::new(GroupCommit::default()),
            shutdown: ShutdownSignal::default(),
            metrics: ShardMetrics::default(),
            file_worker,
            image: RefCell::new(image),
            partitions: RefCell::new(HashMap::new()),
            offline: RefCell::new(HashMap::new()),
            recovery_points: RefCell::new(recovery_points),
            log_start_offsets: RefCell::new(log_start_offsets),
            log_start_checkpoint_due: Cell::new(false),
            high_watermarks: RefCell::new(high_watermarks),
            shard_dir,
            connections: Cell::new(0),
            broker_live: Cell::new(false),
        })
    }

    /// Whether the recovery point checkpoint read at start had entries (logs then recover from
    /// them after an unclean shutdown).
    pub(crate) fn has_recovery_points(&self) -> bool {
        !self.recovery_points.borrow().is_empty()
    }

    /// The number of partitions placed here whose log could not be opened.
    pub(crate) fn offline_partition_count(&self) -> usize {
        self.offline.borrow().len()
    }

    /// Counts a client connection opened on this shard (for the metrics).
    pub(crate) fn connection_opened(&self) {
        self.connections.set(self.connections.get() + 1);
    }

    /// Counts a client connection of this shard closed.
    pub(crate) fn connection_closed(&self) {
        self.connections.set(self.connections.get() - 1);
    }

    /// The client connections open on this shard.
    pub(crate) fn open_connections(&self) -> usize {
        self.connections.get()
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// The partition `topic`/`index` if this shard leads it per the current image (never
    /// while this broker is fenced: its partitions have no leader here then). Produce, Fetch
    /// from consumers, ListOffsets and the group coordinator serve only these.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        if !self.broker_live.get() {
            return None;
        }
        let table = self.partitions.borrow();
        let replica = table
            .get(topic)?
            .get(usize::try_from(index).ok()?)?
            .as_ref()?;
        replica.leader.then(|| replica.partition.clone())
    }

    /// The replica of `topic`/`index` that may answer a consumer's Fetch from v11 on (KIP-392,
    /// where Kafka lets consumers read from followers): the leader or a follower on this shard,
    /// while this broker is live (a fenced broker serves no reads). A follower serves records
    /// up to its high watermark.
    pub fn readable_replica(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        if !self.broker_live.get() {
            return None;
        }
        self.replica(topic, index)
    }

    /// The replica of `topic`/`index` on this shard, leader or follower (what replication
    /// appends to and reads from).
    pub fn replica(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        let table = self.partitions.borrow();
        let replica = table
            .get(topic)?
            .get(usize::try_from(index).ok()?)?
            .as_ref()?;
        Some(replica.partition.clone())
    }

    /// The error for a request on `topic`/`index` that this shard does not serve: KAFKA_STORAGE_ERROR
    /// when the partition is placed here but its log could not be opened (Kafka's answer for a
    /// partition on an offline log dir), NOT_LEADER_OR_FOLLOWER when another node leads it (or
    /// this one only follows it), UNKNOWN_TOPIC_OR_PARTITION when it does not exist.
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

    /// Every partition replica on this shard, leader or follower: what is flushed,
    /// checkpointed, cleaned and kept within retention.
    pub fn all_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions
            .borrow()
            .values()
            .flatten()
            .flatten()
            .map(|r| r.partition.clone())
            .collect()
    }

    /// Adopts `image`: opens the logs of replicas newly placed here (followers as well as
    /// leaders), notes which ones this shard leads, deletes logs of topics that were deleted,
    /// and applies topic configs (overrides and dynamic broker configs) and leader epochs to
    /// the partitions and their logs, live. Counts the ISR shrinks and expansions of the
    /// partitions this shard led before and still leads. Returns the partitions whose logs it
    /// tried to open and could not (they stay offline, and are tried again at the next image).
    pub fn apply_metadata(&self, image: Arc<MetadataImage>) -> Vec<OfflinePartition> {
        let previous = self.image();
        let mut failed = Vec::new();
        let mut table = self.partitions.borrow_mut();
        let mut removed = Vec::new();
        table.retain(|topic, parts| match image.topic(topic) {
            Some(t) if parts.iter().flatten().all(|r| r.partition.topic_id == t.id) => true,
            _ => {
                removed.extend(parts.drain(..).flatten().map(|r| r.partition));
                false
            }
        });
        for (name, topic) in &image.state.topics {
            let effective = topic
                .configs
                .effective(&self.config, &image.state.broker_configs);
            let slots = table.entry(name.clone()).or_default();
            slots.resize_with(topic.partitions.len().max(slots.len()), || None);
            for (index, placement) in topic.partitions.iter().enumerate() {
                let here = image.is_replica_on(placement, self.id);
                let leader = image.leads(placement, self.id);
                match &mut slots[index] {
                    Some(r) if here => {
                        if r.leader && leader {
                            let before = previous
                                .topic(name)
                                .filter(|t| t.id == topic.id)
                                .and_then(|t| t.partitions.get(index));
                            if let Some(before) = before {
                                self.metrics.record_isr_change(&before.isr, &placement.isr);
                            }
                        }
                        r.partition.apply_config(&effective);
                        r.partition.leader_epoch.set(placement.leader_epoch);
                        r.leader = leader;
                    }
                    Some(_) => removed.extend(slots[index].take().map(|r| r.partition)),
                    None if here => {
                        let opened = self.open_partition(
                            name,
                            index as i32,
                            topic.id,
                            placement,
                            &effective,
                        );
                        let key = (name.clone(), index as i32);
                        match opened {
                            Ok(partition) => {
                                self.offline.borrow_mut().remove(&key);
                                slots[index] = Some(LocalReplica { partition, leader });
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
                .is_some_and(|p| image.is_replica_on(p, self.id));
            if !placed_here {
                self.log_start_offsets.borrow_mut().remove(key);
                self.recovery_points.borrow_mut().remove(key);
                self.high_watermarks.borrow_mut().remove(key);
            }
            placed_here
        });
        for p in removed {
            let deleted = match image.topic(&p.topic) {
                Some(t) if t.id == p.topic_id => !t
                    .partitions
                    .get(p.index as usize)
                    .is_some_and(|placement| image.is_replica_on(placement, self.id)),
                _ => true,
            };
            if deleted {
                delete_partition_dir(&self.file_worker, &p);
            }
        }
        self.broker_live.set(image.is_local_broker_live());
        *self.image.borrow_mut() = image;
        failed
    }

    /// Opens the log of this shard's replica of `topic`/`index`: in the partition's shared
    /// directory, found in any log dir (Kafka's layout), or in this shard's own directory when
    /// another shard of this broker holds the partition's first local replica (see
    /// [`crate::metadata::PartitionState::uses_shared_dir`]).
    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        topic_id: uuid::Uuid,
        placement: &PartitionState,
        effective: &crate::config::EffectiveTopicConfig,
    ) -> Result<Rc<Partition>, String> {
        let dir_name = format!("{topic}-{index}");
        let log_dir = if placement.uses_shared_dir(self.node_id) {
            self.config
                .log_dirs
                .iter()
                .find(|d| d.join(&dir_name).is_dir())
                .unwrap_or(&self.config.log_dirs[self.id as usize % self.config.log_dirs.len()])
        } else {
            &self.shard_dir
        };
        let epoch = placement.leader_epoch;
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
                let key = (topic.to_string(), index);
                self.log_start_offsets.borrow_mut().remove(&key);
                let checkpointed = self.high_watermarks.borrow_mut().remove(&key);
                if report.truncated_at_offset.is_some() {
                    warn!(shard = self.id, "recovery of {topic}-{index}: {report}");
                }
                let high_watermark = initial_high_watermark(
                    checkpointed,
                    log.log_start_offset(),
                    log.log_end_offset(),
                );
                Ok(Rc::new(Partition::new(
                    topic.to_string(),
                    index,
                    topic_id,
                    log,
                    epoch,
                    high_watermark,
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

    /// This shard's metrics, with its partitions' gauges and replication state.
    pub fn metrics_snapshot(&self) -> ShardSnapshot {
        let replicas = self.all_partitions();
        let count = |f: fn(&Partition) -> bool| replicas.iter().filter(|p| f(p)).count() as u64;
        let replication = ReplicationStats {
            under_replicated_partitions: count(Partition::is_under_replicated),
            under_min_isr_partitions: count(Partition::is_under_min_isr),
            follower_lags: self
                .replicas
                .follower_status()
                .into_iter()
                .filter_map(|f| {
                    Some(FollowerLag {
                        lag: f.lag?,
                        topic: f.topic_partition.topic,
                        partition: f.topic_partition.partition,
                        leader: f.leader_id,
                    })
                })
                .collect(),
        };
        let partitions = replicas
            .iter()
            .map(|p| PartitionStats {
                topic: p.topic.clone(),
                partition: p.index,
                log_start_offset: p.log_start_offset(),
                log_end_offset: p.log_end_offset(),
                high_watermark: p.high_watermark(),
                size_bytes: p.size_bytes(),
            })
            .collect();
        self.metrics.snapshot(
            self.id,
            self.open_connections() as u64,
            partitions,
            replication,
        )
    }

    /// The entries of this shard's recovery point checkpoint. Offline partitions keep the
    /// entries read at start, so that they recover from them once they can be opened. Each
    /// recovery point covers only data already synced, so writing them later is safe.
    fn recovery_checkpoint_entries(&self) -> Vec<(String, i32, i64)> {
        let mut entries: Vec<(String, i32, i64)> = self
            .all_partitions()
            .iter()
            .map(|p| (p.topic.clone(), p.index, p.recovery_point()))
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
                let offset = p.checkpointed_log_start_offset()?;
                Some((p.topic.clone(), p.index, offset))
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

    /// Writes the recovery point checkpoint (off the shard's thread).
    pub(crate) async fn write_recovery_checkpoint(&self) {
        let entries = self.recovery_checkpoint_entries();
        self.write_checkpoint(RECOVERY_CHECKPOINT, entries).await;
    }

    /// Writes the log start offset checkpoint (off the shard's thread); a failed write is
    /// retried at the next tick.
    pub(crate) async fn write_log_start_checkpoint(&self) {
        self.log_start_checkpoint_due.set(false);
        let entries = self.log_start_checkpoint_entries();
        if !self.write_checkpoint(LOG_START_CHECKPOINT, entries).await {
            self.log_start_checkpoint_due.set(true);
        }
    }

    /// The entries of this shard's high watermark checkpoint: every replica's high watermark,
    /// leader or follower (Kafka's `replication-offset-checkpoint`), and the entries read at
    /// start of the partitions that are offline.
    fn high_watermark_checkpoint_entries(&self) -> Vec<(String, i32, i64)> {
        let mut entries: Vec<(String, i32, i64)> = self
            .all_partitions()
            .iter()
            .map(|p| (p.topic.clone(), p.index, p.high_watermark()))
            .collect();
        entries.extend(self.offline_entries(&self.high_watermarks.borrow()));
        entries
    }

    /// Writes the high watermark checkpoint (off the shard's thread), so that a restarted
    /// replica does not hide committed records until its followers fetch again.
    pub(crate) async fn write_high_watermark_checkpoint(&self) {
        let entries = self.high_watermark_checkpoint_entries();
        self.write_checkpoint(HIGH_WATERMARK_CHECKPOINT, entries)
            .await;
    }

    /// Writes the three checkpoints on the calling thread: for shutdown only, once nothing is
    /// served any more (see [`crate::file_worker`]).
    pub(crate) fn write_checkpoints_at_shutdown(&self) {
        for (name, entries) in [
            (RECOVERY_CHECKPOINT, self.recovery_checkpoint_entries()),
            (LOG_START_CHECKPOINT, self.log_start_checkpoint_entries()),
            (
                HIGH_WATERMARK_CHECKPOINT,
                self.high_watermark_checkpoint_entries(),
            ),
        ] {
            if let Err(e) = write_checkpoint(&self.shard_dir.join(name), &entries) {
                error!(shard = self.id, "cannot write {name}: {e}");
            }
        }
    }

    /// Whether a log start offset moved since the log start offset checkpoint was last
    /// written (see [`Shard::log_start_offsets_changed`]).
    pub(crate) fn log_start_checkpoint_due(&self) -> bool {
        self.log_start_checkpoint_due.get()
    }
}

/// The high watermark a replica opens with (Kafka's `Partition.createLog` then
/// `updateHighWatermark`): the checkpointed one, or 0 when there is none, kept within the log
/// start and log end offsets of the log as recovered.
fn initial_high_watermark(checkpointed: Option<i64>, log_start: i64, log_end: i64) -> i64 {
    debug_assert!(log_start <= log_end, "a log starts before it ends");
    checkpointed.unwrap_or(0).min(log_end).max(log_start)
}

/// Reads one of the shard's offset checkpoints (a missing file is empty).
fn load_offsets_checkpoint(path: &Path) -> Result<HashMap<(String, i32), i64>, String> {
    let entries = read_checkpoint(path).map_err(|e| e.to_string())?;
    Ok(entries.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}

/// Renames a deleted partition's directory to Kafka's `-delete` form, then removes it on the
/// shard's file worker so a large log does not stall the core.
fn delete_partition_dir(worker: &FileWorker, p: &Partition) {
    let dir = p.dir();
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

#[cfg(test)]
mod tests {
    use super::initial_high_watermark;

    #[test]
    fn a_replica_opens_with_its_checkpointed_high_watermark_within_its_log() {
        assert_eq!(initial_high_watermark(Some(40), 10, 50), 40);
        // A log that lost its unflushed tail in recovery: capped at the log end.
        assert_eq!(initial_high_watermark(Some(70), 10, 50), 50);
        // Records deleted below the checkpoint meanwhile: raised to the log start.
        assert_eq!(initial_high_watermark(Some(5), 10, 50), 10);
        // No checkpoint (a new replica, a crash before the first write): the log start.
        assert_eq!(initial_high_watermark(None, 10, 50), 10);
        assert_eq!(initial_high_watermark(None, 0, 0), 0);
    }
}
