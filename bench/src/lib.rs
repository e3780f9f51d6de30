//! `sluice bench`, the bundled load generator, arrives with the next issue (produce, consume,
//! end-to-end latency and mixed workloads against any Kafka-compatible broker, with
//! hdrhistogram percentiles). The crate exists now so the workspace has its final shape.
