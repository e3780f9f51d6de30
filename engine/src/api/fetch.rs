//! Fetch: read whole record batches from the leading shard's logs, zero-copy.
//!
//! Each partition's records are a byte range of a segment file; the response is framed here by
//! hand ([`FetchResponseWriter`]) around those ranges, which the connection sends with
//! `sendfile` — the records are never read into user space or re-encoded (the `kafka-protocol`
//! encoder would copy them). Long polling parks the request on the partitions' append events
//! until `min_bytes` are available or `max_wait_ms` passes.
//!
//! Fetch sessions (KIP-227): the broker may decline to create a session, and does so for now
//! (it always answers `session_id` 0, so clients keep sending full fetch requests); a request
//! naming a session id gets FETCH_SESSION_ID_NOT_FOUND.
//!
//! Fetch from follower (KIP-392): from v11 a consumer's fetch names its rack (`client.rack`).
//! A leader whose `replica.selector.class` is rack-aware answers such a fetch, when an in-sync
//! follower on a live broker sits in that rack (and the leader does not), with that follower as
//! `preferred_read_replica` and no records, as Kafka's `ReplicaManager.findPreferredReadReplica`
//! does; the consumer then fetches from the follower. From v11 any replica serves consumers: a
//! follower reads up to its high watermark (the leader's, learnt from its own fetches), answers
//! an offset between its high watermark and its log end with no records, and one past its log
//! end with OFFSET_OUT_OF_RANGE (the consumer then goes back to the leader), as Kafka's
//! `UnifiedLog.read` does. Followers' fetches and ListOffsets stay with the leader.

use super::{decode, HandlerResult};
use crate::config::ReplicaSelector;
use crate::error::read_error_code;
use crate::partition::{Partition, ReadReplicaView};
use crate::replica_manager;
use crate::shard::Shard;
use crate::time::now_ms;
use bytes::{BufMut, Bytes, BytesMut};
use futures::future::select_all;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::ResponseError;
use sluice_net::{FileRegion, RawRequest, Response, ResponsePart};
use sluice_replication::leader::{FollowerFetch, LeaderError};
use sluice_storage::wire::put_uvarint;
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// `isolation_level` READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// The first Fetch version with the consumer's `rack_id` and the response's
/// `preferred_read_replica` (KIP-392): from it consumers may read from followers.
const FETCH_FROM_FOLLOWER_VERSION: i16 = 11;

/// `preferred_read_replica` when the consumer should stay where it is.
const NO_PREFERRED_REPLICA: i32 = -1;

/// A follower replica fetching from this leader: its node id and broker epoch (-1 when the
/// request carries none, below v15).
#[derive(Clone, Copy)]
struct FetchingReplica {
    node: i32,
    broker_epoch: i64,
}

/// What one partition of the request asked for, resolved against this shard.
struct Wanted {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
    leader_epoch: i32,
    /// The fetching follower's log start offset (-1 from consumers, and below v5).
    follower_log_start_offset: i64,
    local: Option<Rc<Partition>>,
    missing_error: i16,
}

/// What the whole request asks of every partition (Kafka's `FetchParams`).
struct ReadParams<'a> {
    /// The request's `max_bytes`, shared by its partitions.
    max_bytes: i32,
    read_committed: bool,
    /// The follower fetching, or `None` for a consumer.
    replica: Option<FetchingReplica>,
    /// The consumer's rack (`client.rack`, Fetch v11+), when it names one.
    client_rack: Option<&'a str>,
}

/// One partition's answer.
struct Answer {
    error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// The replica the consumer should fetch this partition from instead (-1: stay).
    preferred_read_replica: i32,
    records: Option<FileRegion>,
}

/// Answers Fetch.
pub async fn handle_fetch(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: FetchRequest = decode(req)?;
    if request.session_id != 0 || request.session_epoch > 0 {
        let mut writer = FetchResponseWriter::new(
            req.api_version,
            ResponseError::FetchSessionIdNotFound.code(),
        );
        writer.array_len(0);
        writer.tagged_fields();
        return Ok(Some(writer.finish(req.correlation_id)));
    }
    let replica = fetching_replica(req.api_version, &request);
    let consumer_reads_followers =
        replica.is_none() && req.api_version >= FETCH_FROM_FOLLOWER_VERSION;
    let wanted = resolve(shard, req.api_version, &request, consumer_reads_followers);
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let params = ReadParams {
        max_bytes: request.max_bytes,
        read_committed: request.isolation_level == READ_COMMITTED,
        replica,
        client_rack: Some(request.rack_id.as_str())
            .filter(|rack| consumer_reads_followers && !rack.is_empty()),
    };
    loop {
        let (answers, bytes, answer_now) = read_all(shard, &wanted, &params);
        let now = Instant::now();
        let done = bytes >= request.min_bytes.max(0) as u64
            || answer_now
            || now >= deadline
            || shard.shutdown.is_triggered()
            || wanted.iter().all(|w| w.local.is_none());
        if done {
            for (w, a) in wanted.iter().zip(&answers) {
                shard.metrics.record_error(req.api_key as i16, a.error_code);
                if let Some(r) = &a.records {
                    shard.metrics.add_bytes_out(&w.topic, r.len);
                    if replica.is_some() {
                        let throttle = shard.replicas.leader_throttle();
                        throttle.record(&w.topic, w.partition, r.len);
                    }
                }
            }
            return Ok(Some(encode(req, &wanted, answers)));
        }
        let _parked = shard.metrics.fetch_parked();
        let listeners: Vec<_> = wanted
            .iter()
            .filter_map(|w| w.local.as_ref())
            .map(|p| Box::pin(p.listen()))
            .collect();
        futures_lite::future::or(
            async {
                select_all(listeners).await;
            },
            futures_lite::future::or(glommio::timer::sleep(deadline - now), shard.shutdown.wait()),
        )
        .await;
    }
}

/// The follower replica a fetch comes from (`ReplicaState` from v15, `ReplicaId` below), or
/// `None` for a consumer.
fn fetching_replica(version: i16, request: &FetchRequest) -> Option<FetchingReplica> {
    let (node, broker_epoch) = if version >= 15 {
        (
            request.replica_state.replica_id.0,
            request.replica_state.replica_epoch,
        )
    } else {
        (request.replica_id.0, -1)
    };
    (node >= 0).then_some(FetchingReplica { node, broker_epoch })
}

/// Resolves every partition of the request against this shard: the leader's replica, or, when
/// `consumer_reads_followers` (a consumer's fetch from v11), any replica here.
fn resolve(
    shard: &Shard,
    version: i16,
    request: &FetchRequest,
    consumer_reads_followers: bool,
) -> Vec<Wanted> {
    let image = shard.image();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let name = if version >= 13 {
            image.topic_name(&topic.topic_id).map(str::to_string)
        } else {
            Some(topic.topic.0.to_string())
        };
        for p in &topic.partitions {
            let local = name.as_deref().and_then(|n| {
                if consumer_reads_followers {
                    shard.readable_replica(n, p.partition)
                } else {
                    shard.partition(n, p.partition)
                }
            });
            let missing_error = match &name {
                None => ResponseError::UnknownTopicId.code(),
                Some(n) => shard
                    .unserved_partition_error(&image, n, p.partition)
                    .code(),
            };
            wanted.push(Wanted {
                topic: name.clone().unwrap_or_else(|| topic.topic.0.to_string()),
                topic_id: topic.topic_id,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                leader_epoch: p.current_leader_epoch,
                follower_log_start_offset: p.log_start_offset,
                local,
                missing_error,
            });
        }
    }
    wanted
}

/// Reads every partition once; returns the answers, the record bytes found and whether the
/// fetch must be answered at once (a partition failed or was sent to a preferred read replica,
/// as in Kafka). A consumer reads up to the high watermark (the leader's, or on a follower the
/// one it learnt); a follower `replica` reads up to the log end, and its fetch offset is
/// recorded with the leader (which may move the high watermark and grow the ISR).
/// A follower's partition that the leader replication throttle holds back (KIP-73) gets no
/// records.
fn read_all(
    shard: &Rc<Shard>,
    wanted: &[Wanted],
    params: &ReadParams<'_>,
) -> (Vec<Answer>, u64, bool) {
    let mut total: u64 = 0;
    let mut answer_now = false;
    let budget = params.max_bytes.max(0) as u64;
    let answers = wanted
        .iter()
        .map(|w| {
            let Some(p) = &w.local else {
                answer_now = true;
                return Answer {
                    error_code: w.missing_error,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    preferred_read_replica: NO_PREFERRED_REPLICA,
                    records: None,
                };
            };
            let hw = p.high_watermark();
            let lso = hw;
            let log_start = p.log_start_offset();
            let mut answer = Answer {
                error_code: 0,
                high_watermark: hw,
                last_stable_offset: lso,
                log_start_offset: log_start,
                preferred_read_replica: NO_PREFERRED_REPLICA,
                records: None,
            };
            let epoch = p.leader_epoch.get();
            if w.leader_epoch >= 0 && w.leader_epoch != epoch {
                answer.error_code = if w.leader_epoch > epoch {
                    ResponseError::UnknownLeaderEpoch.code()
                } else {
                    ResponseError::FencedLeaderEpoch.code()
                };
                answer_now = true;
                return answer;
            }
            let max_offset = match params.replica {
                Some(follower) => {
                    let log_end = p.log_end_offset();
                    if let Err(code) = record_follower_fetch(shard, p, follower, w, log_end) {
                        answer.error_code = code;
                        answer_now = true;
                        return answer;
                    }
                    answer.high_watermark = p.high_watermark();
                    answer.last_stable_offset = answer.high_watermark;
                    let throttle = shard.replicas.leader_throttle();
                    if throttle.should_throttle(p, follower.node) {
                        return answer;
                    }
                    log_end
                }
                None => {
                    if let Some(node) = params
                        .client_rack
                        .and_then(|rack| preferred_read_replica(shard, p, rack, w.fetch_offset))
                    {
                        answer.preferred_read_replica = node;
                        answer_now = true;
                        return answer;
                    }
                    if params.read_committed {
                        lso
                    } else {
                        hw
                    }
                }
            };
            let limit = (w.max_bytes.max(0) as u64).min(budget.saturating_sub(total));
            let min_one = total == 0;
            match p.read_range(w.fetch_offset, limit as u32, min_one, max_offset) {
                Ok(Some(slice)) if slice.len > 0 => {
                    total += slice.len;
                    answer.records = Some(FileRegion {
                        file: slice.file,
                        position: slice.position,
                        len: slice.len,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    answer.error_code = read_error_code(&e);
                    answer_now = true;
                }
            }
            answer
        })
        .collect();
    (answers, total, answer_now)
}

/// On the leader of `p`, the replica a consumer in `client_rack` fetching from `fetch_offset`
/// should fetch from instead, per `replica.selector.class` (Kafka's
/// `findPreferredReadReplica`); `None` when it should stay with the leader (no selector, not
/// the leader, or no better replica). Candidates are the in-sync followers holding
/// `fetch_offset` on live brokers; their rack is their broker's `broker.rack`.
fn preferred_read_replica(
    shard: &Shard,
    p: &Partition,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    if shard.config.replica_selector != ReplicaSelector::RackAware {
        return None;
    }
    let (leader, followers) = p.read_replicas(fetch_offset, now_ms())?;
    let image = shard.image();
    let rack_of = |node: i32| image.node(node).and_then(|n| n.rack.as_deref());
    let live_followers: Vec<(ReadReplicaView, Option<&str>)> = followers
        .into_iter()
        .filter(|f| image.node(f.node).is_some())
        .map(|f| (f, rack_of(f.node)))
        .collect();
    select_in_rack(client_rack, rack_of(leader.node), &live_followers)
}

/// Kafka's `RackAwareReplicaSelector`, with the leader left out of the answer: `None` (stay
/// with the leader) when the leader is in `client_rack` or no follower is, else the follower in
/// that rack with the largest log end offset, then the most recently caught up, then the
/// largest node id.
fn select_in_rack(
    client_rack: &str,
    leader_rack: Option<&str>,
    followers: &[(ReadReplicaView, Option<&str>)],
) -> Option<i32> {
    if leader_rack == Some(client_rack) {
        return None;
    }
    followers
        .iter()
        .filter(|(_, rack)| *rack == Some(client_rack))
        .map(|(view, _)| view)
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.time_since_caught_up_ms.cmp(&a.time_since_caught_up_ms))
                .then(a.node.cmp(&b.node))
        })
        .map(|view| view.node)
}

/// The leader's side of one partition of a follower's fetch: the follower's fetch offset is its
/// log end offset. A caught-up follower's ISR expansion goes to the controller. Errors are
/// Kafka's codes: OFFSET_OUT_OF_RANGE for a fetch offset past the leader's log end,
/// NOT_LEADER_OR_FOLLOWER for anything else the leader refuses (not a replica, stale broker
/// epoch, leadership lost).
fn record_follower_fetch(
    shard: &Rc<Shard>,
    p: &Rc<Partition>,
    follower: FetchingReplica,
    w: &Wanted,
    leader_log_end: i64,
) -> Result<(), i16> {
    let fetch = FollowerFetch {
        replica_id: follower.node,
        broker_epoch: follower.broker_epoch,
        fetch_offset: w.fetch_offset,
        leader_log_end,
        now_ms: now_ms(),
    };
    match p.record_follower_fetch(&fetch, w.follower_log_start_offset) {
        Ok(Some(expansion)) => {
            replica_manager::send_isr_proposal(shard, p, expansion);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(LeaderError::FetchOffsetOutOfRange { .. }) => {
            Err(ResponseError::OffsetOutOfRange.code())
        }
        Err(_) => Err(ResponseError::NotLeaderOrFollower.code()),
    }
}

fn encode(req: &RawRequest, wanted: &[Wanted], answers: Vec<Answer>) -> Response {
    let mut writer = FetchResponseWriter::new(req.api_version, 0);
    let mut topics: Vec<(usize, usize)> = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        match topics.last_mut() {
            Some((start, len))
                if wanted[*start].topic == w.topic && wanted[*start].topic_id == w.topic_id =>
            {
                *len += 1
            }
            _ => topics.push((i, 1)),
        }
    }
    writer.array_len(topics.len());
    let mut answers = answers.into_iter();
    for (start, len) in topics {
        writer.topic(&wanted[start].topic, wanted[start].topic_id);
        writer.array_len(len);
        for w in &wanted[start..start + len] {
            let Some(a) = answers.next() else { break };
            writer.partition(w.partition, &a);
        }
        writer.tagged_fields();
    }
    writer.tagged_fields();
    writer.finish(req.correlation_id)
}

/// Hand-written encoder of FetchResponse v4–v17 that leaves record data as file regions.
pub struct FetchResponseWriter {
    version: i16,
    buf: BytesMut,
    parts: Vec<ResponsePart>,
}

impl FetchResponseWriter {
    /// Starts a response with the top-level fields (throttle time, error code, session id 0).
    pub fn new(version: i16, error_code: i16) -> FetchResponseWriter {
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0); // throttle_time_ms
        if version >= 7 {
            buf.put_i16(error_code);
            buf.put_i32(0); // session_id: no session
        }
        FetchResponseWriter {
            version,
            buf,
            parts: Vec::new(),
        }
    }

    fn flexible(&self) -> bool {
        self.version >= 12
    }

    fn array_len(&mut self, n: usize) {
        if self.flexible() {
            put_uvarint(&mut self.buf, n as u32 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    fn tagged_fields(&mut self) {
        if self.flexible() {
            self.buf.put_u8(0);
        }
    }

    fn topic(&mut self, name: &str, id: Uuid) {
        if self.version >= 13 {
            self.buf.put_slice(id.as_bytes());
        } else if self.flexible() {
            put_uvarint(&mut self.buf, name.len() as u32 + 1);
            self.buf.put_slice(name.as_bytes());
        } else {
            self.buf.put_i16(name.len() as i16);
            self.buf.put_slice(name.as_bytes());
        }
    }

    fn partition(&mut self, index: i32, a: &Answer) {
        self.buf.put_i32(index);
        self.buf.put_i16(a.error_code);
        self.buf.put_i64(a.high_watermark);
        self.buf.put_i64(a.last_stable_offset);
        if self.version >= 5 {
            self.buf.put_i64(a.log_start_offset);
        }
        // aborted_transactions: null (no transactions yet)
        if self.flexible() {
            put_uvarint(&mut self.buf, 0);
        } else {
            self.buf.put_i32(-1);
        }
        if self.version >= FETCH_FROM_FOLLOWER_VERSION {
            self.buf.put_i32(a.preferred_read_replica);
        }
        let len = a.records.as_ref().map(|r| r.len).unwrap_or(0);
        if self.flexible() {
            put_uvarint(&mut self.buf, len as u32 + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
        if let Some(region) = &a.records {
            let head = self.buf.split().freeze();
            self.parts.push(ResponsePart::Bytes(head));
            self.parts.push(ResponsePart::File(region.clone()));
        }
        self.tagged_fields();
    }

    /// Closes the body and returns the response.
    fn finish(mut self, correlation_id: i32) -> Response {
        if !self.buf.is_empty() {
            let tail: Bytes = self.buf.split().freeze();
            self.parts.push(ResponsePart::Bytes(tail));
        }
        Response {
            correlation_id,
            flexible_header: self.version >= 12,
            parts: self.parts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    /// Frames two partitions (one with file-backed records, one empty) and decodes the result
    /// with kafka-protocol at every supported version.
    #[test]
    fn hand_framed_response_decodes_at_every_version() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"....RECORDS-BYTES....").unwrap();
        let file = Arc::new(file);
        let region = FileRegion {
            file: file.clone(),
            position: 4,
            len: 13,
        };
        let id = Uuid::new_v4();
        for version in 4..=17 {
            let mut w = FetchResponseWriter::new(version, 0);
            w.array_len(1);
            w.topic("orders", id);
            w.array_len(2);
            let full = Answer {
                error_code: 0,
                high_watermark: 10,
                last_stable_offset: 10,
                log_start_offset: 2,
                preferred_read_replica: NO_PREFERRED_REPLICA,
                records: Some(region.clone()),
            };
            w.partition(0, &full);
            let empty = Answer {
                error_code: 1,
                high_watermark: 5,
                last_stable_offset: 5,
                log_start_offset: 0,
                preferred_read_replica: 2001,
                records: None,
            };
            w.partition(3, &empty);
            w.tagged_fields();
            w.tagged_fields();
            let response = w.finish(7);
            let mut bytes = Vec::new();
            for part in &response.parts {
                match part {
                    ResponsePart::Bytes(b) => bytes.extend_from_slice(b),
                    ResponsePart::File(r) => {
                        let mut buf = vec![0; r.len as usize];
                        r.file.read_exact_at(&mut buf, r.position).unwrap();
                        bytes.extend_from_slice(&buf);
                    }
                }
            }
            let mut buf = Bytes::from(bytes);
            let decoded = FetchResponse::decode(&mut buf, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            assert_eq!(buf.remaining(), 0, "v{version}: trailing bytes");
            let topic = &decoded.responses[0];
            if version >= 13 {
                assert_eq!(topic.topic_id, id);
            } else {
                assert_eq!(topic.topic.0.as_str(), "orders");
            }
            let p0 = &topic.partitions[0];
            assert_eq!(p0.high_watermark, 10);
            assert_eq!(p0.records.as_deref(), Some(&b"RECORDS-BYTES"[..]));
            let p1 = &topic.partitions[1];
            assert_eq!((p1.partition_index, p1.error_code), (3, 1));
            if version >= 5 {
                assert_eq!(p0.log_start_offset, 2);
            }
            if version >= 11 {
                assert_eq!(p0.preferred_read_replica, -1, "v{version}");
                assert_eq!(p1.preferred_read_replica, 2001, "v{version}");
            }
        }
    }

    fn view(node: i32, log_end_offset: i64, time_since_caught_up_ms: i64) -> ReadReplicaView {
        ReadReplicaView {
            node,
            log_end_offset,
            time_since_caught_up_ms,
        }
    }

    /// Kafka's `RackAwareReplicaSelector`: the leader when it shares the client's rack or no
    /// follower does, else the most caught-up follower in the rack.
    #[test]
    fn rack_aware_selection_prefers_the_leader_then_the_most_caught_up_follower_in_the_rack() {
        let followers = [
            (view(2000, 10, 5), Some("b")),
            (view(3000, 12, 50), Some("b")),
            (view(4000, 20, 0), Some("c")),
            (view(5000, 30, 0), None),
        ];
        assert_eq!(
            select_in_rack("a", Some("a"), &followers),
            None,
            "leader in rack"
        );
        assert_eq!(
            select_in_rack("d", Some("a"), &followers),
            None,
            "nobody in rack"
        );
        assert_eq!(
            select_in_rack("b", Some("a"), &followers),
            Some(3000),
            "largest log end"
        );
        assert_eq!(select_in_rack("c", None, &followers), Some(4000));
        let tied = [
            (view(2000, 10, 50), Some("b")),
            (view(3000, 10, 5), Some("b")),
            (view(4000, 10, 5), Some("b")),
        ];
        assert_eq!(
            select_in_rack("b", Some("a"), &tied),
            Some(4000),
            "same log end: the most recently caught up, then the largest id"
        );
    }
}
