//! What brokers ask the active controller over the controller listeners.
//!
//! Admin requests that change metadata, broker registrations and heartbeats, and DescribeQuorum
//! reach the active controller from any shard of any broker (forwarding, as KIP-590 does): the
//! receiving broker's shard 0 sends a [`ControllerCall`] through the quorum's `call` to the
//! quorum leader's controller listener and hands the [`ControllerCallReply`] back. Both travel
//! as JSON; they never leave the cluster's controller listeners.

use crate::messages::{ControllerCommand, ControllerReply};
use crate::metadata::BrokerRegistration;
use serde::{Deserialize, Serialize};
use sluice_replication::quorum::QuorumStatus;
use uuid::Uuid;

/// A request to the active controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerCall {
    /// An admin request that changes metadata.
    Command(ControllerCommand),
    /// A broker starts (KRaft's BrokerRegistration): it is fenced until it has caught up.
    RegisterBroker(BrokerRegistration),
    /// A broker is alive (KRaft's BrokerHeartbeat).
    BrokerHeartbeat(BrokerHeartbeat),
    /// The quorum's state as the leader sees it (DescribeQuorum).
    DescribeQuorum,
}

/// A broker's heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    /// `node.id`.
    pub id: i32,
    /// The incarnation that registered.
    pub incarnation_id: Uuid,
    /// The metadata log offset the broker has applied.
    pub applied_offset: u64,
    /// The broker is stopping (SIGTERM): fence it now (controlled shutdown).
    pub shutting_down: bool,
}

/// The active controller's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerCallReply {
    /// The answer to a [`ControllerCall::Command`].
    Command(ControllerReply),
    /// The registration is committed.
    Registered,
    /// The answer to a heartbeat.
    Heartbeat {
        /// False when the controller does not know this incarnation: register again.
        registered: bool,
        /// Whether the broker is fenced.
        fenced: bool,
    },
    /// The answer to [`ControllerCall::DescribeQuorum`].
    Quorum(QuorumView),
    /// This node is not the active controller; `leader` is the quorum leader it knows.
    NotController {
        /// `node.id` of the leader, if known.
        leader: Option<i32>,
    },
    /// The call could not be completed (REQUEST_TIMED_OUT, for example).
    Failed {
        /// Kafka error code.
        code: i16,
        /// Why.
        message: String,
    },
}

/// The controller quorum as DescribeQuorum and `sluice cluster status` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuorumView {
    /// `node.id` of the leader (the active controller).
    pub leader: Option<i32>,
    /// The leader epoch (the Raft term).
    pub epoch: u64,
    /// The committed offset of the metadata log.
    pub high_watermark: u64,
    /// Every voter.
    pub voters: Vec<ReplicaView>,
    /// Brokers that follow the log without voting.
    pub observers: Vec<ReplicaView>,
}

/// One replica of the metadata log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaView {
    /// `node.id`.
    pub id: i32,
    /// Its log end offset as the leader last saw it (-1 unknown).
    pub log_end_offset: i64,
    /// How long ago it was last caught up with the leader, in ms.
    pub last_caught_up_ms_ago: Option<u64>,
}

impl QuorumView {
    /// The view of `status`, taken on the leader.
    pub fn of(status: &QuorumStatus) -> QuorumView {
        let replica = |r: &sluice_replication::quorum::ReplicaProgress| ReplicaView {
            id: r.id,
            log_end_offset: r.log_end_offset,
            last_caught_up_ms_ago: r.last_caught_up_ms_ago,
        };
        QuorumView {
            leader: status.leader,
            epoch: status.epoch,
            high_watermark: status.high_watermark,
            voters: status.voters.iter().map(replica).collect(),
            observers: status.observers.iter().map(replica).collect(),
        }
    }
}

/// Encodes a call or a reply.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_vec(message).unwrap_or_default()
}

/// Decodes a call or a reply.
pub fn decode<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::NewTopic;

    #[test]
    fn calls_and_replies_round_trip() {
        let call = ControllerCall::Command(ControllerCommand::CreateTopics {
            topics: vec![NewTopic {
                name: "t".into(),
                num_partitions: 3,
                replication_factor: 1,
                assignments: vec![(0, vec![1000])],
                configs: vec![("retention.ms".into(), Some("1000".into()))],
            }],
            validate_only: false,
        });
        let back: ControllerCall = decode(&encode(&call)).unwrap();
        assert!(
            matches!(back, ControllerCall::Command(ControllerCommand::CreateTopics { topics, .. }) if topics[0].assignments == vec![(0, vec![1000])])
        );
        let reply = ControllerCallReply::Heartbeat {
            registered: true,
            fenced: false,
        };
        let back: ControllerCallReply = decode(&encode(&reply)).unwrap();
        assert!(matches!(
            back,
            ControllerCallReply::Heartbeat {
                registered: true,
                fenced: false
            }
        ));
        assert!(decode::<ControllerCall>(b"\xff").is_err());
    }
}
