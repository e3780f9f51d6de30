//! Members' assignments: the bytes a consumer group's leader hands each member in SyncGroup,
//! decoded with Kafka's ConsumerProtocolAssignment.

use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::{Decodable, Message};
use std::collections::BTreeMap;

/// What a member was assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// Nothing (no bytes: not synced yet, or no partitions).
    None,
    /// A consumer group member's partitions: topic → sorted partitions.
    Consumer(BTreeMap<String, Vec<i32>>),
    /// Bytes of another protocol type, or bytes that do not decode: said in words.
    Other(String),
}

impl std::fmt::Display for Assignment {
    /// `orders: 0,1,2; payments: 3`, `-` for nothing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assignment::None => f.write_str("-"),
            Assignment::Consumer(topics) if topics.is_empty() => f.write_str("-"),
            Assignment::Consumer(topics) => {
                let parts: Vec<String> = topics
                    .iter()
                    .map(|(t, ps)| {
                        let ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                        format!("{t}: {}", ps.join(","))
                    })
                    .collect();
                f.write_str(&parts.join("; "))
            }
            Assignment::Other(s) => f.write_str(s),
        }
    }
}

/// Decodes a member's assignment. For protocol type `consumer` the bytes are an i16 version
/// followed by a ConsumerProtocolAssignment of that version (newer versions are read as the
/// newest known one, as Kafka's clients do); other protocol types are shown by size.
pub fn decode_assignment(protocol_type: &str, bytes: &[u8]) -> Assignment {
    if bytes.is_empty() {
        return Assignment::None;
    }
    if protocol_type != "consumer" {
        return Assignment::Other(format!("({} bytes)", bytes.len()));
    }
    let undecodable = |why: &str| Assignment::Other(format!("(undecodable: {why})"));
    if bytes.len() < 2 {
        return undecodable("shorter than its version");
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version < 0 {
        return undecodable("negative version");
    }
    let version = version.min(ConsumerProtocolAssignment::VERSIONS.max);
    let mut body = &bytes[2..];
    match ConsumerProtocolAssignment::decode(&mut body, version) {
        Ok(a) => {
            let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for tp in a.assigned_partitions {
                topics
                    .entry(tp.topic.0.to_string())
                    .or_default()
                    .extend(tp.partitions);
            }
            for ps in topics.values_mut() {
                ps.sort_unstable();
                ps.dedup();
            }
            Assignment::Consumer(topics)
        }
        Err(e) => undecodable(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encoded(version: i16, topics: &[(&str, &[i32])]) -> Vec<u8> {
        let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
            topics
                .iter()
                .map(|(t, ps)| {
                    TopicPartition::default()
                        .with_topic(kafka_protocol::messages::TopicName(StrBytes::from_string(
                            t.to_string(),
                        )))
                        .with_partitions(ps.to_vec())
                })
                .collect(),
        );
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        a.encode(&mut buf, version.min(3)).unwrap();
        buf.to_vec()
    }

    #[test]
    fn decodes_every_version() {
        for v in 0..=3 {
            let a = decode_assignment("consumer", &encoded(v, &[("orders", &[2, 0, 1])]));
            assert_eq!(a.to_string(), "orders: 0,1,2", "version {v}");
        }
    }

    #[test]
    fn several_topics_and_future_versions() {
        let bytes = encoded(3, &[("b", &[1]), ("a", &[3, 0])]);
        let mut future = bytes.clone();
        future[..2].copy_from_slice(&7i16.to_be_bytes());
        assert_eq!(
            decode_assignment("consumer", &bytes).to_string(),
            "a: 0,3; b: 1"
        );
        assert_eq!(
            decode_assignment("consumer", &future).to_string(),
            "a: 0,3; b: 1"
        );
    }

    #[test]
    fn empty_other_and_garbage() {
        assert_eq!(decode_assignment("consumer", &[]), Assignment::None);
        assert_eq!(
            decode_assignment("connect", &[1, 2, 3]).to_string(),
            "(3 bytes)"
        );
        assert!(decode_assignment("consumer", &[0, 0, 0, 0, 0, 9])
            .to_string()
            .starts_with("(undecodable"));
        assert!(decode_assignment("consumer", &[0])
            .to_string()
            .starts_with("(undecodable"));
    }
}
