//! SyncGroup: the leader hands in the assignment; every member gets its share.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::group::rebalance::SyncRequest;
use crate::shard::Shard;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers SyncGroup.
pub async fn handle_sync_group(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: SyncGroupRequest = decode(req)?;
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(|s| s.to_string()),
        protocol: request.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let outcome = shard.groups.sync(shard, &request.group_id, sync).await;
    shard
        .metrics
        .record_error(req.api_key as i16, outcome.error);
    respond(
        req,
        &SyncGroupResponse::default()
            .with_error_code(outcome.error)
            .with_protocol_type(outcome.protocol_type.map(str_bytes))
            .with_protocol_name(outcome.protocol.map(str_bytes))
            .with_assignment(outcome.assignment),
    )
}
