//! `sluice group`: consumer groups from the command line, in the manner of Kafka's
//! `kafka-consumer-groups.sh`.
//!
//! * `list` — ListGroups on every node in Metadata (each shard coordinates a slice of the
//!   groups), merged and sorted by name.
//! * `describe` — FindCoordinator, then DescribeGroups (state, assignor, members and their
//!   assignments) and the group's offsets and lag.
//! * `lag` — committed offsets (OffsetFetch) against log end offsets (ListOffsets on each leader).
//! * `reset-offsets` — plans new committed offsets; with `--execute`, commits them (OffsetCommit)
//!   when the group has no active members.
//! * `delete` — DeleteGroups on each group's coordinator.
//!
//! Exit status: 0 on success, 1 when a request or a group failed, 2 for usage errors.

pub mod admin;
pub mod assignment;
pub mod datetime;
pub mod delete;
pub mod describe;
pub mod lag;
pub mod list;
pub mod requests;
pub mod reset;

use crate::tools::common::CommonArgs;
use std::process::ExitCode;

/// `sluice group …`: the options every subcommand shares, and the subcommand.
#[derive(clap::Args, Debug)]
pub struct GroupArgs {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: GroupCommand,
}

/// The `sluice group` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// List the groups of every node (shard) of the cluster with their state and protocol
    /// type, sorted by name.
    List(list::ListArgs),
    /// Show a group's state, assignor, members (with their assigned partitions), committed
    /// offsets and lag.
    Describe(describe::DescribeArgs),
    /// Show a group's committed offset, log end offset and lag per partition, and the total lag.
    Lag(lag::LagArgs),
    /// Plan (default, a dry run) or, with --execute, commit new offsets for a group that has no
    /// active members.
    #[command(name = "reset-offsets")]
    ResetOffsets(reset::ResetArgs),
    /// Delete groups that have no active members (their committed offsets go with them).
    Delete(delete::DeleteArgs),
}

/// Runs `sluice group …` and returns its exit status; output goes to stdout, errors to stderr.
pub fn run(args: &GroupArgs) -> ExitCode {
    crate::tools::common::run_tool("sluice group", async move {
        let admin = admin::Admin::connect(&args.common).await?;
        match &args.command {
            GroupCommand::List(a) => list::run(&admin, a).await,
            GroupCommand::Describe(a) => describe::run(&admin, a).await,
            GroupCommand::Lag(a) => lag::run(&admin, a).await,
            GroupCommand::ResetOffsets(a) => reset::run(&admin, a).await,
            GroupCommand::Delete(a) => delete::run(&admin, a).await,
        }
    })
}
