//! Why a leader-side operation was refused.
//!
//! Every error names the Kafka error code it stands for; the mapping onto the wire happens in
//! the engine, which owns the protocol.

/// Why an input from the metadata log or from a follower's fetch was refused by the
/// [`IsrTracker`](super::IsrTracker). The tracker is left exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    /// The partition state names another leader, so this node must stop acting as one: the
    /// engine drops its tracker and fails its acks=all waiters.
    /// Kafka: `NOT_LEADER_OR_FOLLOWER`.
    #[error("node {local} no longer leads this partition (the leader is {leader})")]
    NotLeader { local: i32, leader: i32 },
    /// A fetch came from a node that is not one of the partition's replicas (for instance a
    /// replica added by a reassignment this leader has not seen yet).
    /// Kafka: `UNKNOWN_LEADER_EPOCH` when the fetch carries a current leader epoch (the follower
    /// retries), `NOT_LEADER_OR_FOLLOWER` when it does not.
    #[error("node {replica_id} is not a replica of this partition")]
    UnknownReplica { replica_id: i32 },
    /// A fetch carried a broker epoch older than the follower's broker's registration: it comes
    /// from an earlier incarnation of that broker (KIP-903) and must not move its state.
    /// Kafka: `NOT_LEADER_OR_FOLLOWER`.
    #[error(
        "stale fetch from replica {replica_id}: broker epoch {fetch_broker_epoch}, \
         registered {registered_broker_epoch}"
    )]
    StaleBrokerEpoch {
        replica_id: i32,
        fetch_broker_epoch: i64,
        registered_broker_epoch: i64,
    },
    /// A follower fetched from an offset outside `[0, leader log end]`.
    /// Kafka: `OFFSET_OUT_OF_RANGE`.
    #[error(
        "replica {replica_id} fetched offset {fetch_offset} beyond the leader's log end \
         {leader_log_end}"
    )]
    FetchOffsetOutOfRange {
        replica_id: i32,
        fetch_offset: i64,
        leader_log_end: i64,
    },
    /// A partition state whose ISR leaves out its leader. The controller never writes one; no
    /// Kafka error is meant for it (the engine logs it, and answers `UNKNOWN_SERVER_ERROR` if a
    /// client must hear of it).
    #[error("the ISR {isr:?} does not contain its leader {leader}")]
    LeaderNotInIsr { leader: i32, isr: Vec<i32> },
    /// A partition state whose ISR names a node that is not one of its replicas (or names it
    /// twice). A metadata inconsistency; Kafka: `UNKNOWN_SERVER_ERROR` if a client must hear of it.
    #[error("the ISR names {replica_id}, which is not one of the replicas {replicas:?}")]
    IsrNotInReplicas { replica_id: i32, replicas: Vec<i32> },
    /// A partition state that lists a replica twice. A metadata inconsistency; Kafka:
    /// `UNKNOWN_SERVER_ERROR` if a client must hear of it.
    #[error("replica {replica_id} is listed twice")]
    DuplicateReplica { replica_id: i32 },
    /// The leader was started with a high watermark above its own log end offset.
    /// A local bug; Kafka: `UNKNOWN_SERVER_ERROR` if a client must hear of it.
    #[error("high watermark {high_watermark} is above the leader's log end {leader_log_end}")]
    HighWatermarkAboveLogEnd {
        high_watermark: i64,
        leader_log_end: i64,
    },
}

/// Why [`IsrTracker::propose_isr`](super::IsrTracker::propose_isr) made no AlterPartition
/// proposal. These are local refusals, never sent on the wire; the closest Kafka error is named
/// where one exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsrProposalError {
    /// An earlier proposal is still waiting for the controller: at most one is in flight, as in
    /// Kafka (`PendingExpandIsr` / `PendingShrinkIsr`).
    #[error("an ISR change is already in flight")]
    InFlight,
    /// The proposed ISR is the committed one.
    #[error("the proposed ISR equals the committed ISR")]
    Unchanged,
    /// The proposed ISR leaves out the leader.
    #[error("the proposed ISR leaves out the leader {leader}")]
    LeaderMissing { leader: i32 },
    /// The proposed ISR names a node that is not a replica, or names one twice.
    #[error("the proposed ISR names {replica_id}, which is not a distinct replica")]
    NotAReplica { replica_id: i32 },
    /// The proposal adds a follower whose log end is below the high watermark or the start of
    /// the leader's epoch (Kafka's `isFollowerInSync`): electing it could lose committed records.
    #[error("replica {replica_id} has not caught up to the high watermark and the leader epoch")]
    NotInSync { replica_id: i32 },
    /// The proposal adds a follower whose broker is fenced, shutting down, unknown, or fetching
    /// with another broker epoch than its registration. Kafka: `INELIGIBLE_REPLICA`.
    #[error("replica {replica_id} is not eligible to join the ISR")]
    IneligibleReplica { replica_id: i32 },
}

/// An acks=all produce found fewer in-sync replicas than `min.insync.replicas` before appending:
/// nothing was written. Kafka: `NOT_ENOUGH_REPLICAS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the ISR has {isr_size} replicas, fewer than the {min_insync_replicas} that \
     min.insync.replicas requires"
)]
pub struct NotEnoughReplicas {
    /// The size of the committed ISR when the produce was checked.
    pub isr_size: usize,
    /// The effective `min.insync.replicas` (never above the replication factor).
    pub min_insync_replicas: usize,
}

/// Why an acks=all waiter in the [`AckPurgatory`](super::AckPurgatory) ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// This node stopped leading the partition before the high watermark covered the records.
    /// Kafka: `NOT_LEADER_OR_FOLLOWER`.
    #[error("leadership was lost before the records were replicated")]
    NotLeaderOrFollower,
    /// The records were appended and the high watermark covers them, but the ISR shrank below
    /// `min.insync.replicas` while the produce waited. Kafka: `NOT_ENOUGH_REPLICAS_AFTER_APPEND`.
    #[error("the ISR shrank below min.insync.replicas after the records were appended")]
    NotEnoughReplicasAfterAppend,
}
