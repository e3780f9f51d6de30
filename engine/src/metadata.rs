//! The cluster metadata: what the controller persists, and the immutable image every shard
//! reads.
//!
//! [`ClusterState`] is the cluster's record of registered brokers, topics (their partitions'
//! replicas, ISR and leader, and their configs), the dynamic broker configs, the users' SCRAM
//! credentials, and the producer-id counter. It is the state machine of the replicated metadata log
//! ([`crate::metadata_log`]): every broker applies the committed records to its own copy.
//! Releases before the metadata log kept it in `cluster-metadata.json` in the first log dir;
//! [`ClusterState::load`] still reads that file so that it can be imported once.
//! [`MetadataImage`] wraps one version of it with the derived facts shards need (node list,
//! topic-id index); shards hold it as an `Arc` and replace it whole when a new one is applied.

use crate::config::{BrokerConfig, DynamicBrokerConfigs, TopicConfigs};
use crate::scram::ScramCredentials;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The name of the metadata file of releases before the metadata log, inside the first log dir.
pub const METADATA_FILE: &str = "cluster-metadata.json";

/// `PartitionState::leader` of a partition that has no leader.
pub const NO_LEADER: i32 = -1;

/// One partition's replicas and leadership (KRaft's `PartitionRegistration`).
///
/// Invariants ([`PartitionState::check`]): the replicas are distinct; the ISR is a non-empty,
/// duplicate-free subset of them (its last member stays in it when it goes away, as in Kafka,
/// so that it is the one to lead again); the leader is [`NO_LEADER`] or in the ISR; a
/// reassignment's adding and removing replicas are disjoint, distinct replicas, and leave at
/// least one replica in place; at most one replica per broker keeps its data in the partition's
/// shared directory (see [`PartitionState::uses_shared_dir`]).
///
/// Stored forms of earlier releases still load (see [`StoredPartitionState`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(from = "StoredPartitionState")]
pub struct PartitionState {
    /// Node ids (`broker*1000+shard`) of the replicas, preferred leader first. While a
    /// reassignment is in progress: its target replicas, then the replicas it removes.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas, a subset of `replicas`.
    pub isr: Vec<i32>,
    /// Node id of the leader, [`NO_LEADER`] when there is none.
    pub leader: i32,
    /// Bumped at every change of leader (to none included), and when replicas leave the
    /// partition: fences requests and fetchers of an earlier leadership.
    pub leader_epoch: i32,
    /// Bumped at every change of the replicas, the ISR or the leader: AlterPartition requests
    /// written against an older state are refused (INVALID_UPDATE_VERSION).
    pub partition_epoch: i32,
    /// The replicas a reassignment in progress adds (KIP-455): in `replicas`, catching up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    /// The replicas a reassignment in progress removes once the target replicas are in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
    /// The replicas that keep their data in their shard's own directory
    /// (`<log dir>/shard-<k>/<topic>-<index>`) rather than in the partition's shared one: those
    /// placed on a broker that already held a replica of the partition. A replica keeps its
    /// directory for as long as it lives, however the replicas are reordered or replaced
    /// around it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_dir_replicas: Vec<i32>,
}

/// The stored forms of a [`PartitionState`]: this release's, and the single replica of the
/// releases before replication (the metadata log of issue 11 and, once the importing broker's
/// id is filled in by [`ClusterState::load`], the `cluster-metadata.json` of release 0.1).
/// A replicated form without `shard_dir_replicas` (written before reassignments existed) had
/// its directories decided by the replica order: [`shard_dir_replicas_by_order`].
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredPartitionState {
    Replicated {
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        #[serde(default)]
        adding_replicas: Vec<i32>,
        #[serde(default)]
        removing_replicas: Vec<i32>,
        #[serde(default)]
        shard_dir_replicas: Option<Vec<i32>>,
    },
    SingleReplica {
        broker: i32,
        shard: u32,
        leader_epoch: i32,
    },
}

impl From<StoredPartitionState> for PartitionState {
    fn from(stored: StoredPartitionState) -> PartitionState {
        match stored {
            StoredPartitionState::Replicated {
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
                shard_dir_replicas,
            } => PartitionState {
                shard_dir_replicas: shard_dir_replicas
                    .unwrap_or_else(|| shard_dir_replicas_by_order(&replicas)),
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
            },
            StoredPartitionState::SingleReplica {
                broker,
                shard,
                leader_epoch,
            } => {
                let node = node_id(broker, shard);
                PartitionState {
                    replicas: vec![node],
                    isr: vec![node],
                    leader: node,
                    leader_epoch,
                    partition_epoch: 0,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                    shard_dir_replicas: Vec::new(),
                }
            }
        }
    }
}

/// The replicas of `replicas` that use their shard's own directory when each broker's first
/// replica (in this order) takes the shared one: the rule for new partitions, and the rule of
/// the releases before reassignments.
pub fn shard_dir_replicas_by_order(replicas: &[i32]) -> Vec<i32> {
    replicas
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            replicas[..*i]
                .iter()
                .any(|earlier| broker_of_node(*earlier) == broker_of_node(**r))
        })
        .map(|(_, r)| *r)
        .collect()
}

impl PartitionState {
    /// A new partition on `replicas`: its ISR is the replicas that are live now, and the first
    /// of them leads (KRaft's registration of a new partition). `None` when no replica is live.
    pub fn new(replicas: Vec<i32>, is_live: impl Fn(i32) -> bool) -> Option<PartitionState> {
        let isr: Vec<i32> = replicas.iter().copied().filter(|r| is_live(*r)).collect();
        let leader = *isr.first()?;
        let state = PartitionState {
            shard_dir_replicas: shard_dir_replicas_by_order(&replicas),
            replicas,
            isr,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        };
        debug_assert_eq!(state.check(), Ok(()));
        Some(state)
    }

    /// The preferred leader: the first replica.
    pub fn preferred_leader(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(NO_LEADER)
    }

    /// Whether `node` holds a replica.
    pub fn has_replica(&self, node: i32) -> bool {
        self.replicas.contains(&node)
    }

    /// Whether the replica on `node` keeps its data in the partition's shared directory
    /// (`<log dir>/<topic>-<index>`, Kafka's layout, found in any log dir of the broker) rather
    /// than in its shard's own directory (`<log dir>/shard-<k>/<topic>-<index>`): a broker that
    /// holds several replicas of one partition (a replication factor above the broker count,
    /// or a reassignment moving a replica between its shards) keeps all but one of them in
    /// their shard's directory, so that no two replicas share files. See
    /// [`PartitionState::shard_dir_replicas`].
    pub fn uses_shared_dir(&self, node: i32) -> bool {
        self.has_replica(node) && !self.shard_dir_replicas.contains(&node)
    }

    /// Whether a reassignment is in progress (KIP-455): replicas are being added or removed.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition had before the reassignment in progress (all of them when
    /// none is): what cancelling it goes back to, in their order.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding_replicas.contains(r))
            .collect()
    }

    /// The replicas the partition will have once the reassignment in progress completes (all
    /// of them when none is).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// Gives `replicas` (the partition's next replica set) their directories: a replica that
    /// has one keeps it, a new one takes the shared directory when no replica of its broker
    /// holds it, its shard's own directory otherwise. Replicas leaving the partition leave
    /// [`PartitionState::shard_dir_replicas`].
    pub fn set_replicas(&mut self, replicas: Vec<i32>) {
        let mut shard_dirs: Vec<i32> = self
            .shard_dir_replicas
            .iter()
            .copied()
            .filter(|r| replicas.contains(r))
            .collect();
        let kept: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| self.replicas.contains(r))
            .collect();
        let mut shared_brokers: Vec<i32> = kept
            .iter()
            .filter(|r| !shard_dirs.contains(r))
            .map(|r| broker_of_node(*r))
            .collect();
        for &new in replicas.iter().filter(|r| !self.replicas.contains(r)) {
            if shared_brokers.contains(&broker_of_node(new)) {
                shard_dirs.push(new);
            } else {
                shared_brokers.push(broker_of_node(new));
            }
        }
        self.replicas = replicas;
        self.shard_dir_replicas = shard_dirs;
    }

    /// Checks the invariants (see the type's docs); the error says which one is broken.
    pub fn check(&self) -> Result<(), String> {
        let distinct = |nodes: &[i32]| {
            let mut sorted = nodes.to_vec();
            sorted.sort_unstable();
            sorted.windows(2).all(|w| w[0] != w[1])
        };
        if self.replicas.is_empty() || !distinct(&self.replicas) {
            return Err(format!("replicas {:?} empty or repeated", self.replicas));
        }
        if self.isr.is_empty()
            || !distinct(&self.isr)
            || !self.isr.iter().all(|n| self.replicas.contains(n))
        {
            return Err(format!(
                "ISR {:?} empty, repeated or not among the replicas {:?}",
                self.isr, self.replicas
            ));
        }
        if self.leader != NO_LEADER && !self.isr.contains(&self.leader) {
            return Err(format!(
                "leader {} not in the ISR {:?}",
                self.leader, self.isr
            ));
        }
        if self.leader_epoch < 0 || self.partition_epoch < 0 {
            return Err("negative epoch".to_string());
        }
        let replicas_only =
            |nodes: &[i32]| distinct(nodes) && nodes.iter().all(|n| self.has_replica(*n));
        if !replicas_only(&self.adding_replicas)
            || !replicas_only(&self.removing_replicas)
            || self
                .adding_replicas
                .iter()
                .any(|n| self.removing_replicas.contains(n))
            || self.removing_replicas.len() >= self.replicas.len()
        {
            return Err(format!(
                "reassignment adding {:?} and removing {:?} not disjoint subsets of the replicas {:?} that leave one in place",
                self.adding_replicas, self.removing_replicas, self.replicas
            ));
        }
        let shared_brokers: Vec<i32> = self
            .replicas
            .iter()
            .filter(|r| self.uses_shared_dir(**r))
            .map(|r| broker_of_node(*r))
            .collect();
        if !replicas_only(&self.shard_dir_replicas) || !distinct(&shared_brokers) {
            return Err(format!(
                "shard directories {:?} of the replicas {:?} not distinct replicas leaving one shared directory per broker",
                self.shard_dir_replicas, self.replicas
            ));
        }
        Ok(())
    }
}

/// One topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicState {
    /// The topic id (KIP-516).
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: Vec<PartitionState>,
    /// Dynamic topic-level config overrides.
    pub configs: TopicConfigs,
    /// Whether the topic is internal (`__consumer_offsets`, `__transaction_state`).
    #[serde(default)]
    pub internal: bool,
}

/// A broker as it registered with the controller quorum (KRaft's `RegisterBrokerRecord`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// `node.id`.
    pub id: i32,
    /// A new random id at every start of the process: a registration from a new incarnation
    /// replaces the old one.
    pub incarnation_id: Uuid,
    /// How many shards (nodes) it runs: nodes `id*1000 .. id*1000+shards`.
    pub shards: u32,
    /// Advertised host of its client listener.
    pub host: String,
    /// Advertised base port (shard k listens on `port + k`).
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced brokers serve nothing and are left out of Metadata: registered but not yet caught
    /// up with the metadata log, heartbeats missed for `broker.session.timeout.ms`, or shut
    /// down.
    pub fenced: bool,
    /// The metadata log offset of the registration; the broker is unfenced once it has applied
    /// the log up to here.
    pub epoch: u64,
}

impl BrokerRegistration {
    /// Its shards as Kafka nodes: node `id*1000+k` on port `port+k`.
    pub fn nodes(&self) -> impl Iterator<Item = Node> + '_ {
        (0..self.shards).map(move |k| Node {
            node_id: node_id(self.id, k),
            host: self.host.clone(),
            port: i32::from(self.port) + k as i32,
            rack: self.rack.clone(),
        })
    }

    /// The registration of this process's broker, running `shards` shards: a new incarnation,
    /// fenced until the controller unfences it.
    pub fn of_local(config: &BrokerConfig, shards: u32) -> BrokerRegistration {
        let (host, port) = advertised_address(config);
        BrokerRegistration {
            id: config.broker_id,
            incarnation_id: Uuid::new_v4(),
            shards,
            host,
            port,
            rack: config.broker_rack.clone(),
            fenced: true,
            epoch: 0,
        }
    }
}

/// Everything the metadata log holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    /// The cluster id reported in Metadata and DescribeCluster.
    pub cluster_id: String,
    /// The next producer id the controller hands out.
    pub next_producer_id: i64,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicState>,
    /// Dynamic broker configs (AlterConfigs on BROKER resources).
    #[serde(default)]
    pub broker_configs: DynamicBrokerConfigs,
    /// SCRAM credentials by user and mechanism (AlterUserScramCredentials).
    #[serde(default, skip_serializing_if = "ScramCredentials::is_empty")]
    pub scram_credentials: ScramCredentials,
    /// Registered brokers by `node.id`.
    #[serde(default)]
    pub brokers: BTreeMap<i32, BrokerRegistration>,
}

impl ClusterState {
    /// A new, empty cluster.
    pub fn new(cluster_id: Option<String>) -> ClusterState {
        let cluster_id = cluster_id.unwrap_or_else(new_cluster_id);
        ClusterState {
            cluster_id,
            next_producer_id: 0,
            topics: BTreeMap::new(),
            broker_configs: DynamicBrokerConfigs::default(),
            scram_credentials: ScramCredentials::default(),
            brokers: BTreeMap::new(),
        }
    }

    /// The state before the metadata log's first record: no cluster id yet, nothing in it.
    pub fn unbootstrapped() -> ClusterState {
        ClusterState::new(Some(String::new()))
    }

    /// Reads the `cluster-metadata.json` a single-broker release wrote in `dir`, or `None`
    /// when there is none. Its partitions name no broker (release 0.1 had one): they are
    /// broker `broker_id`'s, the broker that imports the file.
    pub fn load(dir: &Path, broker_id: i32) -> Result<Option<ClusterState>, MetadataError> {
        let path = dir.join(METADATA_FILE);
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(MetadataError::Io { path, source }),
        };
        let corrupt = |reason: String| MetadataError::Corrupt {
            path: path.clone(),
            reason,
        };
        let mut value: serde_json::Value =
            serde_json::from_slice(&data).map_err(|e| corrupt(e.to_string()))?;
        let partitions = value
            .get_mut("topics")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|topics| topics.values_mut())
            .filter_map(|t| t.get_mut("partitions")?.as_array_mut())
            .flatten()
            .filter_map(serde_json::Value::as_object_mut);
        for p in partitions {
            if !p.contains_key("replicas") {
                p.entry("broker").or_insert(broker_id.into());
            }
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    /// Moves the replicas broker `broker_id` held on shards it no longer runs (it was
    /// restarted with fewer cores) to its least-loaded remaining shards that hold no replica
    /// of the same partition. Only replicas in the partition's shared directory move (see
    /// [`PartitionState::uses_shared_dir`]): their data is found by the new shard, so they keep
    /// their place in the ISR and their leadership (with a new leader epoch). Others stay where
    /// they are, offline like the replicas of a stopped broker. Returns how many moved.
    pub fn rebalance_missing_shards(&mut self, broker_id: i32, shards: u32) -> usize {
        let mut load = self.shard_load(broker_id, shards);
        let mut moved = 0;
        for p in self
            .topics
            .values_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            for i in 0..p.replicas.len() {
                let node = p.replicas[i];
                let missing = broker_of_node(node) == broker_id && shard_of_node(node) >= shards;
                if !missing || !p.uses_shared_dir(node) {
                    continue;
                }
                let room: Vec<u64> = load
                    .iter()
                    .enumerate()
                    .map(|(s, l)| {
                        if p.has_replica(node_id(broker_id, s as u32)) {
                            u64::MAX
                        } else {
                            *l
                        }
                    })
                    .collect();
                if room.iter().all(|l| *l == u64::MAX) {
                    continue;
                }
                let shard = least_loaded(&room);
                load[shard as usize] += 1;
                let target = node_id(broker_id, shard);
                p.replicas[i] = target;
                for member in p
                    .isr
                    .iter_mut()
                    .chain(p.adding_replicas.iter_mut())
                    .chain(p.removing_replicas.iter_mut())
                    .filter(|m| **m == node)
                {
                    *member = target;
                }
                if p.leader == node {
                    p.leader = target;
                    p.leader_epoch += 1;
                }
                p.partition_epoch += 1;
                debug_assert_eq!(p.check(), Ok(()));
                moved += 1;
            }
        }
        moved
    }

    /// Replicas per shard of broker `broker_id`, counting only shards below `shards`.
    pub fn shard_load(&self, broker_id: i32, shards: u32) -> Vec<u64> {
        let mut load = vec![0u64; shards as usize];
        for node in self
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.replicas)
            .filter(|n| broker_of_node(**n) == broker_id)
        {
            if let Some(slot) = load.get_mut(shard_of_node(*node) as usize) {
                *slot += 1;
            }
        }
        load
    }

    /// `state` with this process's broker registered and unfenced: the state of a one-broker
    /// cluster, for tests and tools that build an image without a quorum.
    pub fn with_live_local_broker(mut self, config: &BrokerConfig, shards: u32) -> ClusterState {
        let broker = BrokerRegistration {
            fenced: false,
            ..BrokerRegistration::of_local(config, shards)
        };
        self.brokers.insert(broker.id, broker);
        self
    }

    /// The registered brokers that are not fenced.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether `node` is a shard of a live (registered, unfenced) broker: a replica there can
    /// lead and be in sync.
    pub fn is_live_node(&self, node: i32) -> bool {
        self.brokers
            .get(&broker_of_node(node))
            .is_some_and(|b| !b.fenced && shard_of_node(node) < b.shards)
    }

    /// Whether `node` is a shard of a registered broker, fenced or not.
    pub fn is_registered_node(&self, node: i32) -> bool {
        self.brokers
            .get(&broker_of_node(node))
            .is_some_and(|b| shard_of_node(node) < b.shards)
    }

    /// The node ids of the live brokers' shards, ascending.
    pub fn live_nodes(&self) -> impl Iterator<Item = i32> + '_ {
        self.live_brokers()
            .flat_map(|b| (0..b.shards).map(move |k| node_id(b.id, k)))
    }
}

/// The least-loaded shard (lowest index on ties).
pub fn least_loaded(load: &[u64]) -> u32 {
    let mut best = 0;
    for (i, l) in load.iter().enumerate() {
        if *l < load[best] {
            best = i;
        }
    }
    best as u32
}

/// A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    out
}

/// Failure to read or write the metadata file.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The file could not be read or written.
    #[error("cluster metadata file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file exists but is not valid.
    #[error("cluster metadata file {} is corrupt: {reason}; restore it from a backup or move the data directory aside", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A Kafka node as clients see it: one shard of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `broker.id * 1000 + shard`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port (`listener port + shard`).
    pub port: i32,
    /// The broker's `broker.rack`.
    pub rack: Option<String>,
}

/// One immutable version of the cluster metadata, shared by all shards.
#[derive(Debug, Clone)]
pub struct MetadataImage {
    /// The state this image shows.
    pub state: ClusterState,
    /// This broker's id.
    pub broker_id: i32,
    /// How many shards this broker runs.
    pub shards: u32,
    /// Every node (shard) of every live (registered, unfenced) broker, by node id.
    pub nodes: Vec<Node>,
    /// Topic names by topic id.
    pub topic_names: HashMap<Uuid, String>,
}

impl MetadataImage {
    /// Builds the image of `state` for a broker running `shards` shards.
    pub fn new(state: ClusterState, config: &BrokerConfig, shards: u32) -> MetadataImage {
        let mut nodes: Vec<Node> = state
            .live_brokers()
            .flat_map(BrokerRegistration::nodes)
            .collect();
        nodes.sort_by_key(|n| n.node_id);
        let topic_names = state
            .topics
            .iter()
            .map(|(name, t)| (t.id, name.clone()))
            .collect();
        MetadataImage {
            state,
            broker_id: config.broker_id,
            shards,
            nodes,
            topic_names,
        }
    }

    /// The node id of `shard` of this broker.
    pub fn node_of(&self, shard: u32) -> i32 {
        node_id(self.broker_id, shard)
    }

    /// The node clients are told is the controller (Metadata's and DescribeCluster's
    /// `controller_id`). As in Kafka 4, where the controllers are not reachable by clients, it
    /// is a live broker's node: shard 0 of this broker, which forwards admin requests to the
    /// active controller.
    pub fn controller_node(&self) -> i32 {
        self.node_of(0)
    }

    /// Whether this broker is registered and unfenced: only then do its shards lead.
    pub fn is_local_broker_live(&self) -> bool {
        self.state
            .brokers
            .get(&self.broker_id)
            .is_some_and(|b| !b.fenced)
    }

    /// Whether `shard` of this broker holds a replica of `partition`.
    pub fn is_replica_on(&self, partition: &PartitionState, shard: u32) -> bool {
        partition.has_replica(self.node_of(shard))
    }

    /// Whether `shard` of this broker leads `partition` (never while this broker is fenced).
    pub fn leads(&self, partition: &PartitionState, shard: u32) -> bool {
        partition.leader == self.node_of(shard) && self.is_local_broker_live()
    }

    /// A live node by id.
    pub fn node(&self, node_id: i32) -> Option<&Node> {
        self.nodes
            .binary_search_by_key(&node_id, |n| n.node_id)
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The node leading `partition`, or `None` when it has no leader or its leader's broker is
    /// fenced (LEADER_NOT_AVAILABLE).
    pub fn leader_of(&self, partition: &PartitionState) -> Option<&Node> {
        self.node(partition.leader)
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.state.topics.get(name)
    }

    /// A topic's name by id.
    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topic_names.get(id).map(String::as_str)
    }
}

/// `broker.id * 1000 + shard`: the node id a shard is advertised under.
pub fn node_id(broker_id: i32, shard: u32) -> i32 {
    broker_id * 1000 + shard as i32
}

/// The broker (`node.id`) a shard node belongs to.
pub fn broker_of_node(node: i32) -> i32 {
    node.div_euclid(1000)
}

/// The shard (of its broker) a node is.
pub fn shard_of_node(node: i32) -> u32 {
    node.rem_euclid(1000).unsigned_abs()
}

/// The host and base port clients are told to use: the advertised listener named like the
/// client listener the shards serve (see `BrokerConfig::client_listener`), else the first
/// advertised listener. Controller listeners are never advertised to clients.
pub fn advertised_address(config: &BrokerConfig) -> (String, u16) {
    let client = config.client_listener();
    let advertised = config
        .advertised_listeners
        .iter()
        .find(|l| l.name == client.name)
        .or(config.advertised_listeners.first())
        .unwrap_or(client);
    (advertised.host.clone(), advertised.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition with one replica on `node`.
    pub(crate) fn single(node: i32) -> PartitionState {
        PartitionState {
            replicas: vec![node],
            isr: vec![node],
            leader: node,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
            shard_dir_replicas: vec![],
        }
    }

    fn topic(partitions: Vec<PartitionState>) -> TopicState {
        TopicState {
            id: Uuid::new_v4(),
            partitions,
            configs: TopicConfigs::default(),
            internal: false,
        }
    }

    fn on_shards(broker: i32, shards: &[u32]) -> TopicState {
        topic(shards.iter().map(|&s| single(node_id(broker, s))).collect())
    }

    fn registration(id: i32, shards: u32, fenced: bool) -> BrokerRegistration {
        BrokerRegistration {
            id,
            incarnation_id: Uuid::new_v4(),
            shards,
            host: "127.0.0.1".into(),
            port: 9092 + id as u16 * 100,
            rack: None,
            fenced,
            epoch: 0,
        }
    }

    #[test]
    fn a_file_of_the_single_broker_release_loads_on_the_importing_broker() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ClusterState::load(dir.path(), 7).unwrap().is_none());
        let old = r#"{"cluster_id":"c","next_producer_id":42,"topics":{"t":{"id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0de","partitions":[{"shard":1,"leader_epoch":3}],"configs":{}}}}"#;
        std::fs::write(dir.path().join(METADATA_FILE), old).unwrap();
        let back = ClusterState::load(dir.path(), 7).unwrap().unwrap();
        assert_eq!(back.next_producer_id, 42);
        assert_eq!(back.broker_configs, DynamicBrokerConfigs::default());
        let p = &back.topics["t"].partitions[0];
        assert_eq!(
            *p,
            PartitionState {
                leader_epoch: 3,
                ..single(7001)
            }
        );
    }

    #[test]
    fn the_upgrade_fixture_loads() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/upgrade-0.1/data");
        let state = ClusterState::load(&fixture, 1).unwrap().unwrap();
        let orders = &state.topics["orders"].partitions;
        let nodes: Vec<i32> = orders.iter().map(|p| p.leader).collect();
        assert_eq!(nodes, [1000, 1001, 1000]);
        assert!(orders.iter().all(|p| p.check().is_ok()));
    }

    #[test]
    fn a_partition_of_the_single_replica_metadata_log_loads() {
        let issue_11 = r#"{"broker":2,"shard":1,"leader_epoch":5}"#;
        let p: PartitionState = serde_json::from_str(issue_11).unwrap();
        assert_eq!(
            p,
            PartitionState {
                leader_epoch: 5,
                ..single(2001)
            }
        );
        let current = PartitionState {
            replicas: vec![2001, 3000, 1000],
            isr: vec![2001, 1000],
            leader: 1000,
            leader_epoch: 4,
            partition_epoch: 9,
            ..single(1000)
        };
        let json = serde_json::to_string(&current).unwrap();
        assert!(!json.contains("broker"), "{json}");
        assert!(!json.contains("adding_replicas"), "{json}");
        assert_eq!(
            serde_json::from_str::<PartitionState>(&json).unwrap(),
            current
        );
        let reassigning = PartitionState {
            replicas: vec![1001, 2000, 1000],
            isr: vec![1000, 2000],
            adding_replicas: vec![1001],
            removing_replicas: vec![1000],
            shard_dir_replicas: vec![1001],
            ..current.clone()
        };
        assert_eq!(reassigning.check(), Ok(()));
        let json = serde_json::to_string(&reassigning).unwrap();
        assert_eq!(
            serde_json::from_str::<PartitionState>(&json).unwrap(),
            reassigning
        );
    }

    #[test]
    fn partitions_written_before_reassignments_get_their_directories_by_replica_order() {
        let before = r#"{"replicas":[1000,2000,1001],"isr":[1000],"leader":1000,"leader_epoch":1,"partition_epoch":2}"#;
        let p: PartitionState = serde_json::from_str(before).unwrap();
        assert_eq!(p.shard_dir_replicas, [1001]);
        assert!(!p.is_reassigning());
        assert_eq!(p.check(), Ok(()));
        assert!(p.uses_shared_dir(1000) && p.uses_shared_dir(2000));
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(METADATA_FILE), b"{nope").unwrap();
        let err = ClusterState::load(dir.path(), 1).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn invariants_name_what_is_broken() {
        let ok = PartitionState {
            replicas: vec![1000, 2000],
            isr: vec![2000],
            leader: NO_LEADER,
            leader_epoch: 1,
            partition_epoch: 2,
            ..single(1000)
        };
        assert_eq!(ok.check(), Ok(()));
        let broken = [
            PartitionState {
                replicas: vec![1000, 1000],
                ..ok.clone()
            },
            PartitionState {
                isr: vec![],
                ..ok.clone()
            },
            PartitionState {
                isr: vec![3000],
                ..ok.clone()
            },
            PartitionState {
                leader: 1000,
                ..ok.clone()
            },
            PartitionState {
                adding_replicas: vec![3000],
                ..ok.clone()
            },
            PartitionState {
                adding_replicas: vec![2000],
                removing_replicas: vec![2000],
                ..ok.clone()
            },
            PartitionState {
                removing_replicas: vec![1000, 2000],
                ..ok.clone()
            },
            PartitionState {
                replicas: vec![1000, 1001],
                ..ok.clone()
            },
            PartitionState {
                shard_dir_replicas: vec![3000],
                ..ok.clone()
            },
        ];
        for p in broken {
            assert!(p.check().is_err(), "{p:?}");
        }
        assert_eq!(
            PartitionState::new(vec![1000, 2000, 3000], |n| n != 1000),
            Some(PartitionState {
                replicas: vec![1000, 2000, 3000],
                isr: vec![2000, 3000],
                leader: 2000,
                ..single(1000)
            })
        );
        assert_eq!(PartitionState::new(vec![1000], |_| false), None);
    }

    #[test]
    fn the_first_replica_of_a_broker_uses_the_shared_directory() {
        let p = PartitionState::new(vec![2001, 1000, 2000], |_| true).unwrap();
        assert!(p.uses_shared_dir(2001));
        assert!(p.uses_shared_dir(1000));
        assert!(!p.uses_shared_dir(2000));
        assert!(!p.uses_shared_dir(3000));
    }

    #[test]
    fn replicas_keep_their_directories_when_the_replicas_change() {
        // A move from shard 0 to shard 1 of broker 1: the new replica goes in its shard's
        // directory while the old one holds the shared one, and stays there after.
        let mut p = PartitionState::new(vec![1000, 2000], |_| true).unwrap();
        p.set_replicas(vec![1001, 2000, 1000]);
        assert_eq!(p.shard_dir_replicas, [1001]);
        assert!(p.uses_shared_dir(1000) && !p.uses_shared_dir(1001));
        p.set_replicas(vec![1001, 2000]);
        (p.isr, p.leader) = (vec![1001, 2000], 1001);
        assert_eq!(p.shard_dir_replicas, [1001]);
        assert!(!p.uses_shared_dir(1001));
        assert_eq!(p.check(), Ok(()));
        // Broker 1 no longer uses the shared directory: a replica added there takes it.
        p.set_replicas(vec![1000, 1001, 2000]);
        assert_eq!(p.shard_dir_replicas, [1001]);
        assert!(p.uses_shared_dir(1000));
        // Reordering moves nothing.
        p.set_replicas(vec![2000, 1001, 1000]);
        assert_eq!(p.shard_dir_replicas, [1001]);
        assert_eq!(p.check(), Ok(()));
    }

    #[test]
    fn replicas_on_missing_shards_move_to_least_loaded_shards_of_their_broker() {
        let mut s = ClusterState::new(Some("c".into()));
        s.topics.insert("a".into(), on_shards(1, &[0, 1, 2, 3]));
        s.topics.insert("b".into(), on_shards(2, &[3]));
        assert_eq!(s.rebalance_missing_shards(1, 2), 2);
        assert_eq!(s.shard_load(1, 2), vec![2, 2]);
        let moved = &s.topics["a"].partitions[2];
        assert_eq!(moved.leader_epoch, 1);
        assert_eq!(moved.partition_epoch, 1);
        assert_eq!(moved.isr, moved.replicas);
        assert_eq!(moved.leader, moved.replicas[0]);
        assert_eq!(s.topics["b"].partitions[0].leader, 2003);
    }

    #[test]
    fn a_second_replica_on_a_missing_shard_stays_offline() {
        let mut s = ClusterState::new(Some("c".into()));
        let both = PartitionState::new(vec![1000, 1001], |_| true).unwrap();
        let moving = PartitionState {
            replicas: vec![1002, 2000],
            isr: vec![1002, 2000],
            ..single(1002)
        };
        s.topics
            .insert("t".into(), topic(vec![both.clone(), moving]));
        // Shard 1 holds the second replica of partition 0: it stays (shard 0 holds the first);
        // partition 1's replica on shard 2 moves to shard 0, with its data and leadership.
        assert_eq!(s.rebalance_missing_shards(1, 1), 1);
        assert_eq!(s.topics["t"].partitions[0], both);
        let moved = &s.topics["t"].partitions[1];
        assert_eq!(moved.replicas, [1000, 2000]);
        assert_eq!(moved.isr, [1000, 2000]);
        assert_eq!((moved.leader, moved.leader_epoch), (1000, 1));
    }

    #[test]
    fn the_image_lists_the_shards_of_live_brokers_only() {
        let mut s = ClusterState::new(Some("c".into()));
        s.brokers.insert(1, registration(1, 2, false));
        s.brokers.insert(2, registration(2, 1, true));
        s.topics.insert("a".into(), on_shards(1, &[1]));
        s.topics.insert("b".into(), on_shards(2, &[0]));
        assert!(s.is_live_node(1001));
        assert!(!s.is_live_node(1002));
        assert!(!s.is_live_node(2000));
        assert!(s.is_registered_node(2000));
        assert_eq!(s.live_nodes().collect::<Vec<_>>(), [1000, 1001]);
        let config = BrokerConfig::load(None, &["node.id=1".to_string()]).unwrap();
        let image = MetadataImage::new(s, &config, 2);
        let nodes: Vec<(i32, i32)> = image.nodes.iter().map(|n| (n.node_id, n.port)).collect();
        assert_eq!(nodes, vec![(1000, 9192), (1001, 9193)]);
        let a = &image.topic("a").unwrap().partitions[0];
        assert_eq!(image.leader_of(a).map(|n| n.node_id), Some(1001));
        assert!(image.leads(a, 1));
        assert!(!image.leads(a, 0));
        assert!(image.is_replica_on(a, 1));
        assert!(image
            .leader_of(&image.topic("b").unwrap().partitions[0])
            .is_none());
        assert_eq!(broker_of_node(1001), 1);
        assert_eq!(shard_of_node(1001), 1);
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_cluster_id());
    }
}
