//! DeleteTopics (v1–v6): topics by name (v1–v5 `topic_names`, v6 `topics`) or by id (v6),
//! deleted by the controller; any shard may receive the request.
//!
//! The request is checked the way Kafka 4.x's `ControllerApis.deleteTopics` does before the
//! controller sees it: with `delete.topic.enable=false` every topic fails (TOPIC_DELETION_DISABLED,
//! INVALID_REQUEST before v3); an entry with neither or both of name and id, a name or id given
//! twice, and a name whose topic id was also given are INVALID_REQUEST (one result per
//! duplicated name or id). The controller answers the rest: UNKNOWN_TOPIC_OR_PARTITION for an
//! unknown name, UNKNOWN_TOPIC_ID for an unknown id, and on success the name and id.
//!
//! Results come in request order (Kafka shuffles them; clients match by name or id).

use super::{decode, respond, str_bytes, HandlerResult};
use crate::messages::{ControllerCommand, ControllerReply, TopicOutcome, TopicRef};
use crate::metadata::MetadataImage;
use crate::shard::Shard;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use uuid::Uuid;

/// One entry of the answer, before the controller has run.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Answered without the controller.
    Error {
        /// Topic name (null when the topic was named by id).
        name: Option<String>,
        /// Topic id (nil when the topic was named by name).
        id: Uuid,
        /// Error code.
        code: ResponseError,
        /// Error message.
        message: &'static str,
    },
    /// Sent to the controller.
    Delete(TopicRefKey),
}

/// A topic reference sent to the controller: a name or an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicRefKey {
    /// By name.
    Name(String),
    /// By id.
    Id(Uuid),
}

/// The requested topics as (name, id), in request order.
pub fn requested(request: &DeleteTopicsRequest, version: i16) -> Vec<(Option<String>, Uuid)> {
    if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    }
}

/// Checks the request as Kafka does before deleting anything; `id_of` resolves a topic name
/// to its id in the current metadata.
pub fn plan(refs: &[(Option<String>, Uuid)], id_of: impl Fn(&str) -> Option<Uuid>) -> Vec<Planned> {
    let mut name_count: HashMap<&str, usize> = HashMap::new();
    let mut id_count: HashMap<Uuid, usize> = HashMap::new();
    for (name, id) in refs {
        match (name, id.is_nil()) {
            (Some(n), true) => *name_count.entry(n.as_str()).or_default() += 1,
            (None, false) => *id_count.entry(*id).or_default() += 1,
            _ => {}
        }
    }
    let mut reported: HashSet<TopicRefKey> = HashSet::new();
    let mut out = Vec::new();
    for (name, id) in refs {
        match (name, id.is_nil()) {
            (None, true) => out.push(Planned::Error {
                name: None,
                id: Uuid::nil(),
                code: ResponseError::InvalidRequest,
                message: "Neither topic name nor id were specified.",
            }),
            (Some(n), false) => out.push(Planned::Error {
                name: Some(n.clone()),
                id: *id,
                code: ResponseError::InvalidRequest,
                message: "You may not specify both topic name and topic id.",
            }),
            (Some(n), true) => {
                if !reported.insert(TopicRefKey::Name(n.clone())) {
                    continue;
                }
                if name_count[n.as_str()] > 1 {
                    out.push(Planned::Error {
                        name: Some(n.clone()),
                        id: Uuid::nil(),
                        code: ResponseError::InvalidRequest,
                        message: "Duplicate topic name.",
                    });
                } else if id_of(n).is_some_and(|i| id_count.contains_key(&i)) {
                    out.push(Planned::Error {
                        name: Some(n.clone()),
                        id: Uuid::nil(),
                        code: ResponseError::InvalidRequest,
                        message: "The provided topic name maps to an ID that was already supplied.",
                    });
                } else {
                    out.push(Planned::Delete(TopicRefKey::Name(n.clone())));
                }
            }
            (None, false) => {
                if !reported.insert(TopicRefKey::Id(*id)) {
                    continue;
                }
                if id_count[id] > 1 {
                    out.push(Planned::Error {
                        name: None,
                        id: *id,
                        code: ResponseError::InvalidRequest,
                        message: "Duplicate topic id.",
                    });
                } else {
                    out.push(Planned::Delete(TopicRefKey::Id(*id)));
                }
            }
        }
    }
    out
}

fn result(
    name: Option<String>,
    id: Uuid,
    code: i16,
    message: Option<String>,
) -> DeletableTopicResult {
    DeletableTopicResult::default()
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
        .with_error_code(code)
        .with_error_message(message.map(str_bytes))
}

/// The result of a topic the controller handled.
fn outcome_result(key: &TopicRefKey, o: &TopicOutcome) -> DeletableTopicResult {
    let name = match key {
        TopicRefKey::Name(n) => Some(n.clone()),
        TopicRefKey::Id(_) => Some(o.name.clone()).filter(|n| !n.is_empty()),
    };
    let message = if o.error_code == 0 {
        None
    } else {
        o.error_message.clone()
    };
    result(name, o.topic_id, o.error_code, message)
}

/// Answers DeleteTopics.
pub async fn handle_delete_topics(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DeleteTopicsRequest = decode(req)?;
    let version = req.api_version;
    let refs = requested(&request, version);
    if !shard.config.delete_topic_enable {
        // Kafka fails the whole request.
        let code = if version < 3 {
            ResponseError::InvalidRequest
        } else {
            ResponseError::TopicDeletionDisabled
        };
        let responses = refs
            .into_iter()
            .map(|(name, id)| result(name, id, code.code(), None))
            .collect();
        return respond(
            req,
            &DeleteTopicsResponse::default().with_responses(responses),
        );
    }
    let image: std::sync::Arc<MetadataImage> = shard.image();
    let planned = plan(&refs, |name| image.topic(name).map(|t| t.id));
    let to_delete: Vec<TopicRef> = planned
        .iter()
        .filter_map(|p| match p {
            Planned::Delete(TopicRefKey::Name(n)) => Some(TopicRef {
                name: Some(n.clone()),
                id: None,
            }),
            Planned::Delete(TopicRefKey::Id(id)) => Some(TopicRef {
                name: None,
                id: Some(*id),
            }),
            Planned::Error { .. } => None,
        })
        .collect();
    let outcomes: Vec<TopicOutcome> = if to_delete.is_empty() {
        Vec::new()
    } else {
        match shard
            .router
            .call_controller(ControllerCommand::DeleteTopics {
                topics: to_delete.clone(),
            })
            .await
        {
            Ok(ControllerReply::Topics(outcomes)) => outcomes,
            Ok(other) => return Err(format!("controller answered DeleteTopics with {other:?}")),
            Err(e) => to_delete
                .iter()
                .map(|r| TopicOutcome {
                    name: r.name.clone().unwrap_or_default(),
                    topic_id: r.id.unwrap_or(Uuid::nil()),
                    error_code: ResponseError::NotController.code(),
                    error_message: Some(e.to_string()),
                    num_partitions: -1,
                    replication_factor: -1,
                })
                .collect(),
        }
    };
    let mut outcomes = outcomes.iter();
    let mut responses = Vec::with_capacity(planned.len());
    for p in &planned {
        match p {
            Planned::Error {
                name,
                id,
                code,
                message,
            } => responses.push(result(
                name.clone(),
                *id,
                code.code(),
                Some(message.to_string()),
            )),
            Planned::Delete(key) => match outcomes.next() {
                Some(o) => responses.push(outcome_result(key, o)),
                None => {
                    return Err(
                        "controller answered DeleteTopics with fewer results than topics".into(),
                    )
                }
            },
        }
    }
    respond(
        req,
        &DeleteTopicsResponse::default().with_responses(responses),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn name(n: &str) -> (Option<String>, Uuid) {
        (Some(n.into()), Uuid::nil())
    }

    #[test]
    fn names_and_ids_from_every_version() {
        let id = Uuid::from_u128(9);
        let v5 = DeleteTopicsRequest::default().with_topic_names(vec![TopicName(str_bytes("a"))]);
        let mut buf = BytesMut::new();
        v5.encode(&mut buf, 5).unwrap();
        let decoded = DeleteTopicsRequest::decode(&mut buf.freeze(), 5).unwrap();
        assert_eq!(requested(&decoded, 5), vec![name("a")]);
        let v6 = DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(TopicName(str_bytes("a")))),
            DeleteTopicState::default()
                .with_name(None)
                .with_topic_id(id),
        ]);
        let mut buf = BytesMut::new();
        v6.encode(&mut buf, 6).unwrap();
        let decoded = DeleteTopicsRequest::decode(&mut buf.freeze(), 6).unwrap();
        assert_eq!(requested(&decoded, 6), vec![name("a"), (None, id)]);
    }

    #[test]
    fn invalid_entries_are_rejected_like_kafka() {
        let a_id = Uuid::from_u128(1);
        let x_id = Uuid::from_u128(2);
        let refs = vec![
            name("a"),
            (None, a_id), // a's id is also given: the name entry is rejected
            name("dup"),
            name("dup"),
            (None, x_id),
            (None, x_id),
            (None, Uuid::nil()),
            (Some("both".into()), Uuid::from_u128(3)),
            name("ok"),
        ];
        let planned = plan(&refs, |n| (n == "a").then_some(a_id));
        let codes: Vec<String> = planned
            .iter()
            .map(|p| match p {
                Planned::Error { message, .. } => message.to_string(),
                Planned::Delete(TopicRefKey::Name(n)) => format!("delete {n}"),
                Planned::Delete(TopicRefKey::Id(id)) => format!("delete {id}"),
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                "The provided topic name maps to an ID that was already supplied.".to_string(),
                format!("delete {a_id}"),
                "Duplicate topic name.".into(),
                "Duplicate topic id.".into(),
                "Neither topic name nor id were specified.".into(),
                "You may not specify both topic name and topic id.".into(),
                "delete ok".into(),
            ]
        );
        assert!(planned.iter().all(|p| match p {
            Planned::Error { code, .. } => *code == ResponseError::InvalidRequest,
            _ => true,
        }));
    }

    #[test]
    fn results_carry_name_and_id() {
        let ok = TopicOutcome {
            name: "t".into(),
            topic_id: Uuid::from_u128(5),
            error_code: 0,
            error_message: None,
            num_partitions: 1,
            replication_factor: 1,
        };
        let r = outcome_result(&TopicRefKey::Id(Uuid::from_u128(5)), &ok);
        assert_eq!(r.name.as_ref().map(|n| n.0.as_str()), Some("t"));
        assert_eq!(r.topic_id, Uuid::from_u128(5));
        let unknown = TopicOutcome {
            name: String::new(),
            error_code: ResponseError::UnknownTopicId.code(),
            error_message: Some("This server does not host this topic.".into()),
            ..ok
        };
        let r = outcome_result(&TopicRefKey::Id(Uuid::from_u128(5)), &unknown);
        assert_eq!(r.name, None);
        for v in 1..=6 {
            let mut buf = BytesMut::new();
            DeleteTopicsResponse::default()
                .with_responses(vec![r.clone()])
                .encode(&mut buf, v)
                .unwrap();
        }
    }
}
