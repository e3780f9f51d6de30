//! Produce: validate and append record batches on the shard that leads each partition.
//!
//! Record data stays the `Bytes` slice of the request frame all the way into the segment file
//! (the log patches offsets in a separate 61-byte prefix). Durability follows `acks` and the
//! flush policy: a partition whose `flush.messages` is due, or any partition of an acks=all
//! request when `sluice.fsync.acks.all` is on, waits for the shard's group commit before the
//! response goes out. An acks=all produce is refused with NOT_ENOUGH_REPLICAS when the ISR is
//! smaller than `min.insync.replicas`, and once appended waits (at most the request's
//! timeout) until the high watermark covers its records: every in-sync replica has them.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::error::append_error_code;
use crate::partition::Partition;
use crate::shard::Shard;
use crate::time::now_ms;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use sluice_replication::leader::AckError;
use sluice_storage::{AppendError, BatchError};
use std::rc::Rc;
use std::time::Duration;
use uuid::Uuid;

/// Answers Produce.
pub async fn handle_produce(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: ProduceRequest = decode(req)?;
    let acks = request.acks;
    let image = shard.image();
    let now = now_ms();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut to_sync: Vec<(usize, usize, Rc<Partition>)> = Vec::new();
    let mut to_replicate: Vec<(usize, usize, Rc<Partition>, i64)> = Vec::new();
    for (t, topic) in request.topic_data.iter().enumerate() {
        let name = if req.api_version >= 13 {
            image.topic_name(&topic.topic_id).map(str::to_string)
        } else {
            Some(topic.name.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (i, data) in topic.partition_data.iter().enumerate() {
            let mut out = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let partition = name.as_deref().and_then(|n| shard.partition(n, data.index));
            match (&name, partition) {
                _ if !matches!(acks, -1..=1) => {
                    out.error_code = ResponseError::InvalidRequiredAcks.code()
                }
                (None, _) => out.error_code = ResponseError::UnknownTopicId.code(),
                (Some(n), _) if image.topic(n).is_some_and(|t| t.internal) => {
                    out.error_code = ResponseError::InvalidTopicException.code();
                    out.error_message =
                        Some(str_bytes(format!("Cannot append to internal topic {n}")));
                }
                (Some(n), None) => match image
                    .topic(n)
                    .and_then(|t| t.partitions.get(data.index as usize))
                {
                    Some(_)
                        if shard.unserved_partition_error(&image, n, data.index)
                            == ResponseError::KafkaStorageError =>
                    {
                        out.error_code = ResponseError::KafkaStorageError.code();
                    }
                    Some(placement) => {
                        out.error_code = ResponseError::NotLeaderOrFollower.code();
                        out.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(
                                image.leader_of(placement).map_or(-1, |n| n.node_id),
                            ))
                            .with_leader_epoch(placement.leader_epoch);
                    }
                    None => out.error_code = ResponseError::UnknownTopicOrPartition.code(),
                },
                (Some(_), Some(p)) => {
                    let Some(records) = &data.records else {
                        out.error_code = ResponseError::InvalidRecord.code();
                        out.error_message = Some(str_bytes("the partition's records are null"));
                        partitions.push(out);
                        continue;
                    };
                    if acks == -1 {
                        if let Err(e) = p.check_min_isr() {
                            out.error_code = ResponseError::NotEnoughReplicas.code();
                            out.error_message =
                                Some(str_bytes(format!("{}-{}: {e}", p.topic, p.index)));
                            partitions.push(out);
                            continue;
                        }
                    }
                    match p.append_as_leader(records, now) {
                        Ok(info) => {
                            if acks == -1 {
                                to_replicate.push((t, i, p.clone(), info.last_offset + 1));
                            }
                            if !info.duplicate {
                                shard.metrics.add_bytes_in(&p.topic, records.len() as u64);
                            }
                            out.base_offset = info.base_offset;
                            out.log_append_time_ms = info.log_append_time_ms;
                            out.log_start_offset = info.log_start_offset;
                            let fsync_for_acks = acks == -1 && shard.config.fsync_acks_all;
                            if fsync_for_acks || p.needs_flush(now) {
                                to_sync.push((t, i, p.clone()));
                            }
                        }
                        Err(AppendError::Batch(BatchError::RecordsWithoutKey {
                            batch_indexes,
                        })) => {
                            out.error_code = ResponseError::InvalidRecord.code();
                            let (message, record_errors) =
                                unkeyed_record_errors(&p.topic, p.index, &batch_indexes);
                            out.error_message = Some(str_bytes(message));
                            out.record_errors = record_errors;
                            out.log_start_offset = p.log_start_offset();
                        }
                        Err(e) => {
                            out.error_code = append_error_code(&e);
                            out.error_message = Some(str_bytes(e.to_string()));
                            out.log_start_offset = p.log_start_offset();
                        }
                    }
                }
            }
            partitions.push(out);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(if req.api_version >= 13 {
                    topic.topic_id
                } else {
                    Uuid::nil()
                })
                .with_partition_responses(partitions),
        );
    }
    let parked = (!to_sync.is_empty()).then(|| shard.metrics.produce_parked());
    let synced = futures::future::join_all(
        to_sync
            .iter()
            .map(|(_, _, p)| shard.group_commit.sync(p.clone())),
    )
    .await;
    drop(parked);
    for ((t, i, _), result) in to_sync.iter().zip(synced) {
        if let Err(e) = result {
            let out = &mut responses[*t].partition_responses[*i];
            out.error_code = ResponseError::KafkaStorageError.code();
            out.error_message = Some(str_bytes(e.to_string()));
        }
    }
    let replicated = wait_for_replicas(shard, &to_replicate, request.timeout_ms).await;
    for ((t, i, _, _), error) in to_replicate.iter().zip(replicated) {
        let out = &mut responses[*t].partition_responses[*i];
        if out.error_code == 0 {
            if let Some(error) = error {
                out.error_code = error.code();
            }
        }
    }
    for out in responses.iter().flat_map(|t| &t.partition_responses) {
        shard
            .metrics
            .record_error(req.api_key as i16, out.error_code);
    }
    if acks == 0 {
        return Ok(None);
    }
    respond(req, &ProduceResponse::default().with_responses(responses))
}

/// Waits, for each partition of an acks=all produce, until the high watermark covers its
/// records (Kafka's `DelayedProduce`), at most `timeout_ms`. Gives each partition's error:
/// REQUEST_TIMED_OUT when the replicas did not catch up in time, NOT_LEADER_OR_FOLLOWER when
/// leadership moved, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
/// `min.insync.replicas` meanwhile.
async fn wait_for_replicas(
    shard: &Shard,
    partitions: &[(usize, usize, Rc<Partition>, i64)],
    timeout_ms: i32,
) -> Vec<Option<ResponseError>> {
    if partitions.is_empty() {
        return Vec::new();
    }
    let _parked = shard.metrics.produce_parked();
    let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
    let waits = partitions.iter().map(|(_, _, p, required)| async move {
        let wait = match p.wait_for_replicas(*required) {
            Ok(wait) => wait,
            Err(e) => return Some(ack_error_code(e)),
        };
        futures_lite::future::or(async { wait.await.err().map(ack_error_code) }, async {
            glommio::timer::sleep(timeout).await;
            Some(ResponseError::RequestTimedOut)
        })
        .await
    });
    futures::future::join_all(waits).await
}

/// The Kafka error of an acks=all wait that failed.
fn ack_error_code(e: AckError) -> ResponseError {
    match e {
        AckError::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
        AckError::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
    }
}

/// Kafka's answer to records without a key on a compacted topic (`LogValidator.validateKey`):
/// one record error per unkeyed record, and the partition message of Kafka's
/// `RecordValidationException`, which quotes the first three.
fn unkeyed_record_errors(
    topic: &str,
    partition: i32,
    batch_indexes: &[i32],
) -> (String, Vec<BatchIndexAndErrorMessage>) {
    let reason = format!(
        "Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
    );
    let quoted: Vec<String> = batch_indexes
        .iter()
        .take(3)
        .map(|i| format!("RecordError(batchIndex={i}, message='{reason}')"))
        .collect();
    let message = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        batch_indexes.len(),
        quoted.join(", ")
    );
    let record_errors = batch_indexes
        .iter()
        .map(|&i| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i)
                .with_batch_index_error_message(Some(str_bytes(reason.clone())))
        })
        .collect();
    (message, record_errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unkeyed_records_are_reported_as_kafka_does() {
        let (message, errors) = unkeyed_record_errors("t", 2, &[0, 3, 5, 9]);
        let reason = "Compacted topic cannot accept message without key in topic partition t-2.";
        assert_eq!(
            message,
            format!(
                "One or more records have been rejected due to 4 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=0, message='{reason}'), RecordError(batchIndex=3, message='{reason}'), RecordError(batchIndex=5, message='{reason}')]"
            )
        );
        let indexes: Vec<i32> = errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(indexes, [0, 3, 5, 9]);
        assert!(errors
            .iter()
            .all(|e| e.batch_index_error_message.as_deref() == Some(reason)));
    }
}
