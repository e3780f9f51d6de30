//! Virtual-memory sysctls, read from and written to `/proc/sys/vm/*`.

use super::Check;
use crate::host::HostView;
use crate::report::{Finding, Fix, HostWrite, Status};

/// The recommended ceiling for `vm.swappiness`.
pub const SWAPPINESS_MAX: u64 = 1;
/// The recommended ceiling for `vm.dirty_background_ratio` (percent of reclaimable memory).
pub const DIRTY_BACKGROUND_RATIO_MAX: u64 = 5;
/// The recommended band for `vm.dirty_ratio` (percent of reclaimable memory).
pub const DIRTY_RATIO_RANGE: (u64, u64) = (5, 20);
/// The recommended floor for `vm.max_map_count`.
pub const MAX_MAP_COUNT_MIN: u64 = 262_144;

/// One `vm.*` sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sysctl {
    /// `vm.swappiness`: how eagerly anonymous memory is swapped out.
    Swappiness,
    /// `vm.dirty_ratio`: where writers are made to write back synchronously.
    DirtyRatio,
    /// `vm.dirty_background_ratio`: where background writeback starts.
    DirtyBackgroundRatio,
    /// `vm.max_map_count`: memory mappings per process.
    MaxMapCount,
}

impl Sysctl {
    /// Every sysctl checked, in table order.
    pub const ALL: [Sysctl; 4] = [
        Sysctl::Swappiness,
        Sysctl::DirtyRatio,
        Sysctl::DirtyBackgroundRatio,
        Sysctl::MaxMapCount,
    ];

    /// The sysctl name (`vm.swappiness`).
    pub fn name(self) -> &'static str {
        match self {
            Sysctl::Swappiness => "vm.swappiness",
            Sysctl::DirtyRatio => "vm.dirty_ratio",
            Sysctl::DirtyBackgroundRatio => "vm.dirty_background_ratio",
            Sysctl::MaxMapCount => "vm.max_map_count",
        }
    }

    /// The file under `/proc/sys` (`/proc/sys/vm/swappiness`).
    pub fn proc_path(self) -> String {
        format!("/proc/sys/{}", self.name().replace('.', "/"))
    }

    /// The recommendation, in words.
    pub fn recommended(self) -> String {
        match self {
            Sysctl::Swappiness => format!("<= {SWAPPINESS_MAX}"),
            Sysctl::DirtyRatio => format!("{}..={}", DIRTY_RATIO_RANGE.0, DIRTY_RATIO_RANGE.1),
            Sysctl::DirtyBackgroundRatio => format!("<= {DIRTY_BACKGROUND_RATIO_MAX}"),
            Sysctl::MaxMapCount => format!(">= {MAX_MAP_COUNT_MIN}"),
        }
    }

    /// Why it matters.
    pub fn why(self) -> &'static str {
        match self {
            Sysctl::Swappiness => {
                "The broker's working set (indexes, batches in flight) must stay in RAM; swapping it out \
                 turns a memory read into a disk read in the middle of a produce or fetch. 1 (not 0) keeps \
                 swap as a last resort before the OOM killer"
            }
            Sysctl::DirtyRatio => {
                "Past this share of dirty page cache every writer is throttled to write back itself, so \
                 produce latency jumps from microseconds to disk time; a ceiling near 20 bounds how much \
                 must be flushed at once, too low throttles producers all the time"
            }
            Sysctl::DirtyBackgroundRatio => {
                "Background writeback should start early and run steadily, so the log reaches disk in a \
                 smooth stream and fsync / dirty_ratio never face a large backlog"
            }
            Sysctl::MaxMapCount => {
                "Each shard maps io_uring rings and buffers, and Kafka-style brokers map segment indexes; \
                 thousands of partitions exhaust the default 65530 and mmap fails with ENOMEM"
            }
        }
    }

    /// Judge `value`, given the companion `vm.dirty_*_bytes` value where that applies; returns the
    /// status, a note for `why`, and the value `--apply` would write.
    fn judge(self, value: u64, host: &HostView) -> (Status, String, Option<u64>) {
        match self {
            Sysctl::Swappiness => {
                if value <= SWAPPINESS_MAX {
                    (Status::Ok, String::new(), None)
                } else {
                    (Status::Warn, String::new(), Some(SWAPPINESS_MAX))
                }
            }
            Sysctl::DirtyRatio => {
                let (lo, hi) = DIRTY_RATIO_RANGE;
                if (lo..=hi).contains(&value) {
                    (Status::Ok, String::new(), None)
                } else {
                    (Status::Warn, String::new(), Some(hi))
                }
            }
            Sysctl::DirtyBackgroundRatio => {
                let ratio = host.read_u64(&Sysctl::DirtyRatio.proc_path()).ok();
                if value > DIRTY_BACKGROUND_RATIO_MAX {
                    (
                        Status::Warn,
                        String::new(),
                        Some(DIRTY_BACKGROUND_RATIO_MAX),
                    )
                } else if ratio.is_some_and(|r| r > 0 && value >= r) {
                    (
                        Status::Warn,
                        "Not below vm.dirty_ratio, so the kernel halves it. ".to_string(),
                        Some(
                            DIRTY_BACKGROUND_RATIO_MAX
                                .min(ratio.unwrap_or(1).saturating_sub(1))
                                .max(1),
                        ),
                    )
                } else {
                    (Status::Ok, String::new(), None)
                }
            }
            Sysctl::MaxMapCount => {
                if value >= MAX_MAP_COUNT_MIN {
                    (Status::Ok, String::new(), None)
                } else {
                    (Status::Warn, String::new(), Some(MAX_MAP_COUNT_MIN))
                }
            }
        }
    }

    /// For the dirty ratios: the `*_bytes` sysctl that replaces the ratio when non-zero.
    fn bytes_companion(self) -> Option<&'static str> {
        match self {
            Sysctl::DirtyRatio => Some("/proc/sys/vm/dirty_bytes"),
            Sysctl::DirtyBackgroundRatio => Some("/proc/sys/vm/dirty_background_bytes"),
            _ => None,
        }
    }
}

impl Check for Sysctl {
    fn evaluate(&self, host: &HostView) -> Finding {
        let name = self.name();
        let value = match host.read_u64(&self.proc_path()) {
            Ok(v) => v,
            Err(e) => return Finding::unknown(name, self.recommended(), e, self.why()),
        };
        if let Some(bytes_path) = self.bytes_companion() {
            if let Ok(bytes) = host.read_u64(bytes_path) {
                if bytes > 0 {
                    let bytes_name = bytes_path
                        .trim_start_matches("/proc/sys/")
                        .replace('/', ".");
                    return Finding::new(
                        name,
                        format!("{value} ({bytes_name}={bytes} in effect)"),
                        self.recommended(),
                        format!(
                            "unknown: {bytes_name} is set, which replaces the ratio; judge it against RAM \
                             yourself. {}",
                            self.why()
                        ),
                        Status::Unknown,
                    );
                }
            }
        }
        let (status, note, target) = self.judge(value, host);
        let finding = Finding::new(
            name,
            value.to_string(),
            self.recommended(),
            format!("{note}{}", self.why()),
            status,
        );
        match target {
            Some(t) => finding.with_fix(Fix::Runtime {
                writes: vec![HostWrite {
                    path: self.proc_path(),
                    value: t.to_string(),
                }],
                command: format!("sysctl -w {name}={t}"),
                persist: format!("add `{name} = {t}` to /etc/sysctl.d/99-sluice.conf"),
            }),
            None => finding,
        }
    }
}
