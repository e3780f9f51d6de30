//! Topic-level configs: Kafka 4.x's table, validation, DescribeConfigs and effective values.
//!
//! A topic's value for a config comes from, in order: the topic's own override
//! ([`TopicConfigs`], set by CreateTopics / AlterConfigs), else the broker keys that Kafka
//! treats as its synonyms (`retention.ms` ← `log.retention.ms`, `log.retention.minutes`,
//! `log.retention.hours`) as set dynamically for this broker, else as dynamic cluster
//! defaults ([`DynamicBrokerConfigs`]), else in the broker's file or command line, else the
//! default.
//!
//! Kafka 4.0 removed `message.downconversion.enable` and `message.format.version`; like
//! Kafka 4, Sluice rejects them as unknown topic configs. Sluice has no tiered storage, so
//! `remote.storage.enable=true` is rejected with Kafka's "tiered storage disabled" message;
//! the other remote-storage configs are accepted and have no effect.

use super::broker::{self, BrokerConfig};
use super::dynamic::{broker_layers, DynamicBrokerConfigs};
use super::{
    at_least, between, normalize, parse_bool, parse_int, parse_list, Check, ConfigEntry,
    ConfigError, ConfigSource, ConfigType,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Definition of one topic-level config.
pub struct TopicConfigDef {
    /// Kafka's topic config name.
    pub name: &'static str,
    /// Its data type.
    pub config_type: ConfigType,
    /// Kafka's default, as a string (used when neither the topic nor the broker sets it).
    pub default: &'static str,
    /// How values are validated.
    pub(crate) check: Check,
    /// One-line documentation, returned by DescribeConfigs.
    pub doc: &'static str,
    /// Broker keys that provide the cluster-wide default, highest precedence first.
    pub broker_synonyms: &'static [&'static str],
}

impl TopicConfigDef {
    /// Validates a value for this config; the error text is Kafka's `INVALID_CONFIG` message.
    pub fn validate(&self, value: &str) -> Result<(), ConfigError> {
        self.check.validate(self.config_type, value).map_err(|r| {
            ConfigError::InvalidConfig(format!(
                "Invalid value {} for configuration {}: {}",
                value,
                self.name,
                self.check.kafka_reason(self.config_type, value, &r)
            ))
        })
    }
}

const LONG_MAX: &str = "9223372036854775807";

const fn def(
    name: &'static str,
    config_type: ConfigType,
    default: &'static str,
    check: Check,
    broker_synonyms: &'static [&'static str],
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        config_type,
        default,
        check,
        doc,
        broker_synonyms,
    }
}

/// Compression types a broker or topic may be configured with (Kafka's
/// `BrokerCompressionType` names; `none` is a producer setting and is not accepted here).
pub(crate) const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// Allowed `cleanup.policy` / `log.cleanup.policy` elements.
pub(crate) const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
/// Allowed `message.timestamp.type` / `log.message.timestamp.type` values.
pub(crate) const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Kafka's gzip level validator: 1..=9, or -1 for zlib's default.
pub(crate) fn check_gzip_level(value: &str) -> Result<(), String> {
    match parse_int(ConfigType::Int, value) {
        None => Err("Not a number of type INT".to_string()),
        Some(-1) | Some(1..=9) => Ok(()),
        Some(_) => Err("Value must be between 1 and 9, or -1 for the default level".to_string()),
    }
}

/// Kafka's throttled-replicas validator: `*`, empty, or `partition:broker` pairs.
fn check_throttled_replicas(value: &str) -> Result<(), String> {
    let items = parse_list(value);
    let wildcard = items.len() == 1 && items[0] == "*";
    let pairs = items.iter().all(|item| {
        item.split_once(':').is_some_and(|(p, b)| {
            let num =
                |s: &str| !s.trim().is_empty() && s.trim().bytes().all(|c| c.is_ascii_digit());
            num(p) && num(b)
        })
    });
    if wildcard || pairs {
        Ok(())
    } else {
        Err(
            "Value must be the literal '*' or a list of replicas in the following format: \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                .to_string(),
        )
    }
}

/// Which partitions of a topic a `leader.replication.throttled.replicas` or
/// `follower.replication.throttled.replicas` list throttles on one shard (Kafka's
/// `TopicConfigHandler.parseThrottledPartitions`, which keeps the pairs naming the local
/// broker).
///
/// The replica id of a `partition:id` pair names a replica of this shard when it is either
/// this broker's `node.id` (every shard of the broker: the broker ids operators write) or this
/// shard's node id `node.id*1000 + shard` (the broker id Kafka clients see in Metadata for the
/// shard that holds the replica, which Kafka's tools, such as `kafka-reassign-partitions.sh`,
/// copy from there). The two readings collide only in a cluster with a `node.id` of 1000 or
/// more that equals another broker's shard node id; such a pair then throttles both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottledReplicas {
    /// `*`: every replica of the topic.
    All,
    /// The partitions whose pairs name this broker or shard (none for an empty list).
    Partitions(BTreeSet<i32>),
}

impl ThrottledReplicas {
    /// The partitions `value` (a validated throttled-replicas list) throttles on the shard
    /// with node id `node_id` of broker `broker_id`. Pairs that do not parse (impossible once
    /// validated) throttle nothing.
    pub fn parse(value: &str, broker_id: i32, node_id: i32) -> ThrottledReplicas {
        let items = parse_list(value);
        if items.len() == 1 && items[0] == "*" {
            return ThrottledReplicas::All;
        }
        let partitions = items
            .iter()
            .filter_map(|item| {
                let (partition, replica) = item.split_once(':')?;
                let partition: i32 = partition.trim().parse().ok()?;
                let replica: i32 = replica.trim().parse().ok()?;
                (replica == broker_id || replica == node_id).then_some(partition)
            })
            .collect();
        ThrottledReplicas::Partitions(partitions)
    }

    /// Whether `partition` is throttled.
    pub fn contains(&self, partition: i32) -> bool {
        match self {
            ThrottledReplicas::All => true,
            ThrottledReplicas::Partitions(partitions) => partitions.contains(&partition),
        }
    }

    /// Whether nothing is throttled.
    pub fn is_empty(&self) -> bool {
        matches!(self, ThrottledReplicas::Partitions(p) if p.is_empty())
    }
}

/// Sluice has no tiered storage, so only `false` is accepted (Kafka's message when the
/// remote log storage system is disabled).
fn check_remote_storage(value: &str) -> Result<(), String> {
    match parse_bool(value) {
        None => Err("Expected value to be either true or false".to_string()),
        Some(false) => Ok(()),
        Some(true) => Err("Tiered Storage functionality is disabled in the broker. \
                           Topic cannot be configured with remote log storage."
            .to_string()),
    }
}

/// Every Kafka 4.x topic-level config, sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("cleanup.policy", ConfigType::List, "delete", Check::ListOf(CLEANUP_POLICIES), &["log.cleanup.policy"],
        "Retention policy for old segments: delete, compact, or both (comma-separated)."),
    def("compression.gzip.level", ConfigType::Int, "-1", Check::Custom(check_gzip_level), &["compression.gzip.level"],
        "Compression level used when compression.type is gzip (1-9, or -1 for the default)."),
    def("compression.lz4.level", ConfigType::Int, "9", between(1, 17), &["compression.lz4.level"],
        "Compression level used when compression.type is lz4."),
    def("compression.type", ConfigType::String, "producer", Check::OneOf(COMPRESSION_TYPES), &["compression.type"],
        "Final compression of the topic's data; 'producer' keeps whatever the producer sent."),
    def("compression.zstd.level", ConfigType::Int, "3", between(-131072, 22), &["compression.zstd.level"],
        "Compression level used when compression.type is zstd."),
    def("delete.retention.ms", ConfigType::Long, "86400000", at_least(0), &["log.cleaner.delete.retention.ms"],
        "How long delete tombstones are kept on compacted topics."),
    def("file.delete.delay.ms", ConfigType::Long, "60000", at_least(0), &["log.segment.delete.delay.ms"],
        "How long to wait before deleting a segment file from the filesystem."),
    def("flush.messages", ConfigType::Long, LONG_MAX, at_least(1), &["log.flush.interval.messages"],
        "Force an fsync after this many messages (replication, not fsync, is the durability mechanism)."),
    def("flush.ms", ConfigType::Long, LONG_MAX, at_least(0),
        &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "Force an fsync when data has been unflushed this long."),
    def("follower.replication.throttled.replicas", ConfigType::List, "", Check::Custom(check_throttled_replicas), &[],
        "Replicas ([partition]:[broker] or *) whose replication is throttled on the follower side (KIP-73, at follower.replication.throttled.rate); broker is a node.id (all its shards) or a shard's node id."),
    def("index.interval.bytes", ConfigType::Int, "4096", at_least(0), &["log.index.interval.bytes"],
        "How many bytes of messages between offset index entries."),
    def("leader.replication.throttled.replicas", ConfigType::List, "", Check::Custom(check_throttled_replicas), &[],
        "Replicas ([partition]:[broker] or *) whose replication is throttled on the leader side (KIP-73, at leader.replication.throttled.rate); broker is a node.id (all its shards) or a shard's node id."),
    def("local.retention.bytes", ConfigType::Long, "-2", at_least(-2), &["log.local.retention.bytes"],
        "Local size limit with tiered storage (-2 = retention.bytes); no effect in Sluice."),
    def("local.retention.ms", ConfigType::Long, "-2", at_least(-2), &["log.local.retention.ms"],
        "Local time limit with tiered storage (-2 = retention.ms); no effect in Sluice."),
    def("max.compaction.lag.ms", ConfigType::Long, LONG_MAX, at_least(1), &["log.cleaner.max.compaction.lag.ms"],
        "Longest time a message stays ineligible for compaction."),
    def("max.message.bytes", ConfigType::Int, "1048588", at_least(0), &["message.max.bytes"],
        "Largest record batch size allowed, after compression."),
    def("message.timestamp.after.max.ms", ConfigType::Long, "3600000", at_least(0),
        &["log.message.timestamp.after.max.ms"],
        "How far in the future a CreateTime timestamp may be before the batch is rejected."),
    def("message.timestamp.before.max.ms", ConfigType::Long, LONG_MAX, at_least(0),
        &["log.message.timestamp.before.max.ms"],
        "How far in the past a CreateTime timestamp may be before the batch is rejected."),
    def("message.timestamp.type", ConfigType::String, "CreateTime", Check::OneOf(TIMESTAMP_TYPES),
        &["log.message.timestamp.type"],
        "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime)."),
    def("min.cleanable.dirty.ratio", ConfigType::Double, "0.5", Check::Double { min: 0.0, max: 1.0 },
        &["log.cleaner.min.cleanable.ratio"],
        "Minimum dirty/total ratio of the log before it is compacted."),
    def("min.compaction.lag.ms", ConfigType::Long, "0", at_least(0), &["log.cleaner.min.compaction.lag.ms"],
        "Minimum time a message stays uncompacted."),
    def("min.insync.replicas", ConfigType::Int, "1", at_least(1), &["min.insync.replicas"],
        "Minimum in-sync replicas for an acks=all produce to succeed."),
    def("preallocate", ConfigType::Boolean, "false", Check::Bool, &["log.preallocate"],
        "Preallocate the file on disk when creating a new segment."),
    def("remote.log.copy.disable", ConfigType::Boolean, "false", Check::Bool, &[],
        "Stop copying segments to tiered storage; no effect in Sluice."),
    def("remote.log.delete.on.disable", ConfigType::Boolean, "false", Check::Bool, &[],
        "Delete remote data when tiered storage is disabled; no effect in Sluice."),
    def("remote.storage.enable", ConfigType::Boolean, "false", Check::Custom(check_remote_storage), &[],
        "Tiered storage for the topic; Sluice has none, so only false is accepted."),
    def("retention.bytes", ConfigType::Long, "-1", Check::Int { min: None, max: None }, &["log.retention.bytes"],
        "Maximum size of a partition before old segments are deleted (-1 = no limit)."),
    def("retention.ms", ConfigType::Long, "604800000", at_least(-1),
        &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        "How long to keep a segment before deleting it (-1 = no time limit)."),
    def("segment.bytes", ConfigType::Int, "1073741824", at_least(14), &["log.segment.bytes"],
        "Segment file size; a new segment is rolled when it is full."),
    def("segment.index.bytes", ConfigType::Int, "10485760", at_least(4), &["log.index.size.max.bytes"],
        "Size of the offset and time indexes of each segment."),
    def("segment.jitter.ms", ConfigType::Long, "0", at_least(0), &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        "Maximum random jitter subtracted from segment.ms to avoid rolling every segment at once."),
    def("segment.ms", ConfigType::Long, "604800000", at_least(1), &["log.roll.ms", "log.roll.hours"],
        "Roll a new segment after this long even if the current one is not full."),
    def("unclean.leader.election.enable", ConfigType::Boolean, "false", Check::Bool,
        &["unclean.leader.election.enable"],
        "Allow an out-of-sync replica to become leader as a last resort, at the risk of data loss."),
];

/// Looks up a topic config definition by name.
pub fn find_topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Validates one topic config: an unknown name or an invalid value is an error whose message
/// is Kafka's (`Unknown topic config name: x`, `Invalid value -5 for configuration
/// retention.ms: Value must be at least -1`), suitable for an `INVALID_CONFIG` response.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    find_topic_config(name)
        .ok_or_else(|| ConfigError::InvalidConfig(format!("Unknown topic config name: {name}")))?
        .validate(value)
}

/// How record timestamps are assigned (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestampType {
    /// The producer's timestamp is kept (checked against the before/after limits).
    CreateTime,
    /// The broker overwrites timestamps with the append time.
    LogAppendTime,
}

impl TimestampType {
    /// Parses Kafka's name (`CreateTime` / `LogAppendTime`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }
}

/// What happens to old segments (`cleanup.policy`); both may be set, or neither (keep all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPolicy {
    /// Delete segments past retention.ms / retention.bytes.
    pub delete: bool,
    /// Compact the log, keeping the latest record per key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// Parses a validated `cleanup.policy` list.
    pub fn from_list(value: &str) -> Self {
        let items = parse_list(value);
        CleanupPolicy {
            delete: items.iter().any(|i| i == "delete"),
            compact: items.iter().any(|i| i == "compact"),
        }
    }
}

/// A topic's final compression (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompressionType {
    /// Keep the producer's compression as is.
    Producer,
    /// Store uncompressed.
    Uncompressed,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

impl CompressionType {
    /// Parses Kafka's broker compression name (`producer`, `uncompressed`, `gzip`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "producer" => Some(CompressionType::Producer),
            "uncompressed" => Some(CompressionType::Uncompressed),
            "gzip" => Some(CompressionType::Gzip),
            "snappy" => Some(CompressionType::Snappy),
            "lz4" => Some(CompressionType::Lz4),
            "zstd" => Some(CompressionType::Zstd),
            _ => None,
        }
    }
}

/// The typed configuration a partition log runs with, after topic overrides, broker settings
/// and defaults are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveTopicConfig {
    /// Roll a segment when it reaches this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll a segment after this age (`segment.ms`).
    pub segment_ms: i64,
    /// Random jitter bound subtracted from `segment_ms` (`segment.jitter.ms`).
    pub segment_jitter_ms: i64,
    /// Maximum size of each segment's index files (`segment.index.bytes`).
    pub segment_index_bytes: u32,
    /// Bytes between offset index entries (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// fsync after this many messages (`flush.messages`; `i64::MAX as u64` = never).
    pub flush_messages: u64,
    /// fsync after data has been unflushed this long (`flush.ms`; `i64::MAX` = never).
    pub flush_ms: i64,
    /// Largest record batch accepted (`max.message.bytes`).
    pub max_message_bytes: u32,
    /// Who assigns timestamps (`message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// Oldest acceptable CreateTime relative to now (`message.timestamp.before.max.ms`).
    pub timestamp_before_max_ms: i64,
    /// Furthest-future acceptable CreateTime relative to now (`message.timestamp.after.max.ms`).
    pub timestamp_after_max_ms: i64,
    /// Time retention (`retention.ms`; -1 = unlimited).
    pub retention_ms: i64,
    /// Size retention per partition (`retention.bytes`; -1 = unlimited).
    pub retention_bytes: i64,
    /// Delete and/or compact (`cleanup.policy`).
    pub cleanup_policy: CleanupPolicy,
    /// Tombstone retention on compacted topics (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// Minimum age before compaction (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// Maximum age before compaction is forced (`max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// Dirty ratio that triggers compaction (`min.cleanable.dirty.ratio`).
    pub min_cleanable_dirty_ratio: f64,
    /// Delay before a deleted segment's files are removed (`file.delete.delay.ms`).
    pub file_delete_delay_ms: i64,
    /// Minimum ISR size for acks=all (`min.insync.replicas`).
    pub min_insync_replicas: i32,
    /// Final compression (`compression.type`).
    pub compression_type: CompressionType,
    /// Level for the final compression, when it is gzip, lz4 or zstd (`compression.*.level`).
    pub compression_level: Option<i32>,
    /// Preallocate segment files (`preallocate`).
    pub preallocate: bool,
    /// Allow unclean leader election (`unclean.leader.election.enable`).
    pub unclean_leader_election_enable: bool,
}

/// One topic's dynamic config overrides (what CreateTopics / AlterConfigs set), persisted as a
/// JSON object of name → value. Values are stored validated and in Kafka's canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TopicConfigs(BTreeMap<String, String>);

/// A resolved topic config value with its provenance.
struct Resolved {
    value: String,
    source: ConfigSource,
    synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Converts a broker synonym's value into the topic config's unit (hours / minutes → ms).
fn from_broker_units(topic_name: &str, broker_key: &str, value: &str) -> Option<String> {
    let scale = if broker_key.ends_with(".hours") {
        3_600_000
    } else if broker_key.ends_with(".minutes") {
        60_000
    } else {
        1
    };
    if scale == 1 && topic_name != "retention.ms" {
        return Some(value.to_string());
    }
    let ms = value.trim().parse::<i64>().ok()?.checked_mul(scale)?;
    // Kafka maps any negative broker retention to -1 (unlimited).
    Some(
        if topic_name == "retention.ms" && ms < 0 {
            -1
        } else {
            ms
        }
        .to_string(),
    )
}

impl TopicConfigs {
    /// Validates a full set of overrides (as CreateTopics sends them) and wraps them.
    pub fn new(configs: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut out = TopicConfigs::default();
        for (name, value) in &configs {
            validate_topic_config(name, value)?;
            out.0.insert(name.clone(), canonical(name, value));
        }
        out.check_combination()?;
        Ok(out)
    }

    /// Sets one override after validating it (AlterConfigs SET). On error nothing changes.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        validate_topic_config(name, value)?;
        let previous = self.0.insert(name.to_string(), canonical(name, value));
        if let Err(e) = self.check_combination() {
            match previous {
                Some(p) => self.0.insert(name.to_string(), p),
                None => self.0.remove(name),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Removes an override (AlterConfigs DELETE), returning its value if there was one.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// The override for `name`, if the topic has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// All overrides, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when the topic has no overrides.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Kafka's cross-config check (`LogConfig.validateValues`).
    fn check_combination(&self) -> Result<(), ConfigError> {
        let long = |name: &str, default: i64| {
            self.get(name)
                .and_then(|v| parse_int(ConfigType::Long, v))
                .unwrap_or(default)
        };
        let min = long("min.compaction.lag.ms", 0);
        let max = long("max.compaction.lag.ms", i64::MAX);
        if min > max {
            return Err(ConfigError::InvalidConfig(format!(
                "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
            )));
        }
        Ok(())
    }

    /// Resolves one config: topic override, then the broker synonyms set dynamically for this
    /// broker, as dynamic cluster defaults and statically, then the broker defaults. Overrides
    /// that no longer validate (a hand-edited file) are ignored.
    fn resolve(
        &self,
        def: &TopicConfigDef,
        broker: &BrokerConfig,
        dynamic: &DynamicBrokerConfigs,
    ) -> Resolved {
        let mut synonyms = Vec::new();
        let mut chosen: Option<(String, ConfigSource)> = None;
        if let Some(v) = self.get(def.name).filter(|v| def.validate(v).is_ok()) {
            synonyms.push((
                def.name.to_string(),
                Some(v.to_string()),
                ConfigSource::DynamicTopicConfig,
            ));
            chosen = Some((v.to_string(), ConfigSource::DynamicTopicConfig));
        }
        for (map, source) in broker_layers(broker, dynamic) {
            for key in def.broker_synonyms {
                if let Some(v) = map.and_then(|m| m.get(*key)) {
                    synonyms.push((key.to_string(), Some(v.clone()), source));
                    if chosen.is_none() {
                        chosen = from_broker_units(def.name, key, v).map(|c| (c, source));
                    }
                }
            }
        }
        for key in def.broker_synonyms {
            if let Some(d) = broker::default_of(key) {
                synonyms.push((
                    key.to_string(),
                    Some(d.to_string()),
                    ConfigSource::DefaultConfig,
                ));
                if chosen.is_none() {
                    chosen = from_broker_units(def.name, key, d)
                        .map(|c| (c, ConfigSource::DefaultConfig));
                }
            }
        }
        let (value, source) =
            chosen.unwrap_or_else(|| (def.default.to_string(), ConfigSource::DefaultConfig));
        Resolved {
            value,
            source,
            synonyms,
        }
    }

    /// Describes every topic config (DescribeConfigs for a TOPIC resource): the value, its
    /// source (topic override, dynamic per-broker or cluster-default broker config, static
    /// broker config or default), and, when asked, its synonyms in Kafka's order — topic
    /// override, then broker keys set dynamically for this broker, as dynamic cluster defaults
    /// and statically, then broker defaults.
    pub fn describe(
        &self,
        broker: &BrokerConfig,
        dynamic: &DynamicBrokerConfigs,
        include_synonyms: bool,
    ) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let r = self.resolve(def, broker, dynamic);
                ConfigEntry {
                    name: def.name.to_string(),
                    value: Some(r.value),
                    source: r.source,
                    read_only: false,
                    sensitive: false,
                    config_type: def.config_type,
                    documentation: Some(def.doc.to_string()),
                    synonyms: if include_synonyms {
                        r.synonyms
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// The typed values the log needs, resolved against the broker's static and dynamic
    /// configuration.
    pub fn effective(
        &self,
        broker: &BrokerConfig,
        dynamic: &DynamicBrokerConfigs,
    ) -> EffectiveTopicConfig {
        let value = |name: &str| -> (String, &'static TopicConfigDef) {
            match find_topic_config(name) {
                Some(def) => (self.resolve(def, broker, dynamic).value, def),
                None => (String::new(), &TOPIC_CONFIGS[0]),
            }
        };
        let int = |name: &str| -> i64 {
            let (v, def) = value(name);
            parse_int(def.config_type, &v)
                .or_else(|| parse_int(def.config_type, def.default))
                .unwrap_or(0)
        };
        let non_negative = |name: &str| u64::try_from(int(name)).unwrap_or(0);
        let u32_of = |name: &str| u32::try_from(int(name)).unwrap_or(0);
        let boolean = |name: &str| parse_bool(&value(name).0).unwrap_or(false);
        let compression_type = CompressionType::from_name(&value("compression.type").0)
            .unwrap_or(CompressionType::Producer);
        let compression_level = match compression_type {
            CompressionType::Gzip => Some(int("compression.gzip.level")),
            CompressionType::Lz4 => Some(int("compression.lz4.level")),
            CompressionType::Zstd => Some(int("compression.zstd.level")),
            _ => None,
        }
        .and_then(|l| i32::try_from(l).ok());
        EffectiveTopicConfig {
            segment_bytes: non_negative("segment.bytes"),
            segment_ms: int("segment.ms"),
            segment_jitter_ms: int("segment.jitter.ms"),
            segment_index_bytes: u32_of("segment.index.bytes"),
            index_interval_bytes: u32_of("index.interval.bytes"),
            flush_messages: non_negative("flush.messages"),
            flush_ms: int("flush.ms"),
            max_message_bytes: u32_of("max.message.bytes"),
            timestamp_type: TimestampType::from_name(&value("message.timestamp.type").0)
                .unwrap_or(TimestampType::CreateTime),
            timestamp_before_max_ms: int("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: int("message.timestamp.after.max.ms"),
            retention_ms: int("retention.ms"),
            retention_bytes: int("retention.bytes"),
            cleanup_policy: CleanupPolicy::from_list(&value("cleanup.policy").0),
            delete_retention_ms: int("delete.retention.ms"),
            min_compaction_lag_ms: int("min.compaction.lag.ms"),
            max_compaction_lag_ms: int("max.compaction.lag.ms"),
            min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio")
                .0
                .trim()
                .parse()
                .unwrap_or(0.5),
            file_delete_delay_ms: int("file.delete.delay.ms"),
            min_insync_replicas: i32::try_from(int("min.insync.replicas")).unwrap_or(1),
            compression_type,
            compression_level,
            preallocate: boolean("preallocate"),
            unclean_leader_election_enable: boolean("unclean.leader.election.enable"),
        }
    }
}

/// The canonical stored form of a validated topic config value.
fn canonical(name: &str, value: &str) -> String {
    match find_topic_config(name) {
        Some(def) => normalize(def.config_type, value),
        None => value.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(overrides: &[&str]) -> BrokerConfig {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        BrokerConfig::load(None, &o).unwrap()
    }

    fn none() -> DynamicBrokerConfigs {
        DynamicBrokerConfigs::default()
    }

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn table_is_sorted_complete_and_defaults_validate() {
        let names: Vec<&str> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 33);
        for d in TOPIC_CONFIGS {
            d.validate(d.default)
                .unwrap_or_else(|e| panic!("{}: {e}", d.name));
            assert!(!d.doc.is_empty());
            for s in d.broker_synonyms {
                assert!(
                    broker::is_known_key(s),
                    "{} synonym {s} unknown to the broker",
                    d.name
                );
            }
        }
    }

    #[test]
    fn validation_messages_are_kafkas() {
        let msg = |n: &str, v: &str| validate_topic_config(n, v).unwrap_err().to_string();
        assert_eq!(
            msg("retention.mss", "1"),
            "Unknown topic config name: retention.mss"
        );
        assert_eq!(
            msg("message.downconversion.enable", "true"),
            "Unknown topic config name: message.downconversion.enable"
        );
        assert_eq!(
            msg("retention.ms", "-5"),
            "Invalid value -5 for configuration retention.ms: Value must be at least -1"
        );
        assert_eq!(
            msg("segment.bytes", "abc"),
            "Invalid value abc for configuration segment.bytes: Not a number of type INT"
        );
        assert_eq!(
            msg("segment.bytes", "13"),
            "Invalid value 13 for configuration segment.bytes: Value must be at least 14"
        );
        assert_eq!(
            msg("compression.type", "none"),
            "Invalid value none for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"
        );
        assert_eq!(
            msg("cleanup.policy", "delete,compacted"),
            "Invalid value delete,compacted for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert_eq!(
            msg("preallocate", "yes"),
            "Invalid value yes for configuration preallocate: Expected value to be either true or false"
        );
        assert!(msg("compression.gzip.level", "10").contains("between 1 and 9"));
        assert!(msg("compression.zstd.level", "23").contains("no more than 22"));
        assert!(msg("remote.storage.enable", "true")
            .contains("Tiered Storage functionality is disabled"));
        assert!(msg("leader.replication.throttled.replicas", "0:1,x")
            .contains("[partitionId]:[brokerId]"));
        assert!(msg("min.cleanable.dirty.ratio", "1.1").contains("no more than 1"));

        for (n, v) in [
            ("retention.ms", "-1"),
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", ""),
            ("compression.type", "zstd"),
            ("compression.gzip.level", "-1"),
            ("compression.gzip.level", "9"),
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "0:1, 1:2"),
            ("message.timestamp.type", "LogAppendTime"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("remote.storage.enable", "false"),
            ("unclean.leader.election.enable", "TRUE"),
        ] {
            validate_topic_config(n, v).unwrap_or_else(|e| panic!("{n}={v}: {e}"));
        }
    }

    #[test]
    fn throttled_replicas_name_the_broker_or_the_shard_node() {
        let of = |value: &str| ThrottledReplicas::parse(value, 2, 2001);
        let partitions = |ps: &[i32]| ThrottledReplicas::Partitions(ps.iter().copied().collect());
        assert_eq!(of("*"), ThrottledReplicas::All);
        assert_eq!(of(" * "), ThrottledReplicas::All);
        assert!(of("*").contains(12345));
        assert!(of("").is_empty());
        assert!(!of("*").is_empty());
        // node.id 2 (every shard of the broker) or the shard's node id 2001; not the other
        // brokers, nor broker 2's other shard (2000).
        assert_eq!(
            of("0:1,0:2, 1:3 ,2:2001,3:2000,4:1001,5:2"),
            partitions(&[0, 2, 5])
        );
        assert!(of("0:2").contains(0));
        assert!(!of("0:2").contains(1));
        assert!(of("0:1,1:3").is_empty());
        // Every validated form parses: what the validator accepts is what is applied.
        for value in ["", "*", "0:2", "0:1,1:2", " 7 : 2001 "] {
            validate_topic_config("follower.replication.throttled.replicas", value)
                .unwrap_or_else(|e| panic!("{value}: {e}"));
        }
        assert_eq!(of(" 7 : 2001 "), partitions(&[7]));
    }

    #[test]
    fn overrides_set_remove_and_combination() {
        let mut t = TopicConfigs::default();
        t.set("retention.ms", " +1000 ").unwrap();
        t.set("preallocate", "TRUE").unwrap();
        assert_eq!(t.get("retention.ms"), Some("1000"));
        assert_eq!(t.get("preallocate"), Some("true"));
        assert!(t.set("retention.ms", "x").is_err());
        assert_eq!(t.get("retention.ms"), Some("1000"));
        t.set("max.compaction.lag.ms", "100").unwrap();
        let err = t.set("min.compaction.lag.ms", "200").unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflict topic config setting min.compaction.lag.ms (200) > max.compaction.lag.ms (100)"
        );
        assert_eq!(t.get("min.compaction.lag.ms"), None);
        assert_eq!(t.remove("preallocate"), Some("true".to_string()));
        assert_eq!(t.iter().count(), 2);

        let map = BTreeMap::from([("segment.ms".to_string(), "0".to_string())]);
        assert!(TopicConfigs::new(map).is_err());
        let map = BTreeMap::from([("segment.ms".to_string(), "10".to_string())]);
        assert_eq!(
            TopicConfigs::new(map).unwrap().get("segment.ms"),
            Some("10")
        );
    }

    #[test]
    fn persists_as_a_json_object() {
        let mut t = TopicConfigs::default();
        t.set("cleanup.policy", "compact, delete").unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#"{"cleanup.policy":"compact,delete"}"#);
        let back: TopicConfigs = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn describe_sources_and_synonyms() {
        let b = broker(&["log.retention.hours=1", "log.segment.bytes=1048576"]);
        let mut t = TopicConfigs::default();
        t.set("segment.bytes", "2097152").unwrap();
        let d = t.describe(&b, &none(), true);
        assert_eq!(d.len(), TOPIC_CONFIGS.len());

        let r = entry(&d, "retention.ms");
        assert_eq!(r.value.as_deref(), Some("3600000"));
        assert_eq!(r.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(r.config_type, ConfigType::Long);
        assert_eq!(
            r.synonyms,
            vec![
                (
                    "log.retention.hours".to_string(),
                    Some("1".to_string()),
                    ConfigSource::StaticBrokerConfig
                ),
                (
                    "log.retention.hours".to_string(),
                    Some("168".to_string()),
                    ConfigSource::DefaultConfig
                ),
            ]
        );

        let s = entry(&d, "segment.bytes");
        assert_eq!(s.value.as_deref(), Some("2097152"));
        assert_eq!(s.source, ConfigSource::DynamicTopicConfig);
        assert_eq!(
            s.synonyms,
            vec![
                (
                    "segment.bytes".to_string(),
                    Some("2097152".to_string()),
                    ConfigSource::DynamicTopicConfig
                ),
                (
                    "log.segment.bytes".to_string(),
                    Some("1048576".to_string()),
                    ConfigSource::StaticBrokerConfig
                ),
                (
                    "log.segment.bytes".to_string(),
                    Some("1073741824".to_string()),
                    ConfigSource::DefaultConfig
                ),
            ]
        );

        let c = entry(&d, "cleanup.policy");
        assert_eq!(c.value.as_deref(), Some("delete"));
        assert_eq!(c.source, ConfigSource::DefaultConfig);
        assert_eq!(c.config_type, ConfigType::List);

        let f = entry(&d, "flush.ms");
        assert_eq!(f.value.as_deref(), Some(LONG_MAX));
        assert_eq!(f.synonyms.len(), 1);
        assert_eq!(f.synonyms[0].0, "log.flush.scheduler.interval.ms");

        let l = entry(&d, "leader.replication.throttled.replicas");
        assert_eq!(
            (l.value.as_deref(), l.source),
            (Some(""), ConfigSource::DefaultConfig)
        );
        assert!(l.synonyms.is_empty());

        assert!(t
            .describe(&b, &none(), false)
            .iter()
            .all(|e| e.synonyms.is_empty()));
        assert!(d
            .iter()
            .all(|e| !e.read_only && !e.sensitive && e.documentation.is_some()));
    }

    #[test]
    fn effective_defaults_match_kafka() {
        let e = TopicConfigs::default().effective(&broker(&[]), &none());
        assert_eq!(e.segment_bytes, 1_073_741_824);
        assert_eq!(e.segment_ms, 604_800_000);
        assert_eq!(e.segment_index_bytes, 10_485_760);
        assert_eq!(e.index_interval_bytes, 4096);
        assert_eq!(e.flush_messages, i64::MAX as u64);
        assert_eq!(e.flush_ms, i64::MAX);
        assert_eq!(e.max_message_bytes, 1_048_588);
        assert_eq!(e.timestamp_type, TimestampType::CreateTime);
        assert_eq!(e.timestamp_before_max_ms, i64::MAX);
        assert_eq!(e.timestamp_after_max_ms, 3_600_000);
        assert_eq!(e.retention_ms, 604_800_000);
        assert_eq!(e.retention_bytes, -1);
        assert_eq!(
            e.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: false
            }
        );
        assert_eq!(e.min_insync_replicas, 1);
        assert_eq!(e.compression_type, CompressionType::Producer);
        assert_eq!(e.compression_level, None);
        assert!(!e.preallocate);
    }

    #[test]
    fn effective_precedence() {
        let b = broker(&[
            "log.retention.minutes=10",
            "log.roll.hours=2",
            "log.flush.scheduler.interval.ms=5000",
            "log.flush.interval.messages=100",
            "compression.type=zstd",
            "compression.zstd.level=7",
            "log.message.timestamp.type=LogAppendTime",
            "log.cleanup.policy=compact",
        ]);
        let mut t = TopicConfigs::default();
        let e = t.effective(&b, &none());
        assert_eq!(e.retention_ms, 600_000);
        assert_eq!(e.segment_ms, 7_200_000);
        assert_eq!(e.flush_ms, 5000);
        assert_eq!(e.flush_messages, 100);
        assert_eq!(e.compression_type, CompressionType::Zstd);
        assert_eq!(e.compression_level, Some(7));
        assert_eq!(e.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(
            e.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );

        t.set("retention.ms", "-1").unwrap();
        t.set("segment.ms", "1000").unwrap();
        t.set("cleanup.policy", "compact,delete").unwrap();
        t.set("compression.type", "gzip").unwrap();
        let e = t.effective(&b, &none());
        assert_eq!(e.retention_ms, -1);
        assert_eq!(e.segment_ms, 1000);
        assert_eq!(
            e.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: true
            }
        );
        assert_eq!(e.compression_level, Some(-1));

        // Negative broker retention means unlimited, as in Kafka.
        let b = broker(&["log.retention.hours=-1"]);
        assert_eq!(
            TopicConfigs::default().effective(&b, &none()).retention_ms,
            -1
        );
        // log.flush.interval.ms wins over the scheduler interval.
        let b = broker(&[
            "log.flush.interval.ms=10",
            "log.flush.scheduler.interval.ms=5000",
        ]);
        assert_eq!(TopicConfigs::default().effective(&b, &none()).flush_ms, 10);
    }

    #[test]
    fn invalid_persisted_override_is_ignored() {
        let t: TopicConfigs = serde_json::from_str(r#"{"segment.bytes":"garbage"}"#).unwrap();
        let b = broker(&[]);
        assert_eq!(t.effective(&b, &none()).segment_bytes, 1_073_741_824);
        assert_eq!(
            entry(&t.describe(&b, &none(), false), "segment.bytes").source,
            ConfigSource::DefaultConfig
        );
    }

    #[test]
    fn dynamic_broker_configs_rank_between_topic_and_static() {
        let b = broker(&[
            "node.id=3",
            "log.retention.hours=1",
            "log.segment.bytes=1000000",
        ]);
        let mut dynamic = none();
        dynamic
            .cluster_default
            .insert("log.retention.ms".into(), "5000".into());
        dynamic
            .cluster_default
            .insert("log.segment.bytes".into(), "2000000".into());
        dynamic.set_broker(
            3,
            BTreeMap::from([("log.segment.bytes".to_string(), "3000000".to_string())]),
        );
        let mut t = TopicConfigs::default();
        let e = t.effective(&b, &dynamic);
        assert_eq!((e.retention_ms, e.segment_bytes), (5000, 3_000_000));
        let d = t.describe(&b, &dynamic, true);
        let r = entry(&d, "retention.ms");
        assert_eq!(
            (r.value.as_deref(), r.source),
            (Some("5000"), ConfigSource::DynamicDefaultBrokerConfig)
        );
        let sources: Vec<(&str, ConfigSource)> = r
            .synonyms
            .iter()
            .map(|(n, _, s)| (n.as_str(), *s))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("log.retention.ms", ConfigSource::DynamicDefaultBrokerConfig),
                ("log.retention.hours", ConfigSource::StaticBrokerConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig),
            ]
        );
        let s = entry(&d, "segment.bytes");
        assert_eq!(
            (s.value.as_deref(), s.source),
            (Some("3000000"), ConfigSource::DynamicBrokerConfig)
        );
        assert_eq!(s.synonyms.len(), 4);

        t.set("segment.bytes", "4000000").unwrap();
        assert_eq!(t.effective(&b, &dynamic).segment_bytes, 4_000_000);
        let d = t.describe(&b, &dynamic, true);
        assert_eq!(
            entry(&d, "segment.bytes").source,
            ConfigSource::DynamicTopicConfig
        );
        // Another broker's dynamic values are not this broker's.
        let other = broker(&["node.id=4"]);
        assert_eq!(
            TopicConfigs::default()
                .effective(&other, &dynamic)
                .segment_bytes,
            2_000_000
        );
    }
}
