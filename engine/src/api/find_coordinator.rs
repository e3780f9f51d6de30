//! FindCoordinator: which node (shard) coordinates a group.
//!
//! Any shard answers: group `g` is coordinated by the shard leading `__consumer_offsets`
//! partition `abs(javaStringHashCode(g)) % offsets.topic.num.partitions`. Until that topic
//! exists (the controller creates it once `offsets.topic.replication.factor` nodes are live) or
//! while that partition has no live leader, the answer is COORDINATOR_NOT_AVAILABLE, as in
//! Kafka, and clients retry. v0–v3 carry one key,
//! v4+ a batch (`coordinator_keys`). Transaction coordinators arrive with transactions; until
//! then a transactional key gets COORDINATOR_NOT_AVAILABLE with a message saying so.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::config::BrokerConfig;
use crate::group::{partition_for, OFFSETS_TOPIC};
use crate::metadata::MetadataImage;
use crate::shard::Shard;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError as E;
use sluice_net::RawRequest;
use std::rc::Rc;

/// `key_type` of a consumer group.
const GROUP_KEY: i8 = 0;
/// `key_type` of a transactional id.
const TRANSACTION_KEY: i8 = 1;

/// Answers FindCoordinator.
pub async fn handle_find_coordinator(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: FindCoordinatorRequest = decode(req)?;
    let image = shard.image();
    if req.api_version >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| find(&shard.config, &image, request.key_type, key))
            .collect();
        return respond(
            req,
            &FindCoordinatorResponse::default().with_coordinators(coordinators),
        );
    }
    let c = find(&shard.config, &image, request.key_type, &request.key);
    shard.metrics.record_error(req.api_key as i16, c.error_code);
    let error_message = if req.api_version >= 1 {
        c.error_message
    } else {
        None
    };
    respond(
        req,
        &FindCoordinatorResponse::default()
            .with_error_code(c.error_code)
            .with_error_message(error_message)
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port),
    )
}

/// The coordinator of one key.
fn find(config: &BrokerConfig, image: &MetadataImage, key_type: i8, key: &StrBytes) -> Coordinator {
    let partitions = config.offsets_topic_num_partitions;
    let failed = |code: E, message: String| {
        Coordinator::default()
            .with_key(key.clone())
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    match key_type {
        GROUP_KEY => {}
        TRANSACTION_KEY => {
            return failed(
                E::CoordinatorNotAvailable,
                "transactions are not supported by this broker yet".into(),
            )
        }
        other => {
            return failed(
                E::InvalidRequest,
                format!("unknown coordinator key type {other}"),
            )
        }
    }
    let partition = partition_for(key, partitions);
    let Some(topic) = image.topic(OFFSETS_TOPIC) else {
        return failed(
            E::CoordinatorNotAvailable,
            format!(
                "{OFFSETS_TOPIC} does not exist yet: the controller creates it once offsets.topic.replication.factor={} nodes are live ({} are)",
                config.offsets_topic_replication_factor,
                image.nodes.len()
            ),
        );
    };
    let Some(placement) = topic.partitions.get(partition as usize) else {
        return failed(
            E::CoordinatorNotAvailable,
            format!("{OFFSETS_TOPIC} partition {partition} does not exist"),
        );
    };
    let Some(node) = image.leader_of(placement) else {
        return failed(
            E::CoordinatorNotAvailable,
            format!(
                "{OFFSETS_TOPIC} partition {partition} has no live leader (replicas {:?}, in sync {:?})",
                placement.replicas, placement.isr
            ),
        );
    };
    Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(node.node_id))
        .with_host(str_bytes(node.host.clone()))
        .with_port(node.port)
}
