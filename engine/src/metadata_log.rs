//! The records of the replicated metadata log, in the spirit of KRaft's `__cluster_metadata`.
//!
//! The controller quorum (`sluice_replication::quorum`) replicates opaque entries; this module
//! says what they mean. One entry is a [`MetadataBatch`]: the records of one controller
//! decision, applied atomically. The active controller computes the next [`ClusterState`] with
//! the same validation as before, and [`records_between`] turns the difference into records;
//! every broker (the active controller included) then applies the committed batches with
//! [`apply_batch`], so all copies of the state go through the same steps. A snapshot is the
//! whole state ([`encode_snapshot`]).

use crate::config::DynamicBrokerConfigs;
use crate::metadata::{BrokerRegistration, ClusterState, TopicState};
use crate::scram::ScramCredentials;
use serde::{Deserialize, Serialize};
use sluice_replication::quorum::Committed;

/// The format of [`MetadataBatch`] and of snapshots this release writes. Version 2 gives
/// partitions their replicas, ISR, leader and partition epoch; version 1 (issue 11) gave each
/// partition one replica (`{broker, shard, leader_epoch}`), which still loads.
const FORMAT_VERSION: u16 = 2;
/// The oldest format this release reads; a reader refuses others.
const OLDEST_READABLE_VERSION: u16 = 1;

/// One change to the cluster metadata.
///
/// Externally tagged (`{"topic": {...}}`): an internally tagged enum would buffer its fields
/// and then fail to read maps with integer keys (the per-broker configs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataRecord {
    /// The cluster id (the first record of a new cluster).
    ClusterId {
        /// The id.
        id: String,
    },
    /// A topic created, or changed (placement, leader epochs, configs): its whole state.
    Topic {
        /// Topic name.
        name: String,
        /// The topic's state.
        topic: TopicState,
    },
    /// A topic deleted.
    RemoveTopic {
        /// Topic name.
        name: String,
    },
    /// The dynamic broker configs, whole.
    BrokerConfigs {
        /// The configs.
        configs: DynamicBrokerConfigs,
    },
    /// The SCRAM credentials, whole.
    ScramCredentials {
        /// The credentials.
        credentials: ScramCredentials,
    },
    /// The producer-id counter moved (a block was handed out).
    ProducerIds {
        /// The next id to hand out.
        next: i64,
    },
    /// A broker registered (or re-registered after a restart); its `epoch` is set to the
    /// offset of the entry that carries it when applied.
    RegisterBroker {
        /// The registration.
        broker: BrokerRegistration,
    },
    /// A broker fenced or unfenced.
    BrokerFencing {
        /// `node.id`.
        id: i32,
        /// Whether it is fenced now.
        fenced: bool,
    },
}

/// One metadata log entry: the records of one controller decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetadataBatch {
    /// [`FORMAT_VERSION`].
    pub version: u16,
    /// The records, applied in order.
    pub records: Vec<MetadataRecord>,
}

/// A metadata log entry or snapshot that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    /// Not valid JSON of the expected shape.
    #[error("metadata log entry is not readable: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A partition state that breaks the invariants of [`PartitionState::check`].
    #[error("metadata log entry has an inconsistent partition {topic}-{index}: {reason}")]
    Inconsistent {
        /// Topic name.
        topic: String,
        /// Partition index.
        index: usize,
        /// The broken invariant.
        reason: String,
    },
    /// Written by a newer release.
    #[error("metadata log entry has format version {0}; this release reads versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION} (upgrade this broker)")]
    Version(u16),
}

/// Encodes records as one log entry.
pub fn encode_batch(records: Vec<MetadataRecord>) -> Vec<u8> {
    let batch = MetadataBatch {
        version: FORMAT_VERSION,
        records,
    };
    // Serializing plain data structures with string keys cannot fail.
    serde_json::to_vec(&batch).unwrap_or_default()
}

/// Decodes one log entry.
pub fn decode_batch(data: &[u8]) -> Result<MetadataBatch, MetadataLogError> {
    let batch: MetadataBatch = serde_json::from_slice(data)?;
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&batch.version) {
        return Err(MetadataLogError::Version(batch.version));
    }
    for record in &batch.records {
        if let MetadataRecord::Topic { name, topic } = record {
            check_topic(name, topic)?;
        }
    }
    Ok(batch)
}

/// A snapshot of the whole state.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u16,
    state: ClusterState,
}

/// Encodes `state` as a snapshot.
pub fn encode_snapshot(state: &ClusterState) -> Vec<u8> {
    #[derive(Serialize)]
    struct SnapshotRef<'a> {
        version: u16,
        state: &'a ClusterState,
    }
    serde_json::to_vec(&SnapshotRef {
        version: FORMAT_VERSION,
        state,
    })
    .unwrap_or_default()
}

/// Decodes a snapshot.
pub fn decode_snapshot(data: &[u8]) -> Result<ClusterState, MetadataLogError> {
    let snapshot: Snapshot = serde_json::from_slice(data)?;
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&snapshot.version) {
        return Err(MetadataLogError::Version(snapshot.version));
    }
    for (name, topic) in &snapshot.state.topics {
        check_topic(name, topic)?;
    }
    Ok(snapshot.state)
}

/// Checks every partition of a topic read from the log against the invariants.
fn check_topic(name: &str, topic: &TopicState) -> Result<(), MetadataLogError> {
    for (index, p) in topic.partitions.iter().enumerate() {
        p.check().map_err(|reason| MetadataLogError::Inconsistent {
            topic: name.to_string(),
            index,
            reason,
        })?;
    }
    Ok(())
}

/// The records that turn `old` into `new`. The controller only ever writes partitions that
/// keep the invariants of [`PartitionState::check`](crate::metadata::PartitionState::check).
pub fn records_between(old: &ClusterState, new: &ClusterState) -> Vec<MetadataRecord> {
    debug_assert!(
        new.topics
            .iter()
            .all(|(name, t)| check_topic(name, t).is_ok()),
        "the controller writes only consistent partitions"
    );
    let mut records = Vec::new();
    if old.cluster_id != new.cluster_id {
        records.push(MetadataRecord::ClusterId {
            id: new.cluster_id.clone(),
        });
    }
    for (id, broker) in &new.brokers {
        match old.brokers.get(id) {
            Some(before) if before == broker => {}
            Some(before) if registration_unchanged(before, broker) => {
                records.push(MetadataRecord::BrokerFencing {
                    id: *id,
                    fenced: broker.fenced,
                })
            }
            _ => records.push(MetadataRecord::RegisterBroker {
                broker: broker.clone(),
            }),
        }
    }
    for name in old.topics.keys() {
        if !new.topics.contains_key(name) {
            records.push(MetadataRecord::RemoveTopic { name: name.clone() });
        }
    }
    for (name, topic) in &new.topics {
        if old.topics.get(name).map(same_json) != Some(same_json(topic)) {
            records.push(MetadataRecord::Topic {
                name: name.clone(),
                topic: topic.clone(),
            });
        }
    }
    if same_json(&old.broker_configs) != same_json(&new.broker_configs) {
        records.push(MetadataRecord::BrokerConfigs {
            configs: new.broker_configs.clone(),
        });
    }
    if same_json(&old.scram_credentials) != same_json(&new.scram_credentials) {
        records.push(MetadataRecord::ScramCredentials {
            credentials: new.scram_credentials.clone(),
        });
    }
    if old.next_producer_id != new.next_producer_id {
        records.push(MetadataRecord::ProducerIds {
            next: new.next_producer_id,
        });
    }
    records
}

/// Whether two registrations differ in their fencing only.
fn registration_unchanged(a: &BrokerRegistration, b: &BrokerRegistration) -> bool {
    BrokerRegistration {
        fenced: b.fenced,
        ..a.clone()
    } == *b
}

/// A value's JSON form, to compare states whose types have no `PartialEq`.
fn same_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Applies one committed batch, found at log offset `offset`, to `state`.
pub fn apply_batch(state: &mut ClusterState, batch: MetadataBatch, offset: u64) {
    for record in batch.records {
        match record {
            MetadataRecord::ClusterId { id } => state.cluster_id = id,
            MetadataRecord::Topic { name, topic } => {
                state.topics.insert(name, topic);
            }
            MetadataRecord::RemoveTopic { name } => {
                state.topics.remove(&name);
            }
            MetadataRecord::BrokerConfigs { configs } => state.broker_configs = configs,
            MetadataRecord::ScramCredentials { credentials } => {
                state.scram_credentials = credentials
            }
            MetadataRecord::ProducerIds { next } => {
                debug_assert!(
                    next >= state.next_producer_id,
                    "producer ids never go backwards"
                );
                state.next_producer_id = next
            }
            MetadataRecord::RegisterBroker { mut broker } => {
                broker.epoch = offset;
                state.brokers.insert(broker.id, broker);
            }
            MetadataRecord::BrokerFencing { id, fenced } => {
                if let Some(b) = state.brokers.get_mut(&id) {
                    b.fenced = fenced;
                }
            }
        }
    }
}

/// Applies one committed entry or snapshot of the quorum to `state`, which has applied the log
/// up to `applied`. Returns whether the state changed, and how many record bytes it applied.
pub fn apply_committed(
    state: &mut ClusterState,
    applied: &mut u64,
    committed: Committed,
) -> (bool, u64) {
    match committed {
        Committed::Entry { index, data, .. } => {
            debug_assert!(index > *applied, "metadata log offsets strictly increase");
            *applied = index;
            if data.is_empty() {
                return (false, 0);
            }
            match decode_batch(&data) {
                Ok(batch) => {
                    apply_batch(state, batch, index);
                    (true, data.len() as u64)
                }
                Err(e) => {
                    tracing::error!("metadata log entry {index} skipped: {e}");
                    (false, 0)
                }
            }
        }
        Committed::Snapshot { index, data, .. } => match decode_snapshot(&data) {
            Ok(snapshot) => {
                *state = snapshot;
                *applied = index;
                (true, 0)
            }
            Err(e) => {
                tracing::error!("metadata snapshot at {index} not applied: {e}");
                (false, 0)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopicConfigs;
    use crate::metadata::{node_id, PartitionState};
    use uuid::Uuid;

    fn topic(partitions: u32) -> TopicState {
        TopicState {
            id: Uuid::new_v4(),
            partitions: (0..partitions)
                .map(|shard| PartitionState::new(vec![node_id(1, shard)], |_| true).unwrap())
                .collect(),
            configs: TopicConfigs::default(),
            internal: false,
        }
    }

    fn broker(id: i32) -> BrokerRegistration {
        BrokerRegistration {
            id,
            incarnation_id: Uuid::new_v4(),
            shards: 2,
            host: "h".into(),
            port: 9092,
            rack: Some("r1".into()),
            fenced: true,
            epoch: 0,
        }
    }

    /// Applying the records between two states to the first gives the second.
    fn replays_to(old: &ClusterState, new: &ClusterState, offset: u64) -> ClusterState {
        let entry = encode_batch(records_between(old, new));
        let mut replayed = old.clone();
        apply_batch(&mut replayed, decode_batch(&entry).unwrap(), offset);
        replayed
    }

    #[test]
    fn the_records_between_two_states_rebuild_the_second() {
        let mut old = ClusterState::new(Some("c".into()));
        old.topics.insert("gone".into(), topic(1));
        old.topics.insert("kept".into(), topic(2));
        old.brokers.insert(1, broker(1));
        let mut new = old.clone();
        new.topics.remove("gone");
        new.topics.insert("new".into(), topic(3));
        new.topics.get_mut("kept").unwrap().partitions[1].leader_epoch = 4;
        new.next_producer_id = 1000;
        new.brokers.get_mut(&1).unwrap().fenced = false;
        new.brokers.insert(2, broker(2));
        let replayed = replays_to(&old, &new, 17);
        assert_eq!(same_json(&replayed.topics), same_json(&new.topics));
        assert_eq!(replayed.next_producer_id, 1000);
        assert!(!replayed.brokers[&1].fenced);
        assert_eq!(replayed.brokers[&2].epoch, 17);
        let kinds: Vec<String> = records_between(&old, &new)
            .iter()
            .map(|r| {
                same_json(r)
                    .as_object()
                    .and_then(|o| o.keys().next().cloned())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "broker_fencing",
                "register_broker",
                "remove_topic",
                "topic",
                "topic",
                "producer_ids"
            ]
        );
    }

    #[test]
    fn per_broker_configs_survive_the_log() {
        let old = ClusterState::new(Some("c".into()));
        let mut new = old.clone();
        new.broker_configs.set_broker(
            1,
            [("message.max.bytes".to_string(), "100000".to_string())].into(),
        );
        let replayed = replays_to(&old, &new, 3);
        assert_eq!(replayed.broker_configs, new.broker_configs);
    }

    #[test]
    fn no_change_means_no_records() {
        let mut s = ClusterState::new(Some("c".into()));
        s.topics.insert("t".into(), topic(2));
        assert!(records_between(&s, &s.clone()).is_empty());
    }

    #[test]
    fn snapshots_round_trip_and_other_versions_are_refused() {
        let mut s = ClusterState::new(Some("c".into()));
        s.topics.insert("t".into(), topic(2));
        s.brokers.insert(3, broker(3));
        let back = decode_snapshot(&encode_snapshot(&s)).unwrap();
        assert_eq!(same_json(&back), same_json(&s));
        let future = br#"{"version":9,"records":[]}"#;
        let err = decode_batch(future).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        assert!(decode_batch(b"\x00garbage").is_err());
    }

    /// A topic of issue 11's metadata log: partitions with one replica each.
    const SINGLE_REPLICA_TOPIC: &str = r#"{"id":"6f0bd9b1-9d33-4fb0-9a8e-2b0bb7e1c0de","partitions":[{"broker":2,"shard":1,"leader_epoch":3}],"configs":{"retention.ms":"1000"},"internal":false}"#;

    #[test]
    fn entries_of_the_single_replica_log_load() {
        let entry = format!(
            r#"{{"version":1,"records":[{{"topic":{{"name":"t","topic":{SINGLE_REPLICA_TOPIC}}}}}]}}"#
        );
        let mut state = ClusterState::new(Some("c".into()));
        apply_batch(&mut state, decode_batch(entry.as_bytes()).unwrap(), 5);
        let p = &state.topics["t"].partitions[0];
        assert_eq!(
            (p.replicas.as_slice(), p.isr.as_slice()),
            (&[2001][..], &[2001][..])
        );
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2001, 3, 0));
    }

    #[test]
    fn snapshots_of_the_single_replica_log_load() {
        let snapshot = format!(
            r#"{{"version":1,"state":{{"cluster_id":"c","next_producer_id":7,"topics":{{"t":{SINGLE_REPLICA_TOPIC}}},"broker_configs":{{}},"brokers":{{}}}}}}"#
        );
        let state = decode_snapshot(snapshot.as_bytes()).unwrap();
        assert_eq!(state.next_producer_id, 7);
        assert_eq!(state.topics["t"].partitions[0].leader, 2001);
        // Read back in this release's format, it keeps every field.
        let again = decode_snapshot(&encode_snapshot(&state)).unwrap();
        assert_eq!(same_json(&again), same_json(&state));
    }

    #[test]
    fn entries_with_inconsistent_partitions_are_refused() {
        let mut bad = topic(1);
        bad.partitions[0].isr = vec![4242];
        let entry = serde_json::to_vec(&MetadataBatch {
            version: FORMAT_VERSION,
            records: vec![MetadataRecord::Topic {
                name: "t".into(),
                topic: bad,
            }],
        })
        .unwrap();
        let err = decode_batch(&entry).unwrap_err().to_string();
        assert!(err.contains("inconsistent partition t-0"), "{err}");
    }

    #[test]
    #[should_panic(expected = "the controller writes only consistent partitions")]
    fn the_controller_never_writes_an_inconsistent_partition() {
        let old = ClusterState::new(Some("c".into()));
        let mut new = old.clone();
        let mut bad = topic(1);
        bad.partitions[0].leader = 4242;
        new.topics.insert("t".into(), bad);
        records_between(&old, &new);
    }
}
