//! Small admin requests on top of [`Cluster`]: coordinator lookup (FindCoordinator) and offset
//! listing (ListOffsets sent to each partition's leader).

use super::{topic_name, ClientError, Cluster, Result};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, ListOffsetsRequest};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// FindCoordinator key type of a consumer group.
pub const COORDINATOR_GROUP: i8 = 0;
/// FindCoordinator key type of a transactional id.
pub const COORDINATOR_TRANSACTION: i8 = 1;

/// ListOffsets timestamp asking for the log end offset (the high watermark under
/// READ_UNCOMMITTED).
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets timestamp asking for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets isolation level READ_UNCOMMITTED.
pub const READ_UNCOMMITTED: i8 = 0;
/// ListOffsets isolation level READ_COMMITTED.
pub const READ_COMMITTED: i8 = 1;

/// The node FindCoordinator named for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// The coordinator's node id.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: i32,
}

impl Coordinator {
    /// `host:port`, ready for [`super::Connection::connect`].
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition's answer to ListOffsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset found (-1 when no record matches a timestamp query).
    pub offset: i64,
    /// The timestamp of that record (-1 for the earliest/latest queries).
    pub timestamp: i64,
    /// The partition's error code (0 for none; 3 when the partition is not in Metadata,
    /// 5 when it has no leader).
    pub error_code: i16,
}

impl Cluster {
    /// Asks the bootstrap connection which node coordinates `key` (a group id for
    /// [`COORDINATOR_GROUP`], a transactional id for [`COORDINATOR_TRANSACTION`]). A Kafka error
    /// (COORDINATOR_NOT_AVAILABLE while the coordinator loads, say) is returned as
    /// [`ClientError::Kafka`]; retrying is up to the caller.
    pub async fn find_coordinator(&self, key_type: i8, key: &str) -> Result<Coordinator> {
        let conn = self.control().await?;
        let version = conn.version::<FindCoordinatorRequest>()?;
        let kafka_err = |code: i16, message: Option<&StrBytes>| ClientError::Kafka {
            what: format!("FindCoordinator for '{key}'"),
            code,
            message: message.map(|m| m.to_string()),
        };
        if version < 1 && key_type != COORDINATOR_GROUP {
            return Err(ClientError::Unsupported {
                api: "FindCoordinator for transactions".into(),
                addr: conn.addr().to_string(),
            });
        }
        let req = find_coordinator_request(key_type, key, version);
        let resp = conn.send_at(&req, version).await?;
        if version >= 4 {
            let c = resp
                .coordinators
                .iter()
                .find(|c| c.key.as_str() == key)
                .or_else(|| resp.coordinators.first())
                .ok_or_else(|| {
                    ClientError::Codec("FindCoordinator response lists no coordinator".into())
                })?;
            if c.error_code != 0 {
                return Err(kafka_err(c.error_code, c.error_message.as_ref()));
            }
            Ok(Coordinator {
                node_id: c.node_id.0,
                host: c.host.to_string(),
                port: c.port,
            })
        } else {
            if resp.error_code != 0 {
                return Err(kafka_err(resp.error_code, resp.error_message.as_ref()));
            }
            Ok(Coordinator {
                node_id: resp.node_id.0,
                host: resp.host.to_string(),
                port: resp.port,
            })
        }
    }

    /// ListOffsets for `partitions` (topic, partition) at `timestamp` ([`LATEST_TIMESTAMP`],
    /// [`EARLIEST_TIMESTAMP`] or a time in milliseconds), each partition asked of its leader.
    ///
    /// Refreshes metadata for the topics involved first. Every partition asked for gets an entry;
    /// per-partition failures are in [`ListedOffset::error_code`], while a failed connection or
    /// request fails the whole call.
    pub async fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<BTreeMap<(String, i32), ListedOffset>> {
        let mut out = BTreeMap::new();
        if partitions.is_empty() {
            return Ok(out);
        }
        let mut topics: Vec<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        let md = self.refresh(&topics).await?;
        let failed = |code: i16| ListedOffset {
            offset: -1,
            timestamp: -1,
            error_code: code,
        };
        // leader → topic → partitions
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        for (t, p) in partitions {
            let known = md
                .topics
                .get(t)
                .and_then(|tm| tm.partitions.get(p).map(|pm| (tm.error_code, pm)));
            match known {
                Some((0, pm)) if pm.leader >= 0 => by_leader
                    .entry(pm.leader)
                    .or_default()
                    .entry(t.clone())
                    .or_default()
                    .push(*p),
                Some((0, pm)) => {
                    let code = if pm.error_code != 0 { pm.error_code } else { 5 };
                    out.insert((t.clone(), *p), failed(code));
                }
                _ => {
                    out.insert((t.clone(), *p), failed(3));
                }
            }
        }
        let requests = by_leader.into_iter().map(|(leader, topics)| async move {
            let conn = self.node_conn(leader).await?;
            let version = conn.version::<ListOffsetsRequest>()?;
            let req = list_offsets_request(&topics, timestamp, isolation_level, version);
            let resp = conn.send_at(&req, version).await?;
            Ok::<_, ClientError>((topics, resp))
        });
        for r in futures::future::join_all(requests).await {
            let (asked, resp) = r?;
            for t in &resp.topics {
                for p in &t.partitions {
                    out.insert(
                        (t.name.to_string(), p.partition_index),
                        ListedOffset {
                            offset: p.offset,
                            timestamp: p.timestamp,
                            error_code: p.error_code,
                        },
                    );
                }
            }
            // A partition the leader left out of its answer is an error, not a silent gap.
            for (t, parts) in asked {
                for p in parts {
                    out.entry((t.clone(), p)).or_insert_with(|| failed(3));
                }
            }
        }
        Ok(out)
    }
}

/// FindCoordinator for one key in the shape of `version` (v4+ batches keys; v0 has no key type).
fn find_coordinator_request(key_type: i8, key: &str, version: i16) -> FindCoordinatorRequest {
    let mut req = FindCoordinatorRequest::default();
    if version >= 1 {
        req.key_type = key_type;
    }
    if version >= 4 {
        req.coordinator_keys = vec![StrBytes::from_string(key.to_string())];
    } else {
        req.key = StrBytes::from_string(key.to_string());
    }
    req
}

/// ListOffsets of `topics` (topic → partitions) at `timestamp`, in the shape of `version`.
fn list_offsets_request(
    topics: &BTreeMap<String, Vec<i32>>,
    timestamp: i64,
    isolation_level: i8,
    version: i16,
) -> ListOffsetsRequest {
    let mut req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .iter()
                .map(|(t, parts)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    if version >= 2 {
        req.isolation_level = isolation_level;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, Message};

    #[test]
    fn find_coordinator_encodes_at_every_version() {
        for v in FindCoordinatorRequest::VERSIONS.min..=FindCoordinatorRequest::VERSIONS.max {
            let mut buf = BytesMut::new();
            find_coordinator_request(COORDINATOR_GROUP, "g", v)
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }

    #[test]
    fn list_offsets_encodes_at_every_version() {
        let topics = BTreeMap::from([("t".to_string(), vec![0, 1])]);
        for v in ListOffsetsRequest::VERSIONS.min..=ListOffsetsRequest::VERSIONS.max {
            let mut buf = BytesMut::new();
            list_offsets_request(&topics, LATEST_TIMESTAMP, READ_COMMITTED, v)
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }

    #[test]
    fn coordinator_addr_is_host_colon_port() {
        let c = Coordinator {
            node_id: 1001,
            host: "127.0.0.1".into(),
            port: 9093,
        };
        assert_eq!(c.addr(), "127.0.0.1:9093");
    }
}
