//! Topic and broker configs over the wire, shared by `sluice topic` and `sluice config`:
//! DescribeConfigs (every config of a resource with its value and source) and
//! IncrementalAlterConfigs (SET and DELETE of single keys).

use crate::tools::common::ToolError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use sluice_net::client::{ClientError, Cluster, Connection};
use std::rc::Rc;

/// Kafka's `ConfigResource.Type` of a topic.
const TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` of a broker.
const BROKER: i8 = 4;
/// `ConfigSource` of a config nobody set: the built-in default.
pub const DEFAULT_CONFIG: i8 = 5;
/// IncrementalAlterConfigs operation SET.
const OP_SET: i8 = 0;
/// IncrementalAlterConfigs operation DELETE.
const OP_DELETE: i8 = 1;

/// What configs belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A topic, by name.
    Topic(String),
    /// One broker, by id.
    Broker(i32),
    /// The cluster-wide dynamic broker defaults.
    BrokerDefaults,
}

impl Resource {
    fn resource_type(&self) -> i8 {
        match self {
            Resource::Topic(_) => TOPIC,
            Resource::Broker(_) | Resource::BrokerDefaults => BROKER,
        }
    }

    fn name(&self) -> String {
        match self {
            Resource::Topic(t) => t.clone(),
            Resource::Broker(id) => id.to_string(),
            Resource::BrokerDefaults => String::new(),
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Topic(t) => write!(f, "topic '{t}'"),
            Resource::Broker(id) => write!(f, "broker {id}"),
            Resource::BrokerDefaults => write!(f, "the cluster-wide broker defaults"),
        }
    }
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The key (`retention.ms`).
    pub name: String,
    /// The value; `None` when it is null or sensitive.
    pub value: Option<String>,
    /// Kafka's `ConfigSource` id (see [`source_name`]).
    pub source: i8,
    /// Whether the value is hidden because it is sensitive.
    pub sensitive: bool,
}

impl ConfigValue {
    /// The value as shown in tables: `(sensitive)`, `-` for null, `""` for empty, else the
    /// value.
    pub fn shown_value(&self) -> String {
        match (&self.value, self.sensitive) {
            (_, true) => "(sensitive)".to_string(),
            (None, false) => "-".to_string(),
            (Some(v), false) if v.is_empty() => "\"\"".to_string(),
            (Some(v), false) => v.clone(),
        }
    }

    /// Whether something other than the built-in default set this value.
    pub fn is_overridden(&self) -> bool {
        self.source != DEFAULT_CONFIG
    }
}

/// Kafka's name of a `ConfigSource` id.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set a key to a value.
    Set(String, String),
    /// Remove an override, so that the key falls back to its default.
    Delete(String),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Set(k, v) => write!(f, "set {k}={v}"),
            Change::Delete(k) => write!(f, "deleted {k}"),
        }
    }
}

/// The connection to ask about `resource`: the broker itself when it is a node in the cluster
/// metadata (Kafka answers for a broker only on that broker), else the bootstrap connection.
async fn conn_for(cluster: &Cluster, resource: &Resource) -> Result<Rc<Connection>, ClientError> {
    if let Resource::Broker(id) = resource {
        if cluster.refresh(&[]).await?.nodes.contains_key(id) {
            return cluster.node_conn(*id).await;
        }
    }
    cluster.control().await
}

/// The configs of each of `resources` (in order), each the configs or why they could not be
/// described.
pub async fn describe(
    cluster: &Cluster,
    resources: &[Resource],
) -> Result<Vec<Result<Vec<ConfigValue>, ToolError>>, ToolError> {
    let Some(first) = resources.first() else {
        return Ok(Vec::new());
    };
    let conn = conn_for(cluster, first).await?;
    let req = DescribeConfigsRequest::default().with_resources(
        resources
            .iter()
            .map(|r| {
                DescribeConfigsResource::default()
                    .with_resource_type(r.resource_type())
                    .with_resource_name(StrBytes::from_string(r.name()))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let resp = conn.send(&req).await?;
    let out = resources
        .iter()
        .map(|r| {
            let result = resp
                .results
                .iter()
                .find(|x| {
                    x.resource_type == r.resource_type() && x.resource_name.as_str() == r.name()
                })
                .ok_or_else(|| {
                    ToolError::Message(format!("DescribeConfigs did not answer for {r}"))
                })?;
            if result.error_code != 0 {
                return Err(ClientError::Kafka {
                    what: format!("describing the configs of {r}"),
                    code: result.error_code,
                    message: result.error_message.as_ref().map(|m| m.to_string()),
                }
                .into());
            }
            let mut configs: Vec<ConfigValue> = result
                .configs
                .iter()
                .map(|c| ConfigValue {
                    name: c.name.to_string(),
                    value: c.value.as_ref().map(|v| v.to_string()),
                    source: c.config_source,
                    sensitive: c.is_sensitive,
                })
                .collect();
            configs.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(configs)
        })
        .collect();
    Ok(out)
}

/// Applies `changes` to `resource` with IncrementalAlterConfigs.
pub async fn alter(
    cluster: &Cluster,
    resource: &Resource,
    changes: &[Change],
) -> Result<(), ToolError> {
    let conn = conn_for(cluster, resource).await?;
    let configs = changes
        .iter()
        .map(|c| match c {
            Change::Set(k, v) => AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_SET)
                .with_value(Some(StrBytes::from_string(v.clone()))),
            Change::Delete(k) => AlterableConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_config_operation(OP_DELETE)
                .with_value(None),
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource.resource_type())
            .with_resource_name(StrBytes::from_string(resource.name()))
            .with_configs(configs),
    ]);
    let resp = match conn.send(&req).await {
        Err(ClientError::Unsupported { addr, .. }) => {
            return Err(ToolError::Message(format!(
                "the broker at {addr} does not support IncrementalAlterConfigs (API 44), so it \
                 cannot change configs at runtime; upgrade it, or set the config at topic \
                 creation (`sluice topic create --config`) or in the broker's properties"
            )))
        }
        r => r?,
    };
    let result = resp
        .responses
        .first()
        .ok_or_else(|| ToolError::Message("IncrementalAlterConfigs answered nothing".into()))?;
    if result.error_code != 0 {
        return Err(ClientError::Kafka {
            what: format!("altering the configs of {resource}"),
            code: result.error_code,
            message: result.error_message.as_ref().map(|m| m.to_string()),
        }
        .into());
    }
    Ok(())
}

/// Applies `changes` to `resource` and prints the confirmation line (see [`updated_line`]).
pub async fn apply(
    cluster: &Cluster,
    resource: &Resource,
    changes: &[Change],
) -> Result<bool, ToolError> {
    alter(cluster, resource, changes).await?;
    outln!("{}", updated_line(resource, changes));
    Ok(true)
}

/// The confirmation line of a successful change: `Updated topic 't': set a=1, deleted b.`
pub fn updated_line(resource: &Resource, changes: &[Change]) -> String {
    let what: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    format!("Updated {resource}: {}.", what.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, Message};

    #[test]
    fn resources_name_themselves() {
        assert_eq!(Resource::Topic("t".into()).to_string(), "topic 't'");
        assert_eq!(Resource::Broker(1000).name(), "1000");
        assert_eq!(Resource::BrokerDefaults.name(), "");
        assert_eq!(Resource::BrokerDefaults.resource_type(), BROKER);
    }

    #[test]
    fn confirmation_lists_every_change() {
        let line = updated_line(
            &Resource::Topic("t".into()),
            &[
                Change::Set("retention.ms".into(), "1000".into()),
                Change::Delete("cleanup.policy".into()),
            ],
        );
        assert_eq!(
            line,
            "Updated topic 't': set retention.ms=1000, deleted cleanup.policy."
        );
    }

    #[test]
    fn shown_values_hide_secrets_and_nulls() {
        let mut c = ConfigValue {
            name: "k".into(),
            value: Some("v".into()),
            source: 1,
            sensitive: false,
        };
        assert_eq!(c.shown_value(), "v");
        c.value = Some(String::new());
        assert_eq!(c.shown_value(), "\"\"");
        c.value = None;
        assert_eq!(c.shown_value(), "-");
        c.sensitive = true;
        assert_eq!(c.shown_value(), "(sensitive)");
        assert_eq!(source_name(DEFAULT_CONFIG), "DEFAULT_CONFIG");
    }

    #[test]
    fn alter_request_encodes_at_every_version() {
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_config_operation(OP_DELETE)
                    .with_value(None)]),
        ]);
        for v in IncrementalAlterConfigsRequest::VERSIONS.min
            ..=IncrementalAlterConfigsRequest::VERSIONS.max
        {
            let mut buf = BytesMut::new();
            req.encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
