//! `sluice cluster`: the shape and health of a Sluice (KRaft-style) cluster, in the manner of
//! Kafka's `kafka-metadata-quorum.sh` and `kafka-cluster.sh`.
//!
//! * `status` — the brokers (DescribeCluster: their shard nodes, fenced or not, rack) and the
//!   controller quorum (DescribeQuorum: leader, epoch, every voter's and observer's log end
//!   offset and lag), as tables or, with `--json`, as one JSON object.
//! * `elect-leaders` — preferred or unclean leader elections on request (ElectLeaders), for a
//!   topic's partitions or every partition, with a table of the outcomes.
//!
//! Exit status: 0 on success, 1 when a request (or an election) failed, 2 for usage errors.

/// `sluice cluster elect-leaders`.
pub mod elect_leaders;
/// `sluice cluster status`.
pub mod status;

use crate::tools::common::{run_tool, CommonArgs};
use std::process::ExitCode;

/// `sluice cluster …`: the options every subcommand shares, and the subcommand.
#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The `sluice cluster` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the brokers (node.id, shard nodes, fenced, rack) and the controller quorum (leader,
    /// epoch, log end offset and lag of every voter and observer).
    Status(status::StatusArgs),
    /// Elect leaders on request: `preferred` gives partitions back to their preferred replica,
    /// `unclean` elects out-of-sync replicas for partitions without a leader.
    ElectLeaders(elect_leaders::ElectLeadersArgs),
}

/// Runs `sluice cluster …` and returns its exit status; output goes to stdout, errors to stderr.
pub fn run(args: &ClusterArgs) -> ExitCode {
    run_tool("sluice cluster", async move {
        let cluster = args.common.connect("sluice-cluster").await?;
        match &args.command {
            ClusterCommand::Status(a) => status::run(&cluster, a).await,
            ClusterCommand::ElectLeaders(a) => elect_leaders::run(&cluster, a).await,
        }
    })
}
