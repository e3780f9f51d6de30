//! The controller's decisions: what a metadata change does, validated in full.
//!
//! [`Controller::decide`] takes the current [`ClusterState`] and one command and returns the
//! reply and, when something changes, the next state. It changes nothing itself: the active
//! controller ([`crate::quorum_controller`]) turns the difference into metadata log records,
//! and the change happens when the quorum has committed them and every broker applies them.
//! Each command is validated in full before anything changes.

pub mod alter_partition;
pub mod election;
pub mod reassignment;

use crate::config::{
    validate_dynamic_broker_configs, BrokerConfig, ConfigError, ConfigKind, TopicConfigs,
};
use crate::messages::{
    ConfigOutcome, ConfigTarget, ControllerCommand, ControllerReply, NewTopic, OfflinePartition,
    PartitionGrowth, ResourceAlteration, TopicOutcome, TopicRef,
};
use crate::metadata::{ClusterState, PartitionState, TopicState};
use crate::partition_caps::PartitionBudget;
use crate::scram::ScramAlterError;
use kafka_protocol::ResponseError;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use tracing::info;
use uuid::Uuid;

/// Longest legal topic name (Kafka's limit).
const MAX_TOPIC_NAME_LEN: usize = 249;

/// The controller's validation and placement rules.
pub struct Controller {
    config: Arc<BrokerConfig>,
}

/// A result for one topic: error code and message, or success.
type Check = Result<(), (ResponseError, String)>;

impl Controller {
    /// A controller deciding with `config`'s defaults and limits.
    pub fn new(config: Arc<BrokerConfig>) -> Controller {
        Controller { config }
    }

    /// Decides `command` against `state`: the reply, and the next state if anything changes.
    pub fn decide(
        &self,
        state: &ClusterState,
        command: ControllerCommand,
    ) -> (ControllerReply, Option<ClusterState>) {
        let mut next = state.clone();
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
            ControllerCommand::AlterConfigs {
                resources,
                validate_only,
            } => {
                let outcomes = self.alter_configs(&mut next, resources, validate_only);
                let changed = !validate_only && outcomes.iter().any(|o| o.error_code == 0);
                (ControllerReply::Configs(outcomes), changed)
            }
            ControllerCommand::AlterScramCredentials {
                deletions,
                upsertions,
            } => {
                let outcomes = next.scram_credentials.alter(&deletions, &upsertions);
                for o in outcomes.iter().filter(|o| o.result.is_ok()) {
                    info!(user = %o.user, "SCRAM credentials changed");
                }
                let changed = outcomes.iter().any(|o| o.result.is_ok());
                (ControllerReply::ScramCredentials(outcomes), changed)
            }
            ControllerCommand::AllocateProducerIds { count } => {
                let first = next.next_producer_id;
                next.next_producer_id += count.max(1);
                (ControllerReply::ProducerIds { first }, true)
            }
            ControllerCommand::ElectLeaders {
                election,
                partitions,
            } => {
                let results = election::elect_leaders(&mut next, election, partitions);
                let changed = results.iter().any(|o| o.error_code == 0);
                let reply = ControllerReply::Elections {
                    error_code: 0,
                    error_message: None,
                    results,
                };
                (reply, changed)
            }
            ControllerCommand::AlterPartitionReassignments {
                reassignments,
                allow_replication_factor_change,
            } => {
                let results = reassignment::alter_partition_reassignments(
                    &mut next,
                    &self.config,
                    reassignments,
                    allow_replication_factor_change,
                );
                let changed = results.iter().any(|o| o.error_code == 0);
                let reply = ControllerReply::Reassignments {
                    error_code: 0,
                    error_message: None,
                    results,
                };
                (reply, changed)
            }
            ControllerCommand::ListPartitionReassignments { partitions } => {
                let reply = ControllerReply::OngoingReassignments {
                    error_code: 0,
                    error_message: None,
                    reassignments: reassignment::list_partition_reassignments(state, partitions),
                };
                (reply, false)
            }
        };
        (reply, changed.then_some(next))
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
        let mut budget = PartitionBudget::new(state, &self.config);
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
            match check.and_then(|()| self.place(state, &t, partitions, rf, &mut budget)) {
                Err((code, message)) => {
                    outcome.error_code = code.code();
                    outcome.error_message = Some(message);
                }
                Ok(placement) => {
                    outcome.num_partitions = placement.len() as i32;
                    outcome.replication_factor = placement
                        .first()
                        .map_or(rf, |p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX));
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
            let mut indexes = BTreeSet::new();
            for (partition, _) in &t.assignments {
                if !indexes.insert(*partition) {
                    return Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Found multiple manual partition assignments for partition {partition}"
                        ),
                    ));
                }
            }
            self.check_assignments(state, t.assignments.iter().map(|(_, r)| r.as_slice()), None)?;
            let count = i32::try_from(indexes.len()).unwrap_or(i32::MAX);
            if let Some(missing) = (0..count).find(|p| !indexes.contains(p)) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Partitions should be a consecutive 0-based integer sequence, but partition {missing} has no assignment"
                    ),
                ));
            }
        } else {
            if rf < 1 {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .into(),
                ));
            }
            if partitions < 1 {
                return Err((
                    ResponseError::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.".into(),
                ));
            }
        }
        let mut configs = BTreeMap::new();
        for (name, value) in &t.configs {
            let Some(value) = value else {
                return Err((
                    ResponseError::InvalidConfig,
                    format!("Null value not supported for topic configs: {name}"),
                ));
            };
            configs.insert(name.clone(), value.clone());
        }
        TopicConfigs::new(configs).map_err(invalid_config)?;
        Ok(())
    }

    /// Checks manual replica assignments as Kafka's controller does: an empty replica list, a
    /// node that does not exist (no registered broker has it), a node named twice, a replica
    /// count different from the other partitions' (`expected_replicas`, or the first
    /// partition's), a partition none of whose nodes is live — each is
    /// INVALID_REPLICA_ASSIGNMENT.
    fn check_assignments<'a>(
        &self,
        state: &ClusterState,
        assignments: impl Iterator<Item = &'a [i32]>,
        expected_replicas: Option<usize>,
    ) -> Check {
        let bad = |message: String| Err((ResponseError::InvalidReplicaAssignment, message));
        let mut replicas_per_partition = expected_replicas;
        for (index, replicas) in assignments.enumerate() {
            check_replica_list(state, replicas)?;
            let nodes = replicas;
            match replicas_per_partition {
                Some(expected) if expected != nodes.len() => {
                    return bad(format!(
                        "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {expected} replica(s).",
                        nodes.len()
                    ));
                }
                _ => replicas_per_partition = Some(nodes.len()),
            }
            if !nodes.iter().any(|n| state.is_live_node(*n)) {
                return bad(format!(
                    "All brokers specified in the manual partition assignment for partition {index} are fenced or in controlled shutdown."
                ));
            }
        }
        Ok(())
    }

    /// Places partitions within the partition caps: on the assigned nodes, or by the
    /// placement rules of [`PartitionBudget::place`] with replication factor `rf`. Each new
    /// partition's ISR is its live replicas, led by the first of them.
    fn place(
        &self,
        state: &ClusterState,
        t: &NewTopic,
        partitions: i32,
        rf: i16,
        budget: &mut PartitionBudget,
    ) -> Result<Vec<PartitionState>, (ResponseError, String)> {
        let assignments = if t.assignments.is_empty() {
            budget.place(&t.name, u64::try_from(partitions).unwrap_or(0), rf)?
        } else {
            let mut sorted = t.assignments.clone();
            sorted.sort_by_key(|(p, _)| *p);
            let assignments: Vec<Vec<i32>> = sorted.into_iter().map(|(_, r)| r).collect();
            budget.place_on(&t.name, &assignments)?;
            assignments
        };
        Ok(new_partitions(state, assignments))
    }

    /// AlterConfigs / IncrementalAlterConfigs: each resource is validated in full on its own
    /// and changed only if valid (and not `validate_only`).
    fn alter_configs(
        &self,
        state: &mut ClusterState,
        resources: Vec<ResourceAlteration>,
        validate_only: bool,
    ) -> Vec<ConfigOutcome> {
        resources
            .iter()
            .map(|r| match alter_resource(state, r, validate_only) {
                Ok(()) => ConfigOutcome {
                    error_code: 0,
                    error_message: None,
                },
                Err((code, message)) => ConfigOutcome {
                    error_code: code.code(),
                    error_message: Some(message),
                },
            })
            .collect()
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
        let mut budget = PartitionBudget::new(state, &self.config);
        let mut seen = HashSet::new();
        let live = state.clone();
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
                    Some(t) => grow(t, &g, &mut budget, self, &live, validate_only),
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
    budget: &mut PartitionBudget,
    c: &Controller,
    state: &ClusterState,
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
    let added = u64::try_from(g.count.saturating_sub(current)).unwrap_or(0);
    let rf = t.partitions.first().map_or(1, |p| p.replicas.len());
    let assignments: Vec<Vec<i32>> = match &g.assignments {
        Some(a) => {
            if a.len() as u64 != added {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("Increasing the number of partitions by {added} but {} assignments provided.", a.len()),
                ));
            }
            c.check_assignments(state, a.iter().map(Vec::as_slice), Some(rf))?;
            budget.place_on(&g.name, a)?;
            a.clone()
        }
        None => budget.place(&g.name, added, i16::try_from(rf).unwrap_or(i16::MAX))?,
    };
    if !validate_only {
        t.partitions.extend(new_partitions(state, assignments));
    }
    Ok(())
}

/// New partitions on the given replicas: each one's ISR is its live replicas, led by the first
/// of them (the replicas were checked to include a live one).
fn new_partitions(state: &ClusterState, assignments: Vec<Vec<i32>>) -> Vec<PartitionState> {
    let count = assignments.len();
    let partitions: Vec<PartitionState> = assignments
        .into_iter()
        .filter_map(|replicas| PartitionState::new(replicas, |n| state.is_live_node(n)))
        .collect();
    debug_assert_eq!(
        partitions.len(),
        count,
        "every new partition has a live replica"
    );
    partitions
}

/// Alters one resource's configs in `state` (unless `validate_only`).
fn alter_resource(state: &mut ClusterState, r: &ResourceAlteration, validate_only: bool) -> Check {
    match &r.target {
        ConfigTarget::Topic(name) => {
            validate_topic_name(name)?;
            let Some(topic) = state.topics.get_mut(name) else {
                return Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                ));
            };
            let current = topic
                .configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let next = r
                .alteration
                .apply(ConfigKind::Topic, &current)
                .map_err(invalid_config)?;
            let configs = TopicConfigs::new(next).map_err(invalid_config)?;
            if !validate_only {
                info!(topic = %name, "topic configs changed");
                topic.configs = configs;
            }
        }
        ConfigTarget::BrokerDefaults | ConfigTarget::Broker(_) => {
            let dynamic = &mut state.broker_configs;
            let current = match r.target {
                ConfigTarget::Broker(id) => dynamic.broker(id).cloned().unwrap_or_default(),
                _ => dynamic.cluster_default.clone(),
            };
            let next = r
                .alteration
                .apply(ConfigKind::Broker, &current)
                .map_err(invalid_config)?;
            let configs = validate_dynamic_broker_configs(&next).map_err(invalid_config)?;
            if !validate_only {
                match r.target {
                    ConfigTarget::Broker(id) => {
                        info!(broker = id, "dynamic broker configs changed");
                        dynamic.set_broker(id, configs);
                    }
                    _ => {
                        info!("dynamic cluster-wide broker configs changed");
                        dynamic.cluster_default = configs;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A rejected config as a Kafka error: INVALID_CONFIG with the reason.
fn invalid_config(e: ConfigError) -> (ResponseError, String) {
    (ResponseError::InvalidConfig, e.to_string())
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

/// Checks one partition's manual replica list as Kafka's `validateManualPartitionAssignment`
/// does: an empty list, a node that does not exist (no registered broker has it) or a node
/// named twice is INVALID_REPLICA_ASSIGNMENT. For CreateTopics, CreatePartitions and
/// AlterPartitionReassignments alike.
pub(crate) fn check_replica_list(state: &ClusterState, replicas: &[i32]) -> Check {
    let bad = |message: String| Err((ResponseError::InvalidReplicaAssignment, message));
    if replicas.is_empty() {
        return bad("The manual partition assignment includes an empty replica list.".into());
    }
    let mut nodes = replicas.to_vec();
    nodes.sort_unstable();
    for (i, node) in nodes.iter().enumerate() {
        if !state.is_registered_node(*node) {
            return bad(format!(
                "The manual partition assignment includes node {node}, but no such node exists (the nodes of this cluster are {})",
                registered_nodes_text(state)
            ));
        }
        if i > 0 && nodes[i - 1] == *node {
            return bad(format!(
                "The manual partition assignment includes the node {node} more than once."
            ));
        }
    }
    Ok(())
}

/// The registered nodes, for error messages: `1000..=1001, 2000..=2001`.
fn registered_nodes_text(state: &ClusterState) -> String {
    let ranges: Vec<String> = state
        .brokers
        .values()
        .map(|b| format!("{}..={}", b.id * 1000, b.id * 1000 + b.shards as i32 - 1))
        .collect();
    if ranges.is_empty() {
        "none: no broker is registered".into()
    } else {
        ranges.join(", ")
    }
}

/// Turns a successful outcome into `code`: its change was not committed.
fn not_committed(
    error_code: &mut i16,
    error_message: &mut Option<String>,
    code: ResponseError,
    why: &str,
) {
    if *error_code == 0 {
        *error_code = code.code();
        *error_message = Some(why.to_string());
    }
}

/// Turns the successful topic outcomes whose partitions could not be opened (out of file
/// descriptors, say) into KAFKA_STORAGE_ERROR: the change is saved, but those partitions are
/// offline until a later metadata change or a restart opens them.
pub fn report_offline(reply: ControllerReply, offline: &[OfflinePartition]) -> ControllerReply {
    let ControllerReply::Topics(mut outcomes) = reply else {
        return reply;
    };
    for o in outcomes.iter_mut().filter(|o| o.error_code == 0) {
        let mine: Vec<&OfflinePartition> = offline.iter().filter(|p| p.topic == o.name).collect();
        let Some(first) = mine.first() else {
            continue;
        };
        let mut indexes: Vec<String> = mine.iter().take(10).map(|p| p.index.to_string()).collect();
        if mine.len() > 10 {
            indexes.push(format!("and {} more", mine.len() - 10));
        }
        o.error_code = ResponseError::KafkaStorageError.code();
        o.error_message = Some(format!(
            "The change to topic '{}' is saved, but the logs of its partition(s) {} could not be opened ({}); they are offline (KAFKA_STORAGE_ERROR) until the broker opens them at its next metadata change or restart.",
            o.name,
            indexes.join(", "),
            first.reason
        ));
    }
    ControllerReply::Topics(outcomes)
}

/// Turns every successful outcome of `reply` into `code` with `why`: the change it describes
/// was not committed (the quorum has no leader, leadership moved, or the deadline passed).
pub fn fail_all(reply: ControllerReply, code: ResponseError, why: &str) -> ControllerReply {
    match reply {
        ControllerReply::Topics(mut outcomes) => {
            for o in &mut outcomes {
                not_committed(&mut o.error_code, &mut o.error_message, code, why);
            }
            ControllerReply::Topics(outcomes)
        }
        ControllerReply::Configs(mut outcomes) => {
            for o in &mut outcomes {
                not_committed(&mut o.error_code, &mut o.error_message, code, why);
            }
            ControllerReply::Configs(outcomes)
        }
        ControllerReply::ScramCredentials(outcomes) => ControllerReply::ScramCredentials(
            outcomes
                .into_iter()
                .map(|mut o| {
                    if o.result.is_ok() {
                        o.result = Err(if code == ResponseError::RequestTimedOut {
                            ScramAlterError::TimedOut(why.to_string())
                        } else {
                            ScramAlterError::ControllerUnavailable(why.to_string())
                        });
                    }
                    o
                })
                .collect(),
        ),
        ControllerReply::ProducerIds { .. } => ControllerReply::ProducerIds { first: -1 },
        ControllerReply::Elections {
            error_code,
            error_message,
            mut results,
        } => {
            for o in &mut results {
                not_committed(&mut o.error_code, &mut o.error_message, code, why);
            }
            let (mut error_code, mut error_message) = (error_code, error_message);
            not_committed(&mut error_code, &mut error_message, code, why);
            ControllerReply::Elections {
                error_code,
                error_message,
                results,
            }
        }
        ControllerReply::Reassignments {
            error_code,
            error_message,
            mut results,
        } => {
            for o in &mut results {
                not_committed(&mut o.error_code, &mut o.error_message, code, why);
            }
            let (mut error_code, mut error_message) = (error_code, error_message);
            not_committed(&mut error_code, &mut error_message, code, why);
            ControllerReply::Reassignments {
                error_code,
                error_message,
                results,
            }
        }
        reply @ ControllerReply::OngoingReassignments { .. } => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlterOp, ConfigAlteration, ConfigChange};
    use crate::metadata::broker_of_node;

    /// A controller with broker 1's defaults.
    fn controller() -> Controller {
        Controller::new(Arc::new(BrokerConfig::load(None, &[]).unwrap()))
    }

    /// A cluster of `brokers` brokers (1, 2, …) with `shards` shards each, all live.
    pub(crate) fn cluster(brokers: i32, shards: u32) -> ClusterState {
        let mut state = ClusterState::new(Some("c".into()));
        for id in 1..=brokers {
            let config = BrokerConfig::load(None, &[format!("node.id={id}")]).unwrap();
            state = state.with_live_local_broker(&config, shards);
        }
        state
    }

    fn create(
        c: &Controller,
        state: &mut ClusterState,
        name: &str,
        partitions: i32,
        rf: i16,
        assignments: &[(i32, &[i32])],
    ) -> TopicOutcome {
        let mut t = new_topic(assignments, &[]);
        t.name = name.into();
        if assignments.is_empty() {
            (t.num_partitions, t.replication_factor) = (partitions, rf);
        }
        c.create_topics(state, vec![t], false).remove(0)
    }

    #[test]
    fn topics_get_their_replication_factor_on_distinct_brokers() {
        let c = controller();
        let mut state = cluster(3, 2);
        let out = create(&c, &mut state, "t", 6, 3, &[]);
        assert_eq!((out.error_code, out.replication_factor), (0, 3), "{out:?}");
        for p in &state.topics["t"].partitions {
            let mut brokers: Vec<i32> = p.replicas.iter().map(|n| broker_of_node(*n)).collect();
            brokers.sort_unstable();
            assert_eq!(brokers, [1, 2, 3], "{p:?}");
            assert_eq!((&p.isr, p.leader), (&p.replicas, p.replicas[0]));
            assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
        }
        let out = create(&c, &mut state, "too-many", 1, 7, &[]);
        assert_eq!(
            out.error_code,
            ResponseError::InvalidReplicationFactor.code()
        );
        assert!(
            out.error_message.unwrap().starts_with("Unable to replicate the partition 7 time(s): The target replication factor of 7 cannot be reached because only 6 broker(s) are registered."),
        );

        // -1 means default.replication.factor.
        let c = Controller::new(Arc::new(
            BrokerConfig::load(None, &["default.replication.factor=2".to_string()]).unwrap(),
        ));
        let out = create(&c, &mut state, "d", 2, -1, &[]);
        assert_eq!((out.error_code, out.replication_factor), (0, 2), "{out:?}");
        assert!(state.topics["d"]
            .partitions
            .iter()
            .all(|p| p.replicas.len() == 2));
    }

    #[test]
    fn assignments_may_name_fenced_nodes_but_not_only_fenced_ones() {
        let c = controller();
        let mut state = cluster(2, 1);
        state.brokers.get_mut(&2).unwrap().fenced = true;
        let out = create(&c, &mut state, "t", -1, -1, &[(0, &[2000, 1000])]);
        assert_eq!((out.error_code, out.replication_factor), (0, 2), "{out:?}");
        let p = &state.topics["t"].partitions[0];
        assert_eq!((p.isr.as_slice(), p.leader), (&[1000][..], 1000));
        let out = create(&c, &mut state, "u", -1, -1, &[(0, &[2000])]);
        assert_eq!(
            (out.error_code, out.error_message.as_deref()),
            (
                ResponseError::InvalidReplicaAssignment.code(),
                Some("All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown.")
            )
        );
    }

    #[test]
    fn new_partitions_follow_the_topics_replication_factor() {
        let c = controller();
        let mut state = cluster(3, 1);
        create(&c, &mut state, "t", 1, 2, &[]);
        let grow = |count: i32, assignments: Option<Vec<Vec<i32>>>| PartitionGrowth {
            name: "t".into(),
            count,
            assignments,
        };
        let out = c.create_partitions(&mut state, vec![grow(3, None)], false);
        assert_eq!(out[0].error_code, 0, "{out:?}");
        let partitions = &state.topics["t"].partitions;
        assert_eq!(partitions.len(), 3);
        assert!(partitions.iter().all(|p| p.replicas.len() == 2));
        let out = c.create_partitions(&mut state, vec![grow(4, Some(vec![vec![1000]]))], false);
        assert_eq!(
            out[0].error_code,
            ResponseError::InvalidReplicaAssignment.code()
        );
        let out = c.create_partitions(
            &mut state,
            vec![grow(4, Some(vec![vec![3000, 1000]]))],
            false,
        );
        assert_eq!(out[0].error_code, 0, "{out:?}");
        assert_eq!(state.topics["t"].partitions[3].leader, 3000);
    }

    /// A cluster of broker 1 with 2 shards (nodes 1000 and 1001).
    fn one_broker() -> ClusterState {
        let config = BrokerConfig::load(None, &[]).unwrap();
        ClusterState::new(Some("c".into())).with_live_local_broker(&config, 2)
    }

    fn state_with_topic(name: &str) -> ClusterState {
        let mut state = one_broker();
        state.topics.insert(
            name.into(),
            TopicState {
                id: Uuid::new_v4(),
                partitions: PartitionState::new(vec![1000], |_| true)
                    .into_iter()
                    .collect(),
                configs: TopicConfigs::default(),
                internal: false,
            },
        );
        state
    }

    fn incremental(target: ConfigTarget, ops: &[(&str, AlterOp, &str)]) -> ResourceAlteration {
        ResourceAlteration {
            target,
            alteration: ConfigAlteration::Incremental(
                ops.iter()
                    .map(|(name, op, value)| ConfigChange {
                        name: name.to_string(),
                        op: *op,
                        value: value.to_string(),
                    })
                    .collect(),
            ),
        }
    }

    fn replace(target: ConfigTarget, pairs: &[(&str, &str)]) -> ResourceAlteration {
        ResourceAlteration {
            target,
            alteration: ConfigAlteration::Replace(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    fn topic_configs(state: &ClusterState, name: &str) -> Vec<(String, String)> {
        state.topics[name]
            .configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn incremental_topic_changes() {
        let c = controller();
        let mut state = state_with_topic("t");
        let topic = || ConfigTarget::Topic("t".into());
        let out = c.alter_configs(
            &mut state,
            vec![incremental(
                topic(),
                &[
                    ("cleanup.policy", AlterOp::Append, "compact"),
                    ("retention.ms", AlterOp::Set, "+1000"),
                    ("segment.ms", AlterOp::Delete, ""),
                ],
            )],
            false,
        );
        assert_eq!(out[0].error_code, 0, "{:?}", out[0].error_message);
        assert_eq!(
            topic_configs(&state, "t"),
            [
                ("cleanup.policy".to_string(), "delete,compact".to_string()),
                ("retention.ms".to_string(), "1000".to_string())
            ]
        );
        c.alter_configs(
            &mut state,
            vec![incremental(
                topic(),
                &[
                    ("cleanup.policy", AlterOp::Subtract, "compact"),
                    ("retention.ms", AlterOp::Delete, ""),
                ],
            )],
            false,
        );
        assert_eq!(
            topic_configs(&state, "t"),
            [("cleanup.policy".to_string(), "delete".to_string())]
        );
    }

    #[test]
    fn legacy_alter_replaces_the_whole_set() {
        let c = controller();
        let mut state = state_with_topic("t");
        let topic = || ConfigTarget::Topic("t".into());
        c.alter_configs(
            &mut state,
            vec![replace(
                topic(),
                &[("retention.ms", "1"), ("segment.ms", "2")],
            )],
            false,
        );
        let out = c.alter_configs(
            &mut state,
            vec![replace(topic(), &[("max.message.bytes", "100")])],
            false,
        );
        assert_eq!(out[0].error_code, 0);
        assert_eq!(
            topic_configs(&state, "t"),
            [("max.message.bytes".to_string(), "100".to_string())]
        );
    }

    #[test]
    fn errors_per_resource_and_validate_only() {
        let c = controller();
        let mut state = state_with_topic("t");
        let before = serde_json::to_string(&state).unwrap();
        let out = c.alter_configs(
            &mut state,
            vec![
                incremental(
                    ConfigTarget::Topic("t".into()),
                    &[("retention.ms", AlterOp::Set, "abc")],
                ),
                incremental(
                    ConfigTarget::Topic("missing".into()),
                    &[("retention.ms", AlterOp::Set, "1")],
                ),
                incremental(
                    ConfigTarget::Topic("t".into()),
                    &[("retention.ms", AlterOp::Append, "1")],
                ),
                replace(ConfigTarget::BrokerDefaults, &[("log.dirs", "/x")]),
                incremental(
                    ConfigTarget::Broker(1),
                    &[("log.retention.ms", AlterOp::Set, "-5x")],
                ),
            ],
            false,
        );
        let codes: Vec<(i16, &str)> = out
            .iter()
            .map(|o| (o.error_code, o.error_message.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            codes,
            [
                (
                    ResponseError::InvalidConfig.code(),
                    "Invalid value abc for configuration retention.ms: Not a number of type LONG"
                ),
                (
                    ResponseError::UnknownTopicOrPartition.code(),
                    "The topic 'missing' does not exist."
                ),
                (
                    ResponseError::InvalidConfig.code(),
                    "Can't APPEND to key retention.ms because its type is not LIST."
                ),
                (
                    ResponseError::InvalidConfig.code(),
                    "Cannot update these configs dynamically: Set(log.dirs)"
                ),
                (
                    ResponseError::InvalidConfig.code(),
                    "Invalid value -5x for configuration log.retention.ms: Not a number of type LONG"
                ),
            ]
        );
        assert_eq!(serde_json::to_string(&state).unwrap(), before);

        // validate_only: checked and answered, but nothing changes.
        let out = c.alter_configs(
            &mut state,
            vec![
                incremental(
                    ConfigTarget::Topic("t".into()),
                    &[("retention.ms", AlterOp::Set, "5")],
                ),
                incremental(
                    ConfigTarget::BrokerDefaults,
                    &[("log.retention.ms", AlterOp::Set, "5")],
                ),
            ],
            true,
        );
        assert!(out.iter().all(|o| o.error_code == 0), "{out:?}");
        assert_eq!(serde_json::to_string(&state).unwrap(), before);
    }

    #[test]
    fn dynamic_broker_configs() {
        let c = controller();
        let mut state = one_broker();
        let out = c.alter_configs(
            &mut state,
            vec![
                incremental(
                    ConfigTarget::BrokerDefaults,
                    &[("log.retention.ms", AlterOp::Set, "60000")],
                ),
                incremental(
                    ConfigTarget::Broker(1),
                    &[("log.cleanup.policy", AlterOp::Append, "compact")],
                ),
            ],
            false,
        );
        assert!(out.iter().all(|o| o.error_code == 0), "{out:?}");
        let dynamic = &state.broker_configs;
        assert_eq!(
            dynamic
                .cluster_default
                .get("log.retention.ms")
                .map(String::as_str),
            Some("60000")
        );
        assert_eq!(
            dynamic
                .broker(1)
                .and_then(|b| b.get("log.cleanup.policy"))
                .map(String::as_str),
            Some("delete,compact")
        );
        c.alter_configs(
            &mut state,
            vec![incremental(
                ConfigTarget::Broker(1),
                &[("log.cleanup.policy", AlterOp::Delete, "")],
            )],
            false,
        );
        assert!(state.broker_configs.broker(1).is_none());
    }

    fn new_topic(assignments: &[(i32, &[i32])], configs: &[(&str, Option<&str>)]) -> NewTopic {
        NewTopic {
            name: "n".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: assignments.iter().map(|(p, r)| (*p, r.to_vec())).collect(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn create_topics_checks_assignments_and_configs() {
        let c = controller();
        let state = one_broker();
        let check =
            |t: NewTopic| c.check_new_topic(&state, &t, t.num_partitions, t.replication_factor);
        assert!(check(new_topic(&[(1, &[1001]), (0, &[1000])], &[])).is_ok());
        let failures = [
            (
                new_topic(&[(0, &[1000]), (0, &[1001])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "Found multiple manual partition assignments for partition 0",
            ),
            (
                new_topic(&[(0, &[1000]), (2, &[1001])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "Partitions should be a consecutive 0-based integer sequence, but partition 1 has no assignment",
            ),
            (
                new_topic(&[(0, &[1007])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes node 1007, but no such node exists (the nodes of this cluster are 1000..=1001)",
            ),
            (
                new_topic(&[(0, &[])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes an empty replica list.",
            ),
            (
                new_topic(&[(0, &[1000, 1000])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes the node 1000 more than once.",
            ),
            (
                new_topic(&[(0, &[1000]), (1, &[1000, 1001])], &[]),
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes a partition with 2 replica(s), but this is not consistent with previous partitions, which have 1 replica(s).",
            ),
            (
                new_topic(&[], &[("retention.ms", Some("x"))]),
                ResponseError::InvalidConfig,
                "Invalid value x for configuration retention.ms: Not a number of type LONG",
            ),
            (
                new_topic(&[], &[("retention.mss", Some("1"))]),
                ResponseError::InvalidConfig,
                "Unknown topic config name: retention.mss",
            ),
            (
                new_topic(
                    &[],
                    &[
                        ("min.compaction.lag.ms", Some("10")),
                        ("max.compaction.lag.ms", Some("5")),
                    ],
                ),
                ResponseError::InvalidConfig,
                "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)",
            ),
        ];
        for (t, code, message) in failures {
            let mut t = t;
            if t.assignments.is_empty() {
                (t.num_partitions, t.replication_factor) = (1, 1);
            }
            assert_eq!(check(t), Err((code, message.to_string())));
        }
        assert!(check(new_topic(&[(0, &[1000, 1001])], &[])).is_ok());
        let mut t = new_topic(&[], &[]);
        (t.num_partitions, t.replication_factor) = (1, 0);
        assert_eq!(
            check(t),
            Err((
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.".into()
            ))
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
