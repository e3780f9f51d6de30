//! Replication: in-sync replicas, the high watermark, the follower fetchers and the controller
//! quorum.
//!
//! The controller quorum (the Raft-replicated cluster metadata log) lives in [`quorum`]; the
//! follower side of partition replication (replica fetchers) in [`fetcher`].
//!
//! Today every partition has a single replica, so the in-sync replica set is just the leader.
//! The rule that makes the high watermark is already the one replication will use: it is the
//! smallest log end offset among the in-sync replicas, and it never passes the leader's log end.

pub mod fetcher;
pub mod quorum;

/// The high watermark of a partition: the minimum log end offset over the in-sync replicas
/// (the leader plus the followers currently in the ISR).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_replica_high_watermark_is_log_end() {
        assert_eq!(high_watermark(42, &[]), 42);
    }

    #[test]
    fn high_watermark_is_the_isr_minimum() {
        assert_eq!(high_watermark(42, &[40, 41]), 40);
        assert_eq!(high_watermark(42, &[50]), 42);
    }
}
