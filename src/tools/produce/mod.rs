//! `sluice produce`: stdin lines to records, in the manner of Kafka's
//! `kafka-console-producer.sh`.
//!
//! * [`input`] — the stdin reader thread and key splitting.
//! * [`partitioner`] — partition choice: given, murmur2 of the key, or round-robin.
//! * [`batch`] — record batches and Produce requests.
//! * [`send`] — requests to leaders, retries, the outcome.
//!
//! Exit status: 0 when every record was written, 1 when some failed (the summary on stderr says
//! why) or the topic cannot be used, 2 for usage errors.

pub mod batch;
pub mod input;
pub mod partitioner;
pub mod send;

use crate::tools::common::{
    check_partition, parse_key_value, run_tool, topic_partitions, CommonArgs, MissingTopic,
    ToolError,
};
use partitioner::Partitioner;
use send::{Outcome, Sender};
use sluice_bench::args::{Acks, Codec};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

/// Key plus value bytes after which a request is sent even if --batch-size is not reached.
const MAX_REQUEST_BYTES: usize = 512 * 1024;

/// Options of `sluice produce`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    mut_arg("timeout_ms", |a| a.help(
        "How long connecting and each request may take, and how long a batch that failed with a \
         retriable error (leader moved, connection lost) is retried, in milliseconds")),
    after_help = "Prints a summary on stderr: records written per partition and failures by \
error. Exit status: 0 when every record was written, 1 when some failed or the topic cannot be \
used, 2 for usage errors."
)]
pub struct ProduceArgs {
    /// Broker address and timeouts.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The topic to write to. A missing topic is created by the broker when its
    /// auto.create.topics.enable allows (with num.partitions partitions), as for Kafka's
    /// producers; otherwise create it first with `sluice topic create`.
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    /// Send every record to this partition (default: by the key's murmur2 hash as Kafka's
    /// producers do, round-robin for lines without a key).
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,
    /// Split each line at the first SEP into key and value (a line without SEP is all value,
    /// with a null key). Without this option every record has a null key.
    #[arg(long = "key-separator", value_name = "SEP", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub key_separator: Option<String>,
    /// A header added to every record, e.g. --header source=cli (repeatable, distinct keys).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Acknowledgements to wait for: 0 (none), 1 (the leader) or all.
    #[arg(long, value_name = "0|1|all", default_value = "all")]
    pub acks: Acks,
    /// Compression codec of the record batches.
    #[arg(long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// Most records per request (and per partition batch): lines are sent together up to this
    /// many (or 512 KiB of keys and values), so piped input goes out in large batches.
    #[arg(long = "batch-size", value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// How long a line may wait for more to fill its request, in milliseconds (typed lines go
    /// out after this; a full request or the end of the input goes at once).
    #[arg(long = "linger-ms", value_name = "MS", default_value_t = 10)]
    pub linger_ms: u64,
}

async fn produce(args: &ProduceArgs) -> Result<bool, ToolError> {
    let cluster = args.common.connect("sluice-produce").await?;
    let partitions = topic_partitions(&cluster, &args.topic, MissingTopic::AutoCreate).await?;
    if let Some(p) = args.partition {
        check_partition(&args.topic, &partitions, p)?;
    }
    let mut partitioner = Partitioner::new(partitions.len() as i32, args.partition);
    let codec = args.compression.compression();
    let sender = Sender {
        cluster: &cluster,
        topic: args.topic.clone(),
        acks: args.acks.0,
        timeout: args.common.timeout(),
    };
    let mut lines = input::read_stdin(args.key_separator.clone().map(String::into_bytes));
    let mut outcome = Outcome::default();
    let limits = input::ChunkLimits {
        lines: args.batch_size as usize,
        bytes: MAX_REQUEST_BYTES,
        linger: Duration::from_millis(args.linger_ms),
    };
    loop {
        let chunk = input::next_chunk(&mut lines, limits).await;
        if chunk.is_empty() {
            break;
        }
        let mut by_partition: BTreeMap<i32, Vec<input::Line>> = BTreeMap::new();
        for line in chunk {
            let p = partitioner.partition(line.key.as_deref());
            by_partition.entry(p).or_default().push(line);
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut batches = Vec::new();
        for (p, records) in &by_partition {
            let b = batch::encode(records, &args.headers, now_ms, codec)?;
            batches.push((*p, b, records.len() as u64));
        }
        sender.send(batches, &mut outcome).await?;
    }
    eprintln!("{}", outcome.summary(&args.topic, args.acks.0));
    Ok(outcome.failed_count() == 0)
}

/// Runs `sluice produce` and returns its exit status.
pub fn run(args: &ProduceArgs) -> ExitCode {
    run_tool("sluice produce", produce(args))
}
