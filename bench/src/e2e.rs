//! The `e2e` workload: produce at a fixed rate (default 1000 msg/s) and consume the same
//! messages in the same process, from the log end offset taken before producing starts.
//! Latency is the receive time minus the send time each message was *intended* to have (stamped
//! in its value, one clock), so a stalled producer shows up in the percentiles.

use crate::args::{ConsumeArgs, ProduceArgs, StartFrom};

/// Default rate of the e2e workload, in messages per second.
pub const DEFAULT_RATE: f64 = 1000.0;

/// The producer rate the e2e workload runs at (it never runs unlimited).
pub fn rate(produce: &ProduceArgs) -> Option<f64> {
    match produce.rate {
        Some(r) if r > 0.0 => Some(r),
        _ => Some(DEFAULT_RATE),
    }
}

/// Where the e2e consumers start: the log end, unless told otherwise.
pub fn start(consume: &ConsumeArgs) -> StartFrom {
    consume.from.unwrap_or(StartFrom::Latest)
}
