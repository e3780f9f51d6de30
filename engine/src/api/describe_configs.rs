//! DescribeConfigs (v1–v4): the configs of topics and of this broker, as Kafka 4.x's
//! `ConfigHelper.describeConfigs` reports them. Any shard answers (configs are in the metadata
//! image and the broker config every shard holds).
//!
//! * TOPIC (2): an invalid name is INVALID_TOPIC_EXCEPTION, an unknown topic
//!   UNKNOWN_TOPIC_OR_PARTITION; otherwise every topic config with its value and source
//!   (topic override, dynamic per-broker or cluster-default broker config, static broker
//!   config or default) and, when asked, its synonyms in Kafka's order.
//! * BROKER (4): the resource name is this broker's id — `node.id`, or any of the shard node ids
//!   `node.id * 1000 + k` clients see — for every broker key with its dynamic per-broker,
//!   dynamic default, static or default value (only the dynamic keys are writable); or "" for
//!   the cluster-wide dynamic defaults that are set. A name that is not an integer, or another
//!   broker's id, is INVALID_REQUEST with Kafka's message.
//! * BROKER_LOGGER (8) and the other types (CLIENT_METRICS, GROUP) are INVALID_REQUEST: Sluice
//!   does not have them.
//!
//! `configuration_keys` null or empty means every config; unknown keys are left out. Sensitive
//! values (and their synonyms' values) are null. Documentation is sent only when
//! `include_documentation` (v3+) asks for it; `config_type` from v3.

use super::{decode, respond, str_bytes, HandlerResult};
use crate::config::{describe_dynamic_defaults, BrokerConfig, ConfigEntry};
use crate::controller::validate_topic_name;
use crate::metadata::MetadataImage;
use crate::shard::Shard;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;
use sluice_net::RawRequest;
use std::rc::Rc;

/// Kafka's `ConfigResource.Type` ids.
pub mod resource_type {
    /// A topic.
    pub const TOPIC: i8 = 2;
    /// A broker (or "" for the cluster-wide defaults).
    pub const BROKER: i8 = 4;
    /// A broker's log4j loggers.
    pub const BROKER_LOGGER: i8 = 8;
    /// Client metrics subscriptions.
    pub const CLIENT_METRICS: i8 = 16;
    /// A consumer group.
    pub const GROUP: i8 = 32;
}

/// What the request asks to include.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Send synonyms.
    pub include_synonyms: bool,
    /// Send documentation (v3+).
    pub include_documentation: bool,
    /// The request version.
    pub version: i16,
}

/// Answers DescribeConfigs.
pub async fn handle_describe_configs(shard: &Rc<Shard>, req: &RawRequest) -> HandlerResult {
    let request: DescribeConfigsRequest = decode(req)?;
    let options = Options {
        include_synonyms: request.include_synonyms,
        include_documentation: req.api_version >= 3 && request.include_documentation,
        version: req.api_version,
    };
    let image = shard.image();
    let results = request
        .resources
        .iter()
        .map(|r| describe_resource(&shard.config, &image, r, options))
        .collect();
    respond(
        req,
        &DescribeConfigsResponse::default().with_results(results),
    )
}

/// Describes one resource.
pub fn describe_resource(
    broker: &BrokerConfig,
    image: &MetadataImage,
    resource: &DescribeConfigsResource,
    options: Options,
) -> DescribeConfigsResult {
    let base = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone())
        .with_error_message(None);
    match resource_entries(broker, image, resource, options.include_synonyms) {
        Ok(entries) => {
            let keys = resource
                .configuration_keys
                .as_ref()
                .filter(|k| !k.is_empty());
            let configs = entries
                .iter()
                .filter(|e| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == e.name)))
                .map(|e| config_result(e, options))
                .collect();
            base.with_configs(configs)
        }
        Err((code, message)) => base
            .with_error_code(code.code())
            .with_error_message(message.map(str_bytes)),
    }
}

/// The entries of one resource, before filtering by key.
fn resource_entries(
    broker: &BrokerConfig,
    image: &MetadataImage,
    resource: &DescribeConfigsResource,
    include_synonyms: bool,
) -> Result<Vec<ConfigEntry>, (ResponseError, Option<String>)> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        resource_type::TOPIC => {
            validate_topic_name(name).map_err(|(code, message)| (code, Some(message)))?;
            let topic = image
                .topic(name)
                .ok_or((ResponseError::UnknownTopicOrPartition, None))?;
            Ok(topic
                .configs
                .describe(broker, &image.state.broker_configs, include_synonyms))
        }
        resource_type::BROKER => {
            let dynamic = &image.state.broker_configs;
            let mut entries = if name.is_empty() {
                describe_dynamic_defaults(dynamic)
            } else {
                broker_id_of(broker, image, name)
                    .map_err(|(code, message)| (code, Some(message)))?;
                broker.describe(dynamic)
            };
            if !include_synonyms {
                entries.iter_mut().for_each(|e| e.synonyms.clear());
            }
            Ok(entries)
        }
        other => {
            let (code, message) = unsupported_resource_type(other);
            Err((code, Some(message)))
        }
    }
}

/// The answer for a resource type Sluice has no configs for (BROKER_LOGGER, CLIENT_METRICS,
/// GROUP or an unknown type): INVALID_REQUEST saying so.
pub fn unsupported_resource_type(kind: i8) -> (ResponseError, String) {
    let message = match kind {
        resource_type::BROKER_LOGGER => {
            "Broker logger (BROKER_LOGGER) configs are not supported by this broker.".to_string()
        }
        resource_type::CLIENT_METRICS => "Unsupported resource type: CLIENT_METRICS".to_string(),
        resource_type::GROUP => "Unsupported resource type: GROUP".to_string(),
        _ => "Unsupported resource type: UNKNOWN".to_string(),
    };
    (ResponseError::InvalidRequest, message)
}

/// The broker id named by a non-empty BROKER resource name: this broker's `node.id` or one
/// of its shard node ids. Anything else is INVALID_REQUEST with Kafka's message.
pub fn broker_id_of(
    broker: &BrokerConfig,
    image: &MetadataImage,
    name: &str,
) -> Result<i32, (ResponseError, String)> {
    let id: i32 = name.parse().map_err(|_| {
        (
            ResponseError::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )
    })?;
    if id == broker.broker_id || (0..image.shards).any(|k| image.node_of(k) == id) {
        Ok(broker.broker_id)
    } else {
        Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.broker_id
            ),
        ))
    }
}

/// One config as the response carries it.
pub fn config_result(e: &ConfigEntry, options: Options) -> DescribeConfigsResourceResult {
    let hide = |v: &Option<String>| {
        if e.sensitive {
            None
        } else {
            v.clone().map(str_bytes)
        }
    };
    let synonyms = if options.include_synonyms {
        e.synonyms
            .iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(name.clone()))
                    .with_value(hide(value))
                    .with_source(source.code())
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(e.name.clone()))
        .with_value(hide(&e.value))
        .with_read_only(e.read_only)
        .with_config_source(e.source.code())
        .with_is_sensitive(e.sensitive)
        .with_synonyms(synonyms)
        .with_documentation(None);
    if options.version >= 3 {
        out.config_type = e.config_type.code();
        if options.include_documentation {
            out.documentation = e.documentation.clone().map(str_bytes);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, ConfigType, TopicConfigs};
    use crate::metadata::{ClusterState, PartitionState, TopicState};
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use uuid::Uuid;

    fn setup() -> (BrokerConfig, MetadataImage) {
        let broker = BrokerConfig::load(None, &["node.id=2".to_string()]).unwrap();
        let mut state = ClusterState::new(Some("c".into()));
        state
            .broker_configs
            .cluster_default
            .insert("log.segment.bytes".into(), "2000000".into());
        state.broker_configs.set_broker(
            2,
            [("message.max.bytes".to_string(), "5000".to_string())].into(),
        );
        let mut configs = TopicConfigs::default();
        configs.set("retention.ms", "1000").unwrap();
        state.topics.insert(
            "t".into(),
            TopicState {
                id: Uuid::from_u128(1),
                partitions: PartitionState::new(vec![2000], |_| true)
                    .into_iter()
                    .collect(),
                configs,
                internal: false,
            },
        );
        let image = MetadataImage::new(state, &broker, 2);
        (broker, image)
    }

    fn resource(kind: i8, name: &str, keys: Option<Vec<&str>>) -> DescribeConfigsResource {
        DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(keys.map(|k| {
                k.into_iter()
                    .map(|s| StrBytes::from_string(s.to_string()))
                    .collect()
            }))
    }

    const V4: Options = Options {
        include_synonyms: true,
        include_documentation: true,
        version: 4,
    };
    const V1: Options = Options {
        include_synonyms: false,
        include_documentation: false,
        version: 1,
    };

    #[test]
    fn topic_configs_with_filter_and_synonyms() {
        let (broker, image) = setup();
        let r = describe_resource(
            &broker,
            &image,
            &resource(
                resource_type::TOPIC,
                "t",
                Some(vec!["retention.ms", "nope"]),
            ),
            V4,
        );
        assert_eq!(r.error_code, 0);
        assert_eq!(r.resource_type, resource_type::TOPIC);
        assert_eq!(r.configs.len(), 1);
        let c = &r.configs[0];
        assert_eq!(c.name.as_str(), "retention.ms");
        assert_eq!(c.value.as_deref(), Some("1000"));
        assert_eq!(c.config_source, ConfigSource::DynamicTopicConfig.code());
        assert_eq!(c.config_type, ConfigType::Long.code());
        assert!(c.documentation.is_some());
        assert_eq!(
            c.synonyms[0].source,
            ConfigSource::DynamicTopicConfig.code()
        );
        assert!(c
            .synonyms
            .iter()
            .any(|s| s.name.as_str() == "log.retention.hours"));
        // A dynamic cluster default shows through in a topic's describe.
        let r = describe_resource(
            &broker,
            &image,
            &resource(resource_type::TOPIC, "t", Some(vec!["segment.bytes"])),
            V4,
        );
        assert_eq!(r.configs[0].value.as_deref(), Some("2000000"));
        assert_eq!(
            r.configs[0].config_source,
            ConfigSource::DynamicDefaultBrokerConfig.code()
        );

        let all = describe_resource(
            &broker,
            &image,
            &resource(resource_type::TOPIC, "t", None),
            V1,
        );
        let empty_keys = describe_resource(
            &broker,
            &image,
            &resource(resource_type::TOPIC, "t", Some(vec![])),
            V1,
        );
        assert!(all.configs.len() > 10);
        assert_eq!(all.configs.len(), empty_keys.configs.len());
        assert!(all
            .configs
            .iter()
            .all(|c| c.synonyms.is_empty() && c.documentation.is_none() && c.config_type == 0));
        let mut buf = BytesMut::new();
        DescribeConfigsResponse::default()
            .with_results(vec![all])
            .encode(&mut buf, 1)
            .unwrap();
    }

    #[test]
    fn topic_errors() {
        let (broker, image) = setup();
        let r = describe_resource(
            &broker,
            &image,
            &resource(resource_type::TOPIC, "missing", None),
            V4,
        );
        assert_eq!(r.error_code, ResponseError::UnknownTopicOrPartition.code());
        assert!(r.configs.is_empty());
        let r = describe_resource(
            &broker,
            &image,
            &resource(resource_type::TOPIC, "bad name", None),
            V4,
        );
        assert_eq!(r.error_code, ResponseError::InvalidTopicException.code());
        assert!(r.error_message.is_some());
    }

    #[test]
    fn broker_resources() {
        let (broker, image) = setup();
        for name in ["2", "2000", "2001"] {
            let r = describe_resource(
                &broker,
                &image,
                &resource(resource_type::BROKER, name, Some(vec!["node.id"])),
                V4,
            );
            assert_eq!(r.error_code, 0, "{name}");
            assert_eq!(r.configs.len(), 1);
            assert_eq!(r.configs[0].value.as_deref(), Some("2"));
            assert!(r.configs[0].read_only);
        }
        let r = describe_resource(
            &broker,
            &image,
            &resource(
                resource_type::BROKER,
                "2000",
                Some(vec!["message.max.bytes"]),
            ),
            V4,
        );
        let m = &r.configs[0];
        assert_eq!(
            (m.value.as_deref(), m.config_source, m.read_only),
            (
                Some("5000"),
                ConfigSource::DynamicBrokerConfig.code(),
                false
            )
        );
        let r = describe_resource(
            &broker,
            &image,
            &resource(resource_type::BROKER, "", None),
            V4,
        );
        assert_eq!(r.error_code, 0);
        assert_eq!(r.configs.len(), 1);
        assert_eq!(r.configs[0].name.as_str(), "log.segment.bytes");
        assert_eq!(
            r.configs[0].config_source,
            ConfigSource::DynamicDefaultBrokerConfig.code()
        );
        for name in ["2002", "1", "x"] {
            let r = describe_resource(
                &broker,
                &image,
                &resource(resource_type::BROKER, name, None),
                V4,
            );
            assert_eq!(r.error_code, ResponseError::InvalidRequest.code(), "{name}");
            assert!(r.configs.is_empty());
        }
        let no_synonyms = describe_resource(
            &broker,
            &image,
            &resource(resource_type::BROKER, "2000", None),
            V1,
        );
        assert!(no_synonyms.configs.iter().all(|c| c.synonyms.is_empty()));
        for t in [resource_type::BROKER_LOGGER, resource_type::GROUP, 99] {
            let r = describe_resource(&broker, &image, &resource(t, "2000", None), V4);
            assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
            assert!(r.error_message.is_some());
        }
    }

    #[test]
    fn sensitive_values_are_hidden() {
        let e = ConfigEntry {
            name: "secret".into(),
            value: Some("hunter2".into()),
            source: ConfigSource::StaticBrokerConfig,
            read_only: true,
            sensitive: true,
            config_type: ConfigType::Password,
            documentation: None,
            synonyms: vec![(
                "secret".into(),
                Some("hunter2".into()),
                ConfigSource::StaticBrokerConfig,
            )],
        };
        let r = config_result(&e, V4);
        assert_eq!(r.value, None);
        assert!(r.is_sensitive);
        assert_eq!(r.synonyms[0].value, None);
    }
}
