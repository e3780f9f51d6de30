//! Resource limits: open files (`RLIMIT_NOFILE`) and locked memory (`RLIMIT_MEMLOCK`).
//!
//! Read from `/proc/self/limits` under the root (on the real host, `getrlimit` when that file
//! cannot be read). These are the limits of the process running `sluice tune` — the shell's — and
//! a broker started by systemd gets the unit's `LimitNOFILE=` / `LimitMEMLOCK=` instead.

use super::{Check, Workload, FDS_PER_SEGMENT};
use crate::host::{garbage, HostError, HostView};
use crate::memlock::{io_memory_per_shard, CHARGE_PER_IO_MEMORY, MAX_IO_MEMORY};
use crate::report::{Finding, Fix, Status};
use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};

/// A soft and hard limit; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The soft (effective) limit.
    pub soft: Option<u64>,
    /// The hard limit (the ceiling an unprivileged process may raise its soft limit to).
    pub hard: Option<u64>,
}

fn show(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

impl Limit {
    /// `soft N / hard M`, with values divided by `unit` (1 or 1024).
    fn display(&self, unit: u64) -> String {
        format!(
            "soft {} / hard {}",
            show(self.soft.map(|v| v / unit)),
            show(self.hard.map(|v| v / unit))
        )
    }
}

const LIMITS: &str = "/proc/self/limits";

/// Parse the row starting with `label` (`Max open files`) of `/proc/self/limits`.
pub fn parse_limit(text: &str, label: &str) -> Result<Limit, HostError> {
    let line = text.lines().find(|l| l.starts_with(label)).ok_or_else(|| {
        garbage(
            LIMITS,
            text.lines().next().unwrap_or(""),
            "a row for the limit",
        )
    })?;
    let mut words = line[label.len()..].split_whitespace();
    let mut value = || -> Result<Option<u64>, HostError> {
        match words.next() {
            Some("unlimited") => Ok(None),
            Some(w) => w
                .parse()
                .map(Some)
                .map_err(|_| garbage(LIMITS, line, "numbers or `unlimited`")),
            None => Err(garbage(LIMITS, line, "a soft and a hard limit")),
        }
    };
    let soft = value()?;
    let hard = value()?;
    Ok(Limit { soft, hard })
}

fn read_limit(host: &HostView, label: &str, resource: Resource) -> Result<Limit, HostError> {
    let from_file = host.read(LIMITS).and_then(|t| parse_limit(&t, label));
    match from_file {
        Err(e) if host.is_real() => {
            let (soft, hard) = getrlimit(resource).map_err(|_| e)?;
            let f = |v| (v != RLIM_INFINITY).then_some(v);
            Ok(Limit {
                soft: f(soft),
                hard: f(hard),
            })
        }
        other => other,
    }
}

/// Open files needed for the workload.
#[derive(Debug, Clone)]
pub struct NoFile {
    /// The planned workload.
    pub workload: Workload,
}

/// The open-files limit suggested when raising it.
pub const NOFILE_SUGGEST: u64 = 1_048_576;

impl Check for NoFile {
    fn evaluate(&self, host: &HostView) -> Finding {
        let need = self.workload.nofile_needed();
        let setting = "nofile (ulimit -n)";
        let recommended = format!(">= {need}");
        let why = format!(
            "The broker keeps {FDS_PER_SEGMENT} files open per segment (log, index, timeindex): {} partitions x \
             {} segments = {} segments, plus {} connections and slack; running out fails produce and \
             segment rolls with EMFILE. These are this shell's limits, the service's may differ",
            self.workload.partitions,
            self.workload.segments_per_partition,
            self.workload.segments(),
            self.workload.connections
        );
        let limit = match read_limit(host, "Max open files", Resource::RLIMIT_NOFILE) {
            Ok(l) => l,
            Err(e) => return Finding::unknown(setting, recommended, e, &why),
        };
        let status = match limit.soft {
            Some(soft) if soft < need => Status::Fail,
            _ => Status::Ok,
        };
        let v = need.max(NOFILE_SUGGEST);
        Finding::new(setting, limit.display(1), recommended, why, status).with_fix(Fix::Manual {
            how: format!(
                "raise the open-files limit to {v}: LimitNOFILE={v} in the systemd unit, or \
                 `<user> - nofile {v}` in /etc/security/limits.conf (next login), or `ulimit -n {v}` \
                 before starting sluice (up to the hard limit)"
            ),
        })
    }
}

/// Locked memory for glommio's io_uring buffers on every shard (the rule in [`crate::memlock`]).
#[derive(Debug, Clone)]
pub struct MemLock {
    /// Shards (cores).
    pub cores: usize,
}

impl Check for MemLock {
    fn evaluate(&self, host: &HostView) -> Finding {
        let shards = self.cores.max(1) as u64;
        let full_kib = (MAX_IO_MEMORY * CHARGE_PER_IO_MEMORY * shards * 4 / 3).div_ceil(1024);
        let setting = "memlock (ulimit -l)";
        let recommended = format!(">= {full_kib} KiB");
        let why = format!(
            "Each of {shards} shard(s) registers io_uring buffers charged ~{CHARGE_PER_IO_MEMORY}x against \
             locked memory; below the full amount Sluice shrinks the buffers, below the minimum it \
             refuses to start"
        );
        let limit = match read_limit(host, "Max locked memory", Resource::RLIMIT_MEMLOCK) {
            Ok(l) => l,
            Err(e) => return Finding::unknown(setting, recommended, e, &why),
        };
        let current = format!("{} KiB", limit.display(1024));
        let (status, note) = match io_memory_per_shard(limit.soft, self.cores) {
            Err(e) => (
                Status::Fail,
                format!(
                    "{} KiB is below the {} KiB minimum for {} shard(s): Sluice refuses to start. ",
                    e.limit_kib, e.needed_kib, e.shards
                ),
            ),
            Ok(io) if (io as u64) < MAX_IO_MEMORY => (
                Status::Warn,
                format!(
                    "io_memory would be {} KiB per shard, not {} KiB. ",
                    io / 1024,
                    MAX_IO_MEMORY / 1024
                ),
            ),
            Ok(_) => (Status::Ok, String::new()),
        };
        Finding::new(setting, current, recommended, format!("{note}{why}"), status).with_fix(Fix::Manual {
            how: format!(
                "raise the locked-memory limit to {full_kib} KiB or more: LimitMEMLOCK={}K (or infinity) in \
                 the systemd unit, or `<user> - memlock {full_kib}` in /etc/security/limits.conf (next \
                 login), or `ulimit -l {full_kib}`",
                full_kib
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max open files            1024                 1048576              files     \n\
        Max locked memory         unlimited            unlimited            bytes     \n";

    #[test]
    fn parses_limits() {
        assert_eq!(
            parse_limit(SAMPLE, "Max open files").unwrap(),
            Limit {
                soft: Some(1024),
                hard: Some(1048576)
            }
        );
        assert_eq!(
            parse_limit(SAMPLE, "Max locked memory").unwrap(),
            Limit {
                soft: None,
                hard: None
            }
        );
        assert!(parse_limit(SAMPLE, "Max processes").is_err());
        assert!(parse_limit("Max open files  lots  more files\n", "Max open files").is_err());
        assert!(parse_limit("Max open files  12\n", "Max open files").is_err());
    }
}
