//! Replication: the controller quorum, and Kafka's in-sync replica protocol for partitions.
//!
//! * [`quorum`]: the controller quorum (the Raft-replicated cluster metadata log).
//! * [`leader`]: the leader side of a replicated partition: follower progress, the ISR, the
//!   high watermark, `min.insync.replicas` and the acks=all purgatory.
//! * [`fetcher`]: the follower side: replica fetchers that copy the leaders' batches unchanged
//!   and truncate by OffsetForLeaderEpoch after a leader change.

pub mod fetcher;
pub mod leader;
pub mod quorum;

pub use leader::high_watermark;
