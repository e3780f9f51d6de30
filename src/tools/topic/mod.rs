//! `sluice topic`: topics from the command line, in the manner of Kafka's `kafka-topics.sh`.
//!
//! * `create` — CreateTopics, with partitions, replication factor and config overrides.
//! * `list` — topic names from Metadata.
//! * `describe` — Metadata (topic id, leaders, replicas, ISR) and the overridden configs
//!   (DescribeConfigs).
//! * `alter` — IncrementalAlterConfigs on a topic.
//! * `delete` — DeleteTopics.
//! * `add-partitions` — CreatePartitions.
//! * `reassign` — partition reassignments: `plan`, `execute`, `verify`, `cancel`, `list`
//!   (AlterPartitionReassignments, ListPartitionReassignments).
//!
//! Exit status: 0 on success, 1 when a request or a topic failed, 2 for usage errors.

pub mod alter;
pub mod create;
pub mod delete;
pub mod describe;
pub mod list;
pub mod partitions;
pub mod reassign;

use crate::tools::common::{run_tool, CommonArgs};
use std::process::ExitCode;

/// `sluice topic …`: the options every subcommand shares, and the subcommand.
#[derive(clap::Args, Debug)]
pub struct TopicArgs {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: TopicCommand,
}

/// The `sluice topic` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic (partitions and replication factor default to the broker's
    /// num.partitions and default.replication.factor).
    Create(create::CreateArgs),
    /// List the names of the topics, one per line, sorted.
    List(list::ListArgs),
    /// Show topics: id, partition count, replication factor, overridden configs, and each
    /// partition's leader node, replicas and in-sync replicas.
    Describe(describe::DescribeArgs),
    /// Set or remove config overrides of a topic (IncrementalAlterConfigs).
    Alter(alter::AlterArgs),
    /// Delete topics and all their records.
    Delete(delete::DeleteArgs),
    /// Raise a topic's partition count (partitions can be added, never removed).
    #[command(name = "add-partitions")]
    AddPartitions(partitions::AddPartitionsArgs),
    /// Move partitions to other nodes or change their replication factor: plan, execute,
    /// verify, cancel or list reassignments (kafka-reassign-partitions.sh's plan format).
    Reassign(reassign::ReassignArgs),
}

/// Runs `sluice topic …` and returns its exit status; output goes to stdout, errors to stderr.
pub fn run(args: &TopicArgs) -> ExitCode {
    run_tool("sluice topic", async move {
        let cluster = args.common.connect("sluice-topic").await?;
        match &args.command {
            TopicCommand::Create(a) => create::run(&cluster, a).await,
            TopicCommand::List(a) => list::run(&cluster, a).await,
            TopicCommand::Describe(a) => describe::run(&cluster, a).await,
            TopicCommand::Alter(a) => alter::run(&cluster, a).await,
            TopicCommand::Delete(a) => delete::run(&cluster, a).await,
            TopicCommand::AddPartitions(a) => partitions::run(&cluster, a).await,
            TopicCommand::Reassign(a) => reassign::run(&cluster, a).await,
        }
    })
}
