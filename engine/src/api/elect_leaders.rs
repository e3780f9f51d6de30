//! ElectLeaders (v0–v2): preferred or unclean leader elections on request (Kafka's
//! `kafka-leader-election.sh`, the admin clients' `electLeaders`), forwarded to the controller, which decides them as Kafka's
//! does ([`crate::controller::election::elect_leaders`]); any shard may receive the request.
//!
//! v0 has no election type (preferred); a type other than 0 (preferred) or 1 (unclean) is
//! INVALID_REQUEST for the whole request. `null` partitions mean every partition, and the
//! answer then lists only the partitions that needed an election. Gap: `timeout_ms` is not
//! used (the controller always finishes before the answer).

use super::{decode, respond, str_bytes, HandlerResult};
use crate::messages::{ControllerCommand, ControllerReply, ElectionOutcome, ElectionType};
use crate::shard::Shard;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;
use tracing::warn;

/// The controller's view of the request: the election type and the partitions by topic
/// (`None`: every partition), or the request-level error.
pub fn command(request: &ElectLeadersRequest) -> Result<ControllerCommand, ResponseError> {
    let election =
        ElectionType::from_wire(request.election_type).ok_or(ResponseError::InvalidRequest)?;
    let partitions = request.topic_partitions.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect()
    });
    Ok(ControllerCommand::ElectLeaders {
        election,
        partitions,
    })
}

/// The response for the controller's outcomes, grouped by topic in the order they came.
pub fn response(error_code: i16, results: Vec<ElectionOutcome>) -> ElectLeadersResponse {
    let mut topics: Vec<ReplicaElectionResult> = Vec::new();
    for o in results {
        let partition = PartitionResult::default()
            .with_partition_id(o.partition)
            .with_error_code(o.error_code)
            .with_error_message(o.error_message.map(str_bytes));
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == o.topic => t.partition_result.push(partition),
            _ => topics.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(str_bytes(o.topic)))
                    .with_partition_result(vec![partition]),
            ),
        }
    }
    ElectLeadersResponse::default()
        .with_error_code(error_code)
        .with_replica_election_results(topics)
}

/// Answers ElectLeaders.
pub async fn handle_elect_leaders(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: ElectLeadersRequest = decode(req)?;
    let command = match command(&request) {
        Ok(command) => command,
        Err(code) => {
            shard.metrics.record_error(req.api_key as i16, code.code());
            return respond(req, &response(code.code(), vec![]));
        }
    };
    let reply = shard
        .router
        .call_controller(command)
        .await
        .map_err(|e| e.to_string())?;
    let ControllerReply::Elections {
        error_code,
        error_message,
        results,
    } = reply
    else {
        return Err(format!(
            "the controller answered ElectLeaders with {reply:?}"
        ));
    };
    if error_code != 0 {
        warn!("ElectLeaders failed: {}", error_message.unwrap_or_default());
    }
    shard.metrics.record_error(req.api_key as i16, error_code);
    for o in &results {
        shard.metrics.record_error(req.api_key as i16, o.error_code);
    }
    respond(req, &response(error_code, results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;

    #[test]
    fn requests_become_commands() {
        let request = ElectLeadersRequest::default()
            .with_election_type(1)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(TopicName(str_bytes("t")))
                .with_partitions(vec![0, 2])]));
        let Ok(ControllerCommand::ElectLeaders {
            election,
            partitions,
        }) = command(&request)
        else {
            panic!("not an election");
        };
        assert_eq!(election, ElectionType::Unclean);
        assert_eq!(partitions, Some(vec![("t".to_string(), vec![0, 2])]));
        let every = ElectLeadersRequest::default().with_topic_partitions(None);
        assert!(matches!(
            command(&every),
            Ok(ControllerCommand::ElectLeaders {
                election: ElectionType::Preferred,
                partitions: None
            })
        ));
        assert_eq!(
            command(&ElectLeadersRequest::default().with_election_type(2)).err(),
            Some(ResponseError::InvalidRequest)
        );
    }

    #[test]
    fn outcomes_are_grouped_by_topic() {
        let outcome = |topic: &str, partition: i32, error_code: i16| ElectionOutcome {
            topic: topic.into(),
            partition,
            error_code,
            error_message: None,
        };
        let r = response(
            0,
            vec![outcome("a", 0, 0), outcome("a", 1, 84), outcome("b", 0, 3)],
        );
        let shape: Vec<(String, Vec<(i32, i16)>)> = r
            .replica_election_results
            .iter()
            .map(|t| {
                (
                    t.topic.0.to_string(),
                    t.partition_result
                        .iter()
                        .map(|p| (p.partition_id, p.error_code))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("a".to_string(), vec![(0, 0), (1, 84)]),
                ("b".to_string(), vec![(0, 3)])
            ]
        );
    }
}
