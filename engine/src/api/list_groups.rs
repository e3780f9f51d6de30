//! ListGroups: the groups this shard coordinates (each shard is a node; admin clients ask every
//! node), optionally filtered by state (v4+) and type (v5+; all groups here are "classic").

use super::{decode, respond, str_bytes, HandlerResult};
use crate::shard::Shard;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// The type of every group this broker runs (KIP-848 names the classic protocol so).
const CLASSIC: &str = "classic";

/// Answers ListGroups.
pub async fn handle_list_groups(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: ListGroupsRequest = decode(req)?;
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (error, mut groups) = shard.groups.list(shard, &states);
    if !request.types_filter.is_empty()
        && !request
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(CLASSIC))
    {
        groups.clear();
    }
    shard.metrics.record_error(req.api_key as i16, error);
    let groups = groups
        .into_iter()
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type))
                .with_group_state(str_bytes(g.state))
                .with_group_type(str_bytes(CLASSIC))
        })
        .collect();
    respond(
        req,
        &ListGroupsResponse::default()
            .with_error_code(error)
            .with_groups(groups),
    )
}
