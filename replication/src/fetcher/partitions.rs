//! The partitions of one replica fetcher and every decision about them (Kafka's
//! `AbstractFetcherThread` without its thread): which partitions go in the next
//! OffsetForLeaderEpoch, Fetch and ListOffsets requests, and what each answer does to the
//! partition's state and its log.
//!
//! Nothing here touches a socket or a timer: the fetcher task sends the requests built here
//! and hands the answers back, with the time. A partition's answer is applied only while the
//! partition is still in the state the request was built from (same leader epoch, same phase,
//! log end where the fetch started), so a partition removed, re-armed or truncated while its
//! request was in flight ignores the stale answer, as Kafka's fetcher does.

use super::log::{FollowerLog, FollowerLogError};
use super::truncation::{
    follower_high_watermark, out_of_range_reset, truncate_log, truncation_for_epoch_end_offset,
    OutOfRangeReset, Truncation,
};
use super::{FetchPhase, FollowerPartition, FollowerStatus, ReplicaFetcherConfig, TopicPartition};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_net::client::error_name;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Kafka's error code NONE.
const NONE: i16 = 0;
/// Kafka's error code OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// The lowest Fetch version a replica fetcher speaks: v12 brings `last_fetched_epoch` and
/// `diverging_epoch` (KIP-320), which truncation on fetch needs.
pub const FETCH_MIN_VERSION: i16 = 12;
/// The highest Fetch version a replica fetcher speaks (the highest the broker serves).
pub const FETCH_MAX_VERSION: i16 = 17;
/// The first Fetch version that names topics by id.
const FETCH_TOPIC_ID_VERSION: i16 = 13;
/// The first Fetch version with `ReplicaState` instead of `replica_id` (KIP-903).
const FETCH_REPLICA_STATE_VERSION: i16 = 15;
/// The lowest OffsetForLeaderEpoch version a replica fetcher speaks: v3 brings `replica_id`.
pub const OFFSET_FOR_LEADER_EPOCH_MIN_VERSION: i16 = 3;
/// The highest OffsetForLeaderEpoch version a replica fetcher speaks.
pub const OFFSET_FOR_LEADER_EPOCH_MAX_VERSION: i16 = 4;
/// The lowest ListOffsets version a replica fetcher speaks: v4 brings `current_leader_epoch`.
pub const LIST_OFFSETS_MIN_VERSION: i16 = 4;
/// The highest ListOffsets version a replica fetcher speaks.
pub const LIST_OFFSETS_MAX_VERSION: i16 = 7;
/// ListOffsets' special timestamp for the log end offset (for a replica id).
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets' special timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// The Fetch version to send: the highest both sides speak, but v12 (topics by name) when
/// some partition's topic id is unknown (nil), as Kafka falls back for topics without ids.
pub fn fetch_version(negotiated: i16, all_topic_ids_known: bool) -> i16 {
    debug_assert!(
        (FETCH_MIN_VERSION..=FETCH_MAX_VERSION).contains(&negotiated),
        "Fetch v{negotiated} outside the replica fetcher's range"
    );
    if all_topic_ids_known {
        negotiated
    } else {
        negotiated.min(FETCH_TOPIC_ID_VERSION - 1)
    }
}

/// The fetch state of one partition (Kafka's `PartitionFetchState`).
struct PartitionFetchState {
    topic_id: Uuid,
    log: Rc<dyn FollowerLog>,
    /// The leader epoch the follower knows, sent as `current_leader_epoch`.
    leader_epoch: i32,
    phase: FetchPhase,
    /// The epoch to ask the leader about next while a KIP-279 exchange continues; `None` asks
    /// about the log's latest epoch.
    truncation_epoch: Option<i32>,
    /// Not fetched before this instant (after an error).
    delayed_until: Option<Instant>,
    /// The high watermark of the last fetch response.
    leader_high_watermark: Option<i64>,
    last_error: Option<String>,
    /// Whether `follower.replication.throttled.replicas` names this replica.
    throttled: bool,
}

impl PartitionFetchState {
    fn new(p: &FollowerPartition) -> PartitionFetchState {
        PartitionFetchState {
            topic_id: p.topic_id,
            log: p.log.clone(),
            leader_epoch: p.leader_epoch,
            phase: FetchPhase::Truncating,
            truncation_epoch: None,
            delayed_until: None,
            leader_high_watermark: None,
            last_error: None,
            throttled: p.throttled,
        }
    }

    /// Whether the replica has caught up with the leader: its log end has reached the high
    /// watermark of the last fetch response (Kafka's `isReplicaInSync`, lag 0). Unknown before
    /// the first response: not in sync.
    fn in_sync(&self) -> bool {
        self.leader_high_watermark
            .is_some_and(|hw| self.log.log_end_offset() >= hw)
    }

    /// Whether the partition stays out of the next Fetch (Kafka's `shouldFollowerThrottle`):
    /// throttled, the follower quota exceeded, and not in sync (an in-sync replica is never
    /// held back, so that the ISR does not shrink because of the throttle).
    fn follower_throttled(&self, quota_exceeded: bool) -> bool {
        quota_exceeded && self.throttled && !self.in_sync()
    }

    /// Whether the partition may go in a request now.
    fn ready(&self, now: Instant) -> bool {
        match self.delayed_until {
            Some(until) => until <= now,
            None => true,
        }
    }

    /// Starts the truncation phase again (a new leader epoch, or the engine re-adding it).
    fn rearm(&mut self) {
        self.phase = FetchPhase::Truncating;
        self.truncation_epoch = None;
        self.delayed_until = None;
        self.last_error = None;
    }

    /// Holds the partition back for `backoff` after an error (Kafka's `delayPartitions`),
    /// logging the error when it differs from the previous one.
    fn delay(&mut self, tp: &TopicPartition, now: Instant, backoff: Duration, why: String) {
        if self.last_error.as_deref() != Some(why.as_str()) {
            tracing::warn!(
                partition = %tp,
                leader_epoch = self.leader_epoch,
                "{why}; retrying in {} ms",
                backoff.as_millis()
            );
        }
        self.delayed_until = Some(now + backoff);
        self.last_error = Some(why);
    }

    /// A log operation failed: invalid records are retried after the backoff, a storage error
    /// stops the partition until the engine re-adds it (Kafka's `markPartitionFailed`).
    fn log_failed(
        &mut self,
        tp: &TopicPartition,
        now: Instant,
        backoff: Duration,
        error: FollowerLogError,
    ) {
        match error {
            FollowerLogError::InvalidRecords(_) => self.delay(tp, now, backoff, error.to_string()),
            FollowerLogError::Storage(_) => {
                tracing::error!(partition = %tp, "{error}; the partition stops fetching");
                self.phase = FetchPhase::Failed;
                self.last_error = Some(error.to_string());
            }
        }
    }

    /// Applies a truncation decided from the leader's epoch end offset: a complete one ends
    /// the truncation phase, a continued one asks the leader again about a lower epoch.
    fn truncate(
        &mut self,
        tp: &TopicPartition,
        truncation: Truncation,
        now: Instant,
        backoff: Duration,
    ) {
        let log_end = self.log.log_end_offset();
        match truncate_log(&*self.log, truncation.offset()) {
            Ok(changed) => {
                if changed {
                    tracing::info!(
                        partition = %tp,
                        leader_epoch = self.leader_epoch,
                        from = log_end,
                        to = truncation.offset(),
                        "truncated the follower log to the leader's"
                    );
                }
                match truncation {
                    Truncation::Complete { .. } => {
                        self.phase = FetchPhase::Fetching;
                        self.truncation_epoch = None;
                    }
                    Truncation::Continue { next_epoch, .. } => {
                        self.phase = FetchPhase::Truncating;
                        self.truncation_epoch = Some(next_epoch);
                    }
                }
                self.last_error = None;
            }
            Err(e) => self.log_failed(tp, now, backoff, e),
        }
    }
}

/// The epochs asked about for one partition in an OffsetForLeaderEpoch request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AskedEpoch {
    current_leader_epoch: i32,
    epoch: i32,
}

/// An OffsetForLeaderEpoch request for the truncating partitions, with what it asked.
pub struct EpochRound {
    /// The request to send (v3+).
    pub request: OffsetForLeaderEpochRequest,
    asked: HashMap<TopicPartition, AskedEpoch>,
}

/// What one partition's Fetch entry was built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SentPartition {
    fetch_offset: i64,
    leader_epoch: i32,
}

/// A Fetch request for the fetching partitions, with what it asked.
pub struct FetchRound {
    /// The request to send.
    pub request: FetchRequest,
    /// The version it is built for (send it at exactly this version).
    pub version: i16,
    sent: HashMap<TopicPartition, SentPartition>,
    names_by_id: HashMap<Uuid, String>,
}

/// A partition whose fetch offset the leader found out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    tp: TopicPartition,
    leader_epoch: i32,
    fetch_offset: i64,
}

/// What a Fetch response led to beyond the partitions' own states.
#[derive(Debug, Default)]
pub struct FetchOutcome {
    /// Partitions whose offset was out of range: the task asks the leader for its log start
    /// and end ([`FetcherPartitions::list_offsets_request`]).
    pub out_of_range: Vec<OutOfRange>,
    /// Bytes of whole batches appended, over all partitions.
    pub appended_bytes: usize,
    /// Bytes appended for the throttled partitions (in sync or not), which the fetcher
    /// records against the follower quota, as Kafka's `processPartitionData` does.
    pub throttled_bytes: usize,
}

/// The partitions of one fetcher, in fetch order.
#[derive(Default)]
pub struct FetcherPartitions {
    states: HashMap<TopicPartition, PartitionFetchState>,
    /// Fetch order: partitions that received data move to the end, so that a response cut
    /// at `replica.fetch.response.max.bytes` does not starve the partitions after them.
    order: Vec<TopicPartition>,
}

impl FetcherPartitions {
    /// No partitions.
    pub fn new() -> FetcherPartitions {
        FetcherPartitions::default()
    }

    /// The number of partitions.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether `tp` is one of them.
    pub fn contains(&self, tp: &TopicPartition) -> bool {
        self.states.contains_key(tp)
    }

    /// Adds a partition, which starts by truncating; or, for one already here, adopts its new
    /// log handle and topic id and truncates again only when the leader epoch changed or it
    /// had failed (Kafka keeps the fetch state of a partition re-added with the same epoch).
    /// Returns whether the partition (re)starts truncating.
    pub fn upsert(&mut self, partition: &FollowerPartition) -> bool {
        let tp = partition.topic_partition();
        match self.states.get_mut(&tp) {
            Some(state) => {
                state.log = partition.log.clone();
                state.topic_id = partition.topic_id;
                state.throttled = partition.throttled;
                if state.leader_epoch == partition.leader_epoch && state.phase != FetchPhase::Failed
                {
                    return false;
                }
                state.leader_epoch = partition.leader_epoch;
                state.rearm();
                true
            }
            None => {
                self.states
                    .insert(tp.clone(), PartitionFetchState::new(partition));
                self.order.push(tp);
                true
            }
        }
    }

    /// New leadership information for `tp`: a different leader epoch starts the truncation
    /// phase again; in every case a delay from an earlier error ends. Returns whether the
    /// partition is here.
    pub fn update_leader_epoch(&mut self, tp: &TopicPartition, leader_epoch: i32) -> bool {
        let Some(state) = self.states.get_mut(tp) else {
            return false;
        };
        if state.leader_epoch != leader_epoch || state.phase == FetchPhase::Failed {
            state.leader_epoch = leader_epoch;
            state.rearm();
        } else {
            state.delayed_until = None;
        }
        true
    }

    /// Removes `tp`; an answer still in flight for it is then ignored. Returns whether it was
    /// here.
    pub fn remove(&mut self, tp: &TopicPartition) -> bool {
        if self.states.remove(tp).is_none() {
            return false;
        }
        self.order.retain(|t| t != tp);
        debug_assert_eq!(self.order.len(), self.states.len());
        true
    }

    /// Whether some partition can go in a request now.
    pub fn has_ready_work(&self, now: Instant) -> bool {
        self.states.values().any(|s| {
            matches!(s.phase, FetchPhase::Truncating | FetchPhase::Fetching) && s.ready(now)
        })
    }

    /// The earliest instant a delayed partition becomes ready, if any is delayed.
    pub fn next_ready_at(&self) -> Option<Instant> {
        self.states
            .values()
            .filter(|s| s.phase != FetchPhase::Failed)
            .filter_map(|s| s.delayed_until)
            .min()
    }

    /// Records `why` (a connection failure) as every active partition's last error, for the
    /// status; the fetcher backs off as a whole.
    pub fn record_error(&mut self, why: &str) {
        for state in self.states.values_mut() {
            if state.phase != FetchPhase::Failed {
                state.last_error = Some(why.to_string());
            }
        }
    }

    /// Truncates the ready truncating partitions whose log has no leader epoch to their high
    /// watermark and starts fetching them (Kafka's `truncateToHighWatermark`): without an
    /// epoch there is nothing to ask the leader about.
    pub fn truncate_partitions_without_epochs(&mut self, now: Instant, backoff: Duration) {
        for (tp, state) in self.states.iter_mut() {
            if state.phase != FetchPhase::Truncating
                || !state.ready(now)
                || state.truncation_epoch.is_some()
                || state.log.latest_epoch().is_some()
            {
                continue;
            }
            let high_watermark = state.log.high_watermark();
            state.truncate(
                tp,
                Truncation::Complete {
                    offset: high_watermark,
                },
                now,
                backoff,
            );
        }
    }

    /// The OffsetForLeaderEpoch request for the ready truncating partitions that have an
    /// epoch to ask about, `None` when there are none. `replica_id` is the follower's node id.
    pub fn epoch_round(&self, now: Instant, follower_id: i32) -> Option<EpochRound> {
        let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
        let mut asked = HashMap::new();
        for tp in &self.order {
            let Some(state) = self.states.get(tp) else {
                continue;
            };
            if state.phase != FetchPhase::Truncating || !state.ready(now) {
                continue;
            }
            let Some(epoch) = state.truncation_epoch.or_else(|| state.log.latest_epoch()) else {
                continue;
            };
            let partition = OffsetForLeaderPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(state.leader_epoch)
                .with_leader_epoch(epoch);
            topic_entry(&mut topics, &tp.topic, |name| {
                OffsetForLeaderTopic::default().with_topic(name)
            })
            .partitions
            .push(partition);
            asked.insert(
                tp.clone(),
                AskedEpoch {
                    current_leader_epoch: state.leader_epoch,
                    epoch,
                },
            );
        }
        if asked.is_empty() {
            return None;
        }
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(follower_id))
            .with_topics(topics);
        Some(EpochRound { request, asked })
    }

    /// Applies the leader's epoch end offsets: truncation per KIP-279 for each partition that
    /// got one, a delay for each that got an error or no answer.
    pub fn apply_epoch_response(
        &mut self,
        round: &EpochRound,
        response: &OffsetForLeaderEpochResponse,
        now: Instant,
        backoff: Duration,
    ) {
        let mut answered = HashSet::new();
        for topic in &response.topics {
            for p in &topic.partitions {
                let tp = TopicPartition::new(topic.topic.0.as_str(), p.partition);
                let Some(asked) = round.asked.get(&tp) else {
                    continue;
                };
                answered.insert(tp.clone());
                let Some(state) = self.current_truncating(&tp, asked.current_leader_epoch) else {
                    continue;
                };
                if p.error_code != NONE {
                    let why = format!(
                        "OffsetForLeaderEpoch for epoch {} failed: {}",
                        asked.epoch,
                        error_name(p.error_code)
                    );
                    state.delay(&tp, now, backoff, why);
                    continue;
                }
                if p.leader_epoch > asked.epoch {
                    // The leader answers the largest epoch <= the one asked; anything else is
                    // a broken answer, and following it could loop.
                    let why = format!(
                        "OffsetForLeaderEpoch for epoch {} answered the larger epoch {}",
                        asked.epoch, p.leader_epoch
                    );
                    state.delay(&tp, now, backoff, why);
                    continue;
                }
                let truncation =
                    truncation_for_epoch_end_offset(p.leader_epoch, p.end_offset, &*state.log);
                debug_assert!(
                    match truncation {
                        Truncation::Continue { next_epoch, .. } => next_epoch < asked.epoch,
                        Truncation::Complete { .. } => true,
                    },
                    "a continued truncation asks about a lower epoch"
                );
                state.truncate(&tp, truncation, now, backoff);
            }
        }
        for (tp, asked) in &round.asked {
            if answered.contains(tp) {
                continue;
            }
            if let Some(state) = self.current_truncating(tp, asked.current_leader_epoch) {
                state.delay(
                    tp,
                    now,
                    backoff,
                    "no answer in the OffsetForLeaderEpoch response".into(),
                );
            }
        }
    }

    /// `tp`'s state if it is still truncating under `leader_epoch`.
    fn current_truncating(
        &mut self,
        tp: &TopicPartition,
        leader_epoch: i32,
    ) -> Option<&mut PartitionFetchState> {
        self.states
            .get_mut(tp)
            .filter(|s| s.phase == FetchPhase::Truncating && s.leader_epoch == leader_epoch)
    }

    /// `tp`'s state if it is still fetching under `leader_epoch` from `fetch_offset`.
    fn current_fetching(
        &mut self,
        tp: &TopicPartition,
        leader_epoch: i32,
        fetch_offset: i64,
    ) -> Option<&mut PartitionFetchState> {
        self.states.get_mut(tp).filter(|s| {
            s.phase == FetchPhase::Fetching
                && s.leader_epoch == leader_epoch
                && s.log.log_end_offset() == fetch_offset
        })
    }

    /// The Fetch request for the ready fetching partitions, `None` when there are none, at
    /// the highest version up to `negotiated` (see [`fetch_version`]). The follower identifies
    /// itself by `ReplicaState` {node id, broker epoch} from v15, by `replica_id` before.
    /// While `follower_quota_exceeded`, the throttled partitions that are not in sync stay
    /// out.
    pub fn fetch_round(
        &self,
        now: Instant,
        follower_id: i32,
        broker_epoch: i64,
        negotiated: i16,
        config: &ReplicaFetcherConfig,
        follower_quota_exceeded: bool,
    ) -> Option<FetchRound> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        let mut sent = HashMap::new();
        let mut names_by_id = HashMap::new();
        let mut all_ids_known = true;
        for tp in &self.order {
            let Some(state) = self.states.get(tp) else {
                continue;
            };
            if state.phase != FetchPhase::Fetching
                || !state.ready(now)
                || state.follower_throttled(follower_quota_exceeded)
            {
                continue;
            }
            let log = &*state.log;
            let fetch_offset = log.log_end_offset();
            let partition = FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(state.leader_epoch)
                .with_fetch_offset(fetch_offset)
                .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(log.log_start_offset())
                .with_partition_max_bytes(config.fetch_max_bytes);
            let topic_id = state.topic_id;
            topic_entry(&mut topics, &tp.topic, |name| {
                FetchTopic::default()
                    .with_topic(name)
                    .with_topic_id(topic_id)
            })
            .partitions
            .push(partition);
            if topic_id.is_nil() {
                all_ids_known = false;
            } else {
                names_by_id.insert(topic_id, tp.topic.clone());
            }
            sent.insert(
                tp.clone(),
                SentPartition {
                    fetch_offset,
                    leader_epoch: state.leader_epoch,
                },
            );
        }
        if sent.is_empty() {
            return None;
        }
        let version = fetch_version(negotiated, all_ids_known);
        let mut request = FetchRequest::default()
            .with_max_wait_ms(config.max_wait_ms())
            .with_min_bytes(config.fetch_min_bytes)
            .with_max_bytes(config.fetch_response_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        if version >= FETCH_REPLICA_STATE_VERSION {
            request = request.with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(follower_id))
                    .with_replica_epoch(broker_epoch),
            );
        } else {
            request = request.with_replica_id(BrokerId(follower_id));
        }
        Some(FetchRound {
            request,
            version,
            sent,
            names_by_id,
        })
    }

    /// Applies a Fetch response: appends each partition's records unchanged, sets the
    /// follower's high watermark and log start, truncates on a diverging epoch, delays the
    /// partitions with errors, and hands back the ones out of range.
    pub fn apply_fetch_response(
        &mut self,
        round: &FetchRound,
        response: &FetchResponse,
        now: Instant,
        backoff: Duration,
    ) -> FetchOutcome {
        let mut outcome = FetchOutcome::default();
        if response.error_code != NONE {
            let why = format!("Fetch failed: {}", error_name(response.error_code));
            for (tp, sent) in &round.sent {
                if let Some(state) = self.current_fetching(tp, sent.leader_epoch, sent.fetch_offset)
                {
                    state.delay(tp, now, backoff, why.clone());
                }
            }
            return outcome;
        }
        let mut received_data = HashSet::new();
        for topic in &response.responses {
            let name = if round.version >= FETCH_TOPIC_ID_VERSION {
                round.names_by_id.get(&topic.topic_id).map(String::as_str)
            } else {
                Some(topic.topic.0.as_str())
            };
            let Some(name) = name else {
                continue;
            };
            for p in &topic.partitions {
                let tp = TopicPartition::new(name, p.partition_index);
                let Some(sent) = round.sent.get(&tp) else {
                    continue;
                };
                let appended =
                    self.apply_fetched_partition(&tp, *sent, p, now, backoff, &mut outcome);
                if appended > 0 {
                    outcome.appended_bytes += appended;
                    if self.states.get(&tp).is_some_and(|s| s.throttled) {
                        outcome.throttled_bytes += appended;
                    }
                    received_data.insert(tp);
                }
            }
        }
        if !received_data.is_empty() {
            self.order.retain(|tp| !received_data.contains(tp));
            self.order.extend(
                round
                    .sent
                    .keys()
                    .filter(|tp| received_data.contains(*tp))
                    .cloned(),
            );
            debug_assert_eq!(self.order.len(), self.states.len());
        }
        outcome
    }

    /// One partition of a Fetch response; returns the bytes appended.
    fn apply_fetched_partition(
        &mut self,
        tp: &TopicPartition,
        sent: SentPartition,
        p: &PartitionData,
        now: Instant,
        backoff: Duration,
        outcome: &mut FetchOutcome,
    ) -> usize {
        let Some(state) = self.current_fetching(tp, sent.leader_epoch, sent.fetch_offset) else {
            return 0;
        };
        match p.error_code {
            NONE => {}
            OFFSET_OUT_OF_RANGE => {
                outcome.out_of_range.push(OutOfRange {
                    tp: tp.clone(),
                    leader_epoch: sent.leader_epoch,
                    fetch_offset: sent.fetch_offset,
                });
                return 0;
            }
            code => {
                let why = format!(
                    "Fetch at offset {} failed: {}",
                    sent.fetch_offset,
                    error_name(code)
                );
                state.delay(tp, now, backoff, why);
                return 0;
            }
        }
        if p.diverging_epoch.epoch >= 0 && p.diverging_epoch.end_offset >= 0 {
            // KIP-320: the follower's log diverges from the leader's; truncate, and leave the
            // data and the high watermark to the next fetch, from the truncated end.
            let truncation = truncation_for_epoch_end_offset(
                p.diverging_epoch.epoch,
                p.diverging_epoch.end_offset,
                &*state.log,
            );
            state.truncate(tp, truncation, now, backoff);
            return 0;
        }
        let log = state.log.clone();
        let mut appended_bytes = 0;
        if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
            match log.append_as_follower(records) {
                Ok(appended) => {
                    debug_assert_eq!(
                        log.log_end_offset(),
                        appended
                            .last_offset
                            .map_or(sent.fetch_offset, |last| last + 1),
                        "a follower append ends the log after its last record"
                    );
                    appended_bytes = appended.appended_bytes;
                }
                Err(e) => {
                    state.log_failed(tp, now, backoff, e);
                    return 0;
                }
            }
        }
        if p.high_watermark >= 0 {
            let high_watermark = follower_high_watermark(
                p.high_watermark,
                log.log_start_offset(),
                log.log_end_offset(),
            );
            log.set_high_watermark(high_watermark);
            state.leader_high_watermark = Some(p.high_watermark);
            if p.log_start_offset > log.log_start_offset() && p.log_start_offset <= high_watermark {
                if let Err(e) = log.maybe_increment_log_start_offset(p.log_start_offset) {
                    state.log_failed(tp, now, backoff, e);
                    return appended_bytes;
                }
            }
        }
        state.last_error = None;
        appended_bytes
    }

    /// A ListOffsets request for the log end (`LATEST_TIMESTAMP`) or log start
    /// (`EARLIEST_TIMESTAMP`) of the partitions out of range, as the replica `follower_id`
    /// (so that the leader answers its log end offset, not its high watermark).
    pub fn list_offsets_request(
        out_of_range: &[OutOfRange],
        timestamp: i64,
        follower_id: i32,
    ) -> ListOffsetsRequest {
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for oor in out_of_range {
            let partition = ListOffsetsPartition::default()
                .with_partition_index(oor.tp.partition)
                .with_current_leader_epoch(oor.leader_epoch)
                .with_timestamp(timestamp);
            topic_entry(&mut topics, &oor.tp.topic, |name| {
                ListOffsetsTopic::default().with_name(name)
            })
            .partitions
            .push(partition);
        }
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(follower_id))
            .with_isolation_level(0)
            .with_topics(topics)
    }

    /// Resets the partitions that were out of range from the leader's log end (`latest`) and
    /// log start (`earliest`) answers (Kafka's `fetchOffsetAndTruncate`): truncate to the
    /// leader's end when ahead of it, restart at the leader's start when behind it. A partition
    /// whose offset turns out to be in range after all, or whose lookup failed, is delayed, so
    /// that a leader answering inconsistently cannot make the fetcher spin.
    pub fn apply_out_of_range(
        &mut self,
        out_of_range: &[OutOfRange],
        latest: &ListOffsetsResponse,
        earliest: &ListOffsetsResponse,
        now: Instant,
        backoff: Duration,
    ) {
        for oor in out_of_range {
            let tp = &oor.tp;
            let Some(state) = self.current_fetching(tp, oor.leader_epoch, oor.fetch_offset) else {
                continue;
            };
            let (leader_end, leader_start) =
                match (listed_offset(latest, tp), listed_offset(earliest, tp)) {
                    (Ok(end), Ok(start)) => (end, start),
                    (Err(why), _) | (_, Err(why)) => {
                        state.delay(
                            tp,
                            now,
                            backoff,
                            format!("ListOffsets after OFFSET_OUT_OF_RANGE: {why}"),
                        );
                        continue;
                    }
                };
            let log_end = state.log.log_end_offset();
            let result = match out_of_range_reset(log_end, leader_start, leader_end) {
                OutOfRangeReset::TruncateTo(offset) => {
                    tracing::warn!(
                        partition = %tp,
                        from = log_end,
                        to = offset,
                        "the follower is ahead of the leader's log end; truncating to it"
                    );
                    truncate_log(&*state.log, offset).map(|_| ())
                }
                OutOfRangeReset::TruncateFullyAndStartAt(offset) => {
                    tracing::warn!(
                        partition = %tp,
                        from = log_end,
                        to = offset,
                        "the leader's log starts after the follower's end; \
                         truncating fully and restarting at the leader's start"
                    );
                    let log = &*state.log;
                    log.truncate_fully_and_start_at(offset).inspect(|()| {
                        debug_assert_eq!(
                            (log.log_start_offset(), log.log_end_offset()),
                            (offset, offset),
                            "a full truncation restarts the log at the offset"
                        );
                    })
                }
                OutOfRangeReset::Resume => {
                    let why = format!(
                        "OFFSET_OUT_OF_RANGE at {log_end}, \
                         but the leader's log spans [{leader_start}, {leader_end})"
                    );
                    state.delay(tp, now, backoff, why);
                    continue;
                }
            };
            match result {
                Ok(()) => state.last_error = None,
                Err(e) => state.log_failed(tp, now, backoff, e),
            }
        }
    }

    /// A status line per partition, for metrics and `topic describe` (`leader_id` is the
    /// fetcher's leader node).
    pub fn status(&self, leader_id: i32, now: Instant) -> Vec<FollowerStatus> {
        self.order
            .iter()
            .filter_map(|tp| {
                let state = self.states.get(tp)?;
                let log = &*state.log;
                let log_end_offset = log.log_end_offset();
                Some(FollowerStatus {
                    topic_partition: tp.clone(),
                    leader_id,
                    leader_epoch: state.leader_epoch,
                    phase: state.phase,
                    delayed: !state.ready(now),
                    log_end_offset,
                    high_watermark: log.high_watermark(),
                    leader_high_watermark: state.leader_high_watermark,
                    lag: state
                        .leader_high_watermark
                        .map(|hw| (hw - log_end_offset).max(0)),
                    last_error: state.last_error.clone(),
                    throttled: state.throttled,
                })
            })
            .collect()
    }
}

/// The offset a ListOffsets response gives `tp`, or why there is none.
fn listed_offset(response: &ListOffsetsResponse, tp: &TopicPartition) -> Result<i64, String> {
    let p = response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == tp.topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == tp.partition)
        .ok_or_else(|| "no answer for the partition".to_string())?;
    if p.error_code != NONE {
        return Err(error_name(p.error_code).to_string());
    }
    if p.offset < 0 {
        return Err(format!("no offset ({})", p.offset));
    }
    Ok(p.offset)
}

/// Something with a topic name: the topic entries of the three requests.
trait NamedTopic {
    fn name(&self) -> &str;
}

impl NamedTopic for OffsetForLeaderTopic {
    fn name(&self) -> &str {
        self.topic.0.as_str()
    }
}

impl NamedTopic for FetchTopic {
    fn name(&self) -> &str {
        self.topic.0.as_str()
    }
}

impl NamedTopic for ListOffsetsTopic {
    fn name(&self) -> &str {
        self.name.0.as_str()
    }
}

/// The entry of `topic` in `topics`, appended by `make` when missing: topics keep the order in
/// which their first partition came.
fn topic_entry<'a, T: NamedTopic>(
    topics: &'a mut Vec<T>,
    topic: &str,
    make: impl FnOnce(TopicName) -> T,
) -> &'a mut T {
    let index = match topics.iter().position(|t| t.name() == topic) {
        Some(index) => index,
        None => {
            topics.push(make(TopicName(StrBytes::from_string(topic.to_string()))));
            topics.len() - 1
        }
    };
    &mut topics[index]
}

#[cfg(test)]
mod tests {
    use super::super::fake_log::{batch, FakeLog};
    use super::super::log::FollowerAppend;
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::fetch_response::{EpochEndOffset, FetchableTopicResponse};
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset as LeaderEpochEndOffset, OffsetForLeaderTopicResult,
    };
    use kafka_protocol::protocol::{Decodable, Encodable};

    const FOLLOWER: i32 = 2001;
    const BROKER_EPOCH: i64 = 77;
    const BACKOFF: Duration = Duration::from_millis(1000);
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    const FENCED_LEADER_EPOCH: i16 = 74;
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

    fn topic_id(topic: &str) -> Uuid {
        Uuid::from_u128(topic.bytes().map(u128::from).sum::<u128>() + 1)
    }

    fn follower(
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        log: &Rc<FakeLog>,
    ) -> FollowerPartition {
        FollowerPartition {
            topic: topic.to_string(),
            topic_id: topic_id(topic),
            partition,
            leader_epoch,
            log: log.clone(),
            throttled: false,
        }
    }

    fn name(topic: &str) -> TopicName {
        TopicName(StrBytes::from_string(topic.to_string()))
    }

    fn records(batches: &[(i64, i32, i32)]) -> Bytes {
        let mut out = Vec::new();
        for &(base, count, epoch) in batches {
            out.extend(batch(base, count, epoch));
        }
        Bytes::from(out)
    }

    fn epoch_answer(answers: &[(&str, i32, i16, i32, i64)]) -> OffsetForLeaderEpochResponse {
        let mut topics: Vec<OffsetForLeaderTopicResult> = Vec::new();
        for &(topic, partition, error_code, leader_epoch, end_offset) in answers {
            let p = LeaderEpochEndOffset::default()
                .with_partition(partition)
                .with_error_code(error_code)
                .with_leader_epoch(leader_epoch)
                .with_end_offset(end_offset);
            topics.push(
                OffsetForLeaderTopicResult::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![p]),
            );
        }
        OffsetForLeaderEpochResponse::default().with_topics(topics)
    }

    fn data(
        partition: i32,
        high_watermark: i64,
        log_start: i64,
        records: Option<Bytes>,
    ) -> PartitionData {
        PartitionData::default()
            .with_partition_index(partition)
            .with_high_watermark(high_watermark)
            .with_log_start_offset(log_start)
            .with_records(records)
    }

    fn fetch_answer(version: i16, topics: Vec<(&str, Vec<PartitionData>)>) -> FetchResponse {
        let responses = topics
            .into_iter()
            .map(|(topic, partitions)| {
                let t = FetchableTopicResponse::default().with_partitions(partitions);
                if version >= FETCH_TOPIC_ID_VERSION {
                    t.with_topic_id(topic_id(topic))
                } else {
                    t.with_topic(name(topic))
                }
            })
            .collect();
        FetchResponse::default().with_responses(responses)
    }

    fn listed(answers: &[(&str, i32, i16, i64)]) -> ListOffsetsResponse {
        let topics = answers
            .iter()
            .map(|&(topic, partition, error_code, offset)| {
                ListOffsetsTopicResponse::default()
                    .with_name(name(topic))
                    .with_partitions(vec![ListOffsetsPartitionResponse::default()
                        .with_partition_index(partition)
                        .with_error_code(error_code)
                        .with_offset(offset)])
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    }

    /// Ends the truncation phase of every partition without truncating anything.
    fn make_fetching(table: &mut FetcherPartitions, now: Instant) {
        table.truncate_partitions_without_epochs(now, BACKOFF);
        if let Some(round) = table.epoch_round(now, FOLLOWER) {
            let answers: Vec<_> = round
                .asked
                .iter()
                .map(|(tp, asked)| (tp.topic.as_str(), tp.partition, NONE, asked.epoch, 1 << 40))
                .collect();
            table.apply_epoch_response(&round, &epoch_answer(&answers), now, BACKOFF);
        }
        assert!(table
            .states
            .values()
            .all(|s| s.phase == FetchPhase::Fetching));
    }

    fn phase(table: &FetcherPartitions, topic: &str, partition: i32) -> FetchPhase {
        table.states[&TopicPartition::new(topic, partition)].phase
    }

    fn log_with(batches: &[(i64, i64, i32)]) -> Rc<FakeLog> {
        let log = Rc::new(FakeLog::new());
        for &(base, count, epoch) in batches {
            log.append_batch(base, count, epoch);
        }
        log
    }

    #[test]
    fn a_new_partition_asks_the_leader_about_its_latest_epoch() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 1), (10, 10, 3)]);
        let mut table = FetcherPartitions::new();
        assert!(table.upsert(&follower("t", 0, 4, &log)));
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
        assert!(table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                15,
                &ReplicaFetcherConfig::default(),
                false
            )
            .is_none());
        let round = table
            .epoch_round(now, FOLLOWER)
            .expect("a truncating partition is asked about");
        assert_eq!(round.request.replica_id, BrokerId(FOLLOWER));
        let p = &round.request.topics[0].partitions[0];
        assert_eq!(
            (p.partition, p.current_leader_epoch, p.leader_epoch),
            (0, 4, 3)
        );
        // The request encodes at v3 and v4, the versions the fetcher speaks.
        for version in OFFSET_FOR_LEADER_EPOCH_MIN_VERSION..=OFFSET_FOR_LEADER_EPOCH_MAX_VERSION {
            let mut buf = BytesMut::new();
            round.request.encode(&mut buf, version).unwrap();
            let decoded = OffsetForLeaderEpochRequest::decode(&mut buf.freeze(), version).unwrap();
            assert_eq!(decoded.replica_id, BrokerId(FOLLOWER));
        }
    }

    #[test]
    fn the_leader_answer_truncates_and_starts_fetching() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 1), (10, 10, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        // The leader's epoch 3 ended at 15: the follower's last 5 records diverge.
        table.apply_epoch_response(
            &round,
            &epoch_answer(&[("t", 0, NONE, 3, 15)]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 15);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
        assert!(table.epoch_round(now, FOLLOWER).is_none());
    }

    #[test]
    fn an_epoch_unknown_to_the_follower_continues_with_the_lower_epoch() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 1), (10, 10, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 5, &log));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        // The follower asked about 3; the leader never had 3 and answers its epoch 2, which the
        // follower lacks: truncate to the end of the follower's epoch 1 and ask about 1.
        table.apply_epoch_response(
            &round,
            &epoch_answer(&[("t", 0, NONE, 2, 12)]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 10);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        assert_eq!(round.request.topics[0].partitions[0].leader_epoch, 1);
        table.apply_epoch_response(&round, &epoch_answer(&[("t", 0, NONE, 1, 8)]), now, BACKOFF);
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
    }

    #[test]
    fn an_undefined_answer_truncates_to_the_high_watermark() {
        let now = Instant::now();
        let log = log_with(&[(0, 20, 3)]);
        log.set_high_watermark(12);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        table.apply_epoch_response(
            &round,
            &epoch_answer(&[("t", 0, NONE, -1, -1)]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 12);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
    }

    #[test]
    fn a_log_without_epochs_truncates_to_its_high_watermark_without_asking() {
        let now = Instant::now();
        let log = log_with(&[(0, 20, 3)]);
        log.clear_epochs();
        log.set_high_watermark(7);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        assert!(table.epoch_round(now, FOLLOWER).is_none());
        table.truncate_partitions_without_epochs(now, BACKOFF);
        assert_eq!(log.log_end_offset(), 7);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
    }

    #[test]
    fn epoch_errors_and_missing_answers_delay_until_new_leadership() {
        let now = Instant::now();
        let a = log_with(&[(0, 10, 1)]);
        let b = log_with(&[(0, 10, 1)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &a));
        table.upsert(&follower("t", 1, 4, &b));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        table.apply_epoch_response(
            &round,
            &epoch_answer(&[("t", 0, FENCED_LEADER_EPOCH, -1, -1)]),
            now,
            BACKOFF,
        );
        assert!(!table.has_ready_work(now));
        assert_eq!(table.next_ready_at(), Some(now + BACKOFF));
        let status = table.status(1000, now);
        assert!(status
            .iter()
            .all(|s| s.delayed && s.phase == FetchPhase::Truncating));
        assert!(status[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("FENCED_LEADER_EPOCH"));
        // After the backoff both are asked about again.
        assert_eq!(
            table
                .epoch_round(now + BACKOFF, FOLLOWER)
                .unwrap()
                .asked
                .len(),
            2
        );
        // New leadership information ends the delay at once.
        assert!(table.update_leader_epoch(&TopicPartition::new("t", 0), 5));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        assert_eq!(round.asked.len(), 1);
        assert_eq!(
            round.request.topics[0].partitions[0].current_leader_epoch,
            5
        );
    }

    #[test]
    fn an_answer_above_the_epoch_asked_is_refused() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 1), (10, 10, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 9, &log));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        table.apply_epoch_response(
            &round,
            &epoch_answer(&[("t", 0, NONE, 7, 12)]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
        assert!(!table.has_ready_work(now));
    }

    #[test]
    fn a_stale_epoch_answer_is_ignored() {
        let now = Instant::now();
        let log = log_with(&[(0, 20, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        // The leader changed while the request was in flight.
        table.update_leader_epoch(&TopicPartition::new("t", 0), 6);
        table.apply_epoch_response(&round, &epoch_answer(&[("t", 0, NONE, 3, 5)]), now, BACKOFF);
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
        // And a removed partition ignores its answer too.
        table.remove(&TopicPartition::new("t", 0));
        table.apply_epoch_response(&round, &epoch_answer(&[("t", 0, NONE, 3, 5)]), now, BACKOFF);
        assert_eq!(log.log_end_offset(), 20);
    }

    #[test]
    fn re_adding_with_the_same_epoch_keeps_the_state_and_a_new_epoch_truncates_again() {
        let now = Instant::now();
        let log = log_with(&[(0, 20, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        assert!(!table.upsert(&follower("t", 0, 4, &log)));
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
        assert!(table.upsert(&follower("t", 0, 5, &log)));
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
        assert!(!table.update_leader_epoch(&TopicPartition::new("u", 0), 1));
    }

    #[test]
    fn fetch_v15_identifies_the_replica_by_replica_state() {
        let now = Instant::now();
        let log = log_with(&[(0, 20, 3)]);
        log.maybe_increment_log_start_offset(5).unwrap();
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let config = ReplicaFetcherConfig::default();
        let round = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, false)
            .unwrap();
        assert_eq!(round.version, 17);
        let mut buf = BytesMut::new();
        round.request.encode(&mut buf, round.version).unwrap();
        let wire = FetchRequest::decode(&mut buf.freeze(), round.version).unwrap();
        assert_eq!(wire.replica_id, BrokerId(-1));
        assert_eq!(wire.replica_state.replica_id, BrokerId(FOLLOWER));
        assert_eq!(wire.replica_state.replica_epoch, BROKER_EPOCH);
        assert_eq!(
            (wire.max_wait_ms, wire.min_bytes, wire.max_bytes),
            (500, 1, 10_485_760)
        );
        assert_eq!((wire.session_id, wire.session_epoch), (0, -1));
        assert_eq!(wire.topics[0].topic_id, topic_id("t"));
        let p = &wire.topics[0].partitions[0];
        assert_eq!(
            (
                p.partition,
                p.current_leader_epoch,
                p.fetch_offset,
                p.last_fetched_epoch
            ),
            (0, 4, 20, 3)
        );
        assert_eq!((p.log_start_offset, p.partition_max_bytes), (5, 1_048_576));
    }

    #[test]
    fn fetch_v12_to_v14_identify_the_replica_by_replica_id() {
        let now = Instant::now();
        let log = log_with(&[(0, 20, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let config = ReplicaFetcherConfig::default();
        for negotiated in [12, 13, 14] {
            let round = table
                .fetch_round(now, FOLLOWER, BROKER_EPOCH, negotiated, &config, false)
                .unwrap();
            assert_eq!(round.version, negotiated);
            let mut buf = BytesMut::new();
            round.request.encode(&mut buf, round.version).unwrap();
            let wire = FetchRequest::decode(&mut buf.freeze(), round.version).unwrap();
            assert_eq!(wire.replica_id, BrokerId(FOLLOWER));
            if negotiated == 12 {
                assert_eq!(wire.topics[0].topic, name("t"));
            } else {
                assert_eq!(wire.topics[0].topic_id, topic_id("t"));
            }
            assert_eq!(wire.topics[0].partitions[0].last_fetched_epoch, 3);
        }
    }

    #[test]
    fn an_unknown_topic_id_fetches_by_name_at_v12() {
        let now = Instant::now();
        let log = Rc::new(FakeLog::new());
        let mut table = FetcherPartitions::new();
        let mut partition = follower("t", 0, 4, &log);
        partition.topic_id = Uuid::nil();
        table.upsert(&partition);
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        assert_eq!(round.version, 12);
        assert_eq!(fetch_version(17, true), 17);
        assert_eq!(fetch_version(15, false), 12);
    }

    #[test]
    fn fetched_records_are_appended_and_set_the_high_watermark_and_log_start() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        // Two whole batches and the start of a third, cut at the byte limit.
        let mut cut = records(&[(10, 5, 4), (15, 5, 4), (20, 5, 4)]).to_vec();
        cut.truncate(cut.len() - 10);
        let answer = fetch_answer(
            17,
            vec![("t", vec![data(0, 30, 4, Some(Bytes::from(cut)))])],
        );
        let outcome = table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert!(outcome.out_of_range.is_empty());
        assert_eq!(outcome.appended_bytes, 2 * 61);
        assert_eq!(log.log_end_offset(), 20);
        assert_eq!(log.latest_epoch(), Some(4));
        // The leader's HW 30 is beyond the follower's end: the follower's HW is its end.
        assert_eq!(log.high_watermark(), 20);
        assert_eq!(log.log_start_offset(), 4);
        let status = table.status(1000, now);
        assert_eq!(status[0].leader_high_watermark, Some(30));
        assert_eq!(status[0].lag, Some(10));
        assert_eq!(status[0].high_watermark, 20);
        // The next fetch starts at the new end with the new epoch.
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let p = &round.request.topics[0].partitions[0];
        assert_eq!((p.fetch_offset, p.last_fetched_epoch), (20, 4));
    }

    #[test]
    fn the_high_watermark_follows_the_leader_below_the_log_end() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 3)]);
        log.set_high_watermark(9);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                12,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        // A new leader with a lower HW; an empty answer still carries it.
        let answer = fetch_answer(12, vec![("t", vec![data(0, 6, 0, None)])]);
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert_eq!(log.high_watermark(), 6);
        assert_eq!(log.log_end_offset(), 10);
    }

    #[test]
    fn partitions_that_received_data_move_to_the_end_of_the_fetch_order() {
        let now = Instant::now();
        let logs: Vec<_> = (0..3).map(|_| Rc::new(FakeLog::new())).collect();
        let mut table = FetcherPartitions::new();
        for (i, log) in logs.iter().enumerate() {
            table.upsert(&follower("t", i as i32, 1, log));
        }
        make_fetching(&mut table, now);
        let config = ReplicaFetcherConfig::default();
        let round = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, false)
            .unwrap();
        let answer = fetch_answer(
            17,
            vec![(
                "t",
                vec![
                    data(0, 5, 0, Some(records(&[(0, 5, 1)]))),
                    data(1, 0, 0, None),
                    data(2, 0, 0, None),
                ],
            )],
        );
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
        let round = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, false)
            .unwrap();
        let order: Vec<i32> = round.request.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        assert_eq!(order, [1, 2, 0]);
    }

    /// The partitions of a fetch round, sorted.
    fn fetched(round: &FetchRound) -> Vec<i32> {
        let mut partitions: Vec<i32> = round.sent.keys().map(|tp| tp.partition).collect();
        partitions.sort_unstable();
        partitions
    }

    #[test]
    fn throttled_partitions_out_of_sync_wait_while_the_follower_quota_is_exceeded() {
        let now = Instant::now();
        let config = ReplicaFetcherConfig::default();
        let logs: Vec<_> = (0..3).map(|_| Rc::new(FakeLog::new())).collect();
        let mut table = FetcherPartitions::new();
        // 0: throttled; 1: not throttled; 2: throttled.
        for (i, log) in logs.iter().enumerate() {
            let mut p = follower("t", i as i32, 1, log);
            p.throttled = i != 1;
            table.upsert(&p);
        }
        make_fetching(&mut table, now);
        // Under the quota every partition goes; before any response none is in sync.
        let round = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, false)
            .unwrap();
        assert_eq!(fetched(&round), [0, 1, 2]);
        let held = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, true)
            .unwrap();
        assert_eq!(fetched(&held), [1]);

        // Partition 0 catches up with the leader (high watermark 5), partition 2 does not
        // (high watermark 40): only the bytes of the throttled ones are charged.
        let answer = fetch_answer(
            17,
            vec![(
                "t",
                vec![
                    data(0, 5, 0, Some(records(&[(0, 5, 1)]))),
                    data(1, 5, 0, Some(records(&[(0, 5, 1)]))),
                    data(2, 40, 0, Some(records(&[(0, 5, 1)]))),
                ],
            )],
        );
        let outcome = table.apply_fetch_response(&round, &answer, now, BACKOFF);
        let batch_bytes = records(&[(0, 5, 1)]).len();
        assert_eq!(outcome.appended_bytes, 3 * batch_bytes);
        assert_eq!(outcome.throttled_bytes, 2 * batch_bytes);

        // An in-sync replica is never held back, so that the throttle cannot shrink the ISR.
        let held = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, true)
            .unwrap();
        assert_eq!(fetched(&held), [0, 1]);
        let status = table.status(1000, now);
        let throttled: Vec<bool> = status.iter().map(|s| s.throttled).collect();
        assert_eq!(throttled.iter().filter(|t| **t).count(), 2);

        // Handing the partitions over again updates their throttle; nothing truncates.
        for (i, log) in logs.iter().enumerate() {
            assert!(!table.upsert(&follower("t", i as i32, 1, log)));
        }
        let round = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, true)
            .unwrap();
        assert_eq!(fetched(&round), [0, 1, 2]);
        assert!(table.status(1000, now).iter().all(|s| !s.throttled));

        // Every partition held back: no request at all.
        let mut table = FetcherPartitions::new();
        let mut p = follower("t", 0, 1, &logs[2]);
        p.throttled = true;
        table.upsert(&p);
        make_fetching(&mut table, now);
        assert!(table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, true)
            .is_none());
        assert!(table.has_ready_work(now));
    }

    #[test]
    fn a_diverging_epoch_truncates_instead_of_appending() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 1), (10, 10, 3)]);
        log.set_high_watermark(12);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let diverging = data(0, 40, 0, Some(records(&[(20, 5, 4)])))
            .with_diverging_epoch(EpochEndOffset::default().with_epoch(3).with_end_offset(14));
        let answer = fetch_answer(17, vec![("t", vec![diverging])]);
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert_eq!(log.log_end_offset(), 14);
        assert_eq!(log.high_watermark(), 12);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
        assert_eq!(log.appended_batches(), 0);
        // A diverging epoch the follower lacks goes back to asking the leader.
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let diverging = data(0, 40, 0, None)
            .with_diverging_epoch(EpochEndOffset::default().with_epoch(2).with_end_offset(12));
        table.apply_fetch_response(
            &round,
            &fetch_answer(17, vec![("t", vec![diverging])]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 10);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
        assert_eq!(
            table.epoch_round(now, FOLLOWER).unwrap().request.topics[0].partitions[0].leader_epoch,
            1
        );
    }

    #[test]
    fn leadership_errors_delay_the_partition() {
        let now = Instant::now();
        let mut table = FetcherPartitions::new();
        let logs: Vec<_> = (0..4).map(|_| log_with(&[(0, 1, 1)])).collect();
        for (i, log) in logs.iter().enumerate() {
            table.upsert(&follower("t", i as i32, 1, log));
        }
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let answer = fetch_answer(
            17,
            vec![(
                "t",
                vec![
                    data(0, 0, 0, None).with_error_code(FENCED_LEADER_EPOCH),
                    data(1, 0, 0, None).with_error_code(NOT_LEADER_OR_FOLLOWER),
                    data(2, 0, 0, None).with_error_code(75),
                    data(3, 0, 0, None).with_error_code(UNKNOWN_TOPIC_OR_PARTITION),
                ],
            )],
        );
        let outcome = table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert!(outcome.out_of_range.is_empty());
        assert!(!table.has_ready_work(now));
        assert!(table.has_ready_work(now + BACKOFF));
        let status = table.status(1000, now);
        assert!(status
            .iter()
            .all(|s| s.delayed && s.phase == FetchPhase::Fetching));
        assert!(status[2]
            .last_error
            .as_deref()
            .unwrap()
            .contains("UNKNOWN_LEADER_EPOCH"));
        // New leadership for one of them: it truncates again at once.
        table.update_leader_epoch(&TopicPartition::new("t", 1), 2);
        let round = table.epoch_round(now, FOLLOWER).unwrap();
        assert_eq!(
            round.asked.keys().collect::<Vec<_>>(),
            [&TopicPartition::new("t", 1)]
        );
        assert_eq!(
            round.request.topics[0].partitions[0].current_leader_epoch,
            2
        );
        assert!(table.has_ready_work(now));
    }

    #[test]
    fn a_top_level_fetch_error_delays_every_partition() {
        let now = Instant::now();
        let log = Rc::new(FakeLog::new());
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 1, &log));
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let answer = FetchResponse::default().with_error_code(-1);
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert!(!table.has_ready_work(now));
    }

    #[test]
    fn a_stale_fetch_answer_is_ignored() {
        let now = Instant::now();
        let log = log_with(&[(0, 10, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        // The log moved while the fetch was in flight (the engine truncated it).
        log.truncate_to(5).unwrap();
        let answer = fetch_answer(
            17,
            vec![("t", vec![data(0, 30, 0, Some(records(&[(10, 5, 4)])))])],
        );
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert_eq!(log.log_end_offset(), 5);
        assert_eq!(log.appended_batches(), 0);
    }

    #[test]
    fn append_errors_delay_or_fail_the_partition() {
        let now = Instant::now();
        let config = ReplicaFetcherConfig::default();
        let log = Rc::new(FakeLog::new());
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 1, &log));
        make_fetching(&mut table, now);
        let answer = fetch_answer(
            17,
            vec![("t", vec![data(0, 5, 0, Some(records(&[(0, 5, 1)])))])],
        );

        log.fail_appends(FollowerLogError::InvalidRecords("bad crc".into()));
        let round = table
            .fetch_round(now, FOLLOWER, BROKER_EPOCH, 17, &config, false)
            .unwrap();
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Fetching);
        assert!(!table.has_ready_work(now));
        assert!(table.has_ready_work(now + BACKOFF));

        log.fail_appends(FollowerLogError::Storage("disk full".into()));
        let later = now + BACKOFF;
        let round = table
            .fetch_round(later, FOLLOWER, BROKER_EPOCH, 17, &config, false)
            .unwrap();
        table.apply_fetch_response(&round, &answer, later, BACKOFF);
        assert_eq!(phase(&table, "t", 0), FetchPhase::Failed);
        assert!(!table.has_ready_work(later + BACKOFF));
        assert_eq!(table.next_ready_at(), None);
        // The engine hands it over again: it truncates again.
        assert!(table.upsert(&follower("t", 0, 1, &log)));
        assert_eq!(phase(&table, "t", 0), FetchPhase::Truncating);
    }

    /// Fetches partition 0 of `t` at `log`'s end and gets OFFSET_OUT_OF_RANGE.
    fn out_of_range(table: &mut FetcherPartitions, now: Instant) -> Vec<OutOfRange> {
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let answer = fetch_answer(
            17,
            vec![(
                "t",
                vec![data(0, -1, -1, None).with_error_code(OFFSET_OUT_OF_RANGE)],
            )],
        );
        table
            .apply_fetch_response(&round, &answer, now, BACKOFF)
            .out_of_range
    }

    #[test]
    fn out_of_range_asks_the_leader_for_its_offsets_as_the_replica() {
        let now = Instant::now();
        let log = log_with(&[(0, 50, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let oor = out_of_range(&mut table, now);
        assert_eq!(oor.len(), 1);
        let request = FetcherPartitions::list_offsets_request(&oor, LATEST_TIMESTAMP, FOLLOWER);
        assert_eq!(request.replica_id, BrokerId(FOLLOWER));
        let p = &request.topics[0].partitions[0];
        assert_eq!(
            (p.partition_index, p.current_leader_epoch, p.timestamp),
            (0, 4, -1)
        );
        for version in LIST_OFFSETS_MIN_VERSION..=LIST_OFFSETS_MAX_VERSION {
            let mut buf = BytesMut::new();
            request.encode(&mut buf, version).unwrap();
        }
    }

    #[test]
    fn out_of_range_ahead_of_the_leader_truncates_to_its_end() {
        let now = Instant::now();
        let log = log_with(&[(0, 50, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let oor = out_of_range(&mut table, now);
        table.apply_out_of_range(
            &oor,
            &listed(&[("t", 0, NONE, 40)]),
            &listed(&[("t", 0, NONE, 0)]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 40);
        assert!(table.has_ready_work(now));
    }

    #[test]
    fn out_of_range_behind_the_leader_start_restarts_the_log_there() {
        let now = Instant::now();
        let log = log_with(&[(0, 50, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let oor = out_of_range(&mut table, now);
        table.apply_out_of_range(
            &oor,
            &listed(&[("t", 0, NONE, 900)]),
            &listed(&[("t", 0, NONE, 700)]),
            now,
            BACKOFF,
        );
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (700, 700));
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        assert_eq!(round.request.topics[0].partitions[0].fetch_offset, 700);
    }

    #[test]
    fn out_of_range_that_is_in_range_or_unanswered_is_delayed() {
        let now = Instant::now();
        let log = log_with(&[(0, 50, 3)]);
        let mut table = FetcherPartitions::new();
        table.upsert(&follower("t", 0, 4, &log));
        make_fetching(&mut table, now);
        let oor = out_of_range(&mut table, now);
        table.apply_out_of_range(
            &oor,
            &listed(&[("t", 0, NONE, 60)]),
            &listed(&[("t", 0, NONE, 10)]),
            now,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 50);
        assert!(!table.has_ready_work(now));

        let later = now + BACKOFF;
        let oor = out_of_range(&mut table, later);
        table.apply_out_of_range(
            &oor,
            &listed(&[("t", 0, FENCED_LEADER_EPOCH, -1)]),
            &listed(&[]),
            later,
            BACKOFF,
        );
        assert_eq!(log.log_end_offset(), 50);
        assert!(!table.has_ready_work(later));
        let status = table.status(1000, later);
        assert!(status[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("FENCED_LEADER_EPOCH"));
    }

    #[test]
    #[should_panic(expected = "a follower append ends the log after its last record")]
    fn an_append_that_misreports_its_end_breaks_the_invariant() {
        struct LyingLog(FakeLog);
        impl FollowerLog for LyingLog {
            fn log_start_offset(&self) -> i64 {
                self.0.log_start_offset()
            }
            fn log_end_offset(&self) -> i64 {
                self.0.log_end_offset()
            }
            fn high_watermark(&self) -> i64 {
                self.0.high_watermark()
            }
            fn latest_epoch(&self) -> Option<i32> {
                self.0.latest_epoch()
            }
            fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
                self.0.end_offset_for_epoch(epoch)
            }
            fn append_as_follower(
                &self,
                records: &Bytes,
            ) -> Result<FollowerAppend, FollowerLogError> {
                let mut appended = self.0.append_as_follower(records)?;
                appended.last_offset = appended.last_offset.map(|o| o + 1);
                Ok(appended)
            }
            fn truncate_to(&self, offset: i64) -> Result<(), FollowerLogError> {
                self.0.truncate_to(offset)
            }
            fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), FollowerLogError> {
                self.0.truncate_fully_and_start_at(offset)
            }
            fn set_high_watermark(&self, hw: i64) {
                self.0.set_high_watermark(hw)
            }
            fn maybe_increment_log_start_offset(
                &self,
                offset: i64,
            ) -> Result<(), FollowerLogError> {
                self.0.maybe_increment_log_start_offset(offset)
            }
        }
        let now = Instant::now();
        let log: Rc<dyn FollowerLog> = Rc::new(LyingLog(FakeLog::new()));
        let mut table = FetcherPartitions::new();
        table.upsert(&FollowerPartition {
            topic: "t".into(),
            topic_id: topic_id("t"),
            partition: 0,
            leader_epoch: 1,
            log,
            throttled: false,
        });
        make_fetching(&mut table, now);
        let round = table
            .fetch_round(
                now,
                FOLLOWER,
                BROKER_EPOCH,
                17,
                &ReplicaFetcherConfig::default(),
                false,
            )
            .unwrap();
        let answer = fetch_answer(
            17,
            vec![("t", vec![data(0, 5, 0, Some(records(&[(0, 5, 1)])))])],
        );
        table.apply_fetch_response(&round, &answer, now, BACKOFF);
    }
}
