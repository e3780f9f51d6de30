//! The cluster metadata: what the controller persists, and the immutable image every shard
//! reads.
//!
//! [`ClusterState`] is the cluster's record of registered brokers, topics, their partitions'
//! placement and configs, the dynamic broker configs, the users' SCRAM credentials, and the
//! producer-id counter. It is the state machine of the replicated metadata log
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

/// `PartitionState::broker` of a partition written by a release that had one broker only; the
/// import gives it the importing broker's id.
pub const UNASSIGNED_BROKER: i32 = -1;

fn unassigned_broker() -> i32 {
    UNASSIGNED_BROKER
}

/// One partition's placement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionState {
    /// The broker (`node.id`) that holds the partition's only replica.
    #[serde(default = "unassigned_broker")]
    pub broker: i32,
    /// The shard (core) of that broker that holds it.
    pub shard: u32,
    /// The leader epoch; bumped whenever leadership moves (for example to another shard).
    pub leader_epoch: i32,
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

impl PartitionState {
    /// The Kafka node (shard) that holds the partition.
    pub fn node(&self) -> i32 {
        node_id(self.broker, self.shard)
    }
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
    /// when there is none.
    pub fn load(dir: &Path) -> Result<Option<ClusterState>, MetadataError> {
        let path = dir.join(METADATA_FILE);
        match std::fs::read(&path) {
            Ok(data) => {
                serde_json::from_slice(&data)
                    .map(Some)
                    .map_err(|e| MetadataError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(MetadataError::Io { path, source }),
        }
    }

    /// Gives the partitions of a state written by a single-broker release (no broker in their
    /// placement) to broker `broker_id`.
    pub fn assign_unplaced_partitions(&mut self, broker_id: i32) {
        for p in self
            .topics
            .values_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            if p.broker == UNASSIGNED_BROKER {
                p.broker = broker_id;
            }
        }
    }

    /// Moves the partitions of broker `broker_id` placed on shards it no longer runs (it was
    /// restarted with fewer cores) to its least-loaded remaining shards, bumping their leader
    /// epochs. Returns how many moved.
    pub fn rebalance_missing_shards(&mut self, broker_id: i32, shards: u32) -> usize {
        let mut load = self.shard_load(broker_id, shards);
        let mut moved = 0;
        for topic in self.topics.values_mut() {
            for p in topic
                .partitions
                .iter_mut()
                .filter(|p| p.broker == broker_id && p.shard >= shards)
            {
                let target = least_loaded(&load);
                load[target as usize] += 1;
                p.shard = target;
                p.leader_epoch += 1;
                moved += 1;
            }
        }
        moved
    }

    /// Partitions per shard of broker `broker_id`, counting only shards below `shards`.
    pub fn shard_load(&self, broker_id: i32, shards: u32) -> Vec<u64> {
        let mut load = vec![0u64; shards as usize];
        for p in self
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.broker == broker_id)
        {
            if let Some(slot) = load.get_mut(p.shard as usize) {
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
        let nodes = state
            .live_brokers()
            .flat_map(BrokerRegistration::nodes)
            .collect();
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

    /// Whether `partition` is placed on `shard` of this broker.
    pub fn is_placed_on(&self, partition: &PartitionState, shard: u32) -> bool {
        partition.broker == self.broker_id && partition.shard == shard
    }

    /// The node serving `partition`, or `None` while its broker is fenced or unregistered (the
    /// partition then has no leader: LEADER_NOT_AVAILABLE).
    pub fn leader_of(&self, partition: &PartitionState) -> Option<&Node> {
        let node = partition.node();
        self.nodes.iter().find(|n| n.node_id == node)
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

    fn topic(broker: i32, shards: &[u32]) -> TopicState {
        TopicState {
            id: Uuid::new_v4(),
            partitions: shards
                .iter()
                .map(|&s| PartitionState {
                    broker,
                    shard: s,
                    leader_epoch: 0,
                })
                .collect(),
            configs: TopicConfigs::default(),
            internal: false,
        }
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
    fn a_file_of_the_single_broker_release_loads_and_is_given_a_broker() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ClusterState::load(dir.path()).unwrap().is_none());
        let old = r#"{"cluster_id":"c","next_producer_id":42,"topics":{"t":{"id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0de","partitions":[{"shard":1,"leader_epoch":3}],"configs":{}}}}"#;
        std::fs::write(dir.path().join(METADATA_FILE), old).unwrap();
        let mut back = ClusterState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.next_producer_id, 42);
        assert_eq!(back.broker_configs, DynamicBrokerConfigs::default());
        assert_eq!(back.topics["t"].partitions[0].broker, UNASSIGNED_BROKER);
        back.assign_unplaced_partitions(7);
        assert_eq!(back.topics["t"].partitions[0].node(), 7001);
        assert_eq!(back.topics["t"].partitions[0].leader_epoch, 3);
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(METADATA_FILE), b"{nope").unwrap();
        let err = ClusterState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn partitions_on_missing_shards_move_to_least_loaded_shards_of_their_broker() {
        let mut s = ClusterState::new(Some("c".into()));
        s.topics.insert("a".into(), topic(1, &[0, 1, 2, 3]));
        s.topics.insert("b".into(), topic(2, &[3]));
        assert_eq!(s.rebalance_missing_shards(1, 2), 2);
        assert_eq!(s.shard_load(1, 2), vec![2, 2]);
        assert_eq!(s.topics["a"].partitions[2].leader_epoch, 1);
        assert_eq!(s.topics["b"].partitions[0].shard, 3);
    }

    #[test]
    fn the_image_lists_the_shards_of_live_brokers_only() {
        let mut s = ClusterState::new(Some("c".into()));
        s.brokers.insert(1, registration(1, 2, false));
        s.brokers.insert(2, registration(2, 1, true));
        s.topics.insert("a".into(), topic(1, &[1]));
        s.topics.insert("b".into(), topic(2, &[0]));
        let config = BrokerConfig::load(None, &["node.id=1".to_string()]).unwrap();
        let image = MetadataImage::new(s, &config, 2);
        let nodes: Vec<(i32, i32)> = image.nodes.iter().map(|n| (n.node_id, n.port)).collect();
        assert_eq!(nodes, vec![(1000, 9192), (1001, 9193)]);
        let a = &image.topic("a").unwrap().partitions[0];
        assert_eq!(image.leader_of(a).map(|n| n.node_id), Some(1001));
        assert!(image
            .leader_of(&image.topic("b").unwrap().partitions[0])
            .is_none());
        assert_eq!(broker_of_node(1001), 1);
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_cluster_id());
    }
}
