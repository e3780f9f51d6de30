//! Admin requests over [`RawClient`], with errors instead of panics for I/O, so that tests can
//! send them to brokers that may be down (controller failover, quorum loss) and count only the
//! answers they got: CreateTopics, DeleteTopics, IncrementalAlterConfigs, Metadata,
//! DescribeConfigs, DescribeCluster and the SCRAM credential APIs.

use std::collections::BTreeMap;
use std::io;

use bytes::Bytes;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeUserScramCredentialsRequest, IncrementalAlterConfigsRequest, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RawClient;

/// DescribeConfigs / IncrementalAlterConfigs resource type of a topic.
pub const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs / IncrementalAlterConfigs resource type of a broker ("" = cluster defaults).
pub const BROKER_RESOURCE: i8 = 4;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// CreateTopics for one topic (replication factor 1, `configs` as overrides); its error code.
pub fn create_topic(
    c: &mut RawClient,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    timeout_ms: i32,
) -> io::Result<i16> {
    let version = c.version::<CreateTopicsRequest>(7);
    let topic = CreatableTopic::default()
        .with_name(TopicName(sb(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(sb(k))
                        .with_value(Some(sb(v)))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout_ms);
    let resp = c.send(&req, version)?;
    resp.topics
        .first()
        .map(|t| t.error_code)
        .ok_or_else(|| io::Error::other("CreateTopics answered no topic"))
}

/// DeleteTopics for one topic by name; its error code.
pub fn delete_topic(c: &mut RawClient, name: &str, timeout_ms: i32) -> io::Result<i16> {
    let version = c.version::<DeleteTopicsRequest>(6);
    let mut req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= 6 {
        req.topics = vec![DeleteTopicState::default().with_name(Some(TopicName(sb(name))))];
    } else {
        req.topic_names = vec![TopicName(sb(name))];
    }
    let resp = c.send(&req, version)?;
    resp.responses
        .first()
        .map(|t| t.error_code)
        .ok_or_else(|| io::Error::other("DeleteTopics answered no topic"))
}

/// IncrementalAlterConfigs: SET `key=value` on a topic; its error code.
pub fn set_topic_config(c: &mut RawClient, topic: &str, key: &str, value: &str) -> io::Result<i16> {
    let version = c.version::<IncrementalAlterConfigsRequest>(1);
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(sb(topic))
            .with_configs(vec![AlterableConfig::default()
                .with_name(sb(key))
                .with_config_operation(0)
                .with_value(Some(sb(value)))]),
    ]);
    let resp = c.send(&req, version)?;
    resp.responses
        .first()
        .map(|r| r.error_code)
        .ok_or_else(|| io::Error::other("IncrementalAlterConfigs answered nothing"))
}

/// Metadata for every topic.
pub fn metadata(c: &mut RawClient) -> io::Result<MetadataResponse> {
    let version = c.version::<MetadataRequest>(12);
    c.send(&MetadataRequest::default().with_topics(None), version)
}

/// DescribeCluster (v2 asks for fenced brokers too).
pub fn describe_cluster(c: &mut RawClient) -> io::Result<DescribeClusterResponse> {
    let version = c.version::<DescribeClusterRequest>(2);
    let req = DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2);
    c.send(&req, version)
}

/// A described config: (value, source, sensitive).
pub type DescribedConfig = (Option<String>, i8, bool);

/// DescribeConfigs of one resource: (error code, config name → value, source, sensitive).
pub fn describe_configs(
    c: &mut RawClient,
    resource_type: i8,
    name: &str,
) -> io::Result<(i16, BTreeMap<String, DescribedConfig>)> {
    let version = c.version::<DescribeConfigsRequest>(4);
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(sb(name))
            .with_configuration_keys(None)]);
    let resp = c.send(&req, version)?;
    let r = resp
        .results
        .first()
        .ok_or_else(|| io::Error::other("DescribeConfigs answered nothing"))?;
    let configs = r
        .configs
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                (
                    e.value.as_ref().map(|v| v.to_string()),
                    e.config_source,
                    e.is_sensitive,
                ),
            )
        })
        .collect();
    Ok((r.error_code, configs))
}

/// AlterUserScramCredentials: one upsertion; the user's error code.
pub fn upsert_scram_user(
    c: &mut RawClient,
    user: &str,
    mechanism: i8,
    iterations: i32,
    salted_password: &[u8],
) -> io::Result<i16> {
    let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        ScramCredentialUpsertion::default()
            .with_name(sb(user))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(Bytes::from_static(b"cluster-test-salt"))
            .with_salted_password(Bytes::copy_from_slice(salted_password)),
    ]);
    let resp = c.send(&req, 0)?;
    resp.results
        .first()
        .map(|r| r.error_code)
        .ok_or_else(|| io::Error::other("AlterUserScramCredentials answered nothing"))
}

/// DescribeUserScramCredentials of every user: user → [(mechanism, iterations)], sorted.
pub fn scram_users(c: &mut RawClient) -> io::Result<BTreeMap<String, Vec<(i8, i32)>>> {
    let resp = c.send(
        &DescribeUserScramCredentialsRequest::default().with_users(None),
        0,
    )?;
    if resp.error_code != 0 {
        return Err(io::Error::other(format!(
            "DescribeUserScramCredentials error {}",
            resp.error_code
        )));
    }
    Ok(resp
        .results
        .iter()
        .map(|r| {
            let mut infos: Vec<(i8, i32)> = r
                .credential_infos
                .iter()
                .map(|i| (i.mechanism, i.iterations))
                .collect();
            infos.sort_unstable();
            (r.user.to_string(), infos)
        })
        .collect())
}
