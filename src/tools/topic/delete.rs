//! `sluice topic delete`: DeleteTopics.

use crate::tools::common::{code_text, request_timeout_ms, ToolError};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::DeleteTopicsRequest;
use sluice_net::client::{topic_name, Cluster};

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Options of `sluice topic delete`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    /// The topics to delete, with all their records.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Succeed for topics that do not exist.
    #[arg(long = "if-exists")]
    pub if_exists: bool,
}

/// DeleteTopics of `names` in the shape of `version` (v6 names topics in `topics`).
pub fn delete_topics_request(
    names: &[String],
    version: i16,
    timeout_ms: i32,
) -> DeleteTopicsRequest {
    let req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= 6 {
        req.with_topics(
            names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect(),
        )
    } else {
        req.with_topic_names(names.iter().map(|n| topic_name(n)).collect())
    }
}

/// Runs `sluice topic delete`; false if a topic could not be deleted.
pub async fn run(cluster: &Cluster, args: &DeleteArgs) -> Result<bool, ToolError> {
    let conn = cluster.control().await?;
    let version = conn.version::<DeleteTopicsRequest>()?;
    let timeout_ms = request_timeout_ms(&conn);
    let req = delete_topics_request(&args.names, version, timeout_ms);
    let resp = conn.send_at(&req, version).await?;
    let mut ok = true;
    for name in &args.names {
        let code = resp
            .responses
            .iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .map(|r| {
                (
                    r.error_code,
                    r.error_message.as_ref().map(|m| m.to_string()),
                )
            });
        match code {
            Some((0, _)) => outln!("Deleted topic '{name}'."),
            Some((UNKNOWN_TOPIC_OR_PARTITION, _)) if args.if_exists => {
                outln!("Topic '{name}' does not exist; nothing to delete.")
            }
            Some((UNKNOWN_TOPIC_OR_PARTITION, _)) => {
                eprintln!(
                    "Could not delete topic '{name}': {} — the topic does not exist (pass --if-exists to accept that)",
                    code_text(UNKNOWN_TOPIC_OR_PARTITION)
                );
                ok = false;
            }
            Some((code, message)) => {
                let message = message.map(|m| format!(": {m}")).unwrap_or_default();
                eprintln!(
                    "Could not delete topic '{name}': {}{message}",
                    code_text(code)
                );
                ok = false;
            }
            None => {
                eprintln!("Could not delete topic '{name}': the broker did not answer for it");
                ok = false;
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, Message};

    #[test]
    fn request_encodes_at_every_version() {
        let names = vec!["a".to_string(), "b".to_string()];
        for v in DeleteTopicsRequest::VERSIONS.min..=DeleteTopicsRequest::VERSIONS.max {
            let mut buf = BytesMut::new();
            delete_topics_request(&names, v, 1000)
                .encode(&mut buf, v)
                .unwrap_or_else(|e| panic!("v{v}: {e}"));
        }
    }
}
