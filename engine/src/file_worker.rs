//! The shard's file worker: one thread per shard for slow file-system work that must never
//! stall the shard's executor — the log cleaner's reading and rewriting, directory syncs, and
//! removing deleted segments and partitions.
//!
//! # The rule: no blocking file call on a shard's thread
//!
//! No `fsync`/`fdatasync` (`sync_all`, `sync_data`, [`sluice_storage::PendingFlush::sync`]),
//! checkpoint or metadata write (file creation, write, rename, directory sync) runs on a
//! shard's executor thread while it serves: a slow disk would stall every connection of the
//! shard. Short calls that a request or a reply waits for — the group commit's fsyncs, the
//! recovery-point and log-start checkpoints, the metadata save — go through [`run_blocking`]
//! (glommio's blocking pool); long background work goes to this worker. Ordering stays with
//! the caller, which awaits the call: a recovery point only advances once its data is synced,
//! a produce that needs durability awaits its group commit, and the controller replies only
//! after the metadata save. A segment roll does not sync (the next flush syncs the rolled
//! segment's indexes before the recovery point passes it). Only shutdown, which serves nothing
//! any more, makes these calls inline. Each call checks the rule in debug builds
//! ([`sluice_storage::blocking`]).
//!
//! The worker is not glommio's blocking pool, whose single thread per shard carries the group
//! commit's fsyncs and cold reads: those never queue behind this work. The thread is started from the
//! shard's executor, so it inherits its CPU, and is scheduled `SCHED_IDLE`: the kernel runs it
//! only when nothing else wants that CPU and preempts it as soon as the executor wakes, so it
//! uses the core's idle time and no more (measured in `bench/RESULTS.md`).
//!
//! Freeing a large file's blocks is slow on some file systems (ext4 mounted `-o discard` issues
//! a synchronous discard per extent), and it happens at the unlink or, if the file is still
//! open, at its last close. So files are truncated to zero here before they are unlinked
//! ([`remove_file_releasing_blocks`]): their blocks are freed on this thread even when the
//! shard still holds a handle and closes it later.

use sluice_storage::remove_file_releasing_blocks;
use std::io;
use std::path::Path;
use std::sync::mpsc;
use tracing::warn;

/// A closure for the worker thread.
type Work = Box<dyn FnOnce() + Send>;

/// The file worker thread ended (a closure panicked): its work can no longer be done.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the shard's file worker thread ended")]
pub struct FileWorkerStopped;

/// Handle to the shard's file worker thread, which runs closures one at a time in the order
/// given. The thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct FileWorker {
    work: mpsc::Sender<Work>,
}

impl FileWorker {
    /// Starts the thread. Call it on the shard's executor thread, whose CPU it inherits.
    pub fn start(shard_id: u32) -> io::Result<FileWorker> {
        let (work, queue) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name(format!("files-{shard_id}"))
            .spawn(move || {
                if let Err(e) = schedule_when_idle() {
                    warn!(
                        shard = shard_id,
                        "the file worker thread keeps normal priority (SCHED_IDLE refused: {e})"
                    );
                }
                while let Ok(work) = queue.recv() {
                    work();
                }
            })?;
        Ok(FileWorker { work })
    }

    /// Runs `f` on the worker thread and waits for its result without blocking the executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, FileWorkerStopped>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, result) = futures::channel::oneshot::channel();
        let work: Work = Box::new(move || {
            // The receiver is gone only if the waiting task was dropped: nothing to tell.
            let _ = reply.send(f());
        });
        self.work.send(work).map_err(|_| FileWorkerStopped)?;
        result.await.map_err(|_| FileWorkerStopped)
    }
}

/// Runs the short blocking file call `f` (an fsync, a checkpoint or metadata write) on the
/// executor's blocking pool and awaits its result without blocking the executor: the one way a
/// shard makes such calls (see the module docs).
pub async fn run_blocking<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    glommio::executor().spawn_blocking(f).await
}

/// Puts the calling thread in the `SCHED_IDLE` scheduling class (Linux: runs only when its
/// CPU has nothing else to run).
fn schedule_when_idle() -> io::Result<()> {
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler only reads `param`, which outlives the call; pid 0 is the
    // calling thread.
    let rc = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Removes the directory `dir` and everything in it, truncating every file first (see
/// [`remove_file_releasing_blocks`]), so that a deleted partition's blocks are freed here.
pub fn remove_dir_releasing_blocks(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            remove_dir_releasing_blocks(&path)?;
        } else {
            remove_file_releasing_blocks(&path)?;
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_worker_thread_runs_in_the_idle_scheduling_class() {
        let class = std::thread::spawn(|| {
            schedule_when_idle().unwrap();
            // SAFETY: sched_getscheduler takes no pointers; pid 0 is the calling thread.
            unsafe { nix::libc::sched_getscheduler(0) }
        })
        .join()
        .unwrap();
        assert_eq!(class, nix::libc::SCHED_IDLE);
    }

    #[test]
    fn removal_frees_files_that_are_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let doomed = dir.path().join("topic-0.abc-delete");
        std::fs::create_dir_all(doomed.join("nested")).unwrap();
        let segment = doomed.join("00000000000000000000.log");
        std::fs::File::create(&segment)
            .unwrap()
            .write_all(&[7; 4096])
            .unwrap();
        std::fs::write(doomed.join("nested/leader-epoch-checkpoint"), b"0\n0\n").unwrap();
        let mut still_open = std::fs::File::open(&segment).unwrap();

        remove_dir_releasing_blocks(&doomed).unwrap();
        assert!(!doomed.exists());
        let mut left = Vec::new();
        still_open.read_to_end(&mut left).unwrap();
        assert!(
            left.is_empty(),
            "the open file was truncated before the unlink"
        );
        remove_file_releasing_blocks(&segment).unwrap();
    }
}
