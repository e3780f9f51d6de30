//! The partition caps (`sluice.max.partitions.per.broker`, `sluice.max.partitions.per.shard`)
//! and the placement of new partitions under them.
//!
//! Every partition costs its shard open files (at least the active segment's log and indexes)
//! and memory, and one core serves all of its shard's partitions, so a broker can only hold so
//! many. The controller places the partitions of one request through one [`PartitionBudget`]:
//! each topic's count is checked against what is left of both caps *before* anything is
//! allocated for it (so a count of 2^31-1 costs nothing), and a topic that does not fit is
//! refused with POLICY_VIOLATION while the ones before it keep their place — the request's
//! total is validated topic by topic, as Kafka answers per topic.

use crate::config::BrokerConfig;
use crate::metadata::{least_loaded, ClusterState};
use kafka_protocol::ResponseError;

/// Why partitions are capped, for the error messages.
const WHY: &str = "each partition holds open files and memory, and one core serves all of its \
                   shard's partitions, so the cap keeps the broker within its file descriptors \
                   and memory";

/// The partitions one live broker holds, per shard.
#[derive(Debug, Clone)]
struct BrokerLoad {
    id: i32,
    shards: Vec<u64>,
}

impl BrokerLoad {
    fn total(&self) -> u64 {
        self.shards.iter().sum()
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
    /// The budget of the live brokers of `state`.
    pub fn new(state: &ClusterState, config: &BrokerConfig) -> PartitionBudget {
        PartitionBudget {
            brokers: state
                .live_brokers()
                .map(|b| BrokerLoad {
                    id: b.id,
                    shards: state.shard_load(b.id, b.shards),
                })
                .collect(),
            per_broker: config.max_partitions_per_broker,
            per_shard: config.max_partitions_per_shard,
        }
    }

    /// How many more partitions broker `b` can take under both caps.
    fn free(&self, b: &BrokerLoad) -> u64 {
        let shard_room: u64 = b
            .shards
            .iter()
            .map(|l| self.per_shard.saturating_sub(*l))
            .sum();
        shard_room.min(self.per_broker.saturating_sub(b.total()))
    }

    /// Places `count` new partitions of `topic`, spread over the live brokers first (each to
    /// the broker holding fewest) and then to that broker's least-loaded shard, or refuses
    /// them all (POLICY_VIOLATION) when they would exceed a cap. Returns (broker, shard) per
    /// partition. Nothing is allocated before the check passes.
    pub fn place(
        &mut self,
        topic: &str,
        count: u64,
    ) -> Result<Vec<(i32, u32)>, (ResponseError, String)> {
        if self.brokers.is_empty() {
            return Err((
                ResponseError::InvalidReplicationFactor,
                format!("Cannot place the partitions of topic '{topic}': no broker is registered and unfenced. Start a broker, or wait until the brokers have registered with the controller quorum."),
            ));
        }
        let broker_room: u64 = self
            .brokers
            .iter()
            .map(|b| self.per_broker.saturating_sub(b.total()))
            .sum();
        if count > broker_room {
            let held: u64 = self.brokers.iter().map(BrokerLoad::total).sum();
            return Err((
                ResponseError::PolicyViolation,
                format!(
                    "Cannot add {count} partition(s) for topic '{topic}': the {} live broker(s) hold {held} partition(s) (with the \
                     earlier topics of this request) and sluice.max.partitions.per.broker={} allows {broker_room} more ({WHY}). \
                     Delete topics or raise the limit.",
                    self.brokers.len(),
                    self.per_broker
                ),
            ));
        }
        let free: u64 = self.brokers.iter().map(|b| self.free(b)).sum();
        if count > free {
            let shards: usize = self.brokers.iter().map(|b| b.shards.len()).sum();
            return Err((
                ResponseError::PolicyViolation,
                format!(
                    "Cannot add {count} partition(s) for topic '{topic}': sluice.max.partitions.per.shard={} allows {free} more \
                     on the live brokers' {shards} shard(s) ({WHY}). Delete topics or raise the limit.",
                    self.per_shard
                ),
            ));
        }
        let mut placed = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let Some(b) = (0..self.brokers.len())
                .filter(|&i| self.free(&self.brokers[i]) > 0)
                .min_by_key(|&i| self.brokers[i].total())
            else {
                break;
            };
            let room: Vec<u64> = self.brokers[b]
                .shards
                .iter()
                .map(|&l| if l < self.per_shard { l } else { u64::MAX })
                .collect();
            let shard = least_loaded(&room);
            let broker = &mut self.brokers[b];
            broker.shards[shard as usize] += 1;
            debug_assert!(broker.shards[shard as usize] <= self.per_shard);
            placed.push((broker.id, shard));
        }
        debug_assert_eq!(
            placed.len() as u64,
            count,
            "the free room was checked first"
        );
        Ok(placed)
    }

    /// Places new partitions of `topic` on the given (broker, shard) nodes (manual
    /// assignments), or refuses them all (POLICY_VIOLATION) when they would exceed a cap.
    pub fn place_on(
        &mut self,
        topic: &str,
        nodes: &[(i32, u32)],
    ) -> Result<(), (ResponseError, String)> {
        let mut brokers = self.brokers.clone();
        for &(id, shard) in nodes {
            let Some(b) = brokers.iter_mut().find(|b| b.id == id) else {
                continue;
            };
            let Some(slot) = b.shards.get_mut(shard as usize) else {
                continue;
            };
            *slot += 1;
            if *slot > self.per_shard {
                return Err((
                    ResponseError::PolicyViolation,
                    format!(
                        "Cannot place the new partitions of topic '{topic}': node {} would hold {} partitions, over \
                         sluice.max.partitions.per.shard={} ({WHY}). Assign them to other nodes, delete topics or raise the limit.",
                        id * 1000 + shard as i32, *slot, self.per_shard
                    ),
                ));
            }
            if b.total() > self.per_broker {
                return Err((
                    ResponseError::PolicyViolation,
                    format!(
                        "Cannot place the new partitions of topic '{topic}': broker {id} would hold {} partitions, over \
                         sluice.max.partitions.per.broker={} ({WHY}). Assign them to other brokers, delete topics or raise the limit.",
                        b.total(), self.per_broker
                    ),
                ));
            }
        }
        self.brokers = brokers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_broker: u64, per_shard: u64, brokers: &[&[u64]]) -> PartitionBudget {
        PartitionBudget {
            brokers: brokers
                .iter()
                .enumerate()
                .map(|(i, shards)| BrokerLoad {
                    id: i as i32 + 1,
                    shards: shards.to_vec(),
                })
                .collect(),
            per_broker,
            per_shard,
        }
    }

    #[test]
    fn least_loaded_placement_fills_shards_up_to_the_cap() {
        let mut b = budget(100, 3, &[&[2, 0]]);
        assert_eq!(
            b.place("t", 4).unwrap(),
            vec![(1, 1), (1, 1), (1, 0), (1, 1)]
        );
        assert_eq!(b.brokers[0].shards, vec![3, 3]);
        let (code, message) = b.place("u", 1).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(
            message.contains("sluice.max.partitions.per.shard=3 allows 0 more"),
            "{message}"
        );
    }

    #[test]
    fn partitions_spread_over_brokers_first_then_shards() {
        let mut b = budget(100, 100, &[&[0, 0], &[0, 0], &[0, 0]]);
        let placed = b.place("t", 12).unwrap();
        for broker in 1..=3 {
            let mine: Vec<u32> = placed
                .iter()
                .filter(|(b, _)| *b == broker)
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(mine.len(), 4, "{placed:?}");
            assert_eq!(mine.iter().filter(|s| **s == 0).count(), 2, "{placed:?}");
        }
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut b = budget(10_000, 1_000, &[&[0, 0]]);
        let (code, message) = b.place("t", i32::MAX as u64).unwrap_err();
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
        let (code, _) = b.place("t", 1).unwrap_err();
        assert_eq!(code, ResponseError::InvalidReplicationFactor);
    }

    #[test]
    fn a_refused_topic_leaves_the_budget_unchanged() {
        let mut b = budget(5, 10, &[&[0, 0]]);
        b.place("a", 3).unwrap();
        assert!(b.place("b", 3).is_err());
        b.place("c", 2).unwrap();
        assert_eq!(b.brokers[0].total(), 5);
        assert!(b.place_on("d", &[(1, 0)]).is_err());

        let mut b = budget(100, 2, &[&[1, 0]]);
        let (_, message) = b.place_on("m", &[(1, 0), (1, 0)]).unwrap_err();
        assert!(message.contains("node 1000 would hold 3"), "{message}");
        assert_eq!(b.brokers[0].shards, vec![1, 0]);
        b.place_on("m", &[(1, 1), (1, 1)]).unwrap();
        assert_eq!(b.brokers[0].shards, vec![1, 2]);
    }
}
