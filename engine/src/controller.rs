//! The controller: the one place that changes cluster metadata.
//!
//! It runs on shard 0. Other shards reach it with [`crate::messages::ControllerCommand`]s;
//! commands run one at a time (a shard-local async mutex), each validated in full before
//! anything changes. A change is persisted first, then published to every shard as a new
//! [`MetadataImage`]; the reply goes out only after every shard has adopted it, so a client
//! that created a topic can use it on any shard at once.

use crate::config::{validate_topic_config, BrokerConfig, TopicConfigs};
use crate::messages::{
    ControllerCommand, ControllerReply, NewTopic, PartitionGrowth, ShardRouter, TopicOutcome,
    TopicRef,
};
use crate::metadata::{least_loaded, ClusterState, MetadataImage, PartitionState, TopicState};
use kafka_protocol::ResponseError;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{error, info};
use uuid::Uuid;

/// Longest legal topic name (Kafka's limit).
const MAX_TOPIC_NAME_LEN: usize = 249;

/// The controller's state, owned by shard 0.
pub struct Controller {
    state: RefCell<ClusterState>,
    metadata_dir: PathBuf,
    config: Arc<BrokerConfig>,
    shards: u32,
    router: ShardRouter,
    lock: futures::lock::Mutex<()>,
}

/// A result for one topic: error code and message, or success.
type Check = Result<(), (ResponseError, String)>;

impl Controller {
    /// A controller over `state`, persisting to `metadata_dir`.
    pub fn new(
        state: ClusterState,
        metadata_dir: PathBuf,
        config: Arc<BrokerConfig>,
        shards: u32,
        router: ShardRouter,
    ) -> Controller {
        Controller {
            state: RefCell::new(state),
            metadata_dir,
            config,
            shards,
            router,
            lock: futures::lock::Mutex::new(()),
        }
    }

    /// Runs one command to completion (persisted and published) and returns the reply.
    pub async fn execute(&self, command: ControllerCommand) -> ControllerReply {
        let _serialized = self.lock.lock().await;
        let mut next = self.state.borrow().clone();
        let (reply, changed) = match command {
            ControllerCommand::CreateTopics {
                topics,
                validate_only,
            } => {
                let outcomes = self.create_topics(&mut next, topics, validate_only);
                let changed = !validate_only && outcomes.iter().any(|o| o.error_code == 0);
                (ControllerReply::Topics(outcomes), changed)
            }
            ControllerCommand::DeleteTopics { topics } => {
                let outcomes = self.delete_topics(&mut next, topics);
                let changed = outcomes.iter().any(|o| o.error_code == 0);
                (ControllerReply::Topics(outcomes), changed)
            }
            ControllerCommand::CreatePartitions {
                topics,
                validate_only,
            } => {
                let outcomes = self.create_partitions(&mut next, topics, validate_only);
                let changed = !validate_only && outcomes.iter().any(|o| o.error_code == 0);
                (ControllerReply::Topics(outcomes), changed)
            }
            ControllerCommand::AllocateProducerIds { count } => {
                let first = next.next_producer_id;
                next.next_producer_id += count.max(1);
                (ControllerReply::ProducerIds { first }, true)
            }
        };
        if !changed {
            return reply;
        }
        if let Err(e) = self.commit(next).await {
            error!("metadata change not applied: {e}");
            return fail_all(reply, &e);
        }
        reply
    }

    /// Persists `next`, makes it current and publishes it to every shard.
    async fn commit(&self, next: ClusterState) -> Result<(), String> {
        next.save(&self.metadata_dir).map_err(|e| e.to_string())?;
        let image = Arc::new(MetadataImage::new(next.clone(), &self.config, self.shards));
        *self.state.borrow_mut() = next;
        self.router.publish(image).await.map_err(|e| e.to_string())
    }

    fn create_topics(
        &self,
        state: &mut ClusterState,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<TopicOutcome> {
        let mut seen = BTreeMap::<String, usize>::new();
        for t in &topics {
            *seen.entry(t.name.clone()).or_default() += 1;
        }
        let mut load = state.shard_load(self.shards);
        let mut outcomes = Vec::with_capacity(topics.len());
        for t in topics {
            let partitions = if t.num_partitions == -1 && t.assignments.is_empty() {
                self.config.num_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 && t.assignments.is_empty() {
                self.config.default_replication_factor
            } else {
                t.replication_factor
            };
            let mut outcome = TopicOutcome {
                name: t.name.clone(),
                topic_id: Uuid::nil(),
                error_code: 0,
                error_message: None,
                num_partitions: partitions,
                replication_factor: rf,
            };
            let check = if seen.get(&t.name).copied().unwrap_or(0) > 1 {
                Err((ResponseError::InvalidRequest, format!("Create topics request from client contains multiple entries for the topic '{}'.", t.name)))
            } else {
                self.check_new_topic(state, &t, partitions, rf)
            };
            match check.and_then(|()| self.place(&t, partitions, &mut load)) {
                Err((code, message)) => {
                    outcome.error_code = code.code();
                    outcome.error_message = Some(message);
                }
                Ok(placement) => {
                    outcome.num_partitions = placement.len() as i32;
                    outcome.replication_factor = 1;
                    if !validate_only {
                        let configs = t
                            .configs
                            .iter()
                            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                            .collect();
                        let id = Uuid::new_v4();
                        outcome.topic_id = id;
                        let configs = TopicConfigs::new(configs).unwrap_or_default();
                        let internal = t.name.starts_with("__");
                        state.topics.insert(
                            t.name.clone(),
                            TopicState {
                                id,
                                partitions: placement,
                                configs,
                                internal,
                            },
                        );
                        info!(topic = %t.name, partitions = outcome.num_partitions, "created topic");
                    }
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    fn check_new_topic(
        &self,
        state: &ClusterState,
        t: &NewTopic,
        partitions: i32,
        rf: i16,
    ) -> Check {
        validate_topic_name(&t.name)?;
        if state.topics.contains_key(&t.name) {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("Topic '{}' already exists.", t.name),
            ));
        }
        let normalized = t.name.replace('.', "_");
        if let Some(other) = state
            .topics
            .keys()
            .find(|k| k.replace('.', "_") == normalized)
        {
            return Err((
                ResponseError::InvalidTopicException,
                format!("Topic '{}' collides with existing topic: {other}", t.name),
            ));
        }
        if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                return Err((
                    ResponseError::InvalidRequest,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            self.check_assignments(t.assignments.iter().map(|(_, r)| r.as_slice()))?;
            let mut indexes: Vec<i32> = t.assignments.iter().map(|(p, _)| *p).collect();
            indexes.sort_unstable();
            if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "Partitions should be a consecutive 0-based integer sequence".into(),
                ));
            }
        } else {
            if partitions < 1 {
                return Err((
                    ResponseError::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.".into(),
                ));
            }
            if rf < 1 {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    "Replication factor must be larger than 0.".into(),
                ));
            }
            if rf > 1 {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    unsupported_replication(rf, self.shards),
                ));
            }
        }
        for (name, value) in &t.configs {
            let Some(value) = value else {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Null value not supported for topic configs: {name}"),
                ));
            };
            validate_topic_config(name, value)
                .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
        }
        Ok(())
    }

    /// Checks manual replica assignments: one replica each, on a node of this cluster.
    fn check_assignments<'a>(&self, assignments: impl Iterator<Item = &'a [i32]>) -> Check {
        for replicas in assignments {
            if replicas.len() != 1 {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    unsupported_replication(replicas.len() as i16, self.shards),
                ));
            }
            if self.shard_of_node(replicas[0]).is_none() {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Replica assignment names node {}, which is not a node of this cluster",
                        replicas[0]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Places partitions: on the assigned nodes, or each on the least-loaded shard.
    fn place(
        &self,
        t: &NewTopic,
        partitions: i32,
        load: &mut [u64],
    ) -> Result<Vec<PartitionState>, (ResponseError, String)> {
        if !t.assignments.is_empty() {
            let mut sorted = t.assignments.clone();
            sorted.sort_by_key(|(p, _)| *p);
            return Ok(sorted
                .iter()
                .filter_map(|(_, r)| self.shard_of_node(r[0]))
                .map(|shard| {
                    load[shard as usize] += 1;
                    PartitionState {
                        shard,
                        leader_epoch: 0,
                    }
                })
                .collect());
        }
        Ok((0..partitions)
            .map(|_| {
                let shard = least_loaded(load);
                load[shard as usize] += 1;
                PartitionState {
                    shard,
                    leader_epoch: 0,
                }
            })
            .collect())
    }

    fn shard_of_node(&self, node: i32) -> Option<u32> {
        let base = self.config.broker_id * 1000;
        (node >= base && node < base + self.shards as i32).then(|| (node - base) as u32)
    }

    fn delete_topics(&self, state: &mut ClusterState, topics: Vec<TopicRef>) -> Vec<TopicOutcome> {
        topics
            .into_iter()
            .map(|r| {
                let name = match (&r.name, r.id) {
                    (Some(n), _) => Some(n.clone()),
                    (None, Some(id)) => state
                        .topics
                        .iter()
                        .find(|(_, t)| t.id == id)
                        .map(|(n, _)| n.clone()),
                    (None, None) => None,
                };
                let mut outcome = TopicOutcome {
                    name: name.clone().unwrap_or_default(),
                    topic_id: r.id.unwrap_or(Uuid::nil()),
                    error_code: 0,
                    error_message: None,
                    num_partitions: 0,
                    replication_factor: 1,
                };
                let found = name
                    .as_ref()
                    .and_then(|n| state.topics.get(n).map(|t| (n.clone(), t.clone())));
                match found {
                    None => {
                        let code = if r.name.is_none() && r.id.is_some() {
                            ResponseError::UnknownTopicId
                        } else {
                            ResponseError::UnknownTopicOrPartition
                        };
                        outcome.error_code = code.code();
                        outcome.error_message =
                            Some("This server does not host this topic.".into());
                    }
                    Some(_) if !self.config.delete_topic_enable => {
                        outcome.error_code = ResponseError::TopicDeletionDisabled.code();
                        outcome.error_message =
                            Some("Topic deletion is disabled (delete.topic.enable=false).".into());
                    }
                    Some((n, t)) if t.internal => {
                        outcome.topic_id = t.id;
                        outcome.error_code = ResponseError::InvalidRequest.code();
                        outcome.error_message = Some(format!(
                            "{n} is an internal topic (it holds the consumer groups) and cannot be deleted."
                        ));
                    }
                    Some((n, t)) => {
                        outcome.topic_id = t.id;
                        outcome.num_partitions = t.partitions.len() as i32;
                        state.topics.remove(&n);
                        info!(topic = %n, "deleted topic");
                    }
                }
                outcome
            })
            .collect()
    }

    fn create_partitions(
        &self,
        state: &mut ClusterState,
        topics: Vec<PartitionGrowth>,
        validate_only: bool,
    ) -> Vec<TopicOutcome> {
        let mut load = state.shard_load(self.shards);
        let mut seen = HashSet::new();
        topics
            .into_iter()
            .map(|g| {
                let mut outcome = TopicOutcome {
                    name: g.name.clone(),
                    topic_id: Uuid::nil(),
                    error_code: 0,
                    error_message: None,
                    num_partitions: g.count,
                    replication_factor: 1,
                };
                let duplicate = !seen.insert(g.name.clone());
                let result = match state.topics.get_mut(&g.name) {
                    _ if duplicate => Err((
                        ResponseError::InvalidRequest,
                        "Duplicate topic in request.".to_string(),
                    )),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("The topic '{}' does not exist.", g.name),
                    )),
                    Some(t) if t.internal => Err((
                        ResponseError::InvalidRequest,
                        format!(
                            "{} is an internal topic; its partition count is fixed (offsets.topic.num.partitions).",
                            g.name
                        ),
                    )),
                    Some(t) => grow(t, &g, &mut load, self, validate_only),
                };
                if let Err((code, message)) = result {
                    outcome.error_code = code.code();
                    outcome.error_message = Some(message);
                }
                outcome
            })
            .collect()
    }
}

fn grow(
    t: &mut TopicState,
    g: &PartitionGrowth,
    load: &mut [u64],
    c: &Controller,
    validate_only: bool,
) -> Check {
    let current = t.partitions.len() as i32;
    if g.count <= current {
        let msg = if g.count == current {
            format!("Topic already has {current} partitions.")
        } else {
            format!(
                "Topic currently has {current} partitions, which is higher than the requested {}.",
                g.count
            )
        };
        return Err((ResponseError::InvalidPartitions, msg));
    }
    let added = (g.count - current) as usize;
    let shards: Vec<u32> = match &g.assignments {
        Some(a) => {
            if a.len() != added {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("Increasing the number of partitions by {added} but {} assignments provided.", a.len()),
                ));
            }
            c.check_assignments(a.iter().map(Vec::as_slice))?;
            a.iter().filter_map(|r| c.shard_of_node(r[0])).collect()
        }
        None => (0..added)
            .map(|_| {
                let s = least_loaded(load);
                load[s as usize] += 1;
                s
            })
            .collect(),
    };
    if !validate_only {
        t.partitions
            .extend(shards.into_iter().map(|shard| PartitionState {
                shard,
                leader_epoch: 0,
            }));
    }
    Ok(())
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Check {
    let invalid = |why: String| Err((ResponseError::InvalidTopicException, why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(format!("Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn unsupported_replication(rf: i16, shards: u32) -> String {
    format!(
        "Replication factor {rf} is not supported yet: Sluice does not replicate partitions, so every partition \
         has one replica (this broker advertises {shards} shard node(s), which share one failure domain). Use a replication factor of 1."
    )
}

fn fail_all(reply: ControllerReply, why: &str) -> ControllerReply {
    match reply {
        ControllerReply::Topics(outcomes) => ControllerReply::Topics(
            outcomes
                .into_iter()
                .map(|mut o| {
                    if o.error_code == 0 {
                        o.error_code = ResponseError::KafkaStorageError.code();
                        o.error_message =
                            Some(format!("metadata change could not be persisted: {why}"));
                    }
                    o
                })
                .collect(),
        ),
        ControllerReply::ProducerIds { .. } => ControllerReply::ProducerIds { first: -1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
