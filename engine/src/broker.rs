//! Starting and stopping a whole broker: one pinned executor per shard.

use crate::config::{BrokerConfig, ConfigError};
use crate::fd_budget;
use crate::group::{offsets_topic, OFFSETS_TOPIC};
use crate::messages::ShardRouter;
use crate::metadata::{ClusterState, MetadataError, MetadataImage};
use crate::shard_runtime::{run_shard, ShardStart};
use glommio::{LocalExecutorBuilder, Placement};
use sluice_tuning::memlock::{io_memory_per_shard, memlock_limit, MemlockTooLow};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::{error, info};

/// Why the broker could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is unusable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Locked memory is too small for the shards.
    #[error("{0}")]
    Memlock(#[from] MemlockTooLow),
    /// The metadata file is unreadable.
    #[error("{0}")]
    Metadata(#[from] MetadataError),
    /// A log directory cannot be used.
    #[error("log directory {path}: {source}")]
    LogDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A shard failed.
    #[error("{0}")]
    Shard(String),
}

/// The number of shards to run: `--cores` / `sluice.cores`, or every online CPU.
pub fn shard_count(config: &BrokerConfig) -> usize {
    if config.cores > 0 {
        config.cores
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// Runs a broker until `stop` is raised, then shuts every shard down cleanly.
pub fn run_broker(mut config: BrokerConfig, stop: Arc<AtomicBool>) -> Result<(), BrokerError> {
    let shards = shard_count(&config);
    let nofile = fd_budget::raise_nofile_limit();
    config.segment_files_open_per_shard = fd_budget::segment_file_cache_size(
        config.segment_files_open_per_shard,
        nofile.soft,
        shards,
    );
    config.check_shard_ports(shards)?;
    let io_memory = io_memory_per_shard(memlock_limit(), shards)?;
    for dir in &config.log_dirs {
        std::fs::create_dir_all(dir).map_err(|source| BrokerError::LogDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let metadata_dir = config.log_dirs[0].clone();
    let mut state = match ClusterState::load(&metadata_dir)? {
        Some(state) => state,
        None => ClusterState::new(config.cluster_id.clone()),
    };
    if !state.topics.contains_key(OFFSETS_TOPIC) {
        let topic = offsets_topic(&config, shards as u32)
            .map_err(|e| BrokerError::Shard(format!("cannot create {OFFSETS_TOPIC}: {e}")))?;
        info!(
            partitions = topic.partitions.len(),
            "created {OFFSETS_TOPIC} for consumer groups"
        );
        state.topics.insert(OFFSETS_TOPIC.to_string(), topic);
    }
    let moved = state.rebalance_missing_shards(shards as u32);
    if moved > 0 {
        info!("{moved} partition(s) were on shards this broker no longer runs; moved them to the remaining shards");
    }
    let partitions: u64 = state
        .topics
        .values()
        .map(|t| t.partitions.len() as u64)
        .sum();
    fd_budget::log_budget(
        nofile,
        partitions,
        shards,
        config.segment_files_open_per_shard,
    );
    state.save(&metadata_dir)?;
    write_meta_properties(&config, &state.cluster_id)?;
    let image = Arc::new(MetadataImage::new(state.clone(), &config, shards as u32));
    let config = Arc::new(config);
    let (router, inboxes) = ShardRouter::new(shards as u32);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    info!(shards, io_memory_kib = io_memory / 1024, cluster_id = %state.cluster_id, "starting broker {}", config.broker_id);

    let mut controller_state = Some((state, metadata_dir));
    let mut handles = Vec::with_capacity(shards);
    for (id, inbox) in inboxes.into_iter().enumerate() {
        let start = ShardStart {
            id: id as u32,
            config: config.clone(),
            image: image.clone(),
            router: router.clone(),
            inbox,
            stop: stop.clone(),
            controller_state: if id == 0 {
                controller_state.take()
            } else {
                None
            },
        };
        let stop_on_error = stop.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(id % cpus))
            .name(&format!("shard-{id}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                let result = run_shard(start).await;
                if let Err(e) = &result {
                    error!("{e}");
                    stop_on_error.store(true, Ordering::Relaxed);
                }
                result.map_err(|e| e.to_string())
            })
            .map_err(|e| {
                BrokerError::Shard(format!("cannot start executor for shard {id}: {e}"))
            })?;
        handles.push(handle);
    }
    let mut failure = None;
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(format!("shard {id} executor failed: {e}"))),
        }
    }
    match failure {
        Some(e) => Err(BrokerError::Shard(e)),
        None => Ok(()),
    }
}

/// Writes Kafka's `meta.properties` in every log dir (cluster id, node id, format version).
fn write_meta_properties(config: &BrokerConfig, cluster_id: &str) -> Result<(), BrokerError> {
    for dir in &config.log_dirs {
        let text = format!(
            "#\n#Written by Sluice\nnode.id={}\nversion=1\ncluster.id={cluster_id}\ndirectory.id={}\n",
            config.broker_id,
            uuid_base64(dir)
        );
        std::fs::write(dir.join("meta.properties"), text).map_err(|source| {
            BrokerError::LogDir {
                path: dir.display().to_string(),
                source,
            }
        })?;
    }
    Ok(())
}

/// A stable directory id derived from the path (Kafka uses a random id kept in the file).
fn uuid_base64(dir: &Path) -> String {
    let existing = std::fs::read_to_string(dir.join("meta.properties"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("directory.id=").map(str::to_string))
        });
    existing.unwrap_or_else(crate::metadata::new_cluster_id)
}
