//! The `sluice` command line: a thin layer over the engine.

use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use sluice_engine::broker::shard_count;
use sluice_engine::{run_broker, BrokerConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

mod tools;

/// Sluice: a Kafka-compatible message broker, thread-per-core on io_uring.
#[derive(Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no options: 127.0.0.1:9092 (shard k on port 9092+k), data in
    /// ./sluice-data, one shard per online CPU.
    Start(StartArgs),
    /// Check this host against the OS guidance for a broker (filesystem, sysctls, ulimits, THP,
    /// CPU governor, clock source); --apply changes what can be changed at runtime.
    Tune(sluice_tuning::TuneArgs),
    /// Load-test any Kafka-compatible broker: produce, consume, end-to-end latency, mixed.
    Bench(sluice_bench::BenchArgs),
    /// Consumer groups on any Kafka-compatible broker: list, describe, lag, reset-offsets,
    /// delete (like kafka-consumer-groups.sh).
    Group(tools::group::GroupArgs),
    /// Topics on any Kafka-compatible broker: create, list, describe, alter, delete,
    /// add-partitions (like kafka-topics.sh).
    Topic(tools::topic::TopicArgs),
    /// Topic and broker configs: describe, set, delete (like kafka-configs.sh).
    Config(tools::config::ConfigArgs),
    /// Send stdin to a topic, one record per line (like kafka-console-producer.sh).
    Produce(tools::produce::ProduceArgs),
    /// Print a topic's records to stdout, one line each (like kafka-console-consumer.sh).
    Consume(tools::consume::ConsumeArgs),
    /// The cluster: brokers (shard nodes, fenced, rack) and the controller quorum (leader, epoch,
    /// log end offsets and lag): `sluice cluster status [--json]`.
    Cluster(tools::cluster::ClusterArgs),
    /// Inspect log files offline: `sluice log dump` decodes .log, .index and .timeindex files
    /// (like kafka-dump-log.sh).
    Log(tools::log_dump::LogArgs),
}

#[derive(clap::Args)]
struct StartArgs {
    /// A Kafka-style properties file (server.properties): listeners, log.dirs, num.partitions, …
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one config key, overriding the file; repeatable (e.g. --set num.partitions=4).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Number of shards (cores) to run; default: every online CPU (same as sluice.cores).
    #[arg(long, value_name = "N")]
    cores: Option<usize>,
    /// Validate the configuration (keys, values, roles, quorum voters, listener ports for the
    /// shard count) and exit: 0 and a summary when it is valid, 2 and every problem when not.
    /// Opens no port and touches no data directory.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start(args),
        Command::Tune(args) => sluice_tuning::run_tune(&args),
        Command::Bench(args) => sluice_bench::run_bench(&args),
        Command::Group(args) => tools::group::run(&args),
        Command::Topic(args) => tools::topic::run(&args),
        Command::Config(args) => tools::config::run(&args),
        Command::Produce(args) => tools::produce::run(&args),
        Command::Consume(args) => tools::consume::run(&args),
        Command::Cluster(args) => tools::cluster::run(&args),
        Command::Log(args) => tools::log_dump::run(&args),
    }
}

/// `sluice start --check-config`: the checks `sluice start` makes before it opens anything,
/// then a one-line summary of what would run.
fn check_config(config: &BrokerConfig) -> ExitCode {
    let shards = shard_count(config);
    if let Err(e) = config.check_shard_ports(shards) {
        eprintln!("sluice: invalid configuration:\n{e}");
        return ExitCode::from(2);
    }
    let voters = if config.controller_quorum_voters.is_empty() {
        "this process alone".to_string()
    } else {
        config
            .controller_quorum_voters
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let controller = config
        .controller_listener
        .as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string);
    println!(
        "configuration is valid: node.id={} process.roles={} shards={shards} client listener {} controller listener {controller} quorum voters {voters}",
        config.broker_id,
        config.process_roles,
        config.client_listener(),
    );
    ExitCode::SUCCESS
}

fn start(args: StartArgs) -> ExitCode {
    let mut overrides = args.set;
    if let Some(cores) = args.cores {
        overrides.push(format!("sluice.cores={cores}"));
    }
    let config = match BrokerConfig::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice: invalid configuration:\n{e}");
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return check_config(&config);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sluice: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let flag = stop.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!("received signal {signal}; shutting down");
            flag.store(true, Ordering::Relaxed);
        }
    });
    match run_broker(config, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}
