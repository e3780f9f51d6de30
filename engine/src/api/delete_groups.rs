//! DeleteGroups: removes empty groups and their committed offsets (NON_EMPTY_GROUP while
//! members remain).

use super::{decode, respond, HandlerResult};
use crate::shard::Shard;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers DeleteGroups.
pub async fn handle_delete_groups(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DeleteGroupsRequest = decode(req)?;
    let results = request
        .groups_names
        .iter()
        .map(|id| {
            let error = shard.groups.delete(shard, id);
            shard.metrics.record_error(req.api_key as i16, error);
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(error)
        })
        .collect();
    respond(req, &DeleteGroupsResponse::default().with_results(results))
}
