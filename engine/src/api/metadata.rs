//! Metadata: the nodes (one per shard), topics, and each partition's replicas, ISR and leader
//! (shard nodes).
//! Unknown topics are created here when auto-creation is allowed (`auto.create.topics.enable`);
//! a topic the controller refuses to create (for example over the partition caps, POLICY_VIOLATION)
//! is answered with the controller's error code.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::authorization::{authorized_operations, ResourceKind};
use crate::controller::validate_topic_name;
use crate::messages::{ControllerCommand, ControllerReply, NewTopic};
use crate::metadata::{MetadataImage, PartitionState};
use crate::shard::Shard;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::collections::HashMap;
use std::rc::Rc;
use tracing::warn;
use uuid::Uuid;

/// Answers Metadata, creating requested topics that don't exist when that is allowed.
pub async fn handle_metadata(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: MetadataRequest = decode(req)?;
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && req.api_version == 0,
    };
    let allow_auto_create = (req.api_version < 4 || request.allow_auto_topic_creation)
        && shard.config.auto_create_topics_enable;
    let requested: Vec<(Option<String>, Uuid)> = request
        .topics
        .iter()
        .flatten()
        .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
        .collect();

    let mut image = shard.image();
    let mut refused: HashMap<String, i16> = HashMap::new();
    if allow_auto_create {
        let missing: Vec<NewTopic> = requested
            .iter()
            .filter_map(|(name, _)| name.as_ref())
            .filter(|name| image.topic(name).is_none() && validate_topic_name(name).is_ok())
            .map(|name| NewTopic {
                name: name.clone(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![],
                configs: vec![],
            })
            .collect();
        if !missing.is_empty() {
            let reply = shard
                .router
                .call_controller(ControllerCommand::CreateTopics {
                    topics: missing,
                    validate_only: false,
                })
                .await
                .map_err(|e| e.to_string())?;
            if let ControllerReply::Topics(outcomes) = reply {
                for o in outcomes.into_iter().filter(|o| o.error_code != 0) {
                    warn!(topic = %o.name, "auto-creation refused: {}", o.error_message.unwrap_or_default());
                    refused.insert(o.name, o.error_code);
                }
            }
            image = shard.image();
        }
    }

    let topic_operations = authorized_operations(
        ResourceKind::Topic,
        request.include_topic_authorized_operations,
    );
    let describe = |name: Option<&str>, id: Option<Uuid>| {
        let mut topic = describe_topic(&image, name, id);
        if let Some(code) = name.and_then(|n| refused.get(n)) {
            if topic.error_code == ResponseError::UnknownTopicOrPartition.code() {
                topic.error_code = *code;
            }
        }
        topic.with_topic_authorized_operations(topic_operations)
    };
    let topics: Vec<MetadataResponseTopic> = if all_topics {
        image
            .state
            .topics
            .keys()
            .map(|name| describe(Some(name), None))
            .collect()
    } else {
        requested
            .iter()
            .map(|(name, id)| describe(name.as_deref(), Some(*id)))
            .collect()
    };
    let brokers = image
        .nodes
        .iter()
        .map(|n| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(n.node_id))
                .with_host(str_bytes(n.host.clone()))
                .with_port(n.port)
        })
        .collect();
    let response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(image.state.cluster_id.clone())))
        .with_controller_id(BrokerId(image.controller_node()))
        .with_cluster_authorized_operations(authorized_operations(
            ResourceKind::Cluster,
            request.include_cluster_authorized_operations,
        ))
        .with_topics(topics);
    respond(req, &response)
}

/// One topic's entry: by name, or by id when no name was given (Metadata v10+).
fn describe_topic(
    image: &MetadataImage,
    name: Option<&str>,
    id: Option<Uuid>,
) -> MetadataResponseTopic {
    let resolved = match name {
        Some(n) => Some(n.to_string()),
        None => id.and_then(|id| image.topic_name(&id).map(str::to_string)),
    };
    let base = MetadataResponseTopic::default();
    let Some((name, topic)) = resolved
        .as_ref()
        .and_then(|n| image.topic(n).map(|t| (n, t)))
    else {
        let code = match (name, resolved) {
            (None, _) => ResponseError::UnknownTopicId,
            (Some(n), _) if validate_topic_name(n).is_err() => ResponseError::InvalidTopicException,
            _ => ResponseError::UnknownTopicOrPartition,
        };
        return base
            .with_error_code(code.code())
            .with_name(name.map(|n| TopicName(str_bytes(n))))
            .with_topic_id(id.unwrap_or(Uuid::nil()));
    };
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| describe_partition(image, index as i32, p))
        .collect();
    base.with_name(Some(TopicName(str_bytes(name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
}

/// One partition's entry: its replicas, ISR and leader. A partition whose leader is none or on
/// a fenced broker has leader -1 and LEADER_NOT_AVAILABLE (as in Kafka, the client retries);
/// replicas on brokers that are not live are listed as offline.
fn describe_partition(
    image: &MetadataImage,
    index: i32,
    p: &PartitionState,
) -> MetadataResponsePartition {
    let ids = |nodes: &[i32]| nodes.iter().map(|n| BrokerId(*n)).collect::<Vec<_>>();
    let offline: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|n| image.node(*n).is_none())
        .collect();
    let partition = MetadataResponsePartition::default()
        .with_partition_index(index)
        .with_leader_epoch(p.leader_epoch)
        .with_replica_nodes(ids(&p.replicas))
        .with_isr_nodes(ids(&p.isr))
        .with_offline_replicas(ids(&offline));
    match image.leader_of(p) {
        Some(leader) => partition.with_leader_id(BrokerId(leader.node_id)),
        None => partition
            .with_error_code(ResponseError::LeaderNotAvailable.code())
            .with_leader_id(BrokerId(-1)),
    }
}
