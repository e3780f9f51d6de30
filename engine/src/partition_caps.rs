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

/// What is left of the partition caps while one controller command places partitions.
#[derive(Debug, Clone)]
pub struct PartitionBudget {
    load: Vec<u64>,
    total: u64,
    per_broker: u64,
    per_shard: u64,
}

impl PartitionBudget {
    /// The budget of a broker with `shards` shards holding `state`'s partitions.
    pub fn new(state: &ClusterState, shards: u32, config: &BrokerConfig) -> PartitionBudget {
        let total = state
            .topics
            .values()
            .map(|t| t.partitions.len() as u64)
            .sum();
        PartitionBudget {
            load: state.shard_load(shards),
            total,
            per_broker: config.max_partitions_per_broker,
            per_shard: config.max_partitions_per_shard,
        }
    }

    /// Places `count` new partitions of `topic`, each on the least-loaded shard, or refuses them
    /// all (POLICY_VIOLATION) when they would exceed a cap. Nothing is allocated before the
    /// check passes.
    pub fn place(&mut self, topic: &str, count: u64) -> Result<Vec<u32>, (ResponseError, String)> {
        self.check_broker(topic, count)?;
        let free: u64 = self
            .load
            .iter()
            .map(|l| self.per_shard.saturating_sub(*l))
            .sum();
        if count > free {
            return Err(self.over_shard_cap(topic, count, free));
        }
        let shards = (0..count)
            .map(|_| {
                let shard = least_loaded(&self.load);
                self.load[shard as usize] += 1;
                debug_assert!(self.load[shard as usize] <= self.per_shard);
                shard
            })
            .collect();
        self.total += count;
        Ok(shards)
    }

    /// Places new partitions of `topic` on the given shards (manual assignments), or refuses
    /// them all (POLICY_VIOLATION) when they would exceed a cap.
    pub fn place_on(&mut self, topic: &str, shards: &[u32]) -> Result<(), (ResponseError, String)> {
        let count = shards.len() as u64;
        self.check_broker(topic, count)?;
        let mut load = self.load.clone();
        for &shard in shards {
            let Some(slot) = load.get_mut(shard as usize) else {
                continue;
            };
            *slot += 1;
            if *slot > self.per_shard {
                return Err((
                    ResponseError::PolicyViolation,
                    format!(
                        "Cannot place the new partitions of topic '{topic}': shard {shard} would hold {} partitions, over \
                         sluice.max.partitions.per.shard={} ({WHY}). Assign them to other shards, delete topics or raise the limit.",
                        *slot, self.per_shard
                    ),
                ));
            }
        }
        self.load = load;
        self.total += count;
        Ok(())
    }

    fn check_broker(&self, topic: &str, count: u64) -> Result<(), (ResponseError, String)> {
        let left = self.per_broker.saturating_sub(self.total);
        if count > left {
            return Err((
                ResponseError::PolicyViolation,
                format!(
                    "Cannot add {count} partition(s) for topic '{topic}': this broker holds {} partition(s) (with the earlier \
                     topics of this request) and sluice.max.partitions.per.broker={} allows {left} more ({WHY}). \
                     Delete topics or raise the limit.",
                    self.total, self.per_broker
                ),
            ));
        }
        Ok(())
    }

    fn over_shard_cap(&self, topic: &str, count: u64, free: u64) -> (ResponseError, String) {
        (
            ResponseError::PolicyViolation,
            format!(
                "Cannot add {count} partition(s) for topic '{topic}': sluice.max.partitions.per.shard={} allows {free} more \
                 on this broker's {} shard(s) ({WHY}). Delete topics or raise the limit.",
                self.per_shard,
                self.load.len()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(per_broker: u64, per_shard: u64, load: Vec<u64>) -> PartitionBudget {
        PartitionBudget {
            total: load.iter().sum(),
            load,
            per_broker,
            per_shard,
        }
    }

    #[test]
    fn least_loaded_placement_fills_shards_up_to_the_cap() {
        let mut b = budget(100, 3, vec![2, 0]);
        assert_eq!(b.place("t", 4).unwrap(), vec![1, 1, 0, 1]);
        assert_eq!(b.load, vec![3, 3]);
        let (code, message) = b.place("u", 1).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(
            message.contains("sluice.max.partitions.per.shard=3 allows 0 more"),
            "{message}"
        );
    }

    #[test]
    fn absurd_counts_are_refused_before_allocating() {
        let mut b = budget(10_000, 1_000, vec![0, 0]);
        let (code, message) = b.place("t", i32::MAX as u64).unwrap_err();
        assert_eq!(code, ResponseError::PolicyViolation);
        assert!(
            message.contains("sluice.max.partitions.per.broker=10000 allows 10000 more"),
            "{message}"
        );
        assert_eq!(b.total, 0);
    }

    #[test]
    fn a_refused_topic_leaves_the_budget_unchanged() {
        let mut b = budget(5, 10, vec![0, 0]);
        b.place("a", 3).unwrap();
        assert!(b.place("b", 3).is_err());
        b.place("c", 2).unwrap();
        assert_eq!(b.total, 5);
        assert!(b.place_on("d", &[0]).is_err());

        let mut b = budget(100, 2, vec![1, 0]);
        let (_, message) = b.place_on("m", &[0, 0]).unwrap_err();
        assert!(message.contains("shard 0 would hold 3"), "{message}");
        assert_eq!(b.load, vec![1, 0]);
        b.place_on("m", &[1, 1]).unwrap();
        assert_eq!(b.load, vec![1, 2]);
    }
}
