//! Dynamic broker configs: the broker settings that AlterConfigs / IncrementalAlterConfigs
//! change at runtime, for one broker (resource BROKER "<id>") or as cluster-wide defaults
//! (resource BROKER "").
//!
//! They live in the cluster metadata and rank between a topic's own overrides and the broker's
//! static configuration. A broker key's value, and the broker-level fallback of a topic config,
//! comes from (highest precedence first): the dynamic per-broker value, the dynamic cluster
//! default, the properties file / `--set`, Kafka's default.

use super::broker::BrokerConfig;
use super::ConfigSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Dynamic broker configs, as the controller persists them (values validated, canonical form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicBrokerConfigs {
    /// Cluster-wide defaults (resource BROKER "").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_default: BTreeMap<String, String>,
    /// Per-broker values by broker id (resource BROKER "<id>"); brokers without any are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub brokers: BTreeMap<i32, BTreeMap<String, String>>,
}

impl DynamicBrokerConfigs {
    /// The dynamic values set for broker `id`, if any.
    pub fn broker(&self, id: i32) -> Option<&BTreeMap<String, String>> {
        self.brokers.get(&id)
    }

    /// The dynamic value of broker key `name` for broker `id`: set for that broker, else as a
    /// cluster-wide default; `None` when neither is set (the static config applies).
    pub fn value_for(&self, id: i32, name: &str) -> Option<&str> {
        self.broker(id)
            .and_then(|configs| configs.get(name))
            .or_else(|| self.cluster_default.get(name))
            .map(String::as_str)
    }

    /// Replaces the dynamic values of broker `id` (an empty map removes the broker's entry).
    pub fn set_broker(&mut self, id: i32, configs: BTreeMap<String, String>) {
        if configs.is_empty() {
            self.brokers.remove(&id);
        } else {
            self.brokers.insert(id, configs);
        }
    }
}

/// One place a broker-level value may come from, with the source it is described with.
pub(crate) type Layer<'a> = (Option<&'a BTreeMap<String, String>>, ConfigSource);

/// The places broker `config.broker_id` looks a broker key up in, highest precedence first
/// (Kafka's built-in defaults come after these).
pub(crate) fn broker_layers<'a>(
    config: &'a BrokerConfig,
    dynamic: &'a DynamicBrokerConfigs,
) -> [Layer<'a>; 3] {
    [
        (
            dynamic.broker(config.broker_id),
            ConfigSource::DynamicBrokerConfig,
        ),
        (
            Some(&dynamic.cluster_default),
            ConfigSource::DynamicDefaultBrokerConfig,
        ),
        (
            Some(config.explicitly_set()),
            ConfigSource::StaticBrokerConfig,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_compactly_and_loads_old_files() {
        let mut d = DynamicBrokerConfigs::default();
        assert_eq!(serde_json::to_string(&d).unwrap(), "{}");
        d.cluster_default
            .insert("log.retention.ms".into(), "1000".into());
        d.set_broker(
            1,
            BTreeMap::from([("message.max.bytes".into(), "10".into())]),
        );
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            r#"{"cluster_default":{"log.retention.ms":"1000"},"brokers":{"1":{"message.max.bytes":"10"}}}"#
        );
        assert_eq!(
            serde_json::from_str::<DynamicBrokerConfigs>(&json).unwrap(),
            d
        );
        assert_eq!(d.value_for(1, "message.max.bytes"), Some("10"));
        assert_eq!(d.value_for(2, "message.max.bytes"), None);
        assert_eq!(d.value_for(2, "log.retention.ms"), Some("1000"));
        d.set_broker(1, BTreeMap::new());
        assert!(d.broker(1).is_none());
    }
}
