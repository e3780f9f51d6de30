//! What AlterConfigs and IncrementalAlterConfigs do to one resource's set of overrides, as
//! Kafka's controller (`ConfigurationControlManager`) does it.
//!
//! * AlterConfigs (the legacy API) replaces the whole set: keys not named are removed.
//! * IncrementalAlterConfigs applies one operation per key: SET, DELETE (deleting a key that is
//!   not set is not an error), APPEND and SUBTRACT. APPEND / SUBTRACT work on LIST configs only;
//!   they start from the key's current override, or from its default when it has none, and
//!   APPEND adds only elements not present yet (so `cleanup.policy` APPEND `compact` on a topic
//!   without an override gives `delete,compact`).
//!
//! The result is the resource's new raw set of overrides; the caller validates it as a whole
//! ([`crate::config::TopicConfigs::new`] or
//! [`crate::config::broker::validate_dynamic_broker_configs`]) before committing anything.

use super::broker::{self, broker_config_type};
use super::topic::find_topic_config;
use super::{parse_list, ConfigError, ConfigType};
use std::collections::BTreeMap;

/// An IncrementalAlterConfigs operation (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AlterOp {
    /// Set the value (code 0).
    Set,
    /// Remove the override, back to the inherited value (code 1).
    Delete,
    /// Add elements to a LIST config (code 2).
    Append,
    /// Remove elements from a LIST config (code 3).
    Subtract,
}

impl AlterOp {
    /// The operation with wire code `code`, if there is one.
    pub fn from_code(code: i8) -> Option<AlterOp> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }

    /// Kafka's name of the operation (`SET`, `DELETE`, `APPEND`, `SUBTRACT`).
    pub fn name(self) -> &'static str {
        match self {
            AlterOp::Set => "SET",
            AlterOp::Delete => "DELETE",
            AlterOp::Append => "APPEND",
            AlterOp::Subtract => "SUBTRACT",
        }
    }
}

/// One key's change in an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigChange {
    /// Config key.
    pub name: String,
    /// What to do.
    pub op: AlterOp,
    /// The operand (ignored by DELETE).
    pub value: String,
}

/// Which config table a resource's keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// Topic configs (`retention.ms`, …).
    Topic,
    /// Dynamic broker configs (`log.retention.ms`, …).
    Broker,
}

impl ConfigKind {
    fn config_type(self, name: &str) -> Option<ConfigType> {
        match self {
            ConfigKind::Topic => find_topic_config(name).map(|d| d.config_type),
            ConfigKind::Broker => broker_config_type(name),
        }
    }

    fn default_of(self, name: &str) -> Option<&'static str> {
        match self {
            ConfigKind::Topic => find_topic_config(name).map(|d| d.default),
            ConfigKind::Broker => broker::default_of(name),
        }
    }

    /// Kafka's refusal of APPEND / SUBTRACT on a key that is not a LIST: the controller's words
    /// for topics, the broker's (which checks broker resources before forwarding) otherwise.
    fn not_a_list(self, op: AlterOp, name: &str) -> ConfigError {
        ConfigError::InvalidConfig(match self {
            ConfigKind::Topic => {
                format!(
                    "Can't {} to key {name} because its type is not LIST.",
                    op.name()
                )
            }
            ConfigKind::Broker => format!(
                "Config value {} is not allowed for config key: {name}",
                op.name().to_ascii_lowercase()
            ),
        })
    }
}

/// How a resource's configs change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfigAlteration {
    /// AlterConfigs: these (name, value) pairs become the resource's whole set of overrides.
    Replace(Vec<(String, String)>),
    /// IncrementalAlterConfigs: one operation per key.
    Incremental(Vec<ConfigChange>),
}

impl ConfigAlteration {
    /// The resource's raw overrides after the alteration of `current` (not yet validated).
    pub fn apply(
        &self,
        kind: ConfigKind,
        current: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        match self {
            ConfigAlteration::Replace(pairs) => Ok(pairs.iter().cloned().collect()),
            ConfigAlteration::Incremental(changes) => apply_incremental(kind, current, changes),
        }
    }
}

/// Applies IncrementalAlterConfigs operations to `current`, in order.
pub fn apply_incremental(
    kind: ConfigKind,
    current: &BTreeMap<String, String>,
    changes: &[ConfigChange],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut next = current.clone();
    for change in changes {
        let name = &change.name;
        match change.op {
            AlterOp::Set => {
                next.insert(name.clone(), change.value.clone());
            }
            AlterOp::Delete => {
                next.remove(name);
            }
            AlterOp::Append | AlterOp::Subtract => {
                if kind.config_type(name) != Some(ConfigType::List) {
                    return Err(kind.not_a_list(change.op, name));
                }
                let base = next
                    .get(name)
                    .map(String::as_str)
                    .or_else(|| kind.default_of(name))
                    .unwrap_or("");
                let mut elements = parse_list(base);
                for element in parse_list(&change.value) {
                    if change.op == AlterOp::Append {
                        if !elements.contains(&element) {
                            elements.push(element);
                        }
                    } else {
                        elements.retain(|e| *e != element);
                    }
                }
                next.insert(name.clone(), elements.join(","));
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn change(name: &str, op: AlterOp, value: &str) -> ConfigChange {
        ConfigChange {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn op_codes_match_kafka() {
        for (code, op) in [
            (0, AlterOp::Set),
            (1, AlterOp::Delete),
            (2, AlterOp::Append),
            (3, AlterOp::Subtract),
        ] {
            assert_eq!(AlterOp::from_code(code), Some(op));
        }
        assert_eq!(AlterOp::from_code(4), None);
        assert_eq!(AlterOp::from_code(-1), None);
    }

    #[test]
    fn set_and_delete() {
        let current = map(&[("retention.ms", "1000"), ("segment.ms", "5")]);
        let next = apply_incremental(
            ConfigKind::Topic,
            &current,
            &[
                change("retention.ms", AlterOp::Set, "2000"),
                change("segment.ms", AlterOp::Delete, ""),
                // Deleting a key that is not set is fine and changes nothing.
                change("flush.ms", AlterOp::Delete, ""),
                change("no.such.key", AlterOp::Delete, ""),
            ],
        )
        .unwrap();
        assert_eq!(next, map(&[("retention.ms", "2000")]));
    }

    #[test]
    fn append_and_subtract_on_lists() {
        let topic = |current: &[(&str, &str)], op, value: &str| {
            apply_incremental(
                ConfigKind::Topic,
                &map(current),
                &[change("cleanup.policy", op, value)],
            )
            .unwrap()
            .get("cleanup.policy")
            .cloned()
        };
        // Without an override, the default ("delete") is the starting point.
        assert_eq!(
            topic(&[], AlterOp::Append, "compact").as_deref(),
            Some("delete,compact")
        );
        assert_eq!(
            topic(
                &[("cleanup.policy", "delete,compact")],
                AlterOp::Subtract,
                "compact"
            )
            .as_deref(),
            Some("delete")
        );
        // Appending a present element and subtracting an absent one change nothing.
        assert_eq!(
            topic(&[("cleanup.policy", "compact")], AlterOp::Append, "compact").as_deref(),
            Some("compact")
        );
        assert_eq!(
            topic(
                &[("cleanup.policy", "compact")],
                AlterOp::Subtract,
                "delete"
            )
            .as_deref(),
            Some("compact")
        );
        assert_eq!(topic(&[], AlterOp::Subtract, "delete").as_deref(), Some(""));
        let broker = apply_incremental(
            ConfigKind::Broker,
            &BTreeMap::new(),
            &[change(
                "log.cleanup.policy",
                AlterOp::Append,
                "compact, delete",
            )],
        )
        .unwrap();
        assert_eq!(broker, map(&[("log.cleanup.policy", "delete,compact")]));
    }

    #[test]
    fn append_and_subtract_need_a_list() {
        let err = |kind, name: &str, op| {
            apply_incremental(kind, &BTreeMap::new(), &[change(name, op, "1")])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(ConfigKind::Topic, "retention.ms", AlterOp::Append),
            "Can't APPEND to key retention.ms because its type is not LIST."
        );
        assert_eq!(
            err(ConfigKind::Topic, "unknown.key", AlterOp::Subtract),
            "Can't SUBTRACT to key unknown.key because its type is not LIST."
        );
        assert_eq!(
            err(ConfigKind::Broker, "log.retention.ms", AlterOp::Subtract),
            "Config value subtract is not allowed for config key: log.retention.ms"
        );
    }

    #[test]
    fn replace_takes_exactly_the_given_set() {
        let current = map(&[("retention.ms", "1000"), ("segment.ms", "5")]);
        let replace = ConfigAlteration::Replace(vec![("max.message.bytes".into(), "10".into())]);
        assert_eq!(
            replace.apply(ConfigKind::Topic, &current).unwrap(),
            map(&[("max.message.bytes", "10")])
        );
        let incremental =
            ConfigAlteration::Incremental(vec![change("segment.ms", AlterOp::Delete, "")]);
        assert_eq!(
            incremental.apply(ConfigKind::Topic, &current).unwrap(),
            map(&[("retention.ms", "1000")])
        );
    }
}
