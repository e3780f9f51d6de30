//! One small glommio executor for a command-line tool.
//!
//! A tool sends a handful of requests, so it runs on a single unpinned executor on the calling
//! thread with the least `io_memory` that is useful: glommio locks about three times that, and a
//! CLI must work under the common 8 MiB `RLIMIT_MEMLOCK` next to a running broker.

use glommio::{LocalExecutorBuilder, Placement};
use sluice_tuning::memlock::{io_memory_per_shard, memlock_limit, MIN_IO_MEMORY};
use std::future::Future;

/// Runs `fut` to completion on a fresh executor on this thread; `Err` says why the executor
/// could not start (a locked-memory limit too low for io_uring, typically).
pub fn block_on<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    // Ask for the minimum; if even that does not fit in the limit, still try with less: glommio
    // then runs without registered buffers, which a few requests do not miss.
    let io_memory = io_memory_per_shard(memlock_limit(), 1)
        .map(|m| m.min(MIN_IO_MEMORY as usize))
        .unwrap_or(64 * 1024);
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("sluice-tool")
        .io_memory(io_memory)
        .make()
        .map_err(|e| {
            format!(
                "cannot start the I/O runtime (io_uring): {e}; if the locked-memory limit is the \
                 cause, raise it (`ulimit -l`)"
            )
        })?;
    Ok(executor.run(fut))
}
