//! CreateTopics (v2–v7): forwarded to the controller, which validates (names, partition counts,
//! replication factors, assignments, configs — with Kafka's error codes and messages) and
//! creates the topics; any shard may receive the request.
//!
//! The answer follows Kafka 4.x: a topic named more than once gets a single INVALID_REQUEST
//! result; from v5 a created (or validated) topic reports its partition count, replication
//! factor and every topic config with its value, source, read-only and sensitive flags
//! (sensitive values as null), and a failed one -1 / -1 and no configs; v7 adds the topic id.
//!
//! Gap: `timeout_ms` is not used — the controller always finishes (and every shard has adopted
//! the new metadata) before the response goes out, so a timeout of 0 still creates the topics
//! and answers NONE, where Kafka would answer REQUEST_TIMED_OUT while creating them anyway.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::config::{ConfigEntry, TopicConfigs};
use crate::messages::{ControllerCommand, ControllerReply, NewTopic, TopicOutcome};
use crate::shard::Shard;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use uuid::Uuid;

/// The controller's view of one requested topic.
pub fn new_topic(t: &CreatableTopic) -> NewTopic {
    NewTopic {
        name: t.name.0.to_string(),
        num_partitions: t.num_partitions,
        replication_factor: t.replication_factor,
        assignments: t
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect(),
        configs: t
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect(),
    }
}

/// The config overrides of a requested topic as the controller stores them (valid ones only;
/// the controller has rejected the topic if any was invalid).
fn requested_configs(t: &NewTopic) -> TopicConfigs {
    let map: BTreeMap<String, String> = t
        .configs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    TopicConfigs::new(map).unwrap_or_default()
}

/// One described topic config as CreateTopics v5+ reports it.
pub fn topic_config(e: &ConfigEntry) -> CreatableTopicConfigs {
    CreatableTopicConfigs::default()
        .with_name(str_bytes(e.name.clone()))
        .with_value(if e.sensitive {
            None
        } else {
            e.value.clone().map(str_bytes)
        })
        .with_read_only(e.read_only)
        .with_config_source(e.source.code())
        .with_is_sensitive(e.sensitive)
}

/// One topic's result. `configs` are the topic's described configs (used from v5 on success).
pub fn topic_result(
    version: i16,
    outcome: &TopicOutcome,
    configs: &[ConfigEntry],
) -> CreatableTopicResult {
    let ok = outcome.error_code == 0;
    let mut out = CreatableTopicResult::default()
        .with_name(TopicName(str_bytes(outcome.name.clone())))
        .with_error_code(outcome.error_code)
        .with_error_message(if ok {
            None
        } else {
            outcome.error_message.clone().map(str_bytes)
        });
    if version >= 5 {
        out.configs = Some(Vec::new());
        if ok {
            out.num_partitions = outcome.num_partitions;
            out.replication_factor = outcome.replication_factor;
            out.configs = Some(configs.iter().map(topic_config).collect());
        }
    }
    if version >= 7 && ok {
        out.topic_id = outcome.topic_id;
    }
    out
}

/// Keeps the first result per topic name: Kafka's response holds each name once.
fn dedup_by_name(outcomes: Vec<TopicOutcome>) -> Vec<TopicOutcome> {
    let mut seen = HashSet::new();
    outcomes
        .into_iter()
        .filter(|o| seen.insert(o.name.clone()))
        .collect()
}

/// The outcome of every topic when the controller could not be reached.
fn unavailable(topics: &[NewTopic], why: String) -> Vec<TopicOutcome> {
    topics
        .iter()
        .map(|t| TopicOutcome {
            name: t.name.clone(),
            topic_id: Uuid::nil(),
            error_code: ResponseError::NotController.code(),
            error_message: Some(why.clone()),
            num_partitions: -1,
            replication_factor: -1,
        })
        .collect()
}

/// Answers CreateTopics.
pub async fn handle_create_topics(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: CreateTopicsRequest = decode(req)?;
    let version = req.api_version;
    let validate_only = request.validate_only;
    let topics: Vec<NewTopic> = request.topics.iter().map(new_topic).collect();
    let outcomes = if topics.is_empty() {
        Vec::new()
    } else {
        match shard
            .router
            .call_controller(ControllerCommand::CreateTopics {
                topics: topics.clone(),
                validate_only,
            })
            .await
        {
            Ok(ControllerReply::Topics(outcomes)) => outcomes,
            Ok(other) => return Err(format!("controller answered CreateTopics with {other:?}")),
            Err(e) => unavailable(&topics, e.to_string()),
        }
    };
    let image = shard.image();
    let results = dedup_by_name(outcomes)
        .iter()
        .map(|o| {
            let configs = if version >= 5 && o.error_code == 0 {
                let stored = image
                    .topic(&o.name)
                    .filter(|t| !validate_only && t.id == o.topic_id)
                    .map(|t| t.configs.clone());
                let overrides = stored.unwrap_or_else(|| {
                    topics
                        .iter()
                        .find(|t| t.name == o.name)
                        .map(requested_configs)
                        .unwrap_or_default()
                });
                overrides.describe(&shard.config, &image.state.broker_configs, false)
            } else {
                Vec::new()
            };
            topic_result(version, o, &configs)
        })
        .collect();
    respond(req, &CreateTopicsResponse::default().with_topics(results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, ConfigSource, DynamicBrokerConfigs};
    use bytes::BytesMut;
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopicConfig,
    };
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn outcome(name: &str, error_code: i16) -> TopicOutcome {
        TopicOutcome {
            name: name.into(),
            topic_id: if error_code == 0 {
                Uuid::from_u128(7)
            } else {
                Uuid::nil()
            },
            error_code,
            error_message: (error_code != 0).then(|| "bad".to_string()),
            num_partitions: 3,
            replication_factor: 1,
        }
    }

    #[test]
    fn request_maps_to_controller_command() {
        let t = CreatableTopic::default()
            .with_name(TopicName(str_bytes("orders")))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![CreatableReplicaAssignment::default()
                .with_partition_index(0)
                .with_broker_ids(vec![BrokerId(1001)])])
            .with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(str_bytes("retention.ms"))
                    .with_value(Some(str_bytes("1000"))),
                CreatableTopicConfig::default()
                    .with_name(str_bytes("x"))
                    .with_value(None),
            ]);
        let req = CreateTopicsRequest::default().with_topics(vec![t]);
        let mut buf = BytesMut::new();
        req.encode(&mut buf, 7).unwrap();
        let decoded = CreateTopicsRequest::decode(&mut buf.freeze(), 7).unwrap();
        let nt = new_topic(&decoded.topics[0]);
        assert_eq!(nt.name, "orders");
        assert_eq!((nt.num_partitions, nt.replication_factor), (-1, -1));
        assert_eq!(nt.assignments, vec![(0, vec![1001])]);
        assert_eq!(
            nt.configs,
            vec![
                ("retention.ms".to_string(), Some("1000".to_string())),
                ("x".to_string(), None)
            ]
        );
        assert_eq!(
            requested_configs(&NewTopic {
                configs: vec![("retention.ms".into(), Some("1000".into()))],
                ..nt
            })
            .get("retention.ms"),
            Some("1000")
        );
    }

    #[test]
    fn results_by_version() {
        let broker = BrokerConfig::load(None, &[]).unwrap();
        let mut overrides = TopicConfigs::default();
        overrides.set("retention.ms", "1000").unwrap();
        let configs = overrides.describe(&broker, &DynamicBrokerConfigs::default(), false);
        let ok = topic_result(7, &outcome("a", 0), &configs);
        assert_eq!(ok.error_message, None);
        assert_eq!(
            (ok.num_partitions, ok.replication_factor, ok.topic_id),
            (3, 1, Uuid::from_u128(7))
        );
        let listed = ok.configs.as_ref().unwrap();
        let retention = listed
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        assert_eq!(retention.value.as_deref(), Some("1000"));
        assert_eq!(
            retention.config_source,
            ConfigSource::DynamicTopicConfig.code()
        );
        assert!(listed
            .iter()
            .any(|c| c.config_source == ConfigSource::DefaultConfig.code()));

        let failed = topic_result(
            7,
            &outcome("b", ResponseError::TopicAlreadyExists.code()),
            &[],
        );
        assert_eq!(
            (
                failed.num_partitions,
                failed.replication_factor,
                failed.topic_id
            ),
            (-1, -1, Uuid::nil())
        );
        assert_eq!(failed.configs, Some(vec![]));
        assert_eq!(failed.error_message.as_deref(), Some("bad"));

        // Old versions carry only name, error code and message; every version encodes.
        for v in 2..=7 {
            let r = CreateTopicsResponse::default().with_topics(vec![
                topic_result(v, &outcome("a", 0), &configs),
                failed.clone(),
            ]);
            let mut buf = BytesMut::new();
            r.encode(&mut buf, v).unwrap();
        }
        let old = topic_result(4, &outcome("a", 0), &configs);
        assert_eq!((old.num_partitions, old.topic_id), (-1, Uuid::nil()));
    }

    #[test]
    fn duplicate_names_answered_once() {
        let out = dedup_by_name(vec![outcome("a", 42), outcome("a", 42), outcome("b", 0)]);
        assert_eq!(
            out.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
