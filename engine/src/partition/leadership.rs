//! A replica's replication role: the leader's ISR tracker and acks=all purgatory, or the
//! follower's high watermark (Kafka's `Partition.makeLeader` / `makeFollower` and the state
//! they switch between).
//!
//! The rules themselves (follower progress, the high watermark, ISR shrinks and expansions,
//! `min.insync.replicas`) live in [`sluice_replication::leader`]; this module holds one
//! partition's instance of them behind the [`Partition`] boundary, so that every append, every
//! follower fetch and every metadata change moves the high watermark in one place, and every
//! move wakes the acks=all waiters and the parked fetches.

use super::Partition;
use sluice_replication::leader::{
    AckError, AckPurgatory, AckWait, FollowerBrokerState, FollowerFetch, IsrProposal, IsrTracker,
    LeaderAndIsr, LeaderConfig, LeaderError, NotEnoughReplicas,
};
use std::collections::HashMap;

/// What a replica is to its partition right now.
pub(crate) enum ReplicaRole {
    /// This node leads the partition.
    Leader(Box<LeaderState>),
    /// Another node leads it (or none does, `leader` -1): the high watermark is what the
    /// leader last told this follower, never above the local log end.
    Follower {
        /// The leader's node id, -1 when the partition has none.
        leader: i32,
        /// The high watermark learnt from the leader (or from the checkpoint at start).
        high_watermark: i64,
    },
}

/// The leader's state: the ISR rules and the acks=all producers waiting on them.
pub(crate) struct LeaderState {
    tracker: IsrTracker,
    purgatory: AckPurgatory,
    /// Each follower's log start offset as its last fetch in this leadership said (Kafka's
    /// `ReplicaState.logStartOffset`): a consumer is sent only to a follower that still holds
    /// its fetch offset.
    follower_log_starts: HashMap<i32, i64>,
}

/// A replica as the replica selector weighs it (Kafka's `ReplicaView`), for a consumer's fetch
/// that the leader might send elsewhere (KIP-392).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadReplicaView {
    /// The replica's node id.
    pub node: i32,
    /// Its log end offset: the leader's own, or a follower's last fetch offset.
    pub log_end_offset: i64,
    /// How long ago it last caught up with the leader's log end (0 for the leader; `i64::MAX`
    /// for a follower that never has in this leadership).
    pub time_since_caught_up_ms: i64,
}

impl Partition {
    /// Whether this replica leads the partition.
    pub fn is_leader(&self) -> bool {
        matches!(*self.role.borrow(), ReplicaRole::Leader(_))
    }

    /// The node this replica follows (-1 when there is no leader), `None` when it leads.
    pub fn followed_leader(&self) -> Option<i32> {
        match &*self.role.borrow() {
            ReplicaRole::Leader(_) => None,
            ReplicaRole::Follower { leader, .. } => Some(*leader),
        }
    }

    /// Makes this replica the partition's leader with the committed `state` (Kafka's
    /// `makeLeader`), or, when it already leads in the same leader epoch, adopts the new ISR
    /// and replicas. A new leader starts from its current high watermark and moves it as the
    /// followers fetch.
    pub fn make_leader(
        &self,
        state: &LeaderAndIsr,
        config: LeaderConfig,
        now_ms: i64,
    ) -> Result<(), LeaderError> {
        let log_end = self.log_end_offset();
        let current_high_watermark = self.high_watermark().min(log_end);
        let moved = {
            let mut role = self.role.borrow_mut();
            match &mut *role {
                ReplicaRole::Leader(leader)
                    if leader.tracker.leader_epoch() == state.leader_epoch =>
                {
                    let mut moved = leader.tracker.set_config(config, now_ms);
                    let update = leader.tracker.on_partition_state(state, log_end, now_ms)?;
                    moved = update.new_high_watermark.or(moved);
                    moved
                }
                _ => {
                    let mut tracker =
                        IsrTracker::new(state, log_end, current_high_watermark, config, now_ms)?;
                    let moved = tracker.update_high_watermark(now_ms);
                    let purgatory = AckPurgatory::new(tracker.high_watermark());
                    if let ReplicaRole::Leader(old) = &*role {
                        old.purgatory.fail_all(AckError::NotLeaderOrFollower);
                    }
                    *role = ReplicaRole::Leader(Box::new(LeaderState {
                        tracker,
                        purgatory,
                        follower_log_starts: HashMap::new(),
                    }));
                    moved
                }
            }
        };
        self.leader_epoch.set(state.leader_epoch);
        if moved.is_some() {
            self.high_watermark_moved();
        }
        Ok(())
    }

    /// Makes this replica a follower of `leader` (-1: no leader) in `leader_epoch` (Kafka's
    /// `makeFollower`): a former leader's acks=all waiters fail with NOT_LEADER_OR_FOLLOWER,
    /// and the high watermark it had stays as the follower's starting point.
    pub fn make_follower(&self, leader: i32, leader_epoch: i32) {
        let high_watermark = self.high_watermark();
        let mut role = self.role.borrow_mut();
        if let ReplicaRole::Leader(old) = &*role {
            old.purgatory.fail_all(AckError::NotLeaderOrFollower);
        }
        *role = ReplicaRole::Follower {
            leader,
            high_watermark,
        };
        drop(role);
        self.leader_epoch.set(leader_epoch);
        self.appended.notify(usize::MAX);
    }

    /// Tells the leader what the metadata image says about a follower's broker (registration
    /// epoch, fenced, shutting down), which decides whether it may join the ISR.
    pub fn update_follower_broker(
        &self,
        follower: i32,
        broker: Option<FollowerBrokerState>,
        now_ms: i64,
    ) {
        let moved = match &mut *self.role.borrow_mut() {
            ReplicaRole::Leader(leader) => leader
                .tracker
                .update_follower_broker(follower, broker, now_ms),
            ReplicaRole::Follower { .. } => None,
        };
        if moved.is_some() {
            self.high_watermark_moved();
        }
    }

    /// The leader's side of a follower fetch (Kafka's `updateFollowerFetchState`): records the
    /// follower's log end offset and its log start offset (`follower_log_start_offset`, -1 when
    /// the request carries none), moves the high watermark, and returns the ISR expansion to
    /// send to the controller when the follower has caught up.
    pub fn record_follower_fetch(
        &self,
        fetch: &FollowerFetch,
        follower_log_start_offset: i64,
    ) -> Result<Option<IsrProposal>, LeaderError> {
        let update = match &mut *self.role.borrow_mut() {
            ReplicaRole::Leader(leader) => {
                let update = leader.tracker.record_follower_fetch(fetch)?;
                leader
                    .follower_log_starts
                    .insert(fetch.replica_id, follower_log_start_offset);
                update
            }
            ReplicaRole::Follower { leader, .. } => {
                return Err(LeaderError::NotLeader {
                    local: fetch.replica_id,
                    leader: *leader,
                })
            }
        };
        if update.new_high_watermark.is_some() {
            self.high_watermark_moved();
        }
        Ok(update.isr_expansion)
    }

    /// On the leader, the replicas that may serve a consumer's fetch at `fetch_offset` (the
    /// candidates of Kafka's `findPreferredReadReplica`): the followers in the committed ISR
    /// whose last fetch reached `fetch_offset` and whose log starts at or below it, and the
    /// leader itself, returned first. `None` on a follower.
    pub fn read_replicas(
        &self,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<(ReadReplicaView, Vec<ReadReplicaView>)> {
        let role = self.role.borrow();
        let ReplicaRole::Leader(leader) = &*role else {
            return None;
        };
        let tracker = &leader.tracker;
        let followers = tracker
            .followers()
            .filter(|(node, _)| tracker.isr().contains(node))
            .filter_map(|(node, progress)| {
                let log_end_offset = progress.log_end?;
                let log_start = *leader.follower_log_starts.get(&node)?;
                (log_start <= fetch_offset && fetch_offset <= log_end_offset).then(|| {
                    ReadReplicaView {
                        node,
                        log_end_offset,
                        time_since_caught_up_ms: progress
                            .last_caught_up_ms
                            .map_or(i64::MAX, |at| now_ms.saturating_sub(at)),
                    }
                })
            })
            .collect();
        let own = ReadReplicaView {
            node: tracker.leader(),
            log_end_offset: self.log_end_offset(),
            time_since_caught_up_ms: 0,
        };
        Some((own, followers))
    }

    /// The follower's side of a fetch response: the leader's high watermark, capped at this
    /// replica's log end (it may go down after a leader change, as Kafka's follower's does).
    pub fn set_follower_high_watermark(&self, leader_high_watermark: i64) {
        let log_end = self.log_end_offset();
        let moved = match &mut *self.role.borrow_mut() {
            ReplicaRole::Follower { high_watermark, .. } => {
                let new = leader_high_watermark.min(log_end);
                let moved = new != *high_watermark;
                *high_watermark = new;
                moved
            }
            ReplicaRole::Leader(_) => false,
        };
        if moved {
            self.appended.notify(usize::MAX);
        }
    }

    /// Checks `min.insync.replicas` before an acks=all append (NOT_ENOUGH_REPLICAS).
    pub fn check_min_isr(&self) -> Result<(), NotEnoughReplicas> {
        match &*self.role.borrow() {
            ReplicaRole::Leader(leader) => leader.tracker.check_min_isr(),
            ReplicaRole::Follower { .. } => Ok(()),
        }
    }

    /// Waits until the high watermark covers `required_offset` (an acks=all produce whose
    /// records end just below it). Fails with NOT_LEADER_OR_FOLLOWER when leadership is lost
    /// meanwhile, or NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
    /// `min.insync.replicas`. The caller races it against the request timeout.
    pub fn wait_for_replicas(&self, required_offset: i64) -> Result<AckWait, AckError> {
        match &*self.role.borrow() {
            ReplicaRole::Leader(leader) => Ok(leader.purgatory.wait(required_offset)),
            ReplicaRole::Follower { .. } => Err(AckError::NotLeaderOrFollower),
        }
    }

    /// The leader's periodic ISR check (Kafka's `maybeShrinkIsr`): the shrink to send to the
    /// controller when followers have lagged for `replica.lag.time.max.ms`.
    pub fn maybe_shrink_isr(&self, now_ms: i64) -> Option<IsrProposal> {
        let (proposal, moved) = match &mut *self.role.borrow_mut() {
            ReplicaRole::Leader(leader) => {
                let moved = leader.tracker.update_high_watermark(now_ms);
                (leader.tracker.maybe_shrink_isr(now_ms), moved)
            }
            ReplicaRole::Follower { .. } => (None, None),
        };
        if moved.is_some() {
            self.high_watermark_moved();
        }
        proposal
    }

    /// An AlterPartition this leader sent was refused or its outcome is unknown: the tracker
    /// forgets it, so that the next check may propose again.
    pub fn isr_proposal_failed(&self, now_ms: i64) {
        let moved = match &mut *self.role.borrow_mut() {
            ReplicaRole::Leader(leader) => leader.tracker.on_proposal_failed(now_ms),
            ReplicaRole::Follower { .. } => None,
        };
        if moved.is_some() {
            self.high_watermark_moved();
        }
    }

    /// The leader's ISR as it stands (committed), or `None` on a follower.
    pub fn in_sync_replicas(&self) -> Option<Vec<i32>> {
        match &*self.role.borrow() {
            ReplicaRole::Leader(leader) => Some(leader.tracker.isr().to_vec()),
            ReplicaRole::Follower { .. } => None,
        }
    }

    /// Whether this leader's committed ISR is smaller than its replica set.
    pub fn is_under_replicated(&self) -> bool {
        match &*self.role.borrow() {
            ReplicaRole::Leader(leader) => leader.tracker.is_under_replicated(),
            ReplicaRole::Follower { .. } => false,
        }
    }

    /// Whether this leader's committed ISR is smaller than `min.insync.replicas`.
    pub fn is_under_min_isr(&self) -> bool {
        match &*self.role.borrow() {
            ReplicaRole::Leader(leader) => leader.tracker.is_under_min_isr(),
            ReplicaRole::Follower { .. } => false,
        }
    }

    /// After an append as leader: the high watermark may move (a single in-sync replica).
    pub(super) fn leader_appended(&self, now_ms: i64) {
        let log_end = self.log_end_offset();
        let moved = match &mut *self.role.borrow_mut() {
            ReplicaRole::Leader(leader) => leader.tracker.on_leader_append(log_end, now_ms),
            ReplicaRole::Follower { .. } => None,
        };
        if moved.is_some() {
            self.high_watermark_moved();
        }
    }

    /// The high watermark as the role knows it.
    pub(super) fn role_high_watermark(&self) -> i64 {
        match &*self.role.borrow() {
            ReplicaRole::Leader(leader) => leader.tracker.high_watermark(),
            ReplicaRole::Follower { high_watermark, .. } => *high_watermark,
        }
    }

    /// Wakes the acks=all waiters the high watermark now covers, and the parked fetches.
    fn high_watermark_moved(&self) {
        if let ReplicaRole::Leader(leader) = &*self.role.borrow() {
            leader.purgatory.on_high_watermark(
                leader.tracker.high_watermark(),
                leader.tracker.ack_outcome(),
            );
        }
        self.appended.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::super::offsets::tests::batch;
    use super::*;

    fn follower_fetch(replica_id: i32, fetch_offset: i64, now_ms: i64) -> FollowerFetch {
        FollowerFetch {
            replica_id,
            broker_epoch: -1,
            fetch_offset,
            leader_log_end: 4,
            now_ms,
        }
    }

    /// The candidates for a consumer's preferred read replica are the in-sync followers whose
    /// log holds the fetch offset (Kafka's `findPreferredReadReplica`), with the leader first.
    #[test]
    fn read_replicas_are_the_in_sync_followers_holding_the_fetch_offset() {
        let now = 1_700_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let p = Partition::open_for_tests(dir.path(), "t", now, |_| {});
        let state = LeaderAndIsr {
            leader: 0,
            replicas: vec![0, 1, 2, 3],
            isr: vec![0, 1, 2],
            leader_epoch: 1,
            partition_epoch: 1,
        };
        p.make_leader(&state, LeaderConfig::default(), now).unwrap();
        p.append_as_leader(&batch(&[now; 4]), now).unwrap();
        // Follower 1 is caught up; 2 is in the ISR but at offset 2; 3 is caught up but out of
        // the ISR.
        p.record_follower_fetch(&follower_fetch(1, 4, now), 0)
            .unwrap();
        p.record_follower_fetch(&follower_fetch(2, 2, now), 0)
            .unwrap();
        p.record_follower_fetch(&follower_fetch(3, 4, now), 0)
            .unwrap();

        let (leader, followers) = p.read_replicas(3, now + 10).unwrap();
        assert_eq!(
            leader,
            ReadReplicaView {
                node: 0,
                log_end_offset: 4,
                time_since_caught_up_ms: 0
            }
        );
        assert_eq!(
            followers,
            vec![ReadReplicaView {
                node: 1,
                log_end_offset: 4,
                time_since_caught_up_ms: 10
            }]
        );
        let nodes = |offset| -> Vec<i32> {
            let (_, followers) = p.read_replicas(offset, now).unwrap();
            followers.iter().map(|f| f.node).collect()
        };
        assert_eq!(nodes(1), vec![1, 2]);
        assert_eq!(nodes(5), Vec::<i32>::new(), "past every log end");

        // Follower 1's log now starts at 2 (its own retention): it no longer holds offset 1.
        p.record_follower_fetch(&follower_fetch(1, 4, now), 2)
            .unwrap();
        assert_eq!(nodes(1), vec![2]);
        assert_eq!(nodes(2), vec![1, 2]);

        p.make_follower(1, 2);
        assert_eq!(
            p.read_replicas(1, now),
            None,
            "only a leader picks read replicas"
        );
    }
}
