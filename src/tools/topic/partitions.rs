//! `sluice topic add-partitions`: CreatePartitions for one topic.

use crate::tools::common::{request_timeout_ms, ToolError};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::CreatePartitionsRequest;
use sluice_net::client::{topic_name, ClientError, Cluster};

/// Options of `sluice topic add-partitions`.
#[derive(clap::Args, Debug, Clone)]
pub struct AddPartitionsArgs {
    /// The topic.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The new total number of partitions (more than the topic has now).
    #[arg(long, value_name = "N", required = true, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
}

/// Runs `sluice topic add-partitions`.
pub async fn run(cluster: &Cluster, args: &AddPartitionsArgs) -> Result<bool, ToolError> {
    let conn = cluster.control().await?;
    let timeout_ms = request_timeout_ms(&conn);
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(&args.name))
            .with_count(args.partitions)
            .with_assignments(None)])
        .with_timeout_ms(timeout_ms);
    let resp = conn.send(&req).await?;
    let r = resp
        .results
        .iter()
        .find(|r| r.name.0.as_str() == args.name)
        .ok_or_else(|| {
            ToolError::Message("CreatePartitions did not answer for the topic".into())
        })?;
    if r.error_code != 0 {
        return Err(ClientError::Kafka {
            what: format!("adding partitions to topic '{}'", args.name),
            code: r.error_code,
            message: r.error_message.as_ref().map(|m| m.to_string()),
        }
        .into());
    }
    outln!(
        "Topic '{}' now has {} partitions.",
        args.name,
        args.partitions
    );
    Ok(true)
}
