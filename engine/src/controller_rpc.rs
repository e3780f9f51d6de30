//! What brokers ask the active controller over the controller listeners.
//!
//! Admin requests that change metadata, broker registrations and heartbeats, partition leaders'
//! ISR changes (AlterPartition) and DescribeQuorum reach the active controller from any shard
//! of any broker (forwarding, as KIP-590 does): the receiving broker's shard 0 sends a
//! [`ControllerCall`] through the quorum's `call` to the quorum leader's controller listener
//! and hands the [`ControllerCallReply`] back. Both travel as JSON; they never leave the
//! cluster's controller listeners. A shard other than 0 reaches its shard 0 through the
//! [`ShardRouter`] ([`call_from_shard`], [`alter_partition`]).

use crate::messages::{ControllerCommand, ControllerReply, ShardRouter};
use crate::metadata::{BrokerRegistration, PartitionState};
use kafka_protocol::ResponseError;
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
    /// A partition leader changes the partition's ISR (Kafka's AlterPartition).
    AlterPartition(AlterPartitionRequest),
}

/// A partition leader's request to change the ISR (Kafka's AlterPartition, one partition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    /// Topic name (used when `topic_id` is nil).
    pub topic: String,
    /// Topic id; nil to name the topic by `topic`.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// Node id of the leader sending the request.
    pub leader: i32,
    /// The leader epoch the leader knows.
    pub leader_epoch: i32,
    /// The partition epoch the leader knows: the change is refused (INVALID_UPDATE_VERSION)
    /// when the partition changed since.
    pub partition_epoch: i32,
    /// The ISR the leader wants, itself included.
    pub new_isr: Vec<IsrMember>,
}

/// One member of a requested ISR (Kafka's `BrokerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrMember {
    /// Node id of the replica.
    pub node: i32,
    /// The epoch of its broker's registration as the replica gave it in its fetches (KIP-903:
    /// a replica of an earlier incarnation of the broker is not eligible); -1 skips the check.
    pub broker_epoch: i64,
}

impl IsrMember {
    /// The member `node`, its broker epoch not checked.
    pub fn unchecked(node: i32) -> IsrMember {
        IsrMember {
            node,
            broker_epoch: -1,
        }
    }
}

/// The controller's answer to an [`AlterPartitionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionOutcome {
    /// Kafka error code (0 when the change is committed, or was not needed).
    pub error_code: i16,
    /// Why, when it failed.
    pub error_message: Option<String>,
    /// The partition's state after the change (on success, and with NEW_LEADER_ELECTED).
    pub partition: Option<PartitionState>,
}

impl AlterPartitionOutcome {
    /// A refusal with `code` and `message`.
    pub fn failed(code: ResponseError, message: impl Into<String>) -> AlterPartitionOutcome {
        AlterPartitionOutcome {
            error_code: code.code(),
            error_message: Some(message.into()),
            partition: None,
        }
    }
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
    /// The answer to [`ControllerCall::AlterPartition`].
    AlterPartition(AlterPartitionOutcome),
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

/// Takes `call` to the active controller from any shard of this broker, through shard 0's
/// controller service. Fails only when shard 0 is gone (the broker is stopping).
pub async fn call_from_shard(router: &ShardRouter, call: ControllerCall) -> ControllerCallReply {
    match router.call(call).await {
        Ok(reply) => reply,
        Err(e) => ControllerCallReply::Failed {
            code: ResponseError::RequestTimedOut.code(),
            message: e.to_string(),
        },
    }
}

/// Sends a partition leader's AlterPartition to the active controller from any shard, and
/// returns its answer: the committed partition state, or the Kafka error (FENCED_LEADER_EPOCH,
/// INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA, UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER,
/// REQUEST_TIMED_OUT, …). The leader applies the new ISR once this broker's metadata image
/// shows it (the same partition epoch).
pub async fn alter_partition(
    router: &ShardRouter,
    request: AlterPartitionRequest,
) -> AlterPartitionOutcome {
    match call_from_shard(router, ControllerCall::AlterPartition(request)).await {
        ControllerCallReply::AlterPartition(outcome) => outcome,
        ControllerCallReply::Failed { code, message } => AlterPartitionOutcome {
            error_code: code,
            error_message: Some(message),
            partition: None,
        },
        other => AlterPartitionOutcome::failed(
            ResponseError::UnknownServerError,
            format!("the controller answered {other:?}"),
        ),
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
        let request = AlterPartitionRequest {
            topic: "t".into(),
            topic_id: Uuid::from_u128(3),
            partition: 2,
            leader: 1000,
            leader_epoch: 4,
            partition_epoch: 9,
            new_isr: vec![
                IsrMember::unchecked(1000),
                IsrMember {
                    node: 2001,
                    broker_epoch: 17,
                },
            ],
        };
        let back: ControllerCall =
            decode(&encode(&ControllerCall::AlterPartition(request.clone()))).unwrap();
        assert!(matches!(back, ControllerCall::AlterPartition(r) if r == request));
        let outcome = AlterPartitionOutcome {
            error_code: 0,
            error_message: None,
            partition: PartitionState::new(vec![1000, 2001], |_| true),
        };
        let back: ControllerCallReply = decode(&encode(&ControllerCallReply::AlterPartition(
            outcome.clone(),
        )))
        .unwrap();
        assert!(matches!(back, ControllerCallReply::AlterPartition(o) if o == outcome));
        assert!(decode::<ControllerCall>(b"\xff").is_err());
    }
}
