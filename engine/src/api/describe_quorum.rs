//! DescribeQuorum (v0–v2): the controller quorum of the metadata log, as its leader sees it.
//!
//! Any shard of any broker answers: shard 0 asks the active controller (forwarding, as Kafka's
//! brokers do) and the answer describes partition 0 of `__cluster_metadata`: the leader, its
//! epoch, the high watermark, and every voter's and observer's log end offset. Ids are
//! `node.id`s, as in `controller.quorum.voters`. A request for another topic or partition gets
//! UNKNOWN_TOPIC_OR_PARTITION; when no leader answers in time, REQUEST_TIMED_OUT.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::config::BrokerConfig;
use crate::controller_rpc::{QuorumView, ReplicaView};
use crate::shard::Shard;
use crate::time::now_ms;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;

/// The metadata log's topic name, as Kafka calls it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Answers DescribeQuorum.
pub async fn handle_describe_quorum(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DescribeQuorumRequest = decode(req)?;
    let asks_for_log = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_for_log {
        return respond(
            req,
            &DescribeQuorumResponse::default()
                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                .with_error_message(Some(str_bytes(format!(
                    "DescribeQuorum describes {METADATA_TOPIC} partition 0 only"
                )))),
        );
    }
    let response = match shard.router.describe_quorum().await {
        Ok(view) => describe(&view, &shard.config),
        Err(why) => DescribeQuorumResponse::default()
            .with_error_code(ResponseError::RequestTimedOut.code())
            .with_error_message(Some(str_bytes(why))),
    };
    respond(req, &response)
}

/// The response describing `view`, with the voters' controller listeners from `config`.
pub fn describe(view: &QuorumView, config: &BrokerConfig) -> DescribeQuorumResponse {
    let now = now_ms();
    let replica = |r: &ReplicaView| {
        let caught_up = r.last_caught_up_ms_ago.map_or(-1, |ago| {
            now - i64::try_from(ago).unwrap_or(i64::MAX).min(now)
        });
        ReplicaState::default()
            .with_replica_id(BrokerId(r.id))
            .with_log_end_offset(r.log_end_offset)
            .with_last_fetch_timestamp(caught_up)
            .with_last_caught_up_timestamp(caught_up)
    };
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(view.leader.unwrap_or(-1)))
        .with_leader_epoch(i32::try_from(view.epoch).unwrap_or(i32::MAX))
        .with_high_watermark(i64::try_from(view.high_watermark).unwrap_or(i64::MAX))
        .with_current_voters(view.voters.iter().map(replica).collect())
        .with_observers(view.observers.iter().map(replica).collect());
    let listener = config
        .controller_listener
        .as_ref()
        .map_or("CONTROLLER".to_string(), |l| l.name.clone());
    let nodes = config
        .controller_quorum_voters
        .iter()
        .map(|v| {
            Node::default()
                .with_node_id(BrokerId(v.id))
                .with_listeners(vec![Listener::default()
                    .with_name(str_bytes(listener.clone()))
                    .with_host(str_bytes(v.host.clone()))
                    .with_port(v.port)])
        })
        .collect();
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}
