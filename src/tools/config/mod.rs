//! `sluice config`: topic and broker configs, in the manner of Kafka's `kafka-configs.sh`.
//!
//! * `describe` — DescribeConfigs: name, value and source of the overridden configs (all of them
//!   with `--all`).
//! * `set` / `delete` — IncrementalAlterConfigs SET / DELETE of single keys.
//!
//! Exit status: 0 on success, 1 when a request failed, 2 for usage errors.

use crate::tools::common::{parse_key_value, run_tool, CommonArgs, ToolError};
use crate::tools::configs::{self, source_name, Change, ConfigValue, Resource};
use crate::tools::table::Table;
use sluice_net::client::Cluster;
use std::process::ExitCode;

/// `sluice config …`: the options every subcommand shares, and the subcommand.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// Whose configs: exactly one of a topic, a broker, or the cluster-wide broker defaults.
#[derive(clap::Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["topic", "broker", "broker_defaults"])))]
pub struct Target {
    /// A topic's configs.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// A broker's configs, by broker id (node.id; a shard's node id names its broker too).
    #[arg(long, value_name = "ID")]
    pub broker: Option<i32>,
    /// The cluster-wide dynamic defaults of every broker.
    #[arg(long = "broker-defaults")]
    pub broker_defaults: bool,
}

impl Target {
    /// The resource named.
    pub fn resource(&self) -> Resource {
        match (&self.topic, self.broker) {
            (Some(t), _) => Resource::Topic(t.clone()),
            (None, Some(id)) => Resource::Broker(id),
            (None, None) => Resource::BrokerDefaults,
        }
    }
}

/// The `sluice config` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Show configs with their value and source (DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG,
    /// DEFAULT_CONFIG, …): those not at their default, or every one with --all.
    Describe(DescribeArgs),
    /// Set configs (IncrementalAlterConfigs SET); they take effect at once.
    Set(SetArgs),
    /// Remove config overrides, so they fall back to their defaults (IncrementalAlterConfigs
    /// DELETE).
    Delete(DeleteArgs),
}

/// Options of `sluice config describe`.
#[derive(clap::Args, Debug, Clone)]
pub struct DescribeArgs {
    /// Whose configs.
    #[command(flatten)]
    pub target: Target,
    /// List every config, defaults included.
    #[arg(long)]
    pub all: bool,
}

/// Options of `sluice config set`.
#[derive(clap::Args, Debug, Clone)]
pub struct SetArgs {
    /// Whose configs.
    #[command(flatten)]
    pub target: Target,
    /// The configs to set, e.g. retention.ms=86400000.
    #[arg(required = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
}

/// Options of `sluice config delete`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// Whose configs.
    #[command(flatten)]
    pub target: Target,
    /// The keys whose overrides to remove.
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,
}

/// The NAME / VALUE / SOURCE table.
pub fn render(configs: &[&ConfigValue]) -> String {
    let mut t = Table::new(&["NAME", "VALUE", "SOURCE"]);
    for c in configs {
        t.row(vec![
            c.name.clone(),
            c.shown_value(),
            source_name(c.source).to_string(),
        ]);
    }
    t.render()
}

async fn describe(cluster: &Cluster, args: &DescribeArgs) -> Result<bool, ToolError> {
    let resource = args.target.resource();
    let configs = configs::describe(cluster, std::slice::from_ref(&resource))
        .await?
        .pop()
        .ok_or_else(|| {
            ToolError::Message(format!("DescribeConfigs did not answer for {resource}"))
        })??;
    let shown: Vec<&ConfigValue> = configs
        .iter()
        .filter(|c| args.all || c.is_overridden())
        .collect();
    if shown.is_empty() {
        if args.all {
            outln!("No configs for {resource}.");
        } else {
            outln!("No overridden configs for {resource} (--all lists every config).");
        }
    } else {
        out!("{}", render(&shown));
    }
    Ok(true)
}

/// Runs `sluice config …` and returns its exit status.
pub fn run(args: &ConfigArgs) -> ExitCode {
    run_tool("sluice config", async move {
        let cluster = args.common.connect("sluice-config").await?;
        match &args.command {
            ConfigCommand::Describe(a) => describe(&cluster, a).await,
            ConfigCommand::Set(a) => {
                let changes: Vec<Change> = a
                    .configs
                    .iter()
                    .map(|(k, v)| Change::Set(k.clone(), v.clone()))
                    .collect();
                configs::apply(&cluster, &a.target.resource(), &changes).await
            }
            ConfigCommand::Delete(a) => {
                let changes: Vec<Change> =
                    a.keys.iter().map(|k| Change::Delete(k.clone())).collect();
                configs::apply(&cluster, &a.target.resource(), &changes).await
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_name_value_source() {
        let c = ConfigValue {
            name: "retention.ms".into(),
            value: Some("1000".into()),
            source: 1,
            sensitive: false,
        };
        assert_eq!(
            render(&[&c]),
            "NAME          VALUE  SOURCE\nretention.ms  1000   DYNAMIC_TOPIC_CONFIG\n"
        );
    }
}
