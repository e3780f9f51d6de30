//! `sluice topic reassign`: partition reassignments from the command line, in the manner of
//! Kafka's `kafka-reassign-partitions.sh`, with its plan format
//! (`{"version":1,"partitions":[{"topic":…,"partition":…,"replicas":[…]}]}`, replicas as node
//! ids, preferred leader first).
//!
//! * `plan` — proposes a plan moving the given topics onto the given brokers, placed as the
//!   controller places new partitions (replicas on distinct racks, then brokers, then shards;
//!   leaders spread over brokers then shards, counting the partitions already there); prints it
//!   on stdout (the current assignment, to roll back, on stderr).
//! * `execute --plan FILE` — AlterPartitionReassignments for every partition of the plan;
//!   prints the current assignment (to roll back) and one result per partition.
//! * `verify --plan FILE` — per partition: complete, in progress (with the replicas being
//!   added and removed), or an error; exit status 0 only when every one is complete.
//! * `cancel --plan FILE` — cancels the plan's reassignments still in progress (they go back to
//!   their replicas before).
//! * `list` — every reassignment in progress (ListPartitionReassignments).
//!
//! Raising a topic's replication factor is a plan with `--replication-factor`: the new
//! replicas are added, catch up, and join the in-sync replicas.

use crate::tools::common::{code_text, count_of, request_timeout_ms, ToolError};
use crate::tools::table::Table;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeClusterRequest,
    ListPartitionReassignmentsRequest,
};
use serde::{Deserialize, Serialize};
use sluice_engine::config::TopicConfigs;
use sluice_engine::metadata::{
    broker_of_node, shard_of_node, BrokerRegistration, ClusterState, PartitionState, TopicState,
};
use sluice_engine::partition_caps::PartitionBudget;
use sluice_engine::BrokerConfig;
use sluice_net::client::{topic_name, ClientError, Cluster, Metadata};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// How long `verify` waits for the bootstrap broker's metadata to show a reassignment the
/// controller has completed.
const METADATA_CATCH_UP: Duration = Duration::from_secs(3);

/// Options of `sluice topic reassign`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReassignArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReassignCommand,
}

/// The `sluice topic reassign` subcommands.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum ReassignCommand {
    /// Propose a plan moving topics onto brokers; prints it (JSON) on stdout.
    Plan(PlanArgs),
    /// Start the reassignments of a plan.
    Execute(ExecuteArgs),
    /// Show how far each reassignment of a plan is (exit status 0 when all are complete).
    Verify(PlanFileArgs),
    /// Cancel the reassignments of a plan that are still in progress.
    Cancel(PlanFileArgs),
    /// List every reassignment in progress.
    List,
}

/// Options of `sluice topic reassign plan`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// The topics to move (comma-separated).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', required = true)]
    pub topics: Vec<String>,
    /// The brokers (`node.id`s, comma-separated) to place their replicas on; every shard of
    /// each is used.
    #[arg(long, value_name = "IDS", value_delimiter = ',', required = true)]
    pub brokers: Vec<i32>,
    /// Replicas per partition (default: each topic's current replication factor).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i16).range(1..))]
    pub replication_factor: Option<i16>,
}

/// Options of `sluice topic reassign execute`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExecuteArgs {
    /// The plan file.
    #[command(flatten)]
    pub plan: PlanFileArgs,
    /// Refuse partitions whose replica count the plan changes (KIP-860).
    #[arg(long)]
    pub disallow_replication_factor_change: bool,
}

/// The plan file option.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanFileArgs {
    /// The plan (JSON, as `plan` prints it or kafka-reassign-partitions.sh reads it).
    #[arg(long, value_name = "FILE", required = true)]
    pub plan: PathBuf,
}

/// A reassignment plan: Kafka's reassignment JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always 1.
    pub version: i32,
    /// The partitions and their target replicas.
    pub partitions: Vec<PlannedPartition>,
}

/// One partition of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Target replicas (node ids), preferred leader first.
    pub replicas: Vec<i32>,
    /// Kafka's log directories per replica; only `any` is accepted (Sluice places replicas in
    /// log directories itself). Never written.
    #[serde(default, skip_serializing)]
    pub log_dirs: Option<Vec<String>>,
}

impl Plan {
    /// A plan of `partitions`.
    pub fn new(partitions: Vec<PlannedPartition>) -> Plan {
        Plan {
            version: 1,
            partitions,
        }
    }

    /// Reads and checks a plan: version 1, at least one partition, no partition twice, no
    /// empty replica list, log directories `any` only.
    pub fn parse(text: &str) -> Result<Plan, String> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| {
            format!("not a reassignment plan ({e}); expected {{\"version\":1,\"partitions\":[{{\"topic\":\"t\",\"partition\":0,\"replicas\":[1000,2000]}}]}}")
        })?;
        if plan.version != 1 {
            return Err(format!(
                "plan version {} is not supported (only 1 is)",
                plan.version
            ));
        }
        if plan.partitions.is_empty() {
            return Err("the plan names no partition".to_string());
        }
        let mut seen = BTreeSet::new();
        for p in &plan.partitions {
            if !seen.insert((p.topic.as_str(), p.partition)) {
                return Err(format!(
                    "the plan names {}-{} more than once",
                    p.topic, p.partition
                ));
            }
            if p.replicas.is_empty() {
                return Err(format!(
                    "the plan gives {}-{} no replicas",
                    p.topic, p.partition
                ));
            }
            if let Some(dirs) = &p.log_dirs {
                if dirs.iter().any(|d| d != "any") {
                    return Err(format!(
                        "the plan gives {}-{} log directories {dirs:?}: Sluice chooses replicas' log directories itself, so only \"any\" is accepted",
                        p.topic, p.partition
                    ));
                }
            }
        }
        Ok(plan)
    }

    /// The plan as one line of JSON (Kafka's layout).
    pub fn render(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The plan's partitions by topic, in plan order.
    fn by_topic(&self) -> Vec<(String, Vec<&PlannedPartition>)> {
        let mut topics: Vec<(String, Vec<&PlannedPartition>)> = Vec::new();
        for p in &self.partitions {
            match topics.iter_mut().find(|(t, _)| *t == p.topic) {
                Some((_, ps)) => ps.push(p),
                None => topics.push((p.topic.clone(), vec![p])),
            }
        }
        topics
    }
}

/// A live node as DescribeCluster lists it: (node id, rack).
type LiveNode = (i32, Option<String>);

/// The state the placement runs on: the `target` brokers (with their shards and racks, from
/// `nodes`) live, and the partitions of the topics not being moved (`others`), whose load
/// counts.
fn placement_state(
    nodes: &[LiveNode],
    target: &[i32],
    others: &[(String, Vec<Vec<i32>>)],
) -> Result<ClusterState, String> {
    let mut state = ClusterState::new(Some("plan".into()));
    for &broker in target {
        let mine: Vec<&LiveNode> = nodes
            .iter()
            .filter(|(n, _)| broker_of_node(*n) == broker)
            .collect();
        let Some(shards) = mine.iter().map(|(n, _)| shard_of_node(*n) + 1).max() else {
            let live: BTreeSet<i32> = nodes.iter().map(|(n, _)| broker_of_node(*n)).collect();
            return Err(format!(
                "broker {broker} is not a live broker of the cluster (live brokers: {})",
                live.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        state.brokers.insert(
            broker,
            BrokerRegistration {
                id: broker,
                incarnation_id: uuid::Uuid::nil(),
                shards,
                host: String::new(),
                port: 0,
                rack: mine.iter().find_map(|(_, r)| r.clone()),
                fenced: false,
                epoch: 0,
            },
        );
    }
    for (name, partitions) in others {
        let partitions = partitions
            .iter()
            .filter_map(|r| PartitionState::new(r.clone(), |_| true))
            .collect();
        state.topics.insert(
            name.clone(),
            TopicState {
                id: uuid::Uuid::nil(),
                partitions,
                configs: TopicConfigs::default(),
                internal: false,
            },
        );
    }
    Ok(state)
}

/// Proposes target replicas for every partition of `topics` (name, partition count,
/// replication factor) on the brokers of `state`, placed as the controller places new
/// partitions.
fn propose(
    state: &ClusterState,
    topics: &[(String, u64, i16)],
) -> Result<Vec<PlannedPartition>, String> {
    let no_caps = [
        format!("sluice.max.partitions.per.broker={}", i32::MAX),
        format!("sluice.max.partitions.per.shard={}", i32::MAX),
    ];
    let config = BrokerConfig::load(None, &no_caps).map_err(|e| e.to_string())?;
    let mut budget = PartitionBudget::new(state, &config);
    let mut planned = Vec::new();
    for (name, count, rf) in topics {
        let placed = budget
            .place(name, *count, *rf)
            .map_err(|(_, message)| format!("topic '{name}': {message}"))?;
        planned.extend(
            placed
                .into_iter()
                .enumerate()
                .map(|(index, replicas)| PlannedPartition {
                    topic: name.clone(),
                    partition: index as i32,
                    replicas,
                    log_dirs: None,
                }),
        );
    }
    Ok(planned)
}

/// The live nodes and their racks (DescribeCluster).
async fn live_nodes(cluster: &Cluster) -> Result<Vec<LiveNode>, ToolError> {
    let conn = cluster.control().await?;
    let resp = conn.send(&DescribeClusterRequest::default()).await?;
    if resp.error_code != 0 {
        return Err(ClientError::Kafka {
            what: "describing the cluster".into(),
            code: resp.error_code,
            message: resp.error_message.map(|m| m.to_string()),
        }
        .into());
    }
    Ok(resp
        .brokers
        .iter()
        .map(|b| (b.broker_id.0, b.rack.as_ref().map(|r| r.to_string())))
        .collect())
}

/// The current replicas of every partition of `topics`, as a plan (what rolls a plan back);
/// an error names a topic that does not exist.
fn current_assignment(md: &Metadata, topics: &[String]) -> Result<Plan, ToolError> {
    let mut partitions = Vec::new();
    for name in topics {
        let t = md
            .topics
            .get(name)
            .filter(|t| t.error_code != UNKNOWN_TOPIC_OR_PARTITION);
        let Some(t) = t else {
            return Err(ToolError::Message(format!(
                "topic '{name}' does not exist (`sluice topic list` lists the topics)"
            )));
        };
        if t.error_code != 0 {
            return Err(ToolError::Message(format!(
                "topic '{name}': {}",
                code_text(t.error_code)
            )));
        }
        partitions.extend(t.partitions.iter().map(|(index, p)| PlannedPartition {
            topic: name.clone(),
            partition: *index,
            replicas: p.replicas.clone(),
            log_dirs: None,
        }));
    }
    Ok(Plan::new(partitions))
}

/// Runs `sluice topic reassign plan`.
async fn plan(cluster: &Cluster, args: &PlanArgs) -> Result<bool, ToolError> {
    let md = cluster.refresh_all().await?;
    let current = current_assignment(&md, &args.topics)?;
    let nodes = live_nodes(cluster).await?;
    let others: Vec<(String, Vec<Vec<i32>>)> = md
        .topics
        .iter()
        .filter(|(name, t)| t.error_code == 0 && !args.topics.contains(name))
        .map(|(name, t)| {
            let replicas = t.partitions.values().map(|p| p.replicas.clone()).collect();
            (name.clone(), replicas)
        })
        .collect();
    let state = placement_state(&nodes, &args.brokers, &others).map_err(ToolError::Message)?;
    let mut topics = Vec::new();
    for name in &args.topics {
        let partitions: Vec<&PlannedPartition> = current
            .partitions
            .iter()
            .filter(|p| p.topic == *name)
            .collect();
        let rf = args.replication_factor.unwrap_or_else(|| {
            partitions
                .first()
                .map_or(1, |p| i16::try_from(p.replicas.len()).unwrap_or(i16::MAX))
        });
        topics.push((name.clone(), partitions.len() as u64, rf));
    }
    let proposed = propose(&state, &topics).map_err(ToolError::Message)?;
    eprintln!(
        "Current assignment (save it to roll back with `sluice topic reassign execute --plan FILE`):\n{}",
        current.render()
    );
    outln!("{}", Plan::new(proposed).render());
    Ok(true)
}

/// Reads the plan file.
fn read_plan(args: &PlanFileArgs) -> Result<Plan, ToolError> {
    let path = &args.plan;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolError::Message(format!("cannot read {}: {e}", path.display())))?;
    Plan::parse(&text).map_err(|e| ToolError::Message(format!("{}: {e}", path.display())))
}

/// Node ids as `1000,1001` (`-` for none).
fn nodes_text(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// Sends AlterPartitionReassignments for the plan's partitions (target `None`: cancel);
/// returns (topic, partition, error code, message) per partition.
async fn alter(
    cluster: &Cluster,
    plan: &Plan,
    cancel: bool,
    allow_replication_factor_change: bool,
) -> Result<Vec<(String, i32, i16, Option<String>)>, ToolError> {
    let conn = cluster.control().await?;
    let topics = plan
        .by_topic()
        .into_iter()
        .map(|(topic, partitions)| {
            ReassignableTopic::default()
                .with_name(topic_name(&topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            let replicas = (!cancel)
                                .then(|| p.replicas.iter().copied().map(BrokerId).collect());
                            ReassignablePartition::default()
                                .with_partition_index(p.partition)
                                .with_replicas(replicas)
                        })
                        .collect(),
                )
        })
        .collect();
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(request_timeout_ms(&conn))
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_topics(topics);
    let resp = conn.send(&request).await?;
    if resp.error_code != 0 {
        return Err(ClientError::Kafka {
            what: "altering partition reassignments".into(),
            code: resp.error_code,
            message: resp.error_message.map(|m| m.to_string()),
        }
        .into());
    }
    Ok(resp
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect())
}

/// The result table of `execute` / `cancel`, and whether every partition succeeded.
fn render_results(
    plan: &Plan,
    results: &[(String, i32, i16, Option<String>)],
    done: &str,
) -> (String, bool) {
    let mut table = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "RESULT"]);
    let mut ok = true;
    for p in &plan.partitions {
        let result = results
            .iter()
            .find(|(t, i, _, _)| *t == p.topic && *i == p.partition);
        let text = match result {
            Some((_, _, 0, _)) => done.to_string(),
            Some((_, _, code, message)) => {
                ok = false;
                match message {
                    Some(m) => format!("{}: {m}", code_text(*code)),
                    None => code_text(*code),
                }
            }
            None => {
                ok = false;
                "no answer from the broker".to_string()
            }
        };
        table.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            nodes_text(&p.replicas),
            text,
        ]);
    }
    (table.render(), ok)
}

/// Runs `sluice topic reassign execute`.
async fn execute(cluster: &Cluster, args: &ExecuteArgs) -> Result<bool, ToolError> {
    let plan = read_plan(&args.plan)?;
    let topics: Vec<String> = plan.by_topic().into_iter().map(|(t, _)| t).collect();
    let md = cluster.refresh(&topics).await?;
    let mut current = current_assignment(&md, &topics)?;
    current.partitions.retain(|c| {
        plan.partitions
            .iter()
            .any(|p| p.topic == c.topic && p.partition == c.partition)
    });
    outln!(
        "Current assignment (save it to roll back with `sluice topic reassign execute --plan FILE`):\n{}\n",
        current.render()
    );
    let results = alter(
        cluster,
        &plan,
        false,
        !args.disallow_replication_factor_change,
    )
    .await?;
    let (table, ok) = render_results(&plan, &results, "started");
    out!("{table}");
    if ok {
        outln!(
            "\nStarted {}; `sluice topic reassign verify --plan {}` shows their progress.",
            count_of(plan.partitions.len() as u64, "reassignment"),
            args.plan.plan.display()
        );
    }
    Ok(ok)
}

/// Runs `sluice topic reassign cancel`.
async fn cancel(cluster: &Cluster, args: &PlanFileArgs) -> Result<bool, ToolError> {
    let plan = read_plan(args)?;
    let results = alter(cluster, &plan, true, true).await?;
    let (table, ok) = render_results(&plan, &results, "cancelled");
    out!("{table}");
    Ok(ok)
}

/// A reassignment in progress: (replicas, adding, removing).
type Ongoing = (Vec<i32>, Vec<i32>, Vec<i32>);

/// ListPartitionReassignments for `topics` (`None`: all), by (topic, partition).
async fn ongoing(
    cluster: &Cluster,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<BTreeMap<(String, i32), Ongoing>, ToolError> {
    let conn = cluster.control().await?;
    let request = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(request_timeout_ms(&conn))
        .with_topics(topics.map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(&name))
                        .with_partition_indexes(partitions)
                })
                .collect()
        }));
    let resp = conn.send(&request).await?;
    if resp.error_code != 0 {
        return Err(ClientError::Kafka {
            what: "listing partition reassignments".into(),
            code: resp.error_code,
            message: resp.error_message.map(|m| m.to_string()),
        }
        .into());
    }
    let ids = |nodes: &[BrokerId]| nodes.iter().map(|n| n.0).collect::<Vec<_>>();
    Ok(resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.0.to_string(), p.partition_index),
                    (
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ),
                )
            })
        })
        .collect())
}

/// Where one planned partition stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignmentStatus {
    /// Its replicas are the plan's.
    Complete,
    /// Being reassigned: (replicas, adding, removing).
    InProgress(Ongoing),
    /// Not being reassigned, and its replicas are not the plan's (or it does not exist).
    Failed(String),
}

/// Where `planned` stands, given the reassignment in progress for it and its replicas in the
/// metadata (`None`: no such partition).
pub fn progress(
    planned: &PlannedPartition,
    in_progress: Option<&Ongoing>,
    replicas: Option<&[i32]>,
) -> ReassignmentStatus {
    match (in_progress, replicas) {
        (Some(ongoing), _) => ReassignmentStatus::InProgress(ongoing.clone()),
        (None, None) => ReassignmentStatus::Failed(format!(
            "there is no partition {}-{}",
            planned.topic, planned.partition
        )),
        (None, Some(replicas)) if replicas == planned.replicas => ReassignmentStatus::Complete,
        (None, Some(replicas)) => ReassignmentStatus::Failed(format!(
            "no reassignment is in progress, and its replicas are {}, not {}",
            nodes_text(replicas),
            nodes_text(&planned.replicas)
        )),
    }
}

/// The replicas of `topic`-`partition` in `md`.
fn replicas_in<'a>(md: &'a Metadata, topic: &str, partition: i32) -> Option<&'a [i32]> {
    md.topics
        .get(topic)
        .filter(|t| t.error_code == 0)?
        .partitions
        .get(&partition)
        .map(|p| p.replicas.as_slice())
}

/// The verify table and summary, and whether every partition is complete.
pub fn render_progress(rows: &[(&PlannedPartition, ReassignmentStatus)]) -> (String, bool) {
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "STATUS",
        "REPLICAS",
        "ADDING",
        "REMOVING",
    ]);
    let (mut complete, mut running, mut failed) = (0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    for (p, progress) in rows {
        let (status, replicas, adding, removing) = match progress {
            ReassignmentStatus::Complete => {
                complete += 1;
                ("complete", p.replicas.clone(), vec![], vec![])
            }
            ReassignmentStatus::InProgress((replicas, adding, removing)) => {
                running += 1;
                (
                    "in progress",
                    replicas.clone(),
                    adding.clone(),
                    removing.clone(),
                )
            }
            ReassignmentStatus::Failed(why) => {
                failed += 1;
                errors.push(format!("{}-{}: {why}", p.topic, p.partition));
                ("error", p.replicas.clone(), vec![], vec![])
            }
        };
        table.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            status.to_string(),
            nodes_text(&replicas),
            nodes_text(&adding),
            nodes_text(&removing),
        ]);
    }
    let mut out = table.render();
    for e in &errors {
        out.push_str(&format!("error: {e}\n"));
    }
    out.push_str(&format!(
        "{complete} complete, {running} in progress, {failed} failed.\n"
    ));
    (out, running == 0 && failed == 0)
}

/// Runs `sluice topic reassign verify`.
async fn verify(cluster: &Cluster, args: &PlanFileArgs) -> Result<bool, ToolError> {
    let plan = read_plan(args)?;
    let wanted: Vec<(String, Vec<i32>)> = plan
        .by_topic()
        .into_iter()
        .map(|(t, ps)| (t, ps.iter().map(|p| p.partition).collect()))
        .collect();
    let topics: Vec<String> = wanted.iter().map(|(t, _)| t.clone()).collect();
    let listed = ongoing(cluster, Some(wanted)).await?;
    // The controller may have completed a reassignment the bootstrap broker's metadata does
    // not show yet: look again, briefly, before calling it an error.
    let deadline = std::time::Instant::now() + METADATA_CATCH_UP;
    let rows = loop {
        let md = cluster.refresh(&topics).await?;
        let rows: Vec<(&PlannedPartition, ReassignmentStatus)> = plan
            .partitions
            .iter()
            .map(|p| {
                let key = (p.topic.clone(), p.partition);
                let progress =
                    progress(p, listed.get(&key), replicas_in(&md, &p.topic, p.partition));
                (p, progress)
            })
            .collect();
        let lagging = rows
            .iter()
            .any(|(_, progress)| matches!(progress, ReassignmentStatus::Failed(_)));
        if !lagging || std::time::Instant::now() >= deadline {
            break rows;
        }
        glommio::timer::sleep(Duration::from_millis(200)).await;
    };
    let (text, ok) = render_progress(&rows);
    out!("{text}");
    Ok(ok)
}

/// Runs `sluice topic reassign list`.
async fn list(cluster: &Cluster) -> Result<bool, ToolError> {
    let listed = ongoing(cluster, None).await?;
    if listed.is_empty() {
        outln!("No partition reassignment is in progress.");
        return Ok(true);
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]);
    for ((topic, partition), (replicas, adding, removing)) in &listed {
        table.row(vec![
            topic.clone(),
            partition.to_string(),
            nodes_text(replicas),
            nodes_text(adding),
            nodes_text(removing),
        ]);
    }
    out!("{}", table.render());
    Ok(true)
}

/// Runs `sluice topic reassign …`.
pub async fn run(cluster: &Cluster, args: &ReassignArgs) -> Result<bool, ToolError> {
    match &args.command {
        ReassignCommand::Plan(a) => plan(cluster, a).await,
        ReassignCommand::Execute(a) => execute(cluster, a).await,
        ReassignCommand::Verify(a) => verify(cluster, a).await,
        ReassignCommand::Cancel(a) => cancel(cluster, a).await,
        ReassignCommand::List => list(cluster).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(topic: &str, partition: i32, replicas: &[i32]) -> PlannedPartition {
        PlannedPartition {
            topic: topic.into(),
            partition,
            replicas: replicas.to_vec(),
            log_dirs: None,
        }
    }

    #[test]
    fn plans_read_and_print_in_kafkas_format() {
        let kafka = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1000,2000],"log_dirs":["any","any"]}]}"#;
        let plan = Plan::parse(kafka).unwrap();
        assert_eq!(plan.partitions[0].replicas, [1000, 2000]);
        assert_eq!(
            plan.render(),
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1000,2000]}]}"#
        );
        assert_eq!(Plan::parse(&plan.render()).unwrap().render(), plan.render());
        let bad = [
            (r#"{"version":2,"partitions":[]}"#, "plan version 2"),
            (r#"{"version":1,"partitions":[]}"#, "names no partition"),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
                "t-0 more than once",
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[]}]}"#,
                "no replicas",
            ),
            (
                r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data"]}]}"#,
                "only \"any\"",
            ),
            ("[1,2]", "not a reassignment plan"),
        ];
        for (text, why) in bad {
            let e = Plan::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn plans_spread_replicas_as_the_placement_does() {
        let nodes: Vec<LiveNode> = [1000, 1001, 2000, 2001, 3000, 3001, 4000]
            .iter()
            .map(|n| (*n, None))
            .collect();
        let state = placement_state(&nodes, &[1, 2, 3], &[]).unwrap();
        let planned = propose(&state, &[("t".into(), 6, 3)]).unwrap();
        assert_eq!(planned.len(), 6);
        let mut leaders = BTreeMap::<i32, u32>::new();
        for p in &planned {
            let mut brokers: Vec<i32> = p.replicas.iter().map(|n| broker_of_node(*n)).collect();
            brokers.sort_unstable();
            assert_eq!(brokers, [1, 2, 3], "{p:?}");
            *leaders.entry(p.replicas[0]).or_default() += 1;
        }
        assert_eq!(
            leaders.into_iter().collect::<Vec<_>>(),
            [
                (1000, 1),
                (1001, 1),
                (2000, 1),
                (2001, 1),
                (3000, 1),
                (3001, 1)
            ],
            "leaders spread over brokers, then shards"
        );
        let e = propose(&state, &[("t".into(), 1, 7)]).unwrap_err();
        assert!(e.starts_with("topic 't': "), "{e}");
        let e = placement_state(&nodes, &[5], &[]).unwrap_err();
        assert_eq!(
            e,
            "broker 5 is not a live broker of the cluster (live brokers: 1, 2, 3, 4)"
        );
    }

    #[test]
    fn progress_is_complete_in_progress_or_an_error() {
        let p = planned("t", 0, &[1001, 2000]);
        assert_eq!(
            progress(&p, None, Some(&[1001, 2000])),
            ReassignmentStatus::Complete
        );
        let running = (vec![1001, 2000, 1000], vec![1001], vec![1000]);
        assert_eq!(
            progress(&p, Some(&running), Some(&[1000, 2000])),
            ReassignmentStatus::InProgress(running.clone())
        );
        assert!(matches!(
            progress(&p, None, Some(&[1000, 2000])),
            ReassignmentStatus::Failed(why) if why == "no reassignment is in progress, and its replicas are 1000,2000, not 1001,2000"
        ));
        let q = planned("t", 1, &[1000]);
        let rows = vec![
            (&p, ReassignmentStatus::InProgress(running)),
            (&q, progress(&q, None, None)),
        ];
        let (text, ok) = render_progress(&rows);
        assert!(!ok);
        assert_eq!(
            text,
            "TOPIC  PARTITION  STATUS       REPLICAS        ADDING  REMOVING\n\
             t      0          in progress  1001,2000,1000  1001    1000\n\
             t      1          error        1000            -       -\n\
             error: t-1: there is no partition t-1\n\
             0 complete, 1 in progress, 1 failed.\n"
        );
        let (_, ok) = render_progress(&[(&q, ReassignmentStatus::Complete)]);
        assert!(ok);
    }
}
