//! The everyday client-side tools of the `sluice` command line. They speak the Kafka protocol
//! through `sluice-net`'s lean client, so they work against any Kafka-compatible broker.
//!
//! * [`group`] — `sluice group`: list, describe, lag, reset offsets of and delete consumer groups.
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

pub mod group;
pub mod runtime;
pub mod table;
