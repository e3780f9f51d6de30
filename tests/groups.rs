//! Consumer groups end to end: real rdkafka consumers subscribing in a group
//! (range, roundrobin and cooperative-sticky assignment, members leaving,
//! static membership, committed offsets surviving a broker restart), and the
//! group APIs driven by hand with raw Kafka requests (FindCoordinator routing
//! to the shard that leads the group's `__consumer_offsets` partition, the
//! generation / member checks of OffsetCommit and Heartbeat, MEMBER_ID_REQUIRED,
//! OffsetDelete, DeleteGroups, ListGroups and DescribeGroups).
//!
//! Messages carry their id in the payload (`"<id>:<filler>"`) and go to
//! partition `id % partitions`, so a test can say exactly which member should
//! have read which message and check that every message was read exactly once.
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::group::*;
use common::*;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DeleteGroupsRequest,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    ListGroupsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// Upper bound for a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(600);
/// Upper bound for one step: a group settling, a batch of messages read.
const WAIT: Duration = Duration::from_secs(90);
/// The number of partitions of the topic most tests use.
const PARTS: i32 = 12;

/// Kafka error codes the group APIs answer with.
mod err {
    pub const NONE: i16 = 0;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn group_id(g: &str) -> GroupId {
    GroupId(sb(g))
}

fn topic_name(t: &str) -> TopicName {
    TopicName(sb(t))
}

/// Java's `String.hashCode()` (over UTF-16 code units, wrapping).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(u as i32))
}

/// Kafka's `partitionFor(group)`: `Utils.abs(group.hashCode) % partitions`,
/// where `Utils.abs(Integer.MIN_VALUE)` is 0.
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}

/// Asserts that every message in `ids` was read by the member that owns its
/// partition in `split` (names[i] owns split[i]).
fn assert_read_by_owners(
    seen: &HashMap<usize, Reader>,
    ids: Range<usize>,
    names: &[&str],
    split: &[BTreeSet<i32>],
) {
    let owner: HashMap<i32, &str> = split
        .iter()
        .zip(names)
        .flat_map(|(ps, n)| ps.iter().map(move |p| (*p, *n)))
        .collect();
    let wrong: Vec<(usize, &Reader, Option<&&str>)> = ids
        .filter_map(|id| {
            let r = &seen[&id];
            let o = owner.get(&r.1);
            (o.copied() != Some(r.0.as_str())).then_some((id, r, o))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} messages produced after the split {split:?} (members {names:?}) were read by a \
         member that does not own their partition; first (id, reader, owner): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// Sets of partitions, order-free, for comparing splits.
fn as_set(split: &[BTreeSet<i32>]) -> BTreeSet<BTreeSet<i32>> {
    split.iter().cloned().collect()
}

/// The split librdkafka's client-side assignor must produce for one topic of
/// `parts` partitions and `members` members (None: not deterministic).
fn expected_split(strategy: &str, parts: i32, members: i32) -> Option<BTreeSet<BTreeSet<i32>>> {
    let per = parts / members;
    match strategy {
        // Contiguous blocks.
        "range" => Some(
            (0..members)
                .map(|m| (m * per..(m + 1) * per).collect())
                .collect(),
        ),
        // Partition p to the (p % members)-th member.
        "roundrobin" => Some(
            (0..members)
                .map(|m| (0..parts).filter(|p| p % members == m).collect())
                .collect(),
        ),
        _ => None,
    }
}

/// A partition's committed (offset, metadata, no error) as librdkafka reports it.
type Committed2 = (Offset, String, bool);

/// The entries of `topic` in a list librdkafka returned (committed() and
/// the like), as plain values. Such lists can hold references to the
/// client's partitions, which keep the client's destruction waiting: convert
/// them and drop them right away, before the client is closed.
fn committed_view(tpl: &TopicPartitionList, topic: &str) -> BTreeMap<i32, Committed2> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| {
            (
                e.partition(),
                (e.offset(), e.metadata().to_string(), e.error().is_ok()),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Raw protocol helpers
// ---------------------------------------------------------------------------

/// A negotiated raw client on `shard`, with a read timeout long enough for a
/// JoinGroup that waits out a rebalance.
fn raw(broker: &Broker, shard: u16) -> RawClient {
    let c = RawClient::connect_negotiated(broker.addr(shard));
    c.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    c
}

/// FindCoordinator for a group with one key (v0–v3 layout).
fn find_coordinator_single(c: &mut RawClient, group: &str) -> FindCoordinatorResponse {
    let v = c.version::<FindCoordinatorRequest>(3);
    let req = FindCoordinatorRequest::default()
        .with_key(sb(group))
        .with_key_type(0);
    c.send(&req, v).expect("FindCoordinator")
}

/// The shard coordinating `group` (waiting, bounded, while the coordinator
/// is still loading).
fn coordinator_shard(broker: &Broker, group: &str) -> u16 {
    let mut c = raw(broker, 0);
    let mut last = None;
    let ok = wait_until(WAIT, Duration::from_millis(200), || {
        let r = find_coordinator_single(&mut c, group);
        let done = r.error_code == err::NONE;
        last = Some(r);
        done
    });
    let r = last.unwrap();
    assert!(ok, "FindCoordinator({group}) kept failing: {r:?}");
    let shard = r.node_id.0 - 1000;
    assert!(
        (0..broker.cores() as i32).contains(&shard),
        "FindCoordinator({group}) names node {} (want 1000..{})",
        r.node_id.0,
        1000 + broker.cores() as i32
    );
    shard as u16
}

/// Encoded ConsumerProtocolSubscription (version 1) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| sb(t)).collect());
    let mut b = BytesMut::new();
    b.put_i16(1);
    sub.encode(&mut b, 1).expect("encode subscription");
    b.freeze()
}

/// Encoded ConsumerProtocolAssignment (version 0) of `partitions` of `topic`.
fn assignment_bytes(topic: &str, partitions: &[i32]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
        AssignedPartitions::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions.to_vec()),
    ]);
    let mut b = BytesMut::new();
    b.put_i16(0);
    a.encode(&mut b, 0).expect("encode assignment");
    b.freeze()
}

/// JoinGroup (consumer protocol, one protocol `proto` with `metadata`).
fn join_group(
    c: &mut RawClient,
    group: &str,
    member: &str,
    instance: Option<&str>,
    proto: &str,
    metadata: Bytes,
) -> JoinGroupResponse {
    let v = c.version::<JoinGroupRequest>(9);
    assert!(
        v >= 5,
        "broker's JoinGroup tops out at v{v}; v5+ (static members, MEMBER_ID_REQUIRED) is needed"
    );
    let req = JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(sb(member))
        .with_group_instance_id(instance.map(sb))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb(proto))
            .with_metadata(metadata)]);
    c.send(&req, v).expect("JoinGroup")
}

fn heartbeat(c: &mut RawClient, group: &str, generation: i32, member: &str) -> i16 {
    let v = c.version::<HeartbeatRequest>(4);
    let req = HeartbeatRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id(generation)
        .with_member_id(sb(member));
    c.send(&req, v).expect("Heartbeat").error_code
}

/// OffsetCommit of `(partition, offset, metadata)` entries; returns the
/// per-partition error codes.
#[allow(clippy::too_many_arguments)]
fn offset_commit(
    c: &mut RawClient,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
    topic: &str,
    entries: &[(i32, i64, &str)],
) -> BTreeMap<i32, i16> {
    let v = c.version::<OffsetCommitRequest>(8);
    let req = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member))
        .with_group_instance_id(instance.map(sb))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                entries
                    .iter()
                    .map(|(p, o, m)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_leader_epoch(-1)
                            .with_committed_metadata(Some(sb(m)))
                    })
                    .collect(),
            )]);
    let resp = c.send(&req, v).expect("OffsetCommit");
    assert_eq!(resp.topics.len(), 1, "OffsetCommit response: {resp:?}");
    assert_eq!(resp.topics[0].name.0.to_string(), topic, "{resp:?}");
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect()
}

/// Committed (offset, metadata, error) of one partition in OffsetFetch.
type Committed = (i64, Option<String>, i16);

/// OffsetFetch (non-batched layout, v1–v7) of `partitions` of `topic`:
/// (top-level error, partition -> committed).
fn offset_fetch(
    c: &mut RawClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (i16, BTreeMap<i32, Committed>) {
    let v = c.version::<OffsetFetchRequest>(7);
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(partitions.to_vec())]));
    let resp = c.send(&req, v).expect("OffsetFetch");
    let mut out = BTreeMap::new();
    for t in &resp.topics {
        assert_eq!(
            t.name.0.to_string(),
            topic,
            "OffsetFetch response: {resp:?}"
        );
        for p in &t.partitions {
            out.insert(
                p.partition_index,
                (
                    p.committed_offset,
                    p.metadata.as_ref().map(|m| m.to_string()),
                    p.error_code,
                ),
            );
        }
    }
    (resp.error_code, out)
}

fn describe_group(c: &mut RawClient, group: &str) -> DescribeGroupsResponse {
    let v = c.version::<DescribeGroupsRequest>(5);
    let req = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let resp = c.send(&req, v).expect("DescribeGroups");
    assert_eq!(resp.groups.len(), 1, "DescribeGroups response: {resp:?}");
    assert_eq!(resp.groups[0].group_id.0.to_string(), group, "{resp:?}");
    resp
}

/// ListGroups (v4+, with a states filter) on every shard: (shard, group, state,
/// protocol type) for each listed group named `group`.
fn list_groups_named(
    broker: &Broker,
    group: &str,
    states: &[&str],
) -> Vec<(u16, String, String, String)> {
    let mut out = Vec::new();
    for shard in 0..broker.cores() {
        let mut c = raw(broker, shard);
        let v = c.version::<ListGroupsRequest>(4);
        assert!(
            v >= 4,
            "broker's ListGroups tops out at v{v}; v4 (states filter) is needed"
        );
        let req =
            ListGroupsRequest::default().with_states_filter(states.iter().map(|s| sb(s)).collect());
        let resp = c.send(&req, v).expect("ListGroups");
        assert_eq!(
            resp.error_code,
            err::NONE,
            "ListGroups on shard {shard}: {resp:?}"
        );
        for g in &resp.groups {
            if g.group_id.0.to_string() == group {
                out.push((
                    shard,
                    g.group_id.0.to_string(),
                    g.group_state.to_string(),
                    g.protocol_type.to_string(),
                ));
            }
        }
    }
    out
}

fn delete_groups(c: &mut RawClient, group: &str) -> i16 {
    let v = c.version::<DeleteGroupsRequest>(2);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
    let resp = c.send(&req, v).expect("DeleteGroups");
    assert_eq!(resp.results.len(), 1, "DeleteGroups response: {resp:?}");
    assert_eq!(resp.results[0].group_id.0.to_string(), group);
    resp.results[0].error_code
}

/// OffsetDelete of `partitions`: (top-level error, partition -> error).
fn offset_delete(
    c: &mut RawClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> (i16, BTreeMap<i32, i16>) {
    let v = c.version::<OffsetDeleteRequest>(0);
    let req = OffsetDeleteRequest::default()
        .with_group_id(group_id(group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    let resp = c.send(&req, v).expect("OffsetDelete");
    let parts = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    (resp.error_code, parts)
}

// ---------------------------------------------------------------------------
// rdkafka members: splitting, leaving, cooperative rebalancing
// ---------------------------------------------------------------------------

/// Three members of one group split a 12-partition topic 4/4/4 (in the shape
/// the assignor prescribes), then read every message exactly once, each
/// message after the split by the owner of its partition. With `then_leave`,
/// one member closes (LeaveGroup) and the other two take over 6/6 and read
/// everything produced afterwards, still exactly once overall.
fn split_scenario(strategy: &str, then_leave: bool) {
    let mut broker = Broker::builder()
        .cores(2)
        .set("group.initial.rebalance.delay.ms", 0)
        .start();
    let bs = broker.bootstrap();
    let topic = unique("grp-split");
    let group = unique("g-split");
    create_topic(&bs, &topic, PARTS);
    // Some messages exist before anyone joins (earliest picks them up) ...
    produce(&bs, &topic, 0..6_000, |id| id as i32 % PARTS);

    let opts = [("partition.assignment.strategy", strategy)];
    let mut members: Vec<GroupConsumer> = ["m0", "m1", "m2"]
        .iter()
        .map(|n| GroupConsumer::start(&bs, &group, &topic, n, &opts))
        .collect();
    let refs: Vec<&GroupConsumer> = members.iter().collect();
    let split = wait_split(&refs, PARTS, 4, WAIT);
    if let Some(want) = expected_split(strategy, PARTS, 3) {
        assert_eq!(
            as_set(&split),
            want,
            "{strategy} split of {PARTS} partitions over 3 members"
        );
    }
    eprintln!("{strategy}: 3-way split {split:?}");

    // ... and more after the split: all three read them together.
    produce(&bs, &topic, 6_000..12_000, |id| id as i32 % PARTS);
    let seen = wait_exactly_once(&refs, 12_000, PARTS, WAIT, Duration::from_secs(2));
    let names: Vec<&str> = refs.iter().map(|m| m.name.as_str()).collect();
    assert_read_by_owners(&seen, 6_000..12_000, &names, &split);
    let per_member: BTreeMap<&str, usize> = names
        .iter()
        .map(|n| (*n, (6_000..12_000).filter(|id| seen[id].0 == *n).count()))
        .collect();
    assert!(
        per_member.values().all(|c| *c == 2_000),
        "each member owns 4 of 12 partitions, so reads 2000 of the 6000 later messages: {per_member:?}"
    );

    if then_leave {
        let before: Vec<(BTreeSet<i32>, (u64, u64))> = members[..2]
            .iter()
            .map(|m| (m.assignment(), m.rebalances()))
            .collect();
        let mut gone = members.pop().unwrap();
        gone.close();
        let refs: Vec<&GroupConsumer> = members.iter().collect();
        let split2 = wait_split(&refs, PARTS, 6, WAIT);
        if let Some(want) = expected_split(strategy, PARTS, 2) {
            assert_eq!(
                as_set(&split2),
                want,
                "{strategy} split of {PARTS} partitions over 2 members"
            );
        }
        if strategy == "cooperative-sticky" {
            // Incremental rebalance: the survivors keep what they had and are
            // only given the leaver's partitions, never asked to revoke.
            for (m, (old, (_, revokes))) in members.iter().zip(&before) {
                let now = m.assignment();
                assert!(
                    old.is_subset(&now),
                    "{}: sticky assignment dropped partitions: had {old:?}, now {now:?}",
                    m.name
                );
                assert_eq!(
                    m.rebalances().1,
                    *revokes,
                    "{}: partitions revoked when a member left a cooperative group:{}",
                    m.name,
                    describe_all(&refs)
                );
            }
        }
        eprintln!("{strategy}: after {} left: {split2:?}", gone.name);

        produce(&bs, &topic, 12_000..18_000, |id| id as i32 % PARTS);
        let all: Vec<&GroupConsumer> = members.iter().chain(std::iter::once(&gone)).collect();
        let seen = wait_exactly_once(&all, 18_000, PARTS, WAIT, Duration::from_secs(2));
        let names: Vec<&str> = refs.iter().map(|m| m.name.as_str()).collect();
        assert_read_by_owners(&seen, 12_000..18_000, &names, &split2);
    }

    for m in &mut members {
        m.close();
    }
    broker.stop();
}

/// Three range-assignment members of one group split 12 partitions into the
/// blocks {0-3}, {4-7}, {8-11}; together they read all 12,000 messages
/// exactly once, and each message produced after the split is read by the
/// owner of its partition.
#[test]
fn three_consumers_split_twelve_partitions() {
    bounded(TEST_LIMIT, || split_scenario("range", false))
}

/// Same as `three_consumers_split_twelve_partitions` with roundrobin
/// assignment: the split is {0,3,6,9}, {1,4,7,10}, {2,5,8,11}.
#[test]
fn three_consumers_split_twelve_partitions_roundrobin() {
    bounded(TEST_LIMIT, || split_scenario("roundrobin", false))
}

/// After the 3-way range split, one member closes (commit, LeaveGroup): the
/// other two rebalance to {0-5}, {6-11} and read everything produced
/// afterwards; every message is read exactly once overall (the leaver's
/// commit is honoured).
#[test]
fn member_leaves_others_take_over() {
    bounded(TEST_LIMIT, || split_scenario("range", true))
}

/// The split/leave scenario with cooperative-sticky (incremental) rebalancing:
/// 4/4/4, then 6/6 after a member leaves, the survivors keeping their
/// partitions with no revocation, every message read exactly once.
#[test]
fn cooperative_sticky() {
    bounded(TEST_LIMIT, || split_scenario("cooperative-sticky", true))
}

/// Static membership (KIP-345): a static member that closes (librdkafka sends
/// no LeaveGroup for static members) and comes back with the same
/// group.instance.id within the session timeout gets its old partitions back,
/// resumes from its committed offsets, and the other members see no
/// rebalance at all. Then a second client joining with a live member's
/// instance id fences it (FENCED_INSTANCE_ID, fatal in librdkafka).
/// Runs with the default group.initial.rebalance.delay.ms.
#[test]
fn static_member_restart_no_rebalance() {
    bounded(TEST_LIMIT, || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("grp-static");
        let group = unique("g-static");
        create_topic(&bs, &topic, PARTS);
        produce(&bs, &topic, 0..1_200, |id| id as i32 % PARTS);

        let instance = |n: &str| format!("{group}-{n}");
        // A static member named `name` with instance id `<group>-<inst>`.
        let start = |name: &str, inst: &str| {
            let inst = instance(inst);
            GroupConsumer::start(
                &bs,
                &group,
                &topic,
                name,
                &[
                    ("group.instance.id", inst.as_str()),
                    ("session.timeout.ms", "30000"),
                    ("heartbeat.interval.ms", "1000"),
                ],
            )
        };
        let a = start("a", "a");
        let b = start("b", "b");
        let mut c = start("c", "c");
        wait_split(&[&a, &b, &c], PARTS, 4, WAIT);
        // Let any last rebalance land before taking the reference split.
        wait_quiet(&[&a, &b, &c], Duration::from_secs(3), WAIT);
        let split = wait_split(&[&a, &b, &c], PARTS, 4, WAIT);
        wait_exactly_once(
            &[&a, &b, &c],
            1_200,
            PARTS,
            WAIT,
            Duration::from_millis(500),
        );
        let others_before = [a.rebalances(), b.rebalances()];
        eprintln!("static split {split:?}; a, b rebalances {others_before:?}");

        // c goes away without LeaveGroup and comes back as a new client with
        // the same instance id, well within the 30 s session timeout.
        c.close();
        let c2 = start("c-again", "c");
        let mut got = BTreeSet::new();
        let ok = wait_until(WAIT, Duration::from_millis(100), || {
            got = c2.assignment();
            got == split[2]
        });
        assert!(
            ok,
            "the restarted static member got {got:?}, want its old partitions {:?}:{}",
            split[2],
            describe_all(&[&a, &b, &c2])
        );

        // It resumes where c committed, and messages keep flowing to the
        // same owners.
        produce(&bs, &topic, 1_200..2_400, |id| id as i32 % PARTS);
        let seen = wait_exactly_once(
            &[&a, &b, &c, &c2],
            2_400,
            PARTS,
            WAIT,
            Duration::from_secs(1),
        );
        assert_read_by_owners(&seen, 1_200..2_400, &["a", "b", "c-again"], &split);
        // Several heartbeat intervals: a rebalance would have reached a and b.
        std::thread::sleep(Duration::from_secs(5));
        assert_eq!(
            [a.rebalances(), b.rebalances()],
            others_before,
            "the other members saw rebalance callbacks (assign, revoke) when a static member \
             restarted:{}",
            describe_all(&[&a, &b, &c2])
        );
        assert_eq!(
            [a.assignment(), b.assignment(), c2.assignment()],
            [split[0].clone(), split[1].clone(), split[2].clone()],
            "assignments changed across the static restart"
        );

        // Fencing: a raw client joins with b's instance id (and b's own
        // subscription, so nothing else changes); b is fenced.
        let shard = coordinator_shard(&broker, &group);
        let mut rc = raw(&broker, shard);
        let d = describe_group(&mut rc, &group);
        let g = &d.groups[0];
        assert_eq!(g.error_code, err::NONE, "DescribeGroups: {d:?}");
        let b_inst = instance("b");
        let old = g
            .members
            .iter()
            .find(|m| m.group_instance_id.as_deref() == Some(b_inst.as_str()))
            .unwrap_or_else(|| {
                panic!("DescribeGroups lists no member with instance id {b_inst}: {d:?}")
            });
        let resp = join_group(
            &mut rc,
            &group,
            "",
            Some(&b_inst),
            &g.protocol_data.to_string(),
            old.member_metadata.clone(),
        );
        assert_eq!(
            resp.error_code,
            err::NONE,
            "JoinGroup with a known static instance id must replace the member: {resp:?}"
        );
        assert!(
            !resp.member_id.is_empty() && resp.member_id != old.member_id,
            "the replacing member needs a new member id (old {:?}): {resp:?}",
            old.member_id
        );
        let mut fatal = None;
        let fenced = wait_until(WAIT, Duration::from_millis(100), || {
            fatal = b
                .consumer()
                .client()
                .fatal_error()
                .or_else(|| b.state.fatal.lock().unwrap().clone());
            fatal.is_some()
        });
        assert!(
            fenced && fatal.as_ref().map(|f| f.0) == Some(RDKafkaErrorCode::FencedInstanceId),
            "the replaced static member b should be fenced (FENCED_INSTANCE_ID); fatal error \
             {fatal:?}:{}",
            describe_all(&[&a, &b, &c2])
        );
        drop((a, b, c, c2));
        broker.stop();
    })
}

/// Committed offsets survive a broker restart: a member commits explicit
/// offsets (with metadata) for part of a topic and closes; after a clean
/// restart, committed() returns the same offsets and metadata, and a new
/// member of the group — with auto.offset.reset=error, so a lost commit
/// cannot hide behind a reset — starts each partition exactly at its
/// committed offset and reads the rest once.
/// Runs with the default group.initial.rebalance.delay.ms.
#[test]
fn commit_restart_resume() {
    bounded(TEST_LIMIT, || {
        const P: i32 = 4;
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("grp-resume");
        let group = unique("g-resume");
        create_topic(&bs, &topic, P);
        produce(&bs, &topic, 0..1_600, |id| id as i32 % P);
        for p in 0..P {
            assert_eq!(watermarks(&bs, &topic, p), (0, 400), "partition {p}");
        }
        // Partition 3 is committed at its end: nothing to resume there until
        // more is produced.
        let commit: BTreeMap<i32, i64> = [(0, 100), (1, 1), (2, 250), (3, 400)].into();
        let meta = |p: i32| format!("resume-meta-{p}");

        eprintln!("commit_restart_resume: first member joins");
        let mut m = GroupConsumer::start_with(&bs, &group, &topic, "first", &[], false);
        wait_split(&[&m], P, P as usize, WAIT);
        let ok = wait_until(WAIT, Duration::from_millis(100), || {
            m.state.recs.lock().unwrap().len() >= 200
        });
        assert!(
            ok,
            "the first member read too little:{}",
            describe_all(&[&m])
        );
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &commit {
            tpl.add_partition(&topic, *p).set_metadata(meta(*p));
            tpl.set_partition_offset(&topic, *p, Offset::Offset(*o))
                .unwrap();
        }
        eprintln!("commit_restart_resume: committing {commit:?}");
        m.consumer()
            .commit(&tpl, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("synchronous commit failed: {e}:{}", describe_all(&[&m])));
        let want: BTreeMap<i32, Committed2> = commit
            .iter()
            .map(|(p, o)| (*p, (Offset::Offset(*o), meta(*p), true)))
            .collect();
        let got = committed_view(
            &m.consumer()
                .committed(Duration::from_secs(30))
                .expect("committed() before the restart"),
            &topic,
        );
        assert_eq!(
            got, want,
            "committed offsets before the restart (offset, metadata, ok)"
        );
        eprintln!("commit_restart_resume: closing the first member");
        m.close();
        eprintln!("commit_restart_resume: restarting the broker");

        broker.restart();

        // A consumer of the group that never joins it: committed_offsets()
        // only asks the coordinator (which may still be loading).
        let probe: BaseConsumer = {
            let mut cfg = client_config(&bs);
            cfg.set("group.id", &group)
                .set("enable.auto.commit", "false");
            cfg.create().expect("probe consumer")
        };
        let mut query = TopicPartitionList::new();
        for p in 0..P {
            query.add_partition(&topic, p);
        }
        let mut last = Err(String::new());
        let ok = wait_until(WAIT, Duration::from_millis(250), || {
            last = probe
                .committed_offsets(query.clone(), Duration::from_secs(10))
                .map(|t| committed_view(&t, &topic))
                .map_err(|e| e.to_string());
            matches!(&last, Ok(v) if v.values().all(|(_, _, ok)| *ok))
        });
        assert!(
            ok,
            "committed_offsets after the restart kept failing: {last:?}"
        );
        assert_eq!(
            last.unwrap(),
            want,
            "committed offsets after the restart (offset, metadata, ok)"
        );
        drop(probe);

        eprintln!("commit_restart_resume: second member joins");
        produce(&bs, &topic, 1_600..1_605, |_| 3);
        let m2 = GroupConsumer::start_with(
            &bs,
            &group,
            &topic,
            "second",
            &[("auto.offset.reset", "error")],
            false,
        );
        let ends: BTreeMap<i32, i64> = [(0, 400), (1, 400), (2, 400), (3, 405)].into();
        let want_total: usize = ends.iter().map(|(p, e)| (e - commit[p]) as usize).sum();
        let ok = wait_until(WAIT, Duration::from_millis(100), || {
            let reset = m2
                .state
                .errors
                .lock()
                .unwrap()
                .iter()
                .any(|(c, _)| *c == Some(RDKafkaErrorCode::AutoOffsetReset));
            assert!(
                !reset,
                "the new member found no committed offset after the restart \
                 (auto.offset.reset=error fired):{}",
                describe_all(&[&m2])
            );
            m2.state.recs.lock().unwrap().len() >= want_total
        });
        assert!(
            ok,
            "the resumed member did not read {want_total} messages:{}",
            describe_all(&[&m2])
        );
        std::thread::sleep(Duration::from_secs(1));
        let recs = m2.recs();
        let mut by_part: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for r in &recs {
            by_part.entry(r.partition).or_default().push(r.offset);
        }
        let got: BTreeMap<i32, (Option<i64>, usize)> = by_part
            .iter()
            .map(|(p, offs)| (*p, (offs.first().copied(), offs.len())))
            .collect();
        let want: BTreeMap<i32, (Option<i64>, usize)> = ends
            .iter()
            .map(|(p, e)| (*p, (Some(commit[p]), (e - commit[p]) as usize)))
            .collect();
        assert_eq!(
            got, want,
            "per partition (first offset read, messages read) after resuming from the commits"
        );
        for (p, offs) in &by_part {
            let expect: Vec<i64> = (commit[p]..ends[p]).collect();
            assert_eq!(offs, &expect, "offsets read from partition {p}");
        }
        drop(m2);
        broker.stop();
    })
}

// ---------------------------------------------------------------------------
// Raw protocol: coordinators and the group APIs' checks
// ---------------------------------------------------------------------------

/// Groups are spread over shards: each group's coordinator (FindCoordinator)
/// is the leader of `__consumer_offsets` partition
/// `abs(javaStringHashCode(group)) % 50`, single-key (v3) and batched (v4+)
/// FindCoordinator agree from either shard, an OffsetCommit sent to the
/// wrong shard gets NOT_COORDINATOR while the coordinator accepts it, and
/// OffsetFetch on the coordinator returns the offsets and metadata (and
/// librdkafka's committed_offsets() finds them too).
#[test]
fn coordinators_on_different_shards() {
    bounded(TEST_LIMIT, || {
        // Known values of String.hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(offsets_partition("polygenelubricants", 50), 0);

        let mut broker = Broker::builder()
            .cores(2)
            .set("group.initial.rebalance.delay.ms", 0)
            .start();
        let bs = broker.bootstrap();

        // __consumer_offsets: 50 partitions over both shards.
        let mut c0 = raw(&broker, 0);
        let mv = c0.version::<MetadataRequest>(12);
        let md = c0
            .send(
                &MetadataRequest::default()
                    .with_topics(Some(vec![MetadataRequestTopic::default()
                        .with_name(Some(topic_name("__consumer_offsets")))]))
                    .with_allow_auto_topic_creation(false),
                mv,
            )
            .expect("Metadata");
        assert_eq!(md.topics.len(), 1, "{md:?}");
        let t = &md.topics[0];
        assert_eq!(
            t.error_code,
            err::NONE,
            "Metadata for __consumer_offsets: {t:?}"
        );
        assert!(t.is_internal, "__consumer_offsets must be marked internal");
        let leaders: BTreeMap<i32, i32> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        assert_eq!(
            leaders.keys().copied().collect::<Vec<_>>(),
            (0..50).collect::<Vec<_>>(),
            "__consumer_offsets partitions (offsets.topic.num.partitions default 50)"
        );
        let used: BTreeSet<i32> = leaders.values().copied().collect();
        assert_eq!(
            used,
            [1000, 1001].into(),
            "__consumer_offsets leaders: {leaders:?}"
        );

        // Find two groups coordinated by different shards.
        let base = unique("coord");
        let mut by_node: BTreeMap<i32, String> = BTreeMap::new();
        let mut single: BTreeMap<String, (i32, String, i32)> = BTreeMap::new();
        for i in 0..200 {
            let g = format!("{base}-{i}");
            let shard = coordinator_shard(&broker, &g);
            let r = find_coordinator_single(&mut c0, &g);
            assert_eq!(r.error_code, err::NONE, "{r:?}");
            assert_eq!(r.node_id.0, 1000 + shard as i32);
            assert_eq!(
                (r.host.to_string(), r.port),
                ("127.0.0.1".to_string(), broker.port(shard) as i32),
                "FindCoordinator({g}) endpoint"
            );
            let part = offsets_partition(&g, 50);
            assert_eq!(
                r.node_id.0, leaders[&part],
                "coordinator of {g} must lead __consumer_offsets partition {part}"
            );
            single.insert(g.clone(), (r.node_id.0, r.host.to_string(), r.port));
            by_node.entry(r.node_id.0).or_insert(g);
            if by_node.len() == 2 {
                break;
            }
        }
        assert_eq!(
            by_node.len(),
            2,
            "200 group ids all map to one shard: {single:?}"
        );
        let ga = by_node[&1000].clone();
        let gb = by_node[&1001].clone();

        // Batched FindCoordinator (v4+) from shard 1 gives the same answers.
        let mut c1 = raw(&broker, 1);
        let v = c1.version::<FindCoordinatorRequest>(6);
        assert!(
            v >= 4,
            "broker's FindCoordinator tops out at v{v}; batched v4+ is needed"
        );
        let keys: Vec<String> = single.keys().cloned().collect();
        let resp = c1
            .send(
                &FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(keys.iter().map(|k| sb(k)).collect()),
                v,
            )
            .expect("FindCoordinator batched");
        let batched: BTreeMap<String, (i32, String, i32)> = resp
            .coordinators
            .iter()
            .map(|c| {
                assert_eq!(c.error_code, err::NONE, "batched FindCoordinator: {c:?}");
                (c.key.to_string(), (c.node_id.0, c.host.to_string(), c.port))
            })
            .collect();
        assert_eq!(
            batched, single,
            "batched (v{v}) vs single-key (v3) FindCoordinator"
        );

        // OffsetCommit goes to the coordinator only; offsets come back with
        // their metadata.
        let topic = unique("coord-t");
        create_topic(&bs, &topic, 2);
        let mut ca = raw(&broker, 0);
        let mut cb = raw(&broker, 1);
        let a_entries = [(0, 42, "meta-a0"), (1, 7, "meta-a1")];
        let b_entries = [(0, 3, "meta-b0"), (1, 99, "meta-b1")];
        let all = |code: i16| -> BTreeMap<i32, i16> { [(0, code), (1, code)].into() };
        assert_eq!(
            offset_commit(&mut cb, &ga, -1, "", None, &topic, &a_entries),
            all(err::NOT_COORDINATOR),
            "OffsetCommit for {ga} (coordinator 1000) sent to shard 1"
        );
        assert_eq!(
            offset_commit(&mut ca, &gb, -1, "", None, &topic, &b_entries),
            all(err::NOT_COORDINATOR),
            "OffsetCommit for {gb} (coordinator 1001) sent to shard 0"
        );
        assert_eq!(
            offset_commit(&mut ca, &ga, -1, "", None, &topic, &a_entries),
            all(err::NONE),
            "OffsetCommit for {ga} on its coordinator"
        );
        assert_eq!(
            offset_commit(&mut cb, &gb, -1, "", None, &topic, &b_entries),
            all(err::NONE),
            "OffsetCommit for {gb} on its coordinator"
        );
        let want = |e: &[(i32, i64, &str)]| -> BTreeMap<i32, Committed> {
            e.iter()
                .map(|(p, o, m)| (*p, (*o, Some(m.to_string()), err::NONE)))
                .collect()
        };
        assert_eq!(
            offset_fetch(&mut ca, &ga, &topic, &[0, 1]),
            (err::NONE, want(&a_entries)),
            "OffsetFetch for {ga} on its coordinator"
        );
        assert_eq!(
            offset_fetch(&mut cb, &gb, &topic, &[0, 1]),
            (err::NONE, want(&b_entries)),
            "OffsetFetch for {gb} on its coordinator"
        );
        let (e, _) = offset_fetch(&mut cb, &ga, &topic, &[0, 1]);
        assert_eq!(
            e,
            err::NOT_COORDINATOR,
            "OffsetFetch for {ga} sent to shard 1"
        );

        // librdkafka finds the coordinator and the same offsets.
        let probe: BaseConsumer = {
            let mut cfg = client_config(&bs);
            cfg.set("group.id", &ga).set("enable.auto.commit", "false");
            cfg.create().expect("probe consumer")
        };
        let mut q = TopicPartitionList::new();
        q.add_partition(&topic, 0);
        q.add_partition(&topic, 1);
        let got = committed_view(
            &probe
                .committed_offsets(q, Duration::from_secs(30))
                .expect("committed_offsets"),
            &topic,
        );
        assert_eq!(
            got,
            [
                (0, (Offset::Offset(42), "meta-a0".to_string(), true)),
                (1, (Offset::Offset(7), "meta-a1".to_string(), true))
            ]
            .into(),
            "rdkafka committed_offsets for {ga} (offset, metadata, ok)"
        );
        drop(probe);
        broker.stop();
    })
}

/// The classic group protocol's checks, by hand on the coordinator shard:
/// JoinGroup v4+ without a member id gets MEMBER_ID_REQUIRED (with an id to
/// use), joining with it succeeds (leader, generation ≥ 1) and an unknown id
/// gets UNKNOWN_MEMBER_ID; Heartbeat and OffsetCommit with a wrong
/// generation get ILLEGAL_GENERATION and with an unknown member
/// UNKNOWN_MEMBER_ID; DescribeGroups shows the member with client id and
/// host; ListGroups filters by state; OffsetDelete of a subscribed topic's
/// partition is refused (GROUP_SUBSCRIBED_TO_TOPIC) while the group is
/// active and works once it is Empty; DeleteGroups refuses a non-empty group
/// (NON_EMPTY_GROUP), deletes an empty one with its offsets, and then
/// answers GROUP_ID_NOT_FOUND.
/// Runs with the default group.initial.rebalance.delay.ms.
#[test]
fn offset_commit_checks() {
    bounded(TEST_LIMIT, || {
        let mut broker = Broker::builder().cores(2).start();
        let bs = broker.bootstrap();
        let topic = unique("grp-checks");
        let group = unique("g-checks");
        create_topic(&bs, &topic, 3);
        let shard = coordinator_shard(&broker, &group);
        let mut c = raw(&broker, shard);
        let sub = subscription(&[&topic]);

        // Member id required, then join with it.
        let r = join_group(&mut c, &group, "", None, "range", sub.clone());
        assert_eq!(
            r.error_code,
            err::MEMBER_ID_REQUIRED,
            "first JoinGroup without a member id: {r:?}"
        );
        assert!(
            !r.member_id.is_empty(),
            "MEMBER_ID_REQUIRED must carry a member id: {r:?}"
        );
        let member = r.member_id.to_string();
        let r = join_group(&mut c, &group, "bogus-member", None, "range", sub.clone());
        assert_eq!(
            r.error_code,
            err::UNKNOWN_MEMBER_ID,
            "JoinGroup with an unknown member id: {r:?}"
        );
        let r = join_group(&mut c, &group, &member, None, "range", sub.clone());
        assert_eq!(
            r.error_code,
            err::NONE,
            "JoinGroup with the given member id: {r:?}"
        );
        assert_eq!(r.member_id.to_string(), member, "{r:?}");
        assert_eq!(r.leader.to_string(), member, "the only member leads: {r:?}");
        assert!(
            r.generation_id >= 1,
            "generation after the first rebalance: {r:?}"
        );
        assert_eq!(r.protocol_name.as_deref(), Some("range"), "{r:?}");
        let members: Vec<(String, Option<String>, Bytes)> = r
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                    m.metadata.clone(),
                )
            })
            .collect();
        assert_eq!(
            members,
            vec![(member.clone(), None, sub.clone())],
            "JoinGroup members for the leader"
        );
        let generation = r.generation_id;

        // The leader hands itself all three partitions.
        let assign = assignment_bytes(&topic, &[0, 1, 2]);
        let v = c.version::<SyncGroupRequest>(5);
        let s = c
            .send(
                &SyncGroupRequest::default()
                    .with_group_id(group_id(&group))
                    .with_generation_id(generation)
                    .with_member_id(sb(&member))
                    .with_protocol_type(Some(sb("consumer")))
                    .with_protocol_name(Some(sb("range")))
                    .with_assignments(vec![SyncGroupRequestAssignment::default()
                        .with_member_id(sb(&member))
                        .with_assignment(assign.clone())]),
                v,
            )
            .expect("SyncGroup");
        assert_eq!(s.error_code, err::NONE, "SyncGroup: {s:?}");
        assert_eq!(
            s.assignment, assign,
            "SyncGroup returns the leader's assignment"
        );

        // Heartbeat checks.
        assert_eq!(
            heartbeat(&mut c, &group, generation, &member),
            err::NONE,
            "heartbeat"
        );
        assert_eq!(
            heartbeat(&mut c, &group, generation + 1, &member),
            err::ILLEGAL_GENERATION,
            "heartbeat with a wrong generation"
        );
        assert_eq!(
            heartbeat(&mut c, &group, generation, "nobody"),
            err::UNKNOWN_MEMBER_ID,
            "heartbeat from an unknown member"
        );

        // OffsetCommit checks.
        let entries = [(0, 5, "m0"), (1, 6, "m1"), (2, 7, "m2")];
        let all = |code: i16| -> BTreeMap<i32, i16> { (0..3).map(|p| (p, code)).collect() };
        assert_eq!(
            offset_commit(
                &mut c,
                &group,
                generation + 1,
                &member,
                None,
                &topic,
                &entries
            ),
            all(err::ILLEGAL_GENERATION),
            "OffsetCommit with a wrong generation (current {generation})"
        );
        assert_eq!(
            offset_commit(&mut c, &group, generation, "nobody", None, &topic, &entries),
            all(err::UNKNOWN_MEMBER_ID),
            "OffsetCommit from an unknown member"
        );
        assert_eq!(
            offset_commit(&mut c, &group, -1, "", None, &topic, &entries),
            all(err::UNKNOWN_MEMBER_ID),
            "OffsetCommit without member or generation while the group is active"
        );
        assert_eq!(
            offset_commit(&mut c, &group, generation, &member, None, &topic, &entries),
            all(err::NONE),
            "OffsetCommit from the member with the current generation"
        );
        let fetched = |c: &mut RawClient| offset_fetch(c, &group, &topic, &[0, 1, 2]);
        assert_eq!(
            fetched(&mut c),
            (
                err::NONE,
                entries
                    .iter()
                    .map(|(p, o, m)| (*p, (*o, Some(m.to_string()), err::NONE)))
                    .collect()
            ),
            "OffsetFetch after the commit"
        );

        // DescribeGroups: one member, with client id and host.
        let d = describe_group(&mut c, &group);
        let g = &d.groups[0];
        assert_eq!(g.error_code, err::NONE, "{d:?}");
        assert_eq!(
            (
                g.group_state.to_string(),
                g.protocol_type.to_string(),
                g.protocol_data.to_string()
            ),
            (
                "Stable".to_string(),
                "consumer".to_string(),
                "range".to_string()
            ),
            "DescribeGroups (state, protocol type, protocol): {d:?}"
        );
        assert_eq!(g.members.len(), 1, "{d:?}");
        let m = &g.members[0];
        assert_eq!(m.member_id.to_string(), member, "{d:?}");
        assert_eq!(m.group_instance_id, None, "{d:?}");
        assert_eq!(
            m.client_id.to_string(),
            "sluice-tests",
            "DescribeGroups client id: {d:?}"
        );
        assert!(
            m.client_host.contains("127.0.0.1"),
            "DescribeGroups client host should be the member's address (Kafka: /127.0.0.1): {d:?}"
        );
        assert_eq!(m.member_metadata, sub, "DescribeGroups member metadata");
        assert_eq!(
            m.member_assignment, assign,
            "DescribeGroups member assignment"
        );

        // ListGroups with a states filter (each group is listed by its
        // coordinator only, as each Kafka broker lists its own groups).
        let listed = list_groups_named(&broker, &group, &["Stable"]);
        assert_eq!(
            listed,
            vec![(
                shard,
                group.clone(),
                "Stable".to_string(),
                "consumer".to_string()
            )],
            "ListGroups(Stable) over all shards"
        );
        assert_eq!(
            list_groups_named(&broker, &group, &["Empty"]),
            vec![],
            "ListGroups(Empty) must not list the Stable group"
        );
        assert_eq!(
            list_groups_named(&broker, &group, &[]).len(),
            1,
            "ListGroups (no filter)"
        );

        // Active group: its subscribed topic's offsets cannot be deleted, nor
        // can the group.
        let (e, parts) = offset_delete(&mut c, &group, &topic, &[0]);
        assert_eq!(
            (e, parts),
            (err::NONE, [(0, err::GROUP_SUBSCRIBED_TO_TOPIC)].into()),
            "OffsetDelete of a subscribed partition of an active group (top-level, per partition)"
        );
        assert_eq!(
            delete_groups(&mut c, &group),
            err::NON_EMPTY_GROUP,
            "DeleteGroups of an active group"
        );

        // The member leaves: the group is Empty.
        let v = c.version::<LeaveGroupRequest>(5);
        let mut req = LeaveGroupRequest::default().with_group_id(group_id(&group));
        if v >= 3 {
            req = req.with_members(vec![MemberIdentity::default().with_member_id(sb(&member))]);
        } else {
            req = req.with_member_id(sb(&member));
        }
        let l = c.send(&req, v).expect("LeaveGroup");
        assert_eq!(l.error_code, err::NONE, "LeaveGroup: {l:?}");
        if v >= 3 {
            assert_eq!(l.members.len(), 1, "{l:?}");
            assert_eq!(
                l.members[0].error_code,
                err::NONE,
                "LeaveGroup member: {l:?}"
            );
        }
        let d = describe_group(&mut c, &group);
        assert_eq!(
            d.groups[0].group_state.to_string(),
            "Empty",
            "after LeaveGroup: {d:?}"
        );
        assert!(d.groups[0].members.is_empty(), "after LeaveGroup: {d:?}");
        assert_eq!(
            list_groups_named(&broker, &group, &["Empty"]),
            vec![(
                shard,
                group.clone(),
                "Empty".to_string(),
                "consumer".to_string()
            )],
            "ListGroups(Empty) after the member left"
        );

        // Empty group: OffsetDelete works, partition by partition.
        let (e, parts) = offset_delete(&mut c, &group, &topic, &[0]);
        assert_eq!(
            (e, parts),
            (err::NONE, [(0, err::NONE)].into()),
            "OffsetDelete on an Empty group"
        );
        let (e, got) = fetched(&mut c);
        assert_eq!(e, err::NONE);
        let offsets: Vec<(i32, i64)> = got.iter().map(|(p, (o, _, _))| (*p, *o)).collect();
        assert_eq!(
            offsets,
            vec![(0, -1), (1, 6), (2, 7)],
            "committed offsets after OffsetDelete of partition 0"
        );

        // DeleteGroups removes the group and its offsets.
        assert_eq!(
            delete_groups(&mut c, &group),
            err::NONE,
            "DeleteGroups of an Empty group"
        );
        let (e, got) = fetched(&mut c);
        assert_eq!(e, err::NONE);
        let offsets: Vec<(i32, i64, i16)> =
            got.iter().map(|(p, (o, _, pe))| (*p, *o, *pe)).collect();
        assert_eq!(
            offsets,
            vec![(0, -1, 0), (1, -1, 0), (2, -1, 0)],
            "OffsetFetch after DeleteGroups"
        );
        assert_eq!(
            delete_groups(&mut c, &group),
            err::GROUP_ID_NOT_FOUND,
            "DeleteGroups of a deleted group"
        );
        assert!(
            list_groups_named(&broker, &group, &[]).is_empty(),
            "ListGroups after DeleteGroups"
        );
        broker.stop();
    })
}
