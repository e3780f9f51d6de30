//! `sluice cluster elect-leaders`: ElectLeaders (API 43), as Kafka's `kafka-leader-election.sh`.
//!
//! A preferred election moves each partition's leadership back to its preferred replica (the
//! first of its replicas) when that replica is in sync and live; an unclean election gives a
//! partition without a leader one from outside its ISR (records the old leader had may be
//! lost). The partitions are those of `--topic` (all of them, or the `--partition`s given), or
//! every partition of the cluster with `--all-topic-partitions`; as with Kafka's tool, one of
//! the two must be chosen. The request goes to the bootstrap broker, which forwards it to the
//! active controller, and carries `--timeout-ms`.
//!
//! The answer is a table of the partitions and their outcome: `elected`, `not needed` (Kafka's
//! ELECTION_NOT_NEEDED: the preferred replica already leads, or the partition already has a
//! leader), or the error. With `--all-topic-partitions` a KRaft controller leaves out the
//! partitions that needed no election. The exit status is 1 when any partition failed.

use crate::tools::common::{check_partition, code_text, topic_partitions, MissingTopic, ToolError};
use crate::tools::table::Table;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use sluice_net::client::{topic_name, ClientError, Cluster};

/// ELECTION_NOT_NEEDED: the partition already has the leader the election would give it.
const ELECTION_NOT_NEEDED: i16 = 84;

/// The kind of election (Kafka's `ElectionType`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership to the preferred replica where it is in sync.
    Preferred,
    /// Elect a leader from outside the ISR for partitions without one (may lose records).
    Unclean,
}

impl ElectionType {
    /// The wire value (`election_type`: 0 preferred, 1 unclean).
    pub fn code(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }

    /// The name used in the summary line.
    fn title(self) -> &'static str {
        match self {
            ElectionType::Preferred => "Preferred",
            ElectionType::Unclean => "Unclean",
        }
    }
}

/// Options of `sluice cluster elect-leaders`.
#[derive(clap::Args, Debug, Clone)]
#[command(group(
    clap::ArgGroup::new("partitions")
        .required(true)
        .args(["topic", "all_topic_partitions"])
))]
pub struct ElectLeadersArgs {
    /// `preferred`: give each partition back to its preferred (first) replica when that
    /// replica is in sync; `unclean`: elect a replica outside the ISR for partitions without a
    /// leader (records may be lost).
    #[arg(
        long = "election-type",
        value_name = "TYPE",
        value_enum,
        ignore_case = true
    )]
    pub election_type: ElectionType,
    /// The topic whose partitions to elect (every partition unless --partition is given).
    #[arg(long, value_name = "NAME")]
    pub topic: Option<String>,
    /// A partition of --topic (repeat it, or separate with commas, for several).
    #[arg(long, value_name = "N", requires = "topic", value_delimiter = ',')]
    pub partition: Vec<i32>,
    /// Elect over every partition of every topic.
    #[arg(long = "all-topic-partitions")]
    pub all_topic_partitions: bool,
}

/// What the election did for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The partition got a new leader.
    Elected,
    /// The partition already had the leader the election would give it.
    NotNeeded,
    /// The election failed for the partition.
    Failed {
        /// The Kafka error code.
        code: i16,
        /// The broker's message, if any.
        message: Option<String>,
    },
}

/// One partition's line of the result table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOutcome {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// What happened.
    pub outcome: Outcome,
}

/// The per-partition outcomes of an ElectLeaders answer, by topic then partition.
pub fn outcomes_from(resp: &ElectLeadersResponse) -> Vec<PartitionOutcome> {
    let mut out: Vec<PartitionOutcome> = resp
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(|p| PartitionOutcome {
                topic: t.topic.0.to_string(),
                partition: p.partition_id,
                outcome: match p.error_code {
                    0 => Outcome::Elected,
                    ELECTION_NOT_NEEDED => Outcome::NotNeeded,
                    code => Outcome::Failed {
                        code,
                        message: p.error_message.as_ref().map(|m| m.to_string()),
                    },
                },
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

/// The result table and a summary line.
pub fn render(election: ElectionType, outcomes: &[PartitionOutcome]) -> String {
    let title = election.title();
    if outcomes.is_empty() {
        return format!("{title} election: no partition needed a new leader.\n");
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT"]);
    let (mut elected, mut not_needed, mut failed) = (0, 0, 0);
    for o in outcomes {
        let result = match &o.outcome {
            Outcome::Elected => {
                elected += 1;
                "elected".to_string()
            }
            Outcome::NotNeeded => {
                not_needed += 1;
                "not needed".to_string()
            }
            Outcome::Failed { code, message } => {
                failed += 1;
                match message {
                    Some(m) if !m.is_empty() => format!("{}: {m}", code_text(*code)),
                    _ => code_text(*code),
                }
            }
        };
        table.row(vec![o.topic.clone(), o.partition.to_string(), result]);
    }
    format!(
        "{}{title} election: {elected} elected, {not_needed} not needed, {failed} failed.\n",
        table.render()
    )
}

/// The partitions to name in the request: `None` for every partition of the cluster.
async fn requested_partitions(
    cluster: &Cluster,
    args: &ElectLeadersArgs,
) -> Result<Option<Vec<TopicPartitions>>, ToolError> {
    let Some(topic) = &args.topic else {
        return Ok(None);
    };
    let existing = topic_partitions(cluster, topic, MissingTopic::IsAnError).await?;
    let partitions = if args.partition.is_empty() {
        existing
    } else {
        for p in &args.partition {
            check_partition(topic, &existing, *p)?;
        }
        let mut chosen = args.partition.clone();
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    };
    Ok(Some(vec![TopicPartitions::default()
        .with_topic(topic_name(topic))
        .with_partitions(partitions)]))
}

/// Runs `sluice cluster elect-leaders`; false when an election failed for some partition.
pub async fn run(cluster: &Cluster, args: &ElectLeadersArgs) -> Result<bool, ToolError> {
    let partitions = requested_partitions(cluster, args).await?;
    let conn = cluster.control().await?;
    let version = match conn.version::<ElectLeadersRequest>() {
        Ok(v) => v,
        Err(ClientError::Unsupported { addr, .. }) => {
            return Err(ToolError::Message(format!(
                "the broker at {addr} does not answer ElectLeaders (API 43), so it cannot run \
                 leader elections on request"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if version == 0 && args.election_type != ElectionType::Preferred {
        return Err(ToolError::Message(format!(
            "the broker at {} speaks only ElectLeaders v0, which has preferred elections only",
            conn.addr()
        )));
    }
    let req = ElectLeadersRequest::default()
        .with_election_type(args.election_type.code())
        .with_topic_partitions(partitions)
        .with_timeout_ms(crate::tools::common::request_timeout_ms(&conn));
    let resp = conn.send_at(&req, version).await?;
    if resp.error_code != 0 {
        return Err(ClientError::Kafka {
            what: "electing leaders".into(),
            code: resp.error_code,
            message: None,
        }
        .into());
    }
    let outcomes = outcomes_from(&resp);
    out!("{}", render(args.election_type, &outcomes));
    Ok(outcomes
        .iter()
        .all(|o| !matches!(o.outcome, Outcome::Failed { .. })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::elect_leaders_response::{
        PartitionResult, ReplicaElectionResult,
    };
    use kafka_protocol::protocol::StrBytes;

    fn result(partition: i32, code: i16, message: Option<&str>) -> PartitionResult {
        PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(code)
            .with_error_message(message.map(|m| StrBytes::from_string(m.to_string())))
    }

    fn response() -> ElectLeadersResponse {
        ElectLeadersResponse::default().with_replica_election_results(vec![
            ReplicaElectionResult::default()
                .with_topic(topic_name("orders"))
                .with_partition_result(vec![
                    result(2, 80, Some("Failed to elect leader for partition orders-2")),
                    result(0, 0, None),
                    result(1, ELECTION_NOT_NEEDED, None),
                ]),
            ReplicaElectionResult::default()
                .with_topic(topic_name("audit"))
                .with_partition_result(vec![result(0, 3, None)]),
        ])
    }

    #[test]
    fn outcomes_are_sorted_and_classified() {
        let outcomes = outcomes_from(&response());
        let listed: Vec<(&str, i32, &Outcome)> = outcomes
            .iter()
            .map(|o| (o.topic.as_str(), o.partition, &o.outcome))
            .collect();
        assert_eq!(
            listed,
            vec![
                (
                    "audit",
                    0,
                    &Outcome::Failed {
                        code: 3,
                        message: None
                    }
                ),
                ("orders", 0, &Outcome::Elected),
                ("orders", 1, &Outcome::NotNeeded),
                (
                    "orders",
                    2,
                    &Outcome::Failed {
                        code: 80,
                        message: Some("Failed to elect leader for partition orders-2".into())
                    }
                ),
            ]
        );
    }

    #[test]
    fn the_table_shows_each_partition_and_a_summary() {
        assert_eq!(
            render(ElectionType::Preferred, &outcomes_from(&response())),
            "TOPIC   PARTITION  RESULT\n\
             audit   0          UNKNOWN_TOPIC_OR_PARTITION (3)\n\
             orders  0          elected\n\
             orders  1          not needed\n\
             orders  2          PREFERRED_LEADER_NOT_AVAILABLE (80): Failed to elect leader for partition orders-2\n\
             Preferred election: 1 elected, 1 not needed, 2 failed.\n"
        );
        assert_eq!(
            render(ElectionType::Unclean, &[]),
            "Unclean election: no partition needed a new leader.\n"
        );
    }

    #[test]
    fn election_types_have_kafkas_wire_values() {
        assert_eq!(ElectionType::Preferred.code(), 0);
        assert_eq!(ElectionType::Unclean.code(), 1);
    }
}
