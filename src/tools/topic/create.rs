//! `sluice topic create`: CreateTopics for one topic.

use crate::tools::common::{code_text, parse_key_value, ToolError};
use sluice_net::client::Cluster;

/// TOPIC_ALREADY_EXISTS.
const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Options of `sluice topic create`.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// The topic's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Number of partitions (default: the broker's num.partitions).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// Replicas of each partition (default: the broker's default.replication.factor).
    #[arg(long = "replication-factor", value_name = "R", value_parser = clap::value_parser!(i16).range(1..))]
    pub replication_factor: Option<i16>,
    /// A topic config override, e.g. --config retention.ms=86400000 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Succeed without changing anything when the topic already exists.
    #[arg(long = "if-not-exists")]
    pub if_not_exists: bool,
}

/// Runs `sluice topic create`.
pub async fn run(cluster: &Cluster, args: &CreateArgs) -> Result<bool, ToolError> {
    let created = cluster
        .create_topic_with_configs(
            &args.name,
            args.partitions.unwrap_or(-1),
            args.replication_factor.unwrap_or(-1),
            &args.configs,
        )
        .await?;
    let name = &args.name;
    if created {
        outln!("Created topic '{name}'.");
        Ok(true)
    } else if args.if_not_exists {
        outln!("Topic '{name}' already exists.");
        Ok(true)
    } else {
        Err(ToolError::Message(format!(
            "topic '{name}' already exists ({}); pass --if-not-exists to accept an existing topic",
            code_text(TOPIC_ALREADY_EXISTS)
        )))
    }
}
