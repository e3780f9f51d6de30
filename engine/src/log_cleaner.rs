//! The log cleaner of a shard (Kafka's `LogCleaner`, one per shard instead of a thread pool).
//!
//! Every shard runs one cleaner task for the compacted partitions it leads
//! (`cleanup.policy` containing `compact`, `__consumer_offsets` included). The task runs in
//! its own glommio task queue with few shares and [`Latency::NotImportant`], so produce and
//! fetch on the shard always come first. It picks the dirtiest cleanable log (see
//! [`sluice_storage::cleaner`]; a log whose `max.compaction.lag.ms` is exceeded comes first)
//! and cleans it; when none is cleanable it sleeps `log.cleaner.backoff.ms`.
//!
//! A cleaning's reading, filtering, compression and writing run on the shard's
//! [`FileWorker`] (a `SCHED_IDLE` thread on the shard's CPU: the cleaner uses the core's idle
//! time and no more; on a core that is never idle it gets the kernel's minimum share and
//! cleans slowly), one slice (about [`STEP_BYTES`] read) at a time, so the core's executor
//! stays free. Dropping a cleaning's last handles on the replaced segment files, and unlinking
//! those files after `file.delete.delay.ms`, also happen there: freeing a file's blocks can be
//! slow and must not stall the executor. Between slices the task sleeps as needed to keep its
//! read plus write rate under `log.cleaner.io.max.bytes.per.second` (Kafka's
//! `Throttler`). Each cleaned group of segments is swapped into the log on the shard thread,
//! synchronously, after checking that its segments are still the log's: retention,
//! DeleteRecords or a topic deletion may remove segments meanwhile, and the cleaning is then
//! abandoned. Nothing borrows a log across an `.await`.
//!
//! Each partition's first dirty offset is kept in the shard's `cleaner-offset-checkpoint`
//! (Kafka's file and format), written after every cleaning. The key map's memory is
//! `log.cleaner.dedupe.buffer.size` split between the shards, allocated as cleanings need it
//! and kept for the next one.
//!
//! Beyond Kafka: a log whose cleaned tombstones' delete horizon has passed is also cleaned,
//! even if nothing new was written to it, so that deleted keys disappear about
//! `delete.retention.ms` after their first cleaning (Kafka waits for the dirty ratio). The
//! horizons are known from the cleanings since the broker started.

use crate::config::{BrokerConfig, DynamicBrokerConfigs, EffectiveTopicConfig};
use crate::file_worker::{run_blocking, FileWorker, FileWorkerStopped};
use crate::partition::Partition;
use crate::retention::schedule_file_removal;
use crate::shard::Shard;
use crate::time::now_ms;
use glommio::{Latency, Shares};
use sluice_storage::{
    read_checkpoint, write_checkpoint, CleanableRange, CleanerError, CleaningJob, CleaningStep,
    CleaningSummary, CompactionConfig, OffsetMap, SegmentSwap, StorageError,
    CLEANER_OFFSET_CHECKPOINT,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};
use uuid::Uuid;

/// Bytes a cleaning reads per slice of work on the blocking thread.
pub const STEP_BYTES: u64 = 256 * 1024;
/// Shares of the cleaner's task queue (glommio's default queue has 1000).
const CLEANER_SHARES: usize = 50;
/// How often the rate limit is checked (Kafka's `Throttler` check interval for the cleaner).
const THROTTLE_CHECK_INTERVAL: Duration = Duration::from_millis(300);
/// Longest single sleep while backing off, so that shutdown is noticed quickly.
const BACKOFF_SLICE: Duration = Duration::from_millis(100);

/// The cleaner settings of a shard, from the broker config and the dynamic broker configs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`.
    pub enable: bool,
    /// This shard's share of `log.cleaner.dedupe.buffer.size`.
    pub map_memory_bytes: u64,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`.
    pub backoff: Duration,
}

impl CleanerSettings {
    /// The settings of one of `shards` shards: a dynamic value (set for this broker, or as a
    /// cluster-wide default) wins over the static config. `log.cleaner.enable` is static.
    pub fn new(
        config: &BrokerConfig,
        dynamic: &DynamicBrokerConfigs,
        shards: u32,
    ) -> CleanerSettings {
        let id = config.broker_id;
        let dedupe_buffer_size = dynamic_or(
            dynamic,
            id,
            "log.cleaner.dedupe.buffer.size",
            config.log_cleaner_dedupe_buffer_size,
        );
        let backoff_ms = dynamic_or(
            dynamic,
            id,
            "log.cleaner.backoff.ms",
            config.log_cleaner_backoff_ms,
        );
        CleanerSettings {
            enable: config.log_cleaner_enable,
            map_memory_bytes: dedupe_buffer_size / u64::from(shards.max(1)),
            max_bytes_per_second: dynamic_or(
                dynamic,
                id,
                "log.cleaner.io.max.bytes.per.second",
                config.log_cleaner_io_max_bytes_per_second,
            ),
            backoff: Duration::from_millis(u64::try_from(backoff_ms).unwrap_or(0)),
        }
    }

    /// The current settings of `shard`'s cleaner (dynamic configs may have changed).
    fn of(shard: &Shard) -> CleanerSettings {
        let image = shard.image();
        CleanerSettings::new(&shard.config, &image.state.broker_configs, image.shards)
    }
}

/// The dynamic value of broker key `name` for broker `id` (validated when it was set), or
/// `fallback` from the static config.
fn dynamic_or<T: std::str::FromStr>(
    dynamic: &DynamicBrokerConfigs,
    id: i32,
    name: &str,
    fallback: T,
) -> T {
    dynamic
        .value_for(id, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(fallback)
}

/// The compaction settings of a topic config.
pub fn compaction_config(c: &EffectiveTopicConfig) -> CompactionConfig {
    CompactionConfig {
        delete_retention_ms: c.delete_retention_ms,
        min_compaction_lag_ms: c.min_compaction_lag_ms,
        max_compaction_lag_ms: c.max_compaction_lag_ms,
        min_cleanable_dirty_ratio: c.min_cleanable_dirty_ratio,
    }
}

/// Starts the shard's cleaner in its own low-priority task queue (its blocking work goes to the
/// shard's [`FileWorker`]), unless `log.cleaner.enable=false`.
pub fn spawn(shard: Rc<Shard>) {
    let settings = CleanerSettings::of(&shard);
    if !settings.enable {
        info!(
            shard = shard.id,
            "log cleaner disabled (log.cleaner.enable=false)"
        );
        return;
    }
    let worker = shard.file_worker.clone();
    let queue = glommio::executor().create_task_queue(
        Shares::Static(CLEANER_SHARES),
        Latency::NotImportant,
        "log-cleaner",
    );
    let shard_id = shard.id;
    match glommio::spawn_local_into(run(shard, settings, worker), queue) {
        Ok(task) => {
            task.detach();
        }
        Err(e) => error!(shard = shard_id, "cannot start the log cleaner: {e}"),
    }
}

/// Kafka's `Throttler`: sleeps so that the bytes observed per second stay under a rate.
#[derive(Debug)]
struct Throttle {
    bytes_per_second: f64,
    period_start: Instant,
    observed: f64,
}

impl Throttle {
    fn new(bytes_per_second: f64) -> Throttle {
        Throttle {
            bytes_per_second,
            period_start: Instant::now(),
            observed: 0.0,
        }
    }

    /// Counts `bytes` of I/O and sleeps if the rate since the period began is too high.
    async fn observe(&mut self, bytes: u64) {
        self.observed += bytes as f64;
        let elapsed = self.period_start.elapsed();
        if elapsed <= THROTTLE_CHECK_INTERVAL || self.observed <= 0.0 {
            return;
        }
        if let Some(nap) = throttle_sleep(self.observed, elapsed, self.bytes_per_second) {
            glommio::timer::sleep(nap).await;
        }
        self.period_start = Instant::now();
        self.observed = 0.0;
    }
}

/// How long to sleep after `observed` bytes in `elapsed` to bring the rate down to
/// `bytes_per_second` (`None` when the rate is not exceeded).
fn throttle_sleep(observed: f64, elapsed: Duration, bytes_per_second: f64) -> Option<Duration> {
    let rate = bytes_per_second.max(1.0);
    let wanted = Duration::try_from_secs_f64(observed / rate).ok()?;
    wanted.checked_sub(elapsed).filter(|d| !d.is_zero())
}

/// A partition as the cleaner keys it: name, index and topic id (a topic deleted and created
/// again is another log).
type LogKey = (String, i32, Uuid);

fn key_of(p: &Partition) -> LogKey {
    (p.topic.clone(), p.index, p.topic_id)
}

/// What the cleaner remembers between cleanings.
#[derive(Debug, Default)]
struct CleanerState {
    /// First dirty offsets: from the checkpoint for the logs open at start, then from each
    /// cleaning.
    dirty_offsets: HashMap<LogKey, i64>,
    /// Earliest delete horizon of the tombstones each log kept at its last cleaning.
    delete_horizons: HashMap<LogKey, i64>,
    /// Logs whose cleaning failed: they are skipped (Kafka marks them uncleanable).
    failed: HashSet<LogKey>,
}

impl CleanerState {
    /// The state at start: the checkpointed first dirty offsets of the logs open now (a topic
    /// created later under the same name is another log, with no entry).
    fn at_start(checkpointed: &HashMap<(String, i32), i64>, partitions: &[Rc<Partition>]) -> Self {
        let dirty_offsets = partitions
            .iter()
            .filter_map(|p| {
                let offset = checkpointed.get(&(p.topic.clone(), p.index))?;
                Some((key_of(p), *offset))
            })
            .collect();
        CleanerState {
            dirty_offsets,
            ..CleanerState::default()
        }
    }

    /// The first dirty offset of `p`, if it was ever cleaned.
    fn dirty_offset(&self, p: &Partition) -> Option<i64> {
        self.dirty_offsets.get(&key_of(p)).copied()
    }

    /// Records a finished cleaning of `p`.
    fn cleaned(&mut self, p: &Partition, summary: &CleaningSummary) {
        let key = key_of(p);
        self.dirty_offsets
            .insert(key.clone(), summary.next_dirty_offset);
        match summary.earliest_delete_horizon {
            Some(horizon) => self.delete_horizons.insert(key, horizon),
            None => self.delete_horizons.remove(&key),
        };
    }

    /// The checkpoint entries of the partitions the shard leads now.
    fn checkpoint_entries(&self, partitions: &[Rc<Partition>]) -> Vec<(String, i32, i64)> {
        partitions
            .iter()
            .filter_map(|p| Some((p.topic.clone(), p.index, self.dirty_offset(p)?)))
            .collect()
    }
}

/// A log worth cleaning now.
struct Candidate {
    partition: Rc<Partition>,
    range: CleanableRange,
    config: CompactionConfig,
}

/// The cleaner task: cleans the filthiest log, or sleeps `log.cleaner.backoff.ms`.
async fn run(shard: Rc<Shard>, settings: CleanerSettings, worker: FileWorker) {
    let checkpoint = shard.shard_dir().join(CLEANER_OFFSET_CHECKPOINT);
    let mut state = CleanerState::at_start(
        &load_checkpoint(&checkpoint, shard.id),
        &shard.all_partitions(),
    );
    let mut settings = settings;
    let mut map = Some(OffsetMap::with_memory(settings.map_memory_bytes));
    let mut throttle = Throttle::new(settings.max_bytes_per_second);
    while !shard.shutdown.is_triggered() {
        let current = CleanerSettings::of(&shard);
        if current != settings {
            info!(
                shard = shard.id,
                "log cleaner settings changed: {} bytes of key map, at most {} bytes/s, backoff {:?}",
                current.map_memory_bytes,
                current.max_bytes_per_second,
                current.backoff
            );
            if current.map_memory_bytes != settings.map_memory_bytes {
                map = None;
            }
            throttle.bytes_per_second = current.max_bytes_per_second;
            settings = current;
        }
        let candidate = filthiest(&shard, &state).await;
        let cleaned = match candidate {
            Some(candidate) => {
                let job_map = map
                    .take()
                    .unwrap_or_else(|| OffsetMap::with_memory(settings.map_memory_bytes));
                let (outcome, returned) =
                    clean(&shard, &worker, &candidate, job_map, &mut throttle).await;
                map = returned;
                if let Err(CleaningAborted::FileWorkerStopped(e)) = &outcome {
                    error!(
                        shard = shard.id,
                        "{e}; compacted topics are no longer cleaned until the broker restarts"
                    );
                    return;
                }
                finish(&shard, &mut state, &candidate, outcome, &checkpoint).await
            }
            None => false,
        };
        if !cleaned {
            backoff(&shard, settings.backoff).await;
        }
    }
}

/// Sleeps `backoff` in short slices, returning early at shutdown.
async fn backoff(shard: &Shard, backoff: Duration) {
    let until = Instant::now() + backoff;
    while !shard.shutdown.is_triggered() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        glommio::timer::sleep(left.min(BACKOFF_SLICE)).await;
    }
}

/// Reads the cleaner checkpoint; a bad file is logged and ignored (every log is then dirty
/// from its start, which costs a cleaning but loses nothing).
fn load_checkpoint(path: &Path, shard: u32) -> HashMap<(String, i32), i64> {
    match read_checkpoint(path) {
        Ok(entries) => entries.into_iter().map(|(t, p, o)| ((t, p), o)).collect(),
        Err(e) => {
            warn!(shard, "ignoring the cleaner checkpoint: {e}");
            HashMap::new()
        }
    }
}

/// The cleanable compacted log with the most to gain: first those past
/// `max.compaction.lag.ms`, then by dirty ratio.
async fn filthiest(shard: &Shard, state: &CleanerState) -> Option<Candidate> {
    let now = now_ms();
    let mut best: Option<Candidate> = None;
    for partition in shard.all_partitions() {
        glommio::yield_if_needed().await;
        let config = {
            let c = partition.config.borrow();
            if !c.cleanup_policy.compact {
                continue;
            }
            compaction_config(&c)
        };
        if state.failed.contains(&key_of(&partition)) {
            continue;
        }
        let range = partition.cleanable_range(state.dirty_offset(&partition), &config, now);
        let range = match range {
            Ok(range) => range,
            Err(e) => {
                warn!(
                    shard = shard.id,
                    "cannot tell whether {}-{} needs cleaning: {e}",
                    partition.topic,
                    partition.index
                );
                continue;
            }
        };
        let horizon_passed = state
            .delete_horizons
            .get(&key_of(&partition))
            .is_some_and(|&h| h <= now)
            && range.clean_bytes + range.cleanable_bytes > 0;
        if !range.is_cleanable(config.min_cleanable_dirty_ratio) && !horizon_passed {
            continue;
        }
        let rank = |c: &Candidate| (c.range.needs_compaction_now(), c.range.dirty_ratio());
        let candidate = Candidate {
            partition,
            range,
            config,
        };
        if best.as_ref().is_none_or(|b| {
            rank(&candidate)
                .partial_cmp(&rank(b))
                .is_some_and(|o| o.is_gt())
        }) {
            best = Some(candidate);
        }
    }
    best
}

/// Why a cleaning stopped early.
#[derive(Debug, thiserror::Error)]
enum CleaningAborted {
    /// The log changed under the cleaning, or the partition left the shard.
    #[error("{0}")]
    Changed(String),
    /// I/O failed or a batch could not be read.
    #[error(transparent)]
    Failed(#[from] CleanerError),
    /// The shard's file worker thread ended.
    #[error(transparent)]
    FileWorkerStopped(#[from] FileWorkerStopped),
}

impl From<StorageError> for CleaningAborted {
    fn from(e: StorageError) -> Self {
        CleaningAborted::Failed(e.into())
    }
}

/// Cleans one log; returns the outcome and the offset map for the next cleaning (`None` if
/// the cleaning could not start: the next one allocates a new map).
async fn clean(
    shard: &Shard,
    worker: &FileWorker,
    candidate: &Candidate,
    map: OffsetMap,
    throttle: &mut Throttle,
) -> (Result<CleaningSummary, CleaningAborted>, Option<OffsetMap>) {
    let partition = &candidate.partition;
    let started = partition.start_cleaning(&candidate.range, &candidate.config, map, now_ms());
    let job: CleaningJob = match started {
        Ok(job) => job,
        Err(e) => return (Err(e.into()), None),
    };
    let (outcome, job) = run_job(shard, worker, partition, job, throttle).await;
    let Some(job) = job else {
        return (outcome, None);
    };
    // The job holds the last handles on replaced segment files that may already be unlinked:
    // closing them frees their blocks, off the executor.
    match worker.run(move || job.into_map()).await {
        Ok(map) => (outcome, Some(map)),
        Err(e) => (outcome.and(Err(e.into())), None),
    }
}

/// Steps a cleaning on the file worker and swaps its cleaned groups in until it is over;
/// returns the outcome and the job (`None` if the file worker ended with it).
async fn run_job(
    shard: &Shard,
    worker: &FileWorker,
    partition: &Rc<Partition>,
    mut job: CleaningJob,
    throttle: &mut Throttle,
) -> (
    Result<CleaningSummary, CleaningAborted>,
    Option<CleaningJob>,
) {
    loop {
        let stepped = worker
            .run(move || {
                let report = job.step(STEP_BYTES);
                (job, report)
            })
            .await;
        let report = match stepped {
            Ok((returned, report)) => {
                job = returned;
                report
            }
            Err(e) => return (Err(e.into()), None),
        };
        let report = match report {
            Ok(report) => report,
            Err(e) => return (Err(e.into()), Some(job)),
        };
        throttle
            .observe(report.bytes_read + report.bytes_written)
            .await;
        match report.step {
            CleaningStep::Progress => {}
            CleaningStep::Cleaned(cleaned) => {
                if !still_holds(shard, partition) {
                    let _ = cleaned.discard();
                    let reason = "the partition left the shard".to_string();
                    return (Err(CleaningAborted::Changed(reason)), Some(job));
                }
                let (base, end) = (cleaned.base_offset(), cleaned.end_offset());
                let (replaced, size) = (cleaned.replaced_segments(), cleaned.size());
                let swapped = partition.replace_with_cleaned(cleaned);
                match swapped {
                    Ok(swap) => {
                        debug!(
                            shard = shard.id,
                            "cleaned {}-{}: {replaced} segment(s) at offsets {base}..{end} swapped for one of {size} bytes",
                            partition.topic,
                            partition.index
                        );
                        let delay_ms = partition.config.borrow().file_delete_delay_ms;
                        after_swap(shard.id, worker, swap, delay_ms).await;
                    }
                    Err(CleanerError::LogChanged { .. }) => {
                        let reason = format!(
                            "segments at offsets {base}..{end} were deleted or replaced meanwhile"
                        );
                        return (Err(CleaningAborted::Changed(reason)), Some(job));
                    }
                    Err(e) => return (Err(e.into()), Some(job)),
                }
            }
            CleaningStep::Finished(summary) => return (Ok(summary), Some(job)),
        }
        glommio::yield_if_needed().await;
    }
}

/// Whether the shard still holds this very replica (it may have been deleted or moved).
fn still_holds(shard: &Shard, partition: &Rc<Partition>) -> bool {
    shard
        .replica(&partition.topic, partition.index)
        .is_some_and(|current| Rc::ptr_eq(&current, partition))
}

/// Makes a swap durable (fsync of the partition directory, on the file worker) and
/// schedules the removal of the replaced segments' files after `file.delete.delay.ms`, as
/// Kafka does (on the file worker too: unlinking frees the files' blocks).
async fn after_swap(shard_id: u32, worker: &FileWorker, swap: SegmentSwap, delay_ms: i64) {
    let SegmentSwap { replaced, dir } = swap;
    let synced = match worker.run(move || sync_dir(&dir)).await {
        Ok(synced) => synced.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = synced {
        error!(
            shard = shard_id,
            "cannot sync a swap of cleaned segments: {e}"
        );
    }
    schedule_file_removal(shard_id, worker, replaced, delay_ms);
}

/// fsyncs a directory (on the file worker).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    sluice_storage::blocking::debug_assert_blocking_allowed("a directory fsync");
    std::fs::File::open(dir)?.sync_all()
}

/// Records a cleaning's outcome: checkpoint, metrics, log lines. Returns whether the log was
/// cleaned (the cleaner then looks for the next one at once).
async fn finish(
    shard: &Shard,
    state: &mut CleanerState,
    candidate: &Candidate,
    outcome: Result<CleaningSummary, CleaningAborted>,
    checkpoint: &Path,
) -> bool {
    let p = &candidate.partition;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(CleaningAborted::Changed(reason)) => {
            info!(
                shard = shard.id,
                "cleaning of {}-{} abandoned: {reason}", p.topic, p.index
            );
            return false;
        }
        Err(e @ (CleaningAborted::Failed(_) | CleaningAborted::FileWorkerStopped(_))) => {
            error!(
                shard = shard.id,
                "cleaning of {}-{} failed; the log is no longer cleaned until the broker restarts: {e}",
                p.topic,
                p.index
            );
            state.failed.insert(key_of(p));
            return false;
        }
    };
    info!(
        shard = shard.id,
        "cleaned {}-{} (dirty ratio {:.2}): offsets {}..{} compacted, {} records removed, {} segments rewritten, {} bytes read, {} written",
        p.topic,
        p.index,
        candidate.range.dirty_ratio(),
        summary.first_dirty_offset,
        summary.next_dirty_offset,
        summary.records_removed,
        summary.segments_rewritten,
        summary.bytes_read,
        summary.bytes_written
    );
    shard
        .metrics
        .record_cleaning(summary.bytes_read, summary.bytes_written);
    state.cleaned(p, &summary);
    let entries = state.checkpoint_entries(&shard.all_partitions());
    let path: PathBuf = checkpoint.to_path_buf();
    let written = run_blocking(move || write_checkpoint(&path, &entries)).await;
    if let Err(e) = written {
        error!(shard = shard.id, "cannot write the cleaner checkpoint: {e}");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn throttle_sleeps_only_above_the_rate() {
        let second = Duration::from_secs(1);
        assert_eq!(throttle_sleep(1000.0, second, 2000.0), None);
        assert_eq!(throttle_sleep(2000.0, second, 2000.0), None);
        assert_eq!(
            throttle_sleep(4000.0, second, 2000.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            throttle_sleep(3000.0, Duration::from_millis(500), 1000.0),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(throttle_sleep(1e12, second, f64::MAX), None, "unlimited");
        assert!(
            throttle_sleep(10.0, second, 0.0).is_some(),
            "a zero rate still sleeps"
        );
    }

    #[test]
    fn settings_split_the_dedupe_buffer_between_shards() {
        let config = BrokerConfig::load(
            None,
            &[
                "log.cleaner.dedupe.buffer.size=1000".to_string(),
                "log.cleaner.backoff.ms=200".to_string(),
                "log.cleaner.io.max.bytes.per.second=5e6".to_string(),
            ],
        )
        .unwrap();
        let none = DynamicBrokerConfigs::default();
        let settings = CleanerSettings::new(&config, &none, 4);
        assert_eq!(
            settings,
            CleanerSettings {
                enable: true,
                map_memory_bytes: 250,
                max_bytes_per_second: 5e6,
                backoff: Duration::from_millis(200),
            }
        );
        let defaults = CleanerSettings::new(&BrokerConfig::load(None, &[]).unwrap(), &none, 2);
        assert_eq!(defaults.map_memory_bytes, 64 << 20);
        assert_eq!(defaults.max_bytes_per_second, f64::MAX);
        assert_eq!(defaults.backoff, Duration::from_secs(15));
        let off = BrokerConfig::load(None, &["log.cleaner.enable=false".to_string()]).unwrap();
        assert!(!CleanerSettings::new(&off, &none, 1).enable);
        // Dynamic values win: per broker over cluster-wide defaults over the static config.
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic.cluster_default.insert(
            "log.cleaner.io.max.bytes.per.second".into(),
            "1000000.0".into(),
        );
        dynamic
            .cluster_default
            .insert("log.cleaner.backoff.ms".into(), "50".into());
        dynamic.set_broker(
            config.broker_id,
            BTreeMap::from([(
                "log.cleaner.io.max.bytes.per.second".into(),
                "2000.0".into(),
            )]),
        );
        let live = CleanerSettings::new(&config, &dynamic, 4);
        assert_eq!(live.max_bytes_per_second, 2000.0);
        assert_eq!(live.backoff, Duration::from_millis(50));
        assert_eq!(live.map_memory_bytes, 250);
    }
}
