//! The rule that a shard's executor thread never makes a blocking file call that can take long
//! (`fdatasync`/`fsync`, writing a checkpoint, syncing a directory): the engine runs those on a
//! helper thread (glommio's blocking pool or its file worker) and awaits them.
//!
//! The engine marks each shard thread with [`forbid_blocking_file_calls`] once it starts
//! serving; every such call in this crate (and in the engine) first runs
//! [`debug_assert_blocking_allowed`], so a call that slips back onto a shard thread fails the
//! tests instead of stalling every connection of that shard in production.

use std::cell::Cell;

thread_local! {
    /// Whether the current thread is a shard's executor thread, where blocking file calls are
    /// forbidden.
    static FORBIDDEN: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread (a shard's executor thread) as one that must not make blocking
/// file calls.
pub fn forbid_blocking_file_calls() {
    FORBIDDEN.with(|f| f.set(true));
}

/// Runs `f` with blocking file calls allowed on the calling thread: the shard's shutdown, which
/// has nothing left to serve and must wait for its last flush and checkpoints anyway.
pub fn allow_blocking_file_calls<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous state even if `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORBIDDEN.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORBIDDEN.with(|f| f.replace(false)));
    f()
}

/// Checks, in builds with debug assertions, that the calling thread may make the blocking file
/// call `what` (it is not a shard's executor thread).
pub fn debug_assert_blocking_allowed(what: &str) {
    debug_assert!(
        !FORBIDDEN.with(Cell::get),
        "{what} on a shard's executor thread: run it on the blocking pool or the file worker"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_calls_are_refused_only_on_marked_threads() {
        std::thread::spawn(|| {
            debug_assert_blocking_allowed("fsync");
            forbid_blocking_file_calls();
            allow_blocking_file_calls(|| debug_assert_blocking_allowed("fsync at shutdown"));
            let refused = std::panic::catch_unwind(|| debug_assert_blocking_allowed("fsync"));
            assert_eq!(refused.is_err(), cfg!(debug_assertions));
        })
        .join()
        .unwrap();
        debug_assert_blocking_allowed("fsync on another thread");
    }
}
