//! `sluice tune`: the options ([`TuneArgs`]) and the command ([`run_tune`], [`run_with`]).

use crate::apply::{apply, render_actions};
use crate::checks::{all_checks, evaluate_all, Workload};
use crate::host::HostView;
use crate::props::{log_dirs_from_config, DEFAULT_LOG_DIR};
use crate::report::{exit_status, Finding, Status};
use crate::table::render_table;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status: no check failed (warnings allowed).
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one check failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: bad usage (bad option values, unreadable `--config`, `--apply` without root).
pub const EXIT_USAGE: u8 = 2;

/// Options of `sluice tune`: check the host against the OS guidance for a broker.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TuneArgs {
    /// A log directory to check (repeatable); default: log.dirs / log.dir from --config, else
    /// ./sluice-data.
    #[arg(long = "log-dir", value_name = "DIR")]
    pub log_dirs: Vec<PathBuf>,
    /// A broker properties file to take log.dirs (or log.dir) from.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Shards the broker will run (sizes locked memory); default: every online CPU.
    #[arg(long, value_name = "N")]
    pub cores: Option<usize>,
    /// Partition replicas the broker will host (sizes open files).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub partitions: u64,
    /// Segments expected on disk per partition (retention / segment size).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub segments_per_partition: u64,
    /// Client and replication connections expected at peak.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub connections: u64,
    /// Read /proc and /sys under this directory instead of / (a fake tree, for testing).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Change what can be changed at runtime (sysctls, THP, governor, clock source); needs root.
    #[arg(long)]
    pub apply: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Facts about the invoking process that tests replace.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    /// Whether the process may change kernel settings (effective uid 0).
    pub is_root: bool,
}

impl Env {
    /// The running process.
    pub fn current() -> Self {
        Self {
            is_root: nix::unistd::geteuid().is_root(),
        }
    }
}

/// Run `sluice tune` with `args`, printing to stdout and stderr.
pub fn run_tune(args: &TuneArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    ExitCode::from(run_with(
        args,
        Env::current(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    ))
}

/// Online CPUs from `/sys/devices/system/cpu/online` (`0-3,6`).
fn online_cpus(host: &HostView) -> Option<usize> {
    let text = host.read_value("/sys/devices/system/cpu/online").ok()?;
    let mut n = 0usize;
    for part in text.split(',') {
        let part = part.trim();
        n += match part.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>()
                    .ok()?
                    .checked_sub(a.parse::<usize>().ok()?)?
                    + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

/// Run `sluice tune` as `env` with output to `out` (report) and `err` (errors); returns the exit
/// status ([`EXIT_OK`], [`EXIT_FAIL`] or [`EXIT_USAGE`]).
pub fn run_with(args: &TuneArgs, env: Env, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    macro_rules! usage {
        ($($t:tt)*) => {{
            let _ = writeln!(err, "sluice tune: {}", format!($($t)*));
            return EXIT_USAGE;
        }};
    }
    if args.cores == Some(0) {
        usage!("--cores must be at least 1");
    }
    let host = match &args.root {
        None => HostView::real(),
        Some(r) if r.is_dir() => HostView::with_root(r),
        Some(r) => usage!("--root {}: not a directory", r.display()),
    };
    let log_dirs = if !args.log_dirs.is_empty() {
        args.log_dirs.clone()
    } else if let Some(config) = &args.config {
        match log_dirs_from_config(config) {
            Ok(d) => d,
            Err(e) => usage!("--config: {e}"),
        }
    } else {
        vec![PathBuf::from(DEFAULT_LOG_DIR)]
    };
    if args.apply && !env.is_root {
        usage!(
            "--apply changes kernel settings and needs root; nothing was changed. Run it again with \
             sudo, or without --apply to only check"
        );
    }
    let cores = args.cores.unwrap_or_else(|| {
        let fallback = || {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        };
        if host.is_real() {
            fallback()
        } else {
            online_cpus(&host).unwrap_or(1)
        }
    });
    let workload = Workload {
        cores,
        partitions: args.partitions,
        segments_per_partition: args.segments_per_partition,
        connections: args.connections,
    };
    let checks = all_checks(&workload, &log_dirs);
    let findings = evaluate_all(&checks, &host);
    let (actions, after) = if args.apply {
        let actions = apply(&findings, &host);
        (Some(actions), Some(evaluate_all(&checks, &host)))
    } else {
        (None, None)
    };
    let status = exit_status(after.as_deref().unwrap_or(&findings));

    let written = if args.json {
        let summary = |f: &[Finding]| {
            let mut m = serde_json::Map::new();
            for s in Status::ALL {
                m.insert(
                    s.to_string(),
                    json!(f.iter().filter(|x| x.status == s).count()),
                );
            }
            m
        };
        let mut doc = json!({
            "root": host.root().display().to_string(),
            "workload": {
                "cores": workload.cores,
                "partitions": workload.partitions,
                "segments_per_partition": workload.segments_per_partition,
                "connections": workload.connections,
                "nofile_needed": workload.nofile_needed(),
            },
            "log_dirs": log_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
            "findings": findings,
            "summary": summary(&findings),
            "exit_status": status,
        });
        if let (Some(actions), Some(after)) = (&actions, &after) {
            doc["actions"] = json!(actions);
            doc["after"] = json!(after);
            doc["summary_after"] = json!(summary(after));
        }
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )
    } else {
        let mut text = format!(
            "Host check for a Sluice broker (root {}; {} core(s), {} partitions x {} segments, {} connections)\n\n",
            host.root().display(),
            workload.cores,
            workload.partitions,
            workload.segments_per_partition,
            workload.connections
        );
        text.push_str(&render_table(&findings));
        if let (Some(actions), Some(after)) = (&actions, &after) {
            text.push('\n');
            text.push_str(&render_actions(actions));
            text.push_str("\nAfter applying:\n\n");
            text.push_str(&render_table(after));
        }
        write!(out, "{text}")
    };
    let _ = written;
    status
}
