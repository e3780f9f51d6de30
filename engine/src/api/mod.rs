//! The Kafka API handlers, one file per API, and the dispatch between them.
//!
//! Every handler has the same shape: `handle_<api>(shard, request) -> HandlerResult`. It decodes
//! its request with `kafka-protocol`, does the work on this shard (or asks the controller), and
//! encodes the response. A request that cannot even be decoded closes the connection, as Kafka
//! does; everything else is answered with Kafka error codes.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use crate::shard::Shard;
use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use sluice_net::{RawRequest, RequestHandler, Response};
use std::future::Future;
use std::rc::Rc;
use std::time::Instant;

/// What a handler returns: a response, no response (acks=0), or a reason to close the
/// connection.
pub type HandlerResult = Result<Option<Response>, String>;

/// The APIs this broker implements and their version ranges (Kafka 4.x's ranges).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The supported version range of `key`, if the API is implemented.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi))
}

/// Answers the requests of one connection of a shard.
pub struct ApiHandler {
    shard: Rc<Shard>,
    client_host: Rc<str>,
}

impl ApiHandler {
    /// A handler for a connection of `shard` from `client_host` (Kafka's "/address" form, as
    /// DescribeGroups reports it).
    pub fn new(shard: Rc<Shard>, client_host: String) -> ApiHandler {
        ApiHandler {
            shard,
            client_host: client_host.into(),
        }
    }
}

impl RequestHandler for ApiHandler {
    fn handle(&self, request: RawRequest) -> impl Future<Output = HandlerResult> {
        let shard = self.shard.clone();
        let client_host = self.client_host.clone();
        async move {
            let started = Instant::now();
            let key = request.api_key as i16;
            let result = dispatch(shard.clone(), request, &client_host).await;
            shard.metrics.record_request(key, started.elapsed());
            result
        }
    }

    fn regions_sent(&self, page_cache: u64, disk: u64) {
        self.shard.metrics.record_reads(page_cache, disk);
    }
}

/// Routes a request to its handler after checking the API and version are supported.
pub async fn dispatch(shard: Rc<Shard>, req: RawRequest, client_host: &str) -> HandlerResult {
    let Some((lo, hi)) = supported_versions(req.api_key) else {
        return Err(format!(
            "{:?} (key {}) is not supported",
            req.api_key, req.api_key as i16
        ));
    };
    if req.api_version < lo || req.api_version > hi {
        if req.api_key == ApiKey::ApiVersions {
            return api_versions::unsupported_version_response(&req);
        }
        return Err(format!(
            "{:?} v{} is not supported (supported: v{lo}-v{hi})",
            req.api_key, req.api_version
        ));
    }
    let shard = &shard;
    let req = &req;
    match req.api_key {
        ApiKey::ApiVersions => api_versions::handle_api_versions(shard, req).await,
        ApiKey::Metadata => metadata::handle_metadata(shard, req).await,
        ApiKey::Produce => produce::handle_produce(shard, req).await,
        ApiKey::Fetch => fetch::handle_fetch(shard, req).await,
        ApiKey::ListOffsets => list_offsets::handle_list_offsets(shard, req).await,
        ApiKey::CreateTopics => create_topics::handle_create_topics(shard, req).await,
        ApiKey::DeleteTopics => delete_topics::handle_delete_topics(shard, req).await,
        ApiKey::CreatePartitions => create_partitions::handle_create_partitions(shard, req).await,
        ApiKey::ElectLeaders => elect_leaders::handle_elect_leaders(shard, req).await,
        ApiKey::AlterPartitionReassignments => {
            alter_partition_reassignments::handle_alter_partition_reassignments(shard, req).await
        }
        ApiKey::ListPartitionReassignments => {
            list_partition_reassignments::handle_list_partition_reassignments(shard, req).await
        }
        ApiKey::InitProducerId => init_producer_id::handle_init_producer_id(shard, req).await,
        ApiKey::OffsetForLeaderEpoch => {
            offset_for_leader_epoch::handle_offset_for_leader_epoch(shard, req).await
        }
        ApiKey::DescribeConfigs => describe_configs::handle_describe_configs(shard, req).await,
        ApiKey::AlterConfigs => alter_configs::handle_alter_configs(shard, req).await,
        ApiKey::IncrementalAlterConfigs => {
            incremental_alter_configs::handle_incremental_alter_configs(shard, req).await
        }
        ApiKey::DescribeCluster => describe_cluster::handle_describe_cluster(shard, req).await,
        ApiKey::DescribeQuorum => describe_quorum::handle_describe_quorum(shard, req).await,
        ApiKey::FindCoordinator => find_coordinator::handle_find_coordinator(shard, req).await,
        ApiKey::JoinGroup => join_group::handle_join_group(shard, req, client_host).await,
        ApiKey::SyncGroup => sync_group::handle_sync_group(shard, req).await,
        ApiKey::Heartbeat => heartbeat::handle_heartbeat(shard, req).await,
        ApiKey::LeaveGroup => leave_group::handle_leave_group(shard, req).await,
        ApiKey::OffsetCommit => offset_commit::handle_offset_commit(shard, req).await,
        ApiKey::OffsetFetch => offset_fetch::handle_offset_fetch(shard, req).await,
        ApiKey::OffsetDelete => offset_delete::handle_offset_delete(shard, req).await,
        ApiKey::ListGroups => list_groups::handle_list_groups(shard, req).await,
        ApiKey::DescribeGroups => describe_groups::handle_describe_groups(shard, req).await,
        ApiKey::DeleteGroups => delete_groups::handle_delete_groups(shard, req).await,
        ApiKey::DeleteRecords => delete_records::handle_delete_records(shard, req).await,
        ApiKey::DescribeLogDirs => describe_log_dirs::handle_describe_log_dirs(shard, req).await,
        ApiKey::DescribeUserScramCredentials => {
            describe_user_scram_credentials::handle_describe_user_scram_credentials(shard, req)
                .await
        }
        ApiKey::AlterUserScramCredentials => {
            alter_user_scram_credentials::handle_alter_user_scram_credentials(shard, req).await
        }
        other => Err(format!("{other:?} is not supported")),
    }
}

/// Decodes the request body as `T` at the request's version.
pub fn decode<T: Decodable>(req: &RawRequest) -> Result<T, String> {
    let mut body = req.body.clone();
    T::decode(&mut body, req.api_version).map_err(|e| {
        format!(
            "malformed {:?} v{} request: {e}",
            req.api_key, req.api_version
        )
    })
}

/// Encodes `body` as the response to `req`.
pub fn respond<T: Encodable + HeaderVersion>(req: &RawRequest, body: &T) -> HandlerResult {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, req.api_version).map_err(|e| {
        format!(
            "cannot encode {:?} v{} response: {e}",
            req.api_key, req.api_version
        )
    })?;
    let flexible = T::header_version(req.api_version) >= 1;
    Ok(Some(Response::from_body(
        req.correlation_id,
        flexible,
        buf.freeze(),
    )))
}

/// A `StrBytes` from an owned string.
pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
