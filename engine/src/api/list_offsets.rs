//! PLACEHOLDER being written by a helper.

use super::HandlerResult;
use crate::shard::Shard;
use sluice_net::RawRequest;
use std::rc::Rc;

/// Placeholder.
pub async fn handle_list_offsets(_shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    Err(format!("{:?} not implemented yet", req.api_key))
}
