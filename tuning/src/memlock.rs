//! Locked memory (`RLIMIT_MEMLOCK`) and glommio's `io_memory`.
//!
//! Each glommio executor registers `io_memory` bytes of buffers with its io_uring rings and the
//! kernel charges about three times that per executor against `RLIMIT_MEMLOCK`. Sluice sizes
//! `io_memory` from the limit so that every shard fits, and refuses to start with a clear message
//! when even the minimum does not.

use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};

/// What each executor is charged against the limit, as a multiple of its `io_memory`.
pub const CHARGE_PER_IO_MEMORY: u64 = 3;
/// The smallest useful `io_memory` per executor.
pub const MIN_IO_MEMORY: u64 = 256 * 1024;
/// The largest `io_memory` we ask for (glommio's default is 10 MiB; more buys nothing here).
pub const MAX_IO_MEMORY: u64 = 8 * 1024 * 1024;

/// The locked-memory limit is too low for the requested shard count.
#[derive(Debug, thiserror::Error)]
#[error(
    "the locked-memory limit (RLIMIT_MEMLOCK, `ulimit -l`) is {limit_kib} KiB, but {shards} shard(s) need at least \
     {needed_kib} KiB; raise it (for example `ulimit -l {suggest_kib}`, or LimitMEMLOCK= in the systemd unit, or \
     memlock in /etc/security/limits.conf) or run fewer shards with --cores"
)]
pub struct MemlockTooLow {
    /// The soft limit in KiB.
    pub limit_kib: u64,
    /// Shards requested.
    pub shards: usize,
    /// The minimum needed in KiB.
    pub needed_kib: u64,
    /// A comfortable value to suggest, in KiB.
    pub suggest_kib: u64,
}

/// The current soft `RLIMIT_MEMLOCK` in bytes; `None` when unlimited or unreadable.
pub fn memlock_limit() -> Option<u64> {
    let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

/// The `io_memory` to give each of `shards` executors under `limit` bytes of locked memory.
pub fn io_memory_per_shard(limit: Option<u64>, shards: usize) -> Result<usize, MemlockTooLow> {
    let shards_u = shards.max(1) as u64;
    let Some(limit) = limit else {
        return Ok(MAX_IO_MEMORY as usize);
    };
    // Leave a quarter of the limit for everything else that locks memory.
    let per_shard = limit * 3 / 4 / (CHARGE_PER_IO_MEMORY * shards_u);
    if per_shard < MIN_IO_MEMORY {
        let needed = MIN_IO_MEMORY * CHARGE_PER_IO_MEMORY * shards_u * 4 / 3;
        return Err(MemlockTooLow {
            limit_kib: limit / 1024,
            shards,
            needed_kib: needed.div_ceil(1024),
            suggest_kib: (MAX_IO_MEMORY * CHARGE_PER_IO_MEMORY * shards_u * 4 / 3).div_ceil(1024),
        });
    }
    // Round down to a whole page.
    Ok((per_shard.min(MAX_IO_MEMORY) & !4095) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_two_shards_in_8_mib() {
        let io = io_memory_per_shard(Some(8 * 1024 * 1024), 2).unwrap() as u64;
        assert!(io >= MIN_IO_MEMORY);
        assert!(io * CHARGE_PER_IO_MEMORY * 2 <= 8 * 1024 * 1024);
    }

    #[test]
    fn too_low_limit_names_the_fix() {
        let e = io_memory_per_shard(Some(64 * 1024), 4)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RLIMIT_MEMLOCK") && e.contains("ulimit -l"),
            "{e}"
        );
    }

    #[test]
    fn unlimited_gets_the_maximum() {
        assert_eq!(io_memory_per_shard(None, 64).unwrap() as u64, MAX_IO_MEMORY);
    }
}
