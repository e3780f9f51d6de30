//! The group administration client: coordinator lookup, connections, and retries when the
//! coordinator moves or is still loading; the request shapes are in [`super::requests`].

use super::assignment::{decode_assignment, Assignment};
use super::requests::{
    describe_groups, group_id, list_groups_request, offset_commit_request, offset_fetch,
};
use crate::tools::common::{CommonArgs, ToolError};
use kafka_protocol::messages::{DeleteGroupsRequest, ListGroupsRequest};
use sluice_net::client::{ClientError, Cluster, Connection, Coordinator, COORDINATOR_GROUP};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A topic and a partition.
pub type TopicPartition = (String, i32);

/// Kafka's COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR: ask
/// FindCoordinator again and retry.
const COORDINATOR_ERRORS: [i16; 3] = [14, 15, 16];
/// GROUP_ID_NOT_FOUND.
pub const GROUP_ID_NOT_FOUND: i16 = 69;

/// One member of a group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id` (static membership), if any.
    pub instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connected from.
    pub host: String,
    /// Its assignment.
    pub assignment: Assignment,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The group id.
    pub group: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance` or `Dead` (which is also
    /// what a group that does not exist reports).
    pub state: String,
    /// `consumer` for consumer groups; empty for groups that only hold commits.
    pub protocol_type: String,
    /// The chosen protocol: the partition assignor of a consumer group.
    pub protocol: String,
    /// The members.
    pub members: Vec<Member>,
    /// The node that coordinates the group.
    pub coordinator: Coordinator,
}

impl Description {
    /// Whether the group exists (a coordinator describes an unknown group as `Dead`).
    pub fn exists(&self) -> bool {
        self.state != "Dead"
    }

    /// Whether the group has no active members, so offsets may be reset or the group deleted.
    pub fn is_inactive(&self) -> bool {
        self.state == "Empty" || self.state == "Dead"
    }

    /// The member id owning each assigned partition.
    pub fn owners(&self) -> BTreeMap<TopicPartition, String> {
        let mut out = BTreeMap::new();
        for m in &self.members {
            if let Assignment::Consumer(topics) = &m.assignment {
                for (t, parts) in topics {
                    for p in parts {
                        out.insert((t.clone(), *p), m.member_id.clone());
                    }
                }
            }
        }
        out
    }
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// The group id.
    pub group: String,
    /// Its state (ListGroups v4+, else from DescribeGroups; `None` if neither said).
    pub state: Option<String>,
    /// Its protocol type.
    pub protocol_type: String,
}

/// A client for group administration: the cluster (with its connections) and coordinators by
/// group.
pub struct Admin {
    cluster: Cluster,
    coordinators: RefCell<HashMap<String, Coordinator>>,
    retry_for: Duration,
}

impl Admin {
    /// Connects to the bootstrap server.
    pub async fn connect(common: &CommonArgs) -> Result<Admin, ToolError> {
        let cluster = common.connect("sluice-group").await?;
        Ok(Admin::new(cluster, common.timeout()))
    }

    /// An admin client on `cluster` that retries coordinator errors for up to `retry_for`.
    pub fn new(cluster: Cluster, retry_for: Duration) -> Admin {
        Admin {
            cluster,
            coordinators: RefCell::new(HashMap::new()),
            retry_for,
        }
    }

    /// The cluster (metadata, ListOffsets).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The coordinator of `group` (retrying while the cluster says none is available yet).
    pub async fn coordinator(&self, group: &str) -> Result<Coordinator, ToolError> {
        if let Some(c) = self.coordinators.borrow().get(group) {
            return Ok(c.clone());
        }
        let deadline = Instant::now() + self.retry_for;
        loop {
            match self
                .cluster
                .find_coordinator(COORDINATOR_GROUP, group)
                .await
            {
                Ok(c) => {
                    self.coordinators
                        .borrow_mut()
                        .insert(group.to_string(), c.clone());
                    return Ok(c);
                }
                Err(ClientError::Kafka { code, .. })
                    if COORDINATOR_ERRORS.contains(&code) && Instant::now() < deadline =>
                {
                    glommio::timer::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `op` on a connection to `group`'s coordinator, finding the coordinator again and
    /// retrying (bounded by the timeout) when `op` fails with a coordinator error or a broken
    /// connection.
    async fn on_coordinator<T, F, Fut>(&self, group: &str, mut op: F) -> Result<T, ToolError>
    where
        F: FnMut(Rc<Connection>, Coordinator) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let deadline = Instant::now() + self.retry_for;
        loop {
            let coordinator = self.coordinator(group).await?;
            let result = match self.cluster.conn(&coordinator.addr()).await {
                Ok(conn) => op(conn, coordinator).await,
                Err(e) => Err(e),
            };
            let retry = match &result {
                Err(ClientError::Kafka { code, .. }) => COORDINATOR_ERRORS.contains(code),
                Err(ClientError::Broken { .. }) => true,
                _ => false,
            };
            if retry && Instant::now() < deadline {
                self.coordinators.borrow_mut().remove(group);
                glommio::timer::sleep(Duration::from_millis(200)).await;
                continue;
            }
            return result.map_err(ToolError::from);
        }
    }

    /// DescribeGroups for `group` on its coordinator.
    pub async fn describe(&self, group: &str) -> Result<Description, ToolError> {
        self.on_coordinator(group, |conn, coordinator| async move {
            let resp = describe_groups(&conn, &[group.to_string()]).await?;
            let g = resp
                .groups
                .iter()
                .find(|g| g.group_id.0.as_str() == group)
                .ok_or_else(|| {
                    ClientError::Codec(format!("DescribeGroups did not describe group '{group}'"))
                })?;
            let state = match g.error_code {
                0 => g.group_state.to_string(),
                GROUP_ID_NOT_FOUND => "Dead".to_string(),
                code => {
                    return Err(ClientError::Kafka {
                        what: format!("describing group '{group}'"),
                        code,
                        message: g.error_message.as_ref().map(|m| m.to_string()),
                    })
                }
            };
            let protocol_type = g.protocol_type.to_string();
            Ok(Description {
                group: group.to_string(),
                state,
                protocol: g.protocol_data.to_string(),
                members: g
                    .members
                    .iter()
                    .map(|m| Member {
                        member_id: m.member_id.to_string(),
                        instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
                        client_id: m.client_id.to_string(),
                        host: m.client_host.to_string(),
                        assignment: decode_assignment(&protocol_type, &m.member_assignment),
                    })
                    .collect(),
                protocol_type,
                coordinator,
            })
        })
        .await
    }

    /// Every committed offset of `group` (OffsetFetch for all partitions). Partitions with a
    /// per-partition error are reported on stderr and left out.
    pub async fn committed(&self, group: &str) -> Result<BTreeMap<TopicPartition, i64>, ToolError> {
        let (offsets, errors) = self
            .on_coordinator(
                group,
                |conn, _| async move { offset_fetch(&conn, group).await },
            )
            .await?;
        for ((t, p), code) in errors {
            eprintln!(
                "warning: the committed offset of {t}-{p} could not be read: {}",
                crate::tools::common::code_text(code)
            );
        }
        Ok(offsets)
    }

    /// Commits `offsets` for `group` as an administrative commit (generation -1, no member id),
    /// which a coordinator accepts only while the group has no active members. Returns each
    /// partition's error code (0 for success).
    pub async fn commit(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<BTreeMap<TopicPartition, i16>, ToolError> {
        let req = offset_commit_request(group, offsets);
        let req = &req;
        self.on_coordinator(group, |conn, _| async move {
            let resp = conn.send(req).await?;
            let mut out = BTreeMap::new();
            for t in &resp.topics {
                for p in &t.partitions {
                    out.insert((t.name.0.to_string(), p.partition_index), p.error_code);
                }
            }
            // A coordinator error on every partition means the request went to the wrong node.
            if let Some(code) = out.values().next().copied() {
                if COORDINATOR_ERRORS.contains(&code) && out.values().all(|c| *c == code) {
                    return Err(ClientError::Kafka {
                        what: format!("committing offsets of group '{group}'"),
                        code,
                        message: None,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    /// DeleteGroups for `group` on its coordinator; returns its error code (0 when deleted).
    pub async fn delete(&self, group: &str) -> Result<i16, ToolError> {
        self.on_coordinator(group, |conn, _| async move {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
            let resp = conn.send(&req).await?;
            let code = resp
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == group)
                .map(|r| r.error_code)
                .ok_or_else(|| {
                    ClientError::Codec(format!("DeleteGroups did not answer for group '{group}'"))
                })?;
            if COORDINATOR_ERRORS.contains(&code) {
                return Err(ClientError::Kafka {
                    what: format!("deleting group '{group}'"),
                    code,
                    message: None,
                });
            }
            Ok(code)
        })
        .await
    }

    /// ListGroups on every node in Metadata (each node coordinates its own slice of groups),
    /// merged and sorted by name, filtered by `states` (canonical names; empty for all). Nodes
    /// that fail are named in the returned warnings.
    pub async fn list(&self, states: &[String]) -> Result<(Vec<Listed>, Vec<String>), ToolError> {
        let md = self.cluster.refresh(&[]).await?;
        if md.nodes.is_empty() {
            return Err(ToolError::Message(
                "the broker's Metadata lists no nodes".to_string(),
            ));
        }
        let lists = md
            .nodes
            .iter()
            .map(|(node, addr)| async move { (*node, self.list_node(addr, states).await) });
        let mut groups = Vec::new();
        let mut warnings = Vec::new();
        for (node, result) in futures::future::join_all(lists).await {
            match result {
                Ok(g) => groups.extend(g),
                Err(e) => warnings.push(format!("node {node}: {e}")),
            }
        }
        groups.retain(|g: &Listed| {
            states.is_empty() || g.state.as_ref().is_some_and(|s| states.contains(s))
        });
        groups.sort();
        groups.dedup_by(|a, b| a.group == b.group);
        Ok((groups, warnings))
    }

    async fn list_node(&self, addr: &str, states: &[String]) -> Result<Vec<Listed>, ClientError> {
        let conn = self.cluster.conn(addr).await?;
        let version = conn.version::<ListGroupsRequest>()?;
        let resp = conn
            .send_at(&list_groups_request(states, version), version)
            .await?;
        if resp.error_code != 0 {
            return Err(ClientError::Kafka {
                what: "ListGroups".into(),
                code: resp.error_code,
                message: None,
            });
        }
        let mut listed: Vec<Listed> = resp
            .groups
            .iter()
            .map(|g| Listed {
                group: g.group_id.0.to_string(),
                state: (version >= 4).then(|| g.group_state.to_string()),
                protocol_type: g.protocol_type.to_string(),
            })
            .collect();
        if version < 4 && !listed.is_empty() {
            // No states in this version: the node that listed the groups coordinates them.
            let ids: Vec<String> = listed.iter().map(|g| g.group.clone()).collect();
            let described = describe_groups(&conn, &ids).await?;
            for g in &mut listed {
                g.state = described
                    .groups
                    .iter()
                    .find(|d| d.group_id.0.as_str() == g.group && d.error_code == 0)
                    .map(|d| d.group_state.to_string());
            }
        }
        Ok(listed)
    }
}
