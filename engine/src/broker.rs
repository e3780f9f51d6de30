//! Starting and stopping a whole broker: the controller quorum, then one pinned executor per
//! shard.

use crate::broker_lifecycle::ServingGate;
use crate::config::{BrokerConfig, ConfigError};
use crate::fd_budget;
use crate::messages::ShardRouter;
use crate::metadata::{broker_of_node, ClusterState, MetadataError, MetadataImage, METADATA_FILE};
use crate::metadata_log::apply_committed;
use crate::quorum_controller::ControllerStart;
use crate::shard_runtime::{run_shard, ShardStart};
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use glommio::{LocalExecutorBuilder, Placement};
use sluice_replication::quorum::{
    start_quorum, Committed, QuorumConfig, QuorumError, QuorumEvents, QuorumVoter,
};
use sluice_tuning::memlock::{io_memory_per_shard, memlock_limit, MemlockTooLow};
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// The directory of the metadata log inside the first log dir (Kafka's name).
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

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
    /// The controller quorum could not start.
    #[error("controller quorum: {0}")]
    Quorum(#[from] QuorumError),
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
    let shards = if config.process_roles.broker {
        shard_count(&config)
    } else {
        1
    };
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
    let (quorum, events) = start_quorum(quorum_config(&config, &metadata_dir)?)?;
    let QuorumEvents { committed, calls } = events;
    let (state, applied, committed) = replay_local_log(committed, quorum.status().high_watermark);
    let pending_import = match ClusterState::load(&metadata_dir, config.broker_id)? {
        Some(legacy) if state.cluster_id.is_empty() => {
            info!(
                topics = legacy.topics.len(),
                "found {METADATA_FILE} of a single-broker release: it is imported into the metadata log once this node leads the quorum"
            );
            Some(legacy)
        }
        _ => None,
    };
    let partitions: u64 = state
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.replicas)
        .filter(|n| broker_of_node(**n) == config.broker_id)
        .count() as u64;
    fd_budget::log_budget(
        nofile,
        partitions,
        shards,
        config.segment_files_open_per_shard,
    );
    if !state.cluster_id.is_empty() {
        write_meta_properties(&config, &state.cluster_id)?;
    }
    let image = Arc::new(MetadataImage::new(state.clone(), &config, shards as u32));
    let config = Arc::new(config);
    let (router, inboxes) = ShardRouter::new(shards as u32);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    info!(shards, io_memory_kib = io_memory / 1024, applied, roles = ?config.process_roles, "starting node {}", config.broker_id);

    let gate = ServingGate::default();
    let leadership_moved = Arc::new(AtomicBool::new(false));
    let mut controller_start = Some(ControllerStart {
        quorum: quorum.clone(),
        committed,
        calls,
        state,
        applied,
        pending_import,
        metadata_dir,
    });
    let mut handles = Vec::with_capacity(shards);
    for (id, inbox) in inboxes.into_iter().enumerate() {
        let start = ShardStart {
            id: id as u32,
            config: config.clone(),
            image: image.clone(),
            router: router.clone(),
            inbox,
            stop: stop.clone(),
            leadership_moved: leadership_moved.clone(),
            gate: gate.clone(),
            controller: if id == 0 {
                controller_start.take()
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
    quorum.shutdown();
    match failure {
        Some(e) => Err(BrokerError::Shard(e)),
        None => Ok(()),
    }
}

/// The quorum's configuration from the broker's (`controller.quorum.*`, the controller
/// listener); the log lives in `<first log dir>/__cluster_metadata-0`, Kafka's directory name.
fn quorum_config(config: &BrokerConfig, metadata_dir: &Path) -> Result<QuorumConfig, BrokerError> {
    let listen = match &config.controller_listener {
        Some(l) if !config.controller_quorum_voters.is_empty() => {
            let host = if l.host.is_empty() {
                "0.0.0.0"
            } else {
                l.host.as_str()
            };
            let addr = (host, l.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    BrokerError::Shard(format!(
                        "controller listener {l} does not resolve; check `listeners`"
                    ))
                })?;
            Some(addr)
        }
        _ => None,
    };
    Ok(QuorumConfig {
        node_id: config.broker_id,
        voters: config
            .controller_quorum_voters
            .iter()
            .map(|v| QuorumVoter {
                id: v.id,
                host: v.host.clone(),
                port: v.port,
            })
            .collect(),
        listen,
        is_voter: config.process_roles.controller,
        dir: metadata_dir.join(METADATA_LOG_DIR),
        election_timeout: Duration::from_millis(config.controller_quorum_election_timeout_ms),
        fetch_timeout: Duration::from_millis(config.controller_quorum_fetch_timeout_ms),
        request_timeout: Duration::from_millis(config.controller_quorum_request_timeout_ms),
    })
}

/// Applies what the quorum replays from this node's own log at start (its snapshot and the
/// entries it knows committed, up to `high_watermark`), so that the shards start with the
/// metadata they had. Returns the state, its offset, and the channel for what comes later.
fn replay_local_log(
    mut committed: UnboundedReceiver<Committed>,
    high_watermark: u64,
) -> (ClusterState, u64, UnboundedReceiver<Committed>) {
    let mut state = ClusterState::unbootstrapped();
    let mut applied = 0;
    while applied < high_watermark {
        match futures::executor::block_on(committed.next()) {
            Some(c) => {
                apply_committed(&mut state, &mut applied, c);
            }
            None => break,
        }
    }
    (state, applied, committed)
}

/// Writes Kafka's `meta.properties` in every log dir (cluster id, node id, format version).
pub fn write_meta_properties(config: &BrokerConfig, cluster_id: &str) -> Result<(), BrokerError> {
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
