//! Command-line arguments of `sluice bench`.

use clap::{Args, Subcommand, ValueEnum};
use sluice_storage::Compression;
use std::str::FromStr;

/// Drive a Kafka-compatible broker: produce, consume, end-to-end latency or a mixed workload.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The workload.
    #[command(subcommand)]
    pub workload: Workload,
}

/// The workloads `sluice bench` runs.
#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// Produce as fast as possible or at a fixed rate; latency is the produce acknowledgement
    /// time, measured from each message's intended send time.
    Produce {
        /// Options every workload shares.
        #[command(flatten)]
        common: CommonArgs,
        /// Producer options.
        #[command(flatten)]
        produce: ProduceArgs,
    },
    /// Fetch from a topic; latency is the fetch round trip.
    Consume {
        /// Options every workload shares.
        #[command(flatten)]
        common: CommonArgs,
        /// Consumer options.
        #[command(flatten)]
        consume: ConsumeArgs,
    },
    /// Produce at a fixed rate and consume in the same process; latency is receive time minus
    /// the message's intended send time (one clock).
    E2e {
        /// Options every workload shares.
        #[command(flatten)]
        common: CommonArgs,
        /// Producer options.
        #[command(flatten)]
        produce: ProduceArgs,
        /// Consumer options.
        #[command(flatten)]
        consume: ConsumeArgs,
    },
    /// Produce and consume at once (OpenMessaging-Benchmark style): producer throughput and
    /// acknowledgement latency, consumer throughput and end-to-end latency.
    Mixed {
        /// Options every workload shares.
        #[command(flatten)]
        common: CommonArgs,
        /// Producer options.
        #[command(flatten)]
        produce: ProduceArgs,
        /// Consumer options.
        #[command(flatten)]
        consume: ConsumeArgs,
    },
}

/// Options every workload shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Bootstrap address(es), `host:port[,host:port…]`.
    #[arg(short = 'b', long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// The topic.
    #[arg(short = 't', long, default_value = "sluice-bench")]
    pub topic: String,
    /// Executors (one per core, each with its own connections and partitions).
    #[arg(long, default_value_t = 1)]
    pub cores: usize,
    /// Pin executor k to CPU `pin + k` (default: not pinned).
    #[arg(long, value_name = "CPU")]
    pub pin: Option<usize>,
    /// Connections per core to each leader node, for each side (producer, consumer).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// How long to run, in seconds (default 10 unless --messages is given).
    #[arg(short = 'd', long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many messages (in total, across cores).
    #[arg(short = 'n', long)]
    pub messages: Option<u64>,
    /// Timeout of every connect, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub connect_timeout_ms: u64,
    /// Timeout of every request, in milliseconds.
    #[arg(long, default_value_t = 30000)]
    pub request_timeout_ms: u64,
    /// Print the summary as JSON on stdout (the live lines stay on stderr).
    #[arg(long)]
    pub json: bool,
    /// No live line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Producer options.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// Message (value) size in bytes: `N` or `MIN..MAX` (uniform).
    #[arg(short = 's', long, default_value = "1024")]
    pub size: SizeRange,
    /// Keys: `none`, `random` (16 random bytes each) or a number N of distinct keys.
    #[arg(short = 'k', long, default_value = "none")]
    pub keys: KeySpec,
    /// Partitions of the topic when it has to be created.
    #[arg(short = 'p', long, default_value_t = 8)]
    pub partitions: i32,
    /// Replication factor of the topic when it has to be created.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i16,
    /// acks: 0, 1 or all (-1).
    #[arg(short = 'a', long, default_value = "all")]
    pub acks: Acks,
    /// Compression codec.
    #[arg(short = 'c', long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// Target size of a record batch in bytes (Kafka's batch.size).
    #[arg(long, default_value_t = 16384)]
    pub batch_bytes: usize,
    /// How long a batch may wait to fill, in milliseconds (Kafka's linger.ms).
    #[arg(long, default_value_t = 5.0)]
    pub linger_ms: f64,
    /// Idempotent producer (InitProducerId, sequence numbers per partition).
    #[arg(long)]
    pub idempotence: bool,
    /// Target rate in messages per second across all cores (0 = unlimited; e2e default 1000).
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 5)]
    pub max_in_flight: usize,
}

/// Consumer options.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// Where to start: `earliest`, `latest` or an offset (default: earliest for consume,
    /// latest for e2e and mixed).
    #[arg(long)]
    pub from: Option<StartFrom>,
    /// Fetch max_bytes.
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: i32,
    /// Fetch partition_max_bytes.
    #[arg(long, default_value_t = 1_048_576)]
    pub partition_max_bytes: i32,
    /// Fetch min_bytes.
    #[arg(long, default_value_t = 1)]
    pub fetch_min_bytes: i32,
    /// Fetch max_wait_ms.
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,
    /// Consume only: stop after this many seconds without new messages.
    #[arg(long, default_value_t = 10.0)]
    pub idle_timeout: f64,
}

/// A message size or a range of sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange {
    /// Smallest size.
    pub min: usize,
    /// Largest size (inclusive).
    pub max: usize,
}

impl FromStr for SizeRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{x}` is not a size in bytes"))
        };
        let (min, max) = match s.split_once("..") {
            Some((a, b)) => (parse(a)?, parse(b.trim_start_matches('='))?),
            None => (parse(s)?, parse(s)?),
        };
        if min > max {
            return Err(format!("size range {min}..{max} is empty"));
        }
        Ok(SizeRange { min, max })
    }
}

/// How message keys are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No key (null).
    None,
    /// 16 random bytes per message.
    Random,
    /// One of N distinct keys, chosen uniformly.
    Distinct(u64),
}

impl FromStr for KeySpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(KeySpec::None),
            "random" => Ok(KeySpec::Random),
            n => match n.parse::<u64>() {
                Ok(n) if n > 0 => Ok(KeySpec::Distinct(n)),
                _ => Err(format!(
                    "keys must be none, random or a positive number, not `{s}`"
                )),
            },
        }
    }
}

/// Produce acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acks(pub i16);

impl FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "0" => Ok(Acks(0)),
            "1" => Ok(Acks(1)),
            "all" | "-1" => Ok(Acks(-1)),
            _ => Err(format!("acks must be 0, 1 or all, not `{s}`")),
        }
    }
}

/// Record-batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy (xerial framing, as Kafka writes it).
    Snappy,
    /// LZ4 frame.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Codec {
    /// Storage's name of the codec, as the batch encoder takes it.
    pub fn compression(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

/// Where a consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// A given offset in every partition.
    Offset(i64),
}

impl FromStr for StartFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "earliest" | "beginning" => Ok(StartFrom::Earliest),
            "latest" | "end" => Ok(StartFrom::Latest),
            n => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(StartFrom::Offset)
                .ok_or_else(|| format!("--from must be earliest, latest or an offset, not `{s}`")),
        }
    }
}

impl Workload {
    /// The options every workload shares.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Workload::Produce { common, .. }
            | Workload::Consume { common, .. }
            | Workload::E2e { common, .. }
            | Workload::Mixed { common, .. } => common,
        }
    }

    /// The workload's name.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Produce { .. } => "produce",
            Workload::Consume { .. } => "consume",
            Workload::E2e { .. } => "e2e",
            Workload::Mixed { .. } => "mixed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values() {
        assert_eq!(
            "100".parse::<SizeRange>().unwrap(),
            SizeRange { min: 100, max: 100 }
        );
        assert_eq!(
            "10..200".parse::<SizeRange>().unwrap(),
            SizeRange { min: 10, max: 200 }
        );
        assert!("5..1".parse::<SizeRange>().is_err());
        assert_eq!("17".parse::<KeySpec>().unwrap(), KeySpec::Distinct(17));
        assert!("0".parse::<KeySpec>().is_err());
        assert_eq!("all".parse::<Acks>().unwrap(), Acks(-1));
        assert_eq!("42".parse::<StartFrom>().unwrap(), StartFrom::Offset(42));
    }
}
