//! Groups on disk: the records a group is written as, and replaying them at start.
//!
//! Every change is appended to the group's `__consumer_offsets` partition as Kafka's key/value
//! records; the topic is compacted (`cleanup.policy=compact`), so the shard's log cleaner keeps
//! only the latest record per key and the partition stays bounded by the live state. Replaying
//! a cleaned partition gives the same groups, because only superseded records are dropped.

use super::records::{
    build_batch, decode_group_value, decode_key, decode_offset_value, encode_group_value,
    encode_key, encode_offset_value, read_records, GroupValue, MemberValue, OffsetValue,
    OffsetsKey, RecordsError,
};
use super::state::{CommittedOffset, Group, GroupState, Member};
use crate::partition::Partition;
use bytes::Bytes;
use kafka_protocol::ResponseError as E;
use sluice_storage::AppendError;
use std::collections::HashMap;
use tracing::warn;

/// One record for the partition: key and value (None = tombstone).
pub type OffsetsRecordBytes = (Bytes, Option<Bytes>);

/// Most records written in one batch.
const RECORDS_PER_BATCH: usize = 500;

/// The group metadata record of `group` (a tombstone once it has no protocol type, i.e. it
/// only ever stored offsets).
pub fn group_record(group: &Group) -> OffsetsRecordBytes {
    let key = encode_key(&OffsetsKey::Group {
        group: group.id.clone(),
    });
    let Some(protocol_type) = &group.protocol_type else {
        return (key, None);
    };
    let protocol = group.protocol.clone().unwrap_or_default();
    let value = GroupValue {
        protocol_type: protocol_type.clone(),
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        current_state_timestamp: group.state_since_ms,
        members: group
            .members
            .values()
            .map(|m| MemberValue {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                subscription: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect(),
    };
    (key, Some(encode_group_value(&value)))
}

/// The record of one committed offset (a tombstone for `None`).
pub fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    offset: Option<&CommittedOffset>,
) -> OffsetsRecordBytes {
    let key = encode_key(&OffsetsKey::Offset {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
    });
    let value = offset.map(|c| {
        encode_offset_value(&OffsetValue {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone(),
            commit_timestamp: c.commit_timestamp,
            expire_timestamp: c.expire_timestamp,
        })
    });
    (key, value)
}

/// Why writing to `__consumer_offsets` failed, as the Kafka error code the client gets
/// (Kafka's mapping in `GroupMetadataManager.storeOffsets`).
pub fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::RecordListTooLarge { .. } | AppendError::Batch(_) => {
            E::InvalidCommitOffsetSize.code()
        }
        AppendError::Io(_) | AppendError::TruncationPending => E::NotCoordinator.code(),
        _ => E::UnknownServerError.code(),
    }
}

/// Appends `records` to `partition` in batches; returns the Kafka error code on failure.
pub fn append_records(
    partition: &Partition,
    records: &[OffsetsRecordBytes],
    now_ms: i64,
) -> Result<(), i16> {
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        let batch = build_batch(chunk, now_ms).map_err(|e| {
            warn!("cannot encode a {} batch: {e}", partition.topic);
            E::UnknownServerError.code()
        })?;
        partition.append_as_leader(&batch, now_ms).map_err(|e| {
            warn!(
                "cannot append to {}-{}: {e}",
                partition.topic, partition.index
            );
            append_error_code(&e)
        })?;
    }
    Ok(())
}

/// Rebuilds the groups of one partition from its records, in log order.
pub fn replay(partition: &Partition, now_ms: i64) -> Result<HashMap<String, Group>, RecordsError> {
    let records = read_records(partition, partition.log_start_offset())?;
    let mut groups: HashMap<String, Group> = HashMap::new();
    for record in records {
        let key = match decode_key(&record.key) {
            Ok(k) => k,
            Err(e) => {
                warn!(
                    "skipping record at offset {} of {}-{}: {e}",
                    record.offset, partition.topic, partition.index
                );
                continue;
            }
        };
        let group = groups
            .entry(key.group().to_string())
            .or_insert_with(|| Group::new(key.group(), partition.index, now_ms));
        match (key, record.value) {
            (
                OffsetsKey::Offset {
                    topic, partition, ..
                },
                Some(value),
            ) => {
                let v = decode_offset_value(&value)?;
                group.offsets.insert(
                    (topic, partition),
                    CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp: v.commit_timestamp,
                        expire_timestamp: v.expire_timestamp,
                    },
                );
            }
            (
                OffsetsKey::Offset {
                    topic, partition, ..
                },
                None,
            ) => {
                group.offsets.remove(&(topic, partition));
            }
            (OffsetsKey::Group { .. }, Some(value)) => {
                restore_metadata(group, decode_group_value(&value)?, now_ms)
            }
            (OffsetsKey::Group { group: id }, None) => {
                let offsets = std::mem::take(&mut group.offsets);
                *group = Group::new(&id, partition.index, now_ms);
                group.offsets = offsets;
            }
        }
    }
    groups.retain(|_, g| g.protocol_type.is_some() || !g.offsets.is_empty());
    Ok(groups)
}

/// Applies a group metadata record: a group with members comes back Stable (its members must
/// heartbeat within their session timeout), one without comes back Empty.
fn restore_metadata(group: &mut Group, v: GroupValue, now_ms: i64) {
    group.protocol_type = Some(v.protocol_type);
    group.generation = v.generation;
    group.protocol = v.protocol.clone();
    group.leader = v.leader;
    group.members.clear();
    group.static_members.clear();
    let protocol = v.protocol.unwrap_or_default();
    for m in v.members {
        if let Some(instance) = &m.group_instance_id {
            group
                .static_members
                .insert(instance.clone(), m.member_id.clone());
        }
        group.members.insert(
            m.member_id.clone(),
            Member {
                id: m.member_id,
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                join_waiter: None,
                sync_waiter: None,
                session_deadline_ms: now_ms + i64::from(m.session_timeout_ms),
            },
        );
    }
    let state = if group.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    let since = if state == GroupState::Empty && v.current_state_timestamp >= 0 {
        v.current_state_timestamp
    } else {
        now_ms
    };
    group.transition(state, since);
}
