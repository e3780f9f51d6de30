//! Partition leadership and ISR changes decided by the controller, as Kafka's
//! `PartitionChangeBuilder` and `ReplicationControlManager` decide them.
//!
//! [`change_partition_to`] is the one rule every change goes through: given a partition, the
//! replicas and ISR it should have and how to elect, it gives the next state (or nothing when
//! nothing changes), completing a reassignment whose target replicas are all in sync
//! ([`change_partition`] is the common case: a new ISR).
//! The leader is kept while it stays in the ISR and acceptable (its broker live), else the first
//! replica (in `replicas` order, the preferred order) in the new ISR that is acceptable leads;
//! with an unclean election allowed and none of them acceptable, the first acceptable replica
//! leads with an ISR of itself alone. An ISR that would become empty keeps its last member
//! (the partition then has no leader until that member returns). The leader epoch is bumped
//! at every change of leader, the partition epoch at every change.
//!
//! Around it, the cluster-level events: a broker fenced or shutting down
//! ([`fence_broker`]: its nodes leave every ISR and lose every leadership), a broker unfenced
//! ([`unfence_broker`]: leaderless partitions whose ISR holds its nodes elect them), the
//! unclean elections of leaderless partitions whose topic allows them ([`elect_leaderless`]),
//! the ElectLeaders API ([`elect_leaders`]) and the automatic return of leadership to the
//! preferred replicas ([`rebalance_preferred_leaders`], `auto.leader.rebalance.enable`).

use crate::config::BrokerConfig;
use crate::messages::{ElectionOutcome, ElectionType};
use crate::metadata::{broker_of_node, ClusterState, PartitionState, TopicState, NO_LEADER};
use kafka_protocol::ResponseError;
use std::collections::BTreeMap;
use tracing::{info, warn};

/// How a change picks the leader (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The preferred replica (the first) if it is in the ISR and acceptable; else as
    /// [`Election::Online`].
    Preferred,
    /// Keep the leader if it stays valid, else the first valid replica of the ISR.
    Online,
    /// As [`Election::Online`], then, when no ISR member is acceptable, any acceptable replica
    /// (data written only to the old ISR may be lost).
    Unclean,
}

/// What a change asks of a partition (the targets of Kafka's `PartitionChangeBuilder`): its
/// replicas, the replicas a reassignment adds and removes, and the ISR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTarget {
    /// The replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas (empty: keep the current ISR, whose last member stays).
    pub isr: Vec<i32>,
    /// The replicas a reassignment adds.
    pub adding: Vec<i32>,
    /// The replicas a reassignment removes.
    pub removing: Vec<i32>,
}

impl PartitionTarget {
    /// `p` with the ISR `isr` and its replicas and reassignment as they are.
    pub fn with_isr(p: &PartitionState, isr: Vec<i32>) -> PartitionTarget {
        PartitionTarget {
            replicas: p.replicas.clone(),
            isr,
            adding: p.adding_replicas.clone(),
            removing: p.removing_replicas.clone(),
        }
    }
}

/// The next state of `p` with the ISR `target_isr` (a subset of its replicas) and a leader
/// elected by `election` among the replicas `acceptable` says may lead (live). `None` when
/// nothing changes. A reassignment in progress completes when the ISR allows it (see
/// [`change_partition_to`]).
pub fn change_partition(
    p: &PartitionState,
    target_isr: Vec<i32>,
    election: Election,
    acceptable: impl Fn(i32) -> bool,
) -> Option<PartitionState> {
    change_partition_to(
        p,
        PartitionTarget::with_isr(p, target_isr),
        election,
        acceptable,
    )
}

/// The next state of `p` for `target`, `None` when nothing changes: first a reassignment in
/// progress completes if the target ISR holds every target replica
/// ([`super::reassignment::complete_if_in_sync`]); then the leader is elected by `election`
/// among the target replicas, in their order; replicas leaving the partition bump the leader
/// epoch even when the leader stays (they must not fetch in the old epoch), and every change
/// bumps the partition epoch. Replicas keep their directories
/// ([`PartitionState::set_replicas`]).
pub fn change_partition_to(
    p: &PartitionState,
    target: PartitionTarget,
    election: Election,
    acceptable: impl Fn(i32) -> bool,
) -> Option<PartitionState> {
    let target = super::reassignment::complete_if_in_sync(target);
    let target_isr = &target.isr;
    let valid = |n: i32| target_isr.contains(&n) && acceptable(n);
    let current_valid = p.leader != NO_LEADER && valid(p.leader);
    let preferred = target.replicas.first().copied().unwrap_or(NO_LEADER);
    let (leader, unclean) = if election == Election::Preferred && valid(preferred) {
        (preferred, false)
    } else if current_valid {
        (p.leader, false)
    } else if let Some(n) = target.replicas.iter().copied().find(|n| valid(*n)) {
        (n, false)
    } else if election == Election::Unclean {
        match target.replicas.iter().copied().find(|n| acceptable(*n)) {
            Some(n) => (n, true),
            None => (NO_LEADER, false),
        }
    } else {
        (NO_LEADER, false)
    };
    let mut next = p.clone();
    let replicas_leave = p.replicas.iter().any(|r| !target.replicas.contains(r));
    if leader != p.leader || replicas_leave {
        next.leader = leader;
        next.leader_epoch += 1;
    }
    if unclean && leader != p.leader {
        next.isr = vec![leader];
    } else if !target.isr.is_empty() {
        next.isr = target.isr;
    }
    if next.replicas != target.replicas {
        next.set_replicas(target.replicas);
    }
    next.adding_replicas = target.adding;
    next.removing_replicas = target.removing;
    if next == *p {
        return None;
    }
    next.partition_epoch += 1;
    debug_assert_eq!(
        next.check(),
        Ok(()),
        "a partition change keeps the invariants"
    );
    Some(next)
}

/// Whether `topic` allows unclean leader elections: its `unclean.leader.election.enable`,
/// else the dynamic broker defaults, else `config`'s.
pub fn unclean_allowed(topic: &TopicState, config: &BrokerConfig, state: &ClusterState) -> bool {
    topic
        .configs
        .effective(config, &state.broker_configs)
        .unclean_leader_election_enable
}

/// What a cluster-level change did to the partitions, for the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changed {
    /// Partitions whose state changed.
    pub partitions: usize,
    /// Of which, leaders elected outside the ISR: `topic-index`.
    pub unclean: Vec<String>,
}

impl Changed {
    /// Logs the change of `what` (a broker fenced, say) when it changed anything.
    pub fn log(&self, what: &str) {
        if self.partitions > 0 {
            info!(
                "{what}: changed the leader or ISR of {} partition(s)",
                self.partitions
            );
        }
        for p in &self.unclean {
            warn!("{what}: unclean leader election for {p} (unclean.leader.election.enable): records only the old ISR had may be lost");
        }
    }
}

/// Applies `change` to every partition of `state` (with its topic's unclean setting), counting
/// what changed.
fn change_all(
    state: &mut ClusterState,
    config: &BrokerConfig,
    change: impl Fn(&PartitionState, Election, &ClusterState) -> Option<PartitionState>,
) -> Changed {
    let mut changed = Changed::default();
    let names: Vec<String> = state.topics.keys().cloned().collect();
    for name in names {
        let Some(topic) = state.topics.get(&name) else {
            continue;
        };
        let election = if unclean_allowed(topic, config, state) {
            Election::Unclean
        } else {
            Election::Online
        };
        let updates: Vec<(usize, PartitionState)> = topic
            .partitions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let next = change(p, election, state)?;
                if !p.isr.contains(&next.leader) && next.leader != NO_LEADER {
                    changed.unclean.push(format!("{name}-{i}"));
                }
                Some((i, next))
            })
            .collect();
        changed.partitions += updates.len();
        if let Some(topic) = state.topics.get_mut(&name) {
            for (i, next) in updates {
                topic.partitions[i] = next;
            }
        }
    }
    changed
}

/// Fences broker `id` (its heartbeats stopped, it shuts down, or a new incarnation of it
/// registers): its nodes leave the ISR of every partition (the last member stays) and every
/// partition it leads elects a new leader among the live ISR, or none. Kafka's
/// `handleBrokerFenced` and `handleBrokerInControlledShutdown`.
pub fn fence_broker(state: &mut ClusterState, id: i32, config: &BrokerConfig) -> Changed {
    if let Some(b) = state.brokers.get_mut(&id) {
        b.fenced = true;
    }
    change_all(state, config, |p, election, state| {
        let involved =
            broker_of_node(p.leader) == id || p.isr.iter().any(|n| broker_of_node(*n) == id);
        if !involved {
            return None;
        }
        let target_isr: Vec<i32> = p
            .isr
            .iter()
            .copied()
            .filter(|n| broker_of_node(*n) != id)
            .collect();
        change_partition(p, target_isr, election, |n| state.is_live_node(n))
    })
}

/// Unfences broker `id` (it caught up with the metadata log): the partitions without a leader
/// elect one — its nodes among them, when they are in the ISR. Kafka's `handleBrokerUnfenced`.
pub fn unfence_broker(state: &mut ClusterState, id: i32, config: &BrokerConfig) -> Changed {
    if let Some(b) = state.brokers.get_mut(&id) {
        b.fenced = false;
    }
    elect_leaderless(state, config)
}

/// Whether some partition has no leader and can get one from [`elect_leaderless`] (a cheap
/// check, before the controller builds a new state).
pub fn leaderless_electable(state: &ClusterState, config: &BrokerConfig) -> bool {
    state.topics.values().any(|topic| {
        let mut unclean = None;
        topic.partitions.iter().any(|p| {
            p.leader == NO_LEADER
                && (p.isr.iter().any(|n| state.is_live_node(*n))
                    || (*unclean.get_or_insert_with(|| unclean_allowed(topic, config, state))
                        && p.replicas.iter().any(|n| state.is_live_node(*n))))
        })
    })
}

/// Elects a leader for every partition that has none and can get one: from its ISR when a
/// member is live, else, where the topic allows unclean elections, from its other live
/// replicas. Kafka's election of offline partitions.
pub fn elect_leaderless(state: &mut ClusterState, config: &BrokerConfig) -> Changed {
    change_all(state, config, |p, election, state| {
        if p.leader != NO_LEADER {
            return None;
        }
        change_partition(p, p.isr.clone(), election, |n| state.is_live_node(n))
    })
}

/// ElectLeaders: elects the leader `election` asks for on `partitions` (every partition when
/// `None`), as Kafka's `ReplicationControlManager.electLeaders` does. Per partition:
/// UNKNOWN_TOPIC_OR_PARTITION; ELECTION_NOT_NEEDED when the preferred replica already leads
/// (preferred) or the partition has a leader (unclean) — such partitions are left out of the
/// answer for an election of every partition; PREFERRED_LEADER_NOT_AVAILABLE /
/// ELIGIBLE_LEADERS_NOT_AVAILABLE when nothing could change. An unclean election here does not
/// depend on the topic's `unclean.leader.election.enable`: the operator asked for it.
pub fn elect_leaders(
    state: &mut ClusterState,
    election: ElectionType,
    partitions: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<ElectionOutcome> {
    let every = partitions.is_none();
    let targets = partitions.unwrap_or_else(|| {
        state
            .topics
            .iter()
            .map(|(name, t)| (name.clone(), (0..t.partitions.len() as i32).collect()))
            .collect()
    });
    let mut outcomes = Vec::new();
    for (topic, indexes) in targets {
        for index in indexes {
            let (error_code, error_message) = match elect_one(state, election, &topic, index) {
                Ok(()) => (0, None),
                Err((ResponseError::ElectionNotNeeded, _)) if every => continue,
                Err((code, message)) => (code.code(), message),
            };
            outcomes.push(ElectionOutcome {
                topic: topic.clone(),
                partition: index,
                error_code,
                error_message,
            });
        }
    }
    outcomes
}

/// One partition of [`elect_leaders`]: elected, or the error and its message.
fn elect_one(
    state: &mut ClusterState,
    election: ElectionType,
    topic: &str,
    index: i32,
) -> Result<(), (ResponseError, Option<String>)> {
    let Some(p) = state
        .topics
        .get(topic)
        .and_then(|t| t.partitions.get(usize::try_from(index).ok()?))
    else {
        let message = if state.topics.contains_key(topic) {
            format!("No such partition as {topic}-{index}")
        } else {
            format!("No such topic as {topic}")
        };
        return Err((ResponseError::UnknownTopicOrPartition, Some(message)));
    };
    let (needed, rule, unavailable) = match election {
        ElectionType::Preferred => (
            p.leader != p.preferred_leader(),
            Election::Preferred,
            ResponseError::PreferredLeaderNotAvailable,
        ),
        ElectionType::Unclean => (
            p.leader == NO_LEADER,
            Election::Unclean,
            ResponseError::EligibleLeadersNotAvailable,
        ),
    };
    if !needed {
        return Err((ResponseError::ElectionNotNeeded, None));
    }
    let Some(next) = change_partition(p, p.isr.clone(), rule, |n| state.is_live_node(n)) else {
        let message = format!(
            "{topic}-{index}: no replica can lead (replicas {:?}, in sync {:?}, leader {})",
            p.replicas, p.isr, p.leader
        );
        return Err((unavailable, Some(message)));
    };
    if let Some(slot) = state
        .topics
        .get_mut(topic)
        .and_then(|t| t.partitions.get_mut(index as usize))
    {
        *slot = next;
    }
    Ok(())
}

/// The automatic preferred-leader election (`auto.leader.rebalance.enable`, checked every
/// `leader.imbalance.check.interval.seconds`): for each broker whose share of the partitions it
/// is the preferred leader of (first replica on one of its nodes) but does not lead exceeds
/// `leader.imbalance.per.broker.percentage`, those partitions move their leadership back to
/// the preferred replica — only where it is live and in sync.
pub fn rebalance_preferred_leaders(state: &mut ClusterState, config: &BrokerConfig) -> Changed {
    // Per broker: (partitions it is preferred leader of, those led elsewhere).
    let mut per_broker: BTreeMap<i32, (u64, Vec<(String, usize)>)> = BTreeMap::new();
    for (name, topic) in &state.topics {
        for (i, p) in topic.partitions.iter().enumerate() {
            let entry = per_broker
                .entry(broker_of_node(p.preferred_leader()))
                .or_default();
            entry.0 += 1;
            if p.leader != p.preferred_leader() {
                entry.1.push((name.clone(), i));
            }
        }
    }
    let threshold = f64::from(config.leader_imbalance_per_broker_percentage) / 100.0;
    let mut changed = Changed::default();
    for (preferred, imbalanced) in per_broker.into_values() {
        if imbalanced.is_empty() || imbalanced.len() as f64 / preferred as f64 <= threshold {
            continue;
        }
        for (name, i) in imbalanced {
            let Some(p) = state.topics.get(&name).map(|t| &t.partitions[i]) else {
                continue;
            };
            let next = change_partition(p, p.isr.clone(), Election::Preferred, |n| {
                state.is_live_node(n)
            });
            if let Some(next) = next.filter(|n| n.leader == n.preferred_leader()) {
                if let Some(t) = state.topics.get_mut(&name) {
                    t.partitions[i] = next;
                    changed.partitions += 1;
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfigs;
    use crate::controller::tests::cluster;
    use uuid::Uuid;

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            isr: isr.to_vec(),
            leader,
            leader_epoch: 5,
            partition_epoch: 9,
            ..PartitionState::new(replicas.to_vec(), |_| true).unwrap()
        }
    }

    fn epochs(p: &PartitionState) -> (i32, i32) {
        (p.leader_epoch, p.partition_epoch)
    }

    fn config() -> BrokerConfig {
        BrokerConfig::load(None, &[]).unwrap()
    }

    fn with_topic(
        mut state: ClusterState,
        name: &str,
        partitions: Vec<PartitionState>,
    ) -> ClusterState {
        state.topics.insert(
            name.into(),
            TopicState {
                id: Uuid::new_v4(),
                partitions,
                configs: TopicConfigs::default(),
                internal: false,
            },
        );
        state
    }

    #[test]
    fn the_leader_stays_while_it_is_valid() {
        let p = partition(&[1000, 2000, 3000], &[1000, 2000, 3000], 2000);
        assert_eq!(
            change_partition(&p, p.isr.clone(), Election::Online, |_| true),
            None
        );
        // ISR shrink without the leader: only the partition epoch moves.
        let next = change_partition(&p, vec![1000, 2000], Election::Online, |_| true).unwrap();
        assert_eq!(
            (next.leader, next.isr.as_slice()),
            (2000, &[1000, 2000][..])
        );
        assert_eq!(epochs(&next), (5, 10));
    }

    #[test]
    fn a_new_leader_comes_from_the_isr_in_replica_order() {
        let p = partition(&[1000, 2000, 3000], &[3000, 2000, 1000], 1000);
        let next = change_partition(&p, vec![3000, 2000], Election::Online, |_| true).unwrap();
        assert_eq!(
            next.leader, 2000,
            "the first replica of the new ISR, in replicas order"
        );
        assert_eq!(next.isr, [3000, 2000]);
        assert_eq!(epochs(&next), (6, 10));
        // ISR members that may not lead (fenced) are skipped.
        let next = change_partition(&p, vec![3000, 2000], Election::Online, |n| n != 2000).unwrap();
        assert_eq!(next.leader, 3000);
    }

    #[test]
    fn the_last_isr_member_stays_and_the_partition_has_no_leader() {
        let p = partition(&[1000, 2000], &[1000], 1000);
        let next = change_partition(&p, vec![], Election::Online, |n| n != 1000).unwrap();
        assert_eq!((next.leader, next.isr.as_slice()), (NO_LEADER, &[1000][..]));
        assert_eq!(epochs(&next), (6, 10));
        // No ISR member acceptable: no leader, even with another live replica.
        let p = partition(&[1000, 2000], &[1000, 2000], 1000);
        let next = change_partition(&p, vec![2000], Election::Online, |n| n == 1000).unwrap();
        assert_eq!((next.leader, next.isr.as_slice()), (NO_LEADER, &[2000][..]));
    }

    #[test]
    fn an_unclean_election_takes_any_live_replica_with_an_isr_of_itself() {
        let p = partition(&[1000, 2000, 3000], &[1000], NO_LEADER);
        let live = |n: i32| n == 3000;
        assert_eq!(
            change_partition(&p, p.isr.clone(), Election::Online, live),
            None
        );
        let next = change_partition(&p, p.isr.clone(), Election::Unclean, live).unwrap();
        assert_eq!((next.leader, next.isr.as_slice()), (3000, &[3000][..]));
        assert_eq!(epochs(&next), (6, 10));
        // With a live ISR member, the election is clean.
        let next = change_partition(&p, p.isr.clone(), Election::Unclean, |_| true).unwrap();
        assert_eq!((next.leader, next.isr.as_slice()), (1000, &[1000][..]));
        // Nobody live: nothing changes.
        assert_eq!(
            change_partition(&p, p.isr.clone(), Election::Unclean, |_| false),
            None
        );
    }

    #[test]
    fn a_preferred_election_moves_leadership_to_the_first_replica_if_it_is_in_sync() {
        let p = partition(&[1000, 2000], &[1000, 2000], 2000);
        let next = change_partition(&p, p.isr.clone(), Election::Preferred, |_| true).unwrap();
        assert_eq!(next.leader, 1000);
        assert_eq!(epochs(&next), (6, 10));
        let out_of_sync = partition(&[1000, 2000], &[2000], 2000);
        assert_eq!(
            change_partition(&out_of_sync, vec![2000], Election::Preferred, |_| true),
            None
        );
        assert_eq!(
            change_partition(&p, p.isr.clone(), Election::Preferred, |n| n != 1000),
            None
        );
    }

    #[test]
    fn a_fenced_broker_leaves_every_isr_and_every_leadership() {
        let config = config();
        let mut state = with_topic(
            cluster(3, 2),
            "t",
            vec![
                partition(&[1000, 2000, 3000], &[1000, 2000, 3000], 1000),
                partition(&[2000, 1001, 3000], &[2000, 1001, 3000], 2000),
                partition(&[1001], &[1001], 1001),
                partition(&[2001, 3001], &[2001, 3001], 2001),
            ],
        );
        let changed = fence_broker(&mut state, 1, &config);
        assert!(state.brokers[&1].fenced);
        assert_eq!(changed.partitions, 3);
        assert!(changed.unclean.is_empty());
        let t = &state.topics["t"].partitions;
        assert_eq!(
            (t[0].leader, t[0].isr.as_slice()),
            (2000, &[2000, 3000][..])
        );
        assert_eq!(epochs(&t[0]), (6, 10));
        assert_eq!(
            (t[1].leader, t[1].isr.as_slice()),
            (2000, &[2000, 3000][..])
        );
        assert_eq!(epochs(&t[1]), (5, 10), "an ISR change only");
        assert_eq!((t[2].leader, t[2].isr.as_slice()), (NO_LEADER, &[1001][..]));
        assert_eq!(epochs(&t[3]), (5, 9), "untouched");

        // Back: the leaderless partition whose ISR holds its node elects it.
        let changed = unfence_broker(&mut state, 1, &config);
        assert!(!state.brokers[&1].fenced);
        assert_eq!(changed.partitions, 1);
        let t = &state.topics["t"].partitions;
        assert_eq!((t[2].leader, epochs(&t[2])), (1001, (7, 11)));
        assert_eq!(
            t[0].leader, 2000,
            "leadership stays until a preferred election"
        );
    }

    #[test]
    fn fencing_the_last_live_isr_member_elects_uncleanly_only_where_the_topic_allows() {
        let config = config();
        let fenced_isr = || partition(&[1000, 2000], &[1000], 1000);
        let mut state = with_topic(cluster(2, 1), "clean", vec![fenced_isr()]);
        state = with_topic(state, "unclean", vec![fenced_isr()]);
        state
            .topics
            .get_mut("unclean")
            .unwrap()
            .configs
            .set("unclean.leader.election.enable", "true")
            .unwrap();
        let changed = fence_broker(&mut state, 1, &config);
        assert_eq!(changed.unclean, ["unclean-0"]);
        assert!(!leaderless_electable(&state, &config));
        let clean = &state.topics["clean"].partitions[0];
        assert_eq!(
            (clean.leader, clean.isr.as_slice()),
            (NO_LEADER, &[1000][..])
        );
        let unclean = &state.topics["unclean"].partitions[0];
        assert_eq!(
            (unclean.leader, unclean.isr.as_slice()),
            (2000, &[2000][..])
        );

        // Turned on later (dynamically): the next check elects.
        state
            .topics
            .get_mut("clean")
            .unwrap()
            .configs
            .set("unclean.leader.election.enable", "true")
            .unwrap();
        assert!(leaderless_electable(&state, &config));
        let changed = elect_leaderless(&mut state, &config);
        assert_eq!(changed.unclean, ["clean-0"]);
        assert!(!leaderless_electable(&state, &config));
        assert_eq!(state.topics["clean"].partitions[0].leader, 2000);
    }

    #[test]
    fn the_broker_default_allows_unclean_elections_too() {
        let config =
            BrokerConfig::load(None, &["unclean.leader.election.enable=true".to_string()]).unwrap();
        let mut state = with_topic(
            cluster(2, 1),
            "t",
            vec![partition(&[1000, 2000], &[1000], 1000)],
        );
        fence_broker(&mut state, 1, &config);
        assert_eq!(state.topics["t"].partitions[0].leader, 2000);
    }

    #[test]
    #[should_panic(expected = "a partition change keeps the invariants")]
    fn a_change_to_an_isr_outside_the_replicas_is_caught() {
        let p = partition(&[1000, 2000], &[1000, 2000], 1000);
        change_partition(&p, vec![4242], Election::Online, |_| true);
    }

    #[test]
    fn elect_leaders_answers_per_partition_as_kafka_does() {
        let mut state = with_topic(
            cluster(3, 1),
            "t",
            vec![
                partition(&[1000, 2000], &[1000, 2000], 2000),
                partition(&[1000, 2000], &[1000, 2000], 1000),
                partition(&[3000, 2000], &[2000], 2000),
                partition(&[1000, 3000], &[1000], NO_LEADER),
            ],
        );
        state.brokers.get_mut(&1).unwrap().fenced = true;
        let all = Some(vec![
            ("t".to_string(), vec![0, 1, 2, 3, 4]),
            ("u".to_string(), vec![0]),
        ]);
        let codes = |out: &[ElectionOutcome]| -> Vec<(String, i32, i16)> {
            out.iter()
                .map(|o| (o.topic.clone(), o.partition, o.error_code))
                .collect()
        };
        // Broker 1 is fenced: partition 0's preferred replica cannot lead.
        let out = elect_leaders(&mut state, ElectionType::Preferred, all.clone());
        let t = |p: i32, e: Option<ResponseError>| ("t".to_string(), p, e.map_or(0, |e| e.code()));
        use ResponseError as E;
        assert_eq!(
            codes(&out),
            [
                t(0, Some(E::PreferredLeaderNotAvailable)),
                t(1, Some(E::ElectionNotNeeded)),
                t(2, Some(E::PreferredLeaderNotAvailable)),
                t(3, Some(E::PreferredLeaderNotAvailable)),
                t(4, Some(E::UnknownTopicOrPartition)),
                (
                    "u".to_string(),
                    0,
                    ResponseError::UnknownTopicOrPartition.code()
                ),
            ]
        );
        state.brokers.get_mut(&1).unwrap().fenced = false;
        let out = elect_leaders(&mut state, ElectionType::Preferred, None);
        assert_eq!(
            codes(&out),
            [
                t(0, None),
                t(2, Some(E::PreferredLeaderNotAvailable)),
                t(3, None),
            ],
            "an election of every partition leaves out those that need none"
        );
        let p = &state.topics["t"].partitions;
        assert_eq!((p[0].leader, epochs(&p[0])), (1000, (6, 10)));
        assert_eq!(p[3].leader, 1000, "the preferred replica, live again");

        // Unclean: only for partitions without a leader, from any live replica.
        state.topics.get_mut("t").unwrap().partitions[3] =
            partition(&[1000, 3000], &[1000], NO_LEADER);
        state.brokers.get_mut(&1).unwrap().fenced = true;
        let out = elect_leaders(
            &mut state,
            ElectionType::Unclean,
            Some(vec![("t".to_string(), vec![2, 3])]),
        );
        assert_eq!(codes(&out), [t(2, Some(E::ElectionNotNeeded)), t(3, None)]);
        let p = &state.topics["t"].partitions[3];
        assert_eq!((p.leader, p.isr.as_slice()), (3000, &[3000][..]));
    }

    #[test]
    fn leadership_returns_to_preferred_replicas_over_the_imbalance_percentage() {
        let config = config();
        // Broker 1 is the preferred leader of 10 partitions; 2 are led by broker 2 (20 % > 10 %).
        let mut partitions: Vec<PartitionState> = (0..8)
            .map(|_| partition(&[1000, 2000], &[1000, 2000], 1000))
            .collect();
        partitions.push(partition(&[1000, 2000], &[1000, 2000], 2000));
        partitions.push(partition(&[1000, 2000], &[2000], 2000));
        let mut state = with_topic(cluster(2, 1), "t", partitions);
        let changed = rebalance_preferred_leaders(&mut state, &config);
        assert_eq!(
            changed.partitions, 1,
            "the one whose preferred replica is in sync"
        );
        let p = &state.topics["t"].partitions;
        assert_eq!((p[8].leader, epochs(&p[8])), (1000, (6, 10)));
        assert_eq!(p[9].leader, 2000);

        // 1 of 10 led elsewhere: 10 % is not above 10 %.
        state.topics.get_mut("t").unwrap().partitions[9] =
            partition(&[1000, 2000], &[1000, 2000], 2000);
        state.topics.get_mut("t").unwrap().partitions[8] =
            partition(&[1000, 2000], &[1000, 2000], 1000);
        assert_eq!(
            rebalance_preferred_leaders(&mut state, &config).partitions,
            0
        );
        let strict = BrokerConfig::load(
            None,
            &["leader.imbalance.per.broker.percentage=0".to_string()],
        )
        .unwrap();
        assert_eq!(
            rebalance_preferred_leaders(&mut state, &strict).partitions,
            1
        );
    }
}
