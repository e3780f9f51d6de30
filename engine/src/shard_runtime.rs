//! A shard's run loop: the body of one pinned executor, from start to clean shutdown.
//!
//! [`run_shard`] builds the shard's [`Shard`] state (reading its checkpoints), opens the logs of
//! the partitions placed on it, listens on its own port (`listener port + shard`) and serves
//! connections until the stop flag is raised. Beside the connections it runs the inbox of
//! cross-shard messages (`serve_inbox`), the periodic `housekeeping` (`flush.ms`,
//! checkpoints, retention, group expiry, the stop flag), the log cleaner and, on shard 0, the
//! metrics listener. At shutdown it drains connections, then `finish` flushes every log and
//! writes the checkpoints and the clean-shutdown marker.
//!
//! The state itself is [`crate::shard`]; this module is the only one that drives it.

use crate::accept_backoff::AcceptBackoff;
use crate::api::ApiHandler;
use crate::broker_lifecycle::{BrokerLifecycle, ServingGate};
use crate::config::BrokerConfig;
use crate::file_worker::FileWorker;
use crate::group::GroupCoordinator;
use crate::log_cleaner;
use crate::messages::{ShardMessage, ShardRouter};
use crate::metadata::MetadataImage;
use crate::metrics::http::serve_metrics;
use crate::quorum_controller::{ControllerService, ControllerStart};
use crate::replica_manager;
use crate::retention;
use crate::shard::Shard;
use crate::time::now_ms;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use sluice_net::listener::bind_listener;
use sluice_net::{serve_connection, ConnectionLimits, RequestMemoryPool};
use sluice_storage::blocking::{allow_blocking_file_calls, forbid_blocking_file_calls};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// Marker written at the end of a clean shutdown (Kafka's name).
const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";
/// How often the shard writes its recovery point and log start offset checkpoints (Kafka's
/// `log.flush.offset.checkpoint.interval.ms` and `log.flush.start.offset.checkpoint.interval.ms`
/// defaults). A moved log start offset is also written at the next tick, so that records
/// deleted by DeleteRecords do not come back after a crash.
const CHECKPOINT_INTERVAL_MS: i64 = 60_000;
/// How often the shard writes its high watermark checkpoint (Kafka's
/// `replica.high.watermark.checkpoint.interval.ms` default).
const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS: i64 = 5_000;
/// How often the shard's housekeeping runs (stop flag, `flush.ms`, checkpoints, retention).
const TICK: Duration = Duration::from_millis(50);
/// How long a stopping shard waits for shard 0's controlled shutdown (which gives up after
/// five seconds) before it stops anyway.
const STOP_WAIT_LIMIT: Duration = Duration::from_secs(10);
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
    /// Raised by shard 0 once the controlled shutdown is over (leadership moved away, or the
    /// controller did not answer in time): the shards serve until then, so that clients
    /// follow the leaders elsewhere instead of losing their connection first.
    pub leadership_moved: Arc<AtomicBool>,
    /// Opens once this broker is unfenced: the shard listens from then on.
    pub gate: ServingGate,
    /// For shard 0: the metadata log's quorum and the state replayed from it.
    pub controller: Option<ControllerStart>,
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

/// Runs one shard until the stop flag is raised; returns after a clean shutdown.
pub async fn run_shard(start: ShardStart) -> Result<(), ShardError> {
    let ShardStart {
        id,
        config,
        image,
        router,
        inbox,
        stop,
        leadership_moved,
        gate,
        controller,
    } = start;
    let shard_dir =
        config.log_dirs[id as usize % config.log_dirs.len()].join(format!("shard-{id}"));
    let storage_err = |message: String| ShardError::Storage { shard: id, message };
    std::fs::create_dir_all(&shard_dir)
        .map_err(|e| storage_err(format!("cannot create {}: {e}", shard_dir.display())))?;
    let clean = remove_marker(&shard_dir);
    let file_worker = FileWorker::start(id)
        .map_err(|e| storage_err(format!("cannot start the file worker thread: {e}")))?;
    let mut controller_events = None;
    let controller = controller.map(|start| {
        controller_events = Some((start.committed, start.calls));
        Rc::new(ControllerService::new(
            config.clone(),
            start.quorum,
            router.clone(),
            image.shards,
            start.state,
            start.applied,
            start.pending_import,
            start.metadata_dir,
        ))
    });
    let shard = Shard::new(
        id,
        config.clone(),
        image.clone(),
        router,
        controller,
        file_worker,
        shard_dir,
    )
    .map_err(storage_err)?;
    if !clean && shard.has_recovery_points() {
        info!(
            shard = id,
            "previous shutdown was not clean: recovering logs from their recovery points"
        );
    }
    let shard = Rc::new(shard);
    shard.apply_metadata(image);
    replica_manager::apply_roles(&shard);
    GroupCoordinator::load(shard.clone());
    // From here on the shard serves: slow file calls go to helper threads (see file_worker).
    forbid_blocking_file_calls();
    glommio::spawn_local(serve_inbox(shard.clone(), inbox)).detach();
    let housekeeping = glommio::spawn_local(housekeeping(
        shard.clone(),
        stop.clone(),
        leadership_moved.clone(),
    ));
    let lifecycle = match (&shard.controller, controller_events) {
        (Some(service), Some((committed, calls))) => {
            glommio::spawn_local(service.clone().apply_committed(committed)).detach();
            glommio::spawn_local(service.clone().serve_calls(calls)).detach();
            let stopping = shard.clone();
            glommio::spawn_local(
                service
                    .clone()
                    .tick(move || stopping.shutdown.is_triggered()),
            )
            .detach();
            config.process_roles.broker.then(|| {
                let lifecycle = Rc::new(BrokerLifecycle::new(
                    service.clone(),
                    &config,
                    shard.image().shards,
                    gate.clone(),
                ));
                let stopping = shard.clone();
                glommio::spawn_local(
                    lifecycle
                        .clone()
                        .run(move || stopping.shutdown.is_triggered()),
                )
                .detach();
                lifecycle
            })
        }
        _ => None,
    };
    if id == 0 {
        glommio::spawn_local(controlled_stop(lifecycle.clone(), stop, leadership_moved)).detach();
    }
    let stopping = shard.clone();
    if !gate.wait(move || stopping.shutdown.is_triggered()).await {
        housekeeping.await;
        shard.replicas.shutdown();
        allow_blocking_file_calls(|| finish(&shard));
        info!(shard = id, "shard stopped before it served");
        return Ok(());
    }

    let addr = listen_address(&config, id)?;
    let listener = bind_listener(addr).map_err(|source| ShardError::Bind {
        shard: id,
        addr: addr.to_string(),
        source,
    })?;
    info!(shard = id, node = shard.node_id, %addr, partitions = shard.all_partitions().len(), offline_partitions = shard.offline_partition_count(), "shard ready");

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
                shard.connection_opened();
                glommio::spawn_local(async move {
                    let _ = stream.set_nodelay(true);
                    let client_host = stream
                        .peer_addr()
                        .map(|a| format!("/{}", a.ip()))
                        .unwrap_or_default();
                    let handler = ApiHandler::new(shard.clone(), client_host);
                    serve_connection(stream, &handler, limits, &pool, &shard.shutdown).await;
                    shard.connection_closed();
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
    while shard.open_connections() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    housekeeping.await;
    shard.replicas.shutdown();
    allow_blocking_file_calls(|| finish(&shard));
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
                    let offline = shard.apply_metadata(image);
                    replica_manager::apply_roles(&shard);
                    let _ = done.send(offline);
                    GroupCoordinator::unload_lost(&shard);
                    GroupCoordinator::load(shard.clone());
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
                ShardMessage::ControllerCall { call, reply } => match &shard.controller {
                    Some(c) => {
                        let _ = reply.send(c.call(call).await);
                    }
                    None => error!(
                        shard = shard.id,
                        "controller call sent to a shard without the controller"
                    ),
                },
                ShardMessage::DescribeQuorum { reply } => match &shard.controller {
                    Some(c) => {
                        let _ = reply.send(c.describe_quorum().await);
                    }
                    None => error!(
                        shard = shard.id,
                        "DescribeQuorum sent to a shard without the controller"
                    ),
                },
            }
        })
        .detach();
    }
}

/// Shard 0's part of a stop: once the stop flag is raised, the controlled shutdown (the
/// controller fences this broker and moves its leaderships to other in-sync replicas), then
/// `leadership_moved`, which lets every shard stop.
async fn controlled_stop(
    lifecycle: Option<Rc<BrokerLifecycle>>,
    stop: Arc<AtomicBool>,
    leadership_moved: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        glommio::timer::sleep(TICK).await;
    }
    if let Some(lifecycle) = lifecycle {
        lifecycle.controlled_shutdown().await;
    }
    leadership_moved.store(true, Ordering::Relaxed);
}

/// Periodic housekeeping: `flush.ms`, checkpoints, retention (every
/// `log.retention.check.interval.ms`), the ISR checks, and the stop: once the stop flag is
/// raised, the shard stops when shard 0's controlled shutdown is over (or after
/// [`STOP_WAIT_LIMIT`], should shard 0 not get there).
async fn housekeeping(shard: Rc<Shard>, stop: Arc<AtomicBool>, leadership_moved: Arc<AtomicBool>) {
    let mut stop_seen: Option<std::time::Instant> = None;
    let mut last_checkpoint = now_ms();
    let mut last_high_watermark_checkpoint = last_checkpoint;
    let mut last_retention_check = last_checkpoint;
    let mut last_isr_check = last_checkpoint;
    while !shard.shutdown.is_triggered() {
        glommio::timer::sleep(TICK).await;
        if stop.load(Ordering::Relaxed) {
            let since = *stop_seen.get_or_insert_with(std::time::Instant::now);
            if leadership_moved.load(Ordering::Relaxed) || since.elapsed() >= STOP_WAIT_LIMIT {
                shard.shutdown.trigger();
                break;
            }
        }
        let now = now_ms();
        for p in shard.all_partitions() {
            if p.needs_flush(now) {
                let gc = shard.group_commit.clone();
                glommio::spawn_local(async move {
                    let _ = gc.sync(p).await;
                })
                .detach();
            }
        }
        shard.groups.tick(&shard);
        if now - last_isr_check >= shard.config.replica_lag_time_max_ms / 2 {
            last_isr_check = now;
            replica_manager::check_isr(&shard);
        }
        if now - last_retention_check >= shard.config.log_retention_check_interval_ms {
            last_retention_check = now;
            retention::delete_old_segments(&shard, now);
        }
        if now - last_checkpoint >= CHECKPOINT_INTERVAL_MS {
            last_checkpoint = now;
            shard.write_recovery_checkpoint().await;
            shard.write_log_start_checkpoint().await;
        } else if shard.log_start_checkpoint_due() {
            shard.write_log_start_checkpoint().await;
        }
        if now - last_high_watermark_checkpoint >= HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS {
            last_high_watermark_checkpoint = now;
            shard.write_high_watermark_checkpoint().await;
        }
    }
}

/// Flushes every log and writes the checkpoints and the clean-shutdown marker, on the
/// shard's thread: nothing is served any more, and shutdown waits for them anyway.
fn finish(shard: &Shard) {
    for p in shard.all_partitions() {
        if let Err(e) = p.flush() {
            error!(
                shard = shard.id,
                "flush of {}-{} failed at shutdown: {e}", p.topic, p.index
            );
            return;
        }
    }
    shard.write_checkpoints_at_shutdown();
    if let Err(e) = std::fs::write(shard.shard_dir().join(CLEAN_SHUTDOWN_MARKER), b"") {
        error!(shard = shard.id, "cannot write clean shutdown marker: {e}");
    }
}

/// The client listener address of `shard`: the client listener's port + the shard index.
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

/// Removes the clean-shutdown marker; returns whether it was there (the last shutdown was
/// clean).
fn remove_marker(dir: &Path) -> bool {
    std::fs::remove_file(dir.join(CLEAN_SHUTDOWN_MARKER)).is_ok()
}
