//! The `mixed` workload (OpenMessaging-Benchmark style): producers and consumers run at once on
//! every core; the producer side reports throughput and acknowledgement latency, the consumer
//! side throughput and end-to-end latency of the messages produced during the run.

use crate::args::{ConsumeArgs, ProduceArgs, StartFrom};

/// The producer rate of the mixed workload (unlimited unless `--rate` is given).
pub fn rate(produce: &ProduceArgs) -> Option<f64> {
    produce.rate.filter(|r| *r > 0.0)
}

/// Where the mixed consumers start: the log end, unless told otherwise.
pub fn start(consume: &ConsumeArgs) -> StartFrom {
    consume.from.unwrap_or(StartFrom::Latest)
}
