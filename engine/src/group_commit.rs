//! Group commit: one `fdatasync` round per shard tick, shared by every request that needs one.
//!
//! A produce request that must be durable before it is answered (`flush.messages` /
//! `flush.ms` due, or `sluice.fsync.acks.all` with acks=all) registers its partition and awaits
//! [`GroupCommit::sync`]. The first registration starts a round; the round yields once so that
//! every request arriving in the same executor tick joins it, then syncs all registered
//! partitions' unflushed segments on glommio's blocking thread pool (the core keeps serving
//! other connections meanwhile) and wakes every waiter whose data the round covered.

use crate::file_worker::run_blocking;
use crate::partition::Partition;
use event_listener::Event;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use tracing::error;

/// The shard's group-commit state.
#[derive(Default)]
pub struct GroupCommit {
    pending: RefCell<Vec<Rc<Partition>>>,
    rounds_started: Cell<u64>,
    rounds_done: Cell<u64>,
    running: Cell<bool>,
    failed_round: Cell<Option<u64>>,
    done: Event,
}

impl GroupCommit {
    /// Makes everything appended to `partition` so far durable; returns once an fdatasync
    /// covering it has completed.
    pub async fn sync(self: &Rc<Self>, partition: Rc<Partition>) -> io::Result<()> {
        {
            let mut pending = self.pending.borrow_mut();
            if !pending.iter().any(|p| Rc::ptr_eq(p, &partition)) {
                pending.push(partition);
            }
        }
        let target = self.rounds_started.get() + 1;
        if !self.running.get() {
            self.running.set(true);
            glommio::spawn_local(self.clone().run()).detach();
        }
        loop {
            if self.rounds_done.get() >= target {
                break;
            }
            let listener = self.done.listen();
            if self.rounds_done.get() >= target {
                break;
            }
            listener.await;
        }
        match self.failed_round.get() {
            Some(r) if r >= target => Err(io::Error::other("fdatasync failed; see the broker log")),
            _ => Ok(()),
        }
    }

    /// Runs rounds until nobody is waiting.
    async fn run(self: Rc<Self>) {
        loop {
            futures_lite::future::yield_now().await;
            let batch: Vec<Rc<Partition>> = std::mem::take(&mut *self.pending.borrow_mut());
            if batch.is_empty() {
                self.running.set(false);
                return;
            }
            let round = self.rounds_started.get() + 1;
            self.rounds_started.set(round);
            let flushes: Vec<_> = batch.iter().map(|p| p.begin_flush()).collect();
            let (flushes, result) = run_blocking(move || {
                let result = flushes.iter().flatten().try_for_each(|f| f.sync());
                (flushes, result)
            })
            .await;
            match result {
                Ok(()) => {
                    for (p, f) in batch.iter().zip(&flushes) {
                        if let Some(f) = f {
                            p.complete_flush(f);
                        }
                    }
                }
                Err(e) => {
                    error!("fdatasync failed in group commit round {round}: {e}");
                    self.failed_round.set(Some(round));
                }
            }
            self.rounds_done.set(round);
            self.done.notify(usize::MAX);
        }
    }
}
