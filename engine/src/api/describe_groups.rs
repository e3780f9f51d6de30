//! DescribeGroups: state, protocol and members (with metadata and assignments while Stable).
//! An unknown group is reported Dead (v0–v5) or GROUP_ID_NOT_FOUND (v6+, KIP-1043).

use super::{decode, respond, str_bytes, HandlerResult};
use crate::authorization::{authorized_operations, ResourceKind};
use crate::shard::Shard;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::ResponseError as E;
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers DescribeGroups.
pub async fn handle_describe_groups(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DescribeGroupsRequest = decode(req)?;
    let group_operations =
        authorized_operations(ResourceKind::Group, request.include_authorized_operations);
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let d = shard.groups.describe(shard, id);
            let missing = d.error == 0 && d.state == "Dead" && req.api_version >= 6;
            let (error, message) = if missing {
                (
                    E::GroupIdNotFound.code(),
                    Some(str_bytes(format!("Group {} not found.", id.as_str()))),
                )
            } else {
                (d.error, None)
            };
            shard.metrics.record_error(req.api_key as i16, error);
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.instance_id.map(str_bytes))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            DescribedGroup::default()
                .with_error_code(error)
                .with_error_message(message)
                .with_group_id(id.clone())
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
                .with_authorized_operations(group_operations)
        })
        .collect();
    respond(req, &DescribeGroupsResponse::default().with_groups(groups))
}
