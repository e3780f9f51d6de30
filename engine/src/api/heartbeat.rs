//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use super::{decode, respond, HandlerResult};
use crate::shard::Shard;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers Heartbeat.
pub async fn handle_heartbeat(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: HeartbeatRequest = decode(req)?;
    let error = shard.groups.heartbeat(
        shard,
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    shard.metrics.record_error(req.api_key as i16, error);
    respond(req, &HeartbeatResponse::default().with_error_code(error))
}
