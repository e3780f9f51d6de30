//! What every networked tool shares: the bootstrap and timeout options, connecting to the
//! cluster, the error type, and the mapping of outcomes to exit statuses (0 success, 1 failure;
//! clap itself exits with 2 for usage errors).

use sluice_net::client::{error_name, ClientError, ClientOptions, Cluster, Connection};
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

/// Options shared by every tool that talks to a broker.
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

impl CommonArgs {
    /// `--timeout-ms` as a duration (at least 1 ms).
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// Client options for a tool whose connections identify as `client_id`.
    pub fn client_options(&self, client_id: &str) -> ClientOptions {
        let timeout = self.timeout();
        ClientOptions {
            client_id: client_id.into(),
            connect_timeout: timeout.min(Duration::from_secs(5)),
            request_timeout: timeout,
            ..ClientOptions::default()
        }
    }

    /// Connects to the bootstrap server.
    pub async fn connect(&self, client_id: &str) -> Result<Cluster, ToolError> {
        let options = self.client_options(client_id);
        let bootstrap = &self.bootstrap_server;
        match Cluster::connect(std::slice::from_ref(bootstrap), &options).await {
            Ok(c) => Ok(c),
            Err(e @ ClientError::Connect { .. }) => Err(e.into()),
            Err(e) => Err(ToolError::Message(format!(
                "{e} (bootstrapping from {bootstrap}: is a Kafka-compatible broker listening there?)"
            ))),
        }
    }
}

/// Why a tool failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
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

impl From<ClientError> for ToolError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Connect { addr, reason } => ToolError::Unreachable { addr, reason },
            e => ToolError::Client(e),
        }
    }
}

/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Whether looking a topic up may create it (broker's `auto.create.topics.enable` permitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingTopic {
    /// A missing topic is an error (consumers, admin tools).
    IsAnError,
    /// Ask the broker to create it, as Kafka's producers do.
    AutoCreate,
}

/// The partitions of `topic`, sorted (fresh metadata); a topic that does not exist (and was
/// not auto-created) is an error that says how to create it.
pub async fn topic_partitions(
    cluster: &Cluster,
    topic: &str,
    missing: MissingTopic,
) -> Result<Vec<i32>, ToolError> {
    let topics = [topic.to_string()];
    let md = match missing {
        MissingTopic::IsAnError => cluster.refresh(&topics).await?,
        MissingTopic::AutoCreate => cluster.refresh_creating(&topics).await?,
    };
    match md.topics.get(topic) {
        Some(t) if t.error_code == 0 => Ok(t.partitions.keys().copied().collect()),
        Some(t) if t.error_code != UNKNOWN_TOPIC_OR_PARTITION => Err(ToolError::Message(format!(
            "topic '{topic}' cannot be used: {}",
            code_text(t.error_code)
        ))),
        _ => Err(ToolError::Message(format!(
            "topic '{topic}' does not exist; `sluice topic create {topic}` creates it, `sluice \
             topic list` lists the topics"
        ))),
    }
}

/// Checks that `partition` is one of `partitions` of `topic`.
pub fn check_partition(topic: &str, partitions: &[i32], partition: i32) -> Result<(), ToolError> {
    if partitions.contains(&partition) {
        return Ok(());
    }
    Err(ToolError::Message(format!(
        "topic '{topic}' has {} partitions, so there is no partition {partition}",
        partitions.len()
    )))
}

/// The request timeout of `conn` in milliseconds, for requests that carry a `timeout_ms`.
pub fn request_timeout_ms(conn: &Connection) -> i32 {
    conn.options()
        .request_timeout
        .as_millis()
        .min(i32::MAX as u128) as i32
}

/// A Kafka error code as `NAME (code)`.
pub fn code_text(code: i16) -> String {
    format!("{} ({code})", error_name(code))
}

/// Runs a tool's future on a fresh executor and turns its outcome into an exit status:
/// `Ok(true)` is success, `Ok(false)` a failure already reported, `Err` a failure printed here
/// as `<tool>: <error>` on stderr.
pub fn run_tool<F>(tool: &str, fut: F) -> ExitCode
where
    F: Future<Output = Result<bool, ToolError>>,
{
    match super::runtime::block_on(fut) {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::FAILURE,
        Ok(Err(e)) => {
            eprintln!("{tool}: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `n` and `noun`, plural unless `n` is 1: `1 record`, `3 records`.
pub fn count_of(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Parses `KEY=VALUE` (the value may be empty or contain `=`; the key may not be empty).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("retention.ms=1000").unwrap(),
            ("retention.ms".to_string(), "1000".to_string())
        );
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert_eq!(
            parse_key_value("empty=").unwrap(),
            ("empty".to_string(), String::new())
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(count_of(0, "record"), "0 records");
        assert_eq!(count_of(1, "record"), "1 record");
        assert_eq!(count_of(2, "record"), "2 records");
    }

    #[test]
    fn connect_errors_become_unreachable() {
        let e: ToolError = ClientError::Connect {
            addr: "h:1".into(),
            reason: "refused".into(),
        }
        .into();
        assert!(e.to_string().contains("check that the broker is running"));
    }
}
