//! `sluice cluster`: the shape and health of a Sluice (KRaft-style) cluster, in the manner of
//! Kafka's `kafka-metadata-quorum.sh` and `kafka-cluster.sh`.
//!
//! * `status` — the brokers (DescribeCluster: their shard nodes, fenced or not, rack) and the
//!   controller quorum (DescribeQuorum: leader, epoch, every voter's and observer's log end
//!   offset and lag), as tables or, with `--json`, as one JSON object.
//!
//! Exit status: 0 on success, 1 when a request failed, 2 for usage errors.

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
}

/// Runs `sluice cluster …` and returns its exit status; output goes to stdout, errors to stderr.
pub fn run(args: &ClusterArgs) -> ExitCode {
    run_tool("sluice cluster", async move {
        let cluster = args.common.connect("sluice-cluster").await?;
        match &args.command {
            ClusterCommand::Status(a) => status::run(&cluster, a).await,
        }
    })
}
