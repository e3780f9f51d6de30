//! Real client request frames built with kafka-protocol: a default-bodied request for every API
//! and version the broker supports, and realistic requests of a producing and consuming client
//! (Produce with batches in every codec, Fetch, Metadata, the consumer group protocol, admin
//! requests). Used to seed the `request_decoding` fuzz corpus (`tests/fuzz_replay.rs`) and as the
//! frames the black-box mutation test (`tests/mutation.rs`) mutates.
//!
//! Frames are the bytes after the 4-byte length prefix: request header, then body.

#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::Compression;
use sluice_engine::api::SUPPORTED_APIS;
use sluice_storage::wire::{BatchOptions, RecordBatchBuilder};

/// Header and body of `req` at `version`, as a client with id `sluice-frames` sends it.
pub fn request_frame<R: Encodable + HeaderVersion>(
    key: ApiKey,
    req: &R,
    version: i16,
    correlation: i32,
) -> Option<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("sluice-frames")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    req.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

/// `frame` with its 4-byte length prefix, ready to write to a socket.
pub fn with_length(frame: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(frame.len() + 4);
    buf.put_u32(frame.len() as u32);
    buf.extend_from_slice(frame);
    buf.freeze()
}

macro_rules! default_frame {
    ($key:expr, $version:expr, $($api:ident => $ty:ty),* $(,)?) => {
        match $key {
            $(ApiKey::$api => request_frame($key, &<$ty>::default(), $version, 1),)*
            _ => None,
        }
    };
}

/// A request with every field at its default for every supported API and version:
/// `(api, version, frame)`.
pub fn default_frames() -> Vec<(ApiKey, i16, Bytes)> {
    let mut out = Vec::new();
    for &(key, lo, hi) in SUPPORTED_APIS {
        for version in lo..=hi {
            let frame = default_frame!(key, version,
                Produce => ProduceRequest,
                Fetch => FetchRequest,
                ListOffsets => ListOffsetsRequest,
                Metadata => MetadataRequest,
                ApiVersions => ApiVersionsRequest,
                CreateTopics => CreateTopicsRequest,
                DeleteTopics => DeleteTopicsRequest,
                InitProducerId => InitProducerIdRequest,
                OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
                DescribeConfigs => DescribeConfigsRequest,
                AlterConfigs => AlterConfigsRequest,
                IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
                CreatePartitions => CreatePartitionsRequest,
                ElectLeaders => ElectLeadersRequest,
                AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
                ListPartitionReassignments => ListPartitionReassignmentsRequest,
                DescribeCluster => DescribeClusterRequest,
                DescribeQuorum => DescribeQuorumRequest,
                FindCoordinator => FindCoordinatorRequest,
                JoinGroup => JoinGroupRequest,
                SyncGroup => SyncGroupRequest,
                Heartbeat => HeartbeatRequest,
                LeaveGroup => LeaveGroupRequest,
                OffsetCommit => OffsetCommitRequest,
                OffsetFetch => OffsetFetchRequest,
                OffsetDelete => OffsetDeleteRequest,
                ListGroups => ListGroupsRequest,
                DescribeGroups => DescribeGroupsRequest,
                DeleteGroups => DeleteGroupsRequest,
                DeleteRecords => DeleteRecordsRequest,
                DescribeLogDirs => DescribeLogDirsRequest,
                DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
                AlterUserScramCredentials => AlterUserScramCredentialsRequest,
            );
            if let Some(frame) = frame {
                out.push((key, version, frame));
            }
        }
    }
    out
}

/// A record batch of `count` keyed records with headers, in `compression`.
pub fn record_batch(compression: Compression, count: i32, seed: u64) -> Bytes {
    let mut builder = RecordBatchBuilder::new();
    for i in 0..count {
        let key = format!("key-{seed}-{i}");
        let value = format!("value {seed} {i} ").repeat(8);
        builder.push(
            now_ms(),
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[(b"h", Some(b"v"))],
        );
    }
    let options = BatchOptions {
        partition_leader_epoch: 0,
        compression: compression.into(),
        ..BatchOptions::default()
    };
    builder.finish(&options).expect("encode a record batch")
}

/// Every codec Kafka has.
pub const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// What a producing and consuming client sends for `topic` (partitions 0 and 1) and `group`:
/// Produce at old and new versions with a batch in every codec, Metadata, Fetch, ListOffsets,
/// the consumer group protocol, and admin requests.
pub fn client_frames(topic: &str, group: &str) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut push = |frame: Option<Bytes>| frames.extend(frame);
    let name = || TopicName(s(topic));
    for (i, codec) in CODECS.into_iter().enumerate() {
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(name())
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index((i % 2) as i32)
                        .with_records(Some(record_batch(codec, 3, i as u64))),
                ])]);
        for version in [3, 7, 9, 11] {
            push(request_frame(
                ApiKey::Produce,
                &produce,
                version,
                10 + i as i32,
            ));
        }
    }
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name())),
    ]));
    for version in [1, 4, 9, 12] {
        push(request_frame(ApiKey::Metadata, &metadata, version, 20));
    }
    let fetch = FetchRequest::default()
        .with_max_wait_ms(10)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(name())
            .with_partitions(
                (0..2)
                    .map(|p| {
                        fetch_request::FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    for version in [4, 7, 11, 12] {
        push(request_frame(ApiKey::Fetch, &fetch, version, 30));
    }
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(name())
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1),
            ])]);
    for version in [1, 5, 8] {
        push(request_frame(ApiKey::ListOffsets, &list, version, 40));
    }
    let find = FindCoordinatorRequest::default()
        .with_key(s(group))
        .with_coordinator_keys(vec![s(group)]);
    for version in [2, 3, 4] {
        push(request_frame(ApiKey::FindCoordinator, &find, version, 50));
    }
    let mut subscription = BytesMut::new();
    subscription.put_i16(1);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![s(topic)])
        .encode(&mut subscription, 1)
        .expect("encode a subscription");
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(subscription.freeze())]);
    for version in [1, 5, 7] {
        push(request_frame(ApiKey::JoinGroup, &join, version, 60));
    }
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(1)
        .with_member_id(s("member-1"))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s("member-1"))
                .with_assignment(Bytes::from_static(&[0, 1, 0, 0, 0, 0])),
        ]);
    for version in [1, 3, 5] {
        push(request_frame(ApiKey::SyncGroup, &sync, version, 70));
    }
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name())
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(3)
                        .with_committed_metadata(Some(s("meta"))),
                ]),
        ]);
    for version in [2, 7, 8] {
        push(request_frame(ApiKey::OffsetCommit, &commit, version, 80));
    }
    let offsets = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(name())
                .with_partition_indexes(vec![0, 1]),
        ]));
    for version in [1, 5, 7] {
        push(request_frame(ApiKey::OffsetFetch, &offsets, version, 90));
    }
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(&format!("{topic}-created"))))
            .with_num_partitions(2)
            .with_replication_factor(1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact"))),
            ])]);
    for version in [2, 5, 7] {
        push(request_frame(ApiKey::CreateTopics, &create, version, 100));
    }
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(topic)),
    ]);
    for version in [1, 4] {
        push(request_frame(
            ApiKey::DescribeConfigs,
            &describe,
            version,
            110,
        ));
    }
    let versions = ApiVersionsRequest::default()
        .with_client_software_name(s("sluice-frames"))
        .with_client_software_version(s("1.0"));
    for version in [0, 3] {
        push(request_frame(ApiKey::ApiVersions, &versions, version, 120));
    }
    frames
}
