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

use sluice_net::client::{error_name, ClientError};
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

/// Options shared by every `sluice group` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// The broker to bootstrap from (a comma-separated list is accepted).
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub bootstrap_server: String,
    /// How long connecting and each request may take, in milliseconds (connects are capped at
    /// 5000).
    #[arg(
        long = "timeout-ms",
        value_name = "MS",
        default_value_t = 10_000,
        global = true
    )]
    pub timeout_ms: u64,
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

/// Why a `sluice group` command failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// A broker could not be reached at all.
    #[error("cannot connect to {addr} ({reason}); check that the broker is running there and that --bootstrap-server is right")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// What the connect attempt said.
        reason: String,
    },
    /// A request failed.
    #[error("{0}")]
    Client(ClientError),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Message(String),
}

impl From<ClientError> for GroupError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Connect { addr, reason } => GroupError::Unreachable { addr, reason },
            e => GroupError::Client(e),
        }
    }
}

/// A Kafka error code as `NAME (code)`.
pub fn code_text(code: i16) -> String {
    format!("{} ({code})", error_name(code))
}

/// Runs `sluice group …` and returns its exit status; output goes to stdout, errors to stderr.
pub fn run(args: &GroupArgs) -> ExitCode {
    let common = args.common.clone();
    let result = super::runtime::block_on(async move {
        let admin = admin::Admin::connect(&common).await?;
        match &args.command {
            GroupCommand::List(a) => list::run(&admin, a).await,
            GroupCommand::Describe(a) => describe::run(&admin, a).await,
            GroupCommand::Lag(a) => lag::run(&admin, a).await,
            GroupCommand::ResetOffsets(a) => reset::run(&admin, a).await,
            GroupCommand::Delete(a) => delete::run(&admin, a).await,
        }
    });
    match result {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::FAILURE,
        Ok(Err(e)) => {
            eprintln!("sluice group: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sluice group: {e}");
            ExitCode::FAILURE
        }
    }
}
