//! The leader side of Kafka's in-sync replica protocol, for the partitions a node leads.
//!
//! A partition's leader learns each follower's log end offset from the follower's fetches.
//! From them it derives the high watermark: the smallest log end offset over the in-sync
//! replicas (ISR), below which records are committed, visible to consumers and acknowledged to
//! acks=all producers. A follower that has not caught up to the leader's log end within
//! `replica.lag.time.max.ms` leaves the ISR; one that has caught up to the high watermark
//! rejoins it. Both changes are proposed to the controller (AlterPartition) and count only once
//! committed to the metadata log, except that a joining follower already holds the high
//! watermark back while its proposal is in flight (the "maximal ISR" of KIP-497).
//!
//! Two pieces, both single-threaded and free of any runtime, which the engine's shard owns per
//! partition it leads:
//!
//! * [`IsrTracker`]: follower progress, the high watermark, the ISR's shrinks and expansions and
//!   the `min.insync.replicas` checks (Kafka's `Partition` and `Replica` on the leader).
//! * [`AckPurgatory`]: acks=all produces waiting for the high watermark to cover their records
//!   (Kafka's `DelayedProduce`); the caller races each wait against its request timeout.
//!
//! # Example
//!
//! ```
//! use sluice_replication::leader::{
//!     AckPurgatory, FollowerBrokerState, FollowerFetch, IsrTracker, LeaderAndIsr, LeaderConfig,
//! };
//!
//! let state = LeaderAndIsr {
//!     leader: 1000,
//!     replicas: vec![1000, 2000],
//!     isr: vec![1000, 2000],
//!     leader_epoch: 3,
//!     partition_epoch: 7,
//! };
//! let mut tracker = IsrTracker::new(&state, 100, 100, LeaderConfig::default(), 0).unwrap();
//! let broker = FollowerBrokerState { broker_epoch: 12, fenced: false, in_controlled_shutdown: false };
//! tracker.update_follower_broker(2000, Some(broker), 0);
//! let purgatory = AckPurgatory::new(tracker.high_watermark());
//!
//! // An acks=all produce: check the ISR, append (the log end moves to 110), then wait.
//! tracker.check_min_isr().unwrap();
//! tracker.on_leader_append(110, 5);
//! let ack = purgatory.wait(110);
//!
//! // The follower fetches from offset 110: it has everything, and the high watermark follows.
//! let fetch = FollowerFetch {
//!     replica_id: 2000, broker_epoch: 12, fetch_offset: 110, leader_log_end: 110, now_ms: 8,
//! };
//! let update = tracker.record_follower_fetch(&fetch).unwrap();
//! assert_eq!(update.new_high_watermark, Some(110));
//! purgatory.on_high_watermark(110, tracker.ack_outcome());
//! assert_eq!(futures::executor::block_on(ack), Ok(()));
//! ```

mod error;
mod isr;
mod purgatory;

#[cfg(test)]
mod tests;

pub use error::{AckError, IsrProposalError, LeaderError, NotEnoughReplicas};
pub use isr::{
    FetchUpdate, FollowerBrokerState, FollowerFetch, FollowerProgress, IsrMember, IsrProposal,
    IsrTracker, IsrUpdate, LeaderAndIsr, LeaderConfig,
};
pub use purgatory::{AckPurgatory, AckWait};

/// The high watermark of a partition: the minimum log end offset over the in-sync replicas
/// (the leader plus the followers that hold it back), never past the leader's log end.
pub fn high_watermark(leader_log_end: i64, in_sync_follower_log_ends: &[i64]) -> i64 {
    let hw = in_sync_follower_log_ends
        .iter()
        .copied()
        .fold(leader_log_end, i64::min);
    debug_assert!(
        hw <= leader_log_end,
        "the high watermark never passes the leader's log end"
    );
    hw
}
