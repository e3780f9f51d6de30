//! `sluice cluster status`: brokers from DescribeCluster and the controller quorum from
//! DescribeQuorum (API 55), printed as two tables or as one JSON object.
//!
//! Brokers: DescribeCluster (v2 asks for fenced brokers too, and says which are) lists every
//! shard as a node `node.id * 1000 + k` (see `sluice_engine::metadata::node_id`); the shards of
//! one broker are grouped under its `node.id`. A node id below 1000 cannot be a Sluice shard and
//! is shown as a broker of its own (an Apache Kafka broker).
//!
//! Quorum: DescribeQuorum for partition 0 of `__cluster_metadata`, which a broker forwards to
//! the active controller. The ids are `node.id`s, as in `controller.quorum.voters`; the lag of
//! a replica is the leader's log end offset minus the replica's (unknown while the leader has
//! not heard from it).

use crate::tools::common::{code_text, ToolError};
use crate::tools::table::Table;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::{self, ReplicaState};
use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::Serialize;
use sluice_net::client::{ClientError, Cluster};
use std::collections::BTreeMap;

/// The metadata log's topic.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Shard k of broker B is node `B * NODES_PER_BROKER + k`.
const NODES_PER_BROKER: i32 = 1000;

/// Options of `sluice cluster status`.
#[derive(clap::Args, Debug, Clone)]
pub struct StatusArgs {
    /// Print one JSON object (`{"brokers": [...], "quorum": {...}}`) instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// One broker: its `node.id`, its shard nodes, whether it is fenced, its rack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokerStatus {
    /// The broker's `node.id`.
    pub id: i32,
    /// Its shards' node ids, ascending.
    pub nodes: Vec<i32>,
    /// Whether the controller has fenced it (its nodes are then missing from Metadata).
    pub fenced: bool,
    /// Its `broker.rack`, if set.
    pub rack: Option<String>,
}

/// One replica of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaStatus {
    /// The replica's `node.id`.
    pub id: i32,
    /// Its log end offset (-1 while the leader has not heard from it).
    pub log_end_offset: i64,
    /// The leader's log end offset minus this one (`null` when unknown).
    pub lag: Option<i64>,
}

/// The controller quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumStatus {
    /// The leader's `node.id` (the active controller), -1 when there is none.
    pub leader: i32,
    /// The leader epoch.
    pub epoch: i32,
    /// The voters.
    pub voters: Vec<ReplicaStatus>,
    /// The observers: brokers following the log without a vote.
    pub observers: Vec<ReplicaStatus>,
}

/// Everything `sluice cluster status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The brokers, by `node.id`.
    pub brokers: Vec<BrokerStatus>,
    /// The quorum.
    pub quorum: QuorumStatus,
}

/// The broker a node belongs to.
fn broker_of(node: i32) -> i32 {
    if node >= NODES_PER_BROKER {
        node / NODES_PER_BROKER
    } else {
        node
    }
}

/// The brokers of a DescribeCluster answer, their shard nodes grouped under each `node.id`.
pub fn brokers_from(resp: &DescribeClusterResponse) -> Vec<BrokerStatus> {
    let mut brokers: BTreeMap<i32, BrokerStatus> = BTreeMap::new();
    for node in &resp.brokers {
        let id = broker_of(node.broker_id.0);
        let b = brokers.entry(id).or_insert_with(|| BrokerStatus {
            id,
            nodes: Vec::new(),
            fenced: false,
            rack: None,
        });
        b.nodes.push(node.broker_id.0);
        b.fenced |= node.is_fenced;
        if b.rack.is_none() {
            b.rack = node.rack.as_ref().map(|r| r.to_string());
        }
    }
    let mut brokers: Vec<BrokerStatus> = brokers.into_values().collect();
    for b in &mut brokers {
        b.nodes.sort_unstable();
    }
    brokers
}

/// The quorum of a DescribeQuorum partition answer.
pub fn quorum_from(p: &describe_quorum_response::PartitionData) -> QuorumStatus {
    let leader_end = p
        .current_voters
        .iter()
        .find(|r| r.replica_id == p.leader_id)
        .map(|r| r.log_end_offset)
        .filter(|o| *o >= 0);
    let replicas = |list: &[ReplicaState]| {
        let mut out: Vec<ReplicaStatus> = list
            .iter()
            .map(|r| ReplicaStatus {
                id: r.replica_id.0,
                log_end_offset: r.log_end_offset,
                lag: leader_end
                    .filter(|_| r.log_end_offset >= 0)
                    .map(|end| end - r.log_end_offset),
            })
            .collect();
        out.sort_by_key(|r| r.id);
        out
    };
    QuorumStatus {
        leader: p.leader_id.0,
        epoch: p.leader_epoch,
        voters: replicas(&p.current_voters),
        observers: replicas(&p.observers),
    }
}

/// The two tables of the text output.
pub fn render(status: &Status) -> String {
    let mut brokers = Table::new(&["BROKER", "NODES", "FENCED", "RACK"]);
    for b in &status.brokers {
        let nodes: Vec<String> = b.nodes.iter().map(|n| n.to_string()).collect();
        brokers.row(vec![
            b.id.to_string(),
            nodes.join(","),
            if b.fenced { "yes" } else { "no" }.to_string(),
            b.rack.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    let q = &status.quorum;
    let leader = if q.leader >= 0 {
        q.leader.to_string()
    } else {
        "none".to_string()
    };
    let mut replicas = Table::new(&["REPLICA", "ROLE", "LOG END OFFSET", "LAG"]);
    let roles = q
        .voters
        .iter()
        .map(|r| (r, if r.id == q.leader { "leader" } else { "voter" }))
        .chain(q.observers.iter().map(|r| (r, "observer")));
    for (r, role) in roles {
        replicas.row(vec![
            r.id.to_string(),
            role.to_string(),
            r.log_end_offset.to_string(),
            r.lag.map_or_else(|| "-".to_string(), |l| l.to_string()),
        ]);
    }
    format!(
        "{}\nQuorum: leader {leader}, epoch {}\n{}",
        brokers.render(),
        q.epoch,
        replicas.render()
    )
}

/// DescribeCluster, asking (from v2) for fenced brokers too.
async fn describe_brokers(cluster: &Cluster) -> Result<Vec<BrokerStatus>, ToolError> {
    let conn = cluster.control().await?;
    let version = conn.version::<DescribeClusterRequest>()?;
    let req = DescribeClusterRequest::default().with_include_fenced_brokers(version >= 2);
    let resp = conn.send_at(&req, version).await?;
    if resp.error_code != 0 {
        return Err(ClientError::Kafka {
            what: "describing the cluster".into(),
            code: resp.error_code,
            message: resp.error_message.map(|m| m.to_string()),
        }
        .into());
    }
    Ok(brokers_from(&resp))
}

/// DescribeQuorum for the metadata log.
async fn describe_quorum(cluster: &Cluster) -> Result<QuorumStatus, ToolError> {
    let conn = cluster.control().await?;
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let resp = match conn.send(&req).await {
        Err(ClientError::Unsupported { addr, .. }) => {
            return Err(ToolError::Message(format!(
                "the broker at {addr} does not answer DescribeQuorum (API 55), so it has no \
                 controller quorum to show; point --bootstrap-server at a broker of a cluster \
                 with one (a Sluice release with `controller.quorum.voters`, or Kafka in KRaft \
                 mode)"
            )))
        }
        r => r?,
    };
    let unavailable = |code: i16| {
        ToolError::Message(format!(
            "the controller quorum did not answer: {}; check that a majority of the voters in \
             `controller.quorum.voters` are running and can reach each other, then retry",
            code_text(code)
        ))
    };
    if resp.error_code != 0 {
        return Err(unavailable(resp.error_code));
    }
    let partition = resp
        .topics
        .iter()
        .find(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0))
        .ok_or_else(|| {
            ToolError::Message(format!(
                "DescribeQuorum did not describe {METADATA_TOPIC}; is the broker a KRaft one?"
            ))
        })?;
    if partition.error_code != 0 {
        return Err(unavailable(partition.error_code));
    }
    Ok(quorum_from(partition))
}

/// Runs `sluice cluster status`.
pub async fn run(cluster: &Cluster, args: &StatusArgs) -> Result<bool, ToolError> {
    let status = Status {
        brokers: describe_brokers(cluster).await?,
        quorum: describe_quorum(cluster).await?,
    };
    if args.json {
        let json = serde_json::to_string(&status)
            .map_err(|e| ToolError::Message(format!("cannot write JSON: {e}")))?;
        outln!("{json}");
    } else {
        out!("{}", render(&status));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
    use kafka_protocol::messages::BrokerId;

    fn node(id: i32, fenced: bool, rack: Option<&str>) -> DescribeClusterBroker {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_is_fenced(fenced)
            .with_rack(rack.map(|r| StrBytes::from_string(r.to_string())))
    }

    fn replica(id: i32, end: i64) -> ReplicaState {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(end)
    }

    fn status() -> Status {
        let resp = DescribeClusterResponse::default().with_brokers(vec![
            node(2001, true, None),
            node(1001, false, Some("r1")),
            node(1000, false, Some("r1")),
            node(2000, true, None),
        ]);
        let p = describe_quorum_response::PartitionData::default()
            .with_leader_id(BrokerId(1))
            .with_leader_epoch(7)
            .with_current_voters(vec![replica(2, 90), replica(1, 100), replica(3, -1)])
            .with_observers(vec![replica(4, 100)]);
        Status {
            brokers: brokers_from(&resp),
            quorum: quorum_from(&p),
        }
    }

    #[test]
    fn shard_nodes_are_grouped_under_their_broker() {
        let s = status();
        assert_eq!(
            s.brokers,
            vec![
                BrokerStatus {
                    id: 1,
                    nodes: vec![1000, 1001],
                    fenced: false,
                    rack: Some("r1".into())
                },
                BrokerStatus {
                    id: 2,
                    nodes: vec![2000, 2001],
                    fenced: true,
                    rack: None
                },
            ]
        );
        let kafka = DescribeClusterResponse::default().with_brokers(vec![node(5, false, None)]);
        assert_eq!(brokers_from(&kafka)[0].nodes, vec![5]);
    }

    #[test]
    fn lag_is_the_leaders_log_end_minus_the_replicas() {
        let q = status().quorum;
        let lags: Vec<(i32, Option<i64>)> = q.voters.iter().map(|r| (r.id, r.lag)).collect();
        assert_eq!(lags, vec![(1, Some(0)), (2, Some(10)), (3, None)]);
        assert_eq!(q.observers[0].lag, Some(0));
    }

    #[test]
    fn json_has_the_documented_shape() {
        let json = serde_json::to_string(&status()).unwrap();
        assert_eq!(
            json,
            r#"{"brokers":[{"id":1,"nodes":[1000,1001],"fenced":false,"rack":"r1"},{"id":2,"nodes":[2000,2001],"fenced":true,"rack":null}],"quorum":{"leader":1,"epoch":7,"voters":[{"id":1,"log_end_offset":100,"lag":0},{"id":2,"log_end_offset":90,"lag":10},{"id":3,"log_end_offset":-1,"lag":null}],"observers":[{"id":4,"log_end_offset":100,"lag":0}]}}"#
        );
    }

    #[test]
    fn text_has_a_broker_table_and_a_replica_table() {
        assert_eq!(
            render(&status()),
            "BROKER  NODES      FENCED  RACK\n\
             1       1000,1001  no      r1\n\
             2       2000,2001  yes     -\n\
             \n\
             Quorum: leader 1, epoch 7\n\
             REPLICA  ROLE      LOG END OFFSET  LAG\n\
             1        leader    100             0\n\
             2        voter     90              10\n\
             3        voter     -1              -\n\
             4        observer  100             0\n"
        );
    }
}
