//! The file-descriptor budget of the broker: `RLIMIT_NOFILE` raised to its hard limit at start,
//! and the size of each shard's cache of sealed segments' log files.
//!
//! A partition keeps three descriptors for its active segment (log, offset index, time index);
//! older segments keep none and open their log file through their shard's
//! [`LogFileCache`](sluice_storage::LogFileCache). When `sluice.segment.files.open.per.shard`
//! is 0, each shard's cache gets a quarter of the soft limit divided among the shards, between
//! [`MIN_CACHE`] and [`MAX_CACHE`]: the other three quarters stay for what no cache can bound
//! (active segments, client connections, io_uring rings, eventfds, checkpoint files, listeners).
//! A cache larger than a few thousand files buys nothing: reopening a segment costs an `open`
//! of a cached dentry, microseconds, and its data stays in the page cache either way.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use sluice_tuning::checks::{FDS_PER_SEGMENT, FD_SLACK};
use tracing::{info, warn};

/// Smallest automatic cache per shard: a fetch touching old data of a few partitions at once
/// does not thrash it.
pub const MIN_CACHE: usize = 16;
/// Largest automatic cache per shard.
pub const MAX_CACHE: usize = 4096;

/// `RLIMIT_NOFILE` before and after [`raise_nofile_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimits {
    /// Soft limit the process started with.
    pub soft_before: u64,
    /// Soft limit now.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (to `fs.nr_open` when the hard limit is
/// unlimited). A failure leaves the limit as it was and is logged.
pub fn raise_nofile_limit() -> NofileLimits {
    let (soft_before, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            warn!("cannot read RLIMIT_NOFILE: {e}");
            return NofileLimits {
                soft_before: 1024,
                soft: 1024,
                hard: 1024,
            };
        }
    };
    let target = if hard == RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        hard
    };
    let soft = if soft_before < target {
        match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
            Ok(()) => target,
            Err(e) => {
                warn!("cannot raise the soft RLIMIT_NOFILE from {soft_before} to {target}: {e}");
                soft_before
            }
        }
    } else {
        soft_before
    };
    NofileLimits {
        soft_before,
        soft,
        hard,
    }
}

/// Size of each shard's cache of sealed segments' log files: `configured` when set, else a
/// quarter of `soft_limit` shared among `shards` (see the module docs).
pub fn segment_file_cache_size(configured: usize, soft_limit: u64, shards: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let per_shard = soft_limit / 4 / shards.max(1) as u64;
    usize::try_from(per_shard)
        .unwrap_or(MAX_CACHE)
        .clamp(MIN_CACHE, MAX_CACHE)
}

/// Descriptors the broker plans to hold: three per partition (its active segment), every
/// shard's cache, and the slack `sluice tune` counts for connections, rings and listeners.
pub fn planned_descriptors(partitions: u64, shards: usize, cache_per_shard: usize) -> u64 {
    partitions
        .saturating_mul(FDS_PER_SEGMENT)
        .saturating_add((shards as u64).saturating_mul(cache_per_shard as u64))
        .saturating_add(FD_SLACK)
}

/// Logs the limits and the plan, warning when the hard limit is below the plan.
pub fn log_budget(limits: NofileLimits, partitions: u64, shards: usize, cache_per_shard: usize) {
    let planned = planned_descriptors(partitions, shards, cache_per_shard);
    info!(
        soft_before = limits.soft_before,
        soft = limits.soft,
        hard = limits.hard,
        segment_files_open_per_shard = cache_per_shard,
        planned,
        "RLIMIT_NOFILE soft limit {} (was {}), hard limit {}",
        limits.soft,
        limits.soft_before,
        limits.hard
    );
    if limits.hard < planned {
        warn!(
            "the hard RLIMIT_NOFILE {} is low for {partitions} partitions on {shards} shards: \
             they plan {planned} descriptors (3 per partition, {cache_per_shard} cached segment \
             files per shard, {FD_SLACK} for connections and the rest); opening a file or \
             accepting a connection may fail with EMFILE. Raise it (`ulimit -Hn`, \
             LimitNOFILE=, see `sluice tune`)",
            limits.hard
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_size_rule() {
        assert_eq!(
            segment_file_cache_size(100, 1 << 20, 2),
            100,
            "configured wins"
        );
        assert_eq!(segment_file_cache_size(0, 65536, 4), 4096);
        assert_eq!(segment_file_cache_size(0, 1 << 20, 1), MAX_CACHE);
        assert_eq!(segment_file_cache_size(0, 256, 2), 32);
        assert_eq!(segment_file_cache_size(0, 64, 8), MIN_CACHE);
        assert_eq!(segment_file_cache_size(0, 1024, 0), 256);
    }

    #[test]
    fn planned_descriptors_count_active_segments_caches_and_slack() {
        assert_eq!(planned_descriptors(10, 2, 32), 30 + 64 + FD_SLACK);
        assert_eq!(planned_descriptors(u64::MAX, 2, 32), u64::MAX);
    }

    #[test]
    fn raising_keeps_soft_at_most_hard() {
        let limits = raise_nofile_limit();
        assert!(limits.soft >= limits.soft_before);
        assert!(limits.soft <= limits.hard || limits.hard == RLIM_INFINITY);
    }
}
