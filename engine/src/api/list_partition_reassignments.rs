//! ListPartitionReassignments (v0): the reassignments in progress (KIP-455; Kafka's
//! `kafka-reassign-partitions.sh --list` and `--verify`, the admin clients'
//! `listPartitionReassignments`), as the active controller knows them; any shard may receive
//! the request.
//!
//! `null` topics list every reassignment in progress; otherwise only the named partitions that
//! are being reassigned are listed (unknown topics and partitions are left out, as Kafka does).
//! Each entry gives the partition's replicas now, and those being added and removed.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::messages::{ControllerCommand, ControllerReply, OngoingReassignment};
use crate::shard::Shard;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use sluice_net::RawRequest;
use std::rc::Rc;

/// The controller's view of the request: the partitions by topic (`None`: every partition).
pub fn command(request: &ListPartitionReassignmentsRequest) -> ControllerCommand {
    ControllerCommand::ListPartitionReassignments {
        partitions: request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        }),
    }
}

/// The response listing `reassignments`, grouped by topic in the order they came.
pub fn response(
    error_code: i16,
    error_message: Option<String>,
    reassignments: Vec<OngoingReassignment>,
) -> ListPartitionReassignmentsResponse {
    let nodes = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
    let mut topics: Vec<OngoingTopicReassignment> = Vec::new();
    for r in reassignments {
        let partition = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(nodes(r.replicas))
            .with_adding_replicas(nodes(r.adding_replicas))
            .with_removing_replicas(nodes(r.removing_replicas));
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == r.topic => t.partitions.push(partition),
            _ => topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(r.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_code(error_code)
        .with_error_message(error_message.map(str_bytes))
        .with_topics(topics)
}

/// Answers ListPartitionReassignments.
pub async fn handle_list_partition_reassignments(
    shard: &Rc<Shard>,
    req: &RawRequest,
) -> HandlerResult {
    let request: ListPartitionReassignmentsRequest = decode(req)?;
    let reply = shard
        .router
        .call_controller(command(&request))
        .await
        .map_err(|e| e.to_string())?;
    let ControllerReply::OngoingReassignments {
        error_code,
        error_message,
        reassignments,
    } = reply
    else {
        return Err(format!(
            "the controller answered ListPartitionReassignments with {reply:?}"
        ));
    };
    shard.metrics.record_error(req.api_key as i16, error_code);
    respond(req, &response(error_code, error_message, reassignments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;

    #[test]
    fn requests_become_commands() {
        let every = ListPartitionReassignmentsRequest::default().with_topics(None);
        assert!(matches!(
            command(&every),
            ControllerCommand::ListPartitionReassignments { partitions: None }
        ));
        let some = ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
            ListPartitionReassignmentsTopics::default()
                .with_name(TopicName(str_bytes("t")))
                .with_partition_indexes(vec![0, 2]),
        ]));
        let ControllerCommand::ListPartitionReassignments { partitions } = command(&some) else {
            panic!("not a listing");
        };
        assert_eq!(partitions, Some(vec![("t".to_string(), vec![0, 2])]));
    }

    #[test]
    fn reassignments_are_grouped_by_topic() {
        let ongoing = |topic: &str, partition: i32| OngoingReassignment {
            topic: topic.into(),
            partition,
            replicas: vec![1001, 1000],
            adding_replicas: vec![1001],
            removing_replicas: vec![1000],
        };
        let r = response(
            0,
            None,
            vec![ongoing("a", 0), ongoing("a", 3), ongoing("b", 1)],
        );
        assert_eq!(r.topics.len(), 2);
        assert_eq!(r.topics[0].partitions.len(), 2);
        let p = &r.topics[1].partitions[0];
        assert_eq!(p.partition_index, 1);
        assert_eq!(p.adding_replicas, [BrokerId(1001)]);
        assert_eq!(p.removing_replicas, [BrokerId(1000)]);
        assert_eq!(p.replicas, [BrokerId(1001), BrokerId(1000)]);
    }
}
