//! Partition reassignments (KIP-455): moving a partition's replicas to other nodes, or changing
//! how many it has, without losing a record — as Kafka's `ReplicationControlManager`,
//! `PartitionReassignmentReplicas` and `PartitionReassignmentRevert` do it.
//!
//! A reassignment of a partition with replicas R to the target replicas T goes in two steps:
//!
//! 1. **Start** ([`alter_partition_reassignments`]): the replicas become T followed by those
//!    leaving (R∖T), the new ones (T∖R) in `adding_replicas` and the leaving ones in
//!    `removing_replicas`. The ISR and the leader stay. Every broker applies the change: the
//!    new replicas' shards open empty logs and fetch from the leader like any follower, and
//!    the leader tracks them.
//! 2. **Completion** ([`complete_if_in_sync`], part of every partition change
//!    [`super::election::change_partition_to`]): once the ISR holds every target replica —
//!    the leader's AlterPartition brings each new replica in when it has caught up — the
//!    replicas become T, the ISR loses the leaving replicas, a leader leaving the partition
//!    hands over to the first target replica in sync (a new leader epoch; the epoch is bumped
//!    anyway as replicas leave), and the adding and removing lists are cleared. The leaving
//!    replicas' shards close their logs and delete them.
//!
//! A reassignment that only removes or reorders replicas whose targets are in sync completes at
//! once. A new target for a partition in the middle of a reassignment replaces it (the new
//! replicas are counted from the replicas before the first one). A cancel (target `null`)
//! reverts to the replicas before the reassignment, the added ones leaving the ISR; if that
//! would leave the ISR empty, it needs an unclean election, refused unless the topic allows
//! one.
//!
//! Per-partition errors, as Kafka's: UNKNOWN_TOPIC_OR_PARTITION; INVALID_REPLICA_ASSIGNMENT for
//! an empty target, a node that does not exist or a node named twice, and for a cancel needing
//! an unclean election that is not allowed; NO_REASSIGNMENT_IN_PROGRESS for a cancel of
//! nothing; INVALID_REPLICATION_FACTOR for a target whose replica count differs from the
//! partition's when the request does not allow that (KIP-860).

use super::check_replica_list;
use super::election::{change_partition_to, unclean_allowed, Election, PartitionTarget};
use crate::config::BrokerConfig;
use crate::messages::{OngoingReassignment, PartitionReassignment, ReassignmentOutcome};
use crate::metadata::{ClusterState, PartitionState};
use kafka_protocol::ResponseError;
use tracing::info;

/// A per-partition refusal: the Kafka error and its message.
type Refusal = (ResponseError, String);

/// AlterPartitionReassignments: starts, replaces or cancels each partition's reassignment in
/// `state`, in request order, each validated on its own. Returns one outcome per partition.
pub fn alter_partition_reassignments(
    state: &mut ClusterState,
    config: &BrokerConfig,
    reassignments: Vec<PartitionReassignment>,
    allow_replication_factor_change: bool,
) -> Vec<ReassignmentOutcome> {
    let results: Vec<ReassignmentOutcome> = reassignments
        .into_iter()
        .map(|r| {
            let result = reassign(state, config, &r, allow_replication_factor_change);
            let (error_code, error_message) = match result {
                Ok(()) => (0, None),
                Err((code, message)) => {
                    info!(
                        topic = %r.topic, partition = r.partition,
                        "partition reassignment refused: {message}"
                    );
                    (code.code(), Some(message))
                }
            };
            ReassignmentOutcome {
                topic: r.topic,
                partition: r.partition,
                error_code,
                error_message,
            }
        })
        .collect();
    let altered = results.iter().filter(|o| o.error_code == 0).count();
    info!(
        "altered {altered} of {} partition reassignment(s)",
        results.len()
    );
    results
}

/// One partition of [`alter_partition_reassignments`]: `state` changed, or the refusal.
fn reassign(
    state: &mut ClusterState,
    config: &BrokerConfig,
    r: &PartitionReassignment,
    allow_replication_factor_change: bool,
) -> Result<(), Refusal> {
    let Some(topic) = state.topics.get(&r.topic) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find a topic named {}.", r.topic),
        ));
    };
    let Some(p) = usize::try_from(r.partition)
        .ok()
        .and_then(|i| topic.partitions.get(i))
    else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find partition {}:{}.", r.topic, r.partition),
        ));
    };
    let unclean = unclean_allowed(topic, config, state);
    let (target, election) = match &r.replicas {
        None => (
            revert(p, unclean, &r.topic, r.partition)?,
            unclean_election(unclean),
        ),
        Some(replicas) => {
            check_replica_list(state, replicas)?;
            let current = p.target_replicas().len();
            if !allow_replication_factor_change && replicas.len() != current {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    format!(
                        "The replication factor of {}:{} would change from {current} to {}, and the request does not allow replication factor changes.",
                        r.topic,
                        r.partition,
                        replicas.len()
                    ),
                ));
            }
            (reassignment_target(p, replicas), Election::Online)
        }
    };
    let next = change_partition_to(p, target, election, |n| state.is_live_node(n));
    if let Some(next) = next {
        match &r.replicas {
            None => info!(
                topic = %r.topic, partition = r.partition, replicas = ?next.replicas,
                "partition reassignment cancelled"
            ),
            Some(_) if next.is_reassigning() => info!(
                topic = %r.topic, partition = r.partition, adding = ?next.adding_replicas,
                removing = ?next.removing_replicas, "partition reassignment started"
            ),
            Some(_) => info!(
                topic = %r.topic, partition = r.partition, replicas = ?next.replicas,
                "partition reassignment completed at once"
            ),
        }
        if let Some(slot) = state
            .topics
            .get_mut(&r.topic)
            .and_then(|t| t.partitions.get_mut(r.partition as usize))
        {
            *slot = next;
        }
    }
    Ok(())
}

/// The election of a cancel: unclean when the topic allows it (Kafka's revert), else online.
fn unclean_election(allowed: bool) -> Election {
    if allowed {
        Election::Unclean
    } else {
        Election::Online
    }
}

/// The target of a reassignment of `p` to `target` (Kafka's `PartitionReassignmentReplicas`):
/// the target replicas, then the current ones leaving; adding are the targets the partition
/// did not have before any reassignment, removing the current replicas not in the target,
/// both in ascending order.
fn reassignment_target(p: &PartitionState, target: &[i32]) -> PartitionTarget {
    let original = p.original_replicas();
    let mut removing: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    removing.sort_unstable();
    let mut adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    adding.sort_unstable();
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    PartitionTarget {
        replicas,
        isr: p.isr.clone(),
        adding,
        removing,
    }
}

/// The target of a cancel of `p`'s reassignment (Kafka's `PartitionReassignmentRevert`): the
/// replicas before it, the ISR without the added replicas. When only added replicas are in
/// sync, the first original replica becomes the ISR alone — an unclean election, refused
/// unless `unclean_allowed`. NO_REASSIGNMENT_IN_PROGRESS when there is nothing to cancel.
fn revert(
    p: &PartitionState,
    unclean_allowed: bool,
    topic: &str,
    index: i32,
) -> Result<PartitionTarget, Refusal> {
    if !p.is_reassigning() {
        return Err((
            ResponseError::NoReassignmentInProgress,
            "No partition reassignment is in progress.".to_string(),
        ));
    }
    let replicas = p.original_replicas();
    let mut isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    if isr.is_empty() {
        if !unclean_allowed {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Unable to revert partition assignment for {topic}:{index} because it would require an unclean leader election."),
            ));
        }
        isr.extend(replicas.first());
    }
    Ok(PartitionTarget {
        replicas,
        isr,
        adding: Vec::new(),
        removing: Vec::new(),
    })
}

/// Completes the reassignment of `target` when its ISR allows (Kafka's
/// `maybeCompleteReassignment`): when the ISR without the removed replicas is not empty and
/// holds every replica that stays, those become the replicas and that the ISR, and the
/// reassignment ends. Any other target comes back unchanged.
pub fn complete_if_in_sync(target: PartitionTarget) -> PartitionTarget {
    if target.adding.is_empty() && target.removing.is_empty() {
        return target;
    }
    let staying = |nodes: &[i32]| -> Vec<i32> {
        nodes
            .iter()
            .copied()
            .filter(|n| !target.removing.contains(n))
            .collect()
    };
    let isr = staying(&target.isr);
    let replicas = staying(&target.replicas);
    if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
        return target;
    }
    PartitionTarget {
        replicas,
        isr,
        adding: Vec::new(),
        removing: Vec::new(),
    }
}

/// ListPartitionReassignments: the reassignments in progress among `partitions` (every
/// partition when `None`; unknown topics and partitions are left out, as Kafka does), by
/// topic then partition.
pub fn list_partition_reassignments(
    state: &ClusterState,
    partitions: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<OngoingReassignment> {
    let wanted: Vec<(String, Vec<i32>)> = partitions.unwrap_or_else(|| {
        state
            .topics
            .iter()
            .map(|(name, t)| (name.clone(), (0..t.partitions.len() as i32).collect()))
            .collect()
    });
    let mut ongoing = Vec::new();
    for (topic, indexes) in wanted {
        let Some(t) = state.topics.get(&topic) else {
            continue;
        };
        for index in indexes {
            let Some(p) = usize::try_from(index)
                .ok()
                .and_then(|i| t.partitions.get(i))
                .filter(|p| p.is_reassigning())
            else {
                continue;
            };
            ongoing.push(OngoingReassignment {
                topic: topic.clone(),
                partition: index,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            });
        }
    }
    ongoing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfigs;
    use crate::controller::alter_partition::alter_partition;
    use crate::controller::election::fence_broker;
    use crate::controller::tests::cluster;
    use crate::controller_rpc::{AlterPartitionRequest, IsrMember};
    use crate::metadata::TopicState;
    use uuid::Uuid;

    fn config() -> BrokerConfig {
        BrokerConfig::load(None, &[]).unwrap()
    }

    /// Four brokers × two shards; `t`-0 on 1000, 2000, 3000 (all in sync, led by 1000), and
    /// `one`-0 on 1000 alone.
    fn state() -> ClusterState {
        let mut state = cluster(4, 2);
        for (name, replicas) in [("t", vec![1000, 2000, 3000]), ("one", vec![1000])] {
            state.topics.insert(
                name.into(),
                TopicState {
                    id: Uuid::new_v4(),
                    partitions: vec![PartitionState::new(replicas, |_| true).unwrap()],
                    configs: TopicConfigs::default(),
                    internal: false,
                },
            );
        }
        state
    }

    fn reassignment(
        topic: &str,
        partition: i32,
        replicas: Option<&[i32]>,
    ) -> PartitionReassignment {
        PartitionReassignment {
            topic: topic.into(),
            partition,
            replicas: replicas.map(<[i32]>::to_vec),
        }
    }

    /// Alters one reassignment (replication factor changes allowed); its outcome's error.
    fn alter(state: &mut ClusterState, r: PartitionReassignment) -> (i16, Option<String>) {
        let out = alter_partition_reassignments(state, &config(), vec![r], true).remove(0);
        (out.error_code, out.error_message)
    }

    /// The leader of `topic`-0 sets its ISR to `isr` (AlterPartition) and `state` takes the
    /// committed change; the answer's error code.
    fn leader_sets_isr(state: &mut ClusterState, topic: &str, isr: &[i32]) -> i16 {
        let p = &state.topics[topic].partitions[0];
        let request = AlterPartitionRequest {
            topic: topic.into(),
            topic_id: Uuid::nil(),
            partition: 0,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr.iter().map(|n| IsrMember::unchecked(*n)).collect(),
        };
        let (outcome, next) = alter_partition(state, &config(), &request);
        if let Some(next) = next {
            *state = next;
        }
        outcome.error_code
    }

    fn partition<'a>(state: &'a ClusterState, topic: &str) -> &'a PartitionState {
        &state.topics[topic].partitions[0]
    }

    #[test]
    fn a_move_adds_the_targets_then_completes_once_they_are_in_sync() {
        let mut state = state();
        assert_eq!(
            alter(&mut state, reassignment("t", 0, Some(&[1001, 2001, 3000]))),
            (0, None)
        );
        let p = partition(&state, "t").clone();
        assert_eq!(p.replicas, [1001, 2001, 3000, 1000, 2000]);
        assert_eq!(p.adding_replicas, [1001, 2001]);
        assert_eq!(p.removing_replicas, [1000, 2000]);
        assert_eq!(
            (p.isr.as_slice(), p.leader),
            (&[1000, 2000, 3000][..], 1000)
        );
        assert_eq!((p.leader_epoch, p.partition_epoch), (0, 1));
        // The new replicas of brokers 1 and 2 keep their data apart from the old ones'.
        assert!(!p.uses_shared_dir(1001) && !p.uses_shared_dir(2001));
        assert!(p.uses_shared_dir(1000) && p.uses_shared_dir(3000));
        let listed = list_partition_reassignments(&state, None);
        assert_eq!(
            listed,
            [OngoingReassignment {
                topic: "t".into(),
                partition: 0,
                replicas: p.replicas.clone(),
                adding_replicas: vec![1001, 2001],
                removing_replicas: vec![1000, 2000],
            }]
        );

        // One new replica in sync: not yet.
        assert_eq!(
            leader_sets_isr(&mut state, "t", &[1000, 2000, 3000, 1001]),
            0
        );
        assert!(partition(&state, "t").is_reassigning());
        // Both: the reassignment completes in the same change, and the leaving leader hands
        // over to the first target replica in sync.
        assert_eq!(
            leader_sets_isr(&mut state, "t", &[1000, 2000, 3000, 1001, 2001]),
            ResponseError::NewLeaderElected.code()
        );
        let p = partition(&state, "t");
        assert_eq!(p.replicas, [1001, 2001, 3000]);
        assert_eq!(p.isr, [3000, 1001, 2001]);
        assert_eq!(p.leader, 1001);
        assert!(!p.is_reassigning());
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 3));
        assert!(
            !p.uses_shared_dir(1001),
            "the moved replica keeps its directory"
        );
        assert!(list_partition_reassignments(&state, None).is_empty());
    }

    #[test]
    fn replicas_leaving_bump_the_leader_epoch_even_when_the_leader_stays() {
        let mut state = state();
        alter(&mut state, reassignment("t", 0, Some(&[1000, 2000, 4000])));
        assert_eq!(
            leader_sets_isr(&mut state, "t", &[1000, 2000, 3000, 4000]),
            0
        );
        let p = partition(&state, "t");
        assert_eq!(
            (p.replicas.as_slice(), p.leader),
            (&[1000, 2000, 4000][..], 1000)
        );
        assert_eq!(p.isr, [1000, 2000, 4000]);
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 2));
    }

    #[test]
    fn raising_the_replication_factor_is_a_reassignment_with_more_replicas() {
        let mut state = state();
        assert_eq!(
            alter(
                &mut state,
                reassignment("one", 0, Some(&[1000, 2000, 3000]))
            ),
            (0, None)
        );
        let p = partition(&state, "one");
        assert_eq!(p.adding_replicas, [2000, 3000]);
        assert!(p.removing_replicas.is_empty());
        leader_sets_isr(&mut state, "one", &[1000, 2000]);
        leader_sets_isr(&mut state, "one", &[1000, 2000, 3000]);
        let p = partition(&state, "one");
        assert_eq!(
            (p.replicas.as_slice(), p.isr.as_slice()),
            (&[1000, 2000, 3000][..], &[1000, 2000, 3000][..])
        );
        assert!(!p.is_reassigning());
        // Lowering it, or reordering, completes at once: the targets are in sync.
        alter(&mut state, reassignment("one", 0, Some(&[3000, 1000])));
        let p = partition(&state, "one");
        assert_eq!(
            (p.replicas.as_slice(), p.isr.as_slice()),
            (&[3000, 1000][..], &[1000, 3000][..])
        );
        assert_eq!(p.leader, 1000, "the leader stays while it is in sync");
        assert!(!p.is_reassigning());
    }

    #[test]
    fn a_cancel_reverts_to_the_original_replicas() {
        let mut state = state();
        let before = partition(&state, "t").clone();
        alter(&mut state, reassignment("t", 0, Some(&[1001, 2001, 3000])));
        leader_sets_isr(&mut state, "t", &[1000, 2000, 3000, 1001]);
        let started = partition(&state, "t").clone();
        assert!(started.is_reassigning());
        assert_eq!(alter(&mut state, reassignment("t", 0, None)), (0, None));
        // Back to the replicas before, in the order the reassignment left them (Kafka's).
        let p = partition(&state, "t");
        assert_eq!(p.replicas, [3000, 1000, 2000]);
        assert_eq!(
            (p.isr.as_slice(), p.leader),
            (before.isr.as_slice(), before.leader)
        );
        assert!(!p.is_reassigning());
        assert!(p.shard_dir_replicas.is_empty());
        assert_eq!(
            p.leader_epoch,
            started.leader_epoch + 1,
            "1001 and 2001 left"
        );
        // Nothing left to cancel.
        let (code, message) = alter(&mut state, reassignment("t", 0, None));
        assert_eq!(code, ResponseError::NoReassignmentInProgress.code());
        assert_eq!(
            message.as_deref(),
            Some("No partition reassignment is in progress.")
        );
    }

    #[test]
    fn a_cancel_moves_leadership_back_to_an_original_replica() {
        let mut state = state();
        alter(&mut state, reassignment("one", 0, Some(&[2000, 3000])));
        leader_sets_isr(&mut state, "one", &[1000, 2000]);
        // Broker 1 goes away: 2000, an added replica, leads.
        fence_broker(&mut state, 1, &config());
        let p = partition(&state, "one").clone();
        assert_eq!((p.isr.as_slice(), p.leader), (&[2000][..], 2000));
        // Going back to 1000 alone would take an unclean election.
        let (code, message) = alter(&mut state, reassignment("one", 0, None));
        assert_eq!(code, ResponseError::InvalidReplicaAssignment.code());
        assert_eq!(
            message.as_deref(),
            Some("Unable to revert partition assignment for one:0 because it would require an unclean leader election.")
        );
        state.topics.get_mut("one").unwrap().configs = TopicConfigs::new(
            [(
                "unclean.leader.election.enable".to_string(),
                "true".to_string(),
            )]
            .into(),
        )
        .unwrap();
        assert_eq!(alter(&mut state, reassignment("one", 0, None)).0, 0);
        let p = partition(&state, "one");
        assert_eq!(
            (p.replicas.as_slice(), p.isr.as_slice()),
            (&[1000][..], &[1000][..])
        );
        assert_eq!(
            p.leader, -1,
            "1000's broker is fenced: no leader until it returns"
        );
    }

    #[test]
    fn a_new_target_replaces_the_reassignment_in_progress() {
        let mut state = state();
        alter(&mut state, reassignment("t", 0, Some(&[1000, 2000, 4000])));
        alter(&mut state, reassignment("t", 0, Some(&[1000, 2000, 4001])));
        let p = partition(&state, "t");
        assert_eq!(p.replicas, [1000, 2000, 4001, 3000, 4000]);
        assert_eq!(p.adding_replicas, [4001]);
        assert_eq!(p.removing_replicas, [3000, 4000]);
        // The same target again changes nothing.
        let before = p.clone();
        alter(&mut state, reassignment("t", 0, Some(&[1000, 2000, 4001])));
        assert_eq!(partition(&state, "t"), &before);
    }

    #[test]
    fn requests_are_checked_per_partition_as_kafka_does() {
        let mut state = state();
        let before = serde_json::to_string(&state).unwrap();
        let cases: [(PartitionReassignment, ResponseError, &str); 6] = [
            (
                reassignment("nope", 0, Some(&[1000])),
                ResponseError::UnknownTopicOrPartition,
                "Unable to find a topic named nope.",
            ),
            (
                reassignment("t", 3, Some(&[1000])),
                ResponseError::UnknownTopicOrPartition,
                "Unable to find partition t:3.",
            ),
            (
                reassignment("t", 0, Some(&[])),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes an empty replica list.",
            ),
            (
                reassignment("t", 0, Some(&[1000, 9000])),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes node 9000, but no such node exists (the nodes of this cluster are 1000..=1001, 2000..=2001, 3000..=3001, 4000..=4001)",
            ),
            (
                reassignment("t", 0, Some(&[1000, 2000, 1000])),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes the node 1000 more than once.",
            ),
            (
                reassignment("t", 0, None),
                ResponseError::NoReassignmentInProgress,
                "No partition reassignment is in progress.",
            ),
        ];
        for (r, code, message) in cases {
            assert_eq!(
                alter(&mut state, r.clone()),
                (code.code(), Some(message.to_string())),
                "{r:?}"
            );
        }
        assert_eq!(serde_json::to_string(&state).unwrap(), before);

        // KIP-860: the replica count may be kept.
        let out = alter_partition_reassignments(
            &mut state,
            &config(),
            vec![
                reassignment("t", 0, Some(&[1000, 2000])),
                reassignment("t", 0, Some(&[1001, 2001, 3001])),
            ],
            false,
        );
        assert_eq!(
            out[0].error_code,
            ResponseError::InvalidReplicationFactor.code()
        );
        assert_eq!(
            out[0].error_message.as_deref(),
            Some("The replication factor of t:0 would change from 3 to 2, and the request does not allow replication factor changes.")
        );
        assert_eq!(out[1].error_code, 0);
    }

    #[test]
    fn listing_names_only_partitions_being_reassigned() {
        let mut state = state();
        alter(&mut state, reassignment("one", 0, Some(&[1000, 2000])));
        let wanted = Some(vec![
            ("t".to_string(), vec![0]),
            ("one".to_string(), vec![0, 5]),
            ("nope".to_string(), vec![0]),
        ]);
        let listed = list_partition_reassignments(&state, wanted);
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].topic.as_str(), listed[0].partition), ("one", 0));
        assert_eq!(listed[0].adding_replicas, [2000]);
    }

    #[test]
    fn completion_needs_every_staying_replica_in_sync() {
        let target = |isr: &[i32]| PartitionTarget {
            replicas: vec![1001, 2000, 1000],
            isr: isr.to_vec(),
            adding: vec![1001],
            removing: vec![1000],
        };
        assert_eq!(
            complete_if_in_sync(target(&[1000, 2000])),
            target(&[1000, 2000])
        );
        assert_eq!(complete_if_in_sync(target(&[1000])), target(&[1000]));
        assert_eq!(
            complete_if_in_sync(target(&[1000, 2000, 1001])),
            PartitionTarget {
                replicas: vec![1001, 2000],
                isr: vec![2000, 1001],
                adding: vec![],
                removing: vec![],
            }
        );
    }
}
