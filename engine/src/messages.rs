//! Cross-shard messages: the only traffic between cores.
//!
//! Shards talk over unbounded channels whose receivers live on the destination shard (glommio
//! wakes a task from another thread through its foreign-wake queue). They carry controller
//! requests forwarded to shard 0, new metadata images published by the controller to every
//! shard (DESIGN §1), and metrics snapshots for a scrape. Produce and fetch never appear here.

use crate::config::ConfigAlteration;
use crate::controller_rpc::{ControllerCall, ControllerCallReply, QuorumView};
use crate::metadata::MetadataImage;
use crate::metrics::ShardSnapshot;
use crate::scram::{ScramAlterError, ScramAlterOutcome, ScramDeletion, ScramUpsertion};
use futures::channel::{mpsc, oneshot};
use std::sync::Arc;
use uuid::Uuid;

/// A topic to create, as CreateTopics or auto-creation describe it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; -1 means `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor; -1 means `default.replication.factor`.
    pub replication_factor: i16,
    /// Manual assignment: partition index → replica node ids.
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Topic-level config overrides.
    pub configs: Vec<(String, Option<String>)>,
}

/// A topic named by name or by id (DeleteTopics v6 allows either).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TopicRef {
    /// The name, if given.
    pub name: Option<String>,
    /// The id, if given (the nil UUID counts as absent).
    pub id: Option<Uuid>,
}

/// Partitions to add to a topic (CreatePartitions).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PartitionGrowth {
    /// Topic name.
    pub name: String,
    /// The new total partition count.
    pub count: i32,
    /// Replica node ids for each new partition, if the client chose them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// The controller's answer for one topic.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TopicOutcome {
    /// Topic name (empty when an unknown id was given).
    pub name: String,
    /// Topic id (nil when unknown).
    pub topic_id: Uuid,
    /// Kafka error code.
    pub error_code: i16,
    /// Human-readable reason for the error.
    pub error_message: Option<String>,
    /// Partition count after the operation.
    pub num_partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// A resource whose configs AlterConfigs / IncrementalAlterConfigs change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfigTarget {
    /// A topic, by name.
    Topic(String),
    /// The cluster-wide dynamic broker defaults (resource BROKER "").
    BrokerDefaults,
    /// One broker's dynamic configs (resource BROKER "<id>"), by broker id.
    Broker(i32),
}

/// One resource's config change, as the controller receives it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ResourceAlteration {
    /// The resource.
    pub target: ConfigTarget,
    /// The change.
    pub alteration: ConfigAlteration,
}

/// The controller's answer for one resource of an AlterConfigs-style request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigOutcome {
    /// Kafka error code.
    pub error_code: i16,
    /// Human-readable reason for the error.
    pub error_message: Option<String>,
}

/// Which leader an ElectLeaders request asks for (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ElectionType {
    /// The preferred replica (the first), when it is live and in sync.
    Preferred,
    /// Any live replica for a partition without a leader, in sync or not.
    Unclean,
}

impl ElectionType {
    /// The type of Kafka's wire value (0 preferred, 1 unclean).
    pub fn from_wire(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// The controller's answer for one partition of an ElectLeaders request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ElectionOutcome {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Kafka error code (ELECTION_NOT_NEEDED when the partition already has the leader asked
    /// for).
    pub error_code: i16,
    /// Why, when it failed.
    pub error_message: Option<String>,
}

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionReassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The target replicas (node ids, preferred leader first); `None` cancels the
    /// reassignment in progress.
    pub replicas: Option<Vec<i32>>,
}

/// The controller's answer for one partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReassignmentOutcome {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Kafka error code (0: the reassignment started, completed, or was cancelled).
    pub error_code: i16,
    /// Why, when it failed.
    pub error_message: Option<String>,
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OngoingReassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The partition's replicas now: the target replicas, then those being removed.
    pub replicas: Vec<i32>,
    /// The replicas being added.
    pub adding_replicas: Vec<i32>,
    /// The replicas being removed.
    pub removing_replicas: Vec<i32>,
}

/// Work only the controller (shard 0) may do, because it changes the cluster metadata.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ControllerCommand {
    /// Create topics (or only validate the request).
    CreateTopics {
        /// The topics.
        topics: Vec<NewTopic>,
        /// Check everything but change nothing.
        validate_only: bool,
    },
    /// Delete topics.
    DeleteTopics {
        /// The topics.
        topics: Vec<TopicRef>,
    },
    /// Add partitions to topics.
    CreatePartitions {
        /// The topics and their new counts.
        topics: Vec<PartitionGrowth>,
        /// Check everything but change nothing.
        validate_only: bool,
    },
    /// Change topic or dynamic broker configs (or only validate the change).
    AlterConfigs {
        /// The resources and their changes.
        resources: Vec<ResourceAlteration>,
        /// Check everything but change nothing.
        validate_only: bool,
    },
    /// Delete and upsert users' SCRAM credentials (AlterUserScramCredentials).
    AlterScramCredentials {
        /// Credentials to delete.
        deletions: Vec<ScramDeletion>,
        /// Credentials to create or replace.
        upsertions: Vec<ScramUpsertion>,
    },
    /// Hand out a block of producer ids.
    AllocateProducerIds {
        /// How many ids.
        count: i64,
    },
    /// Elect leaders (ElectLeaders).
    ElectLeaders {
        /// Which leader.
        election: ElectionType,
        /// The partitions by topic; `None` means every partition.
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
    /// Start, replace or cancel partition reassignments (AlterPartitionReassignments).
    AlterPartitionReassignments {
        /// The partitions and their target replicas, in request order.
        reassignments: Vec<PartitionReassignment>,
        /// Whether a target may have another replica count than the partition (KIP-860).
        allow_replication_factor_change: bool,
    },
    /// The reassignments in progress (ListPartitionReassignments); reads, changes nothing.
    ListPartitionReassignments {
        /// The partitions by topic; `None` means every partition.
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
}

impl ControllerCommand {
    /// The reply that refuses every part of this command with `code` and `why`, without
    /// deciding anything: the controller could not be reached, or did not commit in time.
    pub fn failed(&self, code: kafka_protocol::ResponseError, why: &str) -> ControllerReply {
        let topic = |name: String, topic_id: Uuid| TopicOutcome {
            name,
            topic_id,
            error_code: code.code(),
            error_message: Some(why.to_string()),
            num_partitions: -1,
            replication_factor: -1,
        };
        match self {
            ControllerCommand::CreateTopics { topics, .. } => ControllerReply::Topics(
                topics
                    .iter()
                    .map(|t| topic(t.name.clone(), Uuid::nil()))
                    .collect(),
            ),
            ControllerCommand::DeleteTopics { topics } => ControllerReply::Topics(
                topics
                    .iter()
                    .map(|t| {
                        topic(
                            t.name.clone().unwrap_or_default(),
                            t.id.unwrap_or(Uuid::nil()),
                        )
                    })
                    .collect(),
            ),
            ControllerCommand::CreatePartitions { topics, .. } => ControllerReply::Topics(
                topics
                    .iter()
                    .map(|t| topic(t.name.clone(), Uuid::nil()))
                    .collect(),
            ),
            ControllerCommand::AlterConfigs { resources, .. } => ControllerReply::Configs(
                resources
                    .iter()
                    .map(|_| ConfigOutcome {
                        error_code: code.code(),
                        error_message: Some(why.to_string()),
                    })
                    .collect(),
            ),
            ControllerCommand::AlterScramCredentials {
                deletions,
                upsertions,
            } => {
                let mut users: Vec<&str> = Vec::new();
                for user in deletions
                    .iter()
                    .map(|d| d.user.as_str())
                    .chain(upsertions.iter().map(|u| u.user.as_str()))
                {
                    if !users.contains(&user) {
                        users.push(user);
                    }
                }
                let error = if code == kafka_protocol::ResponseError::RequestTimedOut {
                    ScramAlterError::TimedOut(why.to_string())
                } else {
                    ScramAlterError::ControllerUnavailable(why.to_string())
                };
                ControllerReply::ScramCredentials(
                    users
                        .into_iter()
                        .map(|user| ScramAlterOutcome {
                            user: user.to_string(),
                            result: Err(error.clone()),
                        })
                        .collect(),
                )
            }
            ControllerCommand::AllocateProducerIds { .. } => {
                ControllerReply::ProducerIds { first: -1 }
            }
            ControllerCommand::ElectLeaders { partitions, .. } => ControllerReply::Elections {
                error_code: code.code(),
                error_message: Some(why.to_string()),
                results: partitions
                    .iter()
                    .flatten()
                    .flat_map(|(topic, indexes)| {
                        indexes.iter().map(|i| ElectionOutcome {
                            topic: topic.clone(),
                            partition: *i,
                            error_code: code.code(),
                            error_message: Some(why.to_string()),
                        })
                    })
                    .collect(),
            },
            ControllerCommand::AlterPartitionReassignments { reassignments, .. } => {
                ControllerReply::Reassignments {
                    error_code: code.code(),
                    error_message: Some(why.to_string()),
                    results: reassignments
                        .iter()
                        .map(|r| ReassignmentOutcome {
                            topic: r.topic.clone(),
                            partition: r.partition,
                            error_code: code.code(),
                            error_message: Some(why.to_string()),
                        })
                        .collect(),
                }
            }
            ControllerCommand::ListPartitionReassignments { .. } => {
                ControllerReply::OngoingReassignments {
                    error_code: code.code(),
                    error_message: Some(why.to_string()),
                    reassignments: Vec::new(),
                }
            }
        }
    }
}

/// The controller's answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ControllerReply {
    /// One outcome per topic, in request order.
    Topics(Vec<TopicOutcome>),
    /// One outcome per config resource, in request order.
    Configs(Vec<ConfigOutcome>),
    /// One outcome per distinct user of an AlterUserScramCredentials request.
    ScramCredentials(Vec<ScramAlterOutcome>),
    /// The first id of a block of producer ids.
    ProducerIds {
        /// First id of the block.
        first: i64,
    },
    /// The answer to ElectLeaders: one outcome per partition (for an election of every
    /// partition, only those that needed one), and a request-level error.
    Elections {
        /// Kafka error code of the whole request (the controller could not be reached, say).
        error_code: i16,
        /// Why, when it failed.
        error_message: Option<String>,
        /// Per partition.
        results: Vec<ElectionOutcome>,
    },
    /// The answer to AlterPartitionReassignments: one outcome per partition, in request
    /// order, and a request-level error.
    Reassignments {
        /// Kafka error code of the whole request (the controller could not be reached, say).
        error_code: i16,
        /// Why, when it failed.
        error_message: Option<String>,
        /// Per partition.
        results: Vec<ReassignmentOutcome>,
    },
    /// The answer to ListPartitionReassignments.
    OngoingReassignments {
        /// Kafka error code of the whole request.
        error_code: i16,
        /// Why, when it failed.
        error_message: Option<String>,
        /// The reassignments in progress, by topic name then partition.
        reassignments: Vec<OngoingReassignment>,
    },
}

/// A message to a shard.
pub enum ShardMessage {
    /// For shard 0: run a controller command and reply.
    Controller {
        /// The command.
        command: ControllerCommand,
        /// Where the reply goes.
        reply: oneshot::Sender<ControllerReply>,
    },
    /// For shard 0: take a call to the active controller (AlterPartition, say) and reply.
    ControllerCall {
        /// The call.
        call: ControllerCall,
        /// Where the reply goes.
        reply: oneshot::Sender<ControllerCallReply>,
    },
    /// For shard 0: describe the controller quorum, as its leader sees it.
    DescribeQuorum {
        /// Where the answer goes.
        reply: oneshot::Sender<Result<QuorumView, String>>,
    },
    /// Report this shard's metrics (for a scrape).
    CollectMetrics {
        /// Where the snapshot goes.
        reply: oneshot::Sender<ShardSnapshot>,
    },
    /// Adopt a new metadata image (open / close partition logs accordingly), then confirm.
    ApplyMetadata {
        /// The image.
        image: Arc<MetadataImage>,
        /// Completed once the shard has adopted it, with the partitions whose logs it could not
        /// open.
        done: oneshot::Sender<Vec<OfflinePartition>>,
    },
}

/// A partition placed on a shard whose log the shard could not open (it stays offline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflinePartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub index: i32,
    /// Why the log could not be opened.
    pub reason: String,
}

/// The sending ends of every shard's inbox.
#[derive(Clone)]
pub struct ShardRouter {
    inboxes: Vec<mpsc::UnboundedSender<ShardMessage>>,
}

/// Why a cross-shard call got no answer.
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is not running (the broker is shutting down)")]
pub struct ShardUnavailable(pub u32);

impl ShardRouter {
    /// Channels for `shards` shards; the receivers go to the shards, by index.
    pub fn new(shards: u32) -> (ShardRouter, Vec<mpsc::UnboundedReceiver<ShardMessage>>) {
        let (inboxes, receivers) = (0..shards).map(|_| mpsc::unbounded()).unzip();
        (ShardRouter { inboxes }, receivers)
    }

    /// How many shards there are.
    pub fn shards(&self) -> u32 {
        self.inboxes.len() as u32
    }

    /// Sends `command` to the controller and waits for its reply.
    pub async fn call_controller(
        &self,
        command: ControllerCommand,
    ) -> Result<ControllerReply, ShardUnavailable> {
        let (reply, answer) = oneshot::channel();
        self.send(0, ShardMessage::Controller { command, reply })?;
        answer.await.map_err(|_| ShardUnavailable(0))
    }

    /// Sends `call` to shard 0, which takes it to the active controller, and waits for the
    /// reply.
    pub async fn call(
        &self,
        call: ControllerCall,
    ) -> Result<ControllerCallReply, ShardUnavailable> {
        let (reply, answer) = oneshot::channel();
        self.send(0, ShardMessage::ControllerCall { call, reply })?;
        answer.await.map_err(|_| ShardUnavailable(0))
    }

    /// Asks shard 0 for the controller quorum's state, as its leader sees it.
    pub async fn describe_quorum(&self) -> Result<QuorumView, String> {
        let (reply, answer) = oneshot::channel();
        self.send(0, ShardMessage::DescribeQuorum { reply })
            .map_err(|e| e.to_string())?;
        answer.await.map_err(|_| ShardUnavailable(0).to_string())?
    }

    /// Publishes `image` to every shard and waits until all have adopted it; returns the
    /// partitions the shards tried to open and could not.
    pub async fn publish(
        &self,
        image: Arc<MetadataImage>,
    ) -> Result<Vec<OfflinePartition>, ShardUnavailable> {
        let mut pending = Vec::with_capacity(self.inboxes.len());
        for shard in 0..self.shards() {
            let (done, adopted) = oneshot::channel();
            self.send(
                shard,
                ShardMessage::ApplyMetadata {
                    image: image.clone(),
                    done,
                },
            )?;
            pending.push((shard, adopted));
        }
        let mut offline = Vec::new();
        for (shard, adopted) in pending {
            offline.extend(adopted.await.map_err(|_| ShardUnavailable(shard))?);
        }
        Ok(offline)
    }

    /// Collects every shard's metrics snapshot, in shard order.
    pub async fn collect_metrics(&self) -> Result<Vec<ShardSnapshot>, ShardUnavailable> {
        let mut pending = Vec::with_capacity(self.inboxes.len());
        for shard in 0..self.shards() {
            let (reply, snapshot) = oneshot::channel();
            self.send(shard, ShardMessage::CollectMetrics { reply })?;
            pending.push((shard, snapshot));
        }
        let mut out = Vec::with_capacity(pending.len());
        for (shard, snapshot) in pending {
            out.push(snapshot.await.map_err(|_| ShardUnavailable(shard))?);
        }
        Ok(out)
    }

    fn send(&self, shard: u32, message: ShardMessage) -> Result<(), ShardUnavailable> {
        self.inboxes
            .get(shard as usize)
            .ok_or(ShardUnavailable(shard))?
            .unbounded_send(message)
            .map_err(|_| ShardUnavailable(shard))
    }
}
