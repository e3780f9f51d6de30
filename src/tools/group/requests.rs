//! The group requests, each built in the shape of the version the broker negotiated, and the
//! OffsetFetch exchange (whose response shape changes with the version too).

use super::admin::{TopicPartition, GROUP_ID_NOT_FOUND};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use sluice_net::client::{topic_name, ClientError, Connection};
use std::collections::BTreeMap;

/// A group id for requests.
pub fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

/// DescribeGroups of `groups` on `conn`.
pub async fn describe_groups(
    conn: &Connection,
    groups: &[String],
) -> Result<DescribeGroupsResponse, ClientError> {
    let req =
        DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| group_id(g)).collect());
    conn.send(&req).await
}

/// OffsetFetch of every committed offset of `group`: (offsets, per-partition errors).
pub type Fetched = (BTreeMap<TopicPartition, i64>, Vec<(TopicPartition, i16)>);

/// Every committed offset of `group` (OffsetFetch of all partitions) from `conn`, its
/// coordinator; GROUP_ID_NOT_FOUND counts as no offsets.
pub async fn offset_fetch(conn: &Connection, group: &str) -> Result<Fetched, ClientError> {
    let version = conn.version::<OffsetFetchRequest>()?;
    if version < 2 {
        return Err(ClientError::Unsupported {
            api: "OffsetFetch of all partitions (v2+)".into(),
            addr: conn.addr().to_string(),
        });
    }
    let mut offsets = BTreeMap::new();
    let mut errors = Vec::new();
    let kafka = |code: i16| ClientError::Kafka {
        what: format!("fetching the committed offsets of group '{group}'"),
        code,
        message: None,
    };
    let mut add = |t: &str, p: i32, offset: i64, code: i16| {
        if code != 0 {
            errors.push(((t.to_string(), p), code));
        } else {
            offsets.insert((t.to_string(), p), offset);
        }
    };
    if version >= 8 {
        let resp = conn
            .send_at(&offset_fetch_request(group, version), version)
            .await?;
        let g = resp
            .groups
            .iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| ClientError::Codec("OffsetFetch did not answer for the group".into()))?;
        if g.error_code == GROUP_ID_NOT_FOUND {
            return Ok((offsets, errors));
        }
        if g.error_code != 0 {
            return Err(kafka(g.error_code));
        }
        for t in &g.topics {
            for p in &t.partitions {
                add(
                    &t.name.0,
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                );
            }
        }
    } else {
        let resp = conn
            .send_at(&offset_fetch_request(group, version), version)
            .await?;
        if resp.error_code == GROUP_ID_NOT_FOUND {
            return Ok((offsets, errors));
        }
        if resp.error_code != 0 {
            return Err(kafka(resp.error_code));
        }
        for t in &resp.topics {
            for p in &t.partitions {
                add(
                    &t.name.0,
                    p.partition_index,
                    p.committed_offset,
                    p.error_code,
                );
            }
        }
    }
    Ok((offsets, errors))
}

/// OffsetFetch of all partitions of `group` in the shape of `version` (v8+ batches groups).
pub fn offset_fetch_request(group: &str, version: i16) -> OffsetFetchRequest {
    if version >= 8 {
        OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(group_id(group))
            .with_topics(None)])
    } else {
        OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(None)
    }
}

/// ListGroups in the shape of `version` (states filter from v4).
pub fn list_groups_request(states: &[String], version: i16) -> ListGroupsRequest {
    let mut req = ListGroupsRequest::default();
    if version >= 4 {
        req.states_filter = states
            .iter()
            .map(|s| StrBytes::from_string(s.clone()))
            .collect();
    }
    req
}

/// An administrative OffsetCommit (generation -1, no member id) of `offsets`.
pub fn offset_commit_request(
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> OffsetCommitRequest {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        topics.entry(t).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_metadata(Some(StrBytes::from_static_str(""))),
        );
    }
    OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(parts)
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::DeleteGroupsRequest;
    use kafka_protocol::protocol::Request;

    fn encodes_at_every_version<R: Request>(build: impl Fn(i16) -> R) {
        for v in R::VERSIONS.min..=R::VERSIONS.max {
            let mut buf = BytesMut::new();
            build(v)
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("API {} v{v}: {e}", R::KEY));
        }
    }

    #[test]
    fn requests_encode_at_every_version() {
        encodes_at_every_version(|v| offset_fetch_request("g", v));
        encodes_at_every_version(|v| list_groups_request(&["Stable".to_string()], v));
        let offsets = BTreeMap::from([(("t".to_string(), 0), 5), (("t".to_string(), 1), 7)]);
        encodes_at_every_version(|_| offset_commit_request("g", &offsets));
        encodes_at_every_version(|_| {
            DescribeGroupsRequest::default().with_groups(vec![group_id("g")])
        });
        encodes_at_every_version(|_| {
            DeleteGroupsRequest::default().with_groups_names(vec![group_id("g")])
        });
    }
}
