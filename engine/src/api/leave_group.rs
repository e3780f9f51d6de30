//! LeaveGroup: members leave (v0–v2 one member id; v3+ a batch, static members by instance id).

use super::{decode, respond, HandlerResult};
use crate::shard::Shard;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers LeaveGroup.
pub async fn handle_leave_group(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: LeaveGroupRequest = decode(req)?;
    let members: Vec<(String, Option<String>)> = if req.api_version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (error, codes) = shard.groups.leave(shard, &request.group_id, &members);
    let response = if req.api_version >= 3 {
        let members = members
            .into_iter()
            .zip(&codes)
            .map(|((id, instance), code)| {
                MemberResponse::default()
                    .with_member_id(id.into())
                    .with_group_instance_id(instance.map(Into::into))
                    .with_error_code(*code)
            })
            .collect();
        LeaveGroupResponse::default()
            .with_error_code(error)
            .with_members(members)
    } else {
        LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(error))
    };
    shard
        .metrics
        .record_error(req.api_key as i16, response.error_code);
    respond(req, &response)
}
