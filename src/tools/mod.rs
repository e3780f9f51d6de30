//! The everyday client-side tools of the `sluice` command line. They speak the Kafka protocol
//! through `sluice-net`'s lean client, so they work against any Kafka-compatible broker.
//!
//! * [`group`] — `sluice group`: list, describe, lag, reset offsets of and delete consumer groups.
//! * [`topic`] — `sluice topic`: create, list, describe, alter, delete topics, add partitions,
//!   reassign partitions.
//! * [`config`] — `sluice config`: describe, set and delete topic and broker configs.
//! * [`produce`] — `sluice produce`: stdin lines to records.
//! * [`consume`] — `sluice consume`: records to stdout lines, optionally committing for a group.
//! * [`cluster`] — `sluice cluster status`: brokers and the controller quorum.
//! * [`log_dump`] — `sluice log dump`: decode segment, index and time index files offline.
//! * [`common`] — bootstrap and timeout options, connecting, errors, exit statuses.
//! * [`configs`] — DescribeConfigs and IncrementalAlterConfigs, shared by `topic` and `config`.
//! * [`records`] — splitting fetched or stored bytes into batches and printing record fields.
//! * [`table`] — the aligned text tables the tools print.
//! * [`runtime`] — the single small executor a tool runs its requests on.

/// `print!` that ignores a failed write: a closed pipe (`sluice group list | head -1`) must not
/// end the tool with a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` that ignores a failed write (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod cluster;
pub mod common;
pub mod config;
pub mod configs;
pub mod consume;
pub mod group;
pub mod log_dump;
pub mod produce;
pub mod records;
pub mod runtime;
pub mod table;
pub mod topic;
