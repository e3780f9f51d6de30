//! Bootstrap, metadata and leader lookup.

use super::{ClientError, ClientOptions, Connection, Result};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{CreateTopicsRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The leader's node id (-1 when there is none).
    pub leader: i32,
    /// The partition's error code (0 for none).
    pub error_code: i16,
    /// The nodes holding a replica, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The replicas on brokers that are not live (Metadata v5+; empty before).
    pub offline_replicas: Vec<i32>,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic's error code (3, UNKNOWN_TOPIC_OR_PARTITION, when it does not exist).
    pub error_code: i16,
    /// The topic id (all zeros when the broker does not send one: Metadata before v10).
    pub topic_id: [u8; 16],
    /// Whether the topic is internal (`__consumer_offsets`).
    pub is_internal: bool,
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
/// requests, the latest [`Metadata`], and reusable connections to other nodes.
pub struct Cluster {
    bootstrap: Vec<String>,
    options: ClientOptions,
    control: RefCell<Option<Rc<Connection>>>,
    metadata: RefCell<Metadata>,
    conns: RefCell<HashMap<String, Rc<Connection>>>,
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
            conns: RefCell::new(HashMap::new()),
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
        self.fetch_metadata(Some(topics), false).await
    }

    /// Fetches metadata for `topics`, letting the broker create the missing ones when its
    /// `auto.create.topics.enable` allows (as a Kafka producer's metadata requests do), and
    /// keeps it as the latest.
    pub async fn refresh_creating(&self, topics: &[String]) -> Result<Metadata> {
        self.fetch_metadata(Some(topics), true).await
    }

    /// Fetches metadata for every topic of the cluster and keeps it as the latest.
    pub async fn refresh_all(&self) -> Result<Metadata> {
        self.fetch_metadata(None, false).await
    }

    async fn fetch_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Metadata> {
        let conn = self.control().await?;
        let req = MetadataRequest::default()
            .with_topics(topics.map(|topics| {
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_topic_creation);
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
                            replicas: p.replica_nodes.iter().map(|n| n.0).collect(),
                            isr: p.isr_nodes.iter().map(|n| n.0).collect(),
                            offline_replicas: p.offline_replicas.iter().map(|n| n.0).collect(),
                        },
                    )
                })
                .collect();
            md.topics.insert(
                name.to_string(),
                TopicMetadata {
                    error_code: t.error_code,
                    topic_id: *t.topic_id.as_bytes(),
                    is_internal: t.is_internal,
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
        self.create_topic_with_configs(topic, partitions, replication_factor, &[])
            .await
    }

    /// Creates `topic` with `partitions` partitions and these topic config overrides (-1 for the
    /// partition count or the replication factor means the broker's default); `Ok(false)` if it
    /// already existed. A refusal (an invalid config, say) is [`ClientError::Kafka`] with the
    /// broker's message.
    pub async fn create_topic_with_configs(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<bool> {
        let conn = self.control().await?;
        let configs = configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(configs)])
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

    /// A connection to `addr`, opened on first use and reused while it works.
    pub async fn conn(&self, addr: &str) -> Result<Rc<Connection>> {
        if let Some(c) = self.conns.borrow().get(addr) {
            if !c.is_broken() {
                return Ok(c.clone());
            }
        }
        let c = Rc::new(Connection::connect(addr, &self.options).await?);
        self.conns.borrow_mut().insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// A reused connection to node `node` (see [`Cluster::conn`]).
    pub async fn node_conn(&self, node: i32) -> Result<Rc<Connection>> {
        self.conn(&self.node_addr(node)?).await
    }
}

/// A topic name for requests.
pub fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}
