//! Bootstrap, metadata and leader lookup.

use super::{ClientError, ClientOptions, Connection, Result};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The leader's node id (-1 when there is none).
    pub leader: i32,
    /// The partition's error code (0 for none).
    pub error_code: i16,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic's error code (3, UNKNOWN_TOPIC_OR_PARTITION, when it does not exist).
    pub error_code: i16,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionMetadata>,
}

/// A snapshot of cluster metadata: nodes and the topics asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Node id → `host:port`.
    pub nodes: BTreeMap<i32, String>,
    /// Topic name → its metadata.
    pub topics: BTreeMap<String, TopicMetadata>,
}

impl Metadata {
    /// The leader node of `topic`/`partition`, if known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let p = self.topics.get(topic)?.partitions.get(&partition)?;
        (p.leader >= 0).then_some(p.leader)
    }
}

/// A client's view of a cluster: a connection to one bootstrap node for metadata and admin
/// requests, and the latest [`Metadata`].
pub struct Cluster {
    bootstrap: Vec<String>,
    options: ClientOptions,
    control: RefCell<Option<Rc<Connection>>>,
    metadata: RefCell<Metadata>,
}

impl Cluster {
    /// Connects to the first reachable address of `bootstrap` (`host:port`, comma-separated
    /// lists accepted too).
    pub async fn connect(bootstrap: &[String], options: &ClientOptions) -> Result<Cluster> {
        let bootstrap: Vec<String> = bootstrap
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if bootstrap.is_empty() {
            return Err(ClientError::Metadata("no bootstrap address given".into()));
        }
        let cluster = Cluster {
            bootstrap,
            options: options.clone(),
            control: RefCell::new(None),
            metadata: RefCell::new(Metadata::default()),
        };
        cluster.control().await?;
        Ok(cluster)
    }

    /// The options connections are opened with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The connection used for metadata and admin requests, reconnecting if it failed.
    pub async fn control(&self) -> Result<Rc<Connection>> {
        if let Some(c) = self.control.borrow().as_ref() {
            if !c.is_broken() {
                return Ok(c.clone());
            }
        }
        let mut last = None;
        for addr in &self.bootstrap {
            match Connection::connect(addr, &self.options).await {
                Ok(c) => {
                    let c = Rc::new(c);
                    *self.control.borrow_mut() = Some(c.clone());
                    return Ok(c);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Metadata("no bootstrap address given".into())))
    }

    /// The latest metadata snapshot.
    pub fn metadata(&self) -> Metadata {
        self.metadata.borrow().clone()
    }

    /// Fetches metadata for `topics` (never auto-creating them) and keeps it as the latest.
    pub async fn refresh(&self, topics: &[String]) -> Result<Metadata> {
        let conn = self.control().await?;
        let req = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(false);
        let resp = conn.send(&req).await?;
        let mut md = Metadata::default();
        for b in &resp.brokers {
            md.nodes
                .insert(b.node_id.0, format!("{}:{}", b.host, b.port));
        }
        for t in &resp.topics {
            let Some(name) = &t.name else { continue };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionMetadata {
                            leader: p.leader_id.0,
                            error_code: p.error_code,
                        },
                    )
                })
                .collect();
            md.topics.insert(
                name.to_string(),
                TopicMetadata {
                    error_code: t.error_code,
                    partitions,
                },
            );
        }
        *self.metadata.borrow_mut() = md.clone();
        Ok(md)
    }

    /// Creates `topic` with `partitions` partitions; `Ok(false)` if it already existed.
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<bool> {
        let conn = self.control().await?;
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)])
            .with_timeout_ms(
                self.options
                    .request_timeout
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
            );
        let resp = conn.send(&req).await?;
        let r = resp
            .topics
            .first()
            .ok_or_else(|| ClientError::Codec("CreateTopics response lists no topic".into()))?;
        match r.error_code {
            0 => Ok(true),
            36 => Ok(false),
            code => Err(ClientError::Kafka {
                what: format!("creating topic {topic}"),
                code,
                message: r.error_message.as_ref().map(|m| m.to_string()),
            }),
        }
    }

    /// The `host:port` of node `node` in the latest metadata.
    pub fn node_addr(&self, node: i32) -> Result<String> {
        self.metadata
            .borrow()
            .nodes
            .get(&node)
            .cloned()
            .ok_or_else(|| {
                ClientError::Metadata(format!("node {node} is not in the cluster metadata"))
            })
    }

    /// Opens a new connection to node `node`.
    pub async fn connect_node(&self, node: i32) -> Result<Connection> {
        let addr = self.node_addr(node)?;
        Connection::connect(&addr, &self.options).await
    }
}

/// A topic name for requests.
pub fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}
