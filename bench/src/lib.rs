//! `sluice bench`: a load generator for any Kafka-compatible broker.
//!
//! It speaks the Kafka protocol through `sluice-net`'s lean client, thread-per-core: one glommio
//! executor per `--cores`, each with its own connections and its own share of the partitions,
//! several requests in flight per connection, every partition's requests sent straight to its
//! leader node. Workloads: [`args::Workload`]. Results: [`stats::Summary`] (a table on stdout, or
//! JSON with `--json`), with a live line per second on stderr.
//!
//! * [`args`] — the command line ([`BenchArgs`]).
//! * [`batch`] — record-batch building and walking, payloads.
//! * [`produce`], [`consume`] — the producer and consumer tasks.
//! * [`e2e`], [`mixed`] — the combined workloads.
//! * [`runner`] — setup (metadata, topic creation, producer id, start offsets), executors, the
//!   live line.
//! * [`stats`] — hdrhistogram recording, merging, summary, JSON.

pub mod args;
pub mod batch;
pub mod consume;
pub mod e2e;
pub mod mixed;
pub mod produce;
pub mod runner;
pub mod stats;

pub use args::BenchArgs;
pub use runner::{execute, BenchError};
pub use stats::Summary;

use std::process::ExitCode;

/// Runs `sluice bench` with `args`: prints the live line on stderr and the summary on stdout
/// (JSON with `--json`); a failure is one clear line on stderr and exit status 1.
pub fn run_bench(args: &BenchArgs) -> ExitCode {
    let common = args.workload.common();
    match execute(args) {
        Ok(summary) => {
            if common.json {
                match serde_json::to_string_pretty(&summary) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("sluice bench: cannot write the JSON summary: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", summary.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice bench: {e}");
            ExitCode::FAILURE
        }
    }
}
