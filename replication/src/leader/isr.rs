//! The leader's view of one partition's replicas: follower progress, the ISR and the high
//! watermark (Kafka's `Partition` and `Replica` on the leader).

use std::collections::BTreeMap;

use super::error::{AckError, IsrProposalError, LeaderError, NotEnoughReplicas};
use super::high_watermark;

/// A partition's replica assignment and in-sync replicas as committed to the metadata log
/// (Kafka's `LeaderAndIsr`), in node ids (`broker * 1000 + shard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The node that leads the partition.
    pub leader: i32,
    /// Every replica, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The committed in-sync replicas, the leader among them.
    pub isr: Vec<i32>,
    /// Bumped by the controller at every leader change.
    pub leader_epoch: i32,
    /// Bumped by the controller at every change of replicas, ISR or leader.
    pub partition_epoch: i32,
}

/// The settings the leader-side rules read, which the engine refreshes when they change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `replica.lag.time.max.ms`: how long a follower may go without catching up to the
    /// leader's log end before it leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// The topic's `min.insync.replicas`. Its effective value never exceeds the replication
    /// factor (Kafka's `effectiveMinIsr`).
    pub min_insync_replicas: usize,
}

impl LeaderConfig {
    /// Kafka's default `replica.lag.time.max.ms`.
    pub const DEFAULT_REPLICA_LAG_TIME_MAX_MS: i64 = 30_000;
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            replica_lag_time_max_ms: Self::DEFAULT_REPLICA_LAG_TIME_MAX_MS,
            min_insync_replicas: 1,
        }
    }
}

/// What the metadata image says about a follower's broker, which decides whether the follower
/// may join the ISR (Kafka's `isReplicaIsrEligible`, KIP-841 and KIP-903).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerBrokerState {
    /// The epoch of the broker's current registration.
    pub broker_epoch: i64,
    /// The controller fenced the broker (missed heartbeats, or not yet unfenced).
    pub fenced: bool,
    /// The broker is in controlled shutdown.
    pub in_controlled_shutdown: bool,
}

/// One follower fetch, as the leader's Fetch handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerFetch {
    /// The fetching follower's node id (Fetch's `ReplicaState.ReplicaId`, or `ReplicaId`
    /// below v15).
    pub replica_id: i32,
    /// The follower's broker epoch (`ReplicaState.ReplicaEpoch`), -1 when the request has none.
    pub broker_epoch: i64,
    /// The fetch offset: the follower's log end offset.
    pub fetch_offset: i64,
    /// The leader's log end offset when the fetch was served.
    pub leader_log_end: i64,
    /// When the fetch was served, in milliseconds.
    pub now_ms: i64,
}

/// What a follower fetch changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchUpdate {
    /// The new high watermark, when the fetch moved it: acks=all waiters and fetch waiters up
    /// to it can be woken.
    pub new_high_watermark: Option<i64>,
    /// The follower has caught up and is now a pending ISR member (Kafka's `maybeExpandIsr`):
    /// the engine sends this proposal to the controller as an AlterPartition.
    pub isr_expansion: Option<IsrProposal>,
}

/// What a committed ISR or partition state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsrUpdate {
    /// False when the state was older than the one held (a smaller partition epoch) and was
    /// ignored.
    pub applied: bool,
    /// The new high watermark, when the change moved it.
    pub new_high_watermark: Option<i64>,
}

/// An ISR member in an AlterPartition proposal, with the broker epoch the controller checks
/// (AlterPartition v3 `NewIsrWithEpochs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsrMember {
    /// The member's node id.
    pub replica_id: i32,
    /// The broker epoch its fetches carried; -1 when unknown, and always -1 for the leader
    /// itself, whose own epoch the engine fills in.
    pub broker_epoch: i64,
}

/// An ISR change the leader asks the controller for (an AlterPartition request). It applies
/// only once committed to the metadata log, when the engine calls
/// [`IsrTracker::on_isr_committed`]; until then the tracker holds it as in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// The leader sending the proposal.
    pub leader: i32,
    /// The leader epoch the proposal was made in.
    pub leader_epoch: i32,
    /// The partition epoch the proposal builds on; the controller refuses it when that epoch
    /// is no longer current (`INVALID_UPDATE_VERSION`).
    pub partition_epoch: i32,
    /// The proposed ISR, the leader first.
    pub new_isr: Vec<IsrMember>,
    /// Followers the proposal adds (an ISR expansion).
    pub added: Vec<i32>,
    /// Followers the proposal removes (an ISR shrink).
    pub removed: Vec<i32>,
}

/// The leader's knowledge of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FollowerProgress {
    /// The follower's log end offset: its last fetch offset. None until it fetches from this
    /// leader.
    pub log_end: Option<i64>,
    /// The leader's log end offset at the follower's previous fetch.
    pub last_fetch_leader_log_end: Option<i64>,
    /// When the follower last fetched.
    pub last_fetch_ms: Option<i64>,
    /// The latest time at which the follower's fetch offset had reached the leader's log end
    /// (Kafka's `lastCaughtUpTimeMs`); None when it never has in this leadership.
    pub last_caught_up_ms: Option<i64>,
    /// The broker epoch of the follower's last fetch (-1 when the fetch carried none).
    pub fetch_broker_epoch: Option<i64>,
}

impl FollowerProgress {
    /// Kafka's `isCaughtUp`: the follower is at the leader's log end, or it was within the last
    /// `max_lag_ms`.
    pub fn is_caught_up(&self, leader_log_end: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        self.log_end == Some(leader_log_end)
            || self
                .last_caught_up_ms
                .is_some_and(|caught_up| now_ms.saturating_sub(caught_up) <= max_lag_ms)
    }

    /// Records a fetch (Kafka's `Replica.updateFetchStateOrThrow`). The follower caught up at
    /// this fetch if it reached the leader's log end now, else at its previous fetch if it has
    /// now reached the leader's log end of then.
    fn record_fetch(&mut self, fetch: &FollowerFetch) {
        let caught_up_at = if fetch.fetch_offset >= fetch.leader_log_end {
            Some(fetch.now_ms)
        } else if self
            .last_fetch_leader_log_end
            .is_some_and(|previous| fetch.fetch_offset >= previous)
        {
            self.last_fetch_ms
        } else {
            None
        };
        if let Some(at) = caught_up_at {
            self.last_caught_up_ms = Some(self.last_caught_up_ms.map_or(at, |t| t.max(at)));
        }
        self.log_end = Some(fetch.fetch_offset);
        self.last_fetch_leader_log_end = Some(
            self.last_fetch_leader_log_end
                .map_or(fetch.leader_log_end, |previous| {
                    previous.max(fetch.leader_log_end)
                }),
        );
        self.last_fetch_ms = Some(fetch.now_ms);
        self.fetch_broker_epoch = Some(fetch.broker_epoch);
    }
}

/// A proposal waiting for the controller, with the "maximal" ISR it implies (KIP-497): the
/// committed ISR plus any follower being added, so that the high watermark already waits for a
/// joining follower, while a follower being removed still holds it back until the removal
/// commits.
#[derive(Debug, Clone)]
struct PendingIsrChange {
    proposal: IsrProposal,
    maximal_isr: Vec<i32>,
}

/// The leader side of Kafka's in-sync replica protocol for one partition this node leads.
///
/// It tracks each follower's log end offset and last caught-up time from its fetches, derives
/// the high watermark (the smallest log end offset over the maximal ISR, never decreasing),
/// decides which followers leave or join the ISR, and holds the one AlterPartition proposal in
/// flight until the controller commits it. It is a pure state machine: time, the leader's log
/// end and metadata come in as arguments, and the engine's shard owns one per partition it
/// leads. Every method that can move the high watermark returns the new value.
#[derive(Debug, Clone)]
pub struct IsrTracker {
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    pending: Option<PendingIsrChange>,
    leader_epoch: i32,
    partition_epoch: i32,
    leader_epoch_start_offset: i64,
    leader_log_end: i64,
    high_watermark: i64,
    config: LeaderConfig,
    followers: BTreeMap<i32, FollowerProgress>,
    brokers: BTreeMap<i32, FollowerBrokerState>,
}

impl IsrTracker {
    /// Starts leading `state` (Kafka's `makeLeader` for a new leader): the leader's epoch
    /// starts at `leader_log_end`, the high watermark at `high_watermark` (the one the log had
    /// as a follower), and every follower is unknown until it fetches; those in the ISR count as
    /// caught up at `now_ms`, so they have `replica.lag.time.max.ms` to fetch.
    ///
    /// Followers may join the ISR only once their broker's state is known: call
    /// [`IsrTracker::update_follower_broker`] with the metadata image's registrations.
    pub fn new(
        state: &LeaderAndIsr,
        leader_log_end: i64,
        high_watermark: i64,
        config: LeaderConfig,
        now_ms: i64,
    ) -> Result<IsrTracker, LeaderError> {
        validate_state(state, state.leader)?;
        if high_watermark > leader_log_end {
            return Err(LeaderError::HighWatermarkAboveLogEnd {
                high_watermark,
                leader_log_end,
            });
        }
        let followers = state
            .replicas
            .iter()
            .filter(|&&id| id != state.leader)
            .map(|&id| {
                let progress = FollowerProgress {
                    last_caught_up_ms: state.isr.contains(&id).then_some(now_ms),
                    ..FollowerProgress::default()
                };
                (id, progress)
            })
            .collect();
        let mut tracker = IsrTracker {
            leader: state.leader,
            replicas: state.replicas.clone(),
            isr: state.isr.clone(),
            pending: None,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            leader_epoch_start_offset: leader_log_end,
            leader_log_end,
            high_watermark,
            config,
            followers,
            brokers: BTreeMap::new(),
        };
        tracker.maybe_increment_high_watermark(now_ms);
        tracker.check_invariants();
        Ok(tracker)
    }

    /// The leader's node id.
    pub fn leader(&self) -> i32 {
        self.leader
    }

    /// The leader epoch this node leads in.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The partition epoch of the last committed state.
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The leader's log end offset when its epoch started: a follower must reach it to join the
    /// ISR.
    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }

    /// The leader's log end offset as last reported.
    pub fn leader_log_end(&self) -> i64 {
        self.leader_log_end
    }

    /// The high watermark: consumers read below it, and acks=all produces complete once it
    /// covers them.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The settings in force.
    pub fn config(&self) -> LeaderConfig {
        self.config
    }

    /// Every replica, the preferred leader first.
    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// The committed ISR, the one the controller elects from.
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// The maximal ISR (KIP-497): the committed ISR plus a follower being added. The high
    /// watermark is the minimum log end offset over it.
    pub fn maximal_isr(&self) -> &[i32] {
        self.pending
            .as_ref()
            .map_or(&self.isr, |pending| &pending.maximal_isr)
    }

    /// The AlterPartition proposal waiting for the controller, if any.
    pub fn pending_proposal(&self) -> Option<&IsrProposal> {
        self.pending.as_ref().map(|pending| &pending.proposal)
    }

    /// What the leader knows of follower `replica_id`.
    pub fn follower(&self, replica_id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&replica_id)
    }

    /// The followers in node id order, with what the leader knows of each (for lag metrics).
    pub fn followers(&self) -> impl Iterator<Item = (i32, &FollowerProgress)> {
        self.followers.iter().map(|(&id, progress)| (id, progress))
    }

    /// `min.insync.replicas` capped at the replication factor (Kafka's `effectiveMinIsr`).
    pub fn effective_min_isr(&self) -> usize {
        self.config.min_insync_replicas.min(self.replicas.len())
    }

    /// The committed ISR is smaller than the replica set.
    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len()
    }

    /// The committed ISR is smaller than the effective `min.insync.replicas`: acks=all produces
    /// are refused and the high watermark stays where it is (KAFKA-15583).
    pub fn is_under_min_isr(&self) -> bool {
        self.isr.len() < self.effective_min_isr()
    }

    /// The committed ISR has exactly the effective `min.insync.replicas` members.
    pub fn is_at_min_isr(&self) -> bool {
        self.isr.len() == self.effective_min_isr()
    }

    /// Adopts new settings (a dynamic `min.insync.replicas` change). A lower minimum can let the
    /// high watermark move.
    pub fn set_config(&mut self, config: LeaderConfig, now_ms: i64) -> Option<i64> {
        self.config = config;
        let moved = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        moved
    }

    /// Records what the metadata image says of follower `replica_id`'s broker (None when the
    /// broker is not registered). Only a follower whose broker is registered, unfenced, not
    /// shutting down and fetching with its registration's epoch may join the ISR, and only such a
    /// follower holds the high watermark back while it catches up.
    pub fn update_follower_broker(
        &mut self,
        replica_id: i32,
        broker: Option<FollowerBrokerState>,
        now_ms: i64,
    ) -> Option<i64> {
        match broker {
            Some(broker) => self.brokers.insert(replica_id, broker),
            None => self.brokers.remove(&replica_id),
        };
        let moved = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        moved
    }

    /// Records a follower's fetch (Kafka's `updateFollowerFetchState`): its log end offset and
    /// caught-up time; then, if it is now in sync and not in the ISR, makes it a pending ISR
    /// member (Kafka's `maybeExpandIsr`); then moves the high watermark if the fetch allows it.
    ///
    /// The engine calls it after reading the fetched records, with the leader's log end offset
    /// at that time.
    pub fn record_follower_fetch(
        &mut self,
        fetch: &FollowerFetch,
    ) -> Result<FetchUpdate, LeaderError> {
        let Some(progress) = self.followers.get(&fetch.replica_id) else {
            return Err(LeaderError::UnknownReplica {
                replica_id: fetch.replica_id,
            });
        };
        if fetch.fetch_offset < 0 || fetch.fetch_offset > fetch.leader_log_end {
            return Err(LeaderError::FetchOffsetOutOfRange {
                replica_id: fetch.replica_id,
                fetch_offset: fetch.fetch_offset,
                leader_log_end: fetch.leader_log_end,
            });
        }
        if let Some(broker) = self.brokers.get(&fetch.replica_id) {
            if fetch.broker_epoch != -1 && broker.broker_epoch > fetch.broker_epoch {
                return Err(LeaderError::StaleBrokerEpoch {
                    replica_id: fetch.replica_id,
                    fetch_broker_epoch: fetch.broker_epoch,
                    registered_broker_epoch: broker.broker_epoch,
                });
            }
        }
        let previous_log_end = progress.log_end;
        self.advance_leader_log_end(fetch.leader_log_end);
        if let Some(progress) = self.followers.get_mut(&fetch.replica_id) {
            progress.record_fetch(fetch);
        }

        let isr_expansion = if self.can_join_isr(fetch.replica_id) {
            let mut new_isr = self.isr.clone();
            new_isr.push(fetch.replica_id);
            self.propose_isr(&new_isr).ok()
        } else {
            None
        };
        let new_high_watermark = if previous_log_end != Some(fetch.fetch_offset) {
            self.maybe_increment_high_watermark(fetch.now_ms)
        } else {
            None
        };
        self.check_invariants();
        Ok(FetchUpdate {
            new_high_watermark,
            isr_expansion,
        })
    }

    /// Records the leader's own append (its new log end offset; a smaller, stale value is
    /// ignored). When no follower holds it back (an ISR of the leader alone), the high watermark
    /// follows.
    pub fn on_leader_append(&mut self, leader_log_end: i64, now_ms: i64) -> Option<i64> {
        self.advance_leader_log_end(leader_log_end);
        let moved = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        moved
    }

    /// Recomputes the high watermark at `now_ms` (Kafka's `maybeIncrementLeaderHW`). A follower
    /// outside the ISR that was caught up holds it back only for `replica.lag.time.max.ms`, so
    /// the engine's periodic ISR check calls this along with [`IsrTracker::maybe_shrink_isr`].
    pub fn update_high_watermark(&mut self, now_ms: i64) -> Option<i64> {
        let moved = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        moved
    }

    /// The ISR followers that have not caught up to the leader's log end within
    /// `replica.lag.time.max.ms` (Kafka's `getOutOfSyncReplicas`): stuck followers that stopped
    /// fetching and slow ones that fetch but never reach the end. Empty while a proposal is in
    /// flight.
    pub fn out_of_sync_followers(&self, now_ms: i64) -> Vec<i32> {
        if self.pending.is_some() {
            return Vec::new();
        }
        self.isr
            .iter()
            .copied()
            .filter(|&id| id != self.leader)
            .filter(|id| {
                self.followers.get(id).is_none_or(|progress| {
                    !progress.is_caught_up(
                        self.leader_log_end,
                        now_ms,
                        self.config.replica_lag_time_max_ms,
                    )
                })
            })
            .collect()
    }

    /// The followers outside the ISR that may join it now (Kafka's `canAddReplicaToIsr` and
    /// `isFollowerInSync`): eligible brokers whose log end has reached both the high watermark
    /// and the start of the leader's epoch. Empty while a proposal is in flight.
    pub fn followers_to_add(&self) -> Vec<i32> {
        self.followers
            .keys()
            .copied()
            .filter(|&id| self.can_join_isr(id))
            .collect()
    }

    /// Proposes to shrink the ISR by its out-of-sync followers (Kafka's `maybeShrinkIsr`); the
    /// engine runs it every `replica.lag.time.max.ms / 2` and sends the proposal as an
    /// AlterPartition.
    pub fn maybe_shrink_isr(&mut self, now_ms: i64) -> Option<IsrProposal> {
        let out_of_sync = self.out_of_sync_followers(now_ms);
        if out_of_sync.is_empty() {
            return None;
        }
        let new_isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| !out_of_sync.contains(id))
            .collect();
        self.propose_isr(&new_isr).ok()
    }

    /// Marks an ISR change as in flight and returns the AlterPartition proposal for it. At most
    /// one is in flight. While it is, the high watermark waits for the maximal ISR: the
    /// committed ISR plus the followers being added (an addition makes the high watermark
    /// stricter, so it is safe before it commits; a removal is not, so it waits).
    pub fn propose_isr(&mut self, new_isr: &[i32]) -> Result<IsrProposal, IsrProposalError> {
        if self.pending.is_some() {
            return Err(IsrProposalError::InFlight);
        }
        if !new_isr.contains(&self.leader) {
            return Err(IsrProposalError::LeaderMissing {
                leader: self.leader,
            });
        }
        for (position, &id) in new_isr.iter().enumerate() {
            if !self.replicas.contains(&id) || new_isr[..position].contains(&id) {
                return Err(IsrProposalError::NotAReplica { replica_id: id });
            }
        }
        let added: Vec<i32> = new_isr
            .iter()
            .copied()
            .filter(|id| !self.isr.contains(id))
            .collect();
        let removed: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|id| !new_isr.contains(id))
            .collect();
        if added.is_empty() && removed.is_empty() {
            return Err(IsrProposalError::Unchanged);
        }
        for &id in &added {
            if !self.is_isr_eligible(id) {
                return Err(IsrProposalError::IneligibleReplica { replica_id: id });
            }
            if !self.is_follower_in_sync(id) {
                return Err(IsrProposalError::NotInSync { replica_id: id });
            }
        }

        let leader_first = std::iter::once(self.leader)
            .chain(new_isr.iter().copied().filter(|&id| id != self.leader));
        let new_isr_members = leader_first
            .map(|id| IsrMember {
                replica_id: id,
                broker_epoch: self
                    .followers
                    .get(&id)
                    .and_then(|progress| progress.fetch_broker_epoch)
                    .unwrap_or(-1),
            })
            .collect();
        let mut maximal_isr = self.isr.clone();
        maximal_isr.extend(added.iter().copied());
        let proposal = IsrProposal {
            leader: self.leader,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr: new_isr_members,
            added,
            removed,
        };
        self.pending = Some(PendingIsrChange {
            proposal: proposal.clone(),
            maximal_isr,
        });
        self.check_invariants();
        Ok(proposal)
    }

    /// The controller committed `isr` at `partition_epoch` (the AlterPartition answer, or the
    /// metadata log's record of it): it becomes the committed ISR and ends any proposal in
    /// flight (Kafka's `handleAlterPartitionUpdate`). A state older than the one held is ignored.
    pub fn on_isr_committed(
        &mut self,
        isr: &[i32],
        partition_epoch: i32,
        now_ms: i64,
    ) -> Result<IsrUpdate, LeaderError> {
        if partition_epoch < self.partition_epoch {
            return Ok(IsrUpdate {
                applied: false,
                new_high_watermark: None,
            });
        }
        validate_isr(isr, &self.replicas, self.leader)?;
        self.isr = isr.to_vec();
        self.pending = None;
        self.partition_epoch = partition_epoch;
        let new_high_watermark = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        Ok(IsrUpdate {
            applied: true,
            new_high_watermark,
        })
    }

    /// The controller refused the proposal in flight and said it was not applied
    /// (`OPERATION_NOT_ATTEMPTED`, `INELIGIBLE_REPLICA`): the tracker returns to the committed
    /// state, and a later fetch or ISR check may propose again. For errors that leave the
    /// outcome unknown the engine retries or waits for the metadata log instead.
    pub fn on_proposal_failed(&mut self, now_ms: i64) -> Option<i64> {
        self.pending = None;
        let moved = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        moved
    }

    /// Applies a partition state from the metadata log while this node leads (Kafka's
    /// `makeLeader` when already leader): the replica set and the committed ISR are replaced and
    /// any proposal in flight ends. A new leader epoch restarts the epoch at `leader_log_end`
    /// and resets the followers' caught-up times as Kafka's `resetReplicaState` does. A state
    /// naming another leader is refused with [`LeaderError::NotLeader`]; one older than the
    /// state held is ignored.
    pub fn on_partition_state(
        &mut self,
        state: &LeaderAndIsr,
        leader_log_end: i64,
        now_ms: i64,
    ) -> Result<IsrUpdate, LeaderError> {
        if state.leader != self.leader {
            return Err(LeaderError::NotLeader {
                local: self.leader,
                leader: state.leader,
            });
        }
        debug_assert!(
            state.partition_epoch < self.partition_epoch || state.leader_epoch >= self.leader_epoch,
            "leader epoch went backwards from {} to {} at partition epoch {}",
            self.leader_epoch,
            state.leader_epoch,
            state.partition_epoch
        );
        if state.partition_epoch < self.partition_epoch || state.leader_epoch < self.leader_epoch {
            return Ok(IsrUpdate {
                applied: false,
                new_high_watermark: None,
            });
        }
        validate_state(state, self.leader)?;
        self.advance_leader_log_end(leader_log_end);

        self.followers
            .retain(|id, _| state.replicas.contains(id) && *id != state.leader);
        for &id in &state.replicas {
            if id != self.leader {
                self.followers.entry(id).or_default();
            }
        }
        if state.leader_epoch > self.leader_epoch {
            for (id, progress) in &mut self.followers {
                let in_sync_since = state.isr.contains(id).then_some(now_ms);
                progress.last_fetch_leader_log_end = Some(self.leader_log_end);
                progress.last_fetch_ms = in_sync_since;
                progress.last_caught_up_ms = in_sync_since;
            }
            self.leader_epoch = state.leader_epoch;
            self.leader_epoch_start_offset = self.leader_log_end;
        }
        self.replicas = state.replicas.clone();
        self.isr = state.isr.clone();
        self.pending = None;
        self.partition_epoch = state.partition_epoch;
        let new_high_watermark = self.maybe_increment_high_watermark(now_ms);
        self.check_invariants();
        Ok(IsrUpdate {
            applied: true,
            new_high_watermark,
        })
    }

    /// The check before an acks=all append (Kafka's `appendRecordsToLeader`): the committed ISR
    /// must have at least the effective `min.insync.replicas` members, or nothing is written.
    pub fn check_min_isr(&self) -> Result<(), NotEnoughReplicas> {
        let min_insync_replicas = self.effective_min_isr();
        if self.isr.len() < min_insync_replicas {
            return Err(NotEnoughReplicas {
                isr_size: self.isr.len(),
                min_insync_replicas,
            });
        }
        Ok(())
    }

    /// The outcome of an acks=all produce whose records the high watermark now covers (Kafka's
    /// `checkEnoughReplicasReachOffset`): success while the maximal ISR still has the effective
    /// `min.insync.replicas` members, else [`AckError::NotEnoughReplicasAfterAppend`] (the ISR
    /// shrank while the produce waited). The engine passes it to
    /// [`AckPurgatory::on_high_watermark`](super::AckPurgatory::on_high_watermark).
    pub fn ack_outcome(&self) -> Result<(), AckError> {
        if self.maximal_isr().len() < self.effective_min_isr() {
            return Err(AckError::NotEnoughReplicasAfterAppend);
        }
        Ok(())
    }

    /// The leader's log end only grows while it leads; a value read before a later append
    /// (a fetch served while a produce appended) is older news and is ignored.
    fn advance_leader_log_end(&mut self, leader_log_end: i64) {
        self.leader_log_end = self.leader_log_end.max(leader_log_end);
    }

    /// Kafka's `isReplicaIsrEligible`: the follower's broker is registered, unfenced, not in
    /// controlled shutdown, and its fetches carry the registration's epoch (or none).
    fn is_isr_eligible(&self, replica_id: i32) -> bool {
        let Some(broker) = self.brokers.get(&replica_id) else {
            return false;
        };
        let fetch_epoch = self
            .followers
            .get(&replica_id)
            .and_then(|progress| progress.fetch_broker_epoch);
        !broker.fenced
            && !broker.in_controlled_shutdown
            && fetch_epoch.is_some_and(|epoch| epoch == -1 || epoch == broker.broker_epoch)
    }

    /// Kafka's `isFollowerInSync`: the follower's log end has reached the high watermark and the
    /// start of the leader's epoch, so it holds every committed record and this epoch's history.
    fn is_follower_in_sync(&self, replica_id: i32) -> bool {
        self.followers
            .get(&replica_id)
            .and_then(|progress| progress.log_end)
            .is_some_and(|log_end| {
                log_end >= self.high_watermark && log_end >= self.leader_epoch_start_offset
            })
    }

    /// Kafka's `needsExpandIsr`: no proposal in flight, not in the ISR, eligible, in sync.
    fn can_join_isr(&self, replica_id: i32) -> bool {
        self.pending.is_none()
            && replica_id != self.leader
            && !self.isr.contains(&replica_id)
            && self.is_isr_eligible(replica_id)
            && self.is_follower_in_sync(replica_id)
    }

    /// Kafka's `maybeIncrementLeaderHW`: the high watermark becomes the smallest log end offset
    /// over the leader, the maximal ISR, and the eligible followers that are caught up but not
    /// yet in the ISR (so that a joining follower is not left behind forever under a steady
    /// produce load) — unless the ISR is below `min.insync.replicas` (KAFKA-15583). It only
    /// ever moves forward.
    fn maybe_increment_high_watermark(&mut self, now_ms: i64) -> Option<i64> {
        if self.is_under_min_isr() {
            return None;
        }
        let maximal_isr = self.maximal_isr();
        let mut holding_back = Vec::with_capacity(self.followers.len());
        for (&id, progress) in &self.followers {
            let counts = maximal_isr.contains(&id)
                || (progress.is_caught_up(
                    self.leader_log_end,
                    now_ms,
                    self.config.replica_lag_time_max_ms,
                ) && self.is_isr_eligible(id));
            if counts {
                // A member that has not fetched from this leader yet holds the HW where it is.
                holding_back.push(progress.log_end?);
            }
        }
        let candidate = high_watermark(self.leader_log_end, &holding_back);
        if candidate <= self.high_watermark {
            return None;
        }
        debug_assert!(
            maximal_isr.iter().all(|id| self
                .followers
                .get(id)
                .and_then(|progress| progress.log_end)
                .is_none_or(|log_end| candidate <= log_end)),
            "high watermark {candidate} above the log end of a maximal ISR member"
        );
        self.high_watermark = candidate;
        Some(candidate)
    }

    /// The invariants every mutation keeps (compiled in with debug assertions, which the ci
    /// profile keeps on).
    fn check_invariants(&self) {
        debug_assert!(
            self.isr.contains(&self.leader),
            "the leader {} is not in the committed ISR {:?}",
            self.leader,
            self.isr
        );
        debug_assert!(
            self.maximal_isr().contains(&self.leader)
                && self.isr.iter().all(|id| self.maximal_isr().contains(id))
                && self
                    .maximal_isr()
                    .iter()
                    .all(|id| self.replicas.contains(id)),
            "the maximal ISR {:?} is not between the committed ISR {:?} and the replicas {:?}",
            self.maximal_isr(),
            self.isr,
            self.replicas
        );
        debug_assert!(
            self.high_watermark <= self.leader_log_end,
            "high watermark {} above the leader's log end {}",
            self.high_watermark,
            self.leader_log_end
        );
        debug_assert!(
            self.leader_epoch_start_offset <= self.leader_log_end,
            "the leader epoch starts at {} beyond the log end {}",
            self.leader_epoch_start_offset,
            self.leader_log_end
        );
        debug_assert!(
            self.followers.len() + 1 == self.replicas.len()
                && self.followers.keys().all(|id| self.replicas.contains(id)),
            "the followers {:?} are not the replicas {:?} less the leader",
            self.followers.keys().collect::<Vec<_>>(),
            self.replicas
        );
    }
}

/// A partition state this node can lead: the replicas are distinct and contain the leader, and
/// the ISR is a subset of them that contains the leader.
fn validate_state(state: &LeaderAndIsr, local: i32) -> Result<(), LeaderError> {
    if state.leader != local {
        return Err(LeaderError::NotLeader {
            local,
            leader: state.leader,
        });
    }
    for (position, &id) in state.replicas.iter().enumerate() {
        if state.replicas[..position].contains(&id) {
            return Err(LeaderError::DuplicateReplica { replica_id: id });
        }
    }
    validate_isr(&state.isr, &state.replicas, state.leader)
}

/// An ISR of distinct replicas that contains the leader.
fn validate_isr(isr: &[i32], replicas: &[i32], leader: i32) -> Result<(), LeaderError> {
    if !isr.contains(&leader) {
        return Err(LeaderError::LeaderNotInIsr {
            leader,
            isr: isr.to_vec(),
        });
    }
    for (position, &id) in isr.iter().enumerate() {
        if !replicas.contains(&id) || isr[..position].contains(&id) {
            return Err(LeaderError::IsrNotInReplicas {
                replica_id: id,
                replicas: replicas.to_vec(),
            });
        }
    }
    Ok(())
}
