//! AlterPartition: a partition leader shrinks or expands the ISR, validated as Kafka's
//! `ReplicationControlManager.alterPartition` does.
//!
//! The checks, in Kafka's order: the partition exists (UNKNOWN_TOPIC_OR_PARTITION, or
//! UNKNOWN_TOPIC_ID for an unknown id); the request is not ahead of this controller
//! (NOT_CONTROLLER: the sender knows a newer state, so this controller is stale); its leader
//! epoch is current (FENCED_LEADER_EPOCH); it comes from the leader (INVALID_REQUEST); its
//! partition epoch is current (INVALID_UPDATE_VERSION: the partition changed since the leader
//! read it); the new ISR is made of distinct replicas and holds the leader (INVALID_REQUEST);
//! every member is live, on a registered, unfenced broker of the epoch the member gave
//! (INELIGIBLE_REPLICA). The change then goes through the same rule as every other
//! ([`change_partition`]); should it move the leader, the answer is NEW_LEADER_ELECTED.

use super::election::{change_partition, unclean_allowed, Election};
use crate::config::BrokerConfig;
use crate::controller_rpc::{AlterPartitionOutcome, AlterPartitionRequest};
use crate::metadata::{broker_of_node, ClusterState};
use kafka_protocol::ResponseError;

/// Decides `request` against `state`: the answer, and the next state when the ISR changes.
pub fn alter_partition(
    state: &ClusterState,
    config: &BrokerConfig,
    request: &AlterPartitionRequest,
) -> (AlterPartitionOutcome, Option<ClusterState>) {
    let failed = |code, message: String| (AlterPartitionOutcome::failed(code, message), None);
    let by_id = !request.topic_id.is_nil();
    let name = if by_id {
        state
            .topics
            .iter()
            .find(|(_, t)| t.id == request.topic_id)
            .map(|(name, _)| name.clone())
    } else {
        Some(request.topic.clone())
    };
    let Some((name, topic)) = name.and_then(|n| state.topics.get(&n).map(|t| (n, t))) else {
        return if by_id {
            failed(
                ResponseError::UnknownTopicId,
                format!("No topic with id {}.", request.topic_id),
            )
        } else {
            failed(
                ResponseError::UnknownTopicOrPartition,
                format!("No topic named '{}'.", request.topic),
            )
        };
    };
    let index = request.partition;
    let Some(p) = usize::try_from(index)
        .ok()
        .and_then(|i| topic.partitions.get(i))
    else {
        return failed(
            ResponseError::UnknownTopicOrPartition,
            format!("No partition {name}-{index}."),
        );
    };
    if request.leader_epoch > p.leader_epoch || request.partition_epoch > p.partition_epoch {
        return failed(
            ResponseError::NotController,
            format!(
                "{name}-{index} is at leader epoch {} and partition epoch {} here, older than the request's {} and {}: this controller is behind.",
                p.leader_epoch, p.partition_epoch, request.leader_epoch, request.partition_epoch
            ),
        );
    }
    if request.leader_epoch < p.leader_epoch {
        return failed(
            ResponseError::FencedLeaderEpoch,
            format!(
                "{name}-{index} is at leader epoch {}, not {}.",
                p.leader_epoch, request.leader_epoch
            ),
        );
    }
    if request.leader != p.leader {
        return failed(
            ResponseError::InvalidRequest,
            format!(
                "Node {} is not the leader of {name}-{index}; {} is.",
                request.leader, p.leader
            ),
        );
    }
    if request.partition_epoch < p.partition_epoch {
        return failed(
            ResponseError::InvalidUpdateVersion,
            format!(
                "{name}-{index} is at partition epoch {}, not {}.",
                p.partition_epoch, request.partition_epoch
            ),
        );
    }
    let new_isr: Vec<i32> = request.new_isr.iter().map(|m| m.node).collect();
    let distinct = (1..new_isr.len()).all(|i| !new_isr[..i].contains(&new_isr[i]));
    if !distinct || !new_isr.iter().all(|n| p.has_replica(*n)) {
        return failed(
            ResponseError::InvalidRequest,
            format!(
                "The ISR {new_isr:?} of {name}-{index} repeats a node or names one that is not among its replicas {:?}.",
                p.replicas
            ),
        );
    }
    if !new_isr.contains(&p.leader) {
        return failed(
            ResponseError::InvalidRequest,
            format!(
                "The ISR {new_isr:?} of {name}-{index} does not hold its leader {}.",
                p.leader
            ),
        );
    }
    let ineligible: Vec<String> = request
        .new_isr
        .iter()
        .filter_map(|m| {
            let why = match state.brokers.get(&broker_of_node(m.node)) {
                None => "not registered".to_string(),
                Some(b) if b.fenced => "fenced".to_string(),
                Some(_) if !state.is_live_node(m.node) => "no such shard".to_string(),
                Some(b) if m.broker_epoch != -1 && i64::try_from(b.epoch) != Ok(m.broker_epoch) => {
                    format!(
                        "broker epoch mismatch: requested={} vs expected={}",
                        m.broker_epoch, b.epoch
                    )
                }
                Some(_) => return None,
            };
            Some(format!("{} ({why})", m.node))
        })
        .collect();
    if !ineligible.is_empty() {
        return failed(
            ResponseError::IneligibleReplica,
            format!(
                "The ISR of {name}-{index} would hold ineligible replicas: {}.",
                ineligible.join(", ")
            ),
        );
    }
    let election = if unclean_allowed(topic, config, state) {
        Election::Unclean
    } else {
        Election::Online
    };
    let Some(next_partition) = change_partition(p, new_isr, election, |n| state.is_live_node(n))
    else {
        let unchanged = AlterPartitionOutcome {
            error_code: 0,
            error_message: None,
            partition: Some(p.clone()),
        };
        return (unchanged, None);
    };
    let leader_moved = next_partition.leader != request.leader;
    let mut next = state.clone();
    if let Some(slot) = next
        .topics
        .get_mut(&name)
        .and_then(|t| t.partitions.get_mut(index as usize))
    {
        *slot = next_partition.clone();
    }
    let outcome = if leader_moved {
        AlterPartitionOutcome {
            error_code: ResponseError::NewLeaderElected.code(),
            error_message: Some(format!(
                "{name}-{index} is now led by {}.",
                next_partition.leader
            )),
            partition: Some(next_partition),
        }
    } else {
        AlterPartitionOutcome {
            error_code: 0,
            error_message: None,
            partition: Some(next_partition),
        }
    };
    (outcome, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfigs;
    use crate::controller::tests::cluster;
    use crate::controller_rpc::IsrMember;
    use crate::metadata::{PartitionState, TopicState};
    use uuid::Uuid;

    const TOPIC_ID: Uuid = Uuid::from_u128(7);

    /// Three brokers × one shard; `t`-0 on all three, led by 1000, at epochs (3, 8).
    fn state() -> ClusterState {
        let mut state = cluster(3, 1);
        state.topics.insert(
            "t".into(),
            TopicState {
                id: TOPIC_ID,
                partitions: vec![PartitionState {
                    leader_epoch: 3,
                    partition_epoch: 8,
                    ..PartitionState::new(vec![1000, 2000, 3000], |_| true).unwrap()
                }],
                configs: TopicConfigs::default(),
                internal: false,
            },
        );
        state
    }

    fn request(isr: &[i32]) -> AlterPartitionRequest {
        AlterPartitionRequest {
            topic: "t".into(),
            topic_id: Uuid::nil(),
            partition: 0,
            leader: 1000,
            leader_epoch: 3,
            partition_epoch: 8,
            new_isr: isr.iter().map(|n| IsrMember::unchecked(*n)).collect(),
        }
    }

    fn code_of(state: &ClusterState, request: &AlterPartitionRequest) -> Option<ResponseError> {
        let config = BrokerConfig::load(None, &[]).unwrap();
        let (outcome, _) = alter_partition(state, &config, request);
        ResponseError::try_from_code(outcome.error_code)
    }

    #[test]
    fn a_shrink_then_an_expansion_are_committed_with_new_partition_epochs() {
        let config = BrokerConfig::load(None, &[]).unwrap();
        let state = state();
        let (outcome, next) = alter_partition(&state, &config, &request(&[1000, 3000]));
        assert_eq!(outcome.error_code, 0, "{outcome:?}");
        let next = next.unwrap();
        let p = &next.topics["t"].partitions[0];
        assert_eq!(outcome.partition.as_ref(), Some(p));
        assert_eq!((p.isr.as_slice(), p.leader), (&[1000, 3000][..], 1000));
        assert_eq!((p.leader_epoch, p.partition_epoch), (3, 9));

        let expand = AlterPartitionRequest {
            partition_epoch: 9,
            topic_id: TOPIC_ID,
            topic: String::new(),
            ..request(&[1000, 3000, 2000])
        };
        let (outcome, again) = alter_partition(&next, &config, &expand);
        assert_eq!(outcome.error_code, 0, "{outcome:?}");
        assert_eq!(again.unwrap().topics["t"].partitions[0].partition_epoch, 10);

        // The same ISR: nothing to commit, the current state back.
        let (outcome, none) = alter_partition(&state, &config, &request(&[1000, 2000, 3000]));
        assert_eq!((outcome.error_code, none.is_none()), (0, true));
        assert_eq!(outcome.partition.unwrap().partition_epoch, 8);
    }

    #[test]
    fn stale_or_wrong_requests_get_kafkas_errors() {
        let state = state();
        let cases = [
            (
                AlterPartitionRequest {
                    leader_epoch: 2,
                    ..request(&[1000])
                },
                ResponseError::FencedLeaderEpoch,
            ),
            (
                AlterPartitionRequest {
                    partition_epoch: 7,
                    ..request(&[1000])
                },
                ResponseError::InvalidUpdateVersion,
            ),
            (
                AlterPartitionRequest {
                    leader_epoch: 4,
                    ..request(&[1000])
                },
                ResponseError::NotController,
            ),
            (
                AlterPartitionRequest {
                    leader: 2000,
                    ..request(&[2000])
                },
                ResponseError::InvalidRequest,
            ),
            (request(&[2000, 3000]), ResponseError::InvalidRequest),
            (request(&[1000, 4000]), ResponseError::InvalidRequest),
            (request(&[1000, 1000]), ResponseError::InvalidRequest),
            (
                AlterPartitionRequest {
                    partition: 1,
                    ..request(&[1000])
                },
                ResponseError::UnknownTopicOrPartition,
            ),
            (
                AlterPartitionRequest {
                    topic: "u".into(),
                    ..request(&[1000])
                },
                ResponseError::UnknownTopicOrPartition,
            ),
            (
                AlterPartitionRequest {
                    topic_id: Uuid::from_u128(8),
                    ..request(&[1000])
                },
                ResponseError::UnknownTopicId,
            ),
        ];
        for (request, code) in cases {
            assert_eq!(code_of(&state, &request), Some(code), "{request:?}");
        }
    }

    #[test]
    fn members_must_be_live_replicas_of_the_current_broker_epoch() {
        let mut state = state();
        state.brokers.get_mut(&2).unwrap().fenced = true;
        state.brokers.get_mut(&3).unwrap().epoch = 40;
        assert_eq!(
            code_of(&state, &request(&[1000, 2000])),
            Some(ResponseError::IneligibleReplica)
        );
        let stale_epoch = AlterPartitionRequest {
            new_isr: vec![
                IsrMember::unchecked(1000),
                IsrMember {
                    node: 3000,
                    broker_epoch: 39,
                },
            ],
            ..request(&[])
        };
        let config = BrokerConfig::load(None, &[]).unwrap();
        let (outcome, next) = alter_partition(&state, &config, &stale_epoch);
        assert_eq!(
            outcome.error_code,
            ResponseError::IneligibleReplica.code(),
            "{outcome:?}"
        );
        assert!(next.is_none());
        assert!(outcome
            .error_message
            .unwrap()
            .contains("3000 (broker epoch mismatch"));
        let current_epoch = AlterPartitionRequest {
            new_isr: vec![
                IsrMember::unchecked(1000),
                IsrMember {
                    node: 3000,
                    broker_epoch: 40,
                },
            ],
            ..request(&[])
        };
        assert_eq!(code_of(&state, &current_epoch), None);
    }
}
