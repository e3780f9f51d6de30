//! JoinGroup: a member joins (or rejoins) a classic group and waits for the rebalance.
//!
//! The response is parked until the join phase completes (see `group::rebalance`); the
//! connection's later requests wait behind it, as on Kafka.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::group::rebalance::JoinRequest;
use crate::shard::Shard;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers JoinGroup.
pub async fn handle_join_group(
    shard: &Rc<Shard>,
    req: &RawRequest,
    client_host: &str,
) -> HandlerResult {
    let request: JoinGroupRequest = decode(req)?;
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: req.client_id.clone().unwrap_or_default(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if req.api_version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: req.api_version >= 4,
    };
    let outcome = shard.groups.join(shard, &request.group_id, join).await;
    shard
        .metrics
        .record_error(req.api_key as i16, outcome.error);
    let members = outcome
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.instance_id.map(str_bytes))
                .with_metadata(m.metadata)
        })
        .collect();
    let protocol_type = outcome
        .protocol_type
        .filter(|_| req.api_version >= 7)
        .map(str_bytes);
    let protocol_name = match (outcome.protocol, req.api_version >= 7) {
        (Some(p), _) => Some(str_bytes(p)),
        (None, true) => None,
        (None, false) => Some(str_bytes("")),
    };
    respond(
        req,
        &JoinGroupResponse::default()
            .with_error_code(outcome.error)
            .with_generation_id(outcome.generation)
            .with_protocol_type(protocol_type)
            .with_protocol_name(protocol_name)
            .with_leader(str_bytes(outcome.leader))
            .with_member_id(str_bytes(outcome.member_id))
            .with_members(members),
    )
}
