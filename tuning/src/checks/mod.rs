//! The checks: one type per setting, grouped by area.
//!
//! * [`sysctl`]: `vm.swappiness`, `vm.dirty_ratio`, `vm.dirty_background_ratio`, `vm.max_map_count`;
//! * [`fs`]: the filesystem type and mount options of each log directory;
//! * [`limits`]: `RLIMIT_NOFILE` and `RLIMIT_MEMLOCK` against the planned workload;
//! * [`cpu`]: transparent huge pages, the CPU frequency governor and the clock source.

pub mod cpu;
pub mod fs;
pub mod limits;
pub mod sysctl;

use crate::host::HostView;
use crate::report::Finding;
use std::path::PathBuf;

/// One host setting to check.
pub trait Check {
    /// Look at the host and judge. Never panics: unreadable or odd files give `unknown`.
    fn evaluate(&self, host: &HostView) -> Finding;
}

/// What the broker is expected to carry, for sizing limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Shards (one per core).
    pub cores: usize,
    /// Partition replicas hosted by the broker.
    pub partitions: u64,
    /// Segments expected on disk per partition (retention / segment size).
    pub segments_per_partition: u64,
    /// Client and replication connections expected at peak.
    pub connections: u64,
}

/// File descriptors kept open per segment: the log, the offset index and the time index.
pub const FDS_PER_SEGMENT: u64 = 3;
/// Descriptors beyond segments and connections: listeners, io_uring rings, eventfds, the
/// checkpoint files and the metrics port.
pub const FD_SLACK: u64 = 1024;

impl Workload {
    /// Segments expected on disk.
    pub fn segments(&self) -> u64 {
        self.partitions.saturating_mul(self.segments_per_partition)
    }

    /// File descriptors the broker needs: every segment's three files, every connection, slack.
    pub fn nofile_needed(&self) -> u64 {
        self.segments()
            .saturating_mul(FDS_PER_SEGMENT)
            .saturating_add(self.connections)
            .saturating_add(FD_SLACK)
    }
}

/// Every check for `workload` and `log_dirs` (as given, relative paths taken from the current
/// directory), in table order.
pub fn all_checks(workload: &Workload, log_dirs: &[PathBuf]) -> Vec<Box<dyn Check>> {
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    for dir in log_dirs {
        checks.push(Box::new(fs::FsType::new(dir.clone())));
        checks.push(Box::new(fs::MountOptions::new(dir.clone())));
    }
    for s in sysctl::Sysctl::ALL {
        checks.push(Box::new(s));
    }
    checks.push(Box::new(limits::NoFile {
        workload: workload.clone(),
    }));
    checks.push(Box::new(limits::MemLock {
        cores: workload.cores,
    }));
    checks.push(Box::new(cpu::TransparentHugePages));
    checks.push(Box::new(cpu::Governor));
    checks.push(Box::new(cpu::ClockSource));
    checks
}

/// Run `checks` against `host`.
pub fn evaluate_all(checks: &[Box<dyn Check>], host: &HostView) -> Vec<Finding> {
    checks.iter().map(|c| c.evaluate(host)).collect()
}
