//! The Sluice broker engine: shards, the metadata image, the controller and the Kafka API
//! handlers.
//!
//! # Shape
//!
//! A broker runs one [`shard::Shard`] per core, each on its own pinned glommio executor, driven
//! by the run loop [`shard_runtime::run_shard`]. A shard owns the partition replicas placed on
//! it outright — their logs, their fetch waiters, their group commit — through their
//! [`partition::Partition`] boundary, and is advertised to clients as its own Kafka node
//! (`broker.id * 1000 + shard`, port `listener port + shard`), so clients send every partition
//! request straight to the core that owns the data ([`api`] answers `NOT_LEADER_OR_FOLLOWER`
//! when they don't).
//!
//! Shards share no mutable state. The cluster metadata (registered brokers, topics, partition
//! placement, configs, SCRAM credentials, producer-id blocks) is a replicated log of records
//! ([`metadata_log`]) under the controller quorum of `sluice_replication`. On every broker,
//! shard 0 applies the committed records ([`quorum_controller`]) and publishes immutable
//! [`metadata::MetadataImage`]s to every shard over the cross-shard channels of [`messages`];
//! on the active controller it also decides admin requests ([`controller`]) from any broker.
//! A broker registers and heartbeats as in KRaft ([`broker_lifecycle`]). Cross-shard channels
//! carry only controller traffic; produce and fetch never leave their shard.

pub mod accept_backoff;
pub mod api;
pub mod authorization;
pub mod broker;
pub mod broker_lifecycle;
pub mod config;
pub mod controller;
pub mod controller_rpc;
pub mod error;
pub mod fd_budget;
pub mod file_worker;
pub mod group;
pub mod group_commit;
pub mod log_cleaner;
pub mod messages;
pub mod metadata;
pub mod metadata_log;
pub mod metrics;
pub mod partition;
pub mod partition_caps;
pub mod quorum_controller;
pub mod replica_manager;
pub mod replication_throttle;
pub mod retention;
pub mod scram;
pub mod shard;
pub mod shard_runtime;
pub mod time;

pub use broker::{run_broker, BrokerError};
pub use config::BrokerConfig;
