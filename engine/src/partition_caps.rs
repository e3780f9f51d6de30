//! The partition caps (`sluice.max.partitions.per.broker`, `sluice.max.partitions.per.shard`)
//! and the placement of new partition replicas under them.
//!
//! Every replica costs its shard open files (at least the active segment's log and indexes)
//! and memory, and one core serves all of its shard's replicas, so a broker can only hold so
//! many; the caps count replicas, leaders and followers alike. The controller places the
//! partitions of one request through one [`PartitionBudget`]: each topic's replica count is
//! checked against what is left of both caps *before* anything is allocated for it (so a count
//! of 2^31-1 costs nothing), and a topic that does not fit is refused with POLICY_VIOLATION
//! while the ones before it keep their place — the request's total is validated topic by
//! topic, as Kafka answers per topic.
//!
//! Placement follows the ideas of Kafka's `StripedReplicaPlacer`, with shards as the nodes
//! clients see and brokers as failure domains (DESIGN §1):
//!
//! * a partition's replicas go on distinct racks first (when `broker.rack` is set), then on
//!   distinct brokers, and only then share a broker on distinct shards; never two on one node;
//! * its leader (the first replica) goes to the broker that is preferred leader of the fewest
//!   partitions, on that broker's shard that leads the fewest, so that leadership spreads evenly
//!   over brokers and then shards;
//! * each follower goes, among the nodes left, to the broker holding the fewest replicas and
//!   its least-loaded shard, the brokers after the leader's in id order breaking ties (the
//!   stripe).

use crate::config::BrokerConfig;
use crate::metadata::{broker_of_node, node_id, shard_of_node, ClusterState};
use kafka_protocol::ResponseError;

/// Why partitions are capped, for the error messages.
const WHY: &str = "each partition replica holds open files and memory, and one core serves all \
                   of its shard's replicas, so the cap keeps the broker within its file \
                   descriptors and memory";

/// A refusal: the Kafka error and its message.
pub type Refusal = (ResponseError, String);

/// The replicas one live broker holds, per shard.
#[derive(Debug, Clone)]
struct BrokerLoad {
    id: i32,
    rack: Option<String>,
    /// Replicas per shard.
    shards: Vec<u64>,
    /// Partitions whose preferred leader (first replica) is each shard.
    leaders: Vec<u64>,
}

impl BrokerLoad {
    fn total(&self) -> u64 {
        self.shards.iter().sum()
    }

    fn total_leaders(&self) -> u64 {
        self.leaders.iter().sum()
    }
}

/// What is left of the partition caps while one controller command places partitions.
#[derive(Debug, Clone)]
pub struct PartitionBudget {
    brokers: Vec<BrokerLoad>,
    per_broker: u64,
    per_shard: u64,
}

impl PartitionBudget {
    /// The budget of the live brokers of `state`, ordered by id.
    pub fn new(state: &ClusterState, config: &BrokerConfig) -> PartitionBudget {
        let mut brokers: Vec<BrokerLoad> = state
            .live_brokers()
            .map(|b| BrokerLoad {
                id: b.id,
                rack: b.rack.clone(),
                shards: state.shard_load(b.id, b.shards),
                leaders: vec![0; b.shards as usize],
            })
            .collect();
        for p in state.topics.values().flat_map(|t| &t.partitions) {
            let preferred = p.preferred_leader();
            if let Some(b) = brokers
                .iter_mut()
                .find(|b| b.id == broker_of_node(preferred))
            {
                if let Some(slot) = b.leaders.get_mut(shard_of_node(preferred) as usize) {
                    *slot += 1;
                }
            }
        }
        PartitionBudget {
            brokers,
            per_broker: config.max_partitions_per_broker,
            per_shard: config.max_partitions_per_shard,
        }
    }

    /// How many nodes (shards of live brokers) there are to place replicas on.
    pub fn live_nodes(&self) -> usize {
        self.brokers.iter().map(|b| b.shards.len()).sum()
    }

    /// How many more replicas broker `b` can take under both caps.
    fn free(&self, b: &BrokerLoad) -> u64 {
        let shard_room: u64 = b
            .shards
            .iter()
            .map(|l| self.per_shard.saturating_sub(*l))
            .sum();
        shard_room.min(self.per_broker.saturating_sub(b.total()))
    }

    /// Whether shard `shard` of broker `b` can take one more replica.
    fn has_room(&self, b: &BrokerLoad, shard: usize) -> bool {
        b.shards[shard] < self.per_shard && b.total() < self.per_broker
    }

    /// Places `count` new partitions of `topic` with `replication_factor` replicas each (see
    /// the module docs), or refuses them all: INVALID_REPLICATION_FACTOR when there are fewer
    /// live nodes than replicas (Kafka's message), POLICY_VIOLATION when they would exceed a
    /// cap. Returns each partition's replica node ids, preferred leader first. Nothing is
    /// allocated before the checks pass.
    pub fn place(
        &mut self,
        topic: &str,
        count: u64,
        replication_factor: i16,
    ) -> Result<Vec<Vec<i32>>, Refusal> {
        if self.brokers.is_empty() {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!("Cannot place the partitions of topic '{topic}': no broker is registered and unfenced. Start a broker, or wait until the brokers have registered with the controller quorum."),
            ));
        }
        let rf = u64::try_from(replication_factor).unwrap_or(0);
        if rf == 0 {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!("Invalid replication factor {replication_factor}: the replication factor must be positive."),
            ));
        }
        let nodes = self.live_nodes();
        if rf > nodes as u64 {
            return Err((
                ResponseError::InvalidReplicationFactor,
                too_few_nodes(replication_factor, nodes),
            ));
        }
        let replicas = count.saturating_mul(rf);
        let broker_room: u64 = self
            .brokers
            .iter()
            .map(|b| self.per_broker.saturating_sub(b.total()))
            .sum();
        if replicas > broker_room {
            let held: u64 = self.brokers.iter().map(BrokerLoad::total).sum();
            return Err((
                ResponseError::PolicyViolation,
                format!(
                    "Cannot add {count} partition(s) for topic '{topic}' ({replicas} replica(s) at replication factor {rf}): the {} live broker(s) hold {held} partition(s), \
                     replicas counted (with the earlier topics of this request), and sluice.max.partitions.per.broker={} allows {broker_room} more ({WHY}). \
                     Delete topics or raise the limit.",
                    self.brokers.len(),
                    self.per_broker
                ),
            ));
        }
        let free: u64 = self.brokers.iter().map(|b| self.free(b)).sum();
        if replicas > free {
            return Err((
                ResponseError::PolicyViolation,
                format!(
                    "Cannot add {count} partition(s) for topic '{topic}' ({replicas} replica(s) at replication factor {rf}): sluice.max.partitions.per.shard={} allows {free} more \
                     on the live brokers' {nodes} shard(s) ({WHY}). Delete topics or raise the limit.",
                    self.per_shard
                ),
            ));
        }
        let before = self.brokers.clone();
        let mut placed = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            match self.place_one(rf as usize) {
                Some(replicas) => placed.push(replicas),
                None => {
                    self.brokers = before;
                    return Err((
                        ResponseError::PolicyViolation,
                        format!(
                            "Cannot place the partitions of topic '{topic}': the caps (sluice.max.partitions.per.shard={}, \
                             sluice.max.partitions.per.broker={}) leave fewer than {rf} distinct nodes with room for a partition's replicas ({WHY}). \
                             Delete topics, lower the replication factor or raise the limits.",
                            self.per_shard, self.per_broker
                        ),
                    ));
                }
            }
        }
        Ok(placed)
    }

    /// Places one partition's `rf` replicas, or `None` when the caps leave too few nodes.
    fn place_one(&mut self, rf: usize) -> Option<Vec<i32>> {
        let (leader_broker, leader_shard) = self.choose_leader()?;
        self.take(leader_broker, leader_shard, true);
        let mut chosen = vec![(leader_broker, leader_shard)];
        while chosen.len() < rf {
            let (b, s) = self.choose_follower(&chosen)?;
            self.take(b, s, false);
            chosen.push((b, s));
        }
        let replicas: Vec<i32> = chosen
            .iter()
            .map(|&(b, s)| node_id(self.brokers[b].id, s as u32))
            .collect();
        debug_assert!(
            (1..replicas.len()).all(|i| !replicas[..i].contains(&replicas[i])),
            "never two replicas of a partition on one node: {replicas:?}"
        );
        Some(replicas)
    }

    /// The node to lead a new partition: the broker preferred leader of the fewest partitions
    /// (then holding the fewest replicas), its shard leading the fewest (then least loaded).
    fn choose_leader(&self) -> Option<(usize, usize)> {
        (0..self.brokers.len())
            .flat_map(|b| (0..self.brokers[b].shards.len()).map(move |s| (b, s)))
            .filter(|&(b, s)| self.has_room(&self.brokers[b], s))
            .min_by_key(|&(b, s)| {
                let broker = &self.brokers[b];
                (
                    broker.total_leaders(),
                    broker.total(),
                    b,
                    broker.leaders[s],
                    broker.shards[s],
                    s,
                )
            })
    }

    /// The node for the next follower of a partition whose replicas so far are `chosen`: on a
    /// rack, then a broker, holding fewest of them; then the broker with the fewest replicas,
    /// its least-loaded shard, the brokers after the leader's first.
    fn choose_follower(&self, chosen: &[(usize, usize)]) -> Option<(usize, usize)> {
        let leader_broker = chosen.first().map_or(0, |c| c.0);
        let count = self.brokers.len();
        (0..count)
            .flat_map(|b| (0..self.brokers[b].shards.len()).map(move |s| (b, s)))
            .filter(|&(b, s)| !chosen.contains(&(b, s)) && self.has_room(&self.brokers[b], s))
            .min_by_key(|&(b, s)| {
                let broker = &self.brokers[b];
                let same_rack = chosen
                    .iter()
                    .filter(|c| self.brokers[c.0].rack == broker.rack)
                    .count();
                let same_broker = chosen.iter().filter(|c| c.0 == b).count();
                (
                    same_rack,
                    same_broker,
                    broker.total(),
                    broker.shards[s],
                    (b + count - leader_broker) % count,
                    s,
                )
            })
    }

    /// Counts one more replica (and preferred leader, if `leader`) on shard `s` of broker `b`.
    fn take(&mut self, b: usize, s: usize, leader: bool) {
        let broker = &mut self.brokers[b];
        broker.shards[s] += 1;
        if leader {
            broker.leaders[s] += 1;
        }
        debug_assert!(broker.shards[s] <= self.per_shard && broker.total() <= self.per_broker);
    }

    /// Places new partitions of `topic` on the given replica nodes (manual assignments, each
    /// list preferred leader first), or refuses them all (POLICY_VIOLATION) when they would
    /// exceed a cap. Nodes of brokers that are not live cost nothing here.
    pub fn place_on(&mut self, topic: &str, assignments: &[Vec<i32>]) -> Result<(), Refusal> {
        let before = self.brokers.clone();
        for replicas in assignments {
            for (i, &node) in replicas.iter().enumerate() {
                let Some(b) = self
                    .brokers
                    .iter_mut()
                    .find(|b| b.id == broker_of_node(node))
                else {
                    continue;
                };
                let shard = shard_of_node(node) as usize;
                let Some(slot) = b.shards.get_mut(shard) else {
                    continue;
                };
                *slot += 1;
                let held = *slot;
                if i == 0 {
                    b.leaders[shard] += 1;
                }
                let total = b.total();
                let id = b.id;
                if held > self.per_shard {
                    self.brokers = before;
                    return Err((
                        ResponseError::PolicyViolation,
                        format!(
                            "Cannot place the new partitions of topic '{topic}': node {node} would hold {held} partitions, over \
                             sluice.max.partitions.per.shard={} ({WHY}). Assign them to other nodes, delete topics or raise the limit.",
                            self.per_shard
                        ),
                    ));
                }
                if total > self.per_broker {
                    self.brokers = before;
                    return Err((
                        ResponseError::PolicyViolation,
                        format!(
                            "Cannot place the new partitions of topic '{topic}': broker {id} would hold {total} partitions, over \
                             sluice.max.partitions.per.broker={} ({WHY}). Assign them to other brokers, delete topics or raise the limit.",
                            self.per_broker
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Kafka's INVALID_REPLICATION_FACTOR message when there are fewer nodes than replicas; the
/// "brokers" Kafka counts are, for clients, the shard nodes of the live brokers.
pub fn too_few_nodes(replication_factor: i16, nodes: usize) -> String {
    format!(
        "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} \
         cannot be reached because only {nodes} broker(s) are registered. (Sluice counts the shard nodes of the registered, \
         unfenced brokers: each shard is a Kafka node.)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A budget over brokers 1, 2, … with the given replicas per shard, no preferred leaders,
    /// and no racks.
    fn budget(per_broker: u64, per_shard: u64, brokers: &[&[u64]]) -> PartitionBudget {
        PartitionBudget {
            brokers: brokers
                .iter()
                .enumerate()
                .map(|(i, shards)| BrokerLoad {
                    id: i as i32 + 1,
                    rack: None,
                    shards: shards.to_vec(),
                    leaders: vec![0; shards.len()],
                })
                .collect(),
            per_broker,
            per_shard,
        }
    }

    fn with_racks(mut b: PartitionBudget, racks: &[&str]) -> PartitionBudget {
        for (broker, rack) in b.brokers.iter_mut().zip(racks) {
            broker.rack = Some(rack.to_string());
        }
        b
    }

    /// (leaders, replicas) per node.
    fn per_node(placed: &[Vec<i32>]) -> std::collections::BTreeMap<i32, (usize, usize)> {
        let mut out = std::collections::BTreeMap::new();
        for replicas in placed {
            for (i, node) in replicas.iter().enumerate() {
                let e = out.entry(*node).or_insert((0, 0));
                e.1 += 1;
                if i == 0 {
                    e.0 += 1;
                }
            }
        }
        out
    }

    #[test]
    fn single_replicas_fill_the_least_loaded_shards_up_to_the_cap() {
        let mut b = budget(100, 3, &[&[2, 0]]);
        assert_eq!(
            b.place("t", 1, 1).unwrap(),
            vec![vec![1001]],
            "the emptier shard"
        );
        b.place("t", 3, 1).unwrap();
        assert_eq!(b.brokers[0].shards, vec![3, 3]);
        let (code, message) = b.place("u", 1, 1).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(
            message.contains("sluice.max.partitions.per.shard=3 allows 0 more"),
            "{message}"
        );
    }

    #[test]
    fn replicas_go_on_distinct_brokers_and_leaders_spread_over_brokers_then_shards() {
        let mut b = budget(1000, 1000, &[&[0, 0], &[0, 0], &[0, 0]]);
        let placed = b.place("t", 12, 3).unwrap();
        for replicas in &placed {
            let mut brokers: Vec<i32> = replicas.iter().map(|n| broker_of_node(*n)).collect();
            brokers.sort_unstable();
            assert_eq!(brokers, [1, 2, 3], "{replicas:?}");
        }
        for (node, (leaders, replicas)) in per_node(&placed) {
            assert_eq!((leaders, replicas), (2, 6), "node {node}: {placed:?}");
        }
    }

    #[test]
    fn a_factor_above_the_broker_count_shares_brokers_on_distinct_shards() {
        let mut b = budget(1000, 1000, &[&[0, 0, 0], &[0, 0, 0]]);
        let placed = b.place("t", 6, 4).unwrap();
        for replicas in &placed {
            let on = |broker: i32| {
                replicas
                    .iter()
                    .filter(|n| broker_of_node(**n) == broker)
                    .count()
            };
            assert_eq!((on(1), on(2)), (2, 2), "{replicas:?}");
        }
        for (node, (leaders, replicas)) in per_node(&placed) {
            assert_eq!((leaders, replicas), (1, 4), "node {node}: {placed:?}");
        }
        // Every node of one broker: the whole broker.
        let mut one = budget(1000, 1000, &[&[0, 0, 0]]);
        let placed = one.place("t", 3, 3).unwrap();
        let leaders: Vec<i32> = placed.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, [1000, 1001, 1002]);
    }

    #[test]
    fn replicas_go_on_distinct_racks_first() {
        // Brokers 1 and 2 share rack a; broker 3 is alone on rack b.
        let mut b = with_racks(
            budget(1000, 1000, &[&[0, 0], &[0, 0], &[0, 0]]),
            &["a", "a", "b"],
        );
        for replicas in b.place("t", 9, 2).unwrap() {
            let racks: Vec<i32> = replicas
                .iter()
                .map(|n| i32::from(broker_of_node(*n) == 3))
                .collect();
            assert!(racks.contains(&0) && racks.contains(&1), "{replicas:?}");
        }
        // Three replicas over two racks: both racks, and three brokers.
        let mut b = with_racks(
            budget(1000, 1000, &[&[0], &[0], &[0], &[0]]),
            &["a", "a", "b", "b"],
        );
        for replicas in b.place("t", 8, 3).unwrap() {
            let mut brokers: Vec<i32> = replicas.iter().map(|n| broker_of_node(*n)).collect();
            brokers.sort_unstable();
            brokers.dedup();
            assert_eq!(brokers.len(), 3, "{replicas:?}");
            assert!(replicas.iter().any(|n| broker_of_node(*n) <= 2));
            assert!(replicas.iter().any(|n| broker_of_node(*n) >= 3));
        }
    }

    #[test]
    fn a_factor_above_the_node_count_is_refused_with_kafkas_message() {
        let mut b = budget(1000, 1000, &[&[0, 0], &[0]]);
        let (code, message) = b.place("t", 1, 4).unwrap_err();
        assert_eq!(code, ResponseError::InvalidReplicationFactor);
        assert!(
            message.starts_with("Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered."),
            "{message}"
        );
        assert!(b.place("t", 1, 3).is_ok());
        let (code, _) = b.place("t", 1, 0).unwrap_err();
        assert_eq!(code, ResponseError::InvalidReplicationFactor);
    }

    #[test]
    fn caps_count_every_replica() {
        let mut b = budget(100, 2, &[&[1, 0], &[0, 0]]);
        let (code, message) = b.place("t", 4, 2).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(message.contains("allows 7 more"), "{message}");
        assert_eq!(b.place("t", 3, 2).unwrap().len(), 3);
        assert_eq!(b.brokers[0].total() + b.brokers[1].total(), 7);
        // One node left with room: no two replicas may share it.
        let mut b = budget(100, 1, &[&[1, 0], &[1, 1]]);
        let (code, message) = b.place("t", 1, 2).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(message.contains("allows 1 more"), "{message}");
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut b = budget(10_000, 1_000, &[&[0, 0]]);
        let (code, message) = b.place("t", i32::MAX as u64, 2).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(
            message.contains("sluice.max.partitions.per.broker=10000 allows 10000 more"),
            "{message}"
        );
        assert_eq!(b.brokers[0].total(), 0);
    }

    #[test]
    fn no_live_broker_means_no_placement() {
        let mut b = budget(10, 10, &[]);
        let (code, _) = b.place("t", 1, 1).unwrap_err();
        assert_eq!(code, ResponseError::InvalidReplicationFactor);
    }

    #[test]
    fn a_refused_topic_leaves_the_budget_unchanged() {
        let mut b = budget(5, 10, &[&[0, 0]]);
        b.place("a", 3, 1).unwrap();
        assert!(b.place("b", 3, 1).is_err());
        b.place("c", 1, 2).unwrap();
        assert_eq!(b.brokers[0].total(), 5);
        assert!(b.place_on("d", &[vec![1000]]).is_err());
        assert_eq!(b.brokers[0].total(), 5);

        let mut b = budget(100, 2, &[&[1, 0]]);
        let (_, message) = b.place_on("m", &[vec![1000], vec![1000]]).unwrap_err();
        assert!(message.contains("node 1000 would hold 3"), "{message}");
        assert_eq!(b.brokers[0].shards, vec![1, 0]);
        b.place_on("m", &[vec![1001, 1000]]).unwrap();
        assert_eq!(b.brokers[0].shards, vec![2, 1]);
        assert_eq!(b.brokers[0].leaders, vec![0, 1]);
    }

    #[test]
    fn preferred_leaders_already_in_the_cluster_count() {
        let config = BrokerConfig::load(None, &[]).unwrap();
        let mut state = ClusterState::new(Some("c".into())).with_live_local_broker(&config, 2);
        state.topics.insert(
            "t".into(),
            crate::metadata::TopicState {
                id: uuid::Uuid::new_v4(),
                partitions: crate::metadata::PartitionState::new(vec![1000, 1001], |_| true)
                    .into_iter()
                    .collect(),
                configs: Default::default(),
                internal: false,
            },
        );
        let mut b = PartitionBudget::new(&state, &config);
        assert_eq!(b.brokers[0].leaders, vec![1, 0]);
        assert_eq!(b.place("u", 1, 2).unwrap(), vec![vec![1001, 1000]]);
    }
}
