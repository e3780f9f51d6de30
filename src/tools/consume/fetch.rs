//! Fetching: each round sends one Fetch per leader (concurrently) for the partitions still
//! being read, and hands the records at or after each partition's position, and below its
//! limit, to a callback in offset order.

use crate::tools::common::{code_text, ToolError};
use crate::tools::records::{decode_records, whole_batches};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::records::Record;
use sluice_net::client::{topic_name, ClientError, Cluster};
use std::collections::BTreeMap;
use std::time::Duration;

/// Partition errors after which metadata is refreshed and the fetch retried:
/// UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
/// FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_ID.
const RETRIABLE: [i16; 6] = [3, 5, 6, 74, 75, 100];
/// OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Most bytes asked of one partition per fetch.
const PARTITION_MAX_BYTES: i32 = 1 << 20;

/// Where one partition is: the next offset to read, and the offset reading stops at (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The next offset to read.
    pub next: i64,
    /// Records at this offset or later are not read.
    pub limit: Option<i64>,
}

impl Position {
    /// Whether the partition has reached its limit.
    pub fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.next >= l)
    }
}

/// Fetches the partitions of one topic.
pub struct Fetcher<'a> {
    /// The cluster (metadata and connections).
    pub cluster: &'a Cluster,
    /// The topic.
    pub topic: String,
    /// How long a fetch may wait for data.
    pub max_wait: Duration,
}

impl Fetcher<'_> {
    /// One round over the partitions not done; `on_record(partition, record)` returns false to
    /// stop at once (the position then follows the last record handed over). Returns whether
    /// any position moved.
    pub async fn round(
        &self,
        positions: &mut BTreeMap<i32, Position>,
        on_record: &mut impl FnMut(i32, &Record) -> bool,
    ) -> Result<bool, ToolError> {
        let md = self.cluster.metadata();
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        let mut refresh = false;
        for (p, pos) in positions.iter().filter(|(_, pos)| !pos.done()) {
            match md.leader(&self.topic, *p) {
                Some(l) => by_leader.entry(l).or_default().push((*p, pos.next)),
                None => refresh = true,
            }
        }
        let fetches = by_leader
            .into_iter()
            .map(|(leader, parts)| self.fetch(leader, parts));
        let mut progressed = false;
        for resp in futures::future::join_all(fetches).await {
            let resp = match resp {
                Ok(r) => r,
                Err(ClientError::Broken { .. } | ClientError::Timeout { .. }) => {
                    refresh = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if resp.error_code != 0 {
                return Err(ToolError::Message(format!(
                    "Fetch failed: {}",
                    code_text(resp.error_code)
                )));
            }
            for p in resp.responses.iter().flat_map(|t| &t.partitions) {
                let Some(pos) = positions.get_mut(&p.partition_index) else {
                    continue;
                };
                match p.error_code {
                    0 => {}
                    code if RETRIABLE.contains(&code) => {
                        refresh = true;
                        continue;
                    }
                    OFFSET_OUT_OF_RANGE => {
                        return Err(ToolError::Message(format!(
                            "offset {} is out of range for {}-{} (log start {}, end {}); choose \
                             another --from",
                            pos.next,
                            self.topic,
                            p.partition_index,
                            p.log_start_offset,
                            p.high_watermark
                        )))
                    }
                    code => {
                        return Err(ToolError::Message(format!(
                            "fetching {}-{} failed: {}",
                            self.topic,
                            p.partition_index,
                            code_text(code)
                        )))
                    }
                }
                let Some(data) = &p.records else { continue };
                let before = *pos;
                let keep_going = deliver(p.partition_index, data, pos, on_record)?;
                progressed |= *pos != before;
                if !keep_going {
                    return Ok(progressed);
                }
            }
        }
        if refresh {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            self.cluster
                .refresh(std::slice::from_ref(&self.topic))
                .await?;
        }
        Ok(progressed)
    }

    async fn fetch(
        &self,
        leader: i32,
        parts: Vec<(i32, i64)>,
    ) -> Result<FetchResponse, ClientError> {
        let conn = self.cluster.node_conn(leader).await?;
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.max_wait.as_millis().min(i32::MAX as u128) as i32)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(&self.topic))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, offset)| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_current_leader_epoch(-1)
                                .with_fetch_offset(*offset)
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(PARTITION_MAX_BYTES)
                        })
                        .collect(),
                )]);
        let version = conn.version::<FetchRequest>()?;
        conn.submit_at(&req, version, self.max_wait).await?.await
    }
}

/// Hands the records of `data` at or after `pos.next` and below `pos.limit` to `on_record`,
/// moving `pos`; false when `on_record` asked to stop.
fn deliver(
    partition: i32,
    data: &bytes::Bytes,
    pos: &mut Position,
    on_record: &mut impl FnMut(i32, &Record) -> bool,
) -> Result<bool, ToolError> {
    let corrupt = |e: String| ToolError::Message(format!("partition {partition}: {e}"));
    for (header, batch) in whole_batches(data).map_err(corrupt)? {
        if header.last_offset() < pos.next {
            continue;
        }
        if !header.is_control() {
            for r in decode_records(&header, &batch).map_err(corrupt)? {
                if r.offset < pos.next {
                    continue;
                }
                if let Some(l) = pos.limit.filter(|l| r.offset >= *l) {
                    pos.next = l;
                    return Ok(true);
                }
                pos.next = r.offset + 1;
                if !on_record(partition, &r) {
                    return Ok(false);
                }
            }
        }
        pos.next = match pos.limit {
            Some(l) => header.next_offset().min(l),
            None => header.next_offset(),
        };
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::produce::batch::encode;
    use crate::tools::produce::input::split_line;
    use bytes::{BufMut, BytesMut};
    use sluice_storage::Compression;

    /// Two batches: offsets 0-2 and 3-4 (values v0…v4).
    fn data() -> bytes::Bytes {
        let mut out = BytesMut::new();
        for (base, n) in [(0i64, 3i64), (3, 2)] {
            let lines: Vec<_> = (base..base + n)
                .map(|i| split_line(format!("v{i}").as_bytes(), None))
                .collect();
            let mut b = BytesMut::from(&encode(&lines, &[], 0, Compression::None).unwrap()[..]);
            b[..8].copy_from_slice(&base.to_be_bytes());
            out.put_slice(&b);
        }
        out.freeze()
    }

    fn collect(pos: &mut Position, stop_after: usize) -> (bool, Vec<i64>) {
        let mut seen = Vec::new();
        let go = deliver(0, &data(), pos, &mut |_, r| {
            seen.push(r.offset);
            seen.len() < stop_after
        })
        .unwrap();
        (go, seen)
    }

    #[test]
    fn skips_below_the_position_and_stops_at_the_limit() {
        let mut pos = Position {
            next: 1,
            limit: Some(4),
        };
        assert_eq!(collect(&mut pos, 10), (true, vec![1, 2, 3]));
        assert_eq!(pos.next, 4);
        assert!(pos.done());
    }

    #[test]
    fn a_stop_leaves_the_position_after_the_last_record() {
        let mut pos = Position {
            next: 0,
            limit: None,
        };
        assert_eq!(collect(&mut pos, 2), (false, vec![0, 1]));
        assert_eq!(pos.next, 2);
        let mut pos = Position {
            next: 0,
            limit: None,
        };
        assert_eq!(collect(&mut pos, 10), (true, vec![0, 1, 2, 3, 4]));
        assert_eq!(pos.next, 5);
    }
}
