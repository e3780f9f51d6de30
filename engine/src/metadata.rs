//! The cluster metadata: what the controller persists, and the immutable image every shard
//! reads.
//!
//! [`ClusterState`] is the controller's record of topics, their partitions' placement and
//! configs, the dynamic broker configs, the users' SCRAM credentials, and the producer-id
//! counter, persisted as `cluster-metadata.json` in the first log dir (a later issue replaces
//! the file with a replicated metadata log). [`MetadataImage`] wraps
//! one version of it with the derived facts shards need (node list, topic-id index); shards
//! hold it as an `Arc` and replace it whole when the controller publishes a new one.

use crate::config::{BrokerConfig, DynamicBrokerConfigs, TopicConfigs};
use crate::scram::ScramCredentials;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The name of the metadata file inside the first log dir.
pub const METADATA_FILE: &str = "cluster-metadata.json";

/// One partition's placement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionState {
    /// The shard (core) of this broker that holds the partition's only replica.
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

/// Everything the controller persists.
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
        }
    }

    /// Reads the state from `dir`, or `None` when the broker has never run there.
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

    /// Writes the state to `dir` atomically (temporary file, fsync, rename, fsync of the dir).
    ///
    /// An error before the rename leaves the previous file in place. The rename is the commit
    /// point: once it is done the new state is the file's, so a failed fsync of the directory
    /// after it is only logged (the rename may not survive a power loss, which leaves the
    /// previous, equally consistent state).
    pub fn save(&self, dir: &Path) -> Result<(), MetadataError> {
        sluice_storage::blocking::debug_assert_blocking_allowed("a metadata save");
        let path = dir.join(METADATA_FILE);
        let tmp = dir.join(format!("{METADATA_FILE}.tmp"));
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MetadataError::Io { path, source }
        };
        let data =
            serde_json::to_vec_pretty(self).map_err(|e| io_err(&path)(io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&data).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(
                "saved {} but could not fsync its directory: {e}",
                path.display()
            );
        }
        Ok(())
    }

    /// Moves partitions placed on shards that no longer exist (the broker was restarted with
    /// fewer cores) to the least-loaded remaining shards, bumping their leader epochs.
    /// Returns how many moved.
    pub fn rebalance_missing_shards(&mut self, shards: u32) -> usize {
        let mut load = self.shard_load(shards);
        let mut moved = 0;
        for topic in self.topics.values_mut() {
            for p in topic.partitions.iter_mut().filter(|p| p.shard >= shards) {
                let target = least_loaded(&load);
                load[target as usize] += 1;
                p.shard = target;
                p.leader_epoch += 1;
                moved += 1;
            }
        }
        moved
    }

    /// Partitions per shard, counting only shards below `shards`.
    pub fn shard_load(&self, shards: u32) -> Vec<u64> {
        let mut load = vec![0u64; shards as usize];
        for p in self.topics.values().flat_map(|t| &t.partitions) {
            if let Some(slot) = load.get_mut(p.shard as usize) {
                *slot += 1;
            }
        }
        load
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
}

/// One immutable version of the cluster metadata, shared by all shards.
#[derive(Debug, Clone)]
pub struct MetadataImage {
    /// The persisted state this image shows.
    pub state: ClusterState,
    /// This broker's id.
    pub broker_id: i32,
    /// How many shards this broker runs.
    pub shards: u32,
    /// Every node (shard) of the cluster.
    pub nodes: Vec<Node>,
    /// Topic names by topic id.
    pub topic_names: HashMap<Uuid, String>,
}

impl MetadataImage {
    /// Builds the image of `state` for a broker running `shards` shards.
    pub fn new(state: ClusterState, config: &BrokerConfig, shards: u32) -> MetadataImage {
        let (host, port) = advertised_address(config);
        let nodes = (0..shards)
            .map(|k| Node {
                node_id: node_id(config.broker_id, k),
                host: host.clone(),
                port: port as i32 + k as i32,
            })
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

    /// The node that runs the controller (shard 0 of this broker).
    pub fn controller_node(&self) -> i32 {
        self.node_of(0)
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

    fn topic(shards: &[u32]) -> TopicState {
        TopicState {
            id: Uuid::new_v4(),
            partitions: shards
                .iter()
                .map(|&s| PartitionState {
                    shard: s,
                    leader_epoch: 0,
                })
                .collect(),
            configs: TopicConfigs::default(),
            internal: false,
        }
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ClusterState::load(dir.path()).unwrap().is_none());
        let mut s = ClusterState::new(None);
        s.topics.insert("t".into(), topic(&[0, 1]));
        s.next_producer_id = 42;
        s.save(dir.path()).unwrap();
        let back = ClusterState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.cluster_id, s.cluster_id);
        assert_eq!(back.next_producer_id, 42);
        assert_eq!(back.topics["t"].partitions, s.topics["t"].partitions);
        // Files written before dynamic broker configs existed still load.
        let mut old: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(METADATA_FILE)).unwrap())
                .unwrap();
        old.as_object_mut().unwrap().remove("broker_configs");
        let old: ClusterState = serde_json::from_value(old).unwrap();
        assert_eq!(old.broker_configs, DynamicBrokerConfigs::default());
    }

    #[test]
    fn a_failed_save_leaves_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ClusterState::new(None);
        s.topics.insert("before".into(), topic(&[0]));
        s.save(dir.path()).unwrap();
        let tmp = dir.path().join(format!("{METADATA_FILE}.tmp"));
        std::fs::create_dir(&tmp).unwrap();
        s.topics.insert("during".into(), topic(&[0]));
        let err = s.save(dir.path()).unwrap_err().to_string();
        assert!(err.contains(".tmp"), "{err}");
        let back = ClusterState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.topics.keys().collect::<Vec<_>>(), ["before"]);
        std::fs::remove_dir(&tmp).unwrap();
        s.save(dir.path()).unwrap();
        let back = ClusterState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.topics.len(), 2);
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(METADATA_FILE), b"{nope").unwrap();
        let err = ClusterState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }

    #[test]
    fn partitions_on_missing_shards_move_to_least_loaded() {
        let mut s = ClusterState::new(Some("c".into()));
        s.topics.insert("a".into(), topic(&[0, 1, 2, 3]));
        assert_eq!(s.rebalance_missing_shards(2), 2);
        assert_eq!(s.shard_load(2), vec![2, 2]);
        assert!(s.topics["a"].partitions[2].leader_epoch == 1);
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_cluster_id());
    }
}
