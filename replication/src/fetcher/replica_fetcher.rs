//! One replica fetcher: a glommio task on the follower's shard that fetches the partitions it
//! holds from one leader node, over one connection (Kafka's `ReplicaFetcherThread`), and the
//! handle that adds, updates and removes its partitions.
//!
//! The task and the handle share the partition table in a `RefCell` that each borrows only
//! between two awaits. The task's loop: truncate (OffsetForLeaderEpoch), fetch, reset the
//! partitions out of range (ListOffsets), and wait when nothing is ready: until the handle
//! rings (a partition added or re-armed, the follower quota changed), or a delayed partition
//! becomes ready. The follower quota is read before each Fetch is built and charged with the
//! throttled partitions' bytes once they are appended.

use super::partitions::{
    FetcherPartitions, OutOfRange, EARLIEST_TIMESTAMP, FETCH_MAX_VERSION, FETCH_MIN_VERSION,
    LATEST_TIMESTAMP, LIST_OFFSETS_MAX_VERSION, LIST_OFFSETS_MIN_VERSION,
    OFFSET_FOR_LEADER_EPOCH_MAX_VERSION, OFFSET_FOR_LEADER_EPOCH_MIN_VERSION,
};
use super::{
    FollowerIdentity, FollowerPartition, FollowerStatus, LeaderEndpoint, ReplicaFetcherConfig,
    ReplicationQuota, TopicPartition,
};
use futures::channel::mpsc;
use futures::StreamExt as _;
use glommio::timer::{sleep, Timer};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest,
};
use kafka_protocol::protocol::Request;
use sluice_net::client::{ClientError, ClientOptions, Connection};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the fetcher task and its handle share.
struct FetcherShared {
    leader: RefCell<LeaderEndpoint>,
    identity: Rc<FollowerIdentity>,
    config: ReplicaFetcherConfig,
    partitions: RefCell<FetcherPartitions>,
    /// The follower quota, shared by every fetcher of the shard.
    quota: Rc<RefCell<ReplicationQuota>>,
    /// Rings the task out of its idle wait; holds at most one ring.
    doorbell: RefCell<mpsc::Sender<()>>,
}

impl FetcherShared {
    fn ring(&self) {
        // A full doorbell already wakes the task: the extra ring is not needed.
        let _ = self.doorbell.borrow_mut().try_send(());
    }
}

/// The handle on one running replica fetcher. Dropping it (or [`ReplicaFetcher::stop`]) stops
/// the task at its next await: no log is touched after that.
pub struct ReplicaFetcher {
    shared: Rc<FetcherShared>,
    _task: glommio::Task<()>,
}

impl ReplicaFetcher {
    /// Starts a fetcher from `leader` on the current glommio executor (the follower's shard),
    /// with no partitions yet; it connects once it has one. Its throttled partitions count
    /// against `quota`, the follower quota of the shard.
    pub fn start(
        leader: LeaderEndpoint,
        identity: Rc<FollowerIdentity>,
        config: ReplicaFetcherConfig,
        quota: Rc<RefCell<ReplicationQuota>>,
    ) -> ReplicaFetcher {
        let (doorbell, rings) = mpsc::channel(0);
        let shared = Rc::new(FetcherShared {
            leader: RefCell::new(leader),
            identity,
            config,
            partitions: RefCell::new(FetcherPartitions::new()),
            quota,
            doorbell: RefCell::new(doorbell),
        });
        let task = glommio::spawn_local(run(shared.clone(), rings));
        ReplicaFetcher {
            shared,
            _task: task,
        }
    }

    /// The leader node this fetcher fetches from.
    pub fn leader(&self) -> LeaderEndpoint {
        self.shared.leader.borrow().clone()
    }

    /// Points the fetcher at a new address of the same leader node (its listener moved); the
    /// connection is reopened before the next request.
    pub fn set_leader_address(&self, addr: &str) {
        let mut leader = self.shared.leader.borrow_mut();
        if leader.addr != addr {
            leader.addr = addr.to_string();
            drop(leader);
            self.shared.ring();
        }
    }

    /// Adds a partition (it starts truncating), or updates one already here: a new leader
    /// epoch, or a partition that had failed, truncates again; the same epoch keeps its
    /// state. Returns whether the partition (re)starts truncating.
    pub fn add_partition(&self, partition: FollowerPartition) -> bool {
        let rearmed = self.shared.partitions.borrow_mut().upsert(&partition);
        self.shared.ring();
        rearmed
    }

    /// New leadership information for a partition here: a different leader epoch truncates
    /// again, and a partition delayed after an error is retried at once. Returns whether the
    /// partition is here.
    pub fn update_leader_epoch(&self, tp: &TopicPartition, leader_epoch: i32) -> bool {
        let known = self
            .shared
            .partitions
            .borrow_mut()
            .update_leader_epoch(tp, leader_epoch);
        self.shared.ring();
        known
    }

    /// Wakes the task out of its wait (the follower quota changed: held-back partitions may
    /// go now).
    pub fn wake(&self) {
        self.shared.ring();
    }

    /// Removes a partition; once this returns, the fetcher never touches its log again.
    /// Returns whether it was here.
    pub fn remove_partition(&self, tp: &TopicPartition) -> bool {
        self.shared.partitions.borrow_mut().remove(tp)
    }

    /// Whether the partition is fetched here.
    pub fn contains(&self, tp: &TopicPartition) -> bool {
        self.shared.partitions.borrow().contains(tp)
    }

    /// The number of partitions fetched here.
    pub fn partition_count(&self) -> usize {
        self.shared.partitions.borrow().len()
    }

    /// The replication state of every partition here.
    pub fn status(&self) -> Vec<FollowerStatus> {
        let leader_id = self.shared.leader.borrow().node_id;
        self.shared
            .partitions
            .borrow()
            .status(leader_id, Instant::now())
    }

    /// Stops the fetcher: its task is cancelled as the handle drops, and its connection
    /// closes with it.
    pub fn stop(self) {
        drop(self);
    }
}

/// The fetcher task.
async fn run(shared: Rc<FetcherShared>, mut rings: mpsc::Receiver<()>) {
    let backoff = shared.config.fetch_backoff;
    let mut connection: Option<Connection> = None;
    loop {
        let ready = shared.partitions.borrow().has_ready_work(Instant::now());
        if !ready {
            wait_for_work(&shared, &mut rings, None).await;
            continue;
        }
        let addr = shared.leader.borrow().addr.clone();
        let conn = match connection.take() {
            Some(conn) if !conn.is_broken() && conn.addr() == addr => conn,
            _ => match Connection::connect(&addr, &client_options(&shared)).await {
                Ok(conn) => conn,
                Err(e) => {
                    connection_failed(&shared, &e);
                    sleep(backoff).await;
                    continue;
                }
            },
        };
        match round(&shared, &conn).await {
            Ok(true) => connection = Some(conn),
            Ok(false) => {
                connection = Some(conn);
                wait_for_work(&shared, &mut rings, Some(backoff)).await;
            }
            Err(e) => {
                connection_failed(&shared, &e);
                drop(conn);
                sleep(backoff).await;
            }
        }
    }
}

/// The options of the connection to the leader: Kafka's `replica.socket.timeout.ms` bounds
/// the connect and each request.
fn client_options(shared: &FetcherShared) -> ClientOptions {
    ClientOptions {
        client_id: format!(
            "sluice-replica-fetcher-{}-from-{}",
            shared.identity.node_id(),
            shared.leader.borrow().node_id
        ),
        connect_timeout: shared.config.socket_timeout,
        request_timeout: shared.config.socket_timeout,
        ..ClientOptions::default()
    }
}

/// Logs a connection failure and records it in every partition's status.
fn connection_failed(shared: &FetcherShared, error: &ClientError) {
    let leader = shared.leader.borrow().clone();
    tracing::warn!(
        leader = leader.node_id,
        addr = %leader.addr,
        "replica fetcher: {error}; retrying in {} ms",
        shared.config.fetch_backoff.as_millis()
    );
    shared
        .partitions
        .borrow_mut()
        .record_error(&error.to_string());
}

/// Waits until the handle rings, a delayed partition becomes ready, or `at_most` passes.
async fn wait_for_work(
    shared: &FetcherShared,
    rings: &mut mpsc::Receiver<()>,
    at_most: Option<Duration>,
) {
    let now = Instant::now();
    let next_ready = shared
        .partitions
        .borrow()
        .next_ready_at()
        .map(|at| at.saturating_duration_since(now));
    let timeout = match (next_ready, at_most) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let ring = async {
        if rings.next().await.is_none() {
            // The handle is gone; the task is being dropped with it.
            sleep(shared.config.fetch_backoff).await;
        }
    };
    match timeout {
        Some(timeout) => {
            let ring = std::pin::pin!(ring);
            futures::future::select(ring, Timer::new(timeout)).await;
        }
        None => ring.await,
    }
}

/// The version of `R` to send: the highest both sides speak within `[min, max]`.
fn version_in<R: Request>(conn: &Connection, min: i16, max: i16) -> Result<i16, ClientError> {
    let version = conn.version_up_to::<R>(max)?;
    if version < min {
        return Err(ClientError::Unsupported {
            api: match ApiKey::try_from(R::KEY) {
                Ok(key) => format!("{key:?} v{min}+"),
                Err(_) => format!("API {} v{min}+", R::KEY),
            },
            addr: conn.addr().to_string(),
        });
    }
    Ok(version)
}

/// One pass: truncate the truncating partitions, fetch the fetching ones, reset the ones out
/// of range. Returns whether any request was sent; an error is the connection's.
async fn round(shared: &FetcherShared, conn: &Connection) -> Result<bool, ClientError> {
    let config = &shared.config;
    let backoff = config.fetch_backoff;
    let follower_id = shared.identity.node_id();
    let mut sent = false;

    shared
        .partitions
        .borrow_mut()
        .truncate_partitions_without_epochs(Instant::now(), backoff);
    let epoch_round = shared
        .partitions
        .borrow()
        .epoch_round(Instant::now(), follower_id);
    if let Some(epoch_round) = epoch_round {
        let version = version_in::<OffsetForLeaderEpochRequest>(
            conn,
            OFFSET_FOR_LEADER_EPOCH_MIN_VERSION,
            OFFSET_FOR_LEADER_EPOCH_MAX_VERSION,
        )?;
        let response = conn.send_at(&epoch_round.request, version).await?;
        shared.partitions.borrow_mut().apply_epoch_response(
            &epoch_round,
            &response,
            Instant::now(),
            backoff,
        );
        sent = true;
    }

    let negotiated = version_in::<FetchRequest>(conn, FETCH_MIN_VERSION, FETCH_MAX_VERSION)?;
    let quota_exceeded = shared.quota.borrow_mut().is_exceeded(Instant::now());
    let fetch_round = shared.partitions.borrow().fetch_round(
        Instant::now(),
        follower_id,
        shared.identity.broker_epoch(),
        negotiated,
        config,
        quota_exceeded,
    );
    if let Some(fetch_round) = fetch_round {
        let response = conn
            .submit_at(
                &fetch_round.request,
                fetch_round.version,
                config.fetch_wait_max,
            )
            .await?
            .await?;
        let outcome = shared.partitions.borrow_mut().apply_fetch_response(
            &fetch_round,
            &response,
            Instant::now(),
            backoff,
        );
        if outcome.throttled_bytes > 0 {
            let bytes = u64::try_from(outcome.throttled_bytes).unwrap_or(u64::MAX);
            shared.quota.borrow_mut().record(bytes, Instant::now());
        }
        if !outcome.out_of_range.is_empty() {
            reset_out_of_range(shared, conn, &outcome.out_of_range).await?;
        }
        sent = true;
    }
    Ok(sent)
}

/// Asks the leader for its log end and log start of the partitions out of range, and resets
/// them.
async fn reset_out_of_range(
    shared: &FetcherShared,
    conn: &Connection,
    out_of_range: &[OutOfRange],
) -> Result<(), ClientError> {
    let follower_id = shared.identity.node_id();
    let version =
        version_in::<ListOffsetsRequest>(conn, LIST_OFFSETS_MIN_VERSION, LIST_OFFSETS_MAX_VERSION)?;
    let latest =
        FetcherPartitions::list_offsets_request(out_of_range, LATEST_TIMESTAMP, follower_id);
    let latest = conn.send_at(&latest, version).await?;
    let earliest =
        FetcherPartitions::list_offsets_request(out_of_range, EARLIEST_TIMESTAMP, follower_id);
    let earliest = conn.send_at(&earliest, version).await?;
    shared.partitions.borrow_mut().apply_out_of_range(
        out_of_range,
        &latest,
        &earliest,
        Instant::now(),
        shared.config.fetch_backoff,
    );
    Ok(())
}
