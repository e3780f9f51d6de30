//! OffsetDelete: drops committed offsets of a group, except those of topics its active
//! consumers subscribe to (GROUP_SUBSCRIBED_TO_TOPIC).

use super::{decode, respond, HandlerResult};
use crate::shard::Shard;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use sluice_net::RawRequest;
use std::rc::Rc;

/// Answers OffsetDelete.
pub async fn handle_offset_delete(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: OffsetDeleteRequest = decode(req)?;
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let response = match shard
        .groups
        .delete_offsets(shard, &request.group_id, &partitions)
    {
        Err(code) => OffsetDeleteResponse::default().with_error_code(code),
        Ok(codes) => {
            let mut codes = codes.into_iter();
            let topics = request
                .topics
                .iter()
                .map(|t| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(codes.next().unwrap_or(0))
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    };
    shard
        .metrics
        .record_error(req.api_key as i16, response.error_code);
    respond(req, &response)
}
