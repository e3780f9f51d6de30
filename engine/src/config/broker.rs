//! Broker configuration: Kafka's `server.properties` keys, defaults and validation, plus
//! Sluice's own `sluice.*` keys.
//!
//! [`BrokerConfig::load`] reads an optional properties file and `--set key=value` overrides
//! (which win), rejects every unknown key and invalid value — all of them reported together,
//! each naming the key and where it was set — and produces typed fields.
//!
//! Where Sluice's defaults differ from Kafka's, on purpose:
//! * `node.id` / `broker.id` default to 1 (Kafka requires one); shard k of broker B is node
//!   `B*1000+k`, so the id is capped at 2147482.
//! * `listeners` defaults to `PLAINTEXT://127.0.0.1:9092` and `log.dirs` to `./sluice-data`, so
//!   `sluice start` with no arguments is a working single-node broker.
//! * `sluice start` with no config file and no `controller.quorum.voters` (a single-node
//!   broker) sets what Kafka's quickstart `server.properties` sets for one broker:
//!   `offsets.topic.replication.factor=1` ([`SINGLE_NODE_SETTINGS`]), so that consumer groups
//!   work; with a file or voters, Kafka's default (3) applies.
//! * The other internal topics' replication factors (`transaction.state.log.replication.factor`,
//!   `share.coordinator.state.topic.*`) and `transaction.state.log.min.isr` default to 1 instead
//!   of 3 / 2, so a single broker works.
//! * Only the PLAINTEXT security protocol is supported for now; a listener mapped to any other
//!   protocol is an error saying so.
//! * Controller listeners (`controller.listener.names`) may appear in `listeners` and
//!   `advertised.listeners`, as in Kafka 4's stock KRaft file, but are never given to clients.
//!   The roles and quorum rules (`process.roles`, `controller.quorum.voters`) live in
//!   [`super::kraft`]; an empty voter list is a one-node quorum of this process.
//! * When `advertised.listeners` is not set, each listener is advertised with its own host,
//!   except that a wildcard bind (empty host, `0.0.0.0` or `::`) is advertised as `127.0.0.1`.
//!   (Kafka advertises the machine's canonical hostname there; a loopback address is the safe,
//!   predictable choice for a development broker — set `advertised.listeners` for anything
//!   else.)
//! * Thread-pool sizes (`num.network.threads`, `num.io.threads`, `background.threads`,
//!   `num.recovery.threads.per.data.dir`) are accepted so Kafka files load, but mean nothing
//!   under thread-per-core; `sluice.cores` sizes the broker.
//! * The `sasl.kerberos.*` settings are accepted (and dynamically alterable, as in Kafka) so
//!   Kafka files and tools work, but Sluice has no GSSAPI mechanism, so they change nothing.

use super::dynamic::{broker_layers, DynamicBrokerConfigs};
use super::kraft::{
    check_process_roles, check_quorum, check_voters, find_controller_listener, parse_voters,
    ProcessRoles, QuorumSettings, QuorumVoter,
};
use super::topic::{
    CleanupPolicy, CompressionType, TimestampType, CLEANUP_POLICIES, COMPRESSION_TYPES,
    TIMESTAMP_TYPES, TOPIC_CONFIGS,
};
use super::{
    at_least, between, normalize, parse_bool, parse_int, parse_list, properties, Check,
    ConfigEntry, ConfigError, ConfigSource, ConfigType,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest `broker.id` for which every shard's node id (`broker.id*1000 + k`, k < 1000) still
/// fits in a Kafka INT32 node id.
pub const MAX_BROKER_ID: i32 = 2_147_482;

/// Security protocols Kafka knows; only PLAINTEXT is implemented.
const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const LONG_MAX: &str = "9223372036854775807";

/// Kafka's rack-aware replica selector class, the one `replica.selector.class` Sluice knows.
pub const RACK_AWARE_REPLICA_SELECTOR: &str =
    "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// Which replica a partition's leader tells a consumer to fetch from (`replica.selector.class`,
/// KIP-392).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// Unset (Kafka's default): consumers always fetch from the leader.
    Leader,
    /// Kafka's `RackAwareReplicaSelector`: an in-sync replica in the consumer's rack (its
    /// `client.rack`), the most caught-up one, unless the leader is in that rack.
    RackAware,
}

impl ReplicaSelector {
    /// The selector named by a `replica.selector.class` value (blank = unset). Other classes
    /// are refused: Sluice cannot load Java classes.
    pub fn from_class_name(name: &str) -> Result<ReplicaSelector, String> {
        match name.trim() {
            "" => Ok(ReplicaSelector::Leader),
            RACK_AWARE_REPLICA_SELECTOR => Ok(ReplicaSelector::RackAware),
            other => Err(format!(
                "unknown replica selector '{other}': Sluice implements only \
                 {RACK_AWARE_REPLICA_SELECTOR} (or leave it unset to fetch from leaders)"
            )),
        }
    }
}

/// One broker key: name, type, default (None = unset), validation, one-line documentation.
struct BrokerKey {
    name: &'static str,
    ty: ConfigType,
    default: Option<&'static str>,
    check: Check,
    doc: &'static str,
}

const fn key(
    name: &'static str,
    ty: ConfigType,
    default: Option<&'static str>,
    check: Check,
    doc: &'static str,
) -> BrokerKey {
    BrokerKey {
        name,
        ty,
        default,
        check,
        doc,
    }
}

const ANY_INT: Check = Check::Int {
    min: None,
    max: None,
};

use ConfigType::{
    Boolean as BOOL, Class as CLASS, Double as DOUBLE, Int as INT, List as LIST, Long as LONG,
    Short as SHORT, String as STR,
};

/// Every broker key Sluice knows, sorted by name.
static BROKER_KEYS: &[BrokerKey] = &[
    key("advertised.listeners", STR, None, Check::Custom(check_listeners),
        "Listeners given to clients (NAME://host:port,...); defaults to listeners minus controller listeners."),
    key("auto.create.topics.enable", BOOL, Some("true"), Check::Bool,
        "Create a topic automatically when a client asks for metadata of, or produces to, an unknown topic."),
    key("auto.leader.rebalance.enable", BOOL, Some("true"), Check::Bool,
        "The controller moves leadership back to each partition's preferred replica (its first) when it is live and in sync and its broker's leader imbalance exceeds leader.imbalance.per.broker.percentage."),
    key("background.threads", INT, Some("10"), at_least(1),
        "Accepted for compatibility; meaningless under thread-per-core (see sluice.cores)."),
    key("broker.heartbeat.interval.ms", INT, Some("2000"), at_least(1),
        "How often a broker heartbeats to the active controller."),
    key("broker.id", INT, Some("1"), between(0, MAX_BROKER_ID as i64),
        "Synonym of node.id (Sluice default 1; at most 2147482 because shard k is node broker.id*1000+k)."),
    key("broker.rack", STR, None, Check::Any,
        "Rack of this broker, given to the controller at registration and to clients in Metadata."),
    key("broker.session.timeout.ms", INT, Some("9000"), at_least(1),
        "A broker whose heartbeats stop for this long is fenced by the controller."),
    key("cluster.id", STR, None, Check::Custom(check_cluster_id),
        "Cluster id to report; if unset the broker uses the one stored with its data."),
    key("compression.gzip.level", INT, Some("-1"), Check::Custom(super::topic::check_gzip_level),
        "Default gzip level when compression.type is gzip (1-9, or -1 for the default)."),
    key("compression.lz4.level", INT, Some("9"), between(1, 17),
        "Default lz4 level when compression.type is lz4."),
    key("compression.type", STR, Some("producer"), Check::OneOf(COMPRESSION_TYPES),
        "Default final compression of topics; 'producer' keeps what the producer sent."),
    key("compression.zstd.level", INT, Some("3"), between(-131072, 22),
        "Default zstd level when compression.type is zstd."),
    key("connections.max.idle.ms", LONG, Some("600000"), ANY_INT,
        "Close a connection on which no byte arrived for this long (negative = never); a client that sends slowly is not idle."),
    key("controller.listener.names", STR, None, Check::Any,
        "Comma-separated names of controller listeners; the first one in listeners is where the controller quorum talks. Never given to clients."),
    key("controller.quorum.bootstrap.servers", LIST, Some(""), Check::Custom(check_host_ports),
        "KRaft bootstrap controllers host:port,... (accepted for compatibility; Sluice runs its own controller)."),
    key("controller.quorum.election.timeout.ms", INT, Some("1000"), at_least(1),
        "How long a quorum voter waits without a leader before it starts an election."),
    key("controller.quorum.fetch.timeout.ms", INT, Some("2000"), at_least(1),
        "How long a voter goes without a fetch from the leader before it becomes a candidate."),
    key("controller.quorum.request.timeout.ms", INT, Some("2000"), at_least(1),
        "How long a quorum request may wait for its response."),
    key("controller.quorum.voters", LIST, Some(""), Check::Custom(check_voters),
        "Controller quorum voters id@host:port,... (the hosts and ports of their controller listeners); empty (Sluice default): a one-node quorum of this process."),
    key("default.replication.factor", INT, Some("1"), between(1, i16::MAX as i64),
        "Replication factor of automatically created topics and of CreateTopics requests that leave it to the broker."),
    key("delete.topic.enable", BOOL, Some("true"), Check::Bool,
        "Allow topics to be deleted."),
    key("follower.replication.throttled.rate", LONG, Some(LONG_MAX), at_least(0),
        "Bytes per second this broker's follower replicas named in follower.replication.throttled.replicas may replicate (KIP-73); each shard gets an equal share. Dynamic."),
    key("group.initial.rebalance.delay.ms", INT, Some("3000"), at_least(0),
        "How long the coordinator waits for more members before the first rebalance of an empty group."),
    key("group.max.session.timeout.ms", INT, Some("1800000"), at_least(1),
        "Largest session timeout a classic group member may ask for."),
    key("group.max.size", INT, Some("2147483647"), at_least(1),
        "Most members a classic group may have; a join beyond it gets GROUP_MAX_SIZE_REACHED."),
    key("group.min.session.timeout.ms", INT, Some("6000"), at_least(1),
        "Smallest session timeout a classic group member may ask for."),
    key("inter.broker.listener.name", STR, None, Check::Any,
        "Listener used between brokers; defaults to the listener named after security.inter.broker.protocol."),
    key("leader.imbalance.check.interval.seconds", LONG, Some("300"), at_least(1),
        "How often the controller checks the partition leaders' balance (auto.leader.rebalance.enable)."),
    key("leader.imbalance.per.broker.percentage", INT, Some("10"), ANY_INT,
        "Share of the partitions a broker is the preferred leader of, led elsewhere, above which the controller rebalances them."),
    key("leader.replication.throttled.rate", LONG, Some(LONG_MAX), at_least(0),
        "Bytes per second this broker's leader replicas named in leader.replication.throttled.replicas may send to out-of-sync followers (KIP-73); each shard gets an equal share. Dynamic."),
    key("listener.security.protocol.map", STR,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        Check::Custom(check_protocol_map),
        "Listener name to security protocol (NAME:PROTOCOL,...); only PLAINTEXT is supported for now."),
    key("listeners", STR, Some("PLAINTEXT://127.0.0.1:9092"), Check::Custom(check_listeners),
        "Addresses to listen on (NAME://host:port,...; empty host = all interfaces); shard k uses port+k."),
    key("log.cleaner.backoff.ms", LONG, Some("15000"), at_least(0),
        "How long a shard's log cleaner sleeps when no compacted log needs cleaning."),
    key("log.cleaner.dedupe.buffer.size", LONG, Some("134217728"), at_least(0),
        "Memory for the log cleaners' key maps, split evenly between the shards (Kafka: between the cleaner threads)."),
    key("log.cleaner.delete.retention.ms", LONG, Some("86400000"), at_least(0),
        "Default delete.retention.ms: how long tombstones are kept on compacted topics."),
    key("log.cleaner.enable", BOOL, Some("true"), Check::Bool,
        "Run the log cleaner, which compacts topics with cleanup.policy=compact."),
    key("log.cleaner.io.max.bytes.per.second", DOUBLE, Some("1.7976931348623157E308"),
        Check::Double { min: 0.0, max: f64::MAX },
        "Read plus write bytes per second each shard's log cleaner may use (default: unlimited)."),
    key("log.cleaner.max.compaction.lag.ms", LONG, Some(LONG_MAX), at_least(1),
        "Default max.compaction.lag.ms."),
    key("log.cleaner.min.cleanable.ratio", DOUBLE, Some("0.5"), Check::Double { min: 0.0, max: 1.0 },
        "Default min.cleanable.dirty.ratio."),
    key("log.cleaner.min.compaction.lag.ms", LONG, Some("0"), at_least(0),
        "Default min.compaction.lag.ms."),
    key("log.cleaner.threads", INT, Some("1"), at_least(0),
        "Accepted for compatibility; under thread-per-core each shard runs one cleaner, at low priority."),
    key("log.cleanup.policy", LIST, Some("delete"), Check::ListOf(CLEANUP_POLICIES),
        "Default cleanup.policy: delete, compact, or both."),
    key("log.dir", STR, Some("./sluice-data"), Check::Any,
        "Data directory, used when log.dirs is not set (Sluice default ./sluice-data)."),
    key("log.dirs", STR, None, Check::Any,
        "Comma-separated data directories; overrides log.dir."),
    key("log.flush.interval.messages", LONG, Some(LONG_MAX), at_least(1),
        "Default flush.messages: fsync a partition after this many messages."),
    key("log.flush.interval.ms", LONG, None, at_least(0),
        "Default flush.ms; when unset, log.flush.scheduler.interval.ms is used (default: never)."),
    key("log.flush.scheduler.interval.ms", LONG, Some(LONG_MAX), ANY_INT,
        "Fallback for log.flush.interval.ms (default: never)."),
    key("log.index.interval.bytes", INT, Some("4096"), at_least(0),
        "Default index.interval.bytes: bytes between offset index entries."),
    key("log.index.size.max.bytes", INT, Some("10485760"), at_least(4),
        "Default segment.index.bytes: maximum size of a segment's index."),
    key("log.local.retention.bytes", LONG, Some("-2"), at_least(-2),
        "Default local.retention.bytes (tiered storage; no effect in Sluice)."),
    key("log.local.retention.ms", LONG, Some("-2"), at_least(-2),
        "Default local.retention.ms (tiered storage; no effect in Sluice)."),
    key("log.message.timestamp.after.max.ms", LONG, Some("3600000"), at_least(0),
        "Default message.timestamp.after.max.ms."),
    key("log.message.timestamp.before.max.ms", LONG, Some(LONG_MAX), at_least(0),
        "Default message.timestamp.before.max.ms."),
    key("log.message.timestamp.type", STR, Some("CreateTime"), Check::OneOf(TIMESTAMP_TYPES),
        "Default message.timestamp.type: CreateTime or LogAppendTime."),
    key("log.preallocate", BOOL, Some("false"), Check::Bool,
        "Default preallocate: preallocate segment files."),
    key("log.retention.bytes", LONG, Some("-1"), ANY_INT,
        "Default retention.bytes: partition size limit (-1 = none)."),
    key("log.retention.check.interval.ms", LONG, Some("300000"), at_least(1),
        "How often segments are checked for deletion."),
    key("log.retention.hours", INT, Some("168"), ANY_INT,
        "Default retention time in hours (overridden by log.retention.minutes and log.retention.ms)."),
    key("log.retention.minutes", INT, None, ANY_INT,
        "Default retention time in minutes (overrides log.retention.hours)."),
    key("log.retention.ms", LONG, None, ANY_INT,
        "Default retention.ms (overrides minutes and hours; negative = unlimited)."),
    key("log.roll.hours", INT, Some("168"), at_least(1),
        "Default segment age before rolling, in hours (overridden by log.roll.ms)."),
    key("log.roll.jitter.hours", INT, Some("0"), at_least(0),
        "Default segment.jitter.ms, in hours (overridden by log.roll.jitter.ms)."),
    key("log.roll.jitter.ms", LONG, None, at_least(0),
        "Default segment.jitter.ms."),
    key("log.roll.ms", LONG, None, at_least(1),
        "Default segment.ms: segment age before rolling (overrides log.roll.hours)."),
    key("log.segment.bytes", INT, Some("1073741824"), at_least(14),
        "Default segment.bytes: size of a segment file."),
    key("log.segment.delete.delay.ms", LONG, Some("60000"), at_least(0),
        "Default file.delete.delay.ms."),
    key("message.max.bytes", INT, Some("1048588"), at_least(0),
        "Default max.message.bytes: largest record batch accepted."),
    key("metadata.log.max.record.bytes.between.snapshots", LONG, Some("20971520"), at_least(1),
        "Bytes of metadata log records after which the controller takes a new snapshot."),
    key("metadata.max.idle.interval.ms", INT, Some("500"), at_least(0),
        "How often the active controller appends a no-op record to the metadata log when idle (0 = never)."),
    key("metrics.listener", STR, Some("127.0.0.1:9644"), Check::Custom(check_metrics_listener),
        "host:port of the Prometheus metrics HTTP endpoint; empty disables it (Sluice)."),
    key("min.insync.replicas", INT, Some("1"), at_least(1),
        "Default min.insync.replicas for acks=all."),
    key("node.id", INT, Some("1"), between(0, MAX_BROKER_ID as i64),
        "Broker id (Sluice default 1; at most 2147482 because shard k is node node.id*1000+k)."),
    key("num.io.threads", INT, Some("8"), at_least(1),
        "Accepted for compatibility; meaningless under thread-per-core (see sluice.cores)."),
    key("num.network.threads", INT, Some("3"), at_least(1),
        "Accepted for compatibility; meaningless under thread-per-core (see sluice.cores)."),
    key("num.partitions", INT, Some("1"), at_least(1),
        "Default partition count of new topics."),
    key("num.recovery.threads.per.data.dir", INT, Some("2"), at_least(1),
        "Accepted for compatibility; each shard recovers its own partitions."),
    key("offset.metadata.max.bytes", INT, Some("4096"), at_least(0),
        "Longest metadata string an offset commit may carry (OFFSET_METADATA_TOO_LARGE beyond)."),
    key("offsets.retention.check.interval.ms", LONG, Some("600000"), at_least(1),
        "How often the group coordinators look for expired committed offsets."),
    key("offsets.retention.minutes", INT, Some("10080"), at_least(1),
        "Committed offsets of a group are dropped this long after the group became empty (for standalone commits: after the commit)."),
    key("offsets.topic.num.partitions", INT, Some("50"), at_least(1),
        "Partitions of __consumer_offsets (fixed once the topic exists)."),
    key("offsets.topic.replication.factor", SHORT, Some("3"), at_least(1),
        "Replication factor of __consumer_offsets, created once this many nodes (shards of live brokers) are live; until then FindCoordinator answers COORDINATOR_NOT_AVAILABLE. A single-node broker (no config file, no controller.quorum.voters) uses 1, as Kafka's quickstart server.properties does."),
    key("offsets.topic.segment.bytes", INT, Some("104857600"), at_least(14),
        "Segment size of __consumer_offsets (a compacted topic: closed segments are cleaned by the log cleaner)."),
    key("process.roles", LIST, Some("broker,controller"), Check::Custom(check_process_roles),
        "Roles of this process: broker, controller or broker,controller."),
    key("queued.max.request.bytes", LONG, Some("209715200"), ANY_INT,
        "Per shard: bytes of large requests being received or handled; over it the shard stops reading until requests drain. At least socket.request.max.bytes (one maximal request always gets through); <= 0 = unbounded."),
    key("replica.fetch.backoff.ms", INT, Some("1000"), at_least(0),
        "How long a follower's fetcher waits after a failed fetch before it fetches again."),
    key("replica.fetch.max.bytes", INT, Some("1048576"), at_least(0),
        "Bytes a follower asks for per partition in one fetch (a larger first batch is still returned)."),
    key("replica.fetch.min.bytes", INT, Some("1"), ANY_INT,
        "Bytes a follower's fetch waits for before the leader answers (up to replica.fetch.wait.max.ms)."),
    key("replica.fetch.response.max.bytes", INT, Some("10485760"), at_least(0),
        "Bytes a follower asks for in one whole fetch response."),
    key("replica.fetch.wait.max.ms", INT, Some("500"), ANY_INT,
        "Longest time the leader holds a follower's fetch waiting for replica.fetch.min.bytes; keep it below replica.lag.time.max.ms."),
    key("replica.lag.time.max.ms", LONG, Some("30000"), at_least(0),
        "A follower that has not caught up for this long leaves the ISR."),
    key("replica.selector.class", CLASS, None, Check::Custom(check_replica_selector),
        "How a leader picks the replica a consumer should fetch from (KIP-392): unset, the leader itself; org.apache.kafka.common.replica.RackAwareReplicaSelector, an in-sync replica in the consumer's client.rack (Fetch v11+ rack_id), the leader when it is in that rack or none is."),
    key("replication.quota.window.num", INT, Some("11"), at_least(1),
        "Samples over which the replication throttles measure their rate."),
    key("replication.quota.window.size.seconds", INT, Some("1"), at_least(1),
        "Length of each sample of the replication throttles' rate."),
    key("sasl.kerberos.kinit.cmd", STR, Some("/usr/bin/kinit"), Check::Any,
        "Kerberos kinit command (accepted for compatibility; Sluice has no GSSAPI mechanism)."),
    key("sasl.kerberos.min.time.before.relogin", LONG, Some("60000"), at_least(0),
        "Kerberos login thread sleep between refreshes, ms (accepted for compatibility; Sluice has no GSSAPI mechanism)."),
    key("sasl.kerberos.principal.to.local.rules", LIST, Some("DEFAULT"), Check::Any,
        "Kerberos principal-to-short-name rules (accepted for compatibility; Sluice has no GSSAPI mechanism)."),
    key("sasl.kerberos.service.name", STR, None, Check::Any,
        "Kerberos service principal name (accepted for compatibility; Sluice has no GSSAPI mechanism)."),
    key("sasl.kerberos.ticket.renew.jitter", DOUBLE, Some("0.05"), Check::Double { min: 0.0, max: 1.0 },
        "Kerberos ticket renewal jitter (accepted for compatibility; Sluice has no GSSAPI mechanism)."),
    key("sasl.kerberos.ticket.renew.window.factor", DOUBLE, Some("0.8"), Check::Double { min: 0.0, max: 1.0 },
        "Kerberos ticket renewal window factor (accepted for compatibility; Sluice has no GSSAPI mechanism)."),
    key("security.inter.broker.protocol", STR, Some("PLAINTEXT"), Check::OneOf(SECURITY_PROTOCOLS),
        "Protocol between brokers when inter.broker.listener.name is unset; only PLAINTEXT is supported."),
    key("share.coordinator.state.topic.min.isr", SHORT, Some("1"), at_least(1),
        "min.insync.replicas of __share_group_state (accepted for compatibility; Sluice default 1)."),
    key("share.coordinator.state.topic.replication.factor", SHORT, Some("1"), at_least(1),
        "Replication factor of __share_group_state (accepted for compatibility; Sluice default 1)."),
    key("sluice.cores", INT, Some("0"), at_least(0),
        "Number of shards, one pinned core each (0 = every online CPU)."),
    key("sluice.fsync.acks.all", BOOL, Some("false"), Check::Bool,
        "When true, an acks=all produce is acknowledged only after an fdatasync covering the batch."),
    key("sluice.max.partitions.per.broker", INT, Some("10000"), at_least(1),
        "Most partitions this broker holds. Each costs open files (3 for its active segment) and memory; 10000 stays well within a raised RLIMIT_NOFILE and a small broker's RAM, above Kafka's usual 4000 per broker. Over it, CreateTopics/CreatePartitions/auto-creation answer POLICY_VIOLATION."),
    key("sluice.max.partitions.per.shard", INT, Some("1000"), at_least(1),
        "Most partitions one shard (core) holds, as Redpanda's topic_partitions_per_shard: a core serves its partitions' appends, fetches, flushes and retention alone. Over it, CreateTopics/CreatePartitions/auto-creation answer POLICY_VIOLATION."),
    key("sluice.segment.files.open.per.shard", INT, Some("0"), at_least(0),
        "Log files of old (sealed) segments each shard keeps open in its LRU cache; others are opened on demand (0 = a quarter of RLIMIT_NOFILE shared among the shards, at most 4096)."),
    key("socket.receive.buffer.bytes", INT, Some("102400"), ANY_INT,
        "SO_RCVBUF of client sockets (-1 = OS default)."),
    key("socket.request.max.bytes", INT, Some("104857600"), at_least(1),
        "Largest request accepted; larger ones close the connection."),
    key("socket.send.buffer.bytes", INT, Some("102400"), ANY_INT,
        "SO_SNDBUF of client sockets (-1 = OS default)."),
    key("transaction.state.log.min.isr", INT, Some("1"), at_least(1),
        "min.insync.replicas of __transaction_state (Sluice default 1; Kafka's is 2)."),
    key("transaction.state.log.num.partitions", INT, Some("50"), at_least(1),
        "Partitions of __transaction_state (fixed once the topic exists)."),
    key("transaction.state.log.replication.factor", SHORT, Some("1"), at_least(1),
        "Replication factor of __transaction_state (Sluice default 1; Kafka's is 3)."),
    key("unclean.leader.election.enable", BOOL, Some("false"), Check::Bool,
        "Default unclean.leader.election.enable."),
];

/// What a single-node broker (`sluice start` with no config file and no
/// `controller.quorum.voters`) sets when the command line does not: the settings Kafka's
/// quickstart `server.properties` gives its one broker, so that it works as Kafka's does.
pub const SINGLE_NODE_SETTINGS: &[(&str, &str)] = &[("offsets.topic.replication.factor", "1")];

/// Keys that configure the same thing, highest precedence first (Kafka's broker synonyms).
const SYNONYM_GROUPS: &[&[&str]] = &[
    &["node.id", "broker.id"],
    &["log.dirs", "log.dir"],
    &[
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ],
    &["log.roll.ms", "log.roll.hours"],
    &["log.roll.jitter.ms", "log.roll.jitter.hours"],
    &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
];

fn find_key(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// Whether `name` is a broker key Sluice accepts.
#[cfg(test)]
pub(crate) fn is_known_key(name: &str) -> bool {
    find_key(name).is_some()
}

/// The built-in default of a broker key, if it has one.
pub(crate) fn default_of(name: &str) -> Option<&'static str> {
    find_key(name).and_then(|k| k.default)
}

/// The data type of a broker key, if Sluice knows it.
pub(crate) fn broker_config_type(name: &str) -> Option<ConfigType> {
    find_key(name).map(|k| k.ty)
}

/// Thread-pool sizes Kafka lets operators change at runtime (`DynamicThreadPool`); Sluice
/// accepts them, as it accepts them at start, and they mean nothing under thread-per-core.
const DYNAMIC_THREAD_POOL_KEYS: &[&str] = &[
    "background.threads",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
];

/// Log cleaner settings Kafka lets operators change at runtime (`LogCleaner`'s reconfigurable
/// configs that Sluice has); each shard's cleaner picks them up before its next cleaning.
/// `log.cleaner.threads` is accepted and means nothing: every shard has one cleaner.
const DYNAMIC_CLEANER_KEYS: &[&str] = &[
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.threads",
];

/// Replication throttles Kafka lets operators change at runtime (its `DynamicConfig.Broker`
/// quota keys, KIP-73); every shard applies a change with the metadata image that brings it.
const DYNAMIC_REPLICATION_QUOTA_KEYS: &[&str] = &[
    "follower.replication.throttled.rate",
    "leader.replication.throttled.rate",
];

/// Kerberos settings Kafka lets operators change at runtime (its `DynamicListenerConfig`);
/// Sluice has no GSSAPI mechanism, so they are stored and described but change nothing.
const DYNAMIC_SASL_KERBEROS_KEYS: &[&str] = &[
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.principal.to.local.rules",
    "sasl.kerberos.service.name",
    "sasl.kerberos.ticket.renew.jitter",
    "sasl.kerberos.ticket.renew.window.factor",
];

/// Whether AlterConfigs / IncrementalAlterConfigs may change broker key `name` at runtime.
/// These are Kafka's dynamic broker configs that Sluice has: the primary broker synonym of
/// every topic config (Kafka's `DynamicLogConfig.ReconfigurableConfigs`, e.g.
/// `log.retention.ms` but not `log.retention.hours`), the thread-pool sizes, the log
/// cleaner's settings, the replication throttles and the Kerberos settings.
pub fn is_dynamic_broker_config(name: &str) -> bool {
    DYNAMIC_THREAD_POOL_KEYS.contains(&name)
        || DYNAMIC_CLEANER_KEYS.contains(&name)
        || DYNAMIC_REPLICATION_QUOTA_KEYS.contains(&name)
        || DYNAMIC_SASL_KERBEROS_KEYS.contains(&name)
        || TOPIC_CONFIGS
            .iter()
            .any(|d| d.broker_synonyms.first() == Some(&name))
}

/// Validates the whole set of dynamic configs a BROKER resource would have after an
/// alteration and returns it in canonical form. The error is the `INVALID_CONFIG` message,
/// in Kafka's words where Kafka has them: an unknown key, keys that cannot change at runtime
/// (`Cannot update these configs dynamically: Set(log.dirs)`), or an invalid value
/// (`Invalid value x for configuration log.retention.ms: Not a number of type LONG`).
pub fn validate_dynamic_broker_configs(
    configs: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    if let Some(unknown) = configs.keys().find(|name| find_key(name).is_none()) {
        return Err(ConfigError::InvalidConfig(format!(
            "Unknown broker config name: {unknown}"
        )));
    }
    let static_only: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|name| !is_dynamic_broker_config(name))
        .collect();
    if !static_only.is_empty() {
        return Err(ConfigError::InvalidConfig(format!(
            "Cannot update these configs dynamically: Set({})",
            static_only.join(", ")
        )));
    }
    let mut canonical = BTreeMap::new();
    for (name, value) in configs {
        if let Some(k) = find_key(name) {
            k.check.validate(k.ty, value).map_err(|r| {
                ConfigError::InvalidConfig(format!(
                    "Invalid value {value} for configuration {name}: {}",
                    k.check.kafka_reason(k.ty, value, &r)
                ))
            })?;
            canonical.insert(name.clone(), normalize(k.ty, value));
        }
    }
    Ok(canonical)
}

/// One listener: `NAME://host:port`. Shard k of the broker serves it on `port + k`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, upper-cased (`PLAINTEXT`, `CLIENT`, …).
    pub name: String,
    /// Host or IP to bind / advertise; `0.0.0.0` when the configured host was empty.
    pub host: String,
    /// Base port (shard k uses `port + k`); 0 means an ephemeral port.
    pub port: u16,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// A `host:port` address (used for `metrics.listener`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `host:port` / `[v6]:port`, with the host possibly empty.
pub(super) fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None => host,
    };
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._:%".contains(c));
    host_ok.then(|| (host.to_string(), port))
}

/// Parses Kafka's listener list (`NAME://host:port,...`); names are upper-cased, an empty
/// host stays empty. Empty elements are skipped, like Kafka.
fn parse_listeners(value: &str) -> Result<Vec<Listener>, String> {
    parse_list(value)
        .iter()
        .map(|entry| {
            let parsed = entry.split_once("://").and_then(|(name, addr)| {
                let (host, port) = parse_host_port(addr)?;
                let name_ok = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                name_ok.then(|| Listener { name: name.to_ascii_uppercase(), host, port })
            });
            parsed.ok_or_else(|| {
                format!("cannot parse '{entry}' as a listener; expected NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092")
            })
        })
        .collect()
}

fn check_listeners(value: &str) -> Result<(), String> {
    parse_listeners(value).map(|_| ())
}

/// Parses `listener.security.protocol.map` into (NAME, PROTOCOL) pairs.
fn parse_protocol_map(value: &str) -> Result<Vec<(String, String)>, String> {
    parse_list(value)
        .iter()
        .map(|entry| match entry.split_once(':') {
            Some((name, proto)) if !name.trim().is_empty() => {
                let proto = proto.trim().to_ascii_uppercase();
                if SECURITY_PROTOCOLS.contains(&proto.as_str()) {
                    Ok((name.trim().to_ascii_uppercase(), proto))
                } else {
                    Err(format!(
                        "unknown security protocol '{}' in '{entry}'; expected one of: {}",
                        proto,
                        SECURITY_PROTOCOLS.join(", ")
                    ))
                }
            }
            _ => Err(format!(
                "cannot parse '{entry}'; expected NAME:PROTOCOL pairs, e.g. PLAINTEXT:PLAINTEXT"
            )),
        })
        .collect()
}

fn check_protocol_map(value: &str) -> Result<(), String> {
    parse_protocol_map(value).map(|_| ())
}

fn check_host_ports(value: &str) -> Result<(), String> {
    match parse_list(value)
        .iter()
        .find(|e| parse_host_port(e).is_none_or(|(h, _)| h.is_empty()))
    {
        Some(bad) => Err(format!(
            "cannot parse '{bad}'; expected a comma-separated list of host:port"
        )),
        None => Ok(()),
    }
}

fn check_cluster_id(value: &str) -> Result<(), String> {
    let v = value.trim();
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err("expected a cluster id made of letters, digits, '-' and '_' (such as one from `kafka-storage random-uuid`)".to_string())
    }
}

fn check_replica_selector(value: &str) -> Result<(), String> {
    ReplicaSelector::from_class_name(value).map(|_| ())
}

fn check_metrics_listener(value: &str) -> Result<(), String> {
    let v = value.trim();
    if v.is_empty() || parse_host_port(v).is_some_and(|(h, _)| !h.is_empty()) {
        Ok(())
    } else {
        Err("expected host:port (e.g. 127.0.0.1:9644), or empty to disable metrics".to_string())
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    File { file: String, line: usize },
    Override(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "line {line} of {file}"),
            Origin::Override(arg) => write!(f, "from --set {arg}"),
        }
    }
}

/// The broker's configuration, typed. Built by [`BrokerConfig::load`].
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id` / `broker.id`: this broker's id; shard k is node `broker_id*1000 + k`.
    pub broker_id: i32,
    /// `listeners`: where to listen (all of them, controller listeners included).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`: what clients are told (never controller listeners).
    pub advertised_listeners: Vec<Listener>,
    /// `inter.broker.listener.name` (or the one named after `security.inter.broker.protocol`).
    pub inter_broker_listener_name: String,
    /// `controller.listener.names`, upper-cased.
    pub controller_listener_names: Vec<String>,
    /// The listener of `listeners` named first in `controller.listener.names`: where this
    /// process's controller listens to the quorum. `None` when no such listener is configured.
    pub controller_listener: Option<Listener>,
    /// `process.roles`.
    pub process_roles: ProcessRoles,
    /// `controller.quorum.voters`; empty means a one-node quorum of this process alone.
    pub controller_quorum_voters: Vec<QuorumVoter>,
    /// `controller.quorum.election.timeout.ms`.
    pub controller_quorum_election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms`.
    pub controller_quorum_fetch_timeout_ms: u64,
    /// `controller.quorum.request.timeout.ms`.
    pub controller_quorum_request_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: u64,
    /// `broker.rack`, if configured.
    pub broker_rack: Option<String>,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub metadata_log_max_record_bytes_between_snapshots: u64,
    /// `metadata.max.idle.interval.ms` (0 = no no-op records).
    pub metadata_max_idle_interval_ms: u64,
    /// `log.dirs` / `log.dir`: data directories.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions`: default partition count of new topics.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `log.roll.ms` / `log.roll.hours`, in ms.
    pub log_roll_ms: i64,
    /// `log.roll.jitter.ms` / `log.roll.jitter.hours`, in ms.
    pub log_roll_jitter_ms: i64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: u32,
    /// `log.index.size.max.bytes`.
    pub log_index_size_max_bytes: u32,
    /// `log.flush.interval.messages`.
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms` as set; `None` means use `log_flush_scheduler_interval_ms`.
    pub log_flush_interval_ms: Option<i64>,
    /// `log.flush.scheduler.interval.ms` (`i64::MAX` = never).
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.retention.ms` / `.minutes` / `.hours`, in ms; -1 = unlimited.
    pub log_retention_ms: i64,
    /// `log.retention.bytes`; -1 = unlimited.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: i64,
    /// `log.cleanup.policy`.
    pub log_cleanup_policy: CleanupPolicy,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.dedupe.buffer.size`: key-map memory of all the shards' cleaners together.
    pub log_cleaner_dedupe_buffer_size: u64,
    /// `log.cleaner.io.max.bytes.per.second` (`f64::MAX`: unlimited).
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`.
    pub log_cleaner_backoff_ms: i64,
    /// `log.message.timestamp.type`.
    pub log_message_timestamp_type: TimestampType,
    /// `log.message.timestamp.before.max.ms`.
    pub log_message_timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms`.
    pub log_message_timestamp_after_max_ms: i64,
    /// `message.max.bytes`.
    pub message_max_bytes: u32,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: u32,
    /// `queued.max.request.bytes`: per-shard budget for request bytes (`None`: unbounded).
    pub queued_max_request_bytes: Option<u64>,
    /// `connections.max.idle.ms` (`None`: connections are never closed for idleness).
    pub connections_max_idle_ms: Option<u64>,
    /// `socket.send.buffer.bytes` (-1 = OS default).
    pub socket_send_buffer_bytes: i32,
    /// `socket.receive.buffer.bytes` (-1 = OS default).
    pub socket_receive_buffer_bytes: i32,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`.
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub transaction_state_log_min_isr: i32,
    /// `group.max.size`.
    pub group_max_size: i32,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: i32,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `compression.type`.
    pub compression_type: CompressionType,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `replica.selector.class`: whether consumers are sent to a replica in their rack.
    pub replica_selector: ReplicaSelector,
    /// `replica.fetch.wait.max.ms`.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: i32,
    /// `leader.replication.throttled.rate` in the file or on the command line (bytes per
    /// second, `i64::MAX`: unthrottled); a dynamic value wins over it.
    pub leader_replication_throttled_rate: i64,
    /// `follower.replication.throttled.rate`, as `leader_replication_throttled_rate`.
    pub follower_replication_throttled_rate: i64,
    /// `replication.quota.window.num`.
    pub replication_quota_window_num: u32,
    /// `replication.quota.window.size.seconds`.
    pub replication_quota_window_size_seconds: u32,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: i64,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `cluster.id`, if configured.
    pub cluster_id: Option<String>,
    /// `sluice.cores`: number of shards (0 = every online CPU).
    pub cores: usize,
    /// `sluice.fsync.acks.all`: acks=all waits for an fdatasync covering the batch.
    pub fsync_acks_all: bool,
    /// `sluice.max.partitions.per.broker`: the most partitions this broker holds (open files and
    /// memory grow with each).
    pub max_partitions_per_broker: u64,
    /// `sluice.max.partitions.per.shard`: the most partitions one shard holds (one core serves
    /// them all).
    pub max_partitions_per_shard: u64,
    /// `sluice.segment.files.open.per.shard`: size of each shard's cache of sealed segments'
    /// log files (0 = derived from `RLIMIT_NOFILE` at start, see `fd_budget`).
    pub segment_files_open_per_shard: usize,
    /// `metrics.listener`: Prometheus endpoint, `None` when disabled.
    pub metrics_listener: Option<HostPort>,
    /// Keys set by the file or the overrides (and, for a single-node broker, the
    /// [`SINGLE_NODE_SETTINGS`] they leave unset), with their (canonical) values.
    explicit: BTreeMap<String, String>,
}

/// Read access to the validated settings, falling back to defaults for unset keys and for keys
/// whose value was rejected (so that later checks can still run and report their own problems).
struct Values<'a> {
    set: &'a BTreeMap<String, String>,
    bad: &'a BTreeSet<String>,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        if !self.bad.contains(name) {
            if let Some(v) = self.set.get(name) {
                return Some(v);
            }
        }
        default_of(name)
    }

    /// True when the key was set (to a valid value) by the file or the overrides.
    fn is_set(&self, name: &str) -> bool {
        self.set.contains_key(name) && !self.bad.contains(name)
    }

    /// True when any of the keys was rejected; checks that combine keys skip in that case.
    fn any_bad(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.bad.contains(*n))
    }

    fn opt_int(&self, name: &str) -> Option<i64> {
        let ty = find_key(name).map_or(ConfigType::Long, |k| k.ty);
        self.get(name).and_then(|v| parse_int(ty, v))
    }

    fn int(&self, name: &str) -> i64 {
        self.opt_int(name).unwrap_or(0)
    }

    fn bool(&self, name: &str) -> bool {
        self.get(name).and_then(parse_bool).unwrap_or(false)
    }

    fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// Milliseconds from a ms / minutes / hours synonym group, ms winning.
fn millis(v: &Values<'_>, ms: &str, minutes: Option<&str>, hours: &str) -> i64 {
    if v.is_set(ms) {
        return v.int(ms);
    }
    if let Some(m) = minutes.filter(|m| v.is_set(m)) {
        return v.int(m).saturating_mul(60_000);
    }
    v.int(hours).saturating_mul(3_600_000)
}

impl BrokerConfig {
    /// Loads the configuration from an optional properties file and `key=value` overrides
    /// (from `--set`; they win over the file). Every unknown key, invalid value and
    /// inconsistency is reported, all together, in [`ConfigError::Invalid`].
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut problems = Vec::new();
        // key -> (value, where, order: file lines first, then overrides) of the winning setting
        let mut settings: BTreeMap<String, (String, Origin, (u8, usize))> = BTreeMap::new();
        if let Some(path) = file {
            let file_name = path.display().to_string();
            for (k, v, line) in properties::read_properties(path)? {
                settings.insert(
                    k,
                    (
                        v,
                        Origin::File {
                            file: file_name.clone(),
                            line,
                        },
                        (0, line),
                    ),
                );
            }
        }
        for (i, arg) in overrides.iter().enumerate() {
            match arg.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    settings.insert(
                        k.trim().to_string(),
                        (v.trim().to_string(), Origin::Override(arg.clone()), (1, i)),
                    );
                }
                _ => problems.push(format!("invalid override '{arg}': expected key=value")),
            }
        }

        let mut explicit = BTreeMap::new();
        let mut bad = BTreeSet::new();
        let mut in_order: Vec<_> = settings.iter().collect();
        in_order.sort_by_key(|(_, (_, _, order))| *order);
        for (name, (value, origin, _)) in in_order {
            let Some(k) = find_key(name) else {
                let hint = suggestion(name)
                    .map(|s| format!("; did you mean '{s}'?"))
                    .unwrap_or_default();
                problems.push(format!("unknown config key '{name}' ({origin}){hint}"));
                continue;
            };
            if let Err(r) = k.check.validate(k.ty, value) {
                problems.push(format!(
                    "invalid value '{value}' for '{name}' ({origin}): {}",
                    k.check.sluice_reason(k.ty, &r)
                ));
                bad.insert(name.clone());
            }
            explicit.insert(name.clone(), normalize(k.ty, value));
        }
        let single_node = file.is_none()
            && explicit
                .get("controller.quorum.voters")
                .is_none_or(|voters| voters.trim().is_empty());
        if single_node {
            for (name, value) in SINGLE_NODE_SETTINGS {
                explicit
                    .entry(name.to_string())
                    .or_insert_with(|| value.to_string());
            }
        }
        let v = Values {
            set: &explicit,
            bad: &bad,
        };
        let at = |name: &str| {
            settings
                .get(name)
                .map(|(_, o, _)| format!(" ({o})"))
                .unwrap_or_default()
        };

        // node.id / broker.id
        if v.is_set("node.id") && v.is_set("broker.id") && v.int("node.id") != v.int("broker.id") {
            problems.push(format!(
                "'broker.id' ({}) and 'node.id' ({}) are synonyms; when both are set they must match",
                v.int("broker.id"),
                v.int("node.id")
            ));
        }
        let broker_id = if v.is_set("node.id") || !v.is_set("broker.id") {
            v.int("node.id")
        } else {
            v.int("broker.id")
        };

        let (
            listeners,
            advertised_listeners,
            inter_broker_listener_name,
            controller_listener_names,
        ) = listener_settings(&v, &at, &mut problems);

        // log.dirs / log.dir
        let dirs_key = if v.is_set("log.dirs") {
            "log.dirs"
        } else {
            "log.dir"
        };
        let dirs = parse_list(v.str(dirs_key));
        if dirs.is_empty() {
            problems.push(format!(
                "at least one log directory must be defined via log.dirs or log.dir{}",
                at(dirs_key)
            ));
        }
        let unique: BTreeSet<&String> = dirs.iter().collect();
        if unique.len() != dirs.len() {
            problems.push(format!(
                "'{dirs_key}' lists the same directory twice{}",
                at(dirs_key)
            ));
        }

        if !v.any_bad(&[
            "group.min.session.timeout.ms",
            "group.max.session.timeout.ms",
        ]) && v.int("group.max.session.timeout.ms") < v.int("group.min.session.timeout.ms")
        {
            problems.push(
                "'group.max.session.timeout.ms' must be greater than or equal to 'group.min.session.timeout.ms'"
                    .to_string(),
            );
        }

        // Kafka's rule: a follower's fetch must not wait long enough to fall out of the ISR.
        if !v.any_bad(&["replica.fetch.wait.max.ms", "replica.lag.time.max.ms"])
            && v.int("replica.fetch.wait.max.ms") > v.int("replica.lag.time.max.ms")
        {
            problems.push(format!(
                "'replica.fetch.wait.max.ms' ({}) should always be less than or equal to 'replica.lag.time.max.ms' ({}) to prevent frequent changes in ISR{}",
                v.int("replica.fetch.wait.max.ms"),
                v.int("replica.lag.time.max.ms"),
                at("replica.fetch.wait.max.ms")
            ));
        }

        // Kafka's rule: a bounded queue must hold at least one maximal request.
        if !v.any_bad(&["queued.max.request.bytes", "socket.request.max.bytes"])
            && v.int("queued.max.request.bytes") > 0
            && v.int("queued.max.request.bytes") < v.int("socket.request.max.bytes")
        {
            problems.push(format!(
                "'queued.max.request.bytes' ({}) must be at least 'socket.request.max.bytes' ({}), or <= 0 for unbounded{}",
                v.int("queued.max.request.bytes"),
                v.int("socket.request.max.bytes"),
                at("queued.max.request.bytes")
            ));
        }

        let process_roles = ProcessRoles::parse(v.str("process.roles")).unwrap_or(ProcessRoles {
            broker: true,
            controller: true,
        });
        let controller_quorum_voters =
            parse_voters(v.str("controller.quorum.voters")).unwrap_or_default();
        let controller_listener = find_controller_listener(&listeners, &controller_listener_names);
        if !v.any_bad(&[
            "node.id",
            "broker.id",
            "process.roles",
            "controller.quorum.voters",
            "listeners",
            "controller.listener.names",
        ]) {
            problems.extend(check_quorum(
                &QuorumSettings {
                    node_id: to_i32(broker_id),
                    roles: process_roles,
                    voters: &controller_quorum_voters,
                    listeners: &listeners,
                    controller_listener_names: &controller_listener_names,
                    controller_listener: controller_listener.as_ref(),
                },
                &at,
            ));
        }

        let ports_checkable = !v.any_bad(&["listeners", "advertised.listeners"]);
        let metrics = v.str("metrics.listener").trim();
        let metrics_listener = parse_host_port(metrics).map(|(host, port)| HostPort { host, port });

        let config = BrokerConfig {
            broker_id: i32::try_from(broker_id).unwrap_or(1),
            listeners,
            advertised_listeners,
            inter_broker_listener_name,
            controller_listener_names,
            controller_listener,
            process_roles,
            controller_quorum_voters,
            controller_quorum_election_timeout_ms: to_u64(
                v.int("controller.quorum.election.timeout.ms"),
            ),
            controller_quorum_fetch_timeout_ms: to_u64(v.int("controller.quorum.fetch.timeout.ms")),
            controller_quorum_request_timeout_ms: to_u64(
                v.int("controller.quorum.request.timeout.ms"),
            ),
            broker_heartbeat_interval_ms: to_u64(v.int("broker.heartbeat.interval.ms")),
            broker_session_timeout_ms: to_u64(v.int("broker.session.timeout.ms")),
            broker_rack: v
                .get("broker.rack")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            metadata_log_max_record_bytes_between_snapshots: to_u64(
                v.int("metadata.log.max.record.bytes.between.snapshots"),
            ),
            metadata_max_idle_interval_ms: to_u64(v.int("metadata.max.idle.interval.ms")),
            log_dirs: dirs.into_iter().map(PathBuf::from).collect(),
            num_partitions: to_i32(v.int("num.partitions")),
            default_replication_factor: i16::try_from(v.int("default.replication.factor"))
                .unwrap_or(1),
            auto_create_topics_enable: v.bool("auto.create.topics.enable"),
            delete_topic_enable: v.bool("delete.topic.enable"),
            log_segment_bytes: u64::try_from(v.int("log.segment.bytes")).unwrap_or(0),
            log_roll_ms: millis(&v, "log.roll.ms", None, "log.roll.hours"),
            log_roll_jitter_ms: millis(&v, "log.roll.jitter.ms", None, "log.roll.jitter.hours"),
            log_index_interval_bytes: u32::try_from(v.int("log.index.interval.bytes")).unwrap_or(0),
            log_index_size_max_bytes: u32::try_from(v.int("log.index.size.max.bytes")).unwrap_or(0),
            log_flush_interval_messages: u64::try_from(v.int("log.flush.interval.messages"))
                .unwrap_or(u64::MAX),
            log_flush_interval_ms: v.opt_int("log.flush.interval.ms"),
            log_flush_scheduler_interval_ms: v.int("log.flush.scheduler.interval.ms"),
            log_retention_ms: millis(
                &v,
                "log.retention.ms",
                Some("log.retention.minutes"),
                "log.retention.hours",
            )
            .max(-1),
            log_retention_bytes: v.int("log.retention.bytes"),
            log_retention_check_interval_ms: v.int("log.retention.check.interval.ms"),
            log_cleanup_policy: CleanupPolicy::from_list(v.str("log.cleanup.policy")),
            log_cleaner_enable: v.bool("log.cleaner.enable"),
            log_cleaner_dedupe_buffer_size: u64::try_from(v.int("log.cleaner.dedupe.buffer.size"))
                .unwrap_or(0),
            log_cleaner_io_max_bytes_per_second: v
                .str("log.cleaner.io.max.bytes.per.second")
                .trim()
                .parse()
                .unwrap_or(f64::MAX),
            log_cleaner_backoff_ms: v.int("log.cleaner.backoff.ms"),
            log_message_timestamp_type: TimestampType::from_name(
                v.str("log.message.timestamp.type"),
            )
            .unwrap_or(TimestampType::CreateTime),
            log_message_timestamp_before_max_ms: v.int("log.message.timestamp.before.max.ms"),
            log_message_timestamp_after_max_ms: v.int("log.message.timestamp.after.max.ms"),
            message_max_bytes: u32::try_from(v.int("message.max.bytes")).unwrap_or(0),
            socket_request_max_bytes: u32::try_from(v.int("socket.request.max.bytes")).unwrap_or(0),
            queued_max_request_bytes: u64::try_from(v.int("queued.max.request.bytes"))
                .ok()
                .filter(|&b| b > 0),
            connections_max_idle_ms: u64::try_from(v.int("connections.max.idle.ms")).ok(),
            socket_send_buffer_bytes: to_i32(v.int("socket.send.buffer.bytes")),
            socket_receive_buffer_bytes: to_i32(v.int("socket.receive.buffer.bytes")),
            offsets_topic_num_partitions: to_i32(v.int("offsets.topic.num.partitions")),
            offsets_topic_replication_factor: to_i16(v.int("offsets.topic.replication.factor")),
            transaction_state_log_num_partitions: to_i32(
                v.int("transaction.state.log.num.partitions"),
            ),
            transaction_state_log_replication_factor: to_i16(
                v.int("transaction.state.log.replication.factor"),
            ),
            transaction_state_log_min_isr: to_i32(v.int("transaction.state.log.min.isr")),
            group_max_size: to_i32(v.int("group.max.size")),
            offset_metadata_max_bytes: to_i32(v.int("offset.metadata.max.bytes")),
            offsets_retention_ms: v.int("offsets.retention.minutes").saturating_mul(60_000),
            offsets_retention_check_interval_ms: v.int("offsets.retention.check.interval.ms"),
            offsets_topic_segment_bytes: to_i32(v.int("offsets.topic.segment.bytes")),
            group_initial_rebalance_delay_ms: to_i32(v.int("group.initial.rebalance.delay.ms")),
            group_min_session_timeout_ms: to_i32(v.int("group.min.session.timeout.ms")),
            group_max_session_timeout_ms: to_i32(v.int("group.max.session.timeout.ms")),
            compression_type: CompressionType::from_name(v.str("compression.type"))
                .unwrap_or(CompressionType::Producer),
            min_insync_replicas: to_i32(v.int("min.insync.replicas")),
            unclean_leader_election_enable: v.bool("unclean.leader.election.enable"),
            replica_lag_time_max_ms: v.int("replica.lag.time.max.ms"),
            replica_selector: v
                .get("replica.selector.class")
                .and_then(|name| ReplicaSelector::from_class_name(name).ok())
                .unwrap_or(ReplicaSelector::Leader),
            replica_fetch_wait_max_ms: to_i32(v.int("replica.fetch.wait.max.ms")),
            replica_fetch_min_bytes: to_i32(v.int("replica.fetch.min.bytes")),
            replica_fetch_max_bytes: to_i32(v.int("replica.fetch.max.bytes")),
            replica_fetch_response_max_bytes: to_i32(v.int("replica.fetch.response.max.bytes")),
            replica_fetch_backoff_ms: to_i32(v.int("replica.fetch.backoff.ms")),
            leader_replication_throttled_rate: v.int("leader.replication.throttled.rate"),
            follower_replication_throttled_rate: v.int("follower.replication.throttled.rate"),
            replication_quota_window_num: u32::try_from(v.int("replication.quota.window.num"))
                .unwrap_or(1),
            replication_quota_window_size_seconds: u32::try_from(
                v.int("replication.quota.window.size.seconds"),
            )
            .unwrap_or(1),
            auto_leader_rebalance_enable: v.bool("auto.leader.rebalance.enable"),
            leader_imbalance_check_interval_seconds: v
                .int("leader.imbalance.check.interval.seconds"),
            leader_imbalance_per_broker_percentage: to_i32(
                v.int("leader.imbalance.per.broker.percentage"),
            ),
            cluster_id: v.get("cluster.id").map(|s| s.trim().to_string()),
            cores: usize::try_from(v.int("sluice.cores")).unwrap_or(0),
            fsync_acks_all: v.bool("sluice.fsync.acks.all"),
            max_partitions_per_broker: u64::try_from(v.int("sluice.max.partitions.per.broker"))
                .unwrap_or(1),
            max_partitions_per_shard: u64::try_from(v.int("sluice.max.partitions.per.shard"))
                .unwrap_or(1),
            segment_files_open_per_shard: usize::try_from(
                v.int("sluice.segment.files.open.per.shard"),
            )
            .unwrap_or(0),
            metrics_listener,
            explicit,
        };
        if config.cores > 0 && ports_checkable {
            if let Err(ConfigError::Invalid { problems: p }) =
                config.check_shard_ports(config.cores)
            {
                problems.extend(p);
            }
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// The listener the shards serve clients on: the first listener of `listeners` that is not
    /// a controller listener. Shard k listens on its `port + k`.
    pub fn client_listener(&self) -> &Listener {
        self.listeners
            .iter()
            .find(|l| !self.controller_listener_names.contains(&l.name))
            .expect("load rejects a configuration whose listeners are all controller listeners")
    }

    /// Checks that every broker listener's port range `port .. port+shards` (shard k serves
    /// `port + k`) fits below 65536 and that no two listeners' ports collide. Controller
    /// listeners are single ports: they are not multiplied per shard. `load` runs this when
    /// `sluice.cores` is set; call it once the shard count is known when `cores` is 0.
    pub fn check_shard_ports(&self, shards: usize) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let shards_u32 = u32::try_from(shards.max(1)).unwrap_or(u32::MAX);
        let span = |l: &Listener| {
            if self.controller_listener_names.contains(&l.name) {
                1
            } else {
                shards_u32
            }
        };
        for (what, list) in [
            ("listeners", &self.listeners),
            ("advertised.listeners", &self.advertised_listeners),
        ] {
            for l in list.iter().filter(|l| l.port != 0) {
                let last = u32::from(l.port).saturating_add(span(l) - 1);
                if last > u32::from(u16::MAX) {
                    problems.push(format!(
                        "{what}: {l} needs ports {}..={last} for {shards} shards (shard k uses port+k), beyond 65535",
                        l.port
                    ));
                }
            }
        }
        let mut ranges: Vec<(u32, u32, &Listener)> = Vec::new();
        for l in self.listeners.iter().filter(|l| l.port != 0) {
            let lo = u32::from(l.port);
            let hi = lo.saturating_add(span(l) - 1);
            if let Some((_, _, other)) = ranges.iter().find(|(a, b, _)| lo <= *b && *a <= hi) {
                let controller = [*other, l]
                    .into_iter()
                    .find(|x| self.controller_listener_names.contains(&x.name));
                match controller {
                    Some(c) => problems.push(format!(
                        "listeners: the controller listener {c} (controller.listener.names) uses a port of the shards' ports of {} with {shards} shards (shard k uses port+k); move it out of that range",
                        if std::ptr::eq(c, l) { *other } else { l }
                    )),
                    None => problems.push(format!(
                        "listeners: the ports of {other} and {l} overlap with {shards} shards (shard k uses port+k); space them further apart"
                    )),
                }
            }
            ranges.push((lo, hi, l));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// The keys the file and the overrides set, with their values in canonical form; for a
    /// single-node broker also the [`SINGLE_NODE_SETTINGS`] they leave unset (described as
    /// static broker configs, as the quickstart file's are in Kafka).
    pub fn explicitly_set(&self) -> &BTreeMap<String, String> {
        &self.explicit
    }

    /// Describes every broker key of this broker (DescribeConfigs for BROKER "<id>"): value and
    /// source (dynamic per-broker, dynamic cluster default, file / overrides, or default), type,
    /// one-line documentation, and synonyms in Kafka's order — this key and its lower-precedence
    /// synonyms as set dynamically for this broker, then as dynamic cluster defaults, then
    /// statically, then their defaults. The source is that of the first synonym. Only the
    /// dynamic keys ([`is_dynamic_broker_config`]) are writable; none is sensitive.
    pub fn describe(&self, dynamic: &DynamicBrokerConfigs) -> Vec<ConfigEntry> {
        let layers = broker_layers(self, dynamic);
        BROKER_KEYS
            .iter()
            .map(|k| {
                let mut synonyms = Vec::new();
                for (map, source) in layers {
                    for name in synonym_group(k.name) {
                        if let Some(v) = map.and_then(|m| m.get(*name)) {
                            synonyms.push((name.to_string(), Some(v.clone()), source));
                        }
                    }
                }
                for name in synonym_group(k.name) {
                    if let Some(d) = default_of(name) {
                        synonyms.push((
                            name.to_string(),
                            Some(d.to_string()),
                            ConfigSource::DefaultConfig,
                        ));
                    }
                }
                let source = synonyms
                    .first()
                    .map_or(ConfigSource::DefaultConfig, |(_, _, source)| *source);
                let value = if matches!(k.name, "node.id" | "broker.id") {
                    // node.id and broker.id always show the id in use, whichever one set it.
                    Some(self.broker_id.to_string())
                } else {
                    layers
                        .iter()
                        .find_map(|(map, _)| map.and_then(|m| m.get(k.name)).cloned())
                        .or_else(|| k.default.map(str::to_string))
                };
                ConfigEntry {
                    name: k.name.to_string(),
                    value,
                    source,
                    read_only: !is_dynamic_broker_config(k.name),
                    sensitive: false,
                    config_type: k.ty,
                    documentation: Some(k.doc.to_string()),
                    synonyms,
                }
            })
            .collect()
    }
}

/// Describes the cluster-wide dynamic broker defaults that are set (DescribeConfigs for
/// BROKER ""), each with source `DYNAMIC_DEFAULT_BROKER_CONFIG` and, as synonyms, the dynamic
/// defaults of it and its lower-precedence synonyms.
pub fn describe_dynamic_defaults(dynamic: &DynamicBrokerConfigs) -> Vec<ConfigEntry> {
    let defaults = &dynamic.cluster_default;
    BROKER_KEYS
        .iter()
        .filter_map(|k| {
            let value = defaults.get(k.name)?;
            let synonyms = synonym_group(k.name)
                .iter()
                .filter_map(|name| {
                    defaults.get(*name).map(|v| {
                        (
                            name.to_string(),
                            Some(v.clone()),
                            ConfigSource::DynamicDefaultBrokerConfig,
                        )
                    })
                })
                .collect();
            Some(ConfigEntry {
                name: k.name.to_string(),
                value: Some(value.clone()),
                source: ConfigSource::DynamicDefaultBrokerConfig,
                read_only: !is_dynamic_broker_config(k.name),
                sensitive: false,
                config_type: k.ty,
                documentation: Some(k.doc.to_string()),
                synonyms,
            })
        })
        .collect()
}

/// `name` and its lower-precedence synonyms (`log.retention.minutes` → minutes, hours).
fn synonym_group(name: &'static str) -> &'static [&'static str] {
    for group in SYNONYM_GROUPS {
        if let Some(from) = group.iter().position(|n| *n == name) {
            return &group[from..];
        }
    }
    match find_key(name) {
        Some(k) => std::slice::from_ref(&k.name),
        None => &[],
    }
}

fn to_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A validated non-negative integer setting as u64 (0 if a bad value slipped through).
fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i16(v: i64) -> i16 {
    i16::try_from(v).unwrap_or(i16::MAX)
}

/// Listener-related keys: parses and cross-checks `listeners`, `advertised.listeners`,
/// `listener.security.protocol.map`, `controller.listener.names` and the inter-broker listener.
/// Returns (listeners, advertised listeners, inter-broker listener name, controller names).
fn listener_settings(
    v: &Values<'_>,
    at: &dyn Fn(&str) -> String,
    problems: &mut Vec<String>,
) -> (Vec<Listener>, Vec<Listener>, String, Vec<String>) {
    let controller_names: Vec<String> = parse_list(v.str("controller.listener.names"))
        .iter()
        .map(|n| n.to_ascii_uppercase())
        .collect();
    let mut protocols: BTreeMap<String, String> =
        parse_protocol_map(v.str("listener.security.protocol.map"))
            .unwrap_or_default()
            .into_iter()
            .collect();
    if !v.is_set("listener.security.protocol.map") {
        // Like Kafka 4, controller listeners missing from the default map are PLAINTEXT.
        for n in &controller_names {
            protocols
                .entry(n.clone())
                .or_insert_with(|| "PLAINTEXT".to_string());
        }
    }
    let map_ok = !v.any_bad(&[
        "listener.security.protocol.map",
        "controller.listener.names",
    ]);

    let mut listeners = parse_listeners(v.str("listeners")).unwrap_or_default();
    for l in listeners.iter_mut() {
        if l.host.is_empty() {
            l.host = "0.0.0.0".to_string();
        }
    }
    let check_protocols = |key: &str, list: &[Listener], problems: &mut Vec<String>| {
        for l in list {
            match protocols.get(&l.name) {
                None => problems.push(format!(
                    "no security protocol defined for listener {} in '{key}'{}; add it to listener.security.protocol.map",
                    l.name,
                    at(key)
                )),
                Some(p) if p != "PLAINTEXT" => problems.push(format!(
                    "listener {} in '{key}'{} uses security protocol {p}, which Sluice does not support yet; only PLAINTEXT is supported for now",
                    l.name,
                    at(key)
                )),
                Some(_) => {}
            }
        }
    };
    let listeners_ok = !v.any_bad(&["listeners"]);
    if listeners_ok {
        if listeners.is_empty() {
            problems.push(format!(
                "'listeners' must name at least one listener{}",
                at("listeners")
            ));
        }
        let mut names = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for l in &listeners {
            if !names.insert(l.name.clone()) {
                problems.push(format!(
                    "each listener must have a different name, but {} appears twice in 'listeners'{}",
                    l.name,
                    at("listeners")
                ));
            }
            if l.port != 0 && !ports.insert(l.port) {
                problems.push(format!(
                    "each listener must have a different port, but {} is used twice in 'listeners'{}",
                    l.port,
                    at("listeners")
                ));
            }
        }
        if map_ok {
            check_protocols("listeners", &listeners, problems);
        }
    }

    let advertised = if v.is_set("advertised.listeners") {
        let list = parse_listeners(v.str("advertised.listeners")).unwrap_or_default();
        let key = "advertised.listeners";
        for l in &list {
            if l.host == "0.0.0.0" || l.host == "::" {
                problems.push(format!(
                    "'{key}' cannot use the nonroutable meta-address {}{}; use a routable IP address",
                    l.host,
                    at(key)
                ));
            }
            if listeners_ok && !listeners.iter().any(|x| x.name == l.name) {
                problems.push(format!(
                    "'{key}' names listener {}{}, which is not defined in 'listeners' ({})",
                    l.name,
                    at(key),
                    listeners
                        .iter()
                        .map(|x| x.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if map_ok {
            check_protocols(key, &list, problems);
        }
        // Controller listeners may be advertised (Kafka 4 controllers advertise themselves
        // this way) but clients are only ever given broker listeners.
        let brokers: Vec<Listener> = list
            .into_iter()
            .filter(|l| !controller_names.contains(&l.name))
            .map(|mut l| {
                if l.host.is_empty() {
                    l.host = "127.0.0.1".to_string();
                }
                l
            })
            .collect();
        if brokers.is_empty() {
            problems.push(format!(
                "'{key}'{} must contain at least one listener that is not a controller listener",
                at(key)
            ));
        }
        brokers
    } else {
        let list: Vec<Listener> = listeners
            .iter()
            .filter(|l| !controller_names.contains(&l.name))
            .map(|l| {
                let host = if matches!(l.host.as_str(), "0.0.0.0" | "::") {
                    "127.0.0.1".to_string()
                } else {
                    l.host.clone()
                };
                Listener {
                    name: l.name.clone(),
                    host,
                    port: l.port,
                }
            })
            .collect();
        if listeners_ok && !listeners.is_empty() && list.is_empty() {
            problems.push(
                "every listener in 'listeners' is a controller listener (controller.listener.names); clients need at least one other"
                    .to_string(),
            );
        }
        list
    };

    // Inter-broker listener: explicit name, or the listener named after the protocol.
    if v.is_set("inter.broker.listener.name") && v.is_set("security.inter.broker.protocol") {
        problems.push(
            "only one of 'inter.broker.listener.name' and 'security.inter.broker.protocol' should be set".to_string(),
        );
    }
    let protocol = v.str("security.inter.broker.protocol").trim().to_string();
    if !v.any_bad(&["security.inter.broker.protocol"]) && protocol != "PLAINTEXT" {
        problems.push(format!(
            "'security.inter.broker.protocol' is {protocol}{}, which Sluice does not support yet; only PLAINTEXT is supported for now",
            at("security.inter.broker.protocol")
        ));
    }
    let inter = if v.is_set("inter.broker.listener.name") {
        v.str("inter.broker.listener.name")
            .trim()
            .to_ascii_uppercase()
    } else {
        protocol
    };
    if listeners_ok
        && !v.any_bad(&["advertised.listeners"])
        && !advertised.iter().any(|l| l.name == inter)
    {
        problems.push(format!(
            "inter.broker.listener.name must be a listener name defined in advertised.listeners; {inter} is not (valid options: {})",
            advertised.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    (listeners, advertised, inter, controller_names)
}

/// The known key closest to an unknown one (edit distance at most 2), to suggest a fix.
fn suggestion(unknown: &str) -> Option<&'static str> {
    BROKER_KEYS
        .iter()
        .map(|k| (edit_distance(unknown, k.name), k.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(overrides: &[&str]) -> Result<BrokerConfig, ConfigError> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        BrokerConfig::load(None, &o)
    }

    fn problems(overrides: &[&str]) -> Vec<String> {
        match load(overrides) {
            Err(ConfigError::Invalid { problems }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    /// A properties file in a fresh temporary directory.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let dir = std::env::temp_dir()
                .join(format!("sluice-config-test-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("server.properties");
            std::fs::File::create(&path)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn request_queue_and_idle_connection_limits() {
        let c = load(&[]).unwrap();
        assert_eq!(c.queued_max_request_bytes, Some(209_715_200));
        assert_eq!(c.connections_max_idle_ms, Some(600_000));
        let c = load(&["queued.max.request.bytes=-1", "connections.max.idle.ms=-1"]).unwrap();
        assert_eq!(c.queued_max_request_bytes, None);
        assert_eq!(c.connections_max_idle_ms, None);
        let c = load(&[
            "socket.request.max.bytes=1048576",
            "queued.max.request.bytes=1048576",
        ])
        .unwrap();
        assert_eq!(c.queued_max_request_bytes, Some(1_048_576));
        let p = problems(&["queued.max.request.bytes=1000"]);
        assert!(
            p.iter()
                .any(|m| m.contains("must be at least 'socket.request.max.bytes'")),
            "{p:?}"
        );
        let p = problems(&["socket.request.max.bytes=300000000"]);
        assert!(
            p.iter().any(|m| m.contains("queued.max.request.bytes")),
            "{p:?}"
        );
    }

    #[test]
    fn table_is_sorted_and_defaults_validate() {
        let names: Vec<&str> = BROKER_KEYS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for k in BROKER_KEYS {
            if let Some(d) = k.default {
                assert!(
                    k.check.validate(k.ty, d).is_ok(),
                    "default of {} is invalid",
                    k.name
                );
                assert_eq!(
                    normalize(k.ty, d),
                    d,
                    "default of {} is not canonical",
                    k.name
                );
            }
        }
        for g in SYNONYM_GROUPS {
            assert!(g.iter().all(|n| is_known_key(n)));
        }
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.broker_id, 1);
        let plain = Listener {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092,
        };
        assert_eq!(c.listeners, vec![plain.clone()]);
        assert_eq!(c.advertised_listeners, vec![plain]);
        assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
        assert_eq!(c.log_dirs, vec![PathBuf::from("./sluice-data")]);
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.default_replication_factor, 1);
        assert!(c.auto_create_topics_enable && c.delete_topic_enable);
        assert_eq!(c.log_segment_bytes, 1 << 30);
        assert_eq!(c.log_roll_ms, 168 * 3_600_000);
        assert_eq!(c.log_roll_jitter_ms, 0);
        assert_eq!(c.log_index_interval_bytes, 4096);
        assert_eq!(c.log_index_size_max_bytes, 10_485_760);
        assert_eq!(c.log_flush_interval_messages, i64::MAX as u64);
        assert_eq!(c.log_flush_interval_ms, None);
        assert_eq!(c.log_flush_scheduler_interval_ms, i64::MAX);
        assert_eq!(c.log_retention_ms, 604_800_000);
        assert_eq!(c.log_retention_bytes, -1);
        assert_eq!(c.log_retention_check_interval_ms, 300_000);
        assert_eq!(
            c.log_cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: false
            }
        );
        assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.log_message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(c.log_message_timestamp_after_max_ms, 3_600_000);
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.offsets_topic_num_partitions, 50);
        assert_eq!(
            c.offsets_topic_replication_factor, 1,
            "a single-node broker"
        );
        assert_eq!(c.transaction_state_log_num_partitions, 50);
        assert_eq!(c.transaction_state_log_replication_factor, 1);
        assert_eq!(c.transaction_state_log_min_isr, 1);
        assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(
            (
                c.group_min_session_timeout_ms,
                c.group_max_session_timeout_ms
            ),
            (6000, 1_800_000)
        );
        assert_eq!(c.compression_type, CompressionType::Producer);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(!c.unclean_leader_election_enable);
        assert_eq!(c.replica_lag_time_max_ms, 30_000);
        assert_eq!(c.cluster_id, None);
        assert_eq!(c.cores, 0);
        assert!(!c.fsync_acks_all);
        assert_eq!(
            (c.max_partitions_per_broker, c.max_partitions_per_shard),
            (10_000, 1_000)
        );
        assert_eq!(
            c.metrics_listener,
            Some(HostPort {
                host: "127.0.0.1".into(),
                port: 9644
            })
        );
        assert_eq!(
            c.explicitly_set(),
            &BTreeMap::from([(
                "offsets.topic.replication.factor".to_string(),
                "1".to_string()
            )])
        );
        assert_eq!(c.replica_lag_time_max_ms, 30_000);
        assert_eq!(
            (
                c.replica_fetch_wait_max_ms,
                c.replica_fetch_min_bytes,
                c.replica_fetch_max_bytes,
                c.replica_fetch_response_max_bytes,
                c.replica_fetch_backoff_ms
            ),
            (500, 1, 1_048_576, 10_485_760, 1000)
        );
        assert!(c.auto_leader_rebalance_enable);
        assert_eq!(c.leader_imbalance_check_interval_seconds, 300);
        assert_eq!(c.leader_imbalance_per_broker_percentage, 10);
        assert_eq!(
            (
                c.leader_replication_throttled_rate,
                c.follower_replication_throttled_rate,
                c.replication_quota_window_num,
                c.replication_quota_window_size_seconds
            ),
            (i64::MAX, i64::MAX, 11, 1)
        );
    }

    #[test]
    fn replication_throttles_are_validated_and_dynamic() {
        let c = BrokerConfig::load(
            None,
            &[
                "follower.replication.throttled.rate=1000".to_string(),
                "replication.quota.window.num=5".to_string(),
                "replication.quota.window.size.seconds=2".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(
            (
                c.leader_replication_throttled_rate,
                c.follower_replication_throttled_rate,
                c.replication_quota_window_num,
                c.replication_quota_window_size_seconds
            ),
            (i64::MAX, 1000, 5, 2)
        );
        assert!(problems(&["leader.replication.throttled.rate=-1"])[0]
            .contains("leader.replication.throttled.rate"));
        assert!(problems(&["replication.quota.window.num=0"])[0]
            .contains("replication.quota.window.num"));
        let dynamic = BTreeMap::from([
            (
                "leader.replication.throttled.rate".to_string(),
                " 2000".to_string(),
            ),
            (
                "follower.replication.throttled.rate".to_string(),
                "0".to_string(),
            ),
        ]);
        assert_eq!(
            validate_dynamic_broker_configs(&dynamic).unwrap()["leader.replication.throttled.rate"],
            "2000"
        );
        let negative = BTreeMap::from([(
            "follower.replication.throttled.rate".to_string(),
            "-5".to_string(),
        )]);
        assert_eq!(
            validate_dynamic_broker_configs(&negative)
                .unwrap_err()
                .to_string(),
            "Invalid value -5 for configuration follower.replication.throttled.rate: Value must be at least 0"
        );
        let window =
            BTreeMap::from([("replication.quota.window.num".to_string(), "3".to_string())]);
        assert!(validate_dynamic_broker_configs(&window)
            .unwrap_err()
            .to_string()
            .contains("Cannot update these configs dynamically"));
    }

    #[test]
    fn replica_fetch_waits_stay_within_the_replica_lag() {
        let p = problems(&[
            "replica.fetch.wait.max.ms=40000",
            "replica.lag.time.max.ms=30000",
        ]);
        assert!(
            p[0].contains("'replica.fetch.wait.max.ms' (40000) should always be less than or equal to 'replica.lag.time.max.ms' (30000)"),
            "{p:?}"
        );
        assert!(problems(&["replica.fetch.max.bytes=-1"])[0].contains("replica.fetch.max.bytes"));
        let c = BrokerConfig::load(
            None,
            &[
                "replica.fetch.wait.max.ms=100".to_string(),
                "replica.fetch.backoff.ms=50".to_string(),
                "auto.leader.rebalance.enable=false".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.replica_fetch_wait_max_ms, c.replica_fetch_backoff_ms),
            (100, 50)
        );
        assert!(!c.auto_leader_rebalance_enable);
    }

    #[test]
    fn a_single_node_broker_sets_what_kafkas_quickstart_file_sets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "num.partitions=2\n").unwrap();
        let voters = "controller.quorum.voters=1@127.0.0.1:19199".to_string();
        let rf = |file: Option<&Path>, sets: &[String]| {
            BrokerConfig::load(file, sets)
                .unwrap()
                .offsets_topic_replication_factor
        };
        assert_eq!(rf(None, &[]), 1);
        assert_eq!(rf(Some(&file), &[]), 3, "a config file: Kafka's default");
        let cluster = [
            voters,
            "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19199".to_string(),
            "controller.listener.names=CONTROLLER".to_string(),
        ];
        assert_eq!(rf(None, &cluster), 3, "voters: Kafka's default");
        let set = ["offsets.topic.replication.factor=2".to_string()];
        assert_eq!(rf(None, &set), 2);
        let described = BrokerConfig::load(None, &[])
            .unwrap()
            .describe(&DynamicBrokerConfigs::default())
            .into_iter()
            .find(|e| e.name == "offsets.topic.replication.factor")
            .unwrap();
        assert_eq!(described.value.as_deref(), Some("1"));
        assert_eq!(described.source, ConfigSource::StaticBrokerConfig);
    }

    #[test]
    fn file_and_overrides_precedence() {
        let f = TempFile::new(
            "precedence",
            "# Kafka-style file\nnum.partitions=3\nlog.dirs=/data/a, /data/b\nauto.create.topics.enable = false\n\
             sluice.cores=2\n",
        );
        let c = BrokerConfig::load(
            Some(&f.0),
            &[
                "num.partitions=6".to_string(),
                "metrics.listener=".to_string(),
            ],
        )
        .unwrap();
        assert_eq!(c.num_partitions, 6);
        assert_eq!(
            c.log_dirs,
            vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")]
        );
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.cores, 2);
        assert_eq!(c.metrics_listener, None);
        assert_eq!(
            c.explicitly_set().get("num.partitions").map(String::as_str),
            Some("6")
        );
        assert_eq!(
            c.explicitly_set().get("log.dirs").map(String::as_str),
            Some("/data/a, /data/b")
        );
        assert_eq!(c.explicitly_set().len(), 5);
    }

    #[test]
    fn replica_selector_is_the_leader_unless_rack_aware_is_named() {
        let c = BrokerConfig::load(None, &[]).unwrap();
        assert_eq!(c.replica_selector, ReplicaSelector::Leader);
        let c = BrokerConfig::load(
            None,
            &[format!(
                "replica.selector.class= {RACK_AWARE_REPLICA_SELECTOR} "
            )],
        )
        .unwrap();
        assert_eq!(c.replica_selector, ReplicaSelector::RackAware);
        let err = BrokerConfig::load(None, &["replica.selector.class=com.example.Mine".into()])
            .unwrap_err();
        let ConfigError::Invalid { problems } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("'replica.selector.class'")
                && problems[0].contains(RACK_AWARE_REPLICA_SELECTOR),
            "{problems:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let f = TempFile::new(
            "problems",
            "broker.id=2\n\nnum.partitions=abc\n# comment\nlog.segmnt.bytes=100\n\
             log.cleanup.policy=delete,kompact\nunclean.leader.election.enable=maybe\n",
        );
        let path = f.0.display().to_string();
        let err = BrokerConfig::load(
            Some(&f.0),
            &["bogus.key=1".to_string(), "noequals".to_string()],
        )
        .unwrap_err();
        let ConfigError::Invalid { problems } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            problems,
            &vec![
                "invalid override 'noequals': expected key=value".to_string(),
                format!("invalid value 'abc' for 'num.partitions' (line 3 of {path}): expected a 32-bit integer >= 1"),
                format!("unknown config key 'log.segmnt.bytes' (line 5 of {path}); did you mean 'log.segment.bytes'?"),
                format!("invalid value 'delete,kompact' for 'log.cleanup.policy' (line 6 of {path}): 'kompact' is not allowed; expected a comma-separated list of: compact, delete"),
                format!("invalid value 'maybe' for 'unclean.leader.election.enable' (line 7 of {path}): expected true or false"),
                "unknown config key 'bogus.key' (from --set bogus.key=1)".to_string(),
            ]
        );
        // The Display form is one problem per line, for the CLI.
        assert_eq!(err.to_string().lines().count(), 6);
    }

    #[test]
    fn range_checks_name_the_key() {
        assert_eq!(
            problems(&["log.segment.bytes=13"]),
            vec!["invalid value '13' for 'log.segment.bytes' (from --set log.segment.bytes=13): expected a 32-bit integer >= 14"]
        );
        assert!(problems(&["broker.id=2147483"])[0].contains("between 0 and 2147482"));
        assert!(problems(&["node.id=-1"])[0].contains("'node.id'"));
        assert!(problems(&["default.replication.factor=40000"])[0].contains("between 1 and 32767"));
        assert!(problems(&["message.max.bytes=99999999999"])[0].contains("'message.max.bytes'"));
        assert!(problems(&["sluice.fsync.acks.all=1"])[0].contains("expected true or false"));
        assert!(problems(&["compression.type=none"])[0].contains("one of: uncompressed"));
        assert!(problems(&["metrics.listener=nonsense"])[0].contains("'metrics.listener'"));
        assert!(problems(&["controller.quorum.voters=1@host"])[0].contains("id@host:port"));
        assert!(problems(&[
            "group.min.session.timeout.ms=10",
            "group.max.session.timeout.ms=5"
        ])[0]
            .contains("group.max.session.timeout.ms"));
        assert!(problems(&["log.dirs= , "])[0].contains("at least one log directory"));
        assert!(problems(&["log.dirs=/a,/a"])[0].contains("same directory twice"));
        assert!(problems(&["broker.id=2", "node.id=3"])[0].contains("must match"));
    }

    #[test]
    fn ids_and_synonyms() {
        assert_eq!(load(&["broker.id=7"]).unwrap().broker_id, 7);
        assert_eq!(load(&["node.id=8"]).unwrap().broker_id, 8);
        assert_eq!(load(&["node.id=9", "broker.id=9"]).unwrap().broker_id, 9);
        assert_eq!(
            load(&["broker.id=2147482"]).unwrap().broker_id,
            MAX_BROKER_ID
        );
        assert_eq!(
            load(&["log.dir=/x"]).unwrap().log_dirs,
            vec![PathBuf::from("/x")]
        );
        assert_eq!(
            load(&["log.dir=/x", "log.dirs=/y"]).unwrap().log_dirs,
            vec![PathBuf::from("/y")]
        );
    }

    #[test]
    fn retention_and_roll_unit_precedence() {
        assert_eq!(
            load(&["log.retention.hours=1"]).unwrap().log_retention_ms,
            3_600_000
        );
        assert_eq!(
            load(&["log.retention.hours=1", "log.retention.minutes=2"])
                .unwrap()
                .log_retention_ms,
            120_000
        );
        let c = load(&[
            "log.retention.hours=1",
            "log.retention.minutes=2",
            "log.retention.ms=5",
        ])
        .unwrap();
        assert_eq!(c.log_retention_ms, 5);
        assert_eq!(load(&["log.retention.ms=-1"]).unwrap().log_retention_ms, -1);
        assert_eq!(
            load(&["log.retention.hours=-5"]).unwrap().log_retention_ms,
            -1
        );
        assert_eq!(load(&["log.roll.hours=2"]).unwrap().log_roll_ms, 7_200_000);
        assert_eq!(
            load(&["log.roll.hours=2", "log.roll.ms=1000"])
                .unwrap()
                .log_roll_ms,
            1000
        );
        assert!(problems(&["log.roll.ms=0"])[0].contains(">= 1"));
        assert_eq!(
            load(&["log.roll.jitter.hours=1"])
                .unwrap()
                .log_roll_jitter_ms,
            3_600_000
        );
        let c = load(&["log.flush.interval.ms=250"]).unwrap();
        assert_eq!(c.log_flush_interval_ms, Some(250));
    }

    #[test]
    fn listeners_parsing() {
        let c = load(&[
            "listeners=PLAINTEXT://:9092,internal://10.0.0.5:9192,CONTROLLER://[::1]:9093",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=internal",
        ])
        .unwrap();
        assert_eq!(
            c.listeners,
            vec![
                Listener {
                    name: "PLAINTEXT".into(),
                    host: "0.0.0.0".into(),
                    port: 9092
                },
                Listener {
                    name: "INTERNAL".into(),
                    host: "10.0.0.5".into(),
                    port: 9192
                },
                Listener {
                    name: "CONTROLLER".into(),
                    host: "::1".into(),
                    port: 9093
                },
            ]
        );
        // Controller listeners are never advertised; wildcard hosts advertise 127.0.0.1.
        assert_eq!(
            c.advertised_listeners,
            vec![
                Listener {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9092
                },
                Listener {
                    name: "INTERNAL".into(),
                    host: "10.0.0.5".into(),
                    port: 9192
                },
            ]
        );
        assert_eq!(c.inter_broker_listener_name, "INTERNAL");
        assert_eq!(c.controller_listener_names, vec!["CONTROLLER".to_string()]);
        assert_eq!(c.listeners[2].to_string(), "CONTROLLER://[::1]:9093");

        // A stock Kafka 4 combined-mode listener setup loads (controller mapped by default).
        let c = load(&[
            "process.roles=broker,controller",
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "controller.listener.names=CONTROLLER",
            "advertised.listeners=PLAINTEXT://kafka.example.com:9092",
            "controller.quorum.bootstrap.servers=localhost:9093",
        ])
        .unwrap();
        assert_eq!(c.advertised_listeners[0].host, "kafka.example.com");
    }

    #[test]
    fn stock_kafka_kraft_file_loads() {
        let f = TempFile::new(
            "stock",
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.bootstrap.servers=localhost:9093\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,\
             SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
             num.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\n\
             socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\n\
             log.dirs=/tmp/kraft-combined-logs\nnum.partitions=1\n\
             num.recovery.threads.per.data.dir=1\noffsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\ntransaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\nlog.retention.hours=168\n\
             log.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\n",
        );
        let c = BrokerConfig::load(Some(&f.0), &[]).unwrap();
        assert_eq!(
            c.advertised_listeners,
            vec![Listener {
                name: "PLAINTEXT".into(),
                host: "localhost".into(),
                port: 9092
            }]
        );
        assert_eq!(c.listeners.len(), 2);
        assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kraft-combined-logs")]);
    }

    #[test]
    fn listener_rejections() {
        let p = problems(&["listeners=SSL://:9093"]);
        assert!(
            p.iter().any(|m| m.contains("security protocol SSL")
                && m.contains("only PLAINTEXT is supported")),
            "{p:?}"
        );
        let p = problems(&["listeners=PLAINTEXT://:9092,SASL_SSL://:9094"]);
        assert!(p.iter().any(|m| m.contains("SASL_SSL")), "{p:?}");
        let p = problems(&["listeners=CLIENT://:9092"]);
        assert!(
            p.iter()
                .any(|m| m.contains("no security protocol defined for listener CLIENT")),
            "{p:?}"
        );
        let p = problems(&["listeners=PLAINTEXT//:9092"]);
        assert!(
            p[0].contains("cannot parse 'PLAINTEXT//:9092' as a listener"),
            "{p:?}"
        );
        let p = problems(&["listeners=PLAINTEXT://:99999"]);
        assert!(p[0].contains("'listeners'"), "{p:?}");
        let p = problems(&["listeners=PLAINTEXT://:9092,PLAINTEXT://:9093"]);
        assert!(p.iter().any(|m| m.contains("different name")), "{p:?}");
        let p = problems(&[
            "listeners=PLAINTEXT://:9092,OTHER://:9092",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
        ]);
        assert!(p.iter().any(|m| m.contains("different port")), "{p:?}");
        let p = problems(&["advertised.listeners=PLAINTEXT://0.0.0.0:9092"]);
        assert!(p[0].contains("nonroutable meta-address 0.0.0.0"), "{p:?}");
        let p = problems(&[
            "advertised.listeners=OTHER://h:9092",
            "listener.security.protocol.map=OTHER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]);
        assert!(
            p.iter().any(|m| m.contains("not defined in 'listeners'")),
            "{p:?}"
        );
        let p = problems(&["inter.broker.listener.name=NOPE"]);
        assert!(p[0].contains("inter.broker.listener.name must be a listener name defined in advertised.listeners"), "{p:?}");
        let p = problems(&["security.inter.broker.protocol=SSL"]);
        assert!(p.iter().any(|m| m.contains("only PLAINTEXT")), "{p:?}");
        let p = problems(&[
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "controller.listener.names=CONTROLLER",
            "advertised.listeners=CONTROLLER://h:9093",
        ]);
        assert!(
            p.iter()
                .any(|m| m.contains("at least one listener that is not a controller")),
            "{p:?}"
        );
        let p = problems(&["listener.security.protocol.map=PLAINTEXT:TLS"]);
        assert!(p[0].contains("unknown security protocol 'TLS'"), "{p:?}");
    }

    /// Node 1 of the README's three-broker recipe: client port 19192, controller port 19199.
    const THREE_VOTERS: [&str; 4] = [
        "node.id=1",
        "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19199",
        "controller.listener.names=CONTROLLER",
        "controller.quorum.voters=1@127.0.0.1:19199,2@127.0.0.1:19299,3@127.0.0.1:19399",
    ];

    #[test]
    fn kraft_defaults_are_a_one_node_quorum() {
        let c = load(&[]).unwrap();
        assert_eq!(
            c.process_roles,
            ProcessRoles {
                broker: true,
                controller: true
            }
        );
        assert!(c.controller_quorum_voters.is_empty());
        assert_eq!(c.controller_listener, None);
        assert_eq!(
            c.client_listener().to_string(),
            "PLAINTEXT://127.0.0.1:9092"
        );
        assert_eq!(c.broker_heartbeat_interval_ms, 2000);
        assert_eq!(c.broker_session_timeout_ms, 9000);
        assert_eq!(c.broker_rack, None);
        assert_eq!(c.controller_quorum_election_timeout_ms, 1000);
        assert_eq!(c.controller_quorum_fetch_timeout_ms, 2000);
        assert_eq!(c.controller_quorum_request_timeout_ms, 2000);
        assert_eq!(
            c.metadata_log_max_record_bytes_between_snapshots,
            20_971_520
        );
        assert_eq!(c.metadata_max_idle_interval_ms, 500);
    }

    #[test]
    fn kraft_settings_are_typed() {
        let mut set = THREE_VOTERS.to_vec();
        set.extend([
            "broker.rack=rack-a",
            "broker.heartbeat.interval.ms=500",
            "broker.session.timeout.ms=3000",
            "controller.quorum.election.timeout.ms=700",
            "controller.quorum.fetch.timeout.ms=900",
            "controller.quorum.request.timeout.ms=800",
            "metadata.log.max.record.bytes.between.snapshots=4096",
            "metadata.max.idle.interval.ms=0",
        ]);
        let c = load(&set).unwrap();
        assert_eq!(c.broker_id, 1);
        assert_eq!(c.controller_quorum_voters.len(), 3);
        assert_eq!(
            c.controller_quorum_voters[1],
            QuorumVoter {
                id: 2,
                host: "127.0.0.1".into(),
                port: 19299
            }
        );
        assert_eq!(
            c.controller_listener
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("CONTROLLER://127.0.0.1:19199")
        );
        assert_eq!(c.client_listener().port, 19192);
        assert_eq!(c.advertised_listeners.len(), 1);
        assert!(c.check_shard_ports(2).is_ok());
        assert_eq!(c.broker_rack.as_deref(), Some("rack-a"));
        assert_eq!(c.broker_heartbeat_interval_ms, 500);
        assert_eq!(c.broker_session_timeout_ms, 3000);
        assert_eq!(c.controller_quorum_election_timeout_ms, 700);
        assert_eq!(c.controller_quorum_fetch_timeout_ms, 900);
        assert_eq!(c.controller_quorum_request_timeout_ms, 800);
        assert_eq!(c.metadata_log_max_record_bytes_between_snapshots, 4096);
        assert_eq!(c.metadata_max_idle_interval_ms, 0);

        // The client listener is the first non-controller listener, wherever it is listed.
        let c = load(&[
            "listeners=CONTROLLER://127.0.0.1:19199,PLAINTEXT://127.0.0.1:19192",
            "controller.listener.names=CONTROLLER",
        ])
        .unwrap();
        assert_eq!(c.client_listener().name, "PLAINTEXT");
        let c = load(&["process.roles=controller"]).unwrap();
        assert_eq!(
            c.process_roles,
            ProcessRoles {
                broker: false,
                controller: true
            }
        );
        let p = problems(&["process.roles=broker,worker"]);
        assert!(
            p[0].contains("'process.roles'") && p[0].contains("'worker'"),
            "{p:?}"
        );
        let p = problems(&["process.roles="]);
        assert!(p[0].contains("'process.roles'"), "{p:?}");
        let p = problems(&["broker.session.timeout.ms=0"]);
        assert!(p[0].contains("'broker.session.timeout.ms'"), "{p:?}");
    }

    /// Problems of `THREE_VOTERS` with some settings replaced or added.
    fn three_voter_problems(changes: &[&str]) -> Vec<String> {
        let mut set: Vec<&str> = THREE_VOTERS
            .iter()
            .filter(|s| {
                let key = s.split('=').next().unwrap_or("");
                !changes.iter().any(|c| c.split('=').next() == Some(key))
            })
            .copied()
            .collect();
        set.extend(changes.iter().copied().filter(|c| !c.ends_with("=<unset>")));
        problems(&set)
    }

    #[test]
    fn kraft_rules_name_the_key_and_where_it_was_set() {
        let p = three_voter_problems(&["node.id=4"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("'controller.quorum.voters' (from --set controller.quorum.voters=")
                && p[0].contains("node's id 4")
                && p[0].contains("1, 2, 3"),
            "{p:?}"
        );
        let p = three_voter_problems(&["controller.quorum.voters=1@127.0.0.1:19199,1@h:19299"]);
        assert!(
            p[0].starts_with("'controller.quorum.voters'") && p[0].contains("voter id 1 twice"),
            "{p:?}"
        );
        let p = three_voter_problems(&["listeners=PLAINTEXT://127.0.0.1:19192"]);
        assert!(
            p[0].starts_with("'controller.listener.names' (from --set")
                && p[0].contains("'listeners' (from --set listeners=PLAINTEXT://127.0.0.1:19192)"),
            "{p:?}"
        );
        let p = three_voter_problems(&["controller.listener.names=<unset>"]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("'controller.listener.names' must name")),
            "{p:?}"
        );
        let p = three_voter_problems(&[
            "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19198",
        ]);
        assert!(
            p[0].starts_with("'controller.quorum.voters'")
                && p[0].contains("19199")
                && p[0].contains("19198"),
            "{p:?}"
        );
        let p = three_voter_problems(&["process.roles=broker", "controller.quorum.voters=<unset>"]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("'controller.quorum.voters' must list")),
            "{p:?}"
        );
        let p = three_voter_problems(&["process.roles=broker", "listeners=PLAINTEXT://:19192"]);
        assert!(p[0].contains("must not include this node's id 1"), "{p:?}");
        let p = three_voter_problems(&["process.roles=broker", "node.id=4"]);
        assert!(
            p[0].starts_with("'controller.listener.names'") && p[0].contains("must not name"),
            "{p:?}"
        );
        // A broker-only node 4 joining the three voters is valid.
        let c = load(&[
            "process.roles=broker",
            "node.id=4",
            "listeners=PLAINTEXT://127.0.0.1:19492",
            "controller.listener.names=CONTROLLER",
            THREE_VOTERS[3],
        ])
        .unwrap();
        assert!(c.process_roles.is_broker_only() && c.controller_listener.is_none());
        // A broker-only process cannot advertise a controller listener it does not have.
        let p = problems(&[
            "process.roles=broker",
            "node.id=4",
            "listeners=PLAINTEXT://127.0.0.1:19492",
            "advertised.listeners=PLAINTEXT://h:19492,CONTROLLER://h:19499",
            "controller.listener.names=CONTROLLER",
            THREE_VOTERS[3],
        ]);
        assert!(
            p[0].contains("'advertised.listeners'") && p[0].contains("CONTROLLER"),
            "{p:?}"
        );
    }

    #[test]
    fn kraft_rules_in_a_file() {
        let file = TempFile::new(
            "kraft",
            "process.roles=broker,controller\nnode.id=5\n\
             listeners=PLAINTEXT://:19192,CONTROLLER://:19199\n\
             controller.listener.names=CONTROLLER\n\
             controller.quorum.voters=1@h:19199,2@h:19299\n",
        );
        let path = file.0.display().to_string();
        match BrokerConfig::load(Some(&file.0), &[]) {
            Err(ConfigError::Invalid { problems }) => assert_eq!(
                problems,
                vec![format!(
                    "'controller.quorum.voters' (line 5 of {path}) must include this node's id 5 because 'process.roles' contains 'controller' (voter ids: 1, 2)"
                )]
            ),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn controller_port_inside_the_shard_ports() {
        let p = three_voter_problems(&[
            "sluice.cores=8",
            "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19199",
        ]);
        assert!(
            p[0].contains("controller listener CONTROLLER://127.0.0.1:19199")
                && p[0].contains("PLAINTEXT://127.0.0.1:19192")
                && p[0].contains("8 shards"),
            "{p:?}"
        );
        let c = load(&THREE_VOTERS).unwrap();
        assert!(c.check_shard_ports(7).is_ok());
        assert!(c.check_shard_ports(8).is_err());
    }

    #[test]
    fn shard_port_ranges() {
        let p = problems(&["sluice.cores=4", "listeners=PLAINTEXT://:65534"]);
        assert!(p[0].contains("beyond 65535"), "{p:?}");
        let p = problems(&[
            "sluice.cores=4",
            "listeners=PLAINTEXT://:9092,INTERNAL://:9094",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        ]);
        assert!(p[0].contains("overlap"), "{p:?}");
        // A controller listener is a single port, but may not sit inside a broker range.
        let ok = [
            "sluice.cores=4",
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9096",
            "controller.listener.names=CONTROLLER",
        ];
        assert!(load(&ok).is_ok());
        let p = problems(&[
            "sluice.cores=4",
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "controller.listener.names=CONTROLLER",
        ]);
        assert!(
            p[0].contains("controller listener CONTROLLER://0.0.0.0:9093"),
            "{p:?}"
        );
        let c = load(&[
            "listeners=PLAINTEXT://:9092,INTERNAL://:9192",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        ])
        .unwrap();
        assert!(c.check_shard_ports(100).is_ok());
        assert!(c.check_shard_ports(101).is_err());
        assert!(c.check_shard_ports(usize::MAX).is_err());
    }

    #[test]
    fn describe_broker() {
        let c = load(&["log.retention.minutes=30", "num.partitions=4"]).unwrap();
        let d = c.describe(&DynamicBrokerConfigs::default());
        assert_eq!(d.len(), BROKER_KEYS.len());
        let get = |n: &str| d.iter().find(|e| e.name == n).unwrap();

        let np = get("num.partitions");
        assert_eq!(
            (np.value.as_deref(), np.source),
            (Some("4"), ConfigSource::StaticBrokerConfig)
        );
        assert_eq!(np.config_type, ConfigType::Int);
        assert!(np.read_only && !np.sensitive);
        assert_eq!(
            np.synonyms,
            vec![
                (
                    "num.partitions".to_string(),
                    Some("4".to_string()),
                    ConfigSource::StaticBrokerConfig
                ),
                (
                    "num.partitions".to_string(),
                    Some("1".to_string()),
                    ConfigSource::DefaultConfig
                ),
            ]
        );

        // As in Kafka, the source is the first synonym's: log.retention.minutes, set statically.
        let ms = get("log.retention.ms");
        assert_eq!(
            (ms.value.as_deref(), ms.source),
            (None, ConfigSource::StaticBrokerConfig)
        );
        assert!(!ms.read_only);
        assert_eq!(
            ms.synonyms,
            vec![
                (
                    "log.retention.minutes".to_string(),
                    Some("30".to_string()),
                    ConfigSource::StaticBrokerConfig
                ),
                (
                    "log.retention.hours".to_string(),
                    Some("168".to_string()),
                    ConfigSource::DefaultConfig
                ),
            ]
        );
        // Lower-precedence keys do not list higher-precedence synonyms.
        let hours = get("log.retention.hours");
        assert_eq!(hours.synonyms.len(), 1);
        assert_eq!(get("sluice.cores").value.as_deref(), Some("0"));
        let d = load(&["broker.id=7"])
            .unwrap()
            .describe(&DynamicBrokerConfigs::default());
        // broker.id set the id node.id shows: its first synonym is static.
        let node = d.iter().find(|e| e.name == "node.id").unwrap();
        assert_eq!(
            (node.value.as_deref(), node.source),
            (Some("7"), ConfigSource::StaticBrokerConfig)
        );
        assert!(d
            .iter()
            .all(|e| e.documentation.as_deref().is_some_and(|s| !s.is_empty())));
    }

    #[test]
    fn dynamic_keys_follow_kafka() {
        for name in [
            "log.retention.ms",
            "log.retention.bytes",
            "log.segment.bytes",
            "log.roll.ms",
            "log.flush.interval.messages",
            "log.flush.interval.ms",
            "log.cleanup.policy",
            "log.message.timestamp.type",
            "message.max.bytes",
            "compression.type",
            "min.insync.replicas",
            "unclean.leader.election.enable",
            "log.cleaner.delete.retention.ms",
            "num.io.threads",
            "background.threads",
            "sasl.kerberos.min.time.before.relogin",
            "log.cleaner.io.max.bytes.per.second",
            "log.cleaner.backoff.ms",
            "leader.replication.throttled.rate",
            "follower.replication.throttled.rate",
        ] {
            assert!(is_dynamic_broker_config(name), "{name}");
            assert!(is_known_key(name), "{name}");
        }
        for name in [
            "log.retention.hours",
            "log.retention.minutes",
            "log.roll.hours",
            "log.flush.scheduler.interval.ms",
            "log.dirs",
            "node.id",
            "listeners",
            "num.partitions",
            "log.retention.check.interval.ms",
            "replication.quota.window.num",
            "replication.quota.window.size.seconds",
        ] {
            assert!(!is_dynamic_broker_config(name), "{name}");
        }
    }

    #[test]
    fn dynamic_config_validation() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let msg = |pairs: &[(&str, &str)]| {
            validate_dynamic_broker_configs(&map(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            validate_dynamic_broker_configs(&map(&[
                ("log.retention.ms", " +1000"),
                ("log.cleanup.policy", "compact, delete")
            ]))
            .unwrap(),
            map(&[
                ("log.retention.ms", "1000"),
                ("log.cleanup.policy", "compact,delete")
            ])
        );
        assert_eq!(
            msg(&[("log.retention.ms", "abc")]),
            "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            msg(&[("log.dirs", "/x"), ("num.partitions", "3")]),
            "Cannot update these configs dynamically: Set(log.dirs, num.partitions)"
        );
        assert_eq!(
            msg(&[("log.retention.mss", "1")]),
            "Unknown broker config name: log.retention.mss"
        );
    }

    #[test]
    fn describe_with_dynamic_layers() {
        let c = load(&[
            "node.id=2",
            "log.retention.hours=1",
            "message.max.bytes=2000",
        ])
        .unwrap();
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic
            .cluster_default
            .insert("log.retention.ms".into(), "5000".into());
        dynamic
            .cluster_default
            .insert("message.max.bytes".into(), "3000".into());
        dynamic.set_broker(
            2,
            BTreeMap::from([("message.max.bytes".to_string(), "4000".to_string())]),
        );
        dynamic.set_broker(
            3,
            BTreeMap::from([("log.segment.bytes".to_string(), "100".to_string())]),
        );
        let d = c.describe(&dynamic);
        let get = |n: &str| d.iter().find(|e| e.name == n).unwrap();
        let m = get("message.max.bytes");
        assert_eq!(
            (m.value.as_deref(), m.source, m.read_only),
            (Some("4000"), ConfigSource::DynamicBrokerConfig, false)
        );
        let sources: Vec<(&str, ConfigSource)> = m
            .synonyms
            .iter()
            .map(|(_, v, s)| (v.as_deref().unwrap(), *s))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("4000", ConfigSource::DynamicBrokerConfig),
                ("3000", ConfigSource::DynamicDefaultBrokerConfig),
                ("2000", ConfigSource::StaticBrokerConfig),
                ("1048588", ConfigSource::DefaultConfig),
            ]
        );
        let r = get("log.retention.ms");
        assert_eq!(
            (r.value.as_deref(), r.source),
            (Some("5000"), ConfigSource::DynamicDefaultBrokerConfig)
        );
        assert_eq!(r.synonyms.len(), 3, "{:?}", r.synonyms);
        // Another broker's values do not apply here.
        assert_eq!(get("log.segment.bytes").source, ConfigSource::DefaultConfig);

        let defaults = describe_dynamic_defaults(&dynamic);
        let names: Vec<&str> = defaults.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["log.retention.ms", "message.max.bytes"]);
        assert!(defaults
            .iter()
            .all(|e| e.source == ConfigSource::DynamicDefaultBrokerConfig
                && e.synonyms.len() == 1
                && !e.read_only));
    }
}
