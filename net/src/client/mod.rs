//! A lean Kafka client: the client side of the wire, used by replication, `sluice bench` and the
//! CLI tools.
//!
//! * [`Connection`] is one TCP connection to one node: ApiVersions negotiation on connect, then
//!   [`Connection::send`] / [`Connection::submit`] with several requests in flight (Kafka answers
//!   in order on a connection, so responses are matched to requests by correlation id, FIFO).
//! * [`Cluster`] bootstraps from a list of addresses, keeps a [`Metadata`] snapshot (nodes,
//!   topic ids, partition leaders, replicas and ISRs), creates topics and opens (and reuses)
//!   connections to leaders.
//! * [`Cluster::find_coordinator`] and [`Cluster::list_offsets`] are small admin helpers: the
//!   coordinator of a group or transactional id, and offsets by time from each partition leader.
//! * [`error_name`] names Kafka error codes the way Kafka does (`NOT_LEADER_OR_FOLLOWER`).
//!
//! Every connect and every request is bounded by a timeout ([`ClientOptions`]): a dead or stopped
//! broker is an error within seconds, never a hang. Everything here runs on a glommio executor.

mod admin;
mod cluster;
mod connection;
mod errors;

pub use admin::{
    Coordinator, ListedOffset, COORDINATOR_GROUP, COORDINATOR_TRANSACTION, EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP, READ_COMMITTED, READ_UNCOMMITTED,
};
pub use cluster::{topic_name, Cluster, Metadata, PartitionMetadata, TopicMetadata};
pub use connection::{ClientOptions, Connection, Pending, RawPending};
pub use errors::error_name;

/// Why a client operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No TCP connection could be made (refused, unreachable, or timed out).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection failed after it was made (closed by the peer, reset, bad frame…).
    #[error("connection to {addr} failed: {reason}")]
    Broken {
        /// The peer.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No response arrived within the request timeout.
    #[error("{api} request to {addr} timed out after {timeout_ms} ms")]
    Timeout {
        /// The API called.
        api: String,
        /// The peer.
        addr: String,
        /// The timeout that passed.
        timeout_ms: u64,
    },
    /// A request or response could not be encoded or decoded.
    #[error("{0}")]
    Codec(String),
    /// The broker and this client have no version of an API in common.
    #[error("the broker at {addr} does not support {api} in a version this client speaks")]
    Unsupported {
        /// The API.
        api: String,
        /// The peer.
        addr: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{what}: {} ({code}){}", error_name(*code), message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// What was being done.
        what: String,
        /// The Kafka error code.
        code: i16,
        /// The broker's error message, if any.
        message: Option<String>,
    },
    /// Nothing usable in the bootstrap list or in metadata.
    #[error("{0}")]
    Metadata(String),
}

/// Results of client operations.
pub type Result<T> = std::result::Result<T, ClientError>;
