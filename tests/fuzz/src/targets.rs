//! The bodies of Sluice's fuzz targets: one plain function per target, each feeding arbitrary
//! bytes to one decoder or loader of input that comes from the network or the disk, the way the
//! broker calls it. A target returns normally for every input; a panic, an abort (allocation
//! failure), a failed debug assertion or an overflow is a finding.
//!
//! The libFuzzer binaries in `tests/fuzz/fuzz_targets/` call these functions, and so does
//! `tests/fuzz_replay.rs` in the normal suite, which replays every saved corpus input and every
//! saved crash input. [`ALL`] lists the targets by name; the names are also the corpus
//! directories (`tests/fuzz/corpus/<name>/`).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use sluice_engine::api::{decode, supported_versions};
use sluice_engine::controller_rpc::{self, ControllerCall};
use sluice_engine::group::records::{
    decode_group_value, decode_key, decode_offset_value, OffsetsKey,
};
use sluice_engine::metadata::{ClusterState, MetadataImage, METADATA_FILE};
use sluice_engine::metadata_log::{apply_batch, decode_batch, decode_snapshot, records_between};
use sluice_engine::BrokerConfig;
use sluice_net::RawRequest;
use sluice_storage::{
    decompress_records, patched_prefix, validate_records, Compression, LogConfig, OffsetIndex,
    PartitionLog, TimeIndex, ValidationConfig,
};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Every target, by name (its corpus directory) and body.
pub const ALL: &[(&str, fn(&[u8]))] = &[
    ("request_decoding", request_decoding),
    ("batch_validation", batch_validation),
    ("segment_recovery", segment_recovery),
    ("index_loading", index_loading),
    ("offsets_records", offsets_records),
    ("config_loading", config_loading),
    ("metadata_loading", metadata_loading),
    ("decompression", decompression),
];

/// The clock the storage targets run at (any fixed value; timestamps are input).
const NOW_MS: i64 = 1_700_000_000_000;

/// A request frame as a client sends it, without the 4-byte length prefix: the request header
/// (`RawRequest::parse`) and then the body, decoded as the header's API and version when the
/// broker supports them (`SUPPORTED_APIS`), with `sluice_engine::api::decode`, the function
/// every handler uses. Produce records go on through batch validation, and JoinGroup protocol
/// metadata through the consumer-subscription decoding the group coordinator does.
pub fn request_decoding(data: &[u8]) {
    let Ok(request) = RawRequest::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let Some((lo, hi)) = supported_versions(request.api_key) else {
        return;
    };
    if (lo..=hi).contains(&request.api_version) {
        decode_request_body(&request);
    }
}

/// Decodes the body of a supported request; returns whether the API was one this function
/// knows (every entry of `SUPPORTED_APIS` is, which `tests/fuzz_replay.rs` checks).
pub fn decode_request_body(req: &RawRequest) -> bool {
    match req.api_key {
        ApiKey::Produce => {
            if let Ok(produce) = decode::<ProduceRequest>(req) {
                let records = produce.topic_data.iter().flat_map(|t| &t.partition_data);
                for records in records.filter_map(|p| p.records.as_ref()) {
                    batch_validation(records);
                }
            }
        }
        ApiKey::Fetch => {
            let _ = decode::<FetchRequest>(req);
        }
        ApiKey::ListOffsets => {
            let _ = decode::<ListOffsetsRequest>(req);
        }
        ApiKey::Metadata => {
            let _ = decode::<MetadataRequest>(req);
        }
        ApiKey::ApiVersions => {
            let _ = decode::<ApiVersionsRequest>(req);
        }
        ApiKey::CreateTopics => {
            let _ = decode::<CreateTopicsRequest>(req);
        }
        ApiKey::DeleteTopics => {
            let _ = decode::<DeleteTopicsRequest>(req);
        }
        ApiKey::InitProducerId => {
            let _ = decode::<InitProducerIdRequest>(req);
        }
        ApiKey::OffsetForLeaderEpoch => {
            let _ = decode::<OffsetForLeaderEpochRequest>(req);
        }
        ApiKey::DescribeConfigs => {
            let _ = decode::<DescribeConfigsRequest>(req);
        }
        ApiKey::AlterConfigs => {
            let _ = decode::<AlterConfigsRequest>(req);
        }
        ApiKey::IncrementalAlterConfigs => {
            let _ = decode::<IncrementalAlterConfigsRequest>(req);
        }
        ApiKey::CreatePartitions => {
            let _ = decode::<CreatePartitionsRequest>(req);
        }
        ApiKey::ElectLeaders => {
            let _ = decode::<ElectLeadersRequest>(req);
        }
        ApiKey::AlterPartitionReassignments => {
            let _ = decode::<AlterPartitionReassignmentsRequest>(req);
        }
        ApiKey::ListPartitionReassignments => {
            let _ = decode::<ListPartitionReassignmentsRequest>(req);
        }
        ApiKey::DescribeCluster => {
            let _ = decode::<DescribeClusterRequest>(req);
        }
        ApiKey::DescribeQuorum => {
            let _ = decode::<DescribeQuorumRequest>(req);
        }
        ApiKey::FindCoordinator => {
            let _ = decode::<FindCoordinatorRequest>(req);
        }
        ApiKey::JoinGroup => {
            if let Ok(join) = decode::<JoinGroupRequest>(req) {
                for protocol in &join.protocols {
                    consumer_subscription(&protocol.metadata);
                }
            }
        }
        ApiKey::SyncGroup => {
            let _ = decode::<SyncGroupRequest>(req);
        }
        ApiKey::Heartbeat => {
            let _ = decode::<HeartbeatRequest>(req);
        }
        ApiKey::LeaveGroup => {
            let _ = decode::<LeaveGroupRequest>(req);
        }
        ApiKey::OffsetCommit => {
            let _ = decode::<OffsetCommitRequest>(req);
        }
        ApiKey::OffsetFetch => {
            let _ = decode::<OffsetFetchRequest>(req);
        }
        ApiKey::OffsetDelete => {
            let _ = decode::<OffsetDeleteRequest>(req);
        }
        ApiKey::ListGroups => {
            let _ = decode::<ListGroupsRequest>(req);
        }
        ApiKey::DescribeGroups => {
            let _ = decode::<DescribeGroupsRequest>(req);
        }
        ApiKey::DeleteGroups => {
            let _ = decode::<DeleteGroupsRequest>(req);
        }
        ApiKey::DeleteRecords => {
            let _ = decode::<DeleteRecordsRequest>(req);
        }
        ApiKey::DescribeLogDirs => {
            let _ = decode::<DescribeLogDirsRequest>(req);
        }
        ApiKey::DescribeUserScramCredentials => {
            let _ = decode::<DescribeUserScramCredentialsRequest>(req);
        }
        ApiKey::AlterUserScramCredentials => {
            let _ = decode::<AlterUserScramCredentialsRequest>(req);
        }
        _ => return false,
    }
    true
}

/// A consumer's JoinGroup protocol metadata, decoded as `GroupState::subscribed_topics` does.
fn consumer_subscription(metadata: &Bytes) {
    if metadata.len() < 2 {
        return;
    }
    let mut metadata = metadata.clone();
    let version = metadata.get_i16();
    let _ = ConsumerProtocolSubscription::decode(&mut metadata, version.clamp(0, 3));
}

/// The `records` of a produce request: `validate_records` with Kafka's default topic settings,
/// then again with `require_keys` (a compacted topic, which decodes every record and so
/// decompresses compressed batches), and the on-disk prefix of every batch that passes. Run on
/// the input as it is and on a copy with every batch's CRC made right ([`with_valid_crcs`]), so
/// that mutations reach what lies behind the CRC check.
pub fn batch_validation(data: &[u8]) {
    validate_produced_records(data);
    validate_produced_records(&with_valid_crcs(data));
}

/// `data` with the CRC32C of every whole batch it holds, back to back, recomputed: a fuzzer
/// cannot fix a checksum, and without this almost every mutation stops at it.
pub fn with_valid_crcs(data: &[u8]) -> Vec<u8> {
    use sluice_storage::batch::{HEADER_SIZE, LOG_OVERHEAD};
    let mut out = data.to_vec();
    let mut pos = 0usize;
    while out.len().saturating_sub(pos) >= HEADER_SIZE {
        let length = i32::from_be_bytes([out[pos + 8], out[pos + 9], out[pos + 10], out[pos + 11]]);
        let Some(end) = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(pos + LOG_OVERHEAD))
            .filter(|&end| end >= pos + HEADER_SIZE && end <= out.len())
        else {
            break;
        };
        let crc = crc32c::crc32c(&out[pos + 21..end]);
        out[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
    out
}

fn validate_produced_records(data: &[u8]) {
    let records = Bytes::copy_from_slice(data);
    let defaults = ValidationConfig::default();
    if let Ok(batches) = validate_records(&records, &defaults, NOW_MS) {
        for batch in &batches {
            let prefix = patched_prefix(batch, 1 << 40, 7, Some(NOW_MS));
            debug_assert_eq!(prefix.len(), sluice_storage::batch::HEADER_SIZE);
        }
    }
    let compacted = ValidationConfig {
        require_keys: true,
        ..defaults
    };
    let _ = validate_records(&records, &compacted, NOW_MS);
}

/// The records of a compressed batch: `data[0]` picks the codec (modulo 5: none, gzip, snappy,
/// lz4, zstd), `data[1]` the output limit (`n` KiB, or the smallest topic limit for 0), and the
/// rest is the compressed records, decompressed by `decompress_records`, which must never return
/// more than the limit.
pub fn decompression(data: &[u8]) {
    let [codec, limit, compressed @ ..] = data else {
        return;
    };
    let codec = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ][usize::from(*codec % 5)];
    let limit = match *limit {
        0 => sluice_storage::decompress::MIN_DECOMPRESSION_LIMIT,
        n => usize::from(n) << 10,
    };
    if let Ok(plain) = decompress_records(codec, compressed, limit) {
        assert!(plain.len() <= limit, "{codec:?} output over the limit");
    }
}

/// A segment file as recovery finds it after a crash: `data` is written as the only segment
/// (`00000000000000000000.log`) of a partition and the partition is opened with recovery point
/// 0, so `PartitionLog::open` scans and verifies every batch, cuts the file at the first bad one,
/// rebuilds the indexes and the producer state. The log is then read from its start. Run on the
/// input as it is and with every batch's CRC made right ([`with_valid_crcs`]).
pub fn segment_recovery(data: &[u8]) {
    recover_segment(data);
    recover_segment(&with_valid_crcs(data));
}

fn recover_segment(data: &[u8]) {
    let dir = scratch_dir("segment_recovery");
    let partition = dir.join("fuzz-0");
    if std::fs::create_dir_all(&partition).is_err()
        || std::fs::write(partition.join("00000000000000000000.log"), data).is_err()
    {
        return;
    }
    let opened = PartitionLog::open(&dir, "fuzz", 0, LogConfig::default(), 0, 0, NOW_MS);
    if let Ok((log, _report)) = opened {
        let end = log.log_end_offset();
        debug_assert!(log.log_start_offset() <= end);
        let _ = log.read(log.log_start_offset(), 1 << 20, true, end);
    }
}

/// An offset index and a time index as a segment's `.index` and `.timeindex` files: `data`'s
/// first byte splits it into the two files (the rest up to `data[0] * 8` bytes is the offset
/// index, what follows the time index); both are loaded (`OffsetIndex::load`,
/// `TimeIndex::load`) for a segment of base offset 1000 whose log holds 64 KiB, and then
/// looked up.
pub fn index_loading(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = (usize::from(split) * 8).min(rest.len());
    let (offsets, times) = rest.split_at(split);
    let dir = scratch_dir("index_loading");
    let offset_path = dir.join("00000000000000001000.index");
    let time_path = dir.join("00000000000000001000.timeindex");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(&offset_path, offsets).is_err()
        || std::fs::write(&time_path, times).is_err()
    {
        return;
    }
    if let Ok(Some(index)) = OffsetIndex::load(&offset_path, 1000, 64 << 10) {
        for offset in [i64::MIN, 0, 999, 1000, 1001, 5000, i64::MAX] {
            let (found, position) = index.lookup(offset);
            debug_assert!(found >= 1000 && position < 64 << 10);
        }
    }
    if let Ok(Some(index)) = TimeIndex::load(&time_path, 1000) {
        for timestamp in [i64::MIN, -1, 0, NOW_MS, i64::MAX] {
            let _ = index.lookup(timestamp);
        }
        let _ = index.last_entry();
    }
}

/// A `__consumer_offsets` record as the group coordinator replays it: the first two bytes are
/// the key's length (big-endian), then the key, then the value. The key is decoded with
/// `decode_key`, and the value as the kind of record the key names (both value decoders when
/// the key does not decode).
pub fn offsets_records(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let key_len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (key, value) = data[2..].split_at(key_len);
    match decode_key(key) {
        Ok(OffsetsKey::Offset { .. }) => {
            let _ = decode_offset_value(value);
        }
        Ok(OffsetsKey::Group { .. }) => {
            let _ = decode_group_value(value);
        }
        Err(_) => {
            let _ = decode_offset_value(value);
            let _ = decode_group_value(value);
        }
    }
}

/// A `server.properties` file, loaded by `BrokerConfig::load` as `sluice --config FILE` does
/// (properties syntax, every key and value checked, cross-key rules), and the broker's
/// description of the result.
pub fn config_loading(data: &[u8]) {
    let dir = scratch_dir("config_loading");
    let path = dir.join("server.properties");
    if std::fs::create_dir_all(&dir).is_err() || std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(config) = BrokerConfig::load(Some(&path), &[]) {
        let _ = config.check_shard_ports(2);
        let _ = config.describe(&Default::default());
    }
}

/// Cluster metadata as a broker reads it: a single-broker release's `cluster-metadata.json`,
/// loaded by `ClusterState::load` and imported as the first start does (partitions given to the
/// importing broker, moved off shards that do not exist, the metadata image built for two shards); the
/// same bytes as a metadata log entry and as a snapshot, applied to that state; and as a
/// controller call arriving on the controller listener.
pub fn metadata_loading(data: &[u8]) {
    let mut state = ClusterState::unbootstrapped();
    if let Ok(batch) = decode_batch(data) {
        apply_batch(&mut state, batch, 1);
        let _ = MetadataImage::new(state.clone(), default_config(), 2);
    }
    if let Ok(snapshot) = decode_snapshot(data) {
        let _ = records_between(&state, &snapshot);
        let _ = MetadataImage::new(snapshot, default_config(), 2);
    }
    let _ = controller_rpc::decode::<ControllerCall>(data);
    let dir = scratch_dir("metadata_loading");
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join(METADATA_FILE), data).is_err()
    {
        return;
    }
    let Ok(Some(mut state)) = ClusterState::load(&dir, 1) else {
        return;
    };
    state.rebalance_missing_shards(1, 2);
    let _ = state.shard_load(1, 2);
    let _ = MetadataImage::new(state, default_config(), 2);
}

/// The broker configuration with every default, built once.
fn default_config() -> &'static BrokerConfig {
    static CONFIG: OnceLock<BrokerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| match BrokerConfig::load(None, &[]) {
        Ok(config) => config,
        Err(e) => panic!("the default broker configuration does not load: {e}"),
    })
}

/// A directory of this process and thread for the targets that need files, emptied first.
fn scratch_dir(target: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!(
        "sluice-fuzz-{}-{:?}-{target}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
