//! OffsetFetch: committed offsets of one group (v1–v7) or several (v8+); `topics = null` asks
//! for every committed partition. `require_stable` needs no waiting: there are no pending
//! transactional offsets yet.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::group::offsets::FetchedOffset;
use crate::shard::Shard;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use sluice_net::RawRequest;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Answers OffsetFetch.
pub async fn handle_offset_fetch(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: OffsetFetchRequest = decode(req)?;
    if req.api_version >= 8 {
        let groups = request
            .groups
            .iter()
            .map(|g| {
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let (error, offsets) = fetch(shard, &g.group_id, topics.as_deref());
                shard.metrics.record_error(req.api_key as i16, error);
                let topics = by_topic(offsets)
                    .into_iter()
                    .map(|(name, offsets)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(name)))
                            .with_partitions(
                                offsets
                                    .into_iter()
                                    .map(|o| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(o.partition)
                                            .with_committed_offset(o.offset)
                                            .with_committed_leader_epoch(o.leader_epoch)
                                            .with_metadata(Some(str_bytes(o.metadata)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(str_bytes(g.group_id.to_string())))
                    .with_topics(topics)
                    .with_error_code(error)
            })
            .collect();
        return respond(req, &OffsetFetchResponse::default().with_groups(groups));
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let (error, offsets) = fetch(shard, &request.group_id, topics.as_deref());
    shard.metrics.record_error(req.api_key as i16, error);
    let topics = by_topic(offsets)
        .into_iter()
        .map(|(name, offsets)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(
                    offsets
                        .into_iter()
                        .map(|o| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(o.partition)
                                .with_committed_offset(o.offset)
                                .with_committed_leader_epoch(o.leader_epoch)
                                .with_metadata(Some(str_bytes(o.metadata)))
                                .with_error_code(if req.api_version < 2 { error } else { 0 })
                        })
                        .collect(),
                )
        })
        .collect();
    respond(
        req,
        &OffsetFetchResponse::default()
            .with_topics(topics)
            .with_error_code(error),
    )
}

/// The group-level error and the offsets found.
fn fetch(
    shard: &Shard,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> (i16, Vec<FetchedOffset>) {
    match shard.groups.fetch(shard, group, topics) {
        Ok(offsets) => (0, offsets),
        Err(code) => (code, Vec::new()),
    }
}

/// Offsets grouped by topic, in the order topics first appear.
fn by_topic(offsets: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
    for o in offsets {
        if !groups.contains_key(&o.topic) {
            order.push(o.topic.clone());
        }
        groups.entry(o.topic.clone()).or_default().push(o);
    }
    order
        .into_iter()
        .map(|t| {
            let offsets = groups.remove(&t).unwrap_or_default();
            (t, offsets)
        })
        .collect()
}
