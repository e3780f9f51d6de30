//! `sluice topic list`: the topic names in Metadata.

use crate::tools::common::ToolError;
use sluice_net::client::Cluster;

/// Options of `sluice topic list`.
#[derive(clap::Args, Debug, Clone)]
pub struct ListArgs {
    /// Also list internal topics (`__consumer_offsets`).
    #[arg(long = "include-internal")]
    pub include_internal: bool,
}

/// Runs `sluice topic list`: one name per line, sorted (nothing when there are no topics).
pub async fn run(cluster: &Cluster, args: &ListArgs) -> Result<bool, ToolError> {
    let md = cluster.refresh_all().await?;
    for (name, t) in &md.topics {
        if t.error_code == 0 && (args.include_internal || !t.is_internal) {
            outln!("{name}");
        }
    }
    Ok(true)
}
