//! AlterPartitionReassignments (v0–v1): start, replace or cancel partition reassignments
//! (KIP-455; Kafka's `kafka-reassign-partitions.sh --execute` / `--cancel`, the admin clients'
//! `alterPartitionReassignments`), forwarded to the controller, which decides them as Kafka's
//! does ([`crate::controller::reassignment`]); any shard may receive the request.
//!
//! Each partition gets its own answer: the reassignment started (or completed at once, or was
//! cancelled), or the error that refused it. v1's `allow_replication_factor_change` false
//! refuses targets with another replica count (KIP-860); v0 always allows them. Gap:
//! `timeout_ms` is not used (the controller always finishes before the answer).

use super::{decode, respond, str_bytes, HandlerResult};
use crate::messages::{
    ControllerCommand, ControllerReply, PartitionReassignment, ReassignmentOutcome,
};
use crate::shard::Shard;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, TopicName,
};
use sluice_net::RawRequest;
use std::rc::Rc;
use tracing::warn;

/// The controller's view of the request: every partition with its target replicas (`None`
/// cancels), in request order.
pub fn command(request: &AlterPartitionReassignmentsRequest, version: i16) -> ControllerCommand {
    let reassignments = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| PartitionReassignment {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                replicas: p.replicas.as_ref().map(|r| r.iter().map(|n| n.0).collect()),
            })
        })
        .collect();
    ControllerCommand::AlterPartitionReassignments {
        reassignments,
        allow_replication_factor_change: version < 1 || request.allow_replication_factor_change,
    }
}

/// The response for the controller's outcomes, grouped by topic in the order they came.
pub fn response(
    error_code: i16,
    error_message: Option<String>,
    allow_replication_factor_change: bool,
    results: Vec<ReassignmentOutcome>,
) -> AlterPartitionReassignmentsResponse {
    let mut topics: Vec<ReassignableTopicResponse> = Vec::new();
    for o in results {
        let partition = ReassignablePartitionResponse::default()
            .with_partition_index(o.partition)
            .with_error_code(o.error_code)
            .with_error_message(o.error_message.map(str_bytes));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == o.topic => t.partitions.push(partition),
            _ => topics.push(
                ReassignableTopicResponse::default()
                    .with_name(TopicName(str_bytes(o.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    AlterPartitionReassignmentsResponse::default()
        .with_error_code(error_code)
        .with_error_message(error_message.map(str_bytes))
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_responses(topics)
}

/// Answers AlterPartitionReassignments.
pub async fn handle_alter_partition_reassignments(
    shard: &Rc<Shard>,
    req: &RawRequest,
) -> HandlerResult {
    let request: AlterPartitionReassignmentsRequest = decode(req)?;
    let command = command(&request, req.api_version);
    let allow = matches!(
        command,
        ControllerCommand::AlterPartitionReassignments {
            allow_replication_factor_change: true,
            ..
        }
    );
    let reply = shard
        .router
        .call_controller(command)
        .await
        .map_err(|e| e.to_string())?;
    let ControllerReply::Reassignments {
        error_code,
        error_message,
        results,
    } = reply
    else {
        return Err(format!(
            "the controller answered AlterPartitionReassignments with {reply:?}"
        ));
    };
    if error_code != 0 {
        warn!(
            "AlterPartitionReassignments failed: {}",
            error_message.as_deref().unwrap_or_default()
        );
    }
    shard.metrics.record_error(req.api_key as i16, error_code);
    for o in &results {
        shard.metrics.record_error(req.api_key as i16, o.error_code);
    }
    respond(req, &response(error_code, error_message, allow, results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::BrokerId;

    #[test]
    fn requests_become_commands() {
        let request = AlterPartitionReassignmentsRequest::default()
            .with_allow_replication_factor_change(false)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(TopicName(str_bytes("t")))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![BrokerId(1001), BrokerId(2000)])),
                    ReassignablePartition::default()
                        .with_partition_index(1)
                        .with_replicas(None),
                ])]);
        let ControllerCommand::AlterPartitionReassignments {
            reassignments,
            allow_replication_factor_change,
        } = command(&request, 1)
        else {
            panic!("not a reassignment");
        };
        assert!(!allow_replication_factor_change);
        assert_eq!(
            reassignments,
            [
                PartitionReassignment {
                    topic: "t".into(),
                    partition: 0,
                    replicas: Some(vec![1001, 2000]),
                },
                PartitionReassignment {
                    topic: "t".into(),
                    partition: 1,
                    replicas: None,
                },
            ]
        );
        assert!(matches!(
            command(&request, 0),
            ControllerCommand::AlterPartitionReassignments {
                allow_replication_factor_change: true,
                ..
            }
        ));
    }

    #[test]
    fn outcomes_are_grouped_by_topic() {
        let outcome = |topic: &str, partition: i32, error_code: i16| ReassignmentOutcome {
            topic: topic.into(),
            partition,
            error_code,
            error_message: None,
        };
        let r = response(
            0,
            None,
            true,
            vec![outcome("a", 0, 0), outcome("a", 1, 85), outcome("b", 0, 3)],
        );
        let shape: Vec<(String, Vec<(i32, i16)>)> = r
            .responses
            .iter()
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.error_code))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("a".to_string(), vec![(0, 0), (1, 85)]),
                ("b".to_string(), vec![(0, 3)])
            ]
        );
    }
}
