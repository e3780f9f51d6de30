//! Groups on disk: the records a group is written as, replaying them at start, and keeping each
//! `__consumer_offsets` partition bounded until the log cleaner exists.
//!
//! Bounding: once a partition holds two segments more than right after its last rewrite, the
//! coordinator rolls the log, appends every live record of the partition's groups (their group
//! metadata and committed offsets) to the new segment, flushes it, and deletes every older
//! segment. Replaying the partition afterwards gives the same state, so the log holds at most
//! the live state plus two segments (`offsets.topic.segment.bytes` each).

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

/// Every live record of `group`: its metadata (if it has any) and its offsets.
pub fn live_records(group: &Group) -> Vec<OffsetsRecordBytes> {
    let mut out = Vec::with_capacity(group.offsets.len() + 1);
    if group.protocol_type.is_some() {
        out.push(group_record(group));
    }
    for ((topic, partition), c) in &group.offsets {
        out.push(offset_record(&group.id, topic, *partition, Some(c)));
    }
    out
}

/// Why writing to `__consumer_offsets` failed, as the Kafka error code the client gets
/// (Kafka's mapping in `GroupMetadataManager.storeOffsets`).
pub fn append_error_code(e: &AppendError) -> i16 {
    match e {
        AppendError::RecordListTooLarge { .. } | AppendError::Batch(_) => {
            E::InvalidCommitOffsetSize.code()
        }
        AppendError::Io(_) => E::NotCoordinator.code(),
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
        partition
            .log
            .borrow_mut()
            .append(&batch, partition.leader_epoch.get(), now_ms)
            .map_err(|e| {
                warn!(
                    "cannot append to {}-{}: {e}",
                    partition.topic, partition.index
                );
                append_error_code(&e)
            })?;
    }
    partition.notify_appended();
    Ok(())
}

/// Rewrites the live state of the partition's groups after a roll and deletes the older
/// segments (see the module docs). Returns (records written, bytes deleted).
pub fn rewrite_live_state<'a>(
    partition: &Partition,
    groups: impl Iterator<Item = &'a Group>,
    now_ms: i64,
) -> Result<(usize, u64), String> {
    partition
        .log
        .borrow_mut()
        .roll_now(now_ms)
        .map_err(|e| e.to_string())?;
    let start = partition.log.borrow().log_end_offset();
    let records: Vec<OffsetsRecordBytes> = groups.flat_map(live_records).collect();
    if !records.is_empty() {
        append_records(partition, &records, now_ms)
            .map_err(|code| format!("append failed with error code {code}"))?;
    }
    let mut log = partition.log.borrow_mut();
    log.flush_now().map_err(|e| e.to_string())?;
    let deleted = log
        .delete_segments_before(start)
        .map_err(|e| e.to_string())?;
    debug_assert_eq!(log.log_start_offset(), start, "only the rewrite is left");
    Ok((records.len(), deleted))
}

/// Rebuilds the groups of one partition from its records, in log order.
pub fn replay(partition: &Partition, now_ms: i64) -> Result<HashMap<String, Group>, RecordsError> {
    let records = {
        let log = partition.log.borrow();
        read_records(&log, log.log_start_offset())?
    };
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
