//! Broker and topic configuration, the way Apache Kafka 4.x names, defaults and validates it.
//!
//! * [`properties`] reads Java-properties files (`server.properties`), the format Kafka uses.
//! * [`broker`] turns a properties file plus `--set key=value` overrides into a typed
//!   [`BrokerConfig`]. Every unknown key and every invalid value is an error; all of them are
//!   collected and reported together ([`ConfigError::Invalid`]), one per line, so an operator
//!   fixes a file in one pass instead of one restart per typo.
//! * [`topic`] holds the table of Kafka's topic-level configs ([`TOPIC_CONFIGS`]), validates
//!   AlterConfigs / CreateTopics input with Kafka's wording (the message becomes the
//!   `INVALID_CONFIG` error message), describes a topic's configs with Kafka's sources and
//!   synonyms, and resolves the typed values a partition log runs with
//!   ([`EffectiveTopicConfig`]).
//! * [`dynamic`] holds the dynamic broker configs ([`DynamicBrokerConfigs`]), per broker and
//!   cluster-wide, that rank between topic overrides and the static broker configuration.
//! * [`kraft`] holds the KRaft roles and controller quorum settings (`process.roles`,
//!   `controller.quorum.voters`) and the rules that tie them to `node.id` and the listeners.
//! * [`alter`] is what AlterConfigs and IncrementalAlterConfigs (SET, DELETE, APPEND,
//!   SUBTRACT) do to a resource's overrides.
//!
//! Where Sluice differs from Kafka (defaults such as `node.id=1`, replication factors of 1 for
//! the internal topics, PLAINTEXT-only listeners) the difference is stated on the key's
//! documentation line, which `describe` returns to clients.

pub mod alter;
pub mod broker;
pub mod dynamic;
pub mod kraft;
pub mod properties;
pub mod topic;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use alter::{AlterOp, ConfigAlteration, ConfigChange, ConfigKind};
pub use broker::{
    describe_dynamic_defaults, is_dynamic_broker_config, validate_dynamic_broker_configs,
    BrokerConfig, HostPort, Listener, ReplicaSelector, MAX_BROKER_ID, RACK_AWARE_REPLICA_SELECTOR,
};
pub use dynamic::DynamicBrokerConfigs;
pub use kraft::{ProcessRoles, QuorumVoter};
pub use properties::{parse_properties, read_properties};
pub use topic::{
    find_topic_config, validate_topic_config, CleanupPolicy, CompressionType, EffectiveTopicConfig,
    ThrottledReplicas, TimestampType, TopicConfigDef, TopicConfigs, TOPIC_CONFIGS,
};

/// Everything that can go wrong while reading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The properties file could not be read at all.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The properties file is not well-formed (for example a malformed `\uHHHH` escape).
    #[error("{message} (line {line} of {file})")]
    Syntax {
        /// The file, as the operator named it.
        file: String,
        /// 1-based line number where the offending logical line starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Broker configuration problems: every unknown key and invalid value found, one line each,
    /// so the CLI can print them all at once.
    #[error("{}", problems.join("\n"))]
    Invalid {
        /// One human-readable line per problem, naming the key (and where it was set).
        problems: Vec<String>,
    },
    /// A topic config name or value was rejected; the text is what Kafka would put in the
    /// `INVALID_CONFIG` error message (e.g. `Unknown topic config name: foo`).
    #[error("{0}")]
    InvalidConfig(String),
}

/// Where a described config value comes from: Kafka's DescribeConfigs `ConfigSource` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum ConfigSource {
    /// Source unknown (code 0).
    Unknown = 0,
    /// A per-topic override set with CreateTopics / AlterConfigs (code 1).
    DynamicTopicConfig = 1,
    /// A per-broker dynamic config (code 2).
    DynamicBrokerConfig = 2,
    /// A cluster-wide dynamic broker default (code 3).
    DynamicDefaultBrokerConfig = 3,
    /// Set in the broker's properties file or on its command line (code 4).
    StaticBrokerConfig = 4,
    /// The built-in default (code 5).
    DefaultConfig = 5,
    /// A dynamic broker logger level (code 6).
    DynamicBrokerLoggerConfig = 6,
    /// A client-metrics subscription config (code 7).
    ClientMetricsConfig = 7,
    /// A per-group config (code 8).
    GroupConfig = 8,
}

impl ConfigSource {
    /// The wire code used in DescribeConfigs responses.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// The name Kafka's admin client and `kafka-configs.sh` print for this source.
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::Unknown => "UNKNOWN",
            ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetricsConfig => "DYNAMIC_CLIENT_METRICS_CONFIG",
            ConfigSource::GroupConfig => "DYNAMIC_GROUP_CONFIG",
        }
    }
}

/// The data type of a config: Kafka's DescribeConfigs (v3+) `ConfigType` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum ConfigType {
    /// Type unknown (code 0).
    Unknown = 0,
    /// `true` / `false` (code 1).
    Boolean = 1,
    /// Free-form or enumerated string (code 2).
    String = 2,
    /// 32-bit signed integer (code 3).
    Int = 3,
    /// 16-bit signed integer (code 4).
    Short = 4,
    /// 64-bit signed integer (code 5).
    Long = 5,
    /// Floating point number (code 6).
    Double = 6,
    /// Comma-separated list (code 7).
    List = 7,
    /// Java class name (code 8).
    Class = 8,
    /// Secret; its value is never returned (code 9).
    Password = 9,
}

impl ConfigType {
    /// The wire code used in DescribeConfigs responses.
    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's upper-case name of the type (`INT`, `LONG`, …), as used in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Unknown => "UNKNOWN",
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }

    /// Inclusive value range of the integer types; `None` for non-integer types.
    fn int_bounds(self) -> Option<(i64, i64)> {
        match self {
            ConfigType::Short => Some((i16::MIN.into(), i16::MAX.into())),
            ConfigType::Int => Some((i32::MIN.into(), i32::MAX.into())),
            ConfigType::Long => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }
}

/// One described config, the shape of a DescribeConfigs result entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigEntry {
    /// Config key.
    pub name: String,
    /// Current value as a string; `None` when unset with no default, or when sensitive.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it can be changed at runtime (AlterConfigs).
    pub read_only: bool,
    /// Whether the value is a secret (never returned).
    pub sensitive: bool,
    /// Data type of the value.
    pub config_type: ConfigType,
    /// One-line description.
    pub documentation: Option<String>,
    /// Every place a value for this config is defined, highest precedence first:
    /// `(name, value, source)`.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// How a config value is validated. Shared by the broker and topic config tables.
#[derive(Clone, Copy)]
pub(crate) enum Check {
    /// Any string is accepted.
    Any,
    /// `true` or `false`, case-insensitively (Kafka's BOOLEAN parsing).
    Bool,
    /// An integer of the entry's type, optionally bounded (inclusive).
    Int { min: Option<i64>, max: Option<i64> },
    /// A floating-point number within the inclusive range.
    Double { min: f64, max: f64 },
    /// Exactly one of these strings (case-sensitive, like Kafka's `ValidString.in`).
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose elements are all from this set (Kafka's `ValidList.in`).
    ListOf(&'static [&'static str]),
    /// A bespoke check; the error is the full reason.
    Custom(fn(&str) -> Result<(), String>),
}

/// An integer of at least `min`.
pub(crate) const fn at_least(min: i64) -> Check {
    Check::Int {
        min: Some(min),
        max: None,
    }
}

/// An integer in `min..=max`.
pub(crate) const fn between(min: i64, max: i64) -> Check {
    Check::Int {
        min: Some(min),
        max: Some(max),
    }
}

/// Why a value was rejected; rendered in Sluice's style for broker files and in Kafka's exact
/// wording for topic configs sent by clients.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rejection {
    /// Not parseable as the config's type.
    NotA(ConfigType),
    /// Parsed, but outside the allowed range / set.
    OutOfRange,
    /// Element not in the allowed set (string or list element).
    NotOneOf(String),
    /// A custom check's reason.
    Custom(String),
}

/// Kafka's numeric parsing: trimmed, optional sign, decimal digits, within the type's bounds.
pub(crate) fn parse_int(ty: ConfigType, value: &str) -> Option<i64> {
    let (lo, hi) = ty.int_bounds()?;
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| (lo..=hi).contains(v))
}

/// Kafka's BOOLEAN parsing: `true` / `false`, case-insensitive, trimmed.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Kafka's LIST parsing: split on commas, trim, drop empty elements.
pub(crate) fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Check {
    /// Validates `value` as a config of type `ty`.
    pub(crate) fn validate(&self, ty: ConfigType, value: &str) -> Result<(), Rejection> {
        match *self {
            Check::Any => Ok(()),
            Check::Bool => parse_bool(value).map(|_| ()).ok_or(Rejection::NotA(ty)),
            Check::Int { min, max } => {
                let v = parse_int(ty, value).ok_or(Rejection::NotA(ty))?;
                if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                    return Err(Rejection::OutOfRange);
                }
                Ok(())
            }
            Check::Double { min, max } => {
                let v = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or(Rejection::NotA(ty))?;
                if v < min || v > max {
                    return Err(Rejection::OutOfRange);
                }
                Ok(())
            }
            Check::OneOf(allowed) => {
                let v = value.trim();
                if allowed.contains(&v) {
                    Ok(())
                } else {
                    Err(Rejection::NotOneOf(v.to_string()))
                }
            }
            Check::ListOf(allowed) => {
                match parse_list(value)
                    .into_iter()
                    .find(|e| !allowed.contains(&e.as_str()))
                {
                    Some(bad) => Err(Rejection::NotOneOf(bad)),
                    None => Ok(()),
                }
            }
            Check::Custom(f) => f(value).map_err(Rejection::Custom),
        }
    }

    /// What an acceptable value looks like, in words (`an integer >= 1`).
    fn expectation(&self, ty: ConfigType) -> String {
        match *self {
            Check::Any => "any string".to_string(),
            Check::Bool => "true or false".to_string(),
            Check::Int { min, max } => {
                let what = match ty {
                    ConfigType::Long => "an integer",
                    ConfigType::Short => "a 16-bit integer",
                    _ => "a 32-bit integer",
                };
                match (min, max) {
                    (Some(lo), Some(hi)) => format!("{what} between {lo} and {hi}"),
                    (Some(lo), None) => format!("{what} >= {lo}"),
                    (None, Some(hi)) => format!("{what} <= {hi}"),
                    (None, None) => what.to_string(),
                }
            }
            Check::Double { min, max } => format!("a number between {min} and {max}"),
            Check::OneOf(allowed) => format!("one of: {}", allowed.join(", ")),
            Check::ListOf(allowed) => {
                format!("a comma-separated list of: {}", allowed.join(", "))
            }
            Check::Custom(_) => String::new(),
        }
    }

    /// Sluice's wording of a rejection: `expected an integer >= 1`.
    pub(crate) fn sluice_reason(&self, ty: ConfigType, rejection: &Rejection) -> String {
        match rejection {
            Rejection::Custom(reason) => reason.clone(),
            Rejection::NotOneOf(bad) if matches!(self, Check::ListOf(_)) => {
                format!("'{bad}' is not allowed; expected {}", self.expectation(ty))
            }
            _ => format!("expected {}", self.expectation(ty)),
        }
    }

    /// Kafka's wording of a rejection (`ConfigException` reasons such as
    /// `Value must be at least 1`), used for client-facing topic config errors.
    pub(crate) fn kafka_reason(
        &self,
        ty: ConfigType,
        value: &str,
        rejection: &Rejection,
    ) -> String {
        match rejection {
            Rejection::NotA(ConfigType::Boolean) => {
                "Expected value to be either true or false".to_string()
            }
            Rejection::NotA(t) => format!("Not a number of type {}", t.name()),
            Rejection::OutOfRange => {
                let below = match *self {
                    Check::Int { min, .. } => min
                        .filter(|m| parse_int(ty, value).is_some_and(|v| v < *m))
                        .map(|m| m.to_string()),
                    Check::Double { min, .. } => value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| *v < min)
                        .map(|_| min.to_string()),
                    _ => None,
                };
                match (below, *self) {
                    (Some(m), _) => format!("Value must be at least {m}"),
                    (None, Check::Int { max: Some(m), .. }) => {
                        format!("Value must be no more than {m}")
                    }
                    (None, Check::Double { max, .. }) => {
                        format!("Value must be no more than {max}")
                    }
                    _ => "Value out of range".to_string(),
                }
            }
            Rejection::NotOneOf(_) => match *self {
                Check::OneOf(allowed) | Check::ListOf(allowed) => {
                    format!("String must be one of: {}", allowed.join(", "))
                }
                _ => "Invalid value".to_string(),
            },
            Rejection::Custom(reason) => reason.clone(),
        }
    }
}

/// The canonical string form of a validated value, as Kafka renders a parsed config
/// (trimmed, booleans lower-case, integers without a sign or leading zeros, lists joined by `,`).
pub(crate) fn normalize(ty: ConfigType, value: &str) -> String {
    match ty {
        ConfigType::Boolean => match parse_bool(value) {
            Some(b) => b.to_string(),
            None => value.trim().to_string(),
        },
        ConfigType::Short | ConfigType::Int | ConfigType::Long => match parse_int(ty, value) {
            Some(v) => v.to_string(),
            None => value.trim().to_string(),
        },
        ConfigType::List => parse_list(value).join(","),
        _ => value.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(ConfigSource::DynamicTopicConfig.code(), 1);
        assert_eq!(ConfigSource::StaticBrokerConfig.code(), 4);
        assert_eq!(ConfigSource::DefaultConfig.code(), 5);
        assert_eq!(ConfigSource::GroupConfig.code(), 8);
        assert_eq!(ConfigType::Boolean.code(), 1);
        assert_eq!(ConfigType::Long.code(), 5);
        assert_eq!(ConfigType::Password.code(), 9);
        assert_eq!(ConfigSource::DefaultConfig.name(), "DEFAULT_CONFIG");
    }

    #[test]
    fn int_checks_and_reasons() {
        let c = Check::Int {
            min: Some(1),
            max: None,
        };
        assert!(c.validate(ConfigType::Int, " 5 ").is_ok());
        assert!(c.validate(ConfigType::Int, "+5").is_ok());
        let r = c.validate(ConfigType::Int, "abc").unwrap_err();
        assert_eq!(
            c.kafka_reason(ConfigType::Int, "abc", &r),
            "Not a number of type INT"
        );
        assert_eq!(
            c.sluice_reason(ConfigType::Int, &r),
            "expected a 32-bit integer >= 1"
        );
        let r = c.validate(ConfigType::Int, "0").unwrap_err();
        assert_eq!(
            c.kafka_reason(ConfigType::Int, "0", &r),
            "Value must be at least 1"
        );
        // Overflowing the type is "not a number of type INT", as in Kafka.
        assert_eq!(
            c.validate(ConfigType::Int, "2147483648"),
            Err(Rejection::NotA(ConfigType::Int))
        );
        let c = Check::Int {
            min: Some(1),
            max: Some(17),
        };
        let r = c.validate(ConfigType::Int, "18").unwrap_err();
        assert_eq!(
            c.kafka_reason(ConfigType::Int, "18", &r),
            "Value must be no more than 17"
        );
    }

    #[test]
    fn other_checks() {
        assert!(Check::Bool.validate(ConfigType::Boolean, "TRUE").is_ok());
        let r = Check::Bool
            .validate(ConfigType::Boolean, "yes")
            .unwrap_err();
        assert_eq!(
            Check::Bool.kafka_reason(ConfigType::Boolean, "yes", &r),
            "Expected value to be either true or false"
        );
        let d = Check::Double { min: 0.0, max: 1.0 };
        assert!(d.validate(ConfigType::Double, "0.5").is_ok());
        assert_eq!(
            d.validate(ConfigType::Double, "NaN"),
            Err(Rejection::NotA(ConfigType::Double))
        );
        let r = d.validate(ConfigType::Double, "1.5").unwrap_err();
        assert_eq!(
            d.kafka_reason(ConfigType::Double, "1.5", &r),
            "Value must be no more than 1"
        );
        let l = Check::ListOf(&["compact", "delete"]);
        assert!(l.validate(ConfigType::List, "compact, delete").is_ok());
        assert!(l.validate(ConfigType::List, "").is_ok());
        let r = l.validate(ConfigType::List, "delete,kompact").unwrap_err();
        assert_eq!(
            l.sluice_reason(ConfigType::List, &r),
            "'kompact' is not allowed; expected a comma-separated list of: compact, delete"
        );
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize(ConfigType::Boolean, " TRUE "), "true");
        assert_eq!(normalize(ConfigType::Long, "+007"), "7");
        assert_eq!(
            normalize(ConfigType::List, " compact ,delete,"),
            "compact,delete"
        );
        assert_eq!(normalize(ConfigType::String, " x "), "x");
    }

    #[test]
    fn invalid_error_lists_every_problem() {
        let e = ConfigError::Invalid {
            problems: vec!["a".into(), "b".into()],
        };
        assert_eq!(e.to_string(), "a\nb");
    }
}
