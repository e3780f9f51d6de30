//! `sluice topic alter`: IncrementalAlterConfigs on one topic.

use crate::tools::common::{parse_key_value, ToolError};
use crate::tools::configs::{self, Change, Resource};
use sluice_net::client::Cluster;

/// Options of `sluice topic alter`.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("changes").required(true).multiple(true).args(["configs", "delete_configs"])))]
pub struct AlterArgs {
    /// The topic.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Set a config override, e.g. --config retention.ms=3600000 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Remove a config override, so the topic falls back to the broker's default (repeatable).
    #[arg(long = "delete-config", value_name = "KEY")]
    pub delete_configs: Vec<String>,
}

/// Runs `sluice topic alter`.
pub async fn run(cluster: &Cluster, args: &AlterArgs) -> Result<bool, ToolError> {
    let changes: Vec<Change> = args
        .configs
        .iter()
        .map(|(k, v)| Change::Set(k.clone(), v.clone()))
        .chain(
            args.delete_configs
                .iter()
                .map(|k| Change::Delete(k.clone())),
        )
        .collect();
    configs::apply(cluster, &Resource::Topic(args.name.clone()), &changes).await
}
