//! CreatePartitions (v0–v3): grow topics, forwarded to the controller (which checks the new
//! count, the assignments and the replica nodes with Kafka's codes and messages); any shard may
//! receive the request.
//!
//! As in Kafka 4.x's `ControllerApis.createPartitions`, a topic named more than once gets one
//! INVALID_REQUEST result ("Duplicate topic name.") and is not grown; the other topics go to the
//! controller, `validate_only` included. Gap: `timeout_ms` is not used (the controller always
//! finishes before the answer).

use super::{decode, respond, str_bytes, HandlerResult};
use crate::messages::{ControllerCommand, ControllerReply, PartitionGrowth};
use crate::shard::Shard;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, TopicName};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::HashMap;
use std::rc::Rc;

/// The controller's view of one topic's growth.
pub fn growth(t: &CreatePartitionsTopic) -> PartitionGrowth {
    PartitionGrowth {
        name: t.name.0.to_string(),
        count: t.count,
        assignments: t.assignments.as_ref().map(|a| {
            a.iter()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        }),
    }
}

/// Splits the request into the topics for the controller and the names given more than once
/// (each reported once, in order of first appearance).
pub fn split_duplicates(topics: &[CreatePartitionsTopic]) -> (Vec<PartitionGrowth>, Vec<String>) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for t in topics {
        *count.entry(t.name.0.as_str()).or_default() += 1;
    }
    let mut unique = Vec::new();
    let mut duplicates: Vec<String> = Vec::new();
    for t in topics {
        let name = t.name.0.as_str();
        if count[name] > 1 {
            if !duplicates.iter().any(|d| d == name) {
                duplicates.push(name.to_string());
            }
        } else {
            unique.push(growth(t));
        }
    }
    (unique, duplicates)
}

fn result(name: &str, code: i16, message: Option<String>) -> CreatePartitionsTopicResult {
    CreatePartitionsTopicResult::default()
        .with_name(TopicName(str_bytes(name)))
        .with_error_code(code)
        .with_error_message(if code == 0 {
            None
        } else {
            message.map(str_bytes)
        })
}

/// Answers CreatePartitions.
pub async fn handle_create_partitions(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: CreatePartitionsRequest = decode(req)?;
    let (topics, duplicates) = split_duplicates(&request.topics);
    let mut results: Vec<CreatePartitionsTopicResult> = duplicates
        .iter()
        .map(|n| {
            result(
                n,
                ResponseError::InvalidRequest.code(),
                Some("Duplicate topic name.".into()),
            )
        })
        .collect();
    if !topics.is_empty() {
        let command = ControllerCommand::CreatePartitions {
            topics: topics.clone(),
            validate_only: request.validate_only,
        };
        match shard.router.call_controller(command).await {
            Ok(ControllerReply::Topics(outcomes)) => results.extend(
                outcomes
                    .iter()
                    .map(|o| result(&o.name, o.error_code, o.error_message.clone())),
            ),
            Ok(other) => {
                return Err(format!(
                    "controller answered CreatePartitions with {other:?}"
                ))
            }
            Err(e) => results.extend(topics.iter().map(|t| {
                result(
                    &t.name,
                    ResponseError::NotController.code(),
                    Some(e.to_string()),
                )
            })),
        }
    }
    respond(
        req,
        &CreatePartitionsResponse::default().with_results(results),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn topic(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> CreatePartitionsTopic {
        CreatePartitionsTopic::default()
            .with_name(TopicName(str_bytes(name)))
            .with_count(count)
            .with_assignments(assignments.map(|a| {
                a.into_iter()
                    .map(|ids| {
                        CreatePartitionsAssignment::default()
                            .with_broker_ids(ids.into_iter().map(BrokerId).collect())
                    })
                    .collect()
            }))
    }

    #[test]
    fn request_maps_to_growth() {
        for v in 0..=3 {
            let req = CreatePartitionsRequest::default()
                .with_topics(vec![
                    topic("a", 4, Some(vec![vec![1000], vec![1001]])),
                    topic("b", 2, None),
                ])
                .with_validate_only(true);
            let mut buf = BytesMut::new();
            req.encode(&mut buf, v).unwrap();
            let decoded = CreatePartitionsRequest::decode(&mut buf.freeze(), v).unwrap();
            let (unique, dups) = split_duplicates(&decoded.topics);
            assert!(dups.is_empty());
            assert_eq!(unique[0].name, "a");
            assert_eq!(unique[0].count, 4);
            assert_eq!(unique[0].assignments, Some(vec![vec![1000], vec![1001]]));
            assert_eq!(unique[1].assignments, None);
        }
    }

    #[test]
    fn duplicates_reported_once_and_not_grown() {
        let (unique, dups) = split_duplicates(&[
            topic("a", 2, None),
            topic("b", 3, None),
            topic("a", 4, None),
        ]);
        assert_eq!(dups, vec!["a".to_string()]);
        assert_eq!(
            unique.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        let r = result("a", 0, Some("ignored".into()));
        assert_eq!(r.error_message, None);
    }
}
