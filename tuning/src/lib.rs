//! Host checks and tuning for running Sluice: `sluice tune`, and the locked-memory sizing the
//! engine uses at start ([`memlock`]).
//!
//! `sluice tune` reads the host's `/proc` and `/sys` through a [`host::HostView`] (under a root
//! prefix, so tests use fake trees), runs one [`checks::Check`] per setting, prints the
//! [`report::Finding`]s as a table or JSON, and with `--apply` (as root) changes what can be
//! changed at runtime. Exit status: 0 when nothing fails, 1 when a check fails, 2 for usage errors.

#![warn(missing_docs)]

pub mod apply;
pub mod checks;
pub mod cli;
pub mod host;
pub mod memlock;
pub mod props;
pub mod report;
pub mod table;

pub use cli::{run_tune, run_with, Env, TuneArgs};
