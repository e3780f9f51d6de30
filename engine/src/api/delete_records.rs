//! DeleteRecords (v0–v2): moves the log start offset of partitions this shard leads, as Kafka's
//! `ReplicaManager.deleteRecords` and `Partition.deleteRecordsOnLeader`:
//!
//! * a topic or partition that does not exist gets UNKNOWN_TOPIC_OR_PARTITION, one led by
//!   another shard NOT_LEADER_OR_FOLLOWER (clients send it to the leader, as produce);
//! * internal topics (`__consumer_offsets`) get INVALID_TOPIC_EXCEPTION;
//! * a topic whose `cleanup.policy` lacks `delete` gets POLICY_VIOLATION;
//! * offset -1 means the high watermark; a negative offset or one beyond the high watermark
//!   gets OFFSET_OUT_OF_RANGE;
//! * otherwise the log start offset moves there (never backwards), the segments wholly below it
//!   are deleted (renamed `.deleted`, unlinked after `file.delete.delay.ms`), and the answer is
//!   the new low watermark — the log start offset, since there are no followers yet to wait
//!   for. `timeout_ms` therefore has nothing to bound.

use super::{decode, respond, HandlerResult};
use crate::error::{log_start_offset_error_code, NONE};
use crate::metadata::MetadataImage;
use crate::retention::finish_segment_deletions;
use crate::shard::Shard;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;
use tracing::{error, info};

/// `offset` meaning "up to the high watermark" (Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`).
pub const HIGH_WATERMARK: i64 = -1;
/// Low watermark of a failed partition (Kafka's `DeleteRecordsResponse.INVALID_LOW_WATERMARK`).
const INVALID_LOW_WATERMARK: i64 = -1;

/// Answers DeleteRecords.
pub async fn handle_delete_records(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DeleteRecordsRequest = decode(req)?;
    let image = shard.image();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let result = delete_records(shard, name, p.partition_index, p.offset, &image);
            let (low_watermark, error_code) = match result {
                Ok(low_watermark) => (low_watermark, NONE),
                Err(code) => (INVALID_LOW_WATERMARK, code),
            };
            shard.metrics.record_error(req.api_key as i16, error_code);
            partitions.push(
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_low_watermark(low_watermark)
                    .with_error_code(error_code),
            );
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    respond(req, &DeleteRecordsResponse::default().with_topics(topics))
}

/// Deletes the records of `topic`-`index` below `offset`; returns the new low watermark or the
/// Kafka error code.
fn delete_records(
    shard: &Shard,
    topic: &str,
    index: i32,
    offset: i64,
    image: &MetadataImage,
) -> Result<i64, i16> {
    let Some(topic_image) = image.topic(topic) else {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    };
    if index < 0 || index as usize >= topic_image.partitions.len() {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    if topic_image.internal {
        return Err(ResponseError::InvalidTopicException.code());
    }
    let Some(partition) = shard.partition(topic, index) else {
        return Err(shard.unserved_partition_error(image, topic, index).code());
    };
    if !partition.config.borrow().cleanup_policy.delete {
        return Err(ResponseError::PolicyViolation.code());
    }
    let requested = if offset == HIGH_WATERMARK {
        partition.high_watermark()
    } else {
        offset
    };
    let moved = partition
        .delete_records_before(requested)
        .map_err(|e| log_start_offset_error_code(&e))?;
    let deleted = partition.delete_segments_below_log_start();
    if moved {
        info!(
            shard = shard.id,
            "DeleteRecords moved the log start offset of {topic}-{index} to {requested}"
        );
        shard.log_start_offsets_changed();
    }
    // The segments are deleted as part of retention in Kafka: a failure here does not undo
    // the move, and the next retention check retries it.
    match deleted {
        Ok(deletions) => finish_segment_deletions(shard, &partition, deletions),
        Err(e) => error!(
            shard = shard.id,
            "cannot delete the segments of {topic}-{index} below its log start offset: {e}"
        ),
    }
    Ok(partition.log_start_offset())
}
